// The instructor's console. Every request carries the session's token
// (kept in this tab's sessionStorage only); every action enters the twin
// through its command queue and shows in the log when applied.
"use strict";
const $ = (id) => document.getElementById(id);
$("token").value = sessionStorage.getItem("mt-token") || "";
$("token").onchange = () => sessionStorage.setItem("mt-token", $("token").value);
const auth = () => ({authorization: "Bearer " + $("token").value});
const say = (text, err) => { $("result").textContent = text; $("result").className = err ? "err" : "muted"; };
async function send(url, body) {
  try { const r = await MT.post(url, body, auth()); say(JSON.stringify(r)); return r; }
  catch (e) { say("refused: " + e.message, true); }
}
const patient = () => $("patient").value;
const opt = (v) => v.trim() === "" ? undefined : v.trim();
const parseParams = (text) => {
  const params = {};
  for (const kv of text.split(/[ ,]+/).filter(Boolean)) { const [k, v] = kv.split("="); params[k] = isNaN(Number(v)) ? v : Number(v); }
  return params;
};
$("trigger").onclick = () => send("/api/instructor/command", {type: "condition", patient: patient(),
  condition: $("condition").value, severity: Number($("severity").value), ramp: opt($("ramp").value), duration: opt($("cond-duration").value)});
$("do-fault").onclick = () => send("/api/instructor/command", {type: "device_fault", patient: patient(),
  fault: $("fault").value, device: opt($("device").value), duration: $("fault-duration").value});
$("do-outage").onclick = () => send("/api/instructor/command", {type: "network_outage", patient: patient(), duration: $("outage-duration").value});
$("give").onclick = () => send("/api/instructor/command", {type: "intervention", patient: patient(),
  intervention: $("intervention").value, params: parseParams($("params").value)});
$("pause").onclick = () => send("/api/instructor/clock", {action: "pause"});
$("resume").onclick = () => send("/api/instructor/clock", {action: "resume"});
$("set-speed").onclick = () => send("/api/instructor/clock", {action: "speed", speed: Number($("new-speed").value)});
$("end").onclick = () => { if (confirm("End the session?")) send("/api/instructor/end", {}); };
$("save-cues").onclick = async () => {
  const r = await fetch("/api/instructor/cues", {headers: auth()});
  if (!r.ok) return say("refused: " + r.status, true);
  const a = document.createElement("a");
  a.href = URL.createObjectURL(new Blob([await r.text()], {type: "application/toml"}));
  a.download = "cues.toml"; a.click();
};
$("load-cues").onclick = async () => {
  const f = $("cue-file").files[0];
  if (!f) return say("pick a cue file first", true);
  const r = await fetch("/api/instructor/cues" + ($("from-now").checked ? "?from=now" : ""),
    {method: "POST", headers: auth(), body: await f.text()});
  say(await r.text(), !r.ok);
};
function onLog(e) {
  const row = document.createElement("div");
  row.textContent = `${MT.clock(e.t)} ${e.actor} ${e.what} ${e.patient || ""} ${e.text}`;
  $("log").prepend(row);
  while ($("log").children.length > 500) $("log").lastChild.remove();
}
async function load() {
  const s = await MT.json("/api/ward");
  $("scenario").textContent = s.scenario;
  const names = s.beds.map((b) => b.patient).sort();
  $("patient").innerHTML = names.map((n) => `<option value="${n}">${n}</option>`).join("");
  $("condition").innerHTML = s.catalogue.conditions.map((c) => `<option value="${c}">${c}</option>`).join("");
  $("fault").innerHTML = s.catalogue.faults.map((c) => `<option value="${c}">${c}</option>`).join("");
  $("intervention").innerHTML = s.catalogue.interventions.map((i) =>
    `<option value="${i.name}" title="${i.params.map((p) => p.name).join(", ")}">${i.name}</option>`).join("");
  $("log").innerHTML = ""; s.log.forEach(onLog);
  return s.last_event_id;
}
setInterval(async () => { try { $("stats").textContent = JSON.stringify(await MT.json("/api/stats"), null, 1); } catch (e) {} }, 2000);
load().then((last) => MT.feed("/api/events", {
  tick: (t) => {
    $("clock").textContent = MT.clock(t.t) + (t.finished ? " (end)" : "");
    $("speed").textContent = "x" + t.clock.speed;
    $("paused").textContent = t.clock.paused ? "PAUSED" : "";
  },
  log: onLog,
}, () => load(), last));
