//! `medtwin bench sim`: how fast the twin's physiology runs on this machine,
//! and how much state each patient costs. A documented measurement, not a
//! test: the machines are shared and noisy.

use std::time::Instant;

use medtwin_sim::glucose::{self, Drive, GlucoseParams, GlucoseState, Metabolism};
use medtwin_sim::{CohortConfig, NetworkConfig, ProfileSpec, SimConfig, Twin};

/// What `bench sim` measured.
#[derive(Clone, Debug, PartialEq)]
pub struct SimBench {
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

fn shard_config(shard: usize, patients: u32, steps: u64) -> SimConfig {
    SimConfig {
        seed: 1,
        step_ms: 1_000,
        duration_ms: (steps + 10) * 1_000,
        start_ms_of_day: 8 * 3_600_000,
        cohorts: vec![CohortConfig {
            name: format!("bench{shard}"),
            count: patients,
            profile: ProfileSpec::healthy_adult(),
            devices: Vec::new(),
            network: NetworkConfig::IDEAL,
        }],
        events: Vec::new(),
        interventions: Vec::new(),
    }
}

/// Runs the benchmark: `patients` healthy adults split over `threads`
/// twins, `steps` one-second steps timed after a short warm-up.
pub fn sim(patients: u64, threads: usize, steps: u64) -> Result<SimBench, String> {
    let threads = threads.max(1);
    let per = u32::try_from(patients.div_ceil(threads as u64))
        .map_err(|_| "too many patients per thread".to_string())?;
    let patients = u64::from(per) * threads as u64;
    let rss_before = rss_bytes();
    let mut twins = Vec::with_capacity(threads);
    for shard in 0..threads {
        twins.push(Twin::new(&shard_config(shard, per, steps)).map_err(|e| e.to_string())?);
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
        "{build}vitals path: {patients} patients x {steps} steps of 1 s on {threads} thread(s) in {secs:.2} s\n\
         \x20 {rate:.2} million patient-steps/s ({rt:.0}x real time for the whole population)\n\
         \x20 state per patient: {comp} B of components, {rss} resident (measured)\n\
         glucose model: {g:.2} million patient-minutes/s\n",
        patients = b.patients,
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
    fn a_tiny_bench_reports_consistent_figures() {
        let b = sim(200, 2, 5).unwrap();
        assert_eq!(b.patients, 200);
        assert!(b.patient_steps_per_s > 0.0);
        assert!(b.component_bytes > 100, "{}", b.component_bytes);
        let text = human(&b);
        assert!(text.contains("200 patients x 5 steps"), "{text}");
    }
}
