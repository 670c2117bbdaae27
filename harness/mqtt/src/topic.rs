//! Topic templates and filters.
//!
//! A template is a topic with placeholders `{patient}`, `{device}` and
//! `{kind}`: `medtwin/{patient}/{device}/{kind}`. Rendering replaces each
//! placeholder with the *sanitised* name: every `/`, `+`, `#`, `$`, NUL and
//! other control character becomes `_`, and an empty name becomes `_`, so a
//! name is always exactly one topic level's worth of text and can neither
//! add levels nor become a wildcard (MQTT 3.1.1 §4.7.1, MQTT 5 §4.7.1: `/`
//! separates levels, `+` and `#` are wildcards; §4.7.2: topics starting with
//! `$` are the broker's). The filter that matches every rendering replaces
//! each level holding a placeholder with `+`.

use crate::error::TemplateError;

/// The names a topic is rendered with.
#[derive(Clone, Copy, Debug)]
pub struct TopicNames<'a> {
    /// The patient's name or id.
    pub patient: &'a str,
    /// The device's name or id.
    pub device: &'a str,
    /// The message kind (`vitals`, `status`, `alert`, ...).
    pub kind: &'a str,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Text(String),
    Patient,
    Device,
    Kind,
}

/// A parsed topic template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicTemplate {
    text: String,
    parts: Vec<Part>,
}

/// MQTT 3.1.1 §1.5.3 / MQTT 5 §1.5.4: a UTF-8 string is at most 65,535 bytes.
pub const MAX_TOPIC_BYTES: usize = 65_535;

impl TopicTemplate {
    /// Parses and validates `text`.
    pub fn parse(text: &str) -> Result<TopicTemplate, TemplateError> {
        let invalid = |why| TemplateError::Invalid {
            template: text.to_owned(),
            why,
        };
        if text.is_empty() {
            return Err(invalid("empty"));
        }
        if text.len() > MAX_TOPIC_BYTES {
            return Err(invalid("longer than 65535 bytes"));
        }
        if text.starts_with('$') {
            return Err(invalid("topics starting with '$' belong to the broker"));
        }
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = text.char_indices();
        while let Some((at, c)) = rest.next() {
            match c {
                '{' => {
                    let mut name = String::new();
                    let mut closed = false;
                    for (_, c) in rest.by_ref() {
                        if c == '}' {
                            closed = true;
                            break;
                        }
                        name.push(c);
                    }
                    if !closed || name.contains('{') {
                        return Err(TemplateError::Unbalanced {
                            template: text.to_owned(),
                            at,
                        });
                    }
                    let part = match name.as_str() {
                        "patient" => Part::Patient,
                        "device" => Part::Device,
                        "kind" => Part::Kind,
                        _ => {
                            return Err(TemplateError::UnknownPlaceholder {
                                template: text.to_owned(),
                                name,
                            });
                        }
                    };
                    if !literal.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut literal)));
                    }
                    parts.push(part);
                }
                '}' => {
                    return Err(TemplateError::Unbalanced {
                        template: text.to_owned(),
                        at,
                    });
                }
                '+' | '#' => {
                    return Err(invalid("wildcards '+' and '#' are not allowed in a topic"));
                }
                c if c.is_control() => return Err(invalid("control characters are not allowed")),
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        Ok(TopicTemplate {
            text: text.to_owned(),
            parts,
        })
    }

    /// The template as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The topic for these names (each sanitised: see the module docs).
    pub fn render(&self, names: &TopicNames<'_>) -> String {
        let mut out = String::with_capacity(self.text.len() + 32);
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Patient => sanitise_into(names.patient, &mut out),
                Part::Device => sanitise_into(names.device, &mut out),
                Part::Kind => sanitise_into(names.kind, &mut out),
            }
        }
        out
    }

    /// The filter that matches every topic this template renders: each
    /// level that holds a placeholder becomes `+`.
    pub fn filter(&self) -> String {
        self.filter_with(None)
    }

    /// Like [`filter`](Self::filter), but with `{kind}` fixed to `kind`
    /// (sanitised): the filter for one kind of message.
    pub fn filter_for_kind(&self, kind: &str) -> String {
        self.filter_with(Some(kind))
    }

    fn filter_with(&self, kind: Option<&str>) -> String {
        // Render with marker names, then turn every level that holds a
        // marker into '+'. The markers are control characters, which
        // sanitising and parsing both exclude from the literal text.
        const MARK: char = '\u{1}';
        let mark = MARK.to_string();
        let mut rendered = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => rendered.push_str(text),
                Part::Kind if kind.is_some() => {
                    sanitise_into(kind.unwrap_or_default(), &mut rendered);
                }
                Part::Patient | Part::Device | Part::Kind => rendered.push_str(&mark),
            }
        }
        rendered
            .split('/')
            .map(|level| if level.contains(MARK) { "+" } else { level })
            .collect::<Vec<_>>()
            .join("/")
    }
}

/// Appends `name` with `/ + # $` and control characters as `_`; `_` for an
/// empty name.
pub fn sanitise_into(name: &str, out: &mut String) {
    if name.is_empty() {
        out.push('_');
        return;
    }
    for c in name.chars() {
        match c {
            '/' | '+' | '#' | '$' => out.push('_'),
            c if c.is_control() => out.push('_'),
            c => out.push(c),
        }
    }
}

/// `name` sanitised as a topic level.
pub fn sanitise(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    sanitise_into(name, &mut out);
    out
}

/// A topic name a client may publish to (MQTT §4.7.3): not empty, no
/// wildcards, no NUL, at most 65,535 bytes.
pub fn valid_topic(topic: &str) -> bool {
    !topic.is_empty() && topic.len() <= MAX_TOPIC_BYTES && !topic.contains(['+', '#', '\0'])
}

/// A valid topic filter (MQTT §4.7.1): `#` alone and last, `+` a whole
/// level, not empty, no NUL.
pub fn valid_filter(filter: &str) -> bool {
    if filter.is_empty() || filter.len() > MAX_TOPIC_BYTES || filter.contains('\0') {
        return false;
    }
    let levels: Vec<&str> = filter.split('/').collect();
    let last = levels.len() - 1;
    levels.iter().enumerate().all(|(i, level)| {
        (*level == "#" && i == last) || *level == "+" || !level.contains(['+', '#'])
    })
}

/// Does `filter` match `topic`? (MQTT §4.7: `+` one level, `#` this level
/// and every one below, including the parent; §4.7.2: a wildcard in the
/// first level never matches a topic starting with `$`.)
pub fn matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let mut topic_levels = topic.split('/');
    for level in filter.split('/') {
        if level == "#" {
            return true;
        }
        match topic_levels.next() {
            Some(t) if level == "+" || level == t => {}
            _ => return false,
        }
    }
    topic_levels.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names<'a>(patient: &'a str, device: &'a str, kind: &'a str) -> TopicNames<'a> {
        TopicNames {
            patient,
            device,
            kind,
        }
    }

    #[test]
    fn renders_and_filters() {
        let t = TopicTemplate::parse("medtwin/{patient}/{device}/{kind}").unwrap();
        assert_eq!(
            t.render(&names("p-1", "spo2-a", "vitals")),
            "medtwin/p-1/spo2-a/vitals"
        );
        assert_eq!(t.filter(), "medtwin/+/+/+");
        assert_eq!(t.filter_for_kind("status"), "medtwin/+/+/status");
        let t = TopicTemplate::parse("ward/bed-{patient}/x").unwrap();
        assert_eq!(t.filter(), "ward/+/x");
        assert!(matches(&t.filter(), &t.render(&names("a/b", "", ""))));
    }

    #[test]
    fn names_cannot_inject_levels_or_wildcards() {
        let t = TopicTemplate::parse("m/{patient}/{device}/{kind}").unwrap();
        let topic = t.render(&names("a/b+#", "$SYS", ""));
        assert_eq!(topic, "m/a_b__/_SYS/_");
        assert!(valid_topic(&topic));
        assert_eq!(topic.split('/').count(), 4);
        assert!(matches(&t.filter(), &topic));
        assert_eq!(t.render(&names("x\0y", "d\n", "k")), "m/x_y/d_/k");
    }

    #[test]
    fn bad_templates_are_refused_with_their_text() {
        let e = TopicTemplate::parse("m/{patient}/{ward}").unwrap_err();
        assert!(e.to_string().contains("m/{patient}/{ward}"), "{e}");
        assert!(e.to_string().contains("{ward}"), "{e}");
        assert!(matches!(
            TopicTemplate::parse("m/{patient"),
            Err(TemplateError::Unbalanced { at: 2, .. })
        ));
        assert!(TopicTemplate::parse("m/}").is_err());
        assert!(TopicTemplate::parse("m/+/{device}").is_err());
        assert!(TopicTemplate::parse("m/#").is_err());
        assert!(TopicTemplate::parse("$SYS/{device}").is_err());
        assert!(TopicTemplate::parse("").is_err());
    }

    #[test]
    fn filter_matching_follows_the_standard() {
        // MQTT 3.1.1 §4.7.1.2 and §4.7.1.3 examples.
        assert!(matches("sport/tennis/player1/#", "sport/tennis/player1"));
        assert!(matches(
            "sport/tennis/player1/#",
            "sport/tennis/player1/ranking"
        ));
        assert!(matches("sport/#", "sport"));
        assert!(matches("sport/tennis/+", "sport/tennis/player1"));
        assert!(!matches("sport/tennis/+", "sport/tennis/player1/ranking"));
        assert!(!matches("sport/+", "sport"));
        assert!(matches("sport/+", "sport/"));
        assert!(matches("+/+", "/finance"));
        assert!(matches("/+", "/finance"));
        assert!(!matches("+", "/finance"));
        // §4.7.2.
        assert!(!matches("#", "$SYS/x"));
        assert!(!matches("+/monitor/Clients", "$SYS/monitor/Clients"));
        assert!(matches("$SYS/#", "$SYS/x"));
        assert!(valid_filter("sport/+/#") && valid_filter("#") && valid_filter("+"));
        assert!(!valid_filter("sport/tennis#") && !valid_filter("sport/#/x"));
        assert!(!valid_filter("sport+") && !valid_filter(""));
        assert!(!valid_topic("a/+") && !valid_topic("") && valid_topic("a//b"));
    }
}
