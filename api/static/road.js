// The road drawing: poles by state, each pole's answer to a command, segment and road dimming.
"use strict";

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
  const us = poles.map(along), lo = Math.min(...us, 0), hi = Math.max(...us, road.length_m || 0);
  const x = (u) => PAD + (u - lo) / ((hi - lo) || 1) * (W - 2 * PAD);
  return { x, toX: (p) => x(along(p)) };
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
    el("title", {}, el("rect", { class: "cabinet", x: x - 6, y: y - 6, width: 12, height: 12, rx: 2,
      "data-cabinet": c.id }, svg)).textContent = `${c.id} · ${c.name}`;
    const t = el("text", { class: "cab-label", x: x + 10, y: y + 4 }, svg);
    t.textContent = c.id;
  }
  const cmds = el("g", { id: "cmd-overlay" });
  for (const p of poles) {
    const north = p.side === "N" || p.side === "E";
    const x = g.toX(p), y = ROAD_Y + (north ? -SIDE_PX : SIDE_PX);
    S.xy.set(p.id, [x, y]);
    // a finger is wider than a mark: a larger, invisible target around each pole
    const hit = el("circle", { class: "hit", r: 14, cx: x, cy: y }, svg);
    hit.addEventListener("click", () => selectPole(p.id));
    const c = el("circle", { class: "pole", r: 7, cx: x, cy: y, "data-pole": p.id }, svg);
    el("title", {}, c).textContent = p.id;
    c.addEventListener("click", () => selectPole(p.id));
    const n = Number(p.id.replace(/\D/g, ""));
    if (n % 5 === 0 || n === 1) {
      const t = el("text", { class: "pole-num", x, y: north ? y - 14 : y + 24, "text-anchor": "middle" }, svg);
      t.textContent = p.id.replace(/^\D+-?0*/, "");
    }
  }
  svg.appendChild(cmds);
  svg.appendChild(el("g", { id: "overlay" }));
  svg.appendChild(el("g", { id: "cabinet-overlay" }));
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

function scrollToPole(id) {
  const box = document.querySelector(".road-scroll");
  if (!S.xy.has(id) || box.scrollWidth <= box.clientWidth) return;
  const [x] = S.xy.get(id);
  box.scrollLeft = Math.max(0, x / W * box.scrollWidth - box.clientWidth / 2);
}

// ---------------------------------------------------------------- commands on the road
// Each pole of a command is ringed on the road while it is pending, then acked, failed or
// expired; the ring goes a few seconds after the pole's answer.
function markCommand(pole, status, cmdId) {
  const ov = $("cmd-overlay");
  if (!ov || !S.xy.has(pole)) return;
  let ring = S.cmdMarks.get(pole);
  if (ring && ring.dataset.cmdId !== cmdId) { clearTimeout(ring.timer); ring.remove(); ring = null; }
  if (!ring) {
    const [x, y] = S.xy.get(pole);
    ring = el("circle", { cx: x, cy: y, r: 11 }, ov);
    ring.dataset.cmdId = cmdId;
    S.cmdMarks.set(pole, ring);
  }
  ring.setAttribute("class", `cmd ${status}`);
  ring.setAttribute("data-cmd", status);
  if (status !== "pending") {
    clearTimeout(ring.timer);
    ring.timer = setTimeout(() => { ring.remove(); S.cmdMarks.delete(pole); }, 8000);
  }
}

async function followCommands(ids, report) {
  const deadline = Date.now() + 60000;
  let b;
  while (Date.now() < deadline) {
    b = await api("GET", `/api/v1/commands?ids=${encodeURIComponent(ids.join(","))}`);
    for (const c of b.commands) for (const [pole, st] of Object.entries(c.poles)) markCommand(pole, st.status, c.cmd_id);
    const sum = b.summary;
    report(`${sum.acked} acked, ${sum.pending} pending, ${sum.failed} failed, ${sum.expired} expired`, b);
    if (b.done) break;
    await new Promise((r) => setTimeout(r, 400));
  }
  if (S.selected) loadPoleHistory(S.selected).catch(() => {});
  return b;
}

// What was asked and what each pole applied: the controller may hold a level above the one
// requested (the segment's floor), and the operator must see that.
function commandLines(b, requested) {
  return b.commands.flatMap((c) => Object.entries(c.poles).map(([pole, st]) => {
    const applied = st.dim != null ? `${Math.round(st.dim)} %` : "—";
    const differs = st.status === "acked" && requested != null && st.dim != null && Math.abs(st.dim - requested) >= 0.5;
    const until = c.expires_ms ? ` · override until ${hhmm(c.expires_ms)} road time` : "";
    return `<li class="cmd-row ${esc(st.status)}" data-pole="${esc(pole)}"><strong>${esc(pole)}</strong>
      <span class="status ${esc(st.status)}">${esc(st.status)}</span>
      asked ${requested != null ? `${requested} %` : "—"}, applied ${applied}${until}
      ${differs ? `<span class="warn-text">the pole runs at ${applied}, not ${requested} %: the controller holds it
        (${esc(S.poles.get(pole)?.reason || "its rule")})</span>` : ""}
      ${st.error ? `<span class="warn-text">${esc(st.error)}</span>` : ""}</li>`;
  })).join("");
}

// ---------------------------------------------------------------- segment and road
$("seg-dim").addEventListener("click", async () => {
  const seg = $("seg-select").value, level = Number($("seg-level").value);
  try {
    const r = await api("POST", `/api/v1/segments/${encodeURIComponent(seg)}/dim`, { level });
    followCommands(r.command_ids, (m, b) => {
      const held = b.commands.filter((c) => Object.values(c.poles).some((s) => s.status === "acked" && s.dim != null
        && Math.abs(s.dim - level) >= 0.5)).length;
      $("control-msg").textContent = `${seg} → ${level} %: ${m}${held ? `; ${held} poles held at another level by the controller` : ""}`;
    }).catch((err) => { $("control-msg").textContent = err.message; });
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
    const r = await api("POST", `/api/v1/roads/${encodeURIComponent(S.road.id)}/dim`, { level, confirm: true });
    followCommands(r.command_ids, (m) => { $("control-msg").textContent = `road → ${level} %: ${m}`; })
      .catch((err) => { $("control-msg").textContent = err.message; });
  } catch (err) { $("control-msg").textContent = err.message; }
});
