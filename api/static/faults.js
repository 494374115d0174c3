// The fault list with a timeline per fault, and a crew's work order (for a phone and for paper).
"use strict";

// ---------------------------------------------------------------- faults
const SEV = { critical: 0, major: 1, minor: 2 };

// A fault's life on road time: opened, last evidence, acknowledged, resolved, and now.
function timeline(f) {
  const now = roadNow();
  const marks = [["opened", f.first_seen_ts], ["last seen", f.last_seen_ts],
    ["acknowledged", f.acknowledged_ms], ["resolved", f.resolved_ms]].filter(([, t]) => t != null);
  const t0 = f.first_seen_ts, t1 = Math.max(now, ...marks.map(([, t]) => t), t0 + 60000);
  const x = (t) => (6 + (t - t0) / (t1 - t0) * 288).toFixed(1);
  const dots = marks.map(([k, t]) => `<circle class="tl-${k.replace(" ", "-")}" cx="${x(t)}" cy="14" r="5"><title>${k} ${stamp(t)}</title></circle>`).join("");
  return `<svg class="timeline" viewBox="0 0 300 28" role="img" aria-label="timeline of ${esc(f.fault_id)}">
      <line class="tl-axis" x1="6" x2="294" y1="14" y2="14"></line>
      <line class="tl-open" x1="${x(t0)}" x2="${x(f.resolved_ms || now)}" y1="14" y2="14"></line>${dots}
      <line class="tl-now" x1="${x(now)}" x2="${x(now)}" y1="4" y2="24"></line></svg>
    <ol class="tl-steps">${marks.map(([k, t]) => `<li data-step="${k}">${k} <time>${hhmm(t)}</time>
      <span class="muted">(${ago(t)})</span>${k === "acknowledged" && f.acknowledged_by ? ` by ${esc(f.acknowledged_by)}` : ""}
      ${k === "resolved" && f.resolved_by ? ` by ${esc(f.resolved_by)}` : ""}</li>`).join("")}</ol>`;
}

async function loadFaults() {
  const data = await api("GET", "/api/v1/faults?open=true");
  S.faults = data.faults.sort((a, b) => (SEV[a.severity] - SEV[b.severity]) || (b.first_seen_ts - a.first_seen_ts));
  $("fault-count").textContent = S.faults.length;
  const list = $("faults");
  if (!S.faults.length) { list.innerHTML = `<li class="empty">No open faults.</li>`; drawFaultMarks(); return; }
  list.innerHTML = S.faults.map((f) => `
    <li class="fault-card ${esc(f.state)}" data-fault="${esc(f.fault_id)}">
      <div class="what"><span class="badge ${esc(f.severity)}">${esc(f.severity)}</span>
        <strong>${esc(f.type.replace(/_/g, " "))}</strong>
        <span class="muted">${esc(f.fault_id)} · ${esc(f.state)} · <span class="age">${ago(f.first_seen_ts)}</span></span></div>
      <div class="where">${esc(f.location)}</div>
      ${f.equipment ? `<div class="equip">Fix: <strong>${esc(f.equipment)}</strong> ${esc(equipmentWords(f))} on ${esc(f.pole)}</div>` : ""}
      <div class="muted">${esc(f.summary)}</div>
      ${timeline(f)}
      <div class="actions"><button type="button" data-act="open">Work order</button>
      ${may("faults") ? `${f.state === "open" ? `<button type="button" data-act="ack">Acknowledge</button>` : ""}
        <button type="button" data-act="resolve">Resolve</button>` : ""}</div>
    </li>`).join("");
  drawFaultMarks();
  if (S.workorder) {
    const f = S.faults.find((x) => x.fault_id === S.workorder);
    if (f) showWorkOrder(f, false);
  }
}

async function faultAction(f, act, note) {
  await api("POST", `/api/v1/faults/${encodeURIComponent(f.fault_id)}/${act}`, { note: note || "" });
  await loadFaults();
  await loadPoles();
  if (S.workorder === f.fault_id) {
    const fresh = await api("GET", `/api/v1/faults/${encodeURIComponent(f.fault_id)}`);
    showWorkOrder(fresh, false);
  }
}

$("faults").addEventListener("click", async (e) => {
  const li = e.target.closest(".fault-card");
  if (!li) return;
  const f = S.faults.find((x) => x.fault_id === li.dataset.fault);
  if (!f) return;
  const act = e.target.dataset.act;
  if (act === "open") { showWorkOrder(f, true); return; }
  if (act) {
    try { await faultAction(f, act, ""); } catch (err) { alertMsg(err.message); }
    return;
  }
  document.querySelectorAll(".fault-card.active").forEach((x) => x.classList.remove("active"));
  li.classList.add("active");
  const target = f.pole || (f.span && f.span[1]);
  if (target && S.poles.has(target)) {
    selectPole(target);
    scrollToPole(target);
    document.querySelector(".road-panel").scrollIntoView({ behavior: "smooth", block: "nearest" });
  }
});
function alertMsg(m) { $("control-msg").textContent = m; }

function drawFaultMarks() {
  const ov = $("overlay");
  if (!ov) return;
  ov.replaceChildren();
  for (const f of S.faults) {
    if (f.span && S.xy.has(f.span[0]) && S.xy.has(f.span[1])) {
      const [a, b] = [S.xy.get(f.span[0]), S.xy.get(f.span[1])];
      el("line", { class: "span-mark", x1: a[0], y1: a[1], x2: b[0], y2: b[1] }, ov);
    }
    const id = f.pole || (f.span && f.span[1]);
    if (id && S.xy.has(id)) { const [x, y] = S.xy.get(id); el("circle", { class: "ring", cx: x, cy: y, r: 13 }, ov); }
    if (EQUIPMENT_FAULTS.has(f.type) && f.pole && S.xy.has(f.pole)) {
      // equipment beside the lamp: a small diamond by the pole, naming what failed
      const [x, y] = S.xy.get(f.pole), dy = y < ROAD_Y ? -20 : 20;
      const m = el("rect", { class: "eq-mark", x: x - 4, y: y + dy - 4, width: 8, height: 8,
        transform: `rotate(45 ${x} ${y + dy})`, "data-pole": f.pole, "data-type": f.type }, ov);
      el("title", {}, m).textContent = `${f.pole}: ${f.type.replace(/_/g, " ")}${f.equipment ? ` (${f.equipment})` : ""}`;
    }
  }
}

const EQUIPMENT_FAULTS = new Set(["equipment_fault", "pole_tilt", "door_open"]);
// "camera, 25 W": the equipment's kind and rating, from the fault's evidence
function equipmentWords(f) {
  const ev = f.evidence || {};
  return [ev.kind ? kindWord(ev.kind) : "", ev.rated_power_w ? `${ev.rated_power_w} W` : ""].filter(Boolean).join(", ");
}

// ---------------------------------------------------------------- a crew's work order
function geoLink(lat, lon, label) {
  if (lat == null || lon == null) return "—";
  const ll = `${Number(lat).toFixed(6)},${Number(lon).toFixed(6)}`;
  return `<a class="geo" href="geo:${ll}?q=${ll}(${encodeURIComponent(label)})">${ll}</a>`;
}
function poleLine(id) {
  const p = S.poles.get(id);
  if (!p) return esc(id);
  return `<strong>${esc(id)}</strong> · ${esc(p.chainage)} ${sideWord(p.side)} side · feeder ${esc(p.feeder)}
    #${p.feeder_position} from cabinet ${esc(p.cabinet)} · GPS ${geoLink(p.lat, p.lon, id)}`;
}
function kit(id) {
  const p = S.poles.get(id);
  if (!p) return "";
  const lamp = p.lamp || `LED luminaire, ${p.rated_power_w} W`;
  const driver = p.driver || `LED driver for ${p.rated_power_w} W`;
  return `<li><strong>${esc(id)}</strong>: lamp ${esc(lamp)}; driver ${esc(driver)}</li>`;
}
// what the crew takes, by the kind of fault; the lamp and driver are the pole's, from the registry
const KIT = {
  cable_fault: "cable locator and jointing kit; isolate the feeder at its cabinet first",
  feeder_outage: "the cabinet's keys and spare breakers; check the cabinet before the poles",
  leakage: "insulation tester and RCD tester; isolate the pole before touching it",
  comm_loss: "spare radio module (the pole's controller) and its SIM details",
  voltage_out_of_band: "voltmeter; check the feeder at its cabinet",
  detector_stuck: "spare traffic detector",
  door_open: "door key and a replacement lock",
  pole_tilt: "a structural inspection: report before climbing",
  equipment_fault: "a spare unit of the equipment named and its port fuse; try a power cycle from the dashboard first",
  energy_imbalance: "clamp meter and the feeder's drawing: walk the feeder from its cabinet for an illegal tap",
};
function bring(f) {
  const poles = f.span ? f.span : f.pole ? [f.pole] : [];
  const items = KIT[f.type] ? [`<li>${esc(KIT[f.type])}</li>`] : [];
  items.push(...poles.map(kit));
  return items.join("") || "<li>the standard van kit</li>";
}

function showWorkOrder(f, scroll) {
  S.workorder = f.fault_id;
  const seg = S.road.segments.find((s) => s.id === f.segment);
  const ev = Object.entries(f.evidence || {});
  const where = f.span
    ? `<dt>Span</dt><dd>between ${esc(f.span[0])} and ${esc(f.span[1])}:<ul class="plain">
        <li>${poleLine(f.span[0])}</li><li>${poleLine(f.span[1])}</li></ul></dd>`
    : f.pole ? `<dt>Pole</dt><dd>${poleLine(f.pole)}</dd>` : "";
  const equipment = f.equipment ? `<dt>Equipment</dt><dd><strong>${esc(f.equipment)}</strong> ${esc(equipmentWords(f))}</dd>` : "";
  const box = $("workorder");
  box.innerHTML = `
    <div class="wo-head"><h2 id="wo-title">Work order ${esc(f.fault_id)}</h2>
      <span class="badge ${esc(f.severity)}">${esc(f.severity)}</span> <span class="badge">${esc(f.state)}</span></div>
    <p class="wo-what"><strong>${esc(f.type.replace(/_/g, " "))}</strong> — ${esc(f.summary)}</p>
    <h3>Where</h3>
    <dl class="facts">
      <dt>Road</dt><dd>${esc(`${S.road.local_name} ${S.road.name}`)}</dd>
      <dt>Segment</dt><dd>${esc(f.segment || "—")}${seg ? ` · ${esc(seg.name)}` : ""}</dd>
      <dt>Side</dt><dd>${f.side ? `${sideWord(f.side)} side` : "—"}</dd>
      <dt>Chainage</dt><dd>${f.chainage_m != null ? esc(chainage(f.chainage_m)) : "—"}</dd>
      ${where}${equipment}
      <dt>GPS</dt><dd>${geoLink(f.lat, f.lon, f.fault_id)}</dd>
      <dt>Feeder</dt><dd>${esc(f.feeder || "—")}</dd>
    </dl>
    <h3>What failed — the evidence</h3>
    <dl class="facts evidence">${ev.length ? ev.map(([k, v]) => `<dt>${esc(k.replace(/_(ts|ms)$/, "").replace(/_/g, " "))}</dt>
      <dd>${esc(evidenceText(k, v))}</dd>`).join("") : "<dt>—</dt><dd>none recorded</dd>"}</dl>
    <h3>Bring</h3><ul class="bring">${bring(f)}</ul>
    <h3>Timeline (road time)</h3>${timeline(f)}
    ${(f.notes || []).length ? `<h3>Notes</h3><ul class="plain">${f.notes.map((n) => `<li>${esc(n.actor)}:
      ${esc(n.note)}</li>`).join("")}</ul>` : ""}
    <div class="wo-actions">
      ${may("faults") ? `<input id="wo-note" type="text" placeholder="note for the log (optional)" aria-label="note">
        ${f.state === "open" ? `<button type="button" id="wo-ack" class="big-btn">Acknowledge</button>` : ""}
        ${f.state !== "resolved" ? `<button type="button" id="wo-resolve" class="big-btn">Resolve</button>` : ""}` : ""}
      <button type="button" id="wo-print" class="ghost">Print</button>
      <button type="button" id="wo-close" class="ghost">Close</button>
      <p id="wo-msg" class="muted" role="status"></p>
    </div>`;
  box.hidden = false;
  box.dataset.fault = f.fault_id;
  const act = (name) => async () => {
    try { await faultAction(f, name, $("wo-note").value); $("wo-msg").textContent = `${name === "ack" ? "acknowledged" : "resolved"}`; }
    catch (err) { $("wo-msg").textContent = err.message; }
  };
  if ($("wo-ack")) $("wo-ack").addEventListener("click", act("ack"));
  if ($("wo-resolve")) $("wo-resolve").addEventListener("click", act("resolve"));
  $("wo-print").addEventListener("click", () => window.print());
  $("wo-close").addEventListener("click", () => { box.hidden = true; S.workorder = null; });
  if (scroll) box.scrollIntoView({ block: "start" });
}
function evidenceText(key, v) {
  if (Array.isArray(v)) return v.length ? v.join(", ") : "none";
  if (typeof v === "number" && /_(ts|ms)$/.test(key) && v > 1e11) return `${stamp(v)} road time`;
  if (v && typeof v === "object") return Object.entries(v).map(([k, x]) => `${k} ${x}`).join(", ");
  return String(v);
}
function chainage(m) { const w = Math.floor(m); return `K${Math.floor(w / 1000)}+${String(w % 1000).padStart(3, "0")}`; }
