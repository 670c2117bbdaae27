//! The profile catalogue: `harness/medtwin/catalogue/profiles.toml` (built in),
//! files a scenario names in `[catalogue] profiles = [...]`, and
//! `[[profile]]` tables inline in the scenario. Each entry may `extends`
//! one defined before it and change only what differs.

use std::path::{Path, PathBuf};

use medtwin_sim::glucose::Metabolism;
use medtwin_sim::{Meal, ProfileSpec, Spread};
use serde::Deserialize;
use toml::Spanned;

use super::diag::{self, Diagnostic, Diagnostics, Reporter, suggest};

/// The built-in catalogue file, as shipped.
pub const BUILTIN_TEXT: &str = include_str!("../../catalogue/profiles.toml");
/// How the built-in file is named in messages.
pub const BUILTIN_PATH: &str = "harness/medtwin/catalogue/profiles.toml";
/// The built-in device catalogue, as shipped.
pub const BUILTIN_DEVICES_TEXT: &str = include_str!("../../catalogue/devices.toml");
/// How the built-in device file is named in messages.
pub const BUILTIN_DEVICES_PATH: &str = "harness/medtwin/catalogue/devices.toml";

/// A file of profiles.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProfileFile {
    #[serde(default)]
    pub profile: Vec<Spanned<ProfileEntry>>,
    #[serde(default)]
    pub device: Vec<Spanned<super::devices::DeviceEntry>>,
}

/// One `[[profile]]` as written: every field optional, so `extends` can
/// fill the gaps and missing ones are all reported.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProfileEntry {
    pub name: Option<Spanned<String>>,
    pub extends: Option<Spanned<String>>,
    pub description: Option<String>,
    pub source: Option<String>,
    pub age: Option<Spanned<SpreadSpec>>,
    pub female_pct: Option<Spanned<f64>>,
    pub weight_kg: Option<Spanned<SpreadSpec>>,
    pub hr: Option<Spanned<SpreadSpec>>,
    pub sbp: Option<Spanned<SpreadSpec>>,
    pub dbp: Option<Spanned<SpreadSpec>>,
    pub rr: Option<Spanned<SpreadSpec>>,
    pub spo2: Option<Spanned<SpreadSpec>>,
    pub temp: Option<Spanned<SpreadSpec>>,
    pub etco2: Option<Spanned<SpreadSpec>>,
    pub glucose: Option<Spanned<SpreadSpec>>,
    pub cardiac_output: Option<Spanned<SpreadSpec>>,
    pub spo2_scale: Option<Spanned<u8>>,
    pub metabolism: Option<MetabolismName>,
    pub insulin_sensitivity: Option<Spanned<SpreadSpec>>,
    pub bp_dip: Option<Spanned<SpreadSpec>>,
    pub hr_night_drop: Option<Spanned<SpreadSpec>>,
    pub temp_swing_c: Option<Spanned<f64>>,
    pub hr_variability: Option<Spanned<f64>>,
    pub pvc_per_min: Option<Spanned<f64>>,
    pub meals: Option<Vec<Spanned<MealSpec>>>,
}

/// A spread: `{ mean, sd, min, max }` or a fixed number.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum SpreadSpec {
    Fixed(f64),
    Normal {
        mean: f64,
        sd: f64,
        min: f64,
        max: f64,
    },
}

/// Glucose regulation names.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum MetabolismName {
    NonDiabetic,
    Type1,
}

/// `{ at = "08:00", carbs_g = 50 }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MealSpec {
    pub at: Option<Spanned<String>>,
    pub carbs_g: Option<Spanned<f64>>,
}

/// The name of a new catalogue entry (`what`: "profile", "device"), if it
/// is present, valid and not taken; otherwise the error goes to `r`.
pub(super) fn new_name(
    what: &str,
    name: &Option<Spanned<String>>,
    at: std::ops::Range<usize>,
    field: &str,
    taken: impl Fn(&str) -> bool,
    r: &mut Reporter<'_>,
) -> Option<String> {
    let key = format!("{field}.name");
    let Some(name) = name else {
        r.missing(at, key);
        return None;
    };
    let text = name.get_ref().clone();
    if !diag::valid_name(&text) {
        r.error(
            name.span(),
            Some(key),
            format!("invalid {what} name \"{text}\""),
            Some("use letters, digits, `_` and `-`".into()),
        );
        return None;
    }
    if taken(&text) {
        r.error(
            name.span(),
            Some(key),
            format!("{what} `{text}` is already defined"),
            Some(format!(
                "give yours a new name and `extends = \"{text}\"` to change only what differs"
            )),
        );
        return None;
    }
    Some(text)
}

/// The profiles and device models known to a scenario.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Catalogue {
    /// In definition order.
    pub profiles: Vec<ProfileSpec>,
    /// Device models, in definition order.
    pub devices: Vec<medtwin_sim::DeviceSpec>,
}

impl Catalogue {
    /// The built-in profiles.
    pub fn builtin() -> Result<Catalogue, Diagnostics> {
        let mut catalogue = Catalogue::default();
        catalogue.add_text(Path::new(BUILTIN_PATH), BUILTIN_TEXT)?;
        catalogue.add_text(Path::new(BUILTIN_DEVICES_PATH), BUILTIN_DEVICES_TEXT)?;
        Ok(catalogue)
    }

    /// The profile called `name`.
    pub fn get(&self, name: &str) -> Option<&ProfileSpec> {
        self.profiles.iter().find(|p| p.name == name)
    }

    /// Profile names, in definition order.
    pub fn names(&self) -> Vec<&str> {
        self.profiles.iter().map(|p| p.name.as_str()).collect()
    }

    /// Adds the profiles of the file at `path`.
    pub fn add_file(&mut self, path: &Path) -> Result<(), Diagnostics> {
        let text = std::fs::read_to_string(path).map_err(|error| {
            Diagnostics(vec![Diagnostic {
                file: path.to_owned(),
                line: 0,
                column: 0,
                field: String::new(),
                message: format!("cannot read the profile file: {error}"),
                help: None,
            }])
        })?;
        self.add_text(path, &text)
    }

    /// Adds the profiles in `text`, read from `path`.
    pub fn add_text(&mut self, path: &Path, text: &str) -> Result<(), Diagnostics> {
        let root = diag::parse_toml(path, text)?;
        let mut r = Reporter::new(path, text, Some(&root));
        if let Some(file) = diag::deserialize_all::<ProfileFile>(&mut r) {
            for (i, entry) in file.profile.iter().enumerate() {
                self.add_entry(entry, &format!("profile[{i}]"), &mut r);
            }
            for (i, entry) in file.device.iter().enumerate() {
                self.add_device(entry, &format!("device[{i}]"), &mut r);
            }
        }
        r.finish()
    }

    /// Resolves one entry against the profiles defined so far and adds it.
    /// Errors go to `r`; `field` is the entry's path for messages.
    pub(crate) fn add_entry(
        &mut self,
        spanned: &Spanned<ProfileEntry>,
        field: &str,
        r: &mut Reporter<'_>,
    ) {
        let e = spanned.get_ref();
        let at = spanned.span();
        let Some(name_text) = new_name(
            "profile",
            &e.name,
            at.clone(),
            field,
            |n| self.get(n).is_some(),
            r,
        ) else {
            return;
        };
        let Some(parent) = self.profile_parent(e, field, r) else {
            return;
        };
        let base = parent.as_ref();
        let before = r.found.len();
        let keys = Keys { at, field };
        let [
            age,
            weight_kg,
            hr,
            sbp,
            dbp,
            rr,
            spo2,
            temp,
            etco2,
            glucose,
            cardiac_output,
            insulin_sensitivity,
            bp_dip,
            hr_night_drop,
        ] = profile_spreads(e, base, &keys, r);
        let female_pct = keys.number(
            &e.female_pct,
            base.map(|b| b.female_pct),
            "female_pct",
            (0.0, 100.0),
            r,
        );
        let temp_swing_c = keys.number(
            &e.temp_swing_c,
            base.map(|b| b.temp_swing_c),
            "temp_swing_c",
            (0.0, 2.0),
            r,
        );
        let hr_variability = keys.number(
            &e.hr_variability,
            base.map(|b| b.hr_variability),
            "hr_variability",
            (0.0, 20.0),
            r,
        );
        let pvc_per_min = keys.number(
            &e.pvc_per_min,
            // Optional even on a profile that extends none: no ectopy.
            Some(base.map_or(0.0, |b| b.pvc_per_min)),
            "pvc_per_min",
            (0.0, 30.0),
            r,
        );
        let (spo2_scale, metabolism) = profile_scale_and_metabolism(e, base, &keys, r);
        let meals = profile_meals(e, base, &keys, r);
        if r.found.len() > before {
            return;
        }
        self.profiles.push(ProfileSpec {
            name: name_text,
            description: e
                .description
                .clone()
                .or_else(|| base.map(|b| b.description.clone()))
                .unwrap_or_default(),
            source: e
                .source
                .clone()
                .or_else(|| base.map(|b| b.source.clone()))
                .unwrap_or_default(),
            age,
            female_pct,
            weight_kg,
            hr,
            sbp,
            dbp,
            rr,
            spo2,
            temp,
            etco2,
            glucose,
            cardiac_output,
            spo2_scale,
            metabolism,
            insulin_sensitivity,
            bp_dip,
            hr_night_drop,
            temp_swing_c,
            hr_variability,
            pvc_per_min,
            meals,
        });
    }

    /// The profile an entry `extends`: `Some(None)` when it extends none,
    /// `None` (reported) when it names an unknown one.
    fn profile_parent(
        &self,
        e: &ProfileEntry,
        field: &str,
        r: &mut Reporter<'_>,
    ) -> Option<Option<ProfileSpec>> {
        let f = |name: &str| format!("{field}.{name}");
        Some(match &e.extends {
            None => None,
            Some(p) => match self.get(p.get_ref()) {
                Some(parent) => Some(parent.clone()),
                None => {
                    let names = self.names();
                    r.error(
                        p.span(),
                        Some(f("extends")),
                        format!("unknown profile `{}`", p.get_ref()),
                        Some(match suggest(p.get_ref(), &names) {
                            Some(best) => format!("did you mean `{best}`?"),
                            None => format!(
                                "a profile can extend one defined before it: {}",
                                diag::quoted_list(&names)
                            ),
                        }),
                    );
                    return None;
                }
            },
        })
    }
}

/// Where an entry's keys are, for messages.
struct Keys<'a> {
    at: std::ops::Range<usize>,
    field: &'a str,
}

impl Keys<'_> {
    fn key(&self, name: &str) -> String {
        format!("{}.{name}", self.field)
    }

    /// A spread from the entry, else the inherited one, else reported missing.
    fn spread(
        &self,
        value: &Option<Spanned<SpreadSpec>>,
        inherited: Option<Spread>,
        key: &str,
        r: &mut Reporter<'_>,
    ) -> Spread {
        match value {
            Some(v) => {
                let s = match *v.get_ref() {
                    SpreadSpec::Fixed(x) => Spread::fixed(x),
                    SpreadSpec::Normal { mean, sd, min, max } => Spread { mean, sd, min, max },
                };
                if !s.is_valid() {
                    r.error(
                        v.span(),
                        Some(self.key(key)),
                        format!("`{key}` is not a valid spread"),
                        Some("need finite numbers with min ≤ mean ≤ max and sd ≥ 0".into()),
                    );
                }
                s
            }
            None => inherited.unwrap_or_else(|| {
                r.missing(self.at.clone(), self.key(key));
                Spread::fixed(0.0)
            }),
        }
    }

    /// A number from the entry in `range`, else the inherited one, else
    /// reported missing.
    fn number(
        &self,
        value: &Option<Spanned<f64>>,
        inherited: Option<f64>,
        key: &str,
        range: (f64, f64),
        r: &mut Reporter<'_>,
    ) -> f64 {
        match value {
            Some(v) => {
                let x = *v.get_ref();
                if !(range.0..=range.1).contains(&x) {
                    r.error(
                        v.span(),
                        Some(self.key(key)),
                        format!("{key} = {x} is out of range"),
                        Some(format!("expected {} to {}", range.0, range.1)),
                    );
                }
                x
            }
            None => inherited.unwrap_or_else(|| {
                r.missing(self.at.clone(), self.key(key));
                0.0
            }),
        }
    }
}

/// A spread key: its value in the entry, where to inherit it from, its name.
type SpreadField<'e> = (
    &'e Option<Spanned<SpreadSpec>>,
    fn(&ProfileSpec) -> Spread,
    &'static str,
);

/// The profile's spreads, in [`ProfileSpec`] order: age, weight, HR, SBP,
/// DBP, RR, SpO2, temperature, EtCO2, glucose, cardiac output, insulin
/// sensitivity, BP dip, HR night drop.
fn profile_spreads(
    e: &ProfileEntry,
    base: Option<&ProfileSpec>,
    keys: &Keys<'_>,
    r: &mut Reporter<'_>,
) -> [Spread; 14] {
    let fields: [SpreadField<'_>; 14] = [
        (&e.age, |b| b.age, "age"),
        (&e.weight_kg, |b| b.weight_kg, "weight_kg"),
        (&e.hr, |b| b.hr, "hr"),
        (&e.sbp, |b| b.sbp, "sbp"),
        (&e.dbp, |b| b.dbp, "dbp"),
        (&e.rr, |b| b.rr, "rr"),
        (&e.spo2, |b| b.spo2, "spo2"),
        (&e.temp, |b| b.temp, "temp"),
        (&e.etco2, |b| b.etco2, "etco2"),
        (&e.glucose, |b| b.glucose, "glucose"),
        (&e.cardiac_output, |b| b.cardiac_output, "cardiac_output"),
        (
            &e.insulin_sensitivity,
            |b| b.insulin_sensitivity,
            "insulin_sensitivity",
        ),
        (&e.bp_dip, |b| b.bp_dip, "bp_dip"),
        (&e.hr_night_drop, |b| b.hr_night_drop, "hr_night_drop"),
    ];
    fields.map(|(value, inherited, key)| keys.spread(value, base.map(inherited), key, r))
}

/// The NEWS2 SpO2 scale and the metabolism.
fn profile_scale_and_metabolism(
    e: &ProfileEntry,
    base: Option<&ProfileSpec>,
    keys: &Keys<'_>,
    r: &mut Reporter<'_>,
) -> (u8, Metabolism) {
    let at = keys.at.clone();
    let f = |name: &str| keys.key(name);
    let spo2_scale = match &e.spo2_scale {
        Some(s) if !matches!(*s.get_ref(), 1 | 2) => {
            r.error(
                s.span(),
                Some(f("spo2_scale")),
                format!("spo2_scale = {} is not a NEWS2 SpO2 scale", s.get_ref()),
                Some("1, or 2 for a prescribed 88-92 % target".into()),
            );
            1
        }
        Some(s) => *s.get_ref(),
        None => base.map_or_else(
            || {
                r.missing(at.clone(), f("spo2_scale"));
                1
            },
            |b| b.spo2_scale,
        ),
    };
    let metabolism = match e.metabolism {
        Some(MetabolismName::NonDiabetic) => Metabolism::NonDiabetic,
        Some(MetabolismName::Type1) => Metabolism::Type1,
        None => base.map_or_else(
            || {
                r.missing(at.clone(), f("metabolism"));
                Metabolism::NonDiabetic
            },
            |b| b.metabolism,
        ),
    };
    (spo2_scale, metabolism)
}

/// The profile's meals: the entry's (each checked), else the inherited ones.
fn profile_meals(
    e: &ProfileEntry,
    base: Option<&ProfileSpec>,
    keys: &Keys<'_>,
    r: &mut Reporter<'_>,
) -> Vec<Meal> {
    let f = |name: &str| keys.key(name);
    match &e.meals {
        None => base.map_or_else(Vec::new, |b| b.meals.clone()),
        Some(list) => {
            let mut meals = Vec::new();
            for (j, m) in list.iter().enumerate() {
                let key = format!("meals[{j}]");
                let (Some(at_text), Some(carbs)) = (&m.get_ref().at, &m.get_ref().carbs_g) else {
                    r.error(
                        m.span(),
                        Some(f(&key)),
                        "a meal needs `at` (\"HH:MM\") and `carbs_g`",
                        None,
                    );
                    continue;
                };
                let Some(minute_of_day) = parse_clock_time(at_text.get_ref()) else {
                    r.error(
                        at_text.span(),
                        Some(f(&format!("{key}.at"))),
                        format!("invalid time of day \"{}\"", at_text.get_ref()),
                        Some("write 24-hour \"HH:MM\", e.g. \"12:30\"".into()),
                    );
                    continue;
                };
                if !(0.0..=300.0).contains(carbs.get_ref()) {
                    r.error(
                        carbs.span(),
                        Some(f(&format!("{key}.carbs_g"))),
                        format!("carbs_g = {} is out of range", carbs.get_ref()),
                        Some("expected 0 to 300 g".into()),
                    );
                    continue;
                }
                meals.push(Meal {
                    minute_of_day,
                    carbs_g: *carbs.get_ref(),
                });
            }
            meals
        }
    }
}

/// `"HH:MM"` → minutes after midnight.
pub fn parse_clock_time(text: &str) -> Option<u32> {
    let (h, m) = text.trim().split_once(':')?;
    if h.len() > 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

/// Resolves `path` as written in a scenario at `scenario`: relative to the
/// scenario's folder.
pub fn relative_to(scenario: &Path, path: &str) -> PathBuf {
    let p = Path::new(path);
    if p.is_absolute() {
        return p.to_owned();
    }
    scenario.parent().unwrap_or(Path::new(".")).join(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalogue_parses_and_has_every_issue_profile() {
        let c = Catalogue::builtin().unwrap();
        for name in [
            "healthy_adult",
            "older_adult",
            "post_operative",
            "copd",
            "type1_diabetes",
            "heart_failure",
            "hypertensive",
        ] {
            assert!(c.get(name).is_some(), "{name}");
        }
        let copd = c.get("copd").unwrap();
        assert_eq!(copd.spo2_scale, 2);
        assert!(copd.spo2.min >= 88.0 && copd.spo2.max <= 92.5);
        // Inherited from older_adult through extends.
        assert_eq!(copd.age, c.get("older_adult").unwrap().age);
        assert_eq!(
            c.get("type1_diabetes").unwrap().metabolism,
            Metabolism::Type1
        );
    }

    #[test]
    fn sim_default_matches_the_catalogue_entry() {
        let c = Catalogue::builtin().unwrap();
        assert_eq!(c.get("healthy_adult"), Some(&ProfileSpec::healthy_adult()));
    }

    #[test]
    fn bad_entries_are_reported_with_position() {
        let mut c = Catalogue::builtin().unwrap();
        let text = "[[profile]]\nname = \"x\"\nextends = \"healthy_adlt\"\n\n[[profile]]\nname = \"y\"\nextends = \"healthy_adult\"\nhr = { mean = 90, sd = 5, min = 95, max = 120 }\nmeals = [{ at = \"25:00\", carbs_g = 10 }]\n";
        let err = c.add_text(Path::new("mine.toml"), text).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("mine.toml:3:11"), "{text}");
        assert!(text.contains("did you mean `healthy_adult`?"), "{text}");
        assert!(text.contains("profile[1].hr"), "{text}");
        assert!(text.contains("profile[1].meals[0].at"), "{text}");
    }

    #[test]
    fn clock_times() {
        assert_eq!(parse_clock_time("08:00"), Some(480));
        assert_eq!(parse_clock_time("23:59"), Some(1439));
        assert_eq!(parse_clock_time("24:00"), None);
        assert_eq!(parse_clock_time("8"), None);
    }
}
