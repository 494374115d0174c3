// Energy of the night under way: totals per segment and the night's curve per segment.
"use strict";

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
    ${e.segments.map((s) => `<tr data-segment="${esc(s.segment)}" data-kwh="${s.energy_kwh.toFixed(3)}"><td>${esc(s.segment)}</td><td>${s.energy_kwh.toFixed(1)}</td><td>${s.savings_pct.toFixed(1)} %</td><td>${s.violations}</td></tr>`).join("")}
    </tbody></table>`;
}

// The night so far (road time, from noon), per segment: energy used, accumulated from the
// poles' meters in InfluxDB.
const SEG_COLOURS = ["#ffd84d", "#4ea1ff", "#34d399", "#f472b6", "#f59e0b", "#a78bfa"];
async function loadEnergyChart() {
  await loadClock();
  // 5-minute buckets: a pole that goes dark inside its first bucket is counted for all of it
  const end = roadNow(), start = noonBefore(end), every = 300;
  const segs = S.road.segments;
  const all = await Promise.all(segs.map((s) => api("GET",
    `/api/v1/segments/${encodeURIComponent(s.id)}/readings?road=${encodeURIComponent(S.road.id)}&start_ms=${start}&end_ms=${end}&every_s=${every}`)));
  // a bucket counts for the part of it the night has lived (the one under way has only begun)
  const lived = (t, ev) => Math.max(0, Math.min(t + ev * 1000, end) - Math.max(t, start)) / 1000;
  const lines = segs.map((s, i) => {
    const ev = all[i].every_s || every;  // a long night may come back in coarser buckets
    // each pole's meter (energy_wh, cumulative) from one bucket to the next: a pole that went dark
    // adds nothing, where its last mean power would go on counting; its first bucket, which has no
    // reading before it, counts its mean power for the time lived
    const byPole = new Map();
    for (const r of all[i].readings) (byPole.get(r.pole) || byPole.set(r.pole, []).get(r.pole)).push(r);
    const byT = new Map();
    for (const rows of byPole.values()) {
      rows.sort((a, b) => a.time - b.time);
      let last = null;
      for (const r of rows) {
        let wh = 0;
        if (last != null && r.energy_wh != null) wh = Math.max(0, r.energy_wh - last);
        else if (last == null && r.power_w != null) wh = r.power_w * lived(r.time, ev) / 3600;
        if (r.energy_wh != null) last = r.energy_wh;
        byT.set(r.time, (byT.get(r.time) || 0) + wh);
      }
    }
    const buckets = [...byT.entries()].sort((a, b) => a[0] - b[0]);
    let kwh = 0;
    const pts = buckets.map(([t, wh]) => { kwh += wh / 1000; return [Math.min(t + ev * 1000, end), kwh]; });
    return { seg: s.id, pts, kwh, t0: buckets.length ? buckets[0][0] : end };
  });
  const chart = $("energy-chart");
  chart.replaceChildren();
  // from the night's first reading (not from noon, when the lamps are off and nothing is drawn)
  const first = Math.min(...lines.filter((l) => l.pts.length).map((l) => l.t0), end);
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
      points: [[l.t0, 0], ...l.pts].map(([t, v]) => `${px(t).toFixed(1)},${py(v).toFixed(1)}`).join(" ") }, chart);
    pl.style.stroke = SEG_COLOURS[i % SEG_COLOURS.length];
  });
  chart.dataset.points = String(n);
  $("energy-legend").innerHTML = `kWh tonight, road time: ` + lines.map((l, i) =>
    `<span class="seg-key" data-segment="${esc(l.seg)}" data-kwh="${l.kwh.toFixed(3)}"><i class="swatch s${i % SEG_COLOURS.length}"></i>${esc(l.seg)} ${l.kwh.toFixed(1)}</span>`).join(" ");
}
