// One pole: its facts, its last 24 h of road time, the slider, identify, and who did what on it.
"use strict";

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
  loadEquipment(id).catch(() => {});
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
    ["Faults", p.open_faults.length ? p.open_faults.map(esc).join(", ") : "none"],
    ["Unannounced restarts", p.restarts ? `${p.restarts}` : "none"]];
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
  chart.replaceChildren();
  delete chart.dataset.points;
  $("chart-note").textContent = "last 24 h of road time · loading…";
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
  const rows = data.entries.filter((e) => mine.has(e.target) || e.target.startsWith(`pole ${id} port `)
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
