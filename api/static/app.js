// The road dashboard: plain JavaScript, no build step, no network beyond this API.
// Every age, range and "now" on this page is road time (GET /api/v1/clock): a simulated road runs
// on its own clock, days away from the browser's and many times faster.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const W = 1400, H = 260, PAD = 40, ROAD_Y = 130, SIDE_PX = 34;
const DAY_MS = 86400000;
const $ = (id) => document.getElementById(id);
const S = { token: sessionStorage.getItem("sl_token") || "", road: null, poles: new Map(), xy: new Map(),
            selected: null, faults: [], role: "", permissions: [], live: null, timers: [],
            clock: null, cmdMarks: new Map(), workorder: null };

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
function esc(s) { return String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c])); }

// ---------------------------------------------------------------- sign-in
function signOut(msg) {
  sessionStorage.removeItem("sl_token"); S.token = "";
  if (S.live) S.live.abort();
  for (const t of S.timers) clearInterval(t);
  S.timers = [];
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

// ---------------------------------------------------------------- road time
// Sampled from the API every few seconds; in between it runs on at the rate measured between two
// samples (a simulated road at ×120 moves two minutes a second).
async function loadClock() {
  const c = await api("GET", `/api/v1/clock?road=${encodeURIComponent(S.road.id)}`);
  const at = performance.now(), prev = S.clock;
  let rate = c.mode === "devices" ? (prev ? prev.rate : 1) : 1;
  if (prev && c.mode === "devices" && at - prev.at > 500) {
    const measured = (c.now_ms - prev.now_ms) / (at - prev.at);
    if (measured >= 0 && measured < 100000) rate = measured;
  }
  S.clock = { now_ms: c.now_ms, at, rate, mode: c.mode, tz: c.timezone };
  $("clock-mode").hidden = c.mode !== "devices";
  $("clock-mode").textContent = rate > 1.5 ? `simulated ×${Math.round(rate)}` : "simulated";
  $("road-clock").dataset.mode = c.mode;
  paintClock();
}
function roadNow() {
  if (!S.clock) return Date.now();
  return Math.round(S.clock.now_ms + (performance.now() - S.clock.at) * S.clock.rate);
}
function fmt(ms, opts) {
  const tz = (S.road && S.road.timezone) || undefined;
  return new Intl.DateTimeFormat("en-GB", { timeZone: tz, hour12: false, ...opts }).format(new Date(ms));
}
const hhmm = (ms) => fmt(ms, { hour: "2-digit", minute: "2-digit" });
const stamp = (ms) => fmt(ms, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
function paintClock() {
  const now = roadNow();
  $("clock-time").textContent = fmt(now, { weekday: "short", month: "short", day: "numeric", hour: "2-digit",
                                           minute: "2-digit", second: "2-digit" });
  $("clock-time").dateTime = new Date(now).toISOString();
}
// an age that moves on with road time (tick() rewrites every .ago)
const ago = (ms) => `<span class="ago" data-ms="${ms}">${ageText(ms)}</span>`;
function ageText(ms) {
  if (ms == null) return "never";
  const s = Math.max(0, (roadNow() - ms) / 1000);
  return s < 90 ? `${Math.round(s)} s ago` : s < 5400 ? `${Math.round(s / 60)} min ago` : `${(s / 3600).toFixed(1)} h ago`;
}
// the road's local noon before `ms`: the controller's night runs noon to noon
function noonBefore(ms) {
  const parts = Object.fromEntries(new Intl.DateTimeFormat("en-GB", { timeZone: S.road.timezone, hour12: false,
    hour: "2-digit", minute: "2-digit", second: "2-digit" }).formatToParts(new Date(ms)).map((p) => [p.type, p.value]));
  const sinceMidnight = ((Number(parts.hour) % 24) * 3600 + Number(parts.minute) * 60 + Number(parts.second)) * 1000;
  const sinceNoon = (sinceMidnight - 12 * 3600000 + DAY_MS) % DAY_MS;
  return ms - sinceNoon;
}

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

// ---------------------------------------------------------------- pole panel
function selectPole(id) {
  const prev = S.selected;
  S.selected = id;
  if (prev !== id) { $("pole-msg").textContent = ""; $("pole-cmds").replaceChildren(); }
  if (prev && S.poles.has(prev)) paintPole(S.poles.get(prev));
  paintPole(S.poles.get(id));
  showPole();
  loadChart(id).catch(() => {});
  loadPoleHistory(id).catch(() => {});
}

function sideWord(side) { return { N: "north", S: "south", E: "east", W: "west" }[side] || side; }

function showPole() {
  const p = S.poles.get(S.selected);
  if (!p) return;
  $("pole-hint").hidden = true; $("pole-body").hidden = false;
  $("pole-id").textContent = p.id;
  const rows = [["State", `${p.state}${p.level != null ? ` · ${Math.round(p.level)} %` : ""}`], ["Set by", p.reason || "—"],
    ["Where", `${p.segment}, ${sideWord(p.side)} side, ${p.chainage}`],
    ["Feeder", `${p.feeder} (#${p.feeder_position} from ${p.cabinet})`],
    ["Power", p.power_w != null ? `${p.power_w} W of ${p.rated_power_w} W` : "—"],
    ["Last report", p.last_seen_ms != null ? `<span id="pole-seen">${ago(p.last_seen_ms)}</span>` : "never"],
    ["Faults", p.open_faults.length ? p.open_faults.map(esc).join(", ") : "none"]];
  if (S.override && S.override.pole === p.id) rows.splice(2, 0, ["Override", S.override.text]);
  $("pole-facts").innerHTML = rows.map(([k, v]) => `<dt>${k}</dt><dd>${k === "Last report" ? v : esc(v)}</dd>`).join("");
  if (document.activeElement !== $("level")) {
    $("level").value = p.level != null ? Math.round(p.level) : 0;
    $("level-out").textContent = `${$("level").value} %`;
  }
  $("level").disabled = !may("control");
  $("identify").disabled = !may("identify");
}

// The chart covers the last 24 h of ROAD time, whatever the browser's clock says.
async function loadChart(id) {
  const chart = $("chart");
  await loadClock();
  const end = roadNow(), start = end - DAY_MS;
  const data = await api("GET", `/api/v1/poles/${encodeURIComponent(id)}/readings?start_ms=${start}&end_ms=${end}&every_s=900`);
  if (S.selected !== id) return;
  chart.replaceChildren();
  const X0 = 28, X1 = 316, Y0 = 8, Y1 = 108;
  const px = (t) => X0 + (t - start) / (end - start) * (X1 - X0);
  const py = (v, lo, hi) => Y1 - (Math.max(lo, Math.min(hi, v)) - lo) / (hi - lo) * (Y1 - Y0);
  for (const f of [0, 0.5, 1]) el("line", { class: "grid", x1: X0, x2: X1, y1: Y0 + f * (Y1 - Y0), y2: Y0 + f * (Y1 - Y0) }, chart);
  for (const [f, anchor] of [[0, "start"], [0.5, "middle"], [1, "end"]]) {
    el("text", { class: "axis", x: X0 + f * (X1 - X0), y: 124, "text-anchor": anchor }, chart).textContent = hhmm(start + f * DAY_MS);
  }
  el("text", { class: "axis", x: 2, y: Y0 + 4 }, chart).textContent = "100";
  el("text", { class: "axis", x: 2, y: Y1 }, chart).textContent = "0";
  const rs = data.readings.filter((r) => r.time >= start && r.time <= end);
  $("chart-note").textContent = rs.length ? `last 24 h of road time · ${rs.length} readings of 15 min`
    : "last 24 h of road time · no readings yet";
  chart.dataset.points = String(rs.length);
  if (!rs.length) return;
  const rated = S.poles.get(id)?.rated_power_w || Math.max(1, ...rs.map((r) => r.power_w || 0));
  const series = [["voltage_v", 190, 250, "volt"], ["power_w", 0, rated * 1.05, "power"], ["dim", 0, 100, "dim"]];
  for (const [key, lo, hi, cls] of series) {
    const pts = rs.filter((r) => r[key] != null).map((r) => [px(r.time), py(r[key], lo, hi)]);
    if (!pts.length) continue;
    if (pts.length === 1) { el("circle", { class: `pt ${cls}`, cx: pts[0][0], cy: pts[0][1], r: 2 }, chart); continue; }
    el("polyline", { class: cls, points: pts.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(" ") }, chart);
    // a few readings at the end of a 24 h axis are hard to see as a line alone
    if (pts.length <= 12) for (const [x, y] of pts) el("circle", { class: `pt ${cls}`, cx: x, cy: y, r: 1.8 }, chart);
  }
}

// Who did what on this pole: its own commands, and those on its segment or the whole road.
async function loadPoleHistory(id) {
  const p = S.poles.get(id);
  if (!p) return;
  const data = await api("GET", "/api/v1/audit?limit=200");
  if (S.selected !== id) return;
  const mine = new Set([`pole ${id}`, `segment ${p.segment}`, `road ${p.road}`]);
  const rows = data.entries.filter((e) => mine.has(e.target)
    || (e.target.startsWith("poles ") && e.target.slice(6).split(",").includes(id))
    || (e.target.startsWith("fault ") && p.open_faults.includes(e.target.slice(6))));
  $("pole-audit").innerHTML = rows.length ? rows.slice(0, 8).map((e) => `<li><span class="muted">${esc(fmt(e.ts_ms, {
    month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", timeZone: undefined }))}</span>
    <strong>${esc(e.actor)}</strong> (${esc(e.role)}) ${esc(actionText(e))}
    ${e.params && e.params.level != null ? `→ ${esc(e.params.level)} %` : ""}
    ${e.params && e.params.expires_in_s ? ` for ${Math.round(e.params.expires_in_s / 60)} min` : ""}
    <span class="result ${esc(e.result)}">${esc(e.result)}</span></li>`).join("")
    : `<li class="muted">No action on this pole, its segment or the road yet.</li>`;
}

// "dim_pole" on "pole NH-047" reads "dim pole NH-047"
function actionText(e) {
  const words = e.action.replace(/_/g, " "), kind = e.target.split(" ")[0];
  return words.endsWith(` ${kind}`) || words.endsWith(` ${kind.replace(/s$/, "")}`)
    ? `${words.slice(0, words.lastIndexOf(" "))} ${e.target}` : `${words} ${e.target}`;
}

$("level").addEventListener("input", () => { $("level-out").textContent = `${$("level").value} %`; });
$("level").addEventListener("change", async () => {
  const id = S.selected, level = Number($("level").value);
  $("pole-msg").textContent = `Dimming ${id} to ${level} %…`;
  try {
    const r = await api("POST", `/api/v1/poles/${encodeURIComponent(id)}/dim`, { level, ramp_ms: 0 });
    if (r.expires_ms) S.override = { pole: id, text: `${level} % asked, until ${hhmm(r.expires_ms)} road time` };
    showPole();
    $("pole-msg").textContent = `Sent (${r.command_ids.join(", ")}); waiting for the pole's ack…`;
    await followCommands(r.command_ids, (msg, b) => {
      $("pole-msg").textContent = msg;
      $("pole-cmds").innerHTML = commandLines(b, level);
      const c = b.commands[0];
      if (c && c.expires_ms && !(S.override && S.override.pole === id && S.override.cmd === c.cmd_id)) {
        S.override = { pole: id, cmd: c.cmd_id, text: `${level} % asked, until ${hhmm(c.expires_ms)} road time` };
        showPole();
      }
    });
  } catch (err) { $("pole-msg").textContent = err.message; }
});
$("identify").addEventListener("click", async () => {
  try {
    const r = await api("POST", `/api/v1/poles/${encodeURIComponent(S.selected)}/identify`, { seconds: 30 });
    $("pole-msg").textContent = `${S.selected} is blinking for 30 s (${r.command_ids[0]})`;
    followCommands(r.command_ids, () => {}).catch(() => {});
  } catch (err) { $("pole-msg").textContent = err.message; }
});

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
  }
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
      ${where}
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

// ---------------------------------------------------------------- energy
// the controller counts energy by night, noon to noon: after midnight "tonight" began yesterday
function nightDate(ms) {
  return new Intl.DateTimeFormat("en-CA", { timeZone: S.road.timezone, year: "numeric", month: "2-digit",
                                            day: "2-digit" }).format(new Date(ms - DAY_MS / 2));
}
async function loadEnergy() {
  const e = await api("GET", `/api/v1/energy?road=${encodeURIComponent(S.road.id)}&day=${nightDate(roadNow())}`);
  $("energy").dataset.night = e.day;
  $("energy-night").textContent = `· night of ${fmt(Date.parse(`${e.day}T12:00:00Z`), { day: "numeric", month: "short", timeZone: "UTC" })}`;
  $("energy").innerHTML = `
    <div class="card"><div class="muted">Used</div><div class="big">${e.energy_kwh.toFixed(1)} kWh</div>
      <div class="muted">of ${e.baseline_kwh.toFixed(1)} at full power</div></div>
    <div class="card"><div class="muted">Saved</div><div class="big">${e.savings_pct.toFixed(1)} %</div>
      <div class="muted">${e.savings_kwh.toFixed(1)} kWh · ${e.violations === 0 ? "no lighting-class violation" : `${e.violations} violations`}</div></div>
    <table><thead><tr><th>Segment</th><th>kWh</th><th>saved</th><th>violations</th></tr></thead><tbody>
    ${e.segments.map((s) => `<tr><td>${esc(s.segment)}</td><td>${s.energy_kwh.toFixed(1)}</td><td>${s.savings_pct.toFixed(1)} %</td><td>${s.violations}</td></tr>`).join("")}
    </tbody></table>`;
}

// The night so far (road time, from noon), per segment: energy used, accumulated from the
// segment's power readings in InfluxDB.
const SEG_COLOURS = ["#ffd84d", "#4ea1ff", "#34d399", "#f472b6", "#f59e0b", "#a78bfa"];
async function loadEnergyChart() {
  await loadClock();
  const end = roadNow(), start = noonBefore(end), every = 900;
  const segs = S.road.segments;
  const all = await Promise.all(segs.map((s) => api("GET",
    `/api/v1/segments/${encodeURIComponent(s.id)}/readings?road=${encodeURIComponent(S.road.id)}&start_ms=${start}&end_ms=${end}&every_s=${every}`)));
  const lines = segs.map((s, i) => {
    const byT = new Map();
    for (const r of all[i].readings) if (r.power_w != null) byT.set(r.time, (byT.get(r.time) || 0) + r.power_w);
    let kwh = 0;
    const pts = [...byT.entries()].sort((a, b) => a[0] - b[0]).map(([t, w]) => { kwh += w * every / 3600 / 1000; return [t + every * 1000, kwh]; });
    return { seg: s.id, pts, kwh };
  });
  const chart = $("energy-chart");
  chart.replaceChildren();
  // from the night's first reading (not from noon, when the lamps are off and nothing is drawn)
  const first = Math.min(...lines.filter((l) => l.pts.length).map((l) => l.pts[0][0] - every * 1000), end);
  const t0 = Math.max(start, Math.min(first, end - 3600000)), span = Math.max(end - t0, 3600000);
  const top = Math.max(1, ...lines.map((l) => l.kwh)) * 1.1;
  const X0 = 28, X1 = 316, Y0 = 8, Y1 = 108;
  const px = (t) => X0 + Math.max(0, Math.min(1, (t - t0) / span)) * (X1 - X0), py = (v) => Y1 - v / top * (Y1 - Y0);
  for (const f of [0, 0.5, 1]) el("line", { class: "grid", x1: X0, x2: X1, y1: Y0 + f * (Y1 - Y0), y2: Y0 + f * (Y1 - Y0) }, chart);
  el("text", { class: "axis", x: 2, y: Y0 + 4 }, chart).textContent = top.toFixed(0);
  el("text", { class: "axis", x: 2, y: Y1 }, chart).textContent = "0";
  for (const [f, anchor] of [[0, "start"], [1, "end"]]) {
    el("text", { class: "axis", x: X0 + f * (X1 - X0), y: 124, "text-anchor": anchor }, chart).textContent = hhmm(t0 + f * span);
  }
  let n = 0;
  lines.forEach((l, i) => {
    if (!l.pts.length) return;
    n += l.pts.length;
    const pl = el("polyline", { class: "seg-energy", "data-segment": l.seg,
      points: [[l.pts[0][0] - every * 1000, 0], ...l.pts].map(([t, v]) => `${px(t).toFixed(1)},${py(v).toFixed(1)}`).join(" ") }, chart);
    pl.style.stroke = SEG_COLOURS[i % SEG_COLOURS.length];
  });
  chart.dataset.points = String(n);
  $("energy-legend").innerHTML = `kWh tonight, road time: ` + lines.map((l, i) =>
    `<span class="seg-key" data-segment="${esc(l.seg)}"><i class="swatch s${i % SEG_COLOURS.length}"></i>${esc(l.seg)} ${l.kwh.toFixed(1)}</span>`).join(" ");
}

// ---------------------------------------------------------------- data and live stream
async function loadPoles() {
  const data = await api("GET", `/api/v1/poles?road=${encodeURIComponent(S.road.id)}`);
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
  } else if (kind === "command" && data.poles) {
    // only the commands this page follows: the controller's own commands go by all the time
    for (const [pole, st] of Object.entries(data.poles)) {
      const ring = S.cmdMarks.get(pole);
      if (ring && ring.dataset.cmdId === data.cmd_id) markCommand(pole, st.status, data.cmd_id);
    }
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

// ages move on with road time between the data's own refreshes
function tick() {
  paintClock();
  for (const e of document.querySelectorAll(".ago[data-ms]")) e.textContent = ageText(Number(e.dataset.ms));
}

async function start() {
  const me = await api("GET", "/api/v1/whoami");
  S.role = me.role; S.permissions = me.permissions;
  $("who").textContent = `${me.name} (${me.role})`;
  const roads = await api("GET", "/api/v1/roads");
  S.road = await api("GET", `/api/v1/roads/${encodeURIComponent(roads[0].id)}`);
  $("road-name").textContent = `${S.road.local_name} ${S.road.name}`.trim();
  $("emergency").hidden = !S.road.emergency;
  await loadClock();
  const poles = await api("GET", `/api/v1/poles?road=${encodeURIComponent(S.road.id)}`);
  drawRoad(S.road, poles.poles);
  S.poles.clear();
  for (const p of poles.poles) { S.poles.set(p.id, p); paintPole(p); }
  paintCounts();
  $("seg-select").innerHTML = S.road.segments.map((s) => `<option value="${esc(s.id)}">${esc(s.id)} · ${esc(s.name)}</option>`).join("");
  for (const id of ["seg-dim", "road-dim", "seg-select", "seg-level"]) $(id).disabled = !may("control");
  await loadFaults();
  loadEnergy().catch(() => {});
  loadEnergyChart().catch(() => {});
  stream();
  for (const t of S.timers) clearInterval(t);
  S.timers = [
    setInterval(tick, 1000),
    setInterval(() => { loadClock().catch(() => {}); }, 5000),
    setInterval(() => { loadPoles().catch(() => {}); loadFaults().catch(() => {}); }, 30000),
    setInterval(() => { loadEnergy().catch(() => {}); loadEnergyChart().catch(() => {}); }, 60000),
    setInterval(() => { if (S.selected) loadChart(S.selected).catch(() => {}); }, 60000),
  ];
}

if (S.token) start().catch((err) => signOut(err.message)); else $("login").showModal();
