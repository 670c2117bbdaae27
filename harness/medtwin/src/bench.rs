//! `medtwin bench sim`: how fast the twin's physiology runs on this machine,
//! and how much state each patient costs. A documented measurement, not a
//! test: the machines are shared and noisy.

use std::time::Instant;

use medtwin_sim::glucose::{self, Drive, GlucoseParams, GlucoseState, Metabolism};
use medtwin_sim::{
    CohortConfig, ConditionKind, DeviceConfig, EventConfig, Eviction, GatewayConfig, NetworkConfig,
    Params, PatientSelector, ProfileSpec, Shard, SimConfig, Twin,
};

/// What `bench sim` measured.
#[derive(Clone, Debug, PartialEq)]
pub struct SimBench {
    /// Share of patients with conditions, %.
    pub sick_pct: f64,
    /// Patients simulated.
    pub patients: u64,
    /// Threads (one twin shard each).
    pub threads: usize,
    /// Steps timed.
    pub steps: u64,
    /// Wall time of the timed steps, s.
    pub seconds: f64,
    /// Patient-steps per second over all threads.
    pub patient_steps_per_s: f64,
    /// Bytes of component state per patient (sum of component sizes).
    pub component_bytes: usize,
    /// Resident memory added per patient while building the twins, bytes.
    pub rss_bytes_per_patient: Option<f64>,
    /// Glucose model: patient-minutes per second over all threads.
    pub glucose_patient_minutes_per_s: f64,
}

/// Resident set size of this process, bytes (Linux `/proc/self/statm`).
fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn bench_config(shard: Shard, patients: u32, steps: u64, sick_pct: f64) -> SimConfig {
    // The first `sick_pct` % of the population get sepsis from the start and
    // a paroxysm of AF halfway: the conditions path, not just the fast path.
    let sick = ((f64::from(patients) * sick_pct / 100.0).round() as u32).min(patients);
    let who = PatientSelector {
        cohort: 0,
        first: 0,
        end: sick.max(1),
        pick: None,
    };
    let events = if sick == 0 {
        Vec::new()
    } else {
        [
            (ConditionKind::Sepsis, 0),
            (ConditionKind::AtrialFibrillation, steps * 500),
        ]
        .into_iter()
        .map(|(kind, at_ms)| EventConfig {
            at_ms,
            who: who.clone(),
            condition: kind,
            severity: 1.0,
            ramp_ms: kind.default_ramp_ms(),
            duration_ms: None,
            params: Params::defaults(kind.params()),
        })
        .collect()
    };
    SimConfig {
        seed: 1,
        step_ms: 1_000,
        duration_ms: (steps + 10) * 1_000,
        start_ms_of_day: 8 * 3_600_000,
        cohorts: vec![CohortConfig {
            name: "bench".into(),
            count: patients,
            profile: ProfileSpec::healthy_adult(),
            devices: Vec::new(),
            network: NetworkConfig::IDEAL,
        }],
        events,
        interventions: Vec::new(),
        faults: Vec::new(),
        shard,
    }
}

/// Runs the benchmark: `patients` healthy adults split over `threads`
/// twins (`sick_pct` % of them with conditions), `steps` one-second steps
/// timed after a short warm-up.
pub fn sim(patients: u64, threads: usize, steps: u64, sick_pct: f64) -> Result<SimBench, String> {
    let threads = threads.max(1);
    let total = u32::try_from(patients).map_err(|_| "too many patients".to_string())?;
    let rss_before = rss_bytes();
    let mut twins = Vec::with_capacity(threads);
    for index in 0..threads {
        // One shard of one population per thread: exactly what a sharded
        // run does (and gives the same records as one twin would).
        let shard = Shard {
            index: index as u32,
            count: threads as u32,
        };
        twins.push(
            Twin::new(&bench_config(shard, total, steps, sick_pct)).map_err(|e| e.to_string())?,
        );
    }
    // Warm up: one simulated minute, so every lazily grown buffer exists.
    for twin in &mut twins {
        for _ in 0..60 {
            twin.step();
        }
    }
    let rss_after = rss_bytes();
    let start = Instant::now();
    std::thread::scope(|scope| {
        for twin in &mut twins {
            scope.spawn(move || {
                for _ in 0..steps {
                    twin.step();
                }
            });
        }
    });
    let seconds = start.elapsed().as_secs_f64();
    drop(twins);

    let glucose_rate = glucose_bench(patients.min(200_000), threads);
    Ok(SimBench {
        sick_pct,
        patients,
        threads,
        steps,
        seconds,
        patient_steps_per_s: (patients * steps) as f64 / seconds,
        component_bytes: Twin::patient_component_bytes(),
        rss_bytes_per_patient: match (rss_before, rss_after) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 / patients as f64),
            _ => None,
        },
        glucose_patient_minutes_per_s: glucose_rate,
    })
}

/// What `bench net` measured.
#[derive(Clone, Debug, PartialEq)]
pub struct NetBench {
    /// Devices simulated (four per patient).
    pub devices: u64,
    /// Threads (one twin shard each).
    pub threads: usize,
    /// Simulated seconds timed.
    pub sim_s: u64,
    /// Wall time, s.
    pub seconds: f64,
    /// Measurements taken per wall second.
    pub measurements_per_s: f64,
    /// Simulated seconds per wall second for the whole fleet.
    pub times_real_time: f64,
    /// Measurements lost, by cause, and still buffered or in flight.
    pub lost: u64,
    /// Held in gateway buffers or on the wire at the end.
    pub pending: u64,
    /// Resident memory added per device (with its share of its patient), bytes.
    pub rss_bytes_per_device: Option<f64>,
}

/// The device and network path: `devices / 4` remote patients, each with
/// a 1-Hz wearable finger oximeter, an ECG patch, a cuff and a temperature
/// patch (catalogue models: batteries, clock drift, motion and lead-off
/// artifacts, resends, duplicates, on-board memory), over LTE through a
/// phone that stores and forwards, with random uplink outages (MTBF 1 h,
/// MTTR 5 min) so buffers fill and flush during the run.
pub fn net(devices: u64, threads: usize, sim_s: u64) -> Result<NetBench, String> {
    let threads = threads.max(1);
    let catalogue = crate::scenario::catalogue::Catalogue::builtin().map_err(|d| d.to_string())?;
    let model = |name: &str, every_ms: u64| -> Result<DeviceConfig, String> {
        let spec = catalogue
            .device(name)
            .ok_or_else(|| format!("no {name} in the built-in catalogue"))?
            .clone();
        Ok(DeviceConfig {
            every_ms,
            age_ms: spec.default_age_ms(),
            spec,
            battery_pct: 100.0,
            waveform: None,
        })
    };
    let fleet = vec![
        model("finger_oximeter", 1_000)?,
        model("ecg_patch", 60_000)?,
        model("bp_cuff", 15 * 60_000)?,
        model("temperature_patch", 5 * 60_000)?,
    ];
    let patients = u32::try_from(devices.div_ceil(4)).map_err(|_| "too many devices")?;
    let config = |shard| SimConfig {
        seed: 1,
        step_ms: 1_000,
        duration_ms: (sim_s + 70) * 1_000,
        start_ms_of_day: 8 * 3_600_000,
        cohorts: vec![CohortConfig {
            name: "home".into(),
            count: patients,
            profile: ProfileSpec::healthy_adult(),
            devices: fleet.clone(),
            network: NetworkConfig {
                gateway: Some(GatewayConfig {
                    buffer: 3_600,
                    eviction: Eviction::DropOldest,
                    flush_per_s: 20.0,
                    mtbf_ms: Some(3_600_000),
                    mttr_ms: 5 * 60_000,
                }),
                ..NetworkConfig::named("lte").unwrap_or(NetworkConfig::IDEAL)
            },
        }],
        events: Vec::new(),
        interventions: Vec::new(),
        faults: Vec::new(),
        shard,
    };
    let rss_before = rss_bytes();
    let mut twins = Vec::with_capacity(threads);
    for index in 0..threads {
        let shard = Shard {
            index: index as u32,
            count: threads as u32,
        };
        twins.push(Twin::new(&config(shard)).map_err(|e| e.to_string())?);
    }
    for twin in &mut twins {
        for _ in 0..60 {
            twin.step();
        }
    }
    let rss_after = rss_bytes();
    let start = Instant::now();
    let measured: u64 = std::thread::scope(|scope| {
        let handles: Vec<_> = twins
            .iter_mut()
            .map(|twin| {
                scope.spawn(move || {
                    let mut n = 0u64;
                    for _ in 0..sim_s {
                        n += twin.step().measurements.len() as u64;
                    }
                    n
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
    });
    let seconds = start.elapsed().as_secs_f64();
    let (lost, pending) = twins.iter().fold((0, 0), |(l, p), t| {
        let a = t.accounting();
        (l + a.lost(), p + a.pending())
    });
    let devices = u64::from(patients) * 4;
    Ok(NetBench {
        devices,
        threads,
        sim_s,
        seconds,
        measurements_per_s: measured as f64 / seconds,
        times_real_time: sim_s as f64 / seconds,
        lost,
        pending,
        rss_bytes_per_device: match (rss_before, rss_after) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 / devices as f64),
            _ => None,
        },
    })
}

/// Human-readable `bench net` result.
pub fn human_net(b: &NetBench) -> String {
    format!(
        "device and network path: {devices} devices ({patients} patients over LTE via store-and-forward phones, random outages) on {threads} thread(s)\n\
         \x20 {sim}s simulated in {secs:.2} s: {rt:.1}x real time, {rate:.0} measurements/s\n\
         \x20 lost {lost}, buffered or in flight {pending}\n\
         \x20 memory per device: {rss} resident (measured, with its share of the patient)\n",
        devices = b.devices,
        patients = b.devices / 4,
        threads = b.threads,
        sim = b.sim_s,
        secs = b.seconds,
        rt = b.times_real_time,
        rate = b.measurements_per_s,
        lost = b.lost,
        pending = b.pending,
        rss = b
            .rss_bytes_per_device
            .map_or("unknown".to_string(), |r| format!("{r:.0} B")),
    )
}

/// The glucose model alone: a day of one-minute steps for a mixed cohort.
fn glucose_bench(patients: u64, threads: usize) -> f64 {
    let minutes = 1_440u32;
    let per = patients.div_ceil(threads as u64) as usize;
    let start = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..threads {
            scope.spawn(move || {
                let mut cohort: Vec<(GlucoseParams, GlucoseState)> = (0..per)
                    .map(|i| {
                        let metabolism = if (i + t) % 2 == 0 {
                            Metabolism::Type1
                        } else {
                            Metabolism::NonDiabetic
                        };
                        let p = GlucoseParams::new(60.0 + (i % 40) as f64, metabolism, 1.0, 100.0);
                        let s = GlucoseState::steady(&p);
                        (p, s)
                    })
                    .collect();
                let drive = Drive::default();
                for (p, s) in &mut cohort {
                    s.eat(p, 60.0);
                }
                for (p, s) in &mut cohort {
                    glucose::step_minutes(s, p, &drive, minutes);
                }
                std::hint::black_box(&cohort);
            });
        }
    });
    (per * threads) as f64 * f64::from(minutes) / start.elapsed().as_secs_f64()
}

/// Human-readable result.
pub fn human(b: &SimBench) -> String {
    let build = if cfg!(debug_assertions) {
        "debug build: figures are far below release; run `cargo run --release --bin medtwin -- bench sim`\n"
    } else {
        ""
    };
    format!(
        "{build}vitals path: {patients} patients ({sick}% with conditions) x {steps} steps of 1 s on {threads} thread(s) in {secs:.2} s\n\
         \x20 {rate:.2} million patient-steps/s ({rt:.0}x real time for the whole population)\n\
         \x20 state per patient: {comp} B of components, {rss} resident (measured)\n\
         glucose model: {g:.2} million patient-minutes/s\n",
        patients = b.patients,
        sick = b.sick_pct,
        steps = b.steps,
        threads = b.threads,
        secs = b.seconds,
        rate = b.patient_steps_per_s / 1e6,
        rt = b.patient_steps_per_s / b.patients as f64,
        comp = b.component_bytes,
        rss = b
            .rss_bytes_per_patient
            .map_or("unknown".to_string(), |r| format!("{r:.0} B")),
        g = b.glucose_patient_minutes_per_s / 1e6,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tiny_net_bench_counts_its_devices() {
        let b = net(400, 2, 30).unwrap();
        assert_eq!(b.devices, 400);
        assert!(b.measurements_per_s > 0.0);
        assert!(human_net(&b).contains("400 devices (100 patients"));
    }

    #[test]
    fn a_tiny_bench_reports_consistent_figures() {
        let b = sim(200, 2, 5, 10.0).unwrap();
        assert_eq!(b.patients, 200);
        assert!(b.patient_steps_per_s > 0.0);
        assert!(b.component_bytes > 100, "{}", b.component_bytes);
        let text = human(&b);
        assert!(
            text.contains("200 patients (10% with conditions) x 5 steps"),
            "{text}"
        );
    }
}

/// What `bench ecg` measured.
#[derive(Clone, Debug, PartialEq)]
pub struct EcgBench {
    /// Sample rate, Hz.
    pub rate_hz: u32,
    /// Simulated seconds per stream.
    pub seconds: u64,
    /// Streams (one heart and one device each).
    pub streams: u64,
    /// Clean ECG lead II, synthesis alone: samples per second on one core.
    pub clean_samples_per_s: f64,
    /// AF with moderate artifacts and the device's QRS detector.
    pub device_samples_per_s: f64,
}

/// Times ECG synthesis on one core: `ECG_STREAMS` hearts of 72 /min sinus
/// rhythm, `seconds` each in 1-s blocks at `rate_hz`; then the same with
/// AF, moderate noise and the QRS detector (what a waveform device costs).
pub fn ecg(rate_hz: u32, seconds: u64) -> Result<EcgBench, String> {
    use medtwin_sim::rng;
    use medtwin_sim::waveform::{
        Channel, Drive, EcgRhythm, Heart, NoiseLevel, Synth, WaveformConfig,
    };
    if !WaveformConfig::RATES_HZ.contains(&rate_hz) {
        return Err(format!("--rate-hz {rate_hz}: expected 125, 250 or 500"));
    }
    const ECG_STREAMS: u64 = 1_000;
    let seconds = seconds.max(1);
    let run = |rhythm: EcgRhythm, noise: NoiseLevel, detector: bool| -> f64 {
        let config = WaveformConfig {
            rate_hz,
            channels: vec![Channel::EcgII],
            noise,
            mains_hz: 50,
        };
        let drive = Drive {
            rate_bpm: 72.0,
            rhythm,
            resp_bpm: 14.0,
            perfusion: 1.0,
            pvc_per_min: 0.0,
        };
        let start = Instant::now();
        let mut checksum = 0.0f32;
        for stream in 0..ECG_STREAMS {
            let mut heart = Heart::new(rng::stream(1, stream, "waveform"));
            let synth = Synth::new(config.clone(), rng::stream(1, stream, "device"));
            let mut synth = if detector {
                synth
            } else {
                synth.without_detector()
            };
            for s in 0..seconds {
                heart.advance(s as f64, (s + 1) as f64, &drive);
                synth.render(&heart, s * 1000, (s + 1) * 1000);
                checksum += synth.channel(0)[0];
            }
        }
        std::hint::black_box(checksum);
        let samples = (ECG_STREAMS * seconds * u64::from(rate_hz)) as f64;
        samples / start.elapsed().as_secs_f64()
    };
    Ok(EcgBench {
        rate_hz,
        seconds,
        streams: ECG_STREAMS,
        clean_samples_per_s: run(EcgRhythm::Sinus, NoiseLevel::None, false),
        device_samples_per_s: run(EcgRhythm::Af, NoiseLevel::Moderate, true),
    })
}

/// `bench ecg` for people.
pub fn human_ecg(b: &EcgBench) -> String {
    let build = if cfg!(debug_assertions) {
        "debug build: figures are far below release; run `cargo run --release --bin medtwin -- bench ecg`\n"
    } else {
        ""
    };
    format!(
        "{build}ECG lead II at {} Hz, {} streams x {} s, one core:\n  synthesis (sinus, clean): {:.1} M samples/s\n  device (AF, moderate artifacts, QRS detector): {:.1} M samples/s\n",
        b.rate_hz,
        b.streams,
        b.seconds,
        b.clean_samples_per_s / 1e6,
        b.device_samples_per_s / 1e6
    )
}
