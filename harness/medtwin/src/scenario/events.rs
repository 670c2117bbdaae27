//! `[[event]]` (conditions) and `[[intervention]]` tables: timing, who,
//! and parameters checked against the twin's own tables in
//! [`medtwin_sim::clinical`], so names, units, ranges and defaults are
//! defined once.

use std::ops::Range;

use medtwin_sim::clinical::MAX_PARAMS;
use medtwin_sim::{
    CohortConfig, ConditionKind, EventConfig, FaultConfig, FaultKind, InterventionConfig,
    InterventionKind, ParamKind, ParamSpec, Params, PatientSelector,
};
use toml::Spanned;

use super::diag::{self, Reporter, suggest};
use super::duration::Dur;
use super::file::{
    ConditionName, EventSpec, FaultName, FaultSpec, InterventionName, InterventionSpec,
};

/// A parameter as written.
#[derive(Clone, Copy, Debug)]
enum Written<'a> {
    Number(f64),
    Text(&'a str),
}

type Present<'a> = (&'static str, Option<(Range<usize>, Written<'a>)>);

fn number(name: &'static str, v: &Option<Spanned<f64>>) -> Present<'static> {
    (
        name,
        v.as_ref()
            .map(|v| (v.span(), Written::Number(*v.get_ref()))),
    )
}

fn text<'a>(name: &'static str, v: &'a Option<Spanned<String>>) -> Present<'a> {
    (
        name,
        v.as_ref()
            .map(|v| (v.span(), Written::Text(v.get_ref().as_str()))),
    )
}

/// Parameter keys an `[[event]]` accepts (each condition takes some of them).
pub const EVENT_PARAM_KEYS: [&str; 5] = ["cause", "insulin_u", "volume_pct", "rhythm", "rate_bpm"];
/// Parameter keys an `[[intervention]]` accepts.
pub const INTERVENTION_PARAM_KEYS: [&str; 9] = [
    "flow_lpm",
    "volume_ml",
    "target_map",
    "units",
    "route",
    "grams",
    "carbs_g",
    "bolus_u",
    "dose_mg",
];

fn event_params(e: &EventSpec) -> [Present<'_>; 5] {
    [
        text("cause", &e.cause),
        number("insulin_u", &e.insulin_u),
        number("volume_pct", &e.volume_pct),
        text("rhythm", &e.rhythm),
        number("rate_bpm", &e.rate_bpm),
    ]
}

fn intervention_params(g: &InterventionSpec) -> [Present<'_>; 9] {
    [
        number("flow_lpm", &g.flow_lpm),
        number("volume_ml", &g.volume_ml),
        number("target_map", &g.target_map),
        number("units", &g.units),
        text("route", &g.route),
        number("grams", &g.grams),
        number("carbs_g", &g.carbs_g),
        number("bolus_u", &g.bolus_u),
        number("dose_mg", &g.dose_mg),
    ]
}

/// Checks the written parameters against `specs` and resolves defaults.
fn resolve_params(
    specs: &[ParamSpec],
    present: &[Present<'_>],
    owner: &str,
    field: &dyn Fn(&str) -> String,
    r: &mut Reporter<'_>,
) -> Params {
    let mut params = Params::defaults(specs);
    let takes = if specs.is_empty() {
        format!("{owner} takes no parameters")
    } else {
        let names: Vec<&str> = specs.iter().map(|s| s.name).collect();
        format!("{owner} takes {}", diag::quoted_list(&names))
    };
    for (name, value) in present {
        let Some((span, value)) = value else { continue };
        let Some(i) = specs.iter().position(|s| s.name == *name) else {
            r.error(
                span.clone(),
                Some(field(name)),
                format!("`{name}` does not apply to {owner}"),
                Some(takes.clone()),
            );
            continue;
        };
        debug_assert!(i < MAX_PARAMS);
        let spec = &specs[i];
        match (spec.kind, value) {
            (ParamKind::Number { min, max, unit, .. }, Written::Number(x)) => {
                if !(min..=max).contains(x) {
                    r.error(
                        span.clone(),
                        Some(field(name)),
                        format!("{name} = {x} is out of range"),
                        Some(format!("expected {min} to {max} {unit}")),
                    );
                }
                params.0[i] = *x;
            }
            (ParamKind::Choice { options, .. }, Written::Text(t)) => {
                match options.iter().position(|o| o == t) {
                    Some(k) => params.0[i] = k as f64,
                    None => r.error(
                        span.clone(),
                        Some(field(name)),
                        format!("unknown {name} \"{t}\""),
                        Some(match suggest(t, options) {
                            Some(best) => format!("did you mean `{best}`?"),
                            None => format!("expected one of {}", diag::quoted_list(options)),
                        }),
                    ),
                }
            }
            (ParamKind::Number { .. }, Written::Text(_)) => r.error(
                span.clone(),
                Some(field(name)),
                format!("{name} must be a number"),
                None,
            ),
            (ParamKind::Choice { options, .. }, Written::Number(_)) => r.error(
                span.clone(),
                Some(field(name)),
                format!("{name} must be one of {}", diag::quoted_list(options)),
                None,
            ),
        }
    }
    params
}

/// What events and interventions share: when, and who.
struct Timing {
    at_ms: u64,
    who: PatientSelector,
    duration_ms: Option<u64>,
}

#[allow(clippy::too_many_arguments)]
fn resolve_timing(
    at: &Option<Spanned<Dur>>,
    who: &Option<Spanned<String>>,
    pick: &Option<Spanned<u32>>,
    duration: &Option<Spanned<Dur>>,
    whole: Range<usize>,
    run_ms: Option<u64>,
    cohorts: &[CohortConfig],
    field: &dyn Fn(&str) -> String,
    r: &mut Reporter<'_>,
) -> Option<Timing> {
    let at_ms = match at {
        Some(a) if run_ms.is_some_and(|d| a.get_ref().ms() >= d) => {
            r.error(
                a.span(),
                Some(field("at")),
                format!(
                    "at = \"{}\" is not before the end of the run ({})",
                    a.get_ref(),
                    Dur(run_ms.unwrap_or(0))
                ),
                None,
            );
            0
        }
        Some(a) => a.get_ref().ms(),
        None => {
            r.missing(whole.clone(), field("at"));
            0
        }
    };
    let duration_ms = match duration {
        Some(d) if d.get_ref().ms() == 0 => {
            r.error(
                d.span(),
                Some(field("duration")),
                "duration must be positive",
                None,
            );
            None
        }
        Some(d) => Some(d.get_ref().ms()),
        None => None,
    };
    let Some(who_text) = who else {
        r.missing(whole, field("who"));
        return None;
    };
    let mut who = super::resolve_who(who_text, cohorts, &field("who"), r)?;
    if let Some(pick) = pick {
        let available = who.end - who.first;
        if *pick.get_ref() == 0 || *pick.get_ref() > available {
            r.error(
                pick.span(),
                Some(field("pick")),
                format!(
                    "pick = {} but `who` selects {available} patients",
                    pick.get_ref()
                ),
                None,
            );
        }
        who.pick = Some(*pick.get_ref());
    }
    Some(Timing {
        at_ms,
        who,
        duration_ms,
    })
}

/// The sim's condition for a name as written.
pub fn condition(name: ConditionName) -> ConditionKind {
    match name {
        ConditionName::Sepsis => ConditionKind::Sepsis,
        ConditionName::AtrialFibrillation => ConditionKind::AtrialFibrillation,
        ConditionName::Hypoglycaemia => ConditionKind::Hypoglycaemia,
        ConditionName::Hyperglycaemia => ConditionKind::Hyperglycaemia,
        ConditionName::OpioidRespiratoryDepression => ConditionKind::OpioidRespiratoryDepression,
        ConditionName::CopdExacerbation => ConditionKind::CopdExacerbation,
        ConditionName::HypertensiveCrisis => ConditionKind::HypertensiveCrisis,
        ConditionName::Haemorrhage => ConditionKind::Haemorrhage,
        ConditionName::CardiacArrest => ConditionKind::CardiacArrest,
    }
}

fn intervention(name: InterventionName) -> InterventionKind {
    match name {
        InterventionName::Oxygen => InterventionKind::Oxygen,
        InterventionName::IvFluids => InterventionKind::IvFluids,
        InterventionName::Vasopressor => InterventionKind::Vasopressor,
        InterventionName::Insulin => InterventionKind::Insulin,
        InterventionName::Glucose => InterventionKind::Glucose,
        InterventionName::Meal => InterventionKind::Meal,
        InterventionName::Naloxone => InterventionKind::Naloxone,
        InterventionName::Antipyretic => InterventionKind::Antipyretic,
        InterventionName::Antibiotics => InterventionKind::Antibiotics,
        InterventionName::RateControl => InterventionKind::RateControl,
        InterventionName::Antihypertensive => InterventionKind::Antihypertensive,
        InterventionName::Defibrillation => InterventionKind::Defibrillation,
        InterventionName::Cpr => InterventionKind::Cpr,
    }
}

/// Resolves every `[[event]]`.
pub fn resolve_events(
    specs: &[Spanned<EventSpec>],
    run_ms: Option<u64>,
    cohorts: &[CohortConfig],
    r: &mut Reporter<'_>,
) -> Vec<EventConfig> {
    let mut events = Vec::new();
    for (i, spanned) in specs.iter().enumerate() {
        let e = spanned.get_ref();
        let field = |f: &str| format!("event[{i}].{f}");
        let timing = resolve_timing(
            &e.at,
            &e.who,
            &e.pick,
            &e.duration,
            spanned.span(),
            run_ms,
            cohorts,
            &field,
            r,
        );
        let Some(kind) = e.condition.map(condition) else {
            r.missing(spanned.span(), field("condition"));
            continue;
        };
        let severity = super::number_in(
            &e.severity,
            |s| s > 0.0 && s <= 1.0,
            &field("severity"),
            "severity is a fraction: greater than 0, at most 1",
            1.0,
            r,
        );
        let owner = format!("condition `{}`", kind.name());
        let params = resolve_params(kind.params(), &event_params(e), &owner, &field, r);
        let Some(timing) = timing else { continue };
        events.push(EventConfig {
            at_ms: timing.at_ms,
            who: timing.who,
            condition: kind,
            severity,
            ramp_ms: e.ramp.map_or(kind.default_ramp_ms(), Dur::ms),
            duration_ms: timing.duration_ms,
            params,
        });
    }
    events
}

/// Resolves every `[[intervention]]`.
pub fn resolve_interventions(
    specs: &[Spanned<InterventionSpec>],
    run_ms: Option<u64>,
    cohorts: &[CohortConfig],
    r: &mut Reporter<'_>,
) -> Vec<InterventionConfig> {
    let mut out = Vec::new();
    for (i, spanned) in specs.iter().enumerate() {
        let g = spanned.get_ref();
        let field = |f: &str| format!("intervention[{i}].{f}");
        let timing = resolve_timing(
            &g.at,
            &g.who,
            &g.pick,
            &g.duration,
            spanned.span(),
            run_ms,
            cohorts,
            &field,
            r,
        );
        let Some(kind) = g.kind.map(intervention) else {
            r.missing(spanned.span(), field("kind"));
            continue;
        };
        let owner = format!("intervention `{}`", kind.name());
        let params = resolve_params(kind.params(), &intervention_params(g), &owner, &field, r);
        let Some(timing) = timing else { continue };
        out.push(InterventionConfig {
            at_ms: timing.at_ms,
            who: timing.who,
            kind,
            params,
            duration_ms: timing.duration_ms,
        });
    }
    out
}

/// Resolves every `[[fault]]`.
pub fn resolve_faults(
    specs: &[Spanned<FaultSpec>],
    run_ms: Option<u64>,
    cohorts: &[CohortConfig],
    r: &mut Reporter<'_>,
) -> Vec<FaultConfig> {
    let mut out = Vec::new();
    for (i, spanned) in specs.iter().enumerate() {
        let f = spanned.get_ref();
        let field = |k: &str| format!("fault[{i}].{k}");
        let timing = resolve_timing(
            &f.at,
            &f.who,
            &f.pick,
            &f.duration,
            spanned.span(),
            run_ms,
            cohorts,
            &field,
            r,
        );
        let Some(kind) = f.kind else {
            r.missing(spanned.span(), field("kind"));
            continue;
        };
        let kind = match kind {
            FaultName::NetworkOutage => FaultKind::NetworkOutage,
            FaultName::SensorOff => FaultKind::SensorOff,
            FaultName::BatteryDead => FaultKind::BatteryDead,
            FaultName::StuckValue => FaultKind::StuckValue,
            FaultName::WrongUnit => FaultKind::WrongUnit,
            FaultName::ClockReset => FaultKind::ClockReset,
            FaultName::Disconnect => FaultKind::Disconnect,
            FaultName::Occlusion => FaultKind::Occlusion,
        };
        let device = match &f.device {
            Some(d) if !kind.on_devices() => {
                r.error(
                    d.span(),
                    Some(field("device")),
                    format!("`device` does not apply to a {}", kind.name()),
                    Some("it acts on the patient's uplink, whatever the device".into()),
                );
                None
            }
            Some(d) => {
                // Must name a model or class the selected cohort wears.
                let worn: Vec<&str> = timing
                    .as_ref()
                    .and_then(|t| cohorts.get(t.who.cohort))
                    .map(|c| {
                        c.devices
                            .iter()
                            .flat_map(|dc| [dc.spec.name.as_str(), dc.spec.class.name()])
                            .collect()
                    })
                    .unwrap_or_default();
                if timing.is_some() && !worn.contains(&d.get_ref().as_str()) {
                    let mut names = worn.clone();
                    names.sort_unstable();
                    names.dedup();
                    r.error(
                        d.span(),
                        Some(field("device")),
                        format!("the cohort wears no `{}`", d.get_ref()),
                        Some(match suggest(d.get_ref(), &names) {
                            Some(best) => format!("did you mean `{best}`?"),
                            None => format!("its devices: {}", diag::quoted_list(&names)),
                        }),
                    );
                }
                Some(d.get_ref().clone())
            }
            None => None,
        };
        let Some(timing) = timing else { continue };
        let Some(duration_ms) = timing.duration_ms else {
            if f.duration.is_none() {
                r.missing(spanned.span(), field("duration"));
            }
            continue;
        };
        out.push(FaultConfig {
            at_ms: timing.at_ms,
            who: timing.who,
            kind,
            device,
            duration_ms,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scenario's name enums mirror the twin's tables (serde gives them
    /// "did you mean" for free); every twin name must parse to its kind.
    #[test]
    fn every_sim_condition_and_intervention_name_parses() {
        #[derive(serde::Deserialize)]
        struct C {
            c: ConditionName,
        }
        #[derive(serde::Deserialize)]
        struct I {
            i: InterventionName,
        }
        for kind in ConditionKind::ALL {
            let parsed: C = toml::from_str(&format!("c = \"{}\"", kind.name())).unwrap();
            assert_eq!(condition(parsed.c), kind);
        }
        for kind in InterventionKind::ALL {
            let parsed: I = toml::from_str(&format!("i = \"{}\"", kind.name())).unwrap();
            assert_eq!(intervention(parsed.i), kind);
        }
    }

    #[test]
    fn every_sim_parameter_has_a_scenario_key() {
        for kind in ConditionKind::ALL {
            for p in kind.params() {
                assert!(EVENT_PARAM_KEYS.contains(&p.name), "{}", p.name);
            }
        }
        for kind in InterventionKind::ALL {
            for p in kind.params() {
                assert!(INTERVENTION_PARAM_KEYS.contains(&p.name), "{}", p.name);
            }
        }
        let keys: Vec<&str> = ConditionKind::ALL
            .iter()
            .flat_map(|k| k.params().iter().map(|p| p.name))
            .collect();
        for key in EVENT_PARAM_KEYS {
            assert!(keys.contains(&key), "{key} is taken by no condition");
        }
        let keys: Vec<&str> = InterventionKind::ALL
            .iter()
            .flat_map(|k| k.params().iter().map(|p| p.name))
            .collect();
        for key in INTERVENTION_PARAM_KEYS {
            assert!(keys.contains(&key), "{key} is taken by no intervention");
        }
    }
}
