// The road dashboard (plain JavaScript, no build step, no network beyond this API): shared state,
// the API client, sign-in, road time and the SVG helper.
// Loaded first; the page's other scripts (road, pole, faults, energy, app) use what is here.
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


function el(name, attrs, parent) {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (parent) parent.appendChild(e);
  return e;
}
