// The central station: a tile per patient, most acute first, coloured by
// the highest priority of its alarms; clinical alarms (from the backend)
// and technical alarms (from the devices) listed apart.
"use strict";
const state = { alarms: new Map(), beds: [], t: 0, ticks: 0 };
const TECH_TEXT = {
  lead_off: "LEADS OFF", sensor_off: "SENSOR OFF", battery_dead: "BATTERY DEAD",
  low_battery: "BATTERY LOW", low_perfusion: "NO PULSE SIGNAL", disconnected: "NO SIGNAL",
  measurement_failed: "NIBP FAILED", occlusion: "OCCLUSION", sensor_expired: "SENSOR EXPIRED",
};
const techText = (t) => TECH_TEXT[t] || t.toUpperCase();
const num = (cls, label, value) =>
  `<div class="num ${cls}"><span class="l">${label}</span><span class="v">${value}</span></div>`;

function tileHtml(b) {
  const bp = b.sbp == null ? "--" : `${MT.fmt(b.sbp)}/${MT.fmt(b.dbp)}`;
  const n = b.news2 == null ? "--" : b.news2;
  const ncls = b.news2 >= 7 ? "n7" : b.news2 >= 5 ? "n5" : "";
  return `<div class="name"><span>${b.patient}</span><span class="news2 ${ncls}" title="NEWS2">NEWS2 ${n}</span></div>
    <div class="nums">${num("hr", "HR", MT.fmt(b.hr))}${num("spo2", "SpO2", MT.fmt(b.spo2))}${num("rr", "RR", MT.fmt(b.rr))}
    ${num("bp", "NIBP", bp)}${num("temp", "Temp", MT.fmt(b.temp, 1))}${num("acvpu", "ACVPU", b.acvpu || "--")}</div>
    <div class="tech">${b.tech.map((t) => `<span>${techText(t)}</span>`).join("")}</div>`;
}

function render() {
  const tiles = document.getElementById("tiles");
  const order = [];
  for (const b of state.beds) {
    let el = document.getElementById("tile-" + b.patient);
    if (!el) {
      el = document.createElement("div");
      el.id = "tile-" + b.patient;
      el.dataset.bed = b.bed;
      el.onclick = () => { location.href = "/bed/" + b.bed; };
    }
    const pr = rank(b.acked) > rank(b.alarm) ? b.acked : b.alarm;
    el.className = "tile" + (pr ? " alarm-" + pr : "") + (b.alarm ? " unacked" : "");
    el.dataset.news2 = b.news2 == null ? "" : b.news2;
    el.innerHTML = tileHtml(b);
    order.push(el);
  }
  order.forEach((el, i) => { if (tiles.children[i] !== el) tiles.insertBefore(el, tiles.children[i] || null); });
  const open = [...state.alarms.values()].filter((a) => a.state !== "cleared")
    .sort((a, b) => rank(b.priority) - rank(a.priority) || a.raised_ms - b.raised_ms);
  const row = (a) => `<div class="alarm ${a.priority} ${a.state}" id="alarm-${a.id}">
      <span>${a.patient} · ${a.kind} · ${MT.clock(a.raised_ms)}</span>
      ${a.state === "active" ? `<button class="ack" data-id="${a.id}">Ack</button>` : "<span>ack'd</span>"}</div>`;
  document.getElementById("alarms").innerHTML = open.filter((a) => !a.technical).map(row).join("");
  // Technical: the devices' own (on the tiles) and the backend's device-* alarms.
  document.getElementById("techs").innerHTML = open.filter((a) => a.technical).map(row).join("") +
    state.beds.filter((b) => b.tech.length)
      .map((b) => `<div class="techrow">${b.patient}: ${b.tech.map(techText).join(", ")}</div>`).join("");
  document.querySelectorAll("aside button.ack").forEach((btn) => btn.onclick = (ev) => {
    ev.stopPropagation();
    MT.post(`/api/alarms/${btn.dataset.id}/ack`, {by: localStorage.getItem("mt-name") || "trainee"}).catch((e) => console.warn(e));
  });
  const top = open.filter((a) => a.state === "active").map((a) => a.priority).sort((a, b) => rank(b) - rank(a))[0] || null;
  MT.audio.set(top);
  const paused = MT.audio.pausedUntilSim !== null && state.t < MT.audio.pausedUntilSim;
  document.getElementById("audio-state").textContent = MT.audio.muted ? "audio off" : paused ? "AUDIO PAUSED" : "";
}
const rank = (p) => ({high: 3, medium: 2, low: 1}[p] || 0);

function onTick(t) {
  state.t = t.t; state.beds = t.beds; state.ticks++;
  MT.audio.nowSim = t.t; MT.audio.pausedUntilSim = t.audio_paused_until;
  document.getElementById("clock").textContent = MT.clock(t.t) + (t.finished ? " (end)" : "");
  document.getElementById("speed").textContent = "x" + t.clock.speed;
  document.getElementById("paused").textContent = t.clock.paused ? "PAUSED" : "";
  render();
}
function onAlarm(a) { state.alarms.set(a.id, a); render(); }
function onLog(e) {
  const log = document.getElementById("log");
  const row = document.createElement("div");
  row.textContent = `${MT.clock(e.t)} ${e.actor} ${e.patient || ""} ${e.text}`;
  log.prepend(row);
  while (log.children.length > 200) log.lastChild.remove();
}
async function load() {
  const s = await MT.json("/api/ward");
  document.getElementById("scenario").textContent = s.scenario;
  state.alarms = new Map(s.alarms.map((a) => [a.id, a]));
  document.getElementById("log").innerHTML = "";
  s.log.forEach(onLog);
  onTick({t: s.t, clock: s.clock, beds: s.beds, finished: s.finished, audio_paused_until: s.audio_paused_until});
  return s.last_event_id;
}
// Who acknowledges from this screen (in the after-action report).
const me = document.getElementById("me");
me.value = localStorage.getItem("mt-name") || "";
me.onchange = () => localStorage.setItem("mt-name", me.value.trim());
document.getElementById("mute").onclick = (ev) => {
  MT.audio.enable(); MT.audio.muted = !MT.audio.muted;
  ev.target.textContent = MT.audio.muted ? "Unmute" : "Mute"; render();
};
document.getElementById("silence").onclick = () => { MT.audio.enable(); MT.post("/api/silence", {seconds: 120}); };
document.addEventListener("click", () => MT.audio.enable(), {once: true});
load().then((last) => {
  const feed = MT.feed("/api/events", {tick: onTick, alarm: onAlarm, log: onLog}, () => load(), last);
  window.__feed = feed;
});
