//! Rule oracles: a small language over vitals, evaluated on a patient's
//! stream of samples.
//!
//! ```text
//! rule    := or
//! or      := and ("or" and)*
//! and     := hold ("and" hold)*
//! hold    := atom ["for" DURATION]
//! atom    := "(" rule ")" | "red_score" | metric OP NUMBER
//! metric  := hr | rr | spo2 | sbp | dbp | map | temp | news2 | qsofa
//! OP      := < | <= | > | >= | == | !=
//! ```
//!
//! Examples: `news2 >= 7`, `red_score`, `spo2 < 90 for 60s`,
//! `(rr >= 22 and sbp <= 100) or news2 >= 5`, `qsofa >= 2 for 5m`.
//!
//! # Semantics
//!
//! A [`RuleState`] holds the latest value of each vital (the one with the
//! latest *measurement* time: a stale sample delivered late does not
//! overwrite a newer one). Each sample fed to [`RuleState::observe`] updates
//! it and evaluates the rule at the sample's measurement time `s` (kept
//! monotonic: `s = max(previous s, measured)`).
//!
//! - A vital is *known* at `s` when its latest value was measured within
//!   `max_gap` before `s`. A comparison on an unknown vital is false: the
//!   oracle never claims a rule held on data it does not have.
//! - `news2` is NEWS2 (RCP 2017) on the known values, on the one chart in
//!   `medtwin_sim::news2`; a parameter not known scores 0. What a nurse
//!   charts counts when it is known like any vital (measured within
//!   `max_gap`): the SpO2 scale (`spo2_scale`; scale 1 when not known),
//!   supplemental oxygen (`o2_flow` above 0 scores 2; room air when not
//!   known) and the level of consciousness (`acvpu`: C, V, P or U score 3;
//!   0 points when not known). A coded value outside its list counts as
//!   not known. `red_score` is any single parameter scoring 3. `qsofa`
//!   (Sepsis-3) counts RR ≥ 22, SBP ≤ 100 and altered mentation (a known
//!   `acvpu` other than alert; 0 when not known).
//! - `X for D` holds at `s` when X held at every evaluation from some
//!   `s0 ≤ s - D` up to `s`. Evidence is required: the rule becomes true
//!   only when a sample *shows* X still holding D after it began.
//! - **Data gaps**: if two consecutive evaluations are more than `max_gap`
//!   apart (no sample from the patient at all), every hold restarts; a gap
//!   in one vital longer than `max_gap` makes it unknown, so a hold on it
//!   restarts too. A hold never bridges a gap longer than `max_gap`.

use medtwin_sim::Vital;
use medtwin_sim::vitals::{Acvpu, spo2_scale_from_code};

use medtwin_sim::news2::{self, Observations, round_whole};

use crate::duration;

/// Longest rule text accepted, bytes (bounded parsing).
pub const MAX_RULE_LEN: usize = 1024;
/// Deepest nesting of parentheses accepted.
const MAX_DEPTH: usize = 32;

/// What a comparison looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// A single vital's latest known value.
    Vital(Vital),
    /// NEWS2 total over the known values.
    News2,
    /// qSOFA points (RR ≥ 22, SBP ≤ 100, altered mentation when charted).
    Qsofa,
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `==`
    Eq,
    /// `!=`
    Ne,
}

impl Op {
    fn apply(self, a: f64, b: f64) -> bool {
        match self {
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Gt => a > b,
            Op::Ge => a >= b,
            Op::Eq => a == b,
            Op::Ne => a != b,
        }
    }
}

/// The parsed rule.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// `metric op value`.
    Cmp {
        /// What is compared.
        metric: Metric,
        /// How.
        op: Op,
        /// Against what.
        value: f64,
    },
    /// Any NEWS2 parameter scores 3.
    RedScore,
    /// All hold.
    And(Vec<Expr>),
    /// Any holds.
    Or(Vec<Expr>),
    /// `inner for for_ms`; `slot` indexes the hold's state.
    Hold {
        /// What must keep holding.
        inner: Box<Expr>,
        /// For how long, ms.
        for_ms: u64,
        /// Index into [`RuleState`]'s hold starts.
        slot: usize,
    },
}

/// A rule: its text and its tree.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    /// As written.
    pub source: String,
    /// Parsed.
    pub expr: Expr,
    n_holds: usize,
}

/// A parse error at a byte offset of the rule text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("at character {}: {message}", .offset + 1)]
pub struct RuleError {
    /// Byte offset into the rule text.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Number(f64),
    Duration(u64),
    Op(Op),
    LParen,
    RParen,
}

fn lex(text: &str) -> Result<Vec<(usize, Tok)>, RuleError> {
    let err = |offset, message: String| Err(RuleError { offset, message });
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'(' => {
                out.push((start, Tok::LParen));
                i += 1;
            }
            b')' => {
                out.push((start, Tok::RParen));
                i += 1;
            }
            b'<' | b'>' | b'=' | b'!' => {
                let two = bytes.get(i + 1) == Some(&b'=');
                let op = match (c, two) {
                    (b'<', false) => Op::Lt,
                    (b'<', true) => Op::Le,
                    (b'>', false) => Op::Gt,
                    (b'>', true) => Op::Ge,
                    (b'=', true) => Op::Eq,
                    (b'!', true) => Op::Ne,
                    _ => {
                        return err(
                            start,
                            format!("unexpected `{}`; did you mean `{}=`?", c as char, c as char),
                        );
                    }
                };
                out.push((start, Tok::Op(op)));
                i += if two { 2 } else { 1 };
            }
            b'0'..=b'9' | b'.' => {
                while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
                    i += 1;
                }
                if i < bytes.len() && bytes[i].is_ascii_alphabetic() {
                    // A duration: digits and units run together (`60s`, `1h30m`).
                    while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'.')
                    {
                        i += 1;
                    }
                    match duration::parse(&text[start..i]) {
                        Ok(ms) => out.push((start, Tok::Duration(ms))),
                        Err(why) => {
                            return err(
                                start,
                                format!("bad duration `{}`: {why}", &text[start..i]),
                            );
                        }
                    }
                } else {
                    match text[start..i].parse::<f64>() {
                        Ok(v) if v.is_finite() => out.push((start, Tok::Number(v))),
                        _ => return err(start, format!("bad number `{}`", &text[start..i])),
                    }
                }
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                out.push((start, Tok::Ident(text[start..i].to_ascii_lowercase())));
            }
            _ => {
                let ch = text[start..].chars().next().unwrap_or('?');
                return err(start, format!("unexpected character `{ch}`"));
            }
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<(usize, Tok)>,
    pos: usize,
    end: usize,
    n_holds: usize,
    depth: usize,
}

const METRICS: &str = "hr, rr, spo2, sbp, dbp, map, temp, news2, qsofa or red_score";

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(_, t)| t)
    }

    fn offset(&self) -> usize {
        self.toks.get(self.pos).map_or(self.end, |(o, _)| *o)
    }

    fn error<T>(&self, message: impl Into<String>) -> Result<T, RuleError> {
        Err(RuleError {
            offset: self.offset(),
            message: message.into(),
        })
    }

    fn keyword(&mut self, word: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Ident(w)) if w == word) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> Result<Expr, RuleError> {
        let mut items = vec![self.and()?];
        while self.keyword("or") {
            items.push(self.and()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::Or(items)
        })
    }

    fn and(&mut self) -> Result<Expr, RuleError> {
        let mut items = vec![self.hold()?];
        while self.keyword("and") {
            items.push(self.hold()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::And(items)
        })
    }

    fn hold(&mut self) -> Result<Expr, RuleError> {
        let inner = self.atom()?;
        if !self.keyword("for") {
            return Ok(inner);
        }
        match self.peek() {
            Some(Tok::Duration(ms)) if *ms > 0 => {
                let for_ms = *ms;
                self.pos += 1;
                let slot = self.n_holds;
                self.n_holds += 1;
                Ok(Expr::Hold {
                    inner: Box::new(inner),
                    for_ms,
                    slot,
                })
            }
            Some(Tok::Duration(_)) => self.error("a hold time must be positive"),
            Some(Tok::Number(_)) => self.error("a hold time needs a unit, e.g. `60s` or `5m`"),
            _ => self.error("expected a duration after `for`, e.g. `60s`"),
        }
    }

    fn atom(&mut self) -> Result<Expr, RuleError> {
        let Some(tok) = self.peek().cloned() else {
            return self.error(format!("expected {METRICS}, found the end of the rule"));
        };
        match tok {
            Tok::LParen => {
                if self.depth >= MAX_DEPTH {
                    return self.error("parentheses nested too deeply");
                }
                self.depth += 1;
                self.pos += 1;
                let inner = self.or()?;
                self.depth -= 1;
                if self.peek() != Some(&Tok::RParen) {
                    return self.error("expected `)`");
                }
                self.pos += 1;
                Ok(inner)
            }
            Tok::Ident(word) if word == "red_score" => {
                self.pos += 1;
                Ok(Expr::RedScore)
            }
            Tok::Ident(word) => {
                let metric = match word.as_str() {
                    "hr" => Metric::Vital(Vital::Hr),
                    "rr" => Metric::Vital(Vital::Rr),
                    "spo2" => Metric::Vital(Vital::Spo2),
                    "sbp" => Metric::Vital(Vital::Sbp),
                    "dbp" => Metric::Vital(Vital::Dbp),
                    "map" => Metric::Vital(Vital::Map),
                    "temp" => Metric::Vital(Vital::Temp),
                    "news2" => Metric::News2,
                    "qsofa" => Metric::Qsofa,
                    other => {
                        let help = suggest(
                            other,
                            &[
                                "hr",
                                "rr",
                                "spo2",
                                "sbp",
                                "dbp",
                                "map",
                                "temp",
                                "news2",
                                "qsofa",
                                "red_score",
                            ],
                        )
                        .map(|s| format!(" (did you mean `{s}`?)"))
                        .unwrap_or_default();
                        return self
                            .error(format!("unknown name `{other}`{help}; expected {METRICS}"));
                    }
                };
                self.pos += 1;
                let Some(Tok::Op(op)) = self.peek().cloned() else {
                    return self.error(format!(
                        "expected a comparison after `{word}`, e.g. `{word} >= 5`"
                    ));
                };
                self.pos += 1;
                let Some(Tok::Number(value)) = self.peek().cloned() else {
                    return self.error("expected a number");
                };
                self.pos += 1;
                Ok(Expr::Cmp { metric, op, value })
            }
            Tok::RParen => self.error("unexpected `)`"),
            _ => self.error(format!("expected {METRICS}")),
        }
    }
}

/// The nearest of `valid` to a misspelt `found` (Jaro-Winkler ≥ 0.8), for
/// "did you mean" hints.
pub fn suggest<'v>(found: &str, valid: &[&'v str]) -> Option<&'v str> {
    let lower = found.to_lowercase();
    valid
        .iter()
        .map(|&v| (strsim::jaro_winkler(&lower, v), v))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, v)| v)
}

impl Rule {
    /// Parses a rule. Errors carry the byte offset in `text`.
    pub fn parse(text: &str) -> Result<Rule, RuleError> {
        if text.len() > MAX_RULE_LEN {
            return Err(RuleError {
                offset: MAX_RULE_LEN,
                message: format!("a rule is at most {MAX_RULE_LEN} bytes"),
            });
        }
        let toks = lex(text)?;
        if toks.is_empty() {
            return Err(RuleError {
                offset: 0,
                message: "empty rule".into(),
            });
        }
        let mut p = Parser {
            toks,
            pos: 0,
            end: text.len(),
            n_holds: 0,
            depth: 0,
        };
        let expr = p.or()?;
        if p.pos < p.toks.len() {
            return p.error("expected `and`, `or` or the end of the rule");
        }
        Ok(Rule {
            source: text.to_owned(),
            expr,
            n_holds: p.n_holds,
        })
    }

    /// The rule that stands for a NEWS2 alert kind of the reference backend
    /// (RCP 2017 triggers): `news2-medium` is a total ≥ 5 or a red score,
    /// `news2-high` a total ≥ 7. `None` for other kinds.
    pub fn for_alert_kind(kind: &str) -> Option<Rule> {
        match kind {
            "news2-medium" => Rule::parse("news2 >= 5 or red_score").ok(),
            "news2-high" => Rule::parse("news2 >= 7").ok(),
            _ => None,
        }
    }

    /// A fresh evaluation state for one patient.
    pub fn state(&self, max_gap_ms: u64) -> RuleState {
        RuleState {
            latest: [None; Vital::ALL.len()],
            holds: vec![None; self.n_holds],
            clock_ms: None,
            max_gap_ms,
        }
    }
}

/// One patient's evaluation state (bounded: one value per vital and one
/// start time per hold).
#[derive(Clone, Debug)]
pub struct RuleState {
    latest: [Option<(f64, u64)>; Vital::ALL.len()],
    holds: Vec<Option<u64>>,
    clock_ms: Option<u64>,
    max_gap_ms: u64,
}

impl RuleState {
    /// Feeds one sample (the readings of one measurement, measured at
    /// `measured_ms`) and evaluates the rule. Returns whether it holds.
    pub fn observe(
        &mut self,
        rule: &Rule,
        readings: &[medtwin_sim::Reading],
        measured_ms: u64,
    ) -> bool {
        for r in readings {
            let entry = &mut self.latest[r.vital.index()];
            if r.value.is_finite() && entry.is_none_or(|(_, m)| m <= measured_ms) {
                *entry = Some((r.value, measured_ms));
            }
        }
        let now = self.clock_ms.map_or(measured_ms, |c| c.max(measured_ms));
        if let Some(previous) = self.clock_ms
            && now - previous > self.max_gap_ms
        {
            self.holds.iter_mut().for_each(|h| *h = None);
        }
        self.clock_ms = Some(now);
        self.eval(&rule.expr, now)
    }

    fn known(&self, vital: Vital, now: u64) -> Option<f64> {
        self.latest[vital.index()]
            .filter(|(_, m)| now.saturating_sub(*m) <= self.max_gap_ms)
            .map(|(v, _)| v)
    }

    /// The known level of consciousness, if charted within `max_gap`.
    fn consciousness(&self, now: u64) -> Option<Acvpu> {
        self.known(Vital::Acvpu, now).and_then(Acvpu::from_code)
    }

    fn observations(&self, now: u64) -> Observations {
        Observations {
            rr_per_min: self.known(Vital::Rr, now),
            spo2_pct: self.known(Vital::Spo2, now),
            spo2_scale: self
                .known(Vital::Spo2Scale, now)
                .and_then(spo2_scale_from_code)
                .unwrap_or_default(),
            on_oxygen: self.known(Vital::O2Flow, now).is_some_and(|lpm| lpm > 0.0),
            sbp_mmhg: self.known(Vital::Sbp, now),
            hr_per_min: self.known(Vital::Hr, now),
            consciousness: self.consciousness(now),
            temp_c: self.known(Vital::Temp, now),
        }
    }

    fn eval(&mut self, expr: &Expr, now: u64) -> bool {
        match expr {
            Expr::Cmp { metric, op, value } => {
                let x = match metric {
                    Metric::Vital(v) => self.known(*v, now),
                    Metric::News2 => Some(f64::from(news2::score(&self.observations(now)).total)),
                    Metric::Qsofa => {
                        let rr = self
                            .known(Vital::Rr, now)
                            .is_some_and(|v| round_whole(v) >= 22);
                        let sbp = self
                            .known(Vital::Sbp, now)
                            .is_some_and(|v| round_whole(v) <= 100);
                        let mentation = self
                            .consciousness(now)
                            .is_some_and(|level| level != Acvpu::Alert);
                        Some(f64::from(
                            u8::from(rr) + u8::from(sbp) + u8::from(mentation),
                        ))
                    }
                };
                x.is_some_and(|x| op.apply(x, *value))
            }
            Expr::RedScore => news2::score(&self.observations(now)).red,
            // Every child is evaluated (no short circuit): holds inside
            // must see every sample.
            Expr::And(items) => items.iter().fold(true, |acc, e| self.eval(e, now) & acc),
            Expr::Or(items) => items.iter().fold(false, |acc, e| self.eval(e, now) | acc),
            Expr::Hold {
                inner,
                for_ms,
                slot,
            } => {
                if self.eval(inner, now) {
                    let start = *self.holds[*slot].get_or_insert(now);
                    now - start >= *for_ms
                } else {
                    self.holds[*slot] = None;
                    false
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use medtwin_sim::Reading;

    fn r(vital: Vital, value: f64) -> Reading {
        Reading { vital, value }
    }

    fn err(text: &str) -> (usize, String) {
        let e = Rule::parse(text).unwrap_err();
        (e.offset, e.message)
    }

    #[test]
    fn suggests_the_nearest_name() {
        assert_eq!(
            suggest("devcies", &["name", "count", "devices", "network"]),
            Some("devices")
        );
        assert_eq!(
            suggest("pulse_oxymeter", &["pulse_oximeter", "bp_cuff"]),
            Some("pulse_oximeter")
        );
        assert_eq!(suggest("zzz", &["pulse_oximeter", "bp_cuff"]), None);
    }

    #[test]
    fn parses_precedence_holds_and_parentheses() {
        let rule = Rule::parse("spo2 < 90 for 60s or (rr >= 22 and sbp <= 100)").unwrap();
        let Expr::Or(items) = &rule.expr else {
            panic!("{rule:?}")
        };
        assert!(matches!(&items[0], Expr::Hold { for_ms: 60_000, .. }));
        assert!(matches!(&items[1], Expr::And(v) if v.len() == 2));
        assert!(Rule::parse("news2 >= 7").is_ok());
        assert!(Rule::parse("RED_SCORE and qsofa >= 2 for 1h30m").is_ok());
    }

    #[test]
    fn parse_errors_point_at_the_problem() {
        assert_eq!(err("spo2 < ").0, 7);
        assert_eq!(err("spo2 < 90 for 60").0, 14);
        assert!(err("spo2 < 90 for 60").1.contains("unit"));
        assert_eq!(err("sp02 < 90").0, 0);
        assert!(
            err("sp02 < 90").1.contains("did you mean `spo2`"),
            "{:?}",
            err("sp02 < 90")
        );
        assert_eq!(err("(hr > 90").0, 8);
        assert_eq!(err("hr > 90 hr").0, 8);
        assert_eq!(err("hr = 90").0, 3);
        assert_eq!(err("hr > 90 # x").0, 8);
        assert_eq!(err("").1, "empty rule");
        assert_eq!(err("hr > 90 for 0s").0, 12);
        assert!(Rule::parse(&"(".repeat(100)).is_err());
    }

    #[test]
    fn thresholds_hold_only_on_fresh_data() {
        let rule = Rule::parse("spo2 < 90").unwrap();
        let mut s = rule.state(60_000);
        assert!(!s.observe(&rule, &[r(Vital::Hr, 80.0)], 0));
        assert!(s.observe(&rule, &[r(Vital::Spo2, 88.0)], 1_000));
        assert!(s.observe(&rule, &[r(Vital::Hr, 80.0)], 61_000));
        // The SpO2 reading is now more than max_gap old: unknown, so false.
        assert!(!s.observe(&rule, &[r(Vital::Hr, 80.0)], 61_001));
        // An older sample delivered late does not overwrite a newer one.
        assert!(s.observe(&rule, &[r(Vital::Spo2, 85.0)], 70_000));
        assert!(s.observe(&rule, &[r(Vital::Spo2, 99.0)], 65_000));
    }

    #[test]
    fn holds_need_evidence_and_restart_across_gaps() {
        let rule = Rule::parse("spo2 < 90 for 60s").unwrap();
        let mut s = rule.state(30_000);
        let low = |s: &mut RuleState, t| s.observe(&rule, &[r(Vital::Spo2, 85.0)], t);
        assert!(!low(&mut s, 0));
        assert!(!low(&mut s, 30_000));
        assert!(low(&mut s, 60_000), "held 60 s with samples at 0, 30, 60 s");
        // A normal sample breaks the hold.
        assert!(!s.observe(&rule, &[r(Vital::Spo2, 95.0)], 70_000));
        assert!(!low(&mut s, 80_000));
        assert!(!low(&mut s, 110_000));
        assert!(low(&mut s, 140_000));
        // A gap longer than max_gap (30 s) restarts the hold even though
        // both sides are low.
        assert!(!low(&mut s, 170_001));
        assert!(!low(&mut s, 200_000));
        assert!(!low(&mut s, 230_000), "59.999 s since the restart");
        assert!(low(&mut s, 231_000));
    }

    #[test]
    fn a_gap_in_one_vital_restarts_its_hold() {
        // HR samples keep coming every 10 s; SpO2 stops for 40 s.
        let rule = Rule::parse("spo2 < 90 for 30s").unwrap();
        let mut s = rule.state(20_000);
        assert!(!s.observe(&rule, &[r(Vital::Spo2, 85.0)], 0));
        assert!(!s.observe(&rule, &[r(Vital::Hr, 80.0)], 10_000));
        assert!(!s.observe(&rule, &[r(Vital::Hr, 80.0)], 20_000));
        // SpO2 last seen at 0: unknown at 30 s, the hold restarts.
        assert!(!s.observe(&rule, &[r(Vital::Hr, 80.0)], 30_000));
        assert!(!s.observe(&rule, &[r(Vital::Spo2, 85.0)], 40_000));
        assert!(!s.observe(&rule, &[r(Vital::Spo2, 85.0)], 55_000));
        assert!(s.observe(&rule, &[r(Vital::Spo2, 85.0)], 70_000));
    }

    #[test]
    fn news2_red_score_and_qsofa_by_hand() {
        let news = Rule::parse("news2 >= 7").unwrap();
        let red = Rule::parse("red_score").unwrap();
        let qsofa = Rule::parse("qsofa >= 2").unwrap();
        // RR 25 (3), SpO2 93 (2), SBP 100 (2), HR 95 (1), temp 38.5 (1) = 9.
        let sample = [
            (Vital::Rr, 25.0),
            (Vital::Spo2, 93.0),
            (Vital::Sbp, 100.0),
            (Vital::Hr, 95.0),
            (Vital::Temp, 38.5),
        ];
        let mut sn = news.state(600_000);
        let mut sr = red.state(600_000);
        let mut sq = qsofa.state(600_000);
        for (i, (v, x)) in sample.iter().enumerate() {
            let t = i as u64 * 1_000;
            let n = sn.observe(&news, &[r(*v, *x)], t);
            let red_now = sr.observe(&red, &[r(*v, *x)], t);
            let q = sq.observe(&qsofa, &[r(*v, *x)], t);
            // After RR alone: 3 points, red. After SpO2: 5. After SBP: 7.
            assert_eq!(n, i >= 2, "news2 after {i}");
            assert!(red_now);
            assert_eq!(q, i >= 2, "qsofa after {i}");
        }
        // Healthy values: NEWS2 0, no red score.
        let mut s = red.state(600_000);
        assert!(!s.observe(&red, &[r(Vital::Rr, 16.0), r(Vital::Spo2, 97.0)], 0));
    }

    /// Normal measured vitals for a scale-1 patient: NEWS2 0.
    const NORMAL: [(Vital, f64); 5] = [
        (Vital::Rr, 16.0),
        (Vital::Spo2, 97.0),
        (Vital::Sbp, 125.0),
        (Vital::Hr, 80.0),
        (Vital::Temp, 36.9),
    ];

    /// The readings of a nurse's round: ACVPU code, oxygen L/min, scale.
    fn charted(acvpu: f64, o2_lpm: f64, scale: f64) -> [Reading; 3] {
        [
            r(Vital::Acvpu, acvpu),
            r(Vital::O2Flow, o2_lpm),
            r(Vital::Spo2Scale, scale),
        ]
    }

    fn normal() -> Vec<Reading> {
        NORMAL.iter().map(|&(v, x)| r(v, x)).collect()
    }

    #[test]
    fn a_patient_charted_v_scores_3_and_owes_news2_medium() {
        let medium = Rule::for_alert_kind("news2-medium").unwrap();
        let three = Rule::parse("news2 >= 3 and red_score").unwrap();
        let five = Rule::parse("news2 >= 5").unwrap();
        let (mut sm, mut s3, mut s5) = (medium.state(HOUR), three.state(HOUR), five.state(HOUR));
        assert!(!sm.observe(&medium, &normal(), 0));
        assert!(!s3.observe(&three, &normal(), 0));
        // Charted "V" (code 2), on air, scale 1: consciousness scores 3, a red score.
        let v = charted(2.0, 0.0, 1.0);
        assert!(sm.observe(&medium, &v, 1_000));
        assert!(s3.observe(&three, &v, 1_000));
        assert!(!s5.observe(&five, &v, 1_000), "V alone is 3, not 5");
        // ...and with oxygen on top (2 points), 5.
        assert!(s5.observe(&five, &charted(2.0, 2.0, 1.0), 2_000));
        // Back to alert, on air: NEWS2 0 again.
        assert!(!sm.observe(&medium, &charted(0.0, 0.0, 1.0), 3_000));
        // A code outside 0-4 is not a level: not known.
        assert!(!sm.observe(&medium, &charted(7.0, 0.0, 1.0), 4_000));
    }

    #[test]
    fn news2_uses_the_delivered_scale_and_oxygen_while_known() {
        let medium = Rule::for_alert_kind("news2-medium").unwrap();
        let news = Rule::parse("news2 >= 2").unwrap();
        let mut s = medium.state(HOUR);
        let mut sn = news.state(HOUR);
        let spo2 = |x| [r(Vital::Spo2, x)];
        // COPD at 90 % on air: a red 3 on scale 1...
        assert!(!s.observe(&medium, &normal(), 0));
        assert!(s.observe(&medium, &spo2(90.0), 1_000));
        // ...0 once the nurse charts scale 2.
        assert!(!s.observe(&medium, &charted(0.0, 0.0, 2.0), 2_000));
        assert!(!s.observe(&medium, &spo2(90.0), 3_000));
        // Scale 2 still scores a real fall (≤ 83: 3).
        assert!(s.observe(&medium, &spo2(83.0), 4_000));
        // Oxygen scores 2 whatever the saturation; on scale 2, 97 % on
        // oxygen is a red 3.
        assert!(!sn.observe(&news, &normal(), 0));
        assert!(sn.observe(&news, &charted(0.0, 2.0, 2.0), 1_000));
        assert!(s.observe(&medium, &charted(0.0, 2.0, 2.0), 5_000));
        // The chart is known for max_gap only: then scale 1 and air again.
        let mut s = medium.state(10_000);
        assert!(!s.observe(&medium, &charted(0.0, 0.0, 2.0), 0));
        assert!(!s.observe(&medium, &spo2(90.0), 10_000));
        assert!(
            s.observe(&medium, &spo2(90.0), 10_001),
            "stale chart: scale 1"
        );
    }

    #[test]
    fn qsofa_counts_altered_mentation_when_charted() {
        let qsofa = Rule::parse("qsofa >= 2").unwrap();
        let mut s = qsofa.state(HOUR);
        assert!(!s.observe(&qsofa, &[r(Vital::Rr, 24.0)], 0));
        // Alert: no point.
        assert!(!s.observe(&qsofa, &charted(0.0, 0.0, 1.0), 1_000));
        // New confusion: the second point.
        assert!(s.observe(&qsofa, &charted(1.0, 0.0, 1.0), 2_000));
        let three = Rule::parse("qsofa >= 3").unwrap();
        let mut s = three.state(HOUR);
        let all = [
            r(Vital::Rr, 24.0),
            r(Vital::Sbp, 95.0),
            r(Vital::Acvpu, 4.0),
        ];
        assert!(s.observe(&three, &all, 0));
    }

    const HOUR: u64 = 3_600_000;

    #[test]
    fn and_or_evaluate_every_hold() {
        // The hold on the right must keep counting while the left is true.
        let rule = Rule::parse("hr > 100 or rr > 20 for 20s").unwrap();
        let mut s = rule.state(60_000);
        assert!(s.observe(&rule, &[r(Vital::Hr, 120.0), r(Vital::Rr, 25.0)], 0));
        assert!(s.observe(&rule, &[r(Vital::Hr, 80.0), r(Vital::Rr, 25.0)], 20_000));
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use medtwin_sim::Reading;
    use quickcheck::{Gen, QuickCheck, TestResult};

    /// The reference: from the whole history at once. `spo2 < 90 for D`
    /// holds at sample i when the samples j..=i all see SpO2 known (a SpO2
    /// sample within `max_gap` before) and below 90, no two consecutive
    /// samples are more than `max_gap` apart, and s_i - s_j >= D.
    fn naive(samples: &[(u64, Option<f64>)], hold_ms: u64, max_gap: u64) -> Vec<bool> {
        let low_at = |k: usize| -> bool {
            let s = samples[k].0;
            samples[..=k]
                .iter()
                .rev()
                .find_map(|(t, v)| v.map(|v| (*t, v)))
                .is_some_and(|(t, v)| s - t <= max_gap && v < 90.0)
        };
        (0..samples.len())
            .map(|i| {
                let mut j = i;
                if !low_at(i) {
                    return false;
                }
                while j > 0 && low_at(j - 1) && samples[j].0 - samples[j - 1].0 <= max_gap {
                    j -= 1;
                }
                samples[i].0 - samples[j].0 >= hold_ms
            })
            .collect()
    }

    fn agrees(steps: Vec<(u8, bool, u8)>, hold: u8, gap: u8) -> TestResult {
        let hold_ms = u64::from(hold % 60) * 1_000 + 1_000;
        let max_gap = u64::from(gap % 40) * 1_000 + 1_000;
        let mut t = 0;
        let samples: Vec<(u64, Option<f64>)> = steps
            .iter()
            .take(60)
            .map(|&(dt, is_spo2, v)| {
                t += u64::from(dt % 30) * 1_000;
                // SpO2 between 84 and 96, or an HR sample (no SpO2).
                (t, is_spo2.then_some(84.0 + f64::from(v % 13)))
            })
            .collect();
        let rule = Rule::parse(&format!("spo2 < 90 for {hold_ms}ms")).unwrap();
        let mut state = rule.state(max_gap);
        let got: Vec<bool> = samples
            .iter()
            .map(|&(t, v)| {
                let reading = match v {
                    Some(v) => Reading {
                        vital: Vital::Spo2,
                        value: v,
                    },
                    None => Reading {
                        vital: Vital::Hr,
                        value: 80.0,
                    },
                };
                state.observe(&rule, &[reading], t)
            })
            .collect();
        let want = naive(&samples, hold_ms, max_gap);
        if got == want {
            TestResult::passed()
        } else {
            TestResult::error(format!("{samples:?}\nstreaming {got:?}\nnaive {want:?}"))
        }
    }

    /// `news2 >= k` streaming vs from the whole history: at each sample,
    /// each vital's latest value, known when within `max_gap`, the charted
    /// codes read as the chart reads them.
    fn news2_agrees(steps: Vec<(u8, u8, u8)>, k: u8, gap: u8) -> TestResult {
        let max_gap = u64::from(gap % 40) * 60_000 + 60_000;
        let threshold = f64::from(k % 12);
        let vitals = [Vital::Spo2, Vital::Acvpu, Vital::O2Flow, Vital::Spo2Scale];
        let mut t = 0;
        let samples: Vec<(u64, Vital, f64)> = steps
            .iter()
            .take(60)
            .map(|&(dt, which, v)| {
                t += u64::from(dt % 20) * 60_000;
                let vital = vitals[usize::from(which) % vitals.len()];
                let value = match vital {
                    Vital::Spo2 => 80.0 + f64::from(v % 20),
                    // Codes 0-5 (5 is not a level), 0-3 L/min, scales 0-3.
                    Vital::Acvpu => f64::from(v % 6),
                    Vital::O2Flow => f64::from(v % 4),
                    _ => f64::from(v % 4),
                };
                (t, vital, value)
            })
            .collect();
        let rule = Rule::parse(&format!("news2 >= {threshold}")).unwrap();
        let mut state = rule.state(max_gap);
        for (i, &(t, vital, value)) in samples.iter().enumerate() {
            let got = state.observe(&rule, &[Reading { vital, value }], t);
            let known = |v: Vital| {
                samples[..=i]
                    .iter()
                    .rev()
                    .find(|s| s.1 == v)
                    .filter(|s| t - s.0 <= max_gap)
                    .map(|s| s.2)
            };
            let obs = Observations {
                spo2_pct: known(Vital::Spo2),
                spo2_scale: match known(Vital::Spo2Scale) {
                    Some(2.0) => news2::Spo2Scale::Scale2,
                    _ => news2::Spo2Scale::Scale1,
                },
                on_oxygen: known(Vital::O2Flow).is_some_and(|f| f > 0.0),
                consciousness: known(Vital::Acvpu)
                    .filter(|&c| c <= 4.0)
                    .map(|c| Acvpu::ALL[c as usize]),
                ..Observations::default()
            };
            let want = f64::from(news2::score(&obs).total) >= threshold;
            if got != want {
                return TestResult::error(format!(
                    "{samples:?}\nat {i}: streaming {got}, naive {want}"
                ));
            }
        }
        TestResult::passed()
    }

    #[test]
    fn news2_on_charted_values_agrees_with_a_whole_history_reference() {
        QuickCheck::new()
            .rng(Gen::from_size_and_seed(60, 0x006e_6577_7332))
            .tests(1_000)
            .quickcheck(news2_agrees as fn(Vec<(u8, u8, u8)>, u8, u8) -> TestResult);
    }

    #[test]
    fn holds_agree_with_a_whole_history_reference() {
        QuickCheck::new()
            .rng(Gen::from_size_and_seed(60, 0x7275_6c65_7321))
            .tests(1_000)
            .quickcheck(agrees as fn(Vec<(u8, bool, u8)>, u8, u8) -> TestResult);
    }
}
