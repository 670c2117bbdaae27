//! Device catalogue entries: `[[device]]` tables in
//! `harness/medtwin/catalogue/devices.toml` (built in), in catalogue files a
//! scenario names, or inline in the scenario. Each entry names a `class`
//! (and starts from that class's reference device) or `extends` an entry
//! defined before it, and changes only what differs.

use medtwin_sim::cgm::CgmModel;
use medtwin_sim::waveform::{Channel, WaveformConfig};
use medtwin_sim::{ArtifactSpec, BatterySpec, ChannelSpec, DeviceKind, DeviceSpec, Vital};
use serde::Deserialize;
use toml::Spanned;

use super::catalogue::{Catalogue, new_name, parse_clock_time};
use super::diag::{self, Reporter, suggest};
use super::duration::Dur;

/// One `[[device]]` as written: every field optional.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeviceEntry {
    pub name: Option<Spanned<String>>,
    pub extends: Option<Spanned<String>>,
    pub class: Option<Spanned<String>>,
    pub description: Option<String>,
    pub source: Option<String>,
    pub every: Option<Spanned<Dur>>,
    pub times: Option<Vec<Spanned<String>>>,
    pub spo2: Option<Spanned<ChannelEntry>>,
    pub hr: Option<Spanned<ChannelEntry>>,
    pub rr: Option<Spanned<ChannelEntry>>,
    pub sbp: Option<Spanned<ChannelEntry>>,
    pub dbp: Option<Spanned<ChannelEntry>>,
    pub temp: Option<Spanned<ChannelEntry>>,
    pub weight: Option<Spanned<ChannelEntry>>,
    pub infusion_rate: Option<Spanned<ChannelEntry>>,
    pub battery: Option<Spanned<BatteryEntry>>,
    pub clock_ppm: Option<Spanned<f64>>,
    pub motion: Option<Spanned<ArtifactEntry>>,
    pub lead_off: Option<Spanned<ArtifactEntry>>,
    pub low_perfusion_map: Option<Spanned<f64>>,
    pub duplicate_pct: Option<Spanned<f64>>,
    pub retries: Option<Spanned<u32>>,
    pub retry: Option<Spanned<Dur>>,
    pub memory: Option<Spanned<u32>>,
    pub cgm: Option<Spanned<CgmEntry>>,
    pub adherence_pct: Option<Spanned<f64>>,
    pub rate_ml_h: Option<Spanned<f64>>,
    pub alarm_delay: Option<Spanned<Dur>>,
    pub waveform_hz: Option<Spanned<u32>>,
    pub waveform_channels: Option<Spanned<Vec<String>>>,
}

/// `{ bias_sd, slow_sd, tau_s, white_sd, drift_per_day, resolution }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChannelEntry {
    pub bias_sd: Option<f64>,
    pub slow_sd: Option<f64>,
    pub tau_s: Option<f64>,
    pub white_sd: Option<f64>,
    pub drift_per_day: Option<f64>,
    pub resolution: Option<f64>,
}

/// `{ capacity_mah, idle_ua, sample_uah, transmit_uah, low_pct }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BatteryEntry {
    pub capacity_mah: Option<f64>,
    pub idle_ua: Option<f64>,
    pub sample_uah: Option<f64>,
    pub transmit_uah: Option<f64>,
    pub low_pct: Option<f64>,
}

/// `{ per_hour, mean_s }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ArtifactEntry {
    pub per_hour: Option<f64>,
    pub mean_s: Option<f64>,
}

/// The CGM sensor model's figures.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CgmEntry {
    pub lag_min: Option<f64>,
    pub warmup: Option<Dur>,
    pub life: Option<Dur>,
    pub noise_scale: Option<f64>,
    pub calibration_sd: Option<f64>,
    pub compression_per_night: Option<f64>,
    pub compression_min: Option<f64>,
    pub resolution: Option<f64>,
    pub min_mgdl: Option<f64>,
    pub max_mgdl: Option<f64>,
}

/// The class called `name`.
pub(crate) fn class_named(name: &str) -> Option<DeviceKind> {
    DeviceKind::ALL.into_iter().find(|k| k.name() == name)
}

/// A number check: finite and within `lo..=hi`.
fn within(lo: f64, hi: f64) -> impl Fn(f64) -> bool {
    move |x| x.is_finite() && (lo..=hi).contains(&x)
}

impl Catalogue {
    /// Resolves one `[[device]]` entry against the models defined so far
    /// and adds it. Errors go to `r`; `field` is the entry's path.
    pub(crate) fn add_device(
        &mut self,
        spanned: &Spanned<DeviceEntry>,
        field: &str,
        r: &mut Reporter<'_>,
    ) {
        let e = spanned.get_ref();
        let at = spanned.span();
        let f = |name: &str| format!("{field}.{name}");
        let Some(name_text) = new_name(
            "device",
            &e.name,
            at.clone(),
            field,
            |n| self.device(n).is_some(),
            r,
        ) else {
            return;
        };
        let Some(mut spec) = self.device_base(spanned, field, r) else {
            return;
        };
        spec.name = name_text;
        if let Some(d) = &e.description {
            spec.description = d.clone();
        }
        if let Some(s) = &e.source {
            spec.source = s.clone();
        }
        device_schedule(e, &mut spec, &f, r);
        self.device_channels(e, &mut spec, field, r);
        device_numbers(e, &mut spec, &f, r);
        device_artifacts(e, &mut spec, &f, r);
        device_battery(e, &mut spec, &f, r);
        device_cgm(e, &mut spec, &f, r);
        let event_device = matches!(spec.class, DeviceKind::MedDispenser | DeviceKind::SmartPill);
        if event_device && spec.times.is_empty() {
            r.error(
                at,
                Some(f("times")),
                format!("a {} needs its dose `times`", spec.class.name()),
                Some("e.g. times = [\"08:00\", \"20:00\"]".into()),
            );
        }
        self.devices.push(spec);
    }

    /// The model an entry starts from: its class's reference device, or
    /// the entry it `extends`.
    fn device_base(
        &self,
        spanned: &Spanned<DeviceEntry>,
        field: &str,
        r: &mut Reporter<'_>,
    ) -> Option<DeviceSpec> {
        let e = spanned.get_ref();
        let at = spanned.span();
        let f = |name: &str| format!("{field}.{name}");
        let class = match &e.class {
            None => None,
            Some(c) => match class_named(c.get_ref()) {
                Some(k) => Some(k),
                None => {
                    let names: Vec<&str> = DeviceKind::ALL.iter().map(|k| k.name()).collect();
                    r.error(
                        c.span(),
                        Some(f("class")),
                        format!("unknown device class `{}`", c.get_ref()),
                        Some(match suggest(c.get_ref(), &names) {
                            Some(best) => format!("did you mean `{best}`?"),
                            None => format!("expected one of {}", diag::quoted_list(&names)),
                        }),
                    );
                    return None;
                }
            },
        };
        let spec = match (&e.extends, class) {
            (Some(p), _) => match self.device(p.get_ref()) {
                Some(parent) if class.is_none_or(|c| c == parent.class) => parent.clone(),
                Some(parent) => {
                    r.error(
                        p.span(),
                        Some(f("extends")),
                        format!(
                            "`{}` is a {}, not a {}",
                            p.get_ref(),
                            parent.class.name(),
                            class.map_or("", |c| c.name())
                        ),
                        Some("an entry keeps the class of the one it extends".into()),
                    );
                    return None;
                }
                None => {
                    let names = self.device_names();
                    r.error(
                        p.span(),
                        Some(f("extends")),
                        format!("unknown device `{}`", p.get_ref()),
                        Some(match suggest(p.get_ref(), &names) {
                            Some(best) => format!("did you mean `{best}`?"),
                            None => "an entry can extend one defined before it".into(),
                        }),
                    );
                    return None;
                }
            },
            (None, Some(class)) => DeviceSpec::class_default(class),
            (None, None) => {
                r.error(
                    at,
                    Some(f("class")),
                    "a device entry needs `class` (or `extends`)",
                    Some("e.g. class = \"pulse_oximeter\"".into()),
                );
                return None;
            }
        };
        Some(spec)
    }

    /// Applies the per-channel accuracy tables, refusing channels the class
    /// does not report.
    fn device_channels(
        &self,
        e: &DeviceEntry,
        spec: &mut DeviceSpec,
        field: &str,
        r: &mut Reporter<'_>,
    ) {
        let given = [
            (Vital::Spo2, &e.spo2),
            (Vital::Hr, &e.hr),
            (Vital::Rr, &e.rr),
            (Vital::Sbp, &e.sbp),
            (Vital::Dbp, &e.dbp),
            (Vital::Temp, &e.temp),
            (Vital::Weight, &e.weight),
            (Vital::InfusionRate, &e.infusion_rate),
        ];
        let reports = spec.class.channels();
        for (vital, entry) in given {
            let Some(c) = entry else { continue };
            let key = format!("{field}.{}", vital.code());
            let Some(i) = reports.iter().position(|v| *v == vital) else {
                let codes: Vec<&str> = reports.iter().map(|v| v.code()).collect();
                r.error(
                    c.span(),
                    Some(key),
                    format!("a {} does not report `{}`", spec.class.name(), vital.code()),
                    Some(if codes.is_empty() {
                        "this class reports events, not values".into()
                    } else {
                        format!("it reports {}", diag::quoted_list(&codes))
                    }),
                );
                continue;
            };
            let v = c.get_ref();
            let base = spec.channels[i];
            let ch = ChannelSpec {
                bias_sd: v.bias_sd.unwrap_or(base.bias_sd),
                slow_sd: v.slow_sd.unwrap_or(base.slow_sd),
                tau_s: v.tau_s.unwrap_or(base.tau_s),
                white_sd: v.white_sd.unwrap_or(base.white_sd),
                drift_per_day: v.drift_per_day.unwrap_or(base.drift_per_day),
                resolution: v.resolution.unwrap_or(base.resolution),
            };
            let ok = within(0.0, 1e4);
            let valid = [
                ch.bias_sd,
                ch.slow_sd,
                ch.white_sd,
                ch.drift_per_day,
                ch.resolution,
            ]
            .iter()
            .all(|x| ok(*x))
                && ch.tau_s > 0.0
                && ch.tau_s.is_finite();
            if !valid {
                r.error(
                    c.span(),
                    Some(key),
                    "accuracy figures must be finite and non-negative, tau_s positive",
                    None,
                );
            }
            spec.channels[i] = ch;
        }
    }

    /// The device model called `name`.
    pub fn device(&self, name: &str) -> Option<&DeviceSpec> {
        self.devices.iter().find(|d| d.name == name)
    }

    /// Device model names, in definition order.
    pub fn device_names(&self) -> Vec<&str> {
        self.devices.iter().map(|d| d.name.as_str()).collect()
    }
}

/// `every` and the daily `times`.
fn device_schedule(
    e: &DeviceEntry,
    spec: &mut DeviceSpec,
    f: &impl Fn(&str) -> String,
    r: &mut Reporter<'_>,
) {
    if let Some(every) = &e.every {
        if every.get_ref().ms() == 0 {
            r.error(
                every.span(),
                Some(f("every")),
                "every must be positive",
                None,
            );
        } else {
            spec.every_ms = every.get_ref().ms();
        }
    }
    if let Some(times) = &e.times {
        spec.times.clear();
        for (i, t) in times.iter().enumerate() {
            match parse_clock_time(t.get_ref()) {
                Some(m) => spec.times.push(m),
                None => r.error(
                    t.span(),
                    Some(f(&format!("times[{i}]"))),
                    format!("invalid time of day \"{}\"", t.get_ref()),
                    Some("write 24-hour \"HH:MM\", e.g. \"08:00\"".into()),
                ),
            }
        }
        spec.times.sort_unstable();
        spec.times.dedup();
    }
}

/// Plain numbers, each in its range, or an error at its position.
fn device_numbers(
    e: &DeviceEntry,
    spec: &mut DeviceSpec,
    f: &impl Fn(&str) -> String,
    r: &mut Reporter<'_>,
) {
    for (value, target, key, max, hint) in [
        (
            &e.clock_ppm,
            &mut spec.clock_ppm,
            "clock_ppm",
            1000.0,
            "0 to 1000 ppm",
        ),
        (
            &e.low_perfusion_map,
            &mut spec.low_perfusion_map_mmhg,
            "low_perfusion_map",
            150.0,
            "0 (none) to 150 mmHg",
        ),
        (
            &e.duplicate_pct,
            &mut spec.duplicate_pct,
            "duplicate_pct",
            100.0,
            "0 to 100",
        ),
        (
            &e.adherence_pct,
            &mut spec.adherence_pct,
            "adherence_pct",
            100.0,
            "0 to 100",
        ),
        (
            &e.rate_ml_h,
            &mut spec.rate_ml_h,
            "rate_ml_h",
            2000.0,
            "0 to 2000 mL/h",
        ),
    ] {
        *target = super::number_in(value, within(0.0, max), &f(key), hint, *target, r);
    }
    for (value, target, key, max) in [
        (&e.retries, &mut spec.retries, "retries", 100),
        (&e.memory, &mut spec.memory, "memory", 1_000_000),
    ] {
        match value {
            Some(n) if *n.get_ref() > max => r.error(
                n.span(),
                Some(f(key)),
                format!("{key} = {} is out of range", n.get_ref()),
                Some(format!("expected 0 to {max}")),
            ),
            Some(n) => *target = *n.get_ref(),
            None => {}
        }
    }
    if let Some(d) = &e.retry {
        spec.retry_ms = d.get_ref().ms().max(1);
    }
    if let Some(n) = &e.memory {
        spec.memory = (*n.get_ref()).min(1_000_000);
    }
    if let Some(d) = &e.alarm_delay {
        spec.alarm_delay_ms = d.get_ref().ms();
    }
    device_waveforms(e, spec, f, r);
}

/// What the model records when a scenario asks for waveforms.
fn device_waveforms(
    e: &DeviceEntry,
    spec: &mut DeviceSpec,
    f: &impl Fn(&str) -> String,
    r: &mut Reporter<'_>,
) {
    if let Some(hz) = &e.waveform_hz {
        if WaveformConfig::RATES_HZ.contains(hz.get_ref()) {
            spec.waveform_hz = *hz.get_ref();
        } else {
            r.error(
                hz.span(),
                Some(f("waveform_hz")),
                format!("waveform_hz = {} is not a supported rate", hz.get_ref()),
                Some("expected 125, 250 or 500".into()),
            );
        }
    }
    if let Some(channels) = &e.waveform_channels {
        let mut chosen = Vec::new();
        for name in channels.get_ref() {
            match Channel::named(name) {
                Some(c) => chosen.push(c),
                None => {
                    let names: Vec<&str> = Channel::ALL.iter().map(|c| c.name()).collect();
                    r.error(
                        channels.span(),
                        Some(f("waveform_channels")),
                        format!("unknown waveform channel `{name}`"),
                        Some(match suggest(name, &names) {
                            Some(best) => format!("did you mean `{best}`?"),
                            None => format!("expected one of {}", diag::quoted_list(&names)),
                        }),
                    );
                }
            }
        }
        chosen.sort_unstable();
        chosen.dedup();
        spec.waveform_channels = chosen;
    }
}

/// Motion and lead-off artifact processes.
fn device_artifacts(
    e: &DeviceEntry,
    spec: &mut DeviceSpec,
    f: &impl Fn(&str) -> String,
    r: &mut Reporter<'_>,
) {
    for (entry, target, key) in [
        (&e.motion, &mut spec.motion, "motion"),
        (&e.lead_off, &mut spec.lead_off, "lead_off"),
    ] {
        if let Some(a) = entry {
            let v = a.get_ref();
            let ok = |x: Option<f64>| x.is_none_or(within(0.0, 3600.0));
            if !ok(v.per_hour) || !ok(v.mean_s) {
                r.error(
                    a.span(),
                    Some(f(key)),
                    format!("`{key}` needs per_hour and mean_s between 0 and 3600"),
                    None,
                );
            }
            *target = ArtifactSpec {
                per_hour: v.per_hour.unwrap_or(target.per_hour),
                mean_s: v.mean_s.unwrap_or(target.mean_s),
            };
        }
    }
}

/// The battery, over the model's (or an empty one).
fn device_battery(
    e: &DeviceEntry,
    spec: &mut DeviceSpec,
    f: &impl Fn(&str) -> String,
    r: &mut Reporter<'_>,
) {
    if let Some(b) = &e.battery {
        let v = b.get_ref();
        let base = spec.battery.unwrap_or(BatterySpec {
            capacity_mah: 0.0,
            idle_ua: 0.0,
            sample_uah: 0.0,
            transmit_uah: 0.0,
            low_pct: 20.0,
        });
        let battery = BatterySpec {
            capacity_mah: v.capacity_mah.unwrap_or(base.capacity_mah),
            idle_ua: v.idle_ua.unwrap_or(base.idle_ua),
            sample_uah: v.sample_uah.unwrap_or(base.sample_uah),
            transmit_uah: v.transmit_uah.unwrap_or(base.transmit_uah),
            low_pct: v.low_pct.unwrap_or(base.low_pct),
        };
        let valid = battery.capacity_mah > 0.0
            && battery.capacity_mah.is_finite()
            && [battery.idle_ua, battery.sample_uah, battery.transmit_uah]
                .iter()
                .all(|x| within(0.0, 1e9)(*x))
            && within(0.0, 100.0)(battery.low_pct);
        if !valid {
            r.error(
                b.span(),
                Some(f("battery")),
                "a battery needs capacity_mah > 0, non-negative draws and low_pct 0 to 100",
                None,
            );
        }
        spec.battery = Some(battery);
    }
}

/// The CGM sensor model.
fn device_cgm(
    e: &DeviceEntry,
    spec: &mut DeviceSpec,
    f: &impl Fn(&str) -> String,
    r: &mut Reporter<'_>,
) {
    if let Some(c) = &e.cgm {
        let v = c.get_ref();
        let m = spec.cgm;
        let cgm = CgmModel {
            lag_min: v.lag_min.unwrap_or(m.lag_min),
            warmup_ms: v.warmup.map_or(m.warmup_ms, Dur::ms),
            life_ms: v.life.map_or(m.life_ms, Dur::ms),
            noise_scale: v.noise_scale.unwrap_or(m.noise_scale),
            calibration_sd: v.calibration_sd.unwrap_or(m.calibration_sd),
            compression_per_night: v.compression_per_night.unwrap_or(m.compression_per_night),
            compression_min: v.compression_min.unwrap_or(m.compression_min),
            resolution: v.resolution.unwrap_or(m.resolution),
            min_mgdl: v.min_mgdl.unwrap_or(m.min_mgdl),
            max_mgdl: v.max_mgdl.unwrap_or(m.max_mgdl),
        };
        let ok = within(0.0, 1e4);
        let numbers = [
            cgm.lag_min,
            cgm.noise_scale,
            cgm.calibration_sd,
            cgm.compression_per_night,
            cgm.compression_min,
            cgm.resolution,
            cgm.min_mgdl,
            cgm.max_mgdl,
        ];
        if !numbers.iter().all(|x| ok(*x))
            || cgm.min_mgdl >= cgm.max_mgdl
            || cgm.calibration_sd > 0.5
            || cgm.warmup_ms >= cgm.life_ms
        {
            r.error(
                    c.span(),
                    Some(f("cgm")),
                    "the CGM figures must be non-negative, with min_mgdl < max_mgdl, calibration_sd ≤ 0.5 and warmup shorter than life",
                    None,
                );
        }
        spec.cgm = cgm;
    }
}
