// A bedside monitor: sweeping ECG, pleth and respiration drawn on canvas at
// the device's rate from the streamed blocks (played out a little behind
// real time, so a block's late arrival does not stall the sweep), numerics,
// trends, the patient's alarms, and giving an intervention.
"use strict";
const bed = Number(location.pathname.split("/").pop());
const SWEEP_S = 6; // seconds across the screen
const COLORS = {ecg_ii: "#3fdc5a", pleth: "#4fc3f7", resp: "#fff176"};
// ECG at a fixed gain (µV, as a monitor's 10 mm/mV); pleth and respiration
// auto-gained to the trace's height over the last sweep, as monitors show
// them (their amplitude is not calibrated).
const SCALE = {ecg_ii: [-800, 1600], pleth: [-100, 1300], resp: [-1500, 1500]};
const AUTO_GAIN = new Set(["pleth", "resp"]);
const traces = {};
window.__drawn = {};

function trace(name) {
  if (traces[name]) return traces[name];
  const canvas = document.getElementById("canvas-" + name);
  if (!canvas) return null;
  const t = {name, canvas, g: canvas.getContext("2d"), queue: [], rate: 250, x: 0, lastY: null,
    started: null, played: 0, off: false, lo: SCALE[name][0], hi: SCALE[name][1]};
  traces[name] = t; window.__drawn[name] = 0;
  t.g.fillStyle = "#000"; t.g.fillRect(0, 0, canvas.width, canvas.height);
  return t;
}
let speed = 1;
function onWave(w) {
  for (const [name, samples] of w.ch) {
    const t = trace(name);
    if (!t) continue;
    t.rate = w.rate;
    const off = (name === "ecg_ii" && w.lead_off);
    if (AUTO_GAIN.has(name) && samples.length) autoGain(t, samples);
    for (const v of samples) t.queue.push(off ? null : v);
    // Never more than 3 s behind: skip ahead rather than drift.
    const max = t.rate * 3 * Math.max(1, speed);
    if (t.queue.length > max) t.queue.splice(0, t.queue.length - max);
    t.off = off;
    document.getElementById("wave-" + name).classList.toggle("is-off", off || techOff(name));
  }
}
function autoGain(t, samples) {
  let lo = Infinity, hi = -Infinity;
  for (const v of samples) { if (v < lo) lo = v; if (v > hi) hi = v; }
  // Over the last sweep (a slow breath: the last 20 s), never zoomed past
  // a sixth of the default range, so a flat trace stays flat.
  t.env = (t.env || []).concat([[lo, hi]]).slice(t.name === "resp" ? -20 : -SWEEP_S);
  lo = Math.min(...t.env.map((e) => e[0])); hi = Math.max(...t.env.map((e) => e[1]));
  const [dlo, dhi] = SCALE[t.name], mid = (lo + hi) / 2;
  const half = Math.max(hi - lo, (dhi - dlo) / 6) / 2 * 1.1;
  // Applied when the sweep starts again, so one sweep is drawn at one gain
  // (the pleth's first block already holds a beat: applied at once).
  t.next = [mid - half, mid + half];
  if (!t.gained && t.name === "pleth") { [t.lo, t.hi] = t.next; t.gained = true; }
}
let tech = [];
const techOff = (name) => name === "pleth" ? tech.includes("sensor_off") || tech.includes("low_perfusion")
  : name === "ecg_ii" ? tech.includes("lead_off") : false;
function draw(now) {
  for (const t of Object.values(traces)) {
    if (t.started === null) { if (t.queue.length < t.rate * 0.5) continue; t.started = now; t.played = 0; }
    const due = Math.floor((now - t.started) / 1000 * t.rate * Math.max(1, speed));
    const n = Math.min(due - t.played, t.queue.length);
    if (n <= 0) { if (t.queue.length === 0) t.started = null; continue; }
    t.played += n;
    const w = t.canvas.width, h = t.canvas.height, dx = w / (SWEEP_S * t.rate);
    const g = t.g, samples = t.queue.splice(0, n);
    // One erase bar ahead of the sweep and one path per frame (not per
    // sample): a 500 Hz trace is ~8 samples a frame at 60 fps.
    let x = t.x, k = 0;
    while (k < samples.length) {
      const run = Math.min(samples.length - k, Math.ceil((w - x) / dx));
      g.fillStyle = "#000"; g.fillRect(x, 0, run * dx + 10, h);
      g.beginPath(); g.lineWidth = 1.6; g.strokeStyle = COLORS[t.name] || "#fff";
      let y0 = t.lastY, flat = false;
      for (let i = 0; i < run; i++) {
        const v = samples[k + i], x1 = x + dx;
        if (v === null) {
          flat = true; y0 = null;
        } else {
          const y = h - (v - t.lo) / (t.hi - t.lo) * h;
          if (y0 === null) g.moveTo(x1, y); else { g.moveTo(x, y0); g.lineTo(x1, y); }
          y0 = y;
        }
        x = x1;
      }
      g.stroke();
      if (flat) {
        // Leads off: a flat dashed line at the baseline, as a monitor shows it.
        g.save(); g.setLineDash([6, 6]); g.strokeStyle = "#777"; g.beginPath();
        g.moveTo(x - run * dx, h / 2); g.lineTo(x, h / 2); g.stroke(); g.restore();
      }
      t.lastY = y0; k += run; window.__drawn[t.name] += run;
      if (x >= w - dx / 2) { x = 0; t.lastY = null; if (t.next) [t.lo, t.hi] = t.next; }
    }
    t.x = x;
  }
  requestAnimationFrame(draw);
}
requestAnimationFrame(draw);

const num = (cls, label, value) =>
  `<div class="num ${cls}"><span class="l">${label}</span><span class="v">${value}</span></div>`;
function showBed(b) {
  if (!b) return;
  tech = b.tech;
  const bp = b.sbp == null ? "--" : `${MT.fmt(b.sbp)}/${MT.fmt(b.dbp)}`;
  document.getElementById("nums").innerHTML = num("hr", "HR", MT.fmt(b.hr)) + num("spo2", "SpO2", MT.fmt(b.spo2)) +
    num("rr", "RR", MT.fmt(b.rr)) + num("bp", "NIBP", bp) + num("temp", "Temp", MT.fmt(b.temp, 1)) +
    num("news2", "NEWS2", b.news2 == null ? "--" : b.news2);
  document.getElementById("tech").innerHTML = b.tech.map((t) => `<span>${t.toUpperCase()}</span>`).join("");
  for (const name of ["ecg_ii", "pleth", "resp"]) {
    const el = document.getElementById("wave-" + name);
    if (el) el.classList.toggle("is-off", (traces[name] && traces[name].off) || techOff(name));
  }
}
const alarms = new Map();
function showAlarms() {
  document.getElementById("alarms").innerHTML = [...alarms.values()].filter((a) => a.state !== "cleared")
    .map((a) => `<div class="alarm ${a.priority} ${a.state}"><span>${a.kind} · ${MT.clock(a.raised_ms)}</span>
      ${a.state === "active" ? `<button class="ack" data-id="${a.id}">Ack</button>` : "<span>ack'd</span>"}</div>`).join("");
  document.querySelectorAll("#alarms button.ack").forEach((btn) => btn.onclick = () =>
    MT.post(`/api/alarms/${btn.dataset.id}/ack`, {by: localStorage.getItem("mt-name") || "trainee"}));
}
let trend = [];
function drawTrend() {
  const c = document.getElementById("trend"), g = c.getContext("2d"), w = c.width, h = c.height;
  g.fillStyle = "#000"; g.fillRect(0, 0, w, h);
  if (trend.length < 2) return;
  const t0 = trend[0].t, t1 = trend[trend.length - 1].t;
  const series = [["hr", "#3fdc5a", 30, 180], ["spo2", "#4fc3f7", 70, 100], ["rr", "#fff176", 0, 40], ["sbp", "#ff8a80", 50, 200]];
  for (const [k, color, lo, hi] of series) {
    g.strokeStyle = color; g.beginPath(); let first = true;
    for (const p of trend) {
      if (p[k] == null) continue;
      const x = (p.t - t0) / Math.max(1, t1 - t0) * w, y = h - (p[k] - lo) / (hi - lo) * h;
      if (first) { g.moveTo(x, y); first = false; } else g.lineTo(x, y);
    }
    g.stroke();
  }
  g.fillStyle = "#8b98a5"; g.font = "11px sans-serif";
  g.fillText(MT.clock(t0), 4, h - 4); g.fillText(MT.clock(t1), w - 60, h - 4);
}
async function load() {
  const b = await MT.json("/api/bed/" + bed);
  document.getElementById("patient").textContent = b.patient;
  showBed(b.now);
  b.alarms.forEach((a) => alarms.set(a.id, a)); showAlarms();
  trend = b.trend; drawTrend();
  if (!b.waves.length) document.getElementById("nowave").textContent = "No waveform device on this patient yet (numerics only).";
  const w = await MT.json("/api/ward");
  const sel = document.getElementById("intervention");
  sel.innerHTML = w.catalogue.interventions.map((i) =>
    `<option value="${i.name}" title="${i.params.map((p) => p.name).join(", ")}">${i.name}</option>`).join("");
  return w.last_event_id;
}
document.getElementById("give").onclick = async () => {
  const params = {};
  for (const kv of document.getElementById("params").value.split(/[ ,]+/).filter(Boolean)) {
    const [k, v] = kv.split("=");
    params[k] = isNaN(Number(v)) ? v : Number(v);
  }
  const out = document.getElementById("give-result");
  try {
    const r = await MT.post("/api/act", {type: "intervention", patient: document.getElementById("patient").textContent,
      intervention: document.getElementById("intervention").value, params, by: localStorage.getItem("mt-name") || "trainee"});
    out.textContent = "queued at " + MT.clock(r.queued_at_ms);
  } catch (e) { out.textContent = "refused: " + e.message; }
};
load().then((last) => {
  MT.feed("/api/events", {
    tick: (t) => {
      speed = t.clock.speed;
      document.getElementById("clock").textContent = MT.clock(t.t);
      document.getElementById("paused").textContent = t.clock.paused ? "PAUSED" : "";
      showBed(t.beds.find((b) => b.bed === bed));
      const me = t.beds.find((b) => b.bed === bed);
      if (me && (!trend.length || t.t - trend[trend.length - 1].t >= 10000)) {
        trend.push({t: t.t, hr: me.hr, spo2: me.spo2, rr: me.rr, sbp: me.sbp});
        if (trend.length > 1440) trend.shift();
        drawTrend();
      }
    },
    alarm: (a) => { if (a.bed === bed) { alarms.set(a.id, a); showAlarms(); } },
  }, () => load(), last);
  MT.feed("/api/waves?bed=" + bed, {wave: onWave});
});
