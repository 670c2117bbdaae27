//! The after-action report: what happened in a session and what the
//! trainees did about it. One self-contained HTML file (maud, which
//! escapes every text; inline CSS, nothing fetched), written beside the
//! session's `training.json` in `reports/<run-id>/` when the session ends,
//! and served live at `/report` while it runs.
//!
//! Sections: the alarms with their time to acknowledge; what was due
//! against what was done (each condition that began, the interventions its
//! guideline expects within a deadline, and whether and when they were
//! given, by whom); the full timeline.

use maud::{DOCTYPE, Markup, html};
use medtwin_check::duration::{clock_text, format as dur};
use medtwin_sim::{ConditionKind, InterventionKind};
use serde::Serialize;

use super::session::Shared;
use super::ward::{Alarm, AlarmState, Ward};

/// What a condition calls for: any one of `any_of`, within `within_ms` of
/// its onset (docs/references.md, "Training: what is due").
pub struct Due {
    /// Interventions any one of which answers it.
    pub any_of: &'static [InterventionKind],
    /// Deadline from onset, simulated ms.
    pub within_ms: u64,
    /// Why, in a few words.
    pub why: &'static str,
}

const MIN: u64 = 60_000;

/// What each condition calls for.
pub fn due(condition: ConditionKind) -> &'static [Due] {
    use InterventionKind as I;
    match condition {
        ConditionKind::OpioidRespiratoryDepression => &[Due {
            any_of: &[I::Naloxone, I::Oxygen],
            within_ms: 15 * MIN,
            why: "reverse or oxygenate opioid-induced respiratory depression",
        }],
        ConditionKind::Sepsis => &[
            Due {
                any_of: &[I::Antibiotics],
                within_ms: 60 * MIN,
                why: "antibiotics within the first hour (Surviving Sepsis hour-1 bundle)",
            },
            Due {
                any_of: &[I::IvFluids],
                within_ms: 60 * MIN,
                why: "fluid resuscitation within the first hour",
            },
        ],
        ConditionKind::Hypoglycaemia => &[Due {
            any_of: &[I::Glucose, I::Meal],
            within_ms: 15 * MIN,
            why: "treat hypoglycaemia at once, recheck after 15 min (the 15-15 rule)",
        }],
        ConditionKind::AtrialFibrillation => &[Due {
            any_of: &[I::RateControl],
            within_ms: 60 * MIN,
            why: "rate control for AF with rapid ventricular response",
        }],
        ConditionKind::Haemorrhage => &[Due {
            any_of: &[I::IvFluids],
            within_ms: 15 * MIN,
            why: "volume replacement for haemorrhage",
        }],
        ConditionKind::CardiacArrest => &[
            Due {
                any_of: &[I::Cpr],
                within_ms: MIN,
                why: "start CPR at once",
            },
            Due {
                any_of: &[I::Defibrillation],
                within_ms: 3 * MIN,
                why: "defibrillate a shockable rhythm within 3 min (in-hospital)",
            },
        ],
        ConditionKind::CopdExacerbation => &[Due {
            any_of: &[I::Oxygen],
            within_ms: 30 * MIN,
            why: "controlled oxygen to target 88-92 %",
        }],
        ConditionKind::HypertensiveCrisis => &[Due {
            any_of: &[I::Antihypertensive],
            within_ms: 60 * MIN,
            why: "lower blood pressure in a hypertensive emergency",
        }],
        ConditionKind::Hyperglycaemia => &[Due {
            any_of: &[I::Insulin],
            within_ms: 60 * MIN,
            why: "insulin for hyperglycaemia",
        }],
    }
}

/// One line of "due against done".
#[derive(Clone, Debug, Serialize)]
pub struct DueResult {
    /// Patient.
    pub patient: String,
    /// Condition.
    pub condition: &'static str,
    /// Onset, simulated ms.
    pub onset_ms: u64,
    /// What was due (any one of).
    pub due: Vec<&'static str>,
    /// Deadline from onset, ms.
    pub within_ms: u64,
    /// Why.
    pub why: &'static str,
    /// When the first answering intervention was given, and by whom.
    pub given_ms: Option<u64>,
    /// Who gave it.
    pub given_by: Option<String>,
    /// `met`, `late`, `missed` or `open` (deadline not yet reached).
    pub outcome: &'static str,
}

/// Every condition's dues against what was given.
pub fn dues(ward: &Ward) -> Vec<DueResult> {
    let mut out = Vec::new();
    for &(bed, condition, onset_ms) in &ward.episodes {
        for d in due(condition) {
            let given = ward
                .given
                .iter()
                .filter(|g| g.bed == bed && g.at_ms >= onset_ms && d.any_of.contains(&g.kind))
                .min_by_key(|g| g.at_ms);
            let outcome = match given {
                Some(g) if g.at_ms <= onset_ms + d.within_ms => "met",
                Some(_) => "late",
                None if ward.now_ms < onset_ms + d.within_ms => "open",
                None => "missed",
            };
            out.push(DueResult {
                patient: ward.beds[bed as usize].patient.clone(),
                condition: condition.name(),
                onset_ms,
                due: d.any_of.iter().map(|k| k.name()).collect(),
                within_ms: d.within_ms,
                why: d.why,
                given_ms: given.map(|g| g.at_ms),
                given_by: given.map(|g| g.actor.clone()),
                outcome,
            });
        }
    }
    out
}

/// Time to acknowledge per alarm, acknowledged ones only.
fn ack_times(alarms: &[Alarm]) -> Vec<u64> {
    let mut t: Vec<u64> = alarms
        .iter()
        .filter_map(|a| a.acked_ms.map(|at| at.saturating_sub(a.raised_ms)))
        .collect();
    t.sort_unstable();
    t
}

/// The session as JSON (`training.json`).
pub fn json(shared: &Shared) -> serde_json::Value {
    let ward = shared.ward();
    serde_json::json!({
        "scenario": shared.scenario,
        "run_id": shared.run_id,
        "simulated_ms": ward.now_ms,
        "alarms": ward.alarms,
        "dues": dues(&ward),
        "interventions": ward.given,
        "log": ward.log,
        "counters": ward.counters,
    })
}

const CSS: &str = r#"
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1d2433;background:#f6f7f9}
main{max-width:1180px;margin:0 auto;padding:16px 24px 48px}
h1{font-size:20px;margin:8px 0}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #d7dbe2;padding-bottom:4px}
table{border-collapse:collapse;background:#fff;margin:6px 0;font-size:13px}
th,td{border:1px solid #d7dbe2;padding:3px 7px;text-align:left}th{background:#eef1f5}
.high{background:#c62828;color:#fff}.medium{background:#f9a825}.low{background:#00acc1}
.met{color:#1b7f3b;font-weight:600}.late{color:#8a6d00;font-weight:600}.missed{color:#b3261e;font-weight:700}.open{color:#4a5365}
.sub{color:#4a5365}
"#;

/// The report's HTML.
pub fn render(shared: &Shared) -> String {
    let ward = shared.ward();
    let acks = ack_times(&ward.alarms);
    let unacked = ward.alarms.iter().filter(|a| a.acked_ms.is_none()).count();
    let dues = dues(&ward);
    let page: Markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "After-action report · " (shared.scenario) }
                style { (CSS) }
            }
            body { main {
                h1 { "After-action report: " (shared.scenario) }
                p.sub { "Session " (shared.run_id) " · " (dur(ward.now_ms)) " simulated · synthetic patients" }
                h2 { "Summary" }
                table id="summary" {
                    tr { th { "alarms raised" } td { (ward.alarms.len()) } }
                    tr { th { "acknowledged" } td { (acks.len()) } }
                    tr { th { "never acknowledged (not superseded by a higher alarm)" } td { (unacked) } }
                    tr { th { "time to acknowledge, median" } td { (acks.get(acks.len() / 2).map_or("-".into(), |t| dur(*t))) } }
                    tr { th { "time to acknowledge, longest" } td { (acks.last().map_or("-".into(), |t| dur(*t))) } }
                    tr { th { "interventions due / met" } td { (dues.len()) " / " (dues.iter().filter(|d| d.outcome == "met").count()) } }
                }
                h2 { "Alarms" }
                table id="alarms" {
                    tr { th { "#" } th { "patient" } th { "alarm" } th { "priority" } th { "raised" } th { "acknowledged" } th { "by" } th { "time to acknowledge" } th { "state" } }
                    @for a in &ward.alarms {
                        tr {
                            td { (a.id) } td { (a.patient) } td { (a.kind) }
                            td class=(a.priority) { (a.priority) }
                            td { (clock_text(a.raised_ms)) }
                            td { (a.acked_ms.map_or("-".into(), clock_text)) }
                            td { (a.acked_by.as_deref().unwrap_or("-")) }
                            td.ack { (a.acked_ms.map_or("not acknowledged".into(), |t| dur(t.saturating_sub(a.raised_ms)))) }
                            td { (match (a.state, a.superseded_by) {
                                (_, Some(by)) => format!("superseded by #{by}"),
                                (AlarmState::Active, None) => "active".into(),
                                (AlarmState::Acknowledged, None) => "acknowledged".into(),
                                (AlarmState::Cleared, None) => "cleared".into(),
                            }) }
                        }
                    }
                }
                h2 { "Due against done" }
                p.sub { "For each condition that began, what its guideline expects and by when (docs/training.md)." }
                table id="dues" {
                    tr { th { "patient" } th { "condition" } th { "onset" } th { "due (any of)" } th { "within" } th { "given" } th { "by" } th { "outcome" } th { "why" } }
                    @for d in &dues {
                        tr {
                            td { (d.patient) } td { (d.condition) } td { (clock_text(d.onset_ms)) }
                            td { (d.due.join(", ")) } td { (dur(d.within_ms)) }
                            td { (d.given_ms.map_or("-".into(), clock_text)) }
                            td { (d.given_by.as_deref().unwrap_or("-")) }
                            td class=(d.outcome) { (d.outcome) }
                            td { (d.why) }
                        }
                    }
                }
                h2 { "Timeline" }
                table id="timeline" {
                    tr { th { "time" } th { "who" } th { "what" } th { "patient" } th { "" } }
                    @for e in &ward.log {
                        tr { td { (clock_text(e.t)) } td { (e.actor) } td { (e.what) } td { (e.patient.as_deref().unwrap_or("")) } td { (e.text) } }
                    }
                }
                @if ward.counters.log_dropped > 0 {
                    p.sub { (ward.counters.log_dropped) " log entries over the limit were not kept." }
                }
            } }
        }
    };
    page.into_string()
}
