// A multi-function pole's equipment (its ports, their state, a power cycle for a hung unit) and the
// distribution cabinets drawn on the road with a breaker per feeder (protocol 1.1).
"use strict";

const KIND_WORDS = { camera: "camera", small_cell: "small cell", traffic_signal: "traffic signal", sign: "sign",
  display: "display", weather_station: "weather station", emergency_call: "emergency call point" };
const kindWord = (k) => KIND_WORDS[k] || String(k || "").replace(/_/g, " ");

// ---------------------------------------------------------------- a pole's equipment
function portState(q) {
  if (q.on == null) return "not reported";
  if (q.tripped) return "tripped";
  if (!q.on) return "off";
  return q.link === "down" ? "on, link down (hung)" : "on";
}

async function loadEquipment(id) {
  const box = $("pole-equipment");
  const data = await api("GET", `/api/v1/poles/${encodeURIComponent(id)}/equipment`);
  if (S.selected !== id) return;
  if (!data.ports.length) {
    box.innerHTML = `<li class="muted">No switched equipment on this pole (${esc(data.equipment.join(", ") || "lamp only")}).</li>`;
    return;
  }
  const cycle = may("power_cycle");
  box.innerHTML = data.ports.map((q) => {
    const bad = q.fault_id != null || q.tripped || (q.on && q.link === "down");
    return `<li class="port${bad ? " bad" : ""}" data-port="${esc(q.port)}" data-state="${esc(portState(q))}">
      <strong>${esc(q.port)}</strong> ${esc(kindWord(q.kind))}
      <span class="muted">${q.power_w != null ? `${esc(q.power_w)} W of ${esc(q.rated_power_w)} W` : `${esc(q.rated_power_w)} W rated`}</span>
      <span class="port-state">${esc(portState(q))}</span>
      ${q.fault ? `<span class="warn-text">${esc(q.fault)}</span>` : ""}
      ${cycle ? `<button type="button" class="power-cycle${bad ? " warn" : ""}" data-port="${esc(q.port)}">Power-cycle</button>` : ""}
    </li>`;
  }).join("");
}

$("pole-equipment").addEventListener("click", async (e) => {
  const port = e.target.dataset && e.target.dataset.port;
  if (!port || !e.target.classList.contains("power-cycle")) return;
  const id = S.selected;
  e.target.disabled = true;
  $("pole-msg").textContent = `Power-cycling ${port} of ${id}…`;
  try {
    const r = await api("POST", `/api/v1/poles/${encodeURIComponent(id)}/ports/${encodeURIComponent(port)}/power-cycle`,
      { off_s: 10 });
    const b = await followCommands(r.command_ids, (msg) => { $("pole-msg").textContent = `${port} power cycle: ${msg}`; });
    const st = b && b.commands[0] ? Object.values(b.commands[0].poles)[0] : null;
    $("pole-msg").textContent = st && st.status === "acked"
      ? `${port} of ${id} power-cycled (${r.command_ids[0]} acked): off for 10 s, then on again`
      : `${port} power cycle: ${st ? st.status : "no answer"}${st && st.error ? ` (${st.error})` : ""}`;
    $("pole-msg").dataset.powerCycle = st ? st.status : "none";
  } catch (err) { $("pole-msg").textContent = err.message; }
  e.target.disabled = false;
  loadEquipment(id).catch(() => {});
});

// ---------------------------------------------------------------- cabinets and their breakers
// Drawn once under each cabinet of the road drawing: a small box per feeder, green while its
// breaker is closed, red when open, grey when the cabinet has not reported it.
async function loadCabinets() {
  const layer = $("cabinet-overlay");
  if (!layer || !S.road) return;
  const cabs = await api("GET", `/api/v1/cabinets?road=${encodeURIComponent(S.road.id)}`);
  layer.replaceChildren();
  const g = project(S.road, [...S.poles.values()]);
  for (const c of cabs) {
    const x = g.x(c.chainage_m), y = ROAD_Y + SIDE_PX + 56;
    c.feeders.forEach((f, k) => {
      const state = f.breaker || "unknown";
      const b = el("rect", { class: `breaker ${state}`, x: x - 6 + k * 14, y, width: 11, height: 9, rx: 1.5,
        "data-feeder": f.feeder, "data-breaker": state }, layer);
      el("title", {}, b).textContent = `${c.cabinet} · feeder ${f.feeder}: breaker ${state}`
        + (f.current_a != null ? ` · ${f.current_a} A` : "") + (f.energy_wh != null ? ` · meter ${(f.energy_wh / 1000).toFixed(1)} kWh` : "");
    });
    const mark = document.querySelector(`#road rect.cabinet[data-cabinet="${c.cabinet}"]`);
    if (mark) mark.setAttribute("data-online", c.online == null ? "unknown" : String(c.online));
  }
}
