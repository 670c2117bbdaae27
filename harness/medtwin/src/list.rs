//! `medtwin list profiles|conditions|interventions|networks|devices`: what a scenario can
//! name, with a one-line description and every parameter.

use std::fmt::Write as _;
use std::path::PathBuf;

use medtwin_sim::glucose::Metabolism;
use medtwin_sim::{
    ConditionKind, FaultKind, InterventionKind, NetworkConfig, ParamKind, ParamSpec, Spread,
};

use crate::scenario::catalogue::Catalogue;
use crate::scenario::duration;

/// What to list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ListWhat {
    /// Patient populations (built in, plus `--catalogue` files).
    Profiles,
    /// Conditions an `[[event]]` can start.
    Conditions,
    /// Interventions an `[[intervention]]` can give.
    Interventions,
    /// Network profiles, gateway settings and fault kinds.
    Networks,
    /// Device models (built in, plus `--catalogue` files) with their specs.
    Devices,
}

/// Renders the listing, or the catalogue errors.
pub fn render(what: ListWhat, catalogues: &[PathBuf]) -> Result<String, String> {
    let mut out = String::new();
    match what {
        ListWhat::Devices => {
            let mut catalogue = Catalogue::builtin().map_err(|d| d.to_string())?;
            for path in catalogues {
                catalogue.add_file(path).map_err(|d| d.to_string())?;
            }
            for d in &catalogue.devices {
                device(&mut out, d);
            }
        }
        ListWhat::Profiles => {
            let mut catalogue = Catalogue::builtin().map_err(|d| d.to_string())?;
            for path in catalogues {
                catalogue.add_file(path).map_err(|d| d.to_string())?;
            }
            for p in &catalogue.profiles {
                let _ = writeln!(out, "{}  {}", p.name, p.description);
                let _ = writeln!(
                    out,
                    "    age {}  female {}%  weight {} kg  metabolism {}  SpO2 scale {}",
                    spread(&p.age),
                    p.female_pct,
                    spread(&p.weight_kg),
                    match p.metabolism {
                        Metabolism::NonDiabetic => "non_diabetic",
                        Metabolism::Type1 => "type1",
                    },
                    p.spo2_scale
                );
                let _ = writeln!(
                    out,
                    "    HR {}  SBP {}  DBP {}  RR {}  SpO2 {}  temp {}",
                    spread(&p.hr),
                    spread(&p.sbp),
                    spread(&p.dbp),
                    spread(&p.rr),
                    spread(&p.spo2),
                    spread(&p.temp)
                );
                let _ = writeln!(
                    out,
                    "    EtCO2 {}  glucose {}  CO {}  BP dip {}  meals {}",
                    spread(&p.etco2),
                    spread(&p.glucose),
                    spread(&p.cardiac_output),
                    spread(&p.bp_dip),
                    p.meals.len()
                );
                if !p.source.is_empty() {
                    let _ = writeln!(out, "    source: {}", p.source);
                }
            }
        }
        ListWhat::Conditions => {
            for kind in ConditionKind::ALL {
                let _ = writeln!(out, "{}  {}", kind.name(), kind.describe());
                let _ = writeln!(
                    out,
                    "    severity (0-1, default 1)  ramp (default {})  duration (default: until it resolves)",
                    duration::format(kind.default_ramp_ms())
                );
                params(&mut out, kind.params());
            }
        }
        ListWhat::Interventions => {
            for kind in InterventionKind::ALL {
                let _ = writeln!(out, "{}  {}", kind.name(), kind.describe());
                params(&mut out, kind.params());
            }
        }
        ListWhat::Networks => {
            let _ = writeln!(
                out,
                "network profiles (one hop: log-normal latency, Gilbert-Elliott bursty loss; design choices on docs/references.md orders of magnitude):"
            );
            for (name, n) in NetworkConfig::PROFILES {
                let _ = writeln!(
                    out,
                    "  {name:<14} median {} ms  p99 {} ms  loss {} %  mean loss burst {} messages{}",
                    n.latency_median_ms,
                    n.latency_p99_ms,
                    n.loss_pct,
                    n.loss_burst,
                    n.gateway.as_ref().map_or(String::new(), |g| format!(
                        "  gateway: buffer {}, flush {}/s{}",
                        g.buffer,
                        g.flush_per_s,
                        g.mtbf_ms.map_or(String::new(), |m| format!(
                            ", outages every ~{} s lasting ~{} s",
                            m / 1000,
                            g.mttr_ms / 1000
                        ))
                    ))
                );
            }
            let _ = writeln!(
                out,
                "a table sets any of: profile, latency_median, latency_p99, loss_pct, loss_burst, gateway"
            );
            let _ = writeln!(
                out,
                "gateway (store and forward): buffer (messages, default 3600), eviction (drop_oldest|drop_newest), flush_rate (messages/s, default 20), mtbf and mttr (random uplink outages)"
            );
            let _ = writeln!(
                out,
                "faults ([[fault]] with at, who, pick, kind, duration):"
            );
            for kind in FaultKind::ALL {
                let _ = writeln!(
                    out,
                    "  {}  the patient's uplink is down: a gateway buffers (and evicts when full), without one messages are lost",
                    kind.name()
                );
            }
        }
    }
    Ok(out)
}

fn spread(s: &Spread) -> String {
    if s.sd == 0.0 && s.min == s.max {
        format!("{}", s.mean)
    } else {
        format!("{}±{} [{}-{}]", s.mean, s.sd, s.min, s.max)
    }
}

fn params(out: &mut String, specs: &[ParamSpec]) {
    for p in specs {
        let kind = match p.kind {
            ParamKind::Number { unit, min, max, .. } => format!("{min}-{max} {unit}"),
            ParamKind::Choice { options, .. } => options.join("|"),
        };
        let _ = writeln!(
            out,
            "    {} ({kind}, default {}): {}",
            p.name,
            p.default_text(),
            p.help
        );
    }
}

/// One device model: what it is, how often, how well, on what power, and
/// its quirks.
fn device(out: &mut String, d: &medtwin_sim::DeviceSpec) {
    let _ = writeln!(out, "{}  ({})  {}", d.name, d.class.name(), d.description);
    let schedule = if d.scheduled() {
        let times: Vec<String> = d
            .times
            .iter()
            .map(|m| format!("{:02}:{:02}", m / 60, m % 60))
            .collect();
        format!("daily at {}", times.join(", "))
    } else {
        format!("every {}", duration::format(d.every_ms))
    };
    let mut line = format!("    {schedule}");
    let channels = match d.class {
        medtwin_sim::DeviceKind::Cgm | medtwin_sim::DeviceKind::NurseObs => &[][..],
        _ => d.class.channels(),
    };
    for (i, vital) in channels.iter().enumerate() {
        let c = &d.channels[i];
        let _ = write!(
            line,
            "  {} bias {} slow {} white {}",
            vital.code(),
            c.bias_sd,
            c.slow_sd,
            c.white_sd
        );
        if c.drift_per_day > 0.0 {
            let _ = write!(line, " drift {}/√day", c.drift_per_day);
        }
        let _ = write!(line, " ({} {})", c.resolution, vital.unit());
    }
    if d.class == medtwin_sim::DeviceKind::NurseObs {
        let _ = write!(
            line,
            "  charts acvpu (code 0=A 1=C 2=V 3=P 4=U), o2_flow (L/min, to {} L/min, 0 on room air), spo2_scale (1 or 2, the patient's NEWS2 scale)",
            d.channels[1].resolution
        );
    }
    if d.class == medtwin_sim::DeviceKind::Cgm {
        let m = &d.cgm;
        let _ = write!(
            line,
            "  glucose lag {} min, warm-up {}, life {}, noise ×{}, gain SD {}, compression lows {}/night",
            m.lag_min,
            duration::format(m.warmup_ms),
            duration::format(m.life_ms),
            m.noise_scale,
            m.calibration_sd,
            m.compression_per_night
        );
    }
    let _ = writeln!(out, "{line}");
    let mut quirks = Vec::new();
    match &d.battery {
        Some(b) => quirks.push(format!(
            "battery {} mAh (~{:.0} h at this cadence, low at {}%)",
            b.capacity_mah,
            b.life_hours(if d.scheduled() {
                86_400_000 / d.times.len() as u64
            } else {
                d.every_ms
            }),
            b.low_pct
        )),
        None => quirks.push("mains powered".into()),
    }
    if d.clock_ppm > 0.0 {
        quirks.push(format!("clock ±{} ppm", d.clock_ppm));
    }
    if d.motion.active() {
        quirks.push(format!(
            "motion {}/h × {} s",
            d.motion.per_hour, d.motion.mean_s
        ));
    }
    if d.lead_off.active() {
        quirks.push(format!(
            "lead-off {}/h × {} s",
            d.lead_off.per_hour, d.lead_off.mean_s
        ));
    }
    if d.low_perfusion_map_mmhg > 0.0 {
        quirks.push(format!(
            "drops out below MAP {} mmHg",
            d.low_perfusion_map_mmhg
        ));
    }
    if let Some(note) = medtwin_sim::device::pulseless_note(d.class) {
        quirks.push(note.into());
    }
    if d.duplicate_pct > 0.0 {
        quirks.push(format!("{}% duplicates", d.duplicate_pct));
    }
    if d.retries > 0 {
        quirks.push(format!(
            "{} resends after {}",
            d.retries,
            duration::format(d.retry_ms)
        ));
    }
    if d.memory > 0 {
        quirks.push(format!("keeps {} messages offline", d.memory));
    }
    if matches!(
        d.class,
        medtwin_sim::DeviceKind::MedDispenser | medtwin_sim::DeviceKind::SmartPill
    ) {
        quirks.push(format!("{}% of doses taken", d.adherence_pct));
    }
    if d.class == medtwin_sim::DeviceKind::InfusionPump {
        quirks.push(format!(
            "{} mL/h, occlusion alarm after {}",
            d.rate_ml_h,
            duration::format(d.alarm_delay_ms)
        ));
    }
    let _ = writeln!(out, "    {}", quirks.join(", "));
    let _ = writeln!(out, "    source: {}", d.source);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listings_name_everything_with_parameters() {
        let text = render(ListWhat::Conditions, &[]).unwrap();
        for kind in ConditionKind::ALL {
            assert!(text.contains(kind.name()), "{}", kind.name());
        }
        assert!(text.contains("volume_pct (1-60 %, default 30 %)"), "{text}");
        let text = render(ListWhat::Interventions, &[]).unwrap();
        assert!(text.contains("route (sc|iv, default \"sc\")"), "{text}");
        let text = render(ListWhat::Networks, &[]).unwrap();
        assert!(text.contains("hospital_wifi"), "{text}");
        assert!(text.contains("network_outage"), "{text}");
        let text = render(ListWhat::Profiles, &[]).unwrap();
        assert!(text.contains("copd"), "{text}");
        assert!(text.contains("SpO2 scale 2"), "{text}");
        let text = render(ListWhat::Devices, &[]).unwrap();
        assert!(
            text.contains("nurse_observations  (nurse_observations)"),
            "{text}"
        );
        assert!(text.contains("every 4h"), "{text}");
        assert!(text.contains("charts acvpu"), "{text}");
        assert!(text.contains("measurement_failed alarm"), "{text}");
        assert!(text.contains("0 in asystole"), "{text}");
    }
}
