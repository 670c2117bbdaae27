//! The twin's hot paths, measured with divan: one step of the vitals path
//! (healthy patients, no devices), one minute of the glucose model, and one
//! step of the device, gateway and network path (four devices per patient
//! over LTE through store-and-forward phones with random outages).
//!
//! `cargo bench -p medtwin-sim` runs them; CI builds them
//! (`cargo bench --no-run`). `medtwin bench sim|net` measures the same
//! paths at fleet scale for users. The machines are shared and noisy:
//! compare runs on one machine, one after the other.

use divan::Bencher;
use divan::counter::ItemsCount;
use medtwin_sim::glucose::{self, Drive, GlucoseParams, GlucoseState, Metabolism};
use medtwin_sim::{
    CohortConfig, DeviceConfig, DeviceKind, Eviction, GatewayConfig, NetworkConfig, ProfileSpec,
    Shard, SimConfig, Twin,
};

fn main() {
    divan::main();
}

/// A ward of `patients` healthy adults with `devices` on each.
fn config(patients: u32, devices: Vec<DeviceConfig>, network: NetworkConfig) -> SimConfig {
    SimConfig {
        seed: 1,
        step_ms: 1_000,
        // Long enough never to finish inside a benchmark.
        duration_ms: 365 * 86_400_000,
        start_ms_of_day: 8 * 3_600_000,
        cohorts: vec![CohortConfig {
            name: "ward".into(),
            count: patients,
            profile: ProfileSpec::healthy_adult(),
            devices,
            network,
        }],
        events: Vec::new(),
        interventions: Vec::new(),
        faults: Vec::new(),
        shard: Shard::WHOLE,
    }
}

/// One one-second step of the vitals path, per patient.
#[divan::bench(args = [1_000, 10_000])]
fn sim_step(bencher: Bencher, patients: u32) {
    let mut twin = Twin::new(&config(patients, Vec::new(), NetworkConfig::IDEAL)).unwrap();
    for _ in 0..60 {
        twin.step();
    }
    bencher
        .counter(ItemsCount::new(patients))
        .bench_local(|| twin.step().now_ms);
}

/// One simulated minute of the glucose model, per patient (half type 1,
/// half non-diabetic, after a meal).
#[divan::bench(args = [1_000])]
fn glucose_minute(bencher: Bencher, patients: u32) {
    let params: Vec<GlucoseParams> = (0..patients)
        .map(|i| {
            let metabolism = if i % 2 == 0 {
                Metabolism::Type1
            } else {
                Metabolism::NonDiabetic
            };
            GlucoseParams::new(50.0 + f64::from(i % 60), metabolism, 1.0, 100.0)
        })
        .collect();
    let mut states: Vec<GlucoseState> = params
        .iter()
        .map(|p| {
            let mut s = GlucoseState::steady(p);
            s.eat(p, 60.0);
            s
        })
        .collect();
    let drive = Drive::default();
    bencher.counter(ItemsCount::new(patients)).bench_local(|| {
        for (s, p) in states.iter_mut().zip(&params) {
            glucose::step_minutes(s, p, &drive, 1);
        }
    });
}

/// One step of the device and network path, per device.
#[divan::bench(args = [1_000])]
fn device_network_step(bencher: Bencher, devices: u32) {
    let fleet = vec![
        DeviceConfig::of(DeviceKind::PulseOximeter),
        DeviceConfig::of(DeviceKind::EcgPatch),
        DeviceConfig::of(DeviceKind::BpCuff),
        DeviceConfig::of(DeviceKind::Thermometer),
    ];
    let network = NetworkConfig {
        gateway: Some(GatewayConfig {
            buffer: 3_600,
            eviction: Eviction::DropOldest,
            flush_per_s: 20.0,
            mtbf_ms: Some(3_600_000),
            mttr_ms: 5 * 60_000,
        }),
        ..NetworkConfig::named("lte").unwrap_or(NetworkConfig::IDEAL)
    };
    let mut twin = Twin::new(&config(devices / 4, fleet, network)).unwrap();
    for _ in 0..60 {
        twin.step();
    }
    bencher
        .counter(ItemsCount::new(devices))
        .bench_local(|| twin.step().deliveries.len());
}
