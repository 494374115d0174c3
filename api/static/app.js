// The road dashboard: plain JavaScript, no build step, no network beyond this API.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const W = 1400, H = 260, PAD = 40, ROAD_Y = 130, SIDE_PX = 34;
const $ = (id) => document.getElementById(id);
const S = { token: sessionStorage.getItem("sl_token") || "", road: null, poles: new Map(), xy: new Map(),
            selected: null, faults: [], role: "", permissions: [], live: null };

// ---------------------------------------------------------------- API
async function api(method, path, body) {
  const r = await fetch(path, { method, headers: { Authorization: `Bearer ${S.token}`,
    "Content-Type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
  if (r.status === 401) { signOut("Your token was refused; sign in again."); throw new Error("unauthorized"); }
  const data = r.status === 204 ? null : await r.json().catch(() => null);
  if (!r.ok) throw new Error((data && data.detail) || `${r.status} ${r.statusText}`);
  return data;
}
const may = (p) => S.permissions.includes(p);

// ---------------------------------------------------------------- sign-in
function signOut(msg) {
  sessionStorage.removeItem("sl_token"); S.token = "";
  if (S.live) S.live.abort();
  $("login-msg").textContent = msg || "";
  if (!$("login").open) $("login").showModal();
}
$("login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  S.token = $("token").value.trim();
  try { await start(); sessionStorage.setItem("sl_token", S.token); $("login").close(); }
  catch (err) { $("login-msg").textContent = err.message; }
});
$("logout").addEventListener("click", () => signOut(""));

// ---------------------------------------------------------------- geometry
// Along the road: true distances from the registry's lat/lon. Across: the side of each pole,
// exaggerated so that both sides of a 30 m road stay apart on a 3 km drawing.
function project(road, poles) {
  const lat0 = road.lat * Math.PI / 180, R = 6371000;
  const m = (p) => [(p.lon - road.lon) * Math.PI / 180 * R * Math.cos(lat0), (p.lat - road.lat) * Math.PI / 180 * R];
  const a = m(poles[0]), b = m(poles[poles.length - 1]);
  const len = Math.hypot(b[0] - a[0], b[1] - a[1]) || 1;
  const ux = (b[0] - a[0]) / len, uy = (b[1] - a[1]) / len;
  const along = (p) => { const q = m(p); return (q[0] - a[0]) * ux + (q[1] - a[1]) * uy; };
  const across = (p) => { const q = m(p); return -(q[0] - a[0]) * uy + (q[1] - a[1]) * ux; };
  const us = poles.map(along), lo = Math.min(...us, 0), hi = Math.max(...us, road.length_m || 0);
  const x = (u) => PAD + (u - lo) / ((hi - lo) || 1) * (W - 2 * PAD);
  return { x, along, across, toX: (p) => x(along(p)) };
}

function el(name, attrs, parent) {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (parent) parent.appendChild(e);
  return e;
}

function levelColour(p) {
  switch (p.state) {
    case "fault": return "var(--fault)";
    case "off": return "var(--off)";
    case "offline": return "transparent";
    case "lit": return "var(--lit)";
    default: { // dimmed: from deep amber (low) towards yellow (high)
      const t = Math.max(0, Math.min(1, (p.level || 0) / 100));
      const r = 150 + Math.round(105 * t), g = 80 + Math.round(136 * t), bl = 20 + Math.round(57 * t);
      return `rgb(${r},${g},${bl})`;
    }
  }
}

function drawRoad(road, poles) {
  const svg = $("road");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.replaceChildren();
  const g = project(road, poles);
  el("rect", { class: "asphalt", x: PAD - 10, y: ROAD_Y - SIDE_PX + 8, width: W - 2 * PAD + 20, height: 2 * SIDE_PX - 16, rx: 6 }, svg);
  el("line", { class: "centre", x1: PAD, x2: W - PAD, y1: ROAD_Y, y2: ROAD_Y }, svg);
  for (const s of road.segments) {
    const x0 = g.x(s.start_m), x1 = g.x(s.end_m);
    el("line", { class: "seg-line", x1: x0, x2: x0, y1: 30, y2: H - 30 }, svg);
    const t = el("text", { class: "seg-label", x: (x0 + x1) / 2, y: 26, "text-anchor": "middle" }, svg);
    t.textContent = s.id;
    const sub = el("text", { class: "seg-sub", x: (x0 + x1) / 2, y: 42, "text-anchor": "middle" }, svg);
    sub.textContent = `${s.from_name.split(" ")[0]} → ${s.to_name.split(" ")[0]} · ${s.poles} poles`;
  }
  el("line", { class: "seg-line", x1: g.x(road.length_m), x2: g.x(road.length_m), y1: 30, y2: H - 30 }, svg);
  for (let km = 0; km <= road.length_m; km += 500) {
    const t = el("text", { class: "km", x: g.x(km), y: H - 12, "text-anchor": "middle" }, svg);
    t.textContent = `K${Math.floor(km / 1000)}+${String(km % 1000).padStart(3, "0")}`;
  }
  for (const c of road.cabinets) {
    const x = g.x(c.chainage_m), y = ROAD_Y + SIDE_PX + 36;
    el("rect", { class: "cabinet", x: x - 6, y: y - 6, width: 12, height: 12, rx: 2 }, svg);
    const t = el("text", { class: "cab-label", x: x + 10, y: y + 4 }, svg);
    t.textContent = c.id;
  }
  const overlay = el("g", { id: "overlay" });
  for (const p of poles) {
    const north = p.side === "N" || p.side === "E";
    const x = g.toX(p), y = ROAD_Y + (north ? -SIDE_PX : SIDE_PX);
    S.xy.set(p.id, [x, y]);
    const c = el("circle", { class: "pole", r: 7, cx: x, cy: y, "data-pole": p.id }, svg);
    const title = el("title", {}, c);
    title.textContent = p.id;
    c.addEventListener("click", () => selectPole(p.id));
    const n = Number(p.id.replace(/\D/g, ""));
    if (n % 5 === 0 || n === 1) {
      const t = el("text", { class: "pole-num", x, y: north ? y - 12 : y + 20, "text-anchor": "middle" }, svg);
      t.textContent = p.id.replace(/^\D+-?0*/, "");
    }
  }
  svg.appendChild(overlay);
}

function paintPole(p) {
  const c = document.querySelector(`circle.pole[data-pole="${p.id}"]`);
  if (!c) return;
  c.setAttribute("class", `pole ${p.state}${S.selected === p.id ? " selected" : ""}`);
  c.setAttribute("data-state", p.state);
  c.style.fill = levelColour(p);
  c.firstChild.textContent = `${p.id} · ${p.state}${p.level != null ? ` ${Math.round(p.level)} %` : ""} · ${p.chainage} ${p.side}`;
}

function paintCounts() {
  const counts = { lit: 0, dimmed: 0, off: 0, fault: 0, offline: 0 };
  for (const p of S.poles.values()) counts[p.state] = (counts[p.state] || 0) + 1;
  $("counts").innerHTML = Object.entries(counts)
    .map(([k, v]) => `<span><i class="dot d-${k}"></i>${v} ${k}</span>`).join("");
  $("pole-count").textContent = `${S.poles.size} poles`;
}

// ---------------------------------------------------------------- pole panel
function selectPole(id) {
  const prev = S.selected;
  S.selected = id;
  if (prev !== id) $("pole-msg").textContent = "";
  if (prev && S.poles.has(prev)) paintPole(S.poles.get(prev));
  paintPole(S.poles.get(id));
  showPole();
  loadChart(id);
}

function showPole() {
  const p = S.poles.get(S.selected);
  if (!p) return;
  $("pole-hint").hidden = true; $("pole-body").hidden = false;
  $("pole-id").textContent = p.id;
  const ago = p.last_seen_ms ? `${Math.max(0, Math.round((platformNow() - p.last_seen_ms) / 1000))} s ago` : "never";
  const rows = [["State", `${p.state}${p.level != null ? ` · ${Math.round(p.level)} %` : ""}`], ["Set by", p.reason || "—"],
    ["Where", `${p.segment}, ${p.side === "N" ? "north" : p.side === "S" ? "south" : p.side} side, ${p.chainage}`],
    ["Feeder", `${p.feeder} (#${p.feeder_position} from ${p.cabinet})`], ["Power", p.power_w != null ? `${p.power_w} W of ${p.rated_power_w} W` : "—"],
    ["Last report", ago], ["Faults", p.open_faults.length ? p.open_faults.join(", ") : "none"],
    ["Unannounced restarts", p.restarts ? `${p.restarts}` : "none"]];
  $("pole-facts").innerHTML = rows.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join("");
  if (document.activeElement !== $("level")) {
    $("level").value = p.level != null ? Math.round(p.level) : 0;
    $("level-out").textContent = `${$("level").value} %`;
  }
  $("level").disabled = !may("control");
  $("identify").disabled = !may("identify");
}

async function loadChart(id) {
  const chart = $("chart");
  chart.replaceChildren();
  let data;
  try { data = await api("GET", `/api/v1/poles/${id}/readings?every_s=900`); } catch { return; }
  if (S.selected !== id || !data.readings.length) return;
  const rs = data.readings, t0 = data.start_ms, t1 = data.end_ms;
  const maxP = Math.max(1, ...rs.map((r) => r.power_w || 0));
  const px = (t) => (t - t0) / (t1 - t0) * 320;
  for (const y of [10, 55, 100]) el("line", { class: "grid", x1: 0, x2: 320, y1: y, y2: y }, chart);
  const line = (key, scale, cls) => el("polyline", { class: cls,
    points: rs.map((r) => `${px(r.time).toFixed(1)},${(100 - (r[key] || 0) / scale * 90).toFixed(1)}`).join(" ") }, chart);
  line("power_w", maxP, "power");
  line("dim", 100, "dim");
}

$("level").addEventListener("input", () => { $("level-out").textContent = `${$("level").value} %`; });
$("level").addEventListener("change", async () => {
  const id = S.selected, level = Number($("level").value);
  $("pole-msg").textContent = `Dimming ${id} to ${level} %…`;
  try {
    const r = await api("POST", `/api/v1/poles/${id}/dim`, { level, ramp_ms: 0 });
    $("pole-msg").textContent = `Sent (${r.command_ids.join(", ")}); waiting for the pole's ack…`;
    followCommands(r.command_ids, (msg) => { $("pole-msg").textContent = msg; });
  } catch (err) { $("pole-msg").textContent = err.message; }
});
$("identify").addEventListener("click", async () => {
  try {
    const r = await api("POST", `/api/v1/poles/${S.selected}/identify`, { seconds: 30 });
    $("pole-msg").textContent = `${S.selected} is blinking for 30 s (${r.command_ids[0]})`;
  } catch (err) { $("pole-msg").textContent = err.message; }
});

async function followCommands(ids, report) {
  const deadline = Date.now() + 30000;
  while (Date.now() < deadline) {
    const b = await api("GET", `/api/v1/commands?ids=${encodeURIComponent(ids.join(","))}`);
    const sum = b.summary;
    report(`${sum.acked} acked, ${sum.pending} pending, ${sum.failed} failed, ${sum.expired} expired`);
    if (b.done) return;
    await new Promise((r) => setTimeout(r, 400));
  }
}

// ---------------------------------------------------------------- segment and road
$("seg-dim").addEventListener("click", async () => {
  const seg = $("seg-select").value, level = Number($("seg-level").value);
  try {
    const r = await api("POST", `/api/v1/segments/${seg}/dim`, { level });
    followCommands(r.command_ids, (m) => { $("control-msg").textContent = `${seg} → ${level} %: ${m}`; });
  } catch (err) { $("control-msg").textContent = err.message; }
});
$("road-dim").addEventListener("click", () => {
  $("road-dim-confirm").hidden = false;
  $("road-dim-confirm").textContent = `Confirm: dim all ${S.poles.size} poles to ${$("seg-level").value} %`;
  setTimeout(() => { $("road-dim-confirm").hidden = true; }, 8000);
});
$("road-dim-confirm").addEventListener("click", async () => {
  $("road-dim-confirm").hidden = true;
  const level = Number($("seg-level").value);
  try {
    const r = await api("POST", `/api/v1/roads/${S.road.id}/dim`, { level, confirm: true });
    followCommands(r.command_ids, (m) => { $("control-msg").textContent = `road → ${level} %: ${m}`; });
  } catch (err) { $("control-msg").textContent = err.message; }
});

// ---------------------------------------------------------------- faults
const SEV = { critical: 0, major: 1, minor: 2 };
function ageText(ms) {
  const s = Math.max(0, (platformNow() - ms) / 1000);
  return s < 90 ? `${Math.round(s)} s ago` : s < 5400 ? `${Math.round(s / 60)} min ago` : `${(s / 3600).toFixed(1)} h ago`;
}
function esc(s) { return String(s ?? "").replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c])); }

async function loadFaults() {
  const data = await api("GET", "/api/v1/faults?open=true");
  S.faults = data.faults.sort((a, b) => (SEV[a.severity] - SEV[b.severity]) || (b.first_seen_ts - a.first_seen_ts));
  $("fault-count").textContent = S.faults.length;
  const list = $("faults");
  if (!S.faults.length) { list.innerHTML = `<li class="empty">No open faults.</li>`; drawFaultMarks(); return; }
  list.innerHTML = S.faults.map((f) => `
    <li class="fault-card ${f.state}" data-fault="${esc(f.fault_id)}">
      <div class="what"><span class="badge ${esc(f.severity)}">${esc(f.severity)}</span>
        <strong>${esc(f.type.replace(/_/g, " "))}</strong>
        <span class="muted">${esc(f.fault_id)} · ${esc(f.state)} · ${ageText(f.first_seen_ts)}</span></div>
      <div class="where">${esc(f.location)}</div>
      <div class="muted">${esc(f.summary)}</div>
      ${f.acknowledged_by ? `<div class="muted">taken by ${esc(f.acknowledged_by)}</div>` : ""}
      ${may("faults") ? `<div class="actions">
        ${f.state === "open" ? `<button type="button" data-act="ack">Acknowledge</button>` : ""}
        <button type="button" data-act="resolve">Resolve</button></div>` : ""}
    </li>`).join("");
  drawFaultMarks();
}
$("faults").addEventListener("click", async (e) => {
  const li = e.target.closest(".fault-card");
  if (!li) return;
  const f = S.faults.find((x) => x.fault_id === li.dataset.fault);
  const act = e.target.dataset.act;
  if (act) {
    try { await api("POST", `/api/v1/faults/${f.fault_id}/${act}`, { note: "" }); await loadFaults(); await loadPoles(); }
    catch (err) { alertMsg(err.message); }
    return;
  }
  document.querySelectorAll(".fault-card.active").forEach((x) => x.classList.remove("active"));
  li.classList.add("active");
  const target = f.pole || (f.span && f.span[1]);
  if (target && S.poles.has(target)) {
    selectPole(target);
    const [x] = S.xy.get(target);
    const box = document.querySelector(".road-scroll");
    box.scrollLeft = Math.max(0, x / W * box.scrollWidth - box.clientWidth / 2);
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
  }
}

// ---------------------------------------------------------------- energy
async function loadEnergy() {
  const e = await api("GET", `/api/v1/energy?road=${encodeURIComponent(S.road.id)}`);
  $("energy").innerHTML = `
    <div class="card"><div class="muted">Used</div><div class="big">${e.energy_kwh.toFixed(1)} kWh</div>
      <div class="muted">of ${e.baseline_kwh.toFixed(1)} at full power</div></div>
    <div class="card"><div class="muted">Saved</div><div class="big">${e.savings_pct.toFixed(1)} %</div>
      <div class="muted">${e.savings_kwh.toFixed(1)} kWh · ${e.violations === 0 ? "no lighting-class violation" : `${e.violations} violations`}</div></div>
    <table><thead><tr><th>Segment</th><th>kWh</th><th>saved</th><th>violations</th></tr></thead><tbody>
    ${e.segments.map((s) => `<tr><td>${esc(s.segment)}</td><td>${s.energy_kwh.toFixed(1)}</td><td>${s.savings_pct.toFixed(1)} %</td><td>${s.violations}</td></tr>`).join("")}
    </tbody></table>`;
}

// ---------------------------------------------------------------- data and live stream
function platformNow() { return Date.now() + (S.skew || 0); }

async function loadPoles() {
  const data = await api("GET", `/api/v1/poles?road=${encodeURIComponent(S.road.id)}`);
  // a simulated road runs on its own clock: "5 min ago" is measured on the platform's time
  if (data.now_ms) S.skew = data.now_ms - Date.now();
  for (const p of data.poles) { S.poles.set(p.id, p); paintPole(p); }
  paintCounts();
  if (S.selected) showPole();
}

function onEvent(kind, data) {
  if (kind === "twin" && S.poles.has(data.pole)) {
    const p = Object.assign(S.poles.get(data.pole), data);
    paintPole(p); paintCounts();
    if (S.selected === p.id) showPole();
  } else if (kind === "alert") {
    loadFaults().then(loadPoles).catch(() => {});
  }
}

async function stream() {
  for (;;) {
    if (!S.token) return;
    S.live = new AbortController();
    try {
      const r = await fetch("/api/v1/stream", { headers: { Authorization: `Bearer ${S.token}` }, signal: S.live.signal });
      if (!r.ok) throw new Error(String(r.status));
      $("live").className = "live on";
      const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value.replace(/\r\n/g, "\n");
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const chunk = buf.slice(0, i); buf = buf.slice(i + 2);
          let kind = "message", data = "";
          for (const line of chunk.split("\n")) {
            if (line.startsWith("event:")) kind = line.slice(6).trim();
            else if (line.startsWith("data:")) data += line.slice(5).trim();
          }
          if (data) { try { onEvent(kind, JSON.parse(data)); } catch { /* a malformed event is skipped */ } }
        }
      }
    } catch { /* reconnect below */ }
    $("live").className = "live off";
    if (!S.token) return;
    await new Promise((res) => setTimeout(res, 2000));
    loadPoles().catch(() => {});
  }
}

async function start() {
  const me = await api("GET", "/api/v1/whoami");
  S.role = me.role; S.permissions = me.permissions;
  $("who").textContent = `${me.name} (${me.role})`;
  const roads = await api("GET", "/api/v1/roads");
  S.road = await api("GET", `/api/v1/roads/${encodeURIComponent(roads[0].id)}`);
  $("road-name").textContent = `${S.road.local_name} ${S.road.name}`.trim();
  $("emergency").hidden = !S.road.emergency;
  const poles = await api("GET", `/api/v1/poles?road=${encodeURIComponent(S.road.id)}`);
  drawRoad(S.road, poles.poles);
  S.poles.clear();
  for (const p of poles.poles) { S.poles.set(p.id, p); paintPole(p); }
  paintCounts();
  $("seg-select").innerHTML = S.road.segments.map((s) => `<option value="${esc(s.id)}">${esc(s.id)} · ${esc(s.name)}</option>`).join("");
  for (const id of ["seg-dim", "road-dim", "seg-select", "seg-level"]) $(id).disabled = !may("control");
  await loadFaults();
  loadEnergy().catch(() => {});
  stream();
  setInterval(() => { loadPoles().catch(() => {}); }, 30000);
  setInterval(() => { loadEnergy().catch(() => {}); }, 300000);
}

if (S.token) start().catch((err) => signOut(err.message)); else $("login").showModal();
