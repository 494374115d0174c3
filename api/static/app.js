// The live stream, the periodic refreshes and the start of the page: loaded last.
"use strict";

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
    loadCabinets().catch(() => {});
    if (S.selected) loadEquipment(S.selected).catch(() => {});
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
  loadCabinets().catch(() => {});
  loadEnergy().catch(() => {});
  loadEnergyChart().catch(() => {});
  stream();
  for (const t of S.timers) clearInterval(t);
  S.timers = [
    setInterval(tick, 1000),
    setInterval(() => { loadClock().catch(() => {}); }, 5000),
    setInterval(() => { loadPoles().catch(() => {}); loadFaults().catch(() => {}); loadCabinets().catch(() => {}); }, 30000),
    setInterval(() => { loadEnergy().catch(() => {}); loadEnergyChart().catch(() => {}); }, 60000),
    setInterval(() => { if (S.selected) loadChart(S.selected).catch(() => {}); }, 60000),
    setInterval(() => { if (S.selected) loadEquipment(S.selected).catch(() => {}); }, 10000),
  ];
}

if (S.token) start().catch((err) => signOut(err.message)); else $("login").showModal();
