//! `[[expect]]`: the scenario's expectations, resolved into the checker's
//! [`Expectation`]s with every problem reported at its position.

use medtwin_check::rules::Rule;
use medtwin_check::{
    Budgets, DEFAULT_MAX_GAP_MS, DEFAULT_REARM_MS, ExpectKind, Expectation, Reference,
    default_criterion,
};
use medtwin_sim::Criterion;

use super::diag::Reporter;
use super::file::{ExpectSpec, ReferenceName, ScenarioFile};

/// Parses a rule written at `span`, reporting errors at their column.
fn rule_at(
    text: &toml::Spanned<String>,
    field: String,
    source: &str,
    r: &mut Reporter<'_>,
) -> Option<Rule> {
    match Rule::parse(text.get_ref()) {
        Ok(rule) => Some(rule),
        Err(e) => {
            // Skip the opening quote(s) so the column points into the rule.
            let raw = source.get(text.span()).unwrap_or("");
            let quote = if raw.starts_with("\"\"\"") || raw.starts_with("'''") {
                3
            } else {
                1
            };
            let at = text.span().start + quote + e.offset;
            r.error(
                at..at + 1,
                Some(field),
                format!("invalid rule: {}", e.message),
                Some(
                    "rules look like `news2 >= 7`, `spo2 < 90 for 60s`, `red_score or qsofa >= 2`"
                        .into(),
                ),
            );
            None
        }
    }
}

/// Resolves every `[[expect]]`, reporting each problem.
pub(super) fn resolve_expectations(
    file: &ScenarioFile,
    source: &str,
    kinds: Option<&[String]>,
    r: &mut Reporter<'_>,
) -> Vec<Expectation> {
    (0..file.expect.len())
        .filter_map(|i| {
            check_kind(&file.expect[i].get_ref().alert, i, kinds, r);
            resolve_expectation(file, i, source, r)
        })
        .collect()
}

/// With `[alerts] kinds` declared, an expectation's alert kind must be one
/// of them (a typo otherwise fails silently as "every episode missed").
fn check_kind(
    alert: &Option<toml::Spanned<String>>,
    i: usize,
    kinds: Option<&[String]>,
    r: &mut Reporter<'_>,
) {
    let (Some(alert), Some(kinds)) = (alert, kinds) else {
        return;
    };
    if kinds.iter().any(|k| k == alert.get_ref()) {
        return;
    }
    let names: Vec<&str> = kinds.iter().map(String::as_str).collect();
    r.error(
        alert.span(),
        Some(format!("expect[{i}].alert")),
        format!(
            "`{}` is not one of the alert kinds the target emits ([alerts] kinds)",
            alert.get_ref()
        ),
        Some(match super::diag::suggest(alert.get_ref(), &names) {
            Some(best) => format!("did you mean `{best}`?"),
            None => format!("declared kinds: {}", names.join(", ")),
        }),
    );
}

/// `[[expect]]` number `i`; `None` (with the problems reported) when it
/// cannot be built.
fn resolve_expectation(
    file: &ScenarioFile,
    i: usize,
    source: &str,
    r: &mut Reporter<'_>,
) -> Option<Expectation> {
    let e = file.expect[i].get_ref();
    let field = |f: &str| format!("expect[{i}].{f}");
    let mut complete = check_shape(file, i, r);
    check_values(e, &field, r);
    let alert = e
        .alert
        .as_ref()
        .map(|a| a.get_ref().clone())
        .unwrap_or_default();
    let rule = match (&e.rule, &e.abnormal) {
        (Some(text), _) => rule_at(text, field("rule"), source, r),
        (None, Some(text)) => rule_at(text, field("abnormal"), source, r),
        // A state is read from the truth log: no rule on the data.
        (None, None) if e.state.is_some() => None,
        (None, None) => Rule::for_alert_kind(&alert),
    };
    let from = reference(e, &alert, rule.is_some(), &field, r);
    check_criterion(e, &field, r);
    let kind = match e.episode {
        Some(condition) => ExpectKind::Episode {
            condition: super::condition(condition),
            from,
            criterion: e
                .criterion
                .as_ref()
                .map(|c| c.get_ref().clone())
                .unwrap_or_else(|| {
                    default_criterion(&alert, super::condition(condition)).to_owned()
                }),
        },
        None => match &e.state {
            Some(name) => match criterion_named(name, &field("state"), r) {
                Some(criterion) => ExpectKind::State { criterion },
                None => {
                    complete = false;
                    ExpectKind::Rule
                }
            },
            None => {
                if e.rule.is_some() && rule.is_none() {
                    complete = false;
                }
                ExpectKind::Rule
            }
        },
    };
    complete.then(|| Expectation {
        name: e
            .name
            .as_ref()
            .map(|n| n.get_ref().clone())
            .unwrap_or_default(),
        kind,
        alert,
        within_ms: e.within.as_ref().map_or(0, |w| w.get_ref().ms()),
        rule,
        max_gap_ms: e
            .max_gap
            .as_ref()
            .map_or(DEFAULT_MAX_GAP_MS, |d| d.get_ref().ms()),
        rearm_ms: e
            .rearm
            .as_ref()
            .map_or(DEFAULT_REARM_MS, |d| d.get_ref().ms()),
        early_ms: e.early.as_ref().map_or(0, |d| d.get_ref().ms()),
        budgets: budgets(e),
    })
}

/// Required keys, and the keys that exclude or need each other. Returns
/// whether the expectation can be built.
fn check_shape(file: &ScenarioFile, i: usize, r: &mut Reporter<'_>) -> bool {
    let spanned = &file.expect[i];
    let e = spanned.get_ref();
    let at = spanned.span();
    let field = |f: &str| format!("expect[{i}].{f}");
    let mut complete = true;
    for (present, name) in [
        (e.name.is_some(), "name"),
        (e.alert.is_some(), "alert"),
        (e.within.is_some(), "within"),
    ] {
        if !present {
            r.missing(at.clone(), field(name));
            complete = false;
        }
    }
    if e.episode.is_none() && e.state.is_none() && e.rule.is_none() {
        r.error(
            at.clone(),
            Some(field("episode")),
            "an expectation needs `episode`, `state` or `rule`",
            Some(
                "`episode = \"sepsis\"`, `state = \"hypoglycaemia_level1\"` or `rule = \"news2 >= 7\"`"
                    .into(),
            ),
        );
        complete = false;
    }
    if let (true, Some(state)) = (e.episode.is_some() || e.rule.is_some(), &e.state) {
        r.error(
            state.span(),
            Some(field("state")),
            "`state` excludes `episode` and `rule`",
            None,
        );
        complete = false;
    }
    if let (Some(_), Some(rule)) = (e.episode, &e.rule) {
        r.error(
            rule.span(),
            Some(field("rule")),
            "`rule` and `episode` exclude each other",
            Some("to say what is abnormal for an episode, write `abnormal = \"...\"`".into()),
        );
        complete = false;
    }
    if e.episode.is_none() {
        for (name, span) in [
            ("abnormal", e.abnormal.as_ref().map(|s| s.span())),
            ("from", e.from.as_ref().map(|s| s.span())),
            ("criterion", e.criterion.as_ref().map(|s| s.span())),
        ] {
            if let Some(span) = span {
                r.error(
                    span,
                    Some(field(name)),
                    format!("`{name}` applies to episode expectations only"),
                    None,
                );
            }
        }
    }
    if let (true, Some(early)) = (e.episode.is_some() || e.state.is_some(), &e.early) {
        r.error(
            early.span(),
            Some(field("early")),
            "`early` applies to rule oracles only",
            None,
        );
    }
    if let Some(name) = &e.name
        && file.expect[..i]
            .iter()
            .any(|o| o.get_ref().name.as_ref().map(|n| n.get_ref()) == Some(name.get_ref()))
    {
        r.error(
            name.span(),
            Some(field("name")),
            format!("expectation name \"{}\" is used twice", name.get_ref()),
            None,
        );
    }
    complete
}

/// Values that must be non-empty, positive or finite.
fn check_values(e: &ExpectSpec, field: &impl Fn(&str) -> String, r: &mut Reporter<'_>) {
    if let Some(alert) = &e.alert
        && alert.get_ref().trim().is_empty()
    {
        r.error(
            alert.span(),
            Some(field("alert")),
            "alert kind is empty",
            None,
        );
    }
    for (name, d) in [("within", &e.within), ("max_gap", &e.max_gap)] {
        if let Some(d) = d
            && d.get_ref().ms() == 0
        {
            r.error(
                d.span(),
                Some(field(name)),
                format!("{name} must be positive"),
                None,
            );
        }
    }
    if let Some(x) = &e.max_false_alerts_per_patient_day
        && !(x.get_ref().is_finite() && *x.get_ref() >= 0.0)
    {
        r.error(
            x.span(),
            Some(field("max_false_alerts_per_patient_day")),
            "must be a number ≥ 0",
            None,
        );
    }
}

/// Where an episode's deadline counts from; an abnormal-data reference
/// needs to know what is abnormal.
fn reference(
    e: &ExpectSpec,
    alert: &str,
    has_rule: bool,
    field: &impl Fn(&str) -> String,
    r: &mut Reporter<'_>,
) -> Reference {
    let from = match e.from.as_ref().map(|f| *f.get_ref()) {
        None | Some(ReferenceName::Onset) => Reference::Onset,
        Some(ReferenceName::Criterion) => Reference::Criterion,
        Some(ReferenceName::FirstAbnormalMeasurement) => Reference::FirstAbnormalMeasurement,
        Some(ReferenceName::FirstAbnormalDelivery) => Reference::FirstAbnormalDelivery,
    };
    if let (Some(f), None, false) = (&e.from, &e.abnormal, has_rule)
        && matches!(
            from,
            Reference::FirstAbnormalMeasurement | Reference::FirstAbnormalDelivery
        )
    {
        r.error(
            f.span(),
            Some(field("from")),
            format!(
                "`from = \"{}\"` needs to know what is abnormal for alert `{alert}`",
                from.name()
            ),
            Some("add `abnormal = \"...\"`, e.g. `abnormal = \"news2 >= 5\"`".into()),
        );
    }
    from
}

/// `criterion` names one of the truth log's criteria.
fn check_criterion(e: &ExpectSpec, field: &impl Fn(&str) -> String, r: &mut Reporter<'_>) {
    if let Some(c) = &e.criterion {
        criterion_named(c, &field("criterion"), r);
    }
}

/// The truth log's criterion called `name`; an error (with the nearest
/// name) when there is none.
fn criterion_named(
    name: &toml::Spanned<String>,
    field: &str,
    r: &mut Reporter<'_>,
) -> Option<Criterion> {
    let found = Criterion::ALL
        .into_iter()
        .find(|c| c.name() == name.get_ref().as_str());
    if found.is_none() {
        let names: Vec<&str> = Criterion::ALL.iter().map(|c| c.name()).collect();
        r.error(
            name.span(),
            Some(field.to_owned()),
            format!("unknown criterion `{}`", name.get_ref()),
            Some(match super::diag::suggest(name.get_ref(), &names) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("expected one of {}", names.join(", ")),
            }),
        );
    }
    found
}

fn budgets(e: &ExpectSpec) -> Budgets {
    Budgets {
        max_false_alerts: e.max_false_alerts.map(u64::from),
        max_false_alerts_per_patient_day: e
            .max_false_alerts_per_patient_day
            .as_ref()
            .map(|x| *x.get_ref()),
        max_duplicates: e.max_duplicates,
        max_latency_p50_ms: e.max_latency_p50.map(|d| d.ms()),
        max_latency_p95_ms: e.max_latency_p95.map(|d| d.ms()),
        max_latency_p99_ms: e.max_latency_p99.map(|d| d.ms()),
        max_latency_ms: e.max_latency.map(|d| d.ms()),
    }
}
