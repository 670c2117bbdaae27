// medtwin training pages: the live feed (Server-Sent Events, resumed with
// Last-Event-ID), alarm audio (Web Audio, IEC 60601-1-8 style patterns),
// formatting. No dependencies: everything is served from the binary.
"use strict";
const MT = {};
MT.fmt = (v, d = 0) => (v === null || v === undefined) ? "--" : Number(v).toFixed(d);
MT.clock = (ms) => {
  const s = Math.floor(ms / 1000);
  const p = (n) => String(n).padStart(2, "0");
  return `${p(Math.floor(s / 3600))}:${p(Math.floor(s / 60) % 60)}:${p(s % 60)}`;
};
MT.json = async (url, opts = {}) => {
  const r = await fetch(url, opts);
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.error || `${r.status}`);
  return body;
};
MT.post = (url, body, headers = {}) => MT.json(url, {
  method: "POST", headers: Object.assign({"content-type": "application/json"}, headers),
  body: JSON.stringify(body || {}),
});
// A resumable feed: `handlers` maps event names to functions of the parsed
// data; `onReload` refetches the snapshot when the server's replay buffer
// no longer holds what was missed.
MT.feed = (url, handlers, onReload, initialLast) => {
  let last = initialLast === undefined ? null : initialLast, es = null;
  const open = () => {
    const u = last === null ? url : url + (url.includes("?") ? "&" : "?") + "last_event_id=" + last;
    es = new EventSource(u);
    for (const [name, fn] of Object.entries(handlers)) {
      es.addEventListener(name, (ev) => {
        if (ev.lastEventId) last = Number(ev.lastEventId);
        try { fn(JSON.parse(ev.data)); } catch (e) { console.error(e); }
      });
    }
    es.addEventListener("reload", () => onReload && onReload());
    // Dropped for falling behind: reopen from the last event seen.
    es.addEventListener("lagged", () => { es.close(); setTimeout(open, 100); });
  };
  open();
  return { setLast: (id) => { last = id; }, close: () => es && es.close() };
};
// Alarm audio. Patterns after IEC 60601-1-8: high priority a burst of ten
// pulses (3+2, 3+2), medium three pulses, low one pulse; repeated. Muting
// and the temporary silence (audio paused) are honoured here.
MT.audio = {
  ctx: null, muted: false, pausedUntilSim: null, nowSim: 0, playing: null, timer: null, beeps: 0,
  enable() { if (!this.ctx) { try { this.ctx = new AudioContext(); } catch (e) { this.ctx = null; } } },
  pulses(priority) {
    if (priority === "high") return {at: [0, .2, .4, 1.0, 1.2, 2.0, 2.2, 2.4, 3.0, 3.2], hz: 880, every: 6};
    if (priority === "medium") return {at: [0, .3, .6], hz: 660, every: 8};
    return {at: [0], hz: 520, every: 16};
  },
  silenced() {
    return this.muted || (this.pausedUntilSim !== null && this.nowSim < this.pausedUntilSim);
  },
  set(priority) {
    if (priority === this.playing) return;
    this.playing = priority;
    clearInterval(this.timer);
    this.timer = null;
    if (!priority) return;
    const p = this.pulses(priority);
    const burst = () => {
      if (this.silenced()) return;
      this.beeps++;
      if (!this.ctx) return;
      const t0 = this.ctx.currentTime + 0.02;
      for (const at of p.at) {
        const o = this.ctx.createOscillator(), g = this.ctx.createGain();
        o.frequency.value = p.hz; o.type = "triangle";
        g.gain.setValueAtTime(0, t0 + at);
        g.gain.linearRampToValueAtTime(0.25, t0 + at + 0.02);
        g.gain.setValueAtTime(0.25, t0 + at + 0.13);
        g.gain.linearRampToValueAtTime(0, t0 + at + 0.16);
        o.connect(g).connect(this.ctx.destination);
        o.start(t0 + at); o.stop(t0 + at + 0.2);
      }
    };
    burst();
    this.timer = setInterval(burst, p.every * 1000);
  },
};
// Frames drawn, for the performance measurement (requestAnimationFrame).
window.__frames = 0;
(function count() { window.__frames++; requestAnimationFrame(count); })();
