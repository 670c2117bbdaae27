//! `medtwin load`: the fleet driven as an *open workload*. Every message
//! is sent at its scheduled time (simulated time → wall time, scaled by
//! `--speed`) whether or not the target keeps up; latency is measured from
//! that scheduled time, so a slow target cannot hide its queueing
//! (no coordinated omission). A message the generator cannot hand to a
//! connection on time (every connection's queue full, or waiting past
//! `max_late`) is dropped and counted, never sent late.
//!
//! Stages: the twin (on its own thread) → `feed` (stage profile, encoding)
//! → bounded channel → dispatcher (waits for each message's time, picks a
//! connection's bounded queue) → connection tasks (`http.rs`) → recorders
//! (per task, per window of scheduled time) → collector thread (closes
//! windows in order: interval log, thresholds, progress) → report.

pub mod compare;
pub mod http;
pub mod merge;
pub mod mqtt;
pub mod report;
pub mod stats;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use bytes::Bytes;
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::IntervalLogWriterBuilder;
use medtwin_sim::{Shard, Twin};
use tokio::sync::mpsc;

use crate::run::trust::process_cpu_s;
use crate::scenario::Scenario;
use crate::scenario::interop::Protocol;
use crate::scenario::load::LoadProfile;
use crate::stop::Stop;
use crate::transport::Encoder as _;
use crate::transport::json::{JsonEncoder, Names};
use http::{Endpoint, Outgoing};
use report::LoadReport;
use stats::{Aggregator, Recorder, WindowData};

/// Connections when neither the scenario nor the command line says.
pub const DEFAULT_CONNECTIONS: u32 = 8;
/// Batches the twin may run ahead of the dispatcher.
const FEED_AHEAD: usize = 256;
/// Most messages in one batch: [`FEED_AHEAD`] × [`BATCH`] messages may
/// wait between the twin and the dispatcher.
const BATCH: usize = 64;
/// How long the connections may finish their queues after a stop.
const DRAIN: Duration = Duration::from_secs(2);
/// How long the webhook keeps listening after the last message: alerts
/// that arrive later are not counted.
const ALERT_GRACE: Duration = Duration::from_secs(1);
/// The interval log's file name in a load report's folder.
pub const LOG_FILE: &str = "latency.hlog";

/// How to run: what the command line adds to the scenario.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    /// Where to send (`None`: the scenario's `[target]`, else the embedded
    /// reference backend).
    pub target: Option<String>,
    /// Simulated seconds per wall second.
    pub speed: f64,
    /// Keep-alive connections (overrides `[load] connections`).
    pub connections: Option<u32>,
    /// This process's slice of the fleet.
    pub shard: Shard,
    /// Twin threads (each a slice of this process's slice, with its own
    /// dispatcher); `None`: one per core.
    pub generators: Option<u32>,
    /// Wall time of simulated time zero, shared by every shard.
    pub start_at: Option<SystemTime>,
    /// Folder for report.json, index.html and the interval log.
    pub out: PathBuf,
    /// No progress lines.
    pub quiet: bool,
}

/// Messages from the twin, all due at the same simulated millisecond:
/// each body a slice of one buffer (one allocation for the batch), with
/// its topic over MQTT.
struct Fed {
    due_ms: u64,
    messages: Vec<(Bytes, Option<Arc<str>>)>,
}

/// Messages due at one simulated millisecond, waiting in the feed, in
/// the order the twin made them.
#[derive(Default)]
struct Bucket {
    bodies: Vec<u8>,
    ends: Vec<usize>,
    topics: Vec<Arc<str>>,
}

/// What the live tasks share with the collector.
struct Live {
    recorders: Vec<Arc<Mutex<Recorder>>>,
    backlog: AtomicU64,
    abort: AtomicBool,
    done: AtomicBool,
}

/// FNV-1a of a name: a device's stable place in the stage profile, the
/// same in every shard.
fn fnv1a(text: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// splitmix64: a per-message draw from the device's hash and sequence.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// The twin's thread: steps it to its end, keeps the messages the stage
/// profile sends, encodes them and hands them on in due-time order, in
/// batches of at most [`BATCH`] (waiting when [`FEED_AHEAD`] batches are
/// ahead of the dispatcher). A message's phase can put it after the next
/// step's first ones, so each step's messages wait in buckets (one per
/// due millisecond) until no later step can bring an earlier one: every
/// message of a later step is delivered after the step's end `T`, so
/// everything due by `T` (by the storm's end, inside a storm) is final.
/// The buckets hold at most a spread's worth of messages.
#[allow(clippy::too_many_arguments)]
fn feed(
    mut twin: Twin,
    step_ms: u64,
    encoder: JsonEncoder,
    topics: Option<Vec<Arc<str>>>,
    profile: LoadProfile,
    tx: mpsc::Sender<Fed>,
    stop: Stop,
    live: Arc<Live>,
) {
    let device_hash: Vec<u64> = twin.device_names().iter().map(|n| fnv1a(n)).collect();
    let spread_ms = profile.spread_ms.unwrap_or(step_ms) as f64;
    let mut buckets = std::collections::BTreeMap::<u64, Bucket>::new();
    // A new bucket's room for bodies: about what recent ones held (so
    // they seldom grow), never more than 64 KiB (a storm's one huge
    // bucket must not make every later one huge).
    let mut hint = 1_024usize;
    while !twin.finished() && !stop.is_stopped() && !live.abort.load(Ordering::Relaxed) {
        let out = twin.step();
        let now_ms = out.now_ms;
        for d in &out.deliveries {
            let t = d.delivered_ms;
            let (devices_pct, rate_pct, storm_end) = profile.levels(t);
            let h = device_hash
                .get(d.measurement.device_idx as usize)
                .copied()
                .unwrap_or(0);
            if unit(h) * 100.0 >= devices_pct {
                continue;
            }
            if rate_pct < 100.0 && unit(mix(h ^ d.measurement.seq)) * 100.0 >= rate_pct {
                continue;
            }
            // A storm flushes at its end, all at once; otherwise each
            // device at its own phase within the step.
            let due_ms = storm_end.unwrap_or(t + (unit(mix(h)) * spread_ms) as u64);
            let bucket = buckets.entry(due_ms).or_insert_with(|| Bucket {
                bodies: Vec::with_capacity(hint + hint / 4),
                ..Bucket::default()
            });
            encoder.encode(&d.measurement, &mut bucket.bodies);
            bucket.ends.push(bucket.bodies.len());
            if let Some(topic) = topics
                .as_ref()
                .and_then(|t| t.get(d.measurement.device_idx as usize))
            {
                bucket.topics.push(topic.clone());
            }
        }
        let upto = profile.levels(now_ms).2.unwrap_or(now_ms).max(now_ms);
        if !release(&mut buckets, upto, &tx, &mut hint) {
            return;
        }
    }
    release(&mut buckets, u64::MAX, &tx, &mut hint);
}

/// Hands on every bucket due by `upto`, earliest first; false once the
/// dispatcher is gone.
fn release(
    buckets: &mut std::collections::BTreeMap<u64, Bucket>,
    upto: u64,
    tx: &mpsc::Sender<Fed>,
    hint: &mut usize,
) -> bool {
    while let Some(entry) = buckets.first_entry() {
        if *entry.key() > upto {
            break;
        }
        let (due_ms, bucket) = entry.remove_entry();
        *hint = ((*hint * 7 + bucket.bodies.len()) / 8).min(64 * 1_024);
        if !send_batches(tx, due_ms, bucket) {
            return false;
        }
    }
    true
}

/// Hands one due millisecond's messages to the dispatcher, [`BATCH`] at a
/// time; false once the dispatcher is gone.
fn send_batches(tx: &mpsc::Sender<Fed>, due_ms: u64, bucket: Bucket) -> bool {
    let bodies = Bytes::from(bucket.bodies);
    let mut topics = bucket.topics.into_iter();
    let mut from = 0;
    for ends in bucket.ends.chunks(BATCH) {
        let messages = ends
            .iter()
            .map(|&end| {
                let body = bodies.slice(from..end);
                from = end;
                (body, topics.next())
            })
            .collect();
        if tx.blocking_send(Fed { due_ms, messages }).is_err() {
            return false;
        }
    }
    true
}

/// The alert side of a load run: the webhook intake the target posts
/// its alerts to (the embedded backend is pointed at it), and the tally.
struct Alerts {
    intakes: Vec<crate::intake::AnyIntake>,
    inbox: Arc<crate::intake::Inbox>,
    webhook: String,
    token: String,
    secret: String,
    tally: report::AlertTally,
}

impl Alerts {
    /// Opens the webhook (`[alerts] listen`, `[alerts.webhook]`): bearer
    /// token from MEDTWIN_TARGET_TOKEN, else a fresh one.
    async fn open(s: &Scenario, speed: f64) -> anyhow::Result<Alerts> {
        use crate::intake::{Inbox, IntakeContext, mapping::AlertParser};
        let token = std::env::var(crate::run::target::TARGET_TOKEN_ENV)
            .ok()
            .filter(|t| !t.is_empty())
            .unwrap_or_else(crate::run::random_token);
        let secret = crate::run::random_token();
        let clock = Arc::new(crate::clock::SimClock::new(
            crate::scenario::Clock::Accelerated { speed },
            Instant::now(),
        ));
        let inbox = Inbox::new(clock);
        let ctx = IntakeContext {
            inbox: inbox.clone(),
            parser: Arc::new(AlertParser::new(s.alerts.intake.mapping.as_ref())),
            token: token.clone(),
            secret: Some(secret.clone()),
            mqtt_broker: None,
            server_tls: None,
            tls: s.transport.tls.clone(),
        };
        // The webhook only: ACM, MQTT and FHIR intakes are `run`'s.
        let choice = crate::scenario::interop::IntakeChoice {
            kinds: vec![crate::scenario::interop::IntakeKind::Webhook],
            ..s.alerts.intake.clone()
        };
        let intakes = crate::intake::open_all(&choice, s.alerts.listen, &ctx).await?;
        let webhook = intakes.first().map(|i| i.address()).unwrap_or_default();
        Ok(Alerts {
            intakes,
            inbox,
            tally: report::AlertTally {
                webhook: webhook.clone(),
                ..Default::default()
            },
            webhook,
            token,
            secret,
        })
    }

    /// The embedded backend's configuration: the scenario's seed, its
    /// alerts to the webhook, signed as `[alerts.webhook]` says, with the
    /// scenario's backend faults (a delay in simulated time becomes wall
    /// time at `speed`).
    fn embedded_backend(&self, s: &Scenario, speed: f64) -> medtwin_backend::BackendConfig {
        let mut config = medtwin_backend::BackendConfig::new(self.webhook.clone());
        config.seed = s.sim.seed;
        crate::run::target::sign_alerts(
            &mut config,
            s.alerts.intake.webhook.signature.unwrap_or_default(),
            &self.token,
            &self.secret,
        );
        config.faults = s.backend.faults;
        config.faults.delay_alerts =
            Duration::from_secs_f64(s.backend.faults.delay_alerts.as_secs_f64() / speed);
        config
    }

    /// Moves what the webhook took into `recorder`: each timed alert's
    /// latency in the window (of scenario time) it arrived in.
    fn pump(&mut self, recorder: &Mutex<Recorder>, clock: &Clocks) {
        let (alerts, refused) = self.inbox.take();
        for (reason, n) in refused.by_reason() {
            if n > 0 {
                *self.tally.refused.entry(reason.to_owned()).or_default() += n;
            }
        }
        if alerts.is_empty() {
            return;
        }
        let mut r = recorder.lock().unwrap_or_else(|p| p.into_inner());
        for alert in alerts {
            self.tally.received += 1;
            let arrived_ms = alert
                .received_at
                .saturating_duration_since(clock.t0)
                .as_secs_f64()
                * clock.speed
                * 1_000.0;
            let measured = alert
                .message
                .measurement_time
                .as_deref()
                .and_then(medtwin_wire::time::parse_time)
                .and_then(|t| t.duration_since(clock.wall_start).ok());
            let Some(measured) = measured else {
                self.tally.untimed += 1;
                continue;
            };
            let due = clock.t0 + Duration::from_secs_f64(measured.as_secs_f64() / clock.speed);
            let latency_us =
                u64::try_from(alert.received_at.saturating_duration_since(due).as_micros())
                    .unwrap_or(u64::MAX);
            let w = r.window(arrived_ms as u64 / clock.window_ms);
            w.counts.alerts += 1;
            let _ = w.alert.record(latency_us.max(1));
        }
    }

    async fn stop(self) -> report::AlertTally {
        for intake in self.intakes {
            intake.stop().await;
        }
        self.tally
    }
}

/// Scenario time on the wall, as the alert pump needs it.
#[derive(Clone, Copy)]
struct Clocks {
    t0: Instant,
    wall_start: SystemTime,
    speed: f64,
    window_ms: u64,
}

/// Where the messages go.
enum Sink {
    /// POSTs over HTTP/1.1.
    Http(Arc<Endpoint>),
    /// Publishes to an MQTT broker.
    Mqtt(Arc<mqtt::MqttSink>),
}

/// What the run started and must stop: the embedded reference backend,
/// the embedded broker.
#[derive(Default)]
struct Embedded {
    backend: Option<medtwin_backend::BackendHandle>,
    broker: Option<medtwin_mqtt::Broker>,
}

/// The target: the `--target` URL's scheme (`http://`, `mqtt://`) or else
/// the scenario's transport says how to send; without a URL, to the
/// embedded reference backend (over MQTT through an embedded broker).
async fn sink(
    s: &Scenario,
    config: &LoadConfig,
    alerts: &Alerts,
    timeout: Duration,
    max_late: Duration,
    run_id: &str,
) -> anyhow::Result<(Sink, Embedded, String)> {
    let url = config
        .target
        .clone()
        .or_else(|| s.target.as_ref().map(|t| t.url.clone()));
    let mqtt = match &url {
        Some(u) => u.starts_with("mqtt://") || u.starts_with("mqtts://"),
        None => s.transport.protocol == Protocol::Mqtt,
    };
    if url.is_none() && !matches!(s.transport.protocol, Protocol::HttpJson | Protocol::Mqtt) {
        anyhow::bail!(
            "`medtwin load` sends over http-json or mqtt (the scenario says {})",
            s.transport.protocol.name()
        );
    }
    let token = std::env::var(crate::run::target::TARGET_TOKEN_ENV)
        .ok()
        .filter(|t| !t.is_empty());
    let mut embedded = Embedded::default();
    if mqtt {
        let resolved = crate::transport::mqtt::Resolved::of(&s.transport.mqtt)?;
        let (url, login) = match url {
            Some(url) => {
                let user = s
                    .transport
                    .mqtt
                    .username
                    .clone()
                    .unwrap_or_else(|| "medtwin".into());
                (url, token.map(|t| (user, t)))
            }
            None => {
                let broker = crate::transport::mqtt::embedded_broker().await?;
                let url = format!("mqtt://{}", broker.addr());
                let mut backend = alerts.embedded_backend(s, config.speed);
                crate::transport::mqtt::wire_embedded_backend(
                    &mut backend,
                    s,
                    Some(&url),
                    false,
                    run_id,
                )?;
                embedded.backend = Some(
                    medtwin_backend::start(backend)
                        .await
                        .context("cannot start the embedded reference backend")?,
                );
                embedded.broker = Some(broker);
                (url, None)
            }
        };
        if url.starts_with("mqtts://") {
            anyhow::bail!("`{url}`: `medtwin load` speaks plain mqtt:// (no TLS yet)");
        }
        let (host, port) =
            crate::scenario::interop::host_port(&url, "mqtt").map_err(anyhow::Error::msg)?;
        let sink = mqtt::MqttSink {
            addr: format!("{host}:{port}"),
            version: resolved.version,
            qos: resolved.qos,
            login,
            run_id: run_id.to_owned(),
            timeout,
            max_late,
        };
        return Ok((Sink::Mqtt(Arc::new(sink)), embedded, url));
    }
    let (url, authorization) = match url {
        Some(url) => (url, token.map(|t| format!("Bearer {t}"))),
        None => {
            let token = crate::run::random_token();
            let mut backend = alerts.embedded_backend(s, config.speed);
            backend.token = Some(token.clone());
            let handle = medtwin_backend::start(backend)
                .await
                .context("cannot start the embedded reference backend")?;
            let url = format!("http://{}/v1/measurements", handle.addr());
            embedded.backend = Some(handle);
            (url, Some(format!("Bearer {token}")))
        }
    };
    let (authority, path) = http::split_url(&url).map_err(anyhow::Error::msg)?;
    let endpoint = Endpoint {
        authority,
        path,
        content_type: "application/json",
        authorization,
        run_id: run_id.to_owned(),
        timeout,
        max_late,
    };
    Ok((Sink::Http(Arc::new(endpoint)), embedded, url))
}

/// Each device's topic, by device index, when the sink is MQTT.
fn topics(twin: &Twin, s: &Scenario, sink: &Sink) -> anyhow::Result<Option<Vec<Arc<str>>>> {
    if !matches!(sink, Sink::Mqtt(_)) {
        return Ok(None);
    }
    let template = crate::transport::mqtt::Resolved::of(&s.transport.mqtt)?.topic;
    let names = Names::of(twin);
    Ok(Some(
        names
            .devices
            .iter()
            .zip(&names.models)
            .map(|(device, kind)| {
                let (patient, device) = device.split_once('/').unwrap_or((device, device));
                Arc::from(template.render(&medtwin_mqtt::TopicNames {
                    patient,
                    device,
                    kind,
                }))
            })
            .collect(),
    ))
}

/// Runs the load and writes its report into `config.out`.
pub async fn run(s: &Scenario, config: &LoadConfig, stop: &Stop) -> anyhow::Result<LoadReport> {
    let profile = s.load.clone();
    let connections = config
        .connections
        .or(profile.connections)
        .unwrap_or(DEFAULT_CONNECTIONS)
        .max(1) as usize;
    let max_late = Duration::from_millis(profile.max_late_ms);
    let timeout = Duration::from_millis(profile.timeout_ms);
    let run_id = format!("load-{}", crate::run::random_token());
    let mut alerts = Alerts::open(s, config.speed).await?;
    let (sink, embedded, url) = sink(s, config, &alerts, timeout, max_late, &run_id).await?;
    if !config.quiet {
        eprintln!("alerts webhook: {}", alerts.webhook);
    }
    std::fs::create_dir_all(&config.out)
        .with_context(|| format!("cannot create {}", config.out.display()))?;

    // Several twins, each a slice of this process's shard (k + n·j of
    // n·g: their union is exactly shard k of n), each on its own thread
    // with its own dispatcher: the twin and the encoder are the costly
    // part of a message, and one thread cannot feed a fast target.
    let generators = generators(s, config);
    let mut twins = Vec::with_capacity(generators);
    for j in 0..generators as u32 {
        let mut sim = s.sim.clone();
        sim.shard = Shard {
            index: config.shard.index + config.shard.count * j,
            count: config.shard.count * generators as u32,
        };
        twins.push(Twin::new(&sim).map_err(|e| anyhow::anyhow!("{e}"))?);
    }
    let devices: usize = twins.iter().map(|t| t.device_names().len()).sum();
    let step_ms = s.sim.step_ms;
    // Simulated time zero on the wall: the shared start, or a moment from
    // now (time for the connections to open).
    let wall_start = config
        .start_at
        .unwrap_or_else(|| SystemTime::now() + Duration::from_millis(200));
    let until_start = wall_start
        .duration_since(SystemTime::now())
        .map_err(|_| anyhow::anyhow!("--start-at is in the past"))?;
    let t0 = Instant::now() + until_start;

    // Recorders: one per dispatcher, one per connection, one for alerts.
    let live = Arc::new(Live {
        recorders: (0..generators + connections + 1)
            .map(|_| Arc::new(Mutex::new(Recorder::default())))
            .collect(),
        backlog: AtomicU64::new(0),
        abort: AtomicBool::new(false),
        done: AtomicBool::new(false),
    });
    let mut feeders = Vec::with_capacity(generators);
    let mut feeds = Vec::with_capacity(generators);
    for (j, twin) in twins.into_iter().enumerate() {
        let (feed_tx, feed_rx) = mpsc::channel::<Fed>(FEED_AHEAD);
        feeds.push(feed_rx);
        let encoder = JsonEncoder::new(Names::of(&twin), wall_start);
        let topics = topics(&twin, s, &sink)?;
        let (stop, live, profile) = (stop.clone(), live.clone(), profile.clone());
        feeders.push(
            std::thread::Builder::new()
                .name(format!("medtwin-load-twin-{j}"))
                .spawn(move || feed(twin, step_ms, encoder, topics, profile, feed_tx, stop, live))
                .context("cannot start a twin's thread")?,
        );
    }
    let mut queues = Vec::with_capacity(connections);
    let mut workers = Vec::with_capacity(connections);
    let mut clients = match &sink {
        Sink::Mqtt(m) => {
            let clients = mqtt::connect(m, connections).await;
            if let Some((_, Some(error))) = clients.iter().find(|(_, e)| e.is_some())
                && !config.quiet
            {
                eprintln!(
                    "warning: an MQTT client could not connect at first (it keeps trying): {error}"
                );
            }
            clients.into_iter().map(|(c, _)| c).collect()
        }
        Sink::Http(_) => Vec::new(),
    }
    .into_iter();
    for i in 0..connections {
        let (tx, rx) = mpsc::channel::<Outgoing>(profile.queue as usize);
        queues.push(tx);
        let recorder = live.recorders[generators + i].clone();
        let live = live.clone();
        workers.push(match &sink {
            Sink::Http(endpoint) => {
                let endpoint = endpoint.clone();
                tokio::spawn(async move {
                    http::connection(endpoint, rx, recorder, &live.backlog).await;
                })
            }
            Sink::Mqtt(m) => {
                let (m, client) = (
                    m.clone(),
                    clients.next().expect("one client per connection"),
                );
                tokio::spawn(async move {
                    mqtt::connection(client, m, rx, recorder, &live.backlog).await;
                })
            }
        });
    }
    let collector = {
        let live = live.clone();
        let out = config.out.clone();
        let profile = profile.clone();
        let speed = config.speed;
        let progress = Progress::new(config.quiet, s.sim.duration_ms);
        std::thread::Builder::new()
            .name("medtwin-load-collector".into())
            .spawn(move || {
                collect(
                    &live,
                    &profile,
                    t0,
                    speed,
                    &out,
                    progress,
                    max_late + 2 * timeout,
                )
            })
            .context("cannot start the collector")?
    };

    // The alert pump: what the webhook took, into the alert recorder.
    let (pumped, pump_stop) = {
        let recorder = live.recorders[generators + connections].clone();
        let clocks = Clocks {
            t0,
            wall_start,
            speed: config.speed,
            window_ms: profile.window_ms,
        };
        let (tx, mut rx) = tokio::sync::oneshot::channel::<bool>();
        let task = tokio::spawn(async move {
            let graceful = loop {
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(200)) => alerts.pump(&recorder, &clocks),
                    graceful = &mut rx => break graceful.unwrap_or(false),
                }
            };
            if graceful {
                // The last messages' alerts, a moment later.
                tokio::time::sleep(ALERT_GRACE).await;
            }
            alerts.pump(&recorder, &clocks);
            alerts.stop().await
        });
        (task, tx)
    };

    // The dispatchers: each message at its time, to a connection with room.
    let started = Instant::now();
    let dispatchers: Vec<_> = feeds
        .into_iter()
        .enumerate()
        .map(|(j, feed_rx)| {
            let d = Dispatcher {
                queues: queues.clone(),
                recorder: live.recorders[j].clone(),
                live: live.clone(),
                t0,
                speed: config.speed,
                window_ms: profile.window_ms,
                max_late,
                next: j * connections / generators,
            };
            let stop = stop.clone();
            tokio::spawn(async move { d.run(feed_rx, &stop).await })
        })
        .collect();
    drop(queues);
    for d in dispatchers {
        let _ = d.await;
    }
    let draining = async {
        for w in workers.iter_mut() {
            let _ = w.await;
        }
    };
    if stop.is_stopped() || live.abort.load(Ordering::Relaxed) {
        if tokio::time::timeout(DRAIN, draining).await.is_err() {
            for w in &workers {
                w.abort();
            }
        }
    } else {
        draining.await;
    }
    let wall_s = started.elapsed().as_secs_f64();
    for f in feeders {
        let _ = f.join();
    }
    let _ = pump_stop.send(!stop.is_stopped() && !live.abort.load(Ordering::Relaxed));
    let alert_tally = pumped.await.unwrap_or_default();
    live.done.store(true, Ordering::Relaxed);
    let collected = collector
        .join()
        .map_err(|_| anyhow::anyhow!("the collector panicked"))??;
    if let Some(b) = embedded.backend {
        b.shutdown(Duration::from_millis(200)).await;
    }
    if let Some(b) = embedded.broker {
        b.stop().await;
    }
    let report = LoadReport::build(report::Inputs {
        scenario: s,
        profile: &profile,
        target: &url,
        shard: config.shard,
        speed: config.speed,
        connections: connections as u32,
        generators: generators as u32,
        devices: devices as u64,
        start_at: wall_start,
        wall_s,
        cpu_cores_used: collected.cpu_cores_used,
        stopped: stop.reason().map(|r| r.name().to_owned()),
        aborted: collected.aborted,
        alerts: alert_tally,
        finished: collected.finished,
    });
    report.write(&config.out)?;
    Ok(report)
}

/// How many twin threads: the command line's, else one per core; never
/// more than this process has patients.
fn generators(s: &Scenario, config: &LoadConfig) -> usize {
    let wanted = config.generators.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        |g| g as usize,
    );
    let patients: u64 = s.sim.cohorts.iter().map(|c| u64::from(c.count)).sum();
    let n = u64::from(config.shard.count.max(1));
    let k = u64::from(config.shard.index);
    let mine = patients / n + u64::from(patients % n > k);
    wanted.clamp(1, usize::try_from(mine.max(1)).unwrap_or(usize::MAX))
}

/// One twin's dispatcher: waits for each message's time and hands it to
/// a connection's queue with room, or drops and counts it.
struct Dispatcher {
    queues: Vec<mpsc::Sender<Outgoing>>,
    recorder: Arc<Mutex<Recorder>>,
    live: Arc<Live>,
    t0: Instant,
    speed: f64,
    window_ms: u64,
    max_late: Duration,
    /// The connection to try first.
    next: usize,
}

impl Dispatcher {
    async fn run(mut self, mut feed: mpsc::Receiver<Fed>, stop: &Stop) {
        loop {
            let fed = tokio::select! {
                fed = feed.recv() => fed,
                _ = stop.stopped() => None,
            };
            let Some(fed) = fed else { break };
            if self.live.abort.load(Ordering::Relaxed) {
                break;
            }
            let due = self.t0 + Duration::from_secs_f64(fed.due_ms as f64 / 1_000.0 / self.speed);
            if due > Instant::now() {
                tokio::select! {
                    () = tokio::time::sleep_until(due.into()) => {}
                    _ = stop.stopped() => break,
                }
            }
            self.hand_out(fed, due);
        }
    }

    /// Gives each of a batch's messages to a connection with room in its
    /// queue (round robin from `next`), or drops and counts it.
    fn hand_out(&mut self, fed: Fed, due: Instant) {
        let connections = self.queues.len();
        let window = fed.due_ms / self.window_ms;
        let mut r = self.recorder.lock().unwrap_or_else(|p| p.into_inner());
        let w = r.window(window);
        for (body, topic) in fed.messages {
            let late = Instant::now().saturating_duration_since(due);
            w.counts.scheduled += 1;
            let _ = w
                .lateness
                .record(u64::try_from(late.as_micros()).unwrap_or(u64::MAX).max(1));
            if late > self.max_late {
                w.dropped("dropped_late");
                continue;
            }
            let mut message = Some(Outgoing {
                window,
                due,
                body,
                topic,
            });
            for k in 0..connections {
                let queue = &self.queues[(self.next + k) % connections];
                match queue.try_send(message.take().expect("held")) {
                    Ok(()) => {
                        self.live.backlog.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                    Err(
                        mpsc::error::TrySendError::Full(m) | mpsc::error::TrySendError::Closed(m),
                    ) => message = Some(m),
                }
            }
            self.next = (self.next + 1) % connections;
            if message.is_some() {
                w.dropped("dropped_queue_full");
            }
        }
    }
}

/// What the collector hands back.
struct Collected {
    finished: stats::Finished,
    cpu_cores_used: f64,
    aborted: Option<String>,
}

/// The collector's thread: closes windows in order once nothing more can
/// land in them (`settle` after their end: a message starts at most
/// `max_late` after its time, and a connect and a request take at most a
/// timeout each), writes them to the interval log, judges `per`
/// thresholds (aborting on a failure when asked), prints progress.
fn collect(
    live: &Live,
    profile: &LoadProfile,
    t0: Instant,
    speed: f64,
    out: &std::path::Path,
    mut progress: Progress,
    settle: Duration,
) -> anyhow::Result<Collected> {
    let path = out.join(LOG_FILE);
    let mut file = std::io::BufWriter::new(
        std::fs::File::create(&path).with_context(|| format!("cannot write {}", path.display()))?,
    );
    let mut serializer = V2DeflateSerializer::new();
    let mut log = IntervalLogWriterBuilder::new()
        .add_comment("medtwin load: windows of scheduled time; values in microseconds")
        .begin_log_with(&mut file, &mut serializer)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    let mut agg = Aggregator::new(profile.window_ms, &profile.thresholds);
    let mut aborted = None;
    let cpu_start = process_cpu_s();
    let started = Instant::now();
    loop {
        let done = live.done.load(Ordering::Relaxed);
        let horizon = if done {
            u64::MAX
        } else {
            let elapsed = Instant::now().saturating_duration_since(t0);
            let settled = elapsed.saturating_sub(settle + Duration::from_millis(200));
            (settled.as_secs_f64() * speed * 1_000.0 / profile.window_ms as f64) as u64
        };
        let mut closing: std::collections::BTreeMap<u64, WindowData> = Default::default();
        for r in &live.recorders {
            let taken = r
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take_before(horizon);
            for (i, data) in taken {
                closing.entry(i).or_default().add(&data);
            }
        }
        for (i, data) in closing {
            stats::log_window(&mut log, i, profile.window_ms, &data)?;
            if agg.close(i, data) && profile.abort_on_fail && aborted.is_none() {
                aborted = Some(format!(
                    "a threshold failed in the window at {} s",
                    (i * profile.window_ms) as f64 / 1_000.0
                ));
                live.abort.store(true, Ordering::Relaxed);
            }
        }
        progress.tick(&agg, live, t0, speed);
        if done {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(log);
    std::io::Write::flush(&mut file)?;
    let cpu = process_cpu_s() - cpu_start;
    Ok(Collected {
        finished: agg.finish(),
        cpu_cores_used: cpu / started.elapsed().as_secs_f64().max(1e-9),
        aborted,
    })
}

/// Progress on stderr: on a terminal an indicatif status line redrawn
/// twice a second, otherwise a plain line every [`PROGRESS_EVERY`].
struct Progress {
    mode: ProgressMode,
    last: Instant,
    last_sent: u64,
    last_cpu: f64,
}

enum ProgressMode {
    Off,
    Lines,
    Bar(indicatif::ProgressBar),
}

/// Seconds between progress lines.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);
/// The status line's redraw interval.
const BAR_EVERY: Duration = Duration::from_millis(500);

impl Progress {
    fn new(quiet: bool, duration_ms: u64) -> Progress {
        use std::io::IsTerminal as _;
        let mode = if quiet {
            ProgressMode::Off
        } else if std::io::stderr().is_terminal() {
            let bar = indicatif::ProgressBar::with_draw_target(
                Some(duration_ms),
                indicatif::ProgressDrawTarget::stderr(),
            );
            bar.set_style(
                indicatif::ProgressStyle::with_template("{bar:20} {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            ProgressMode::Bar(bar)
        } else {
            ProgressMode::Lines
        };
        Progress {
            mode,
            last: Instant::now(),
            last_sent: 0,
            last_cpu: process_cpu_s(),
        }
    }

    fn tick(&mut self, agg: &Aggregator, live: &Live, t0: Instant, speed: f64) {
        let every = match self.mode {
            ProgressMode::Off => return,
            ProgressMode::Lines => PROGRESS_EVERY,
            ProgressMode::Bar(_) => BAR_EVERY,
        };
        if self.last.elapsed() < every {
            return;
        }
        let mut open = stats::Counts::default();
        for r in &live.recorders {
            let r = r.lock().unwrap_or_else(|p| p.into_inner());
            r.peek_counts(&mut open);
        }
        open.add(&agg.total.counts);
        let dt = self.last.elapsed().as_secs_f64();
        let cpu = process_cpu_s();
        let sends = (open.sent.saturating_sub(self.last_sent)) as f64 / dt;
        let cores = (cpu - self.last_cpu) / dt;
        let last = agg.windows.last();
        let sim_s = Instant::now().saturating_duration_since(t0).as_secs_f64() * speed;
        let causes: Vec<String> = open
            .causes
            .iter()
            .map(|(c, n)| format!("{c}={n}"))
            .collect();
        let text = format!(
            "t={} sends/s={sends:.0} sent={} accepted={} errors[{}] ingest p99={} backlog={} lateness p99={} cpu={cores:.2} cores",
            crate::scenario::duration::format(sim_s as u64 * 1_000),
            open.sent,
            open.accepted,
            if causes.is_empty() {
                "none".into()
            } else {
                causes.join(" ")
            },
            last.map_or("-".into(), |w| format!("{:.1}ms", w.ingest_ms.p99)),
            live.backlog.load(Ordering::Relaxed),
            last.map_or("-".into(), |w| format!("{:.1}ms", w.lateness_ms.p99)),
        );
        match &self.mode {
            ProgressMode::Bar(bar) => {
                bar.set_position((sim_s * 1_000.0) as u64);
                bar.set_message(text);
            }
            _ => eprintln!("load: {text}"),
        }
        self.last = Instant::now();
        self.last_sent = open.sent;
        self.last_cpu = cpu;
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let ProgressMode::Bar(bar) = &self.mode {
            bar.finish_and_clear();
        }
    }
}
