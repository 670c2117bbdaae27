//! ER7, HL7 v2's pipe-and-hat text: segments ended by a carriage return,
//! fields, repetitions, components and subcomponents split by the
//! delimiters MSH-1 and MSH-2 declare, escape sequences both ways
//! (refs: HL7, "ER7 encoding rules").

use std::borrow::Cow;
use std::fmt::Write as _;

use crate::error::{ParseError, clip};

/// Largest message [`Message::parse`] reads, in bytes: far above any
/// PCD-01 or PCD-04 message medtwin or a monitor sends (a few KiB), low
/// enough that a hostile peer cannot make a reader allocate much.
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;
/// Most segments a message may have.
pub const MAX_SEGMENTS: usize = 10_000;

/// The five delimiters of a message, from MSH-1 (field) and MSH-2
/// (component, repetition, escape, subcomponent).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delimiters {
    /// Field separator (MSH-1), `|`.
    pub field: char,
    /// Component separator, `^`.
    pub component: char,
    /// Repetition separator, `~`.
    pub repetition: char,
    /// Escape character, `\`.
    pub escape: char,
    /// Subcomponent separator, `&`.
    pub subcomponent: char,
}

impl Default for Delimiters {
    /// The recommended delimiters `|^~\&`, which medtwin always writes.
    fn default() -> Self {
        Delimiters {
            field: '|',
            component: '^',
            repetition: '~',
            escape: '\\',
            subcomponent: '&',
        }
    }
}

impl Delimiters {
    /// MSH-2 as written: component, repetition, escape, subcomponent.
    pub fn encoding_characters(&self) -> String {
        [
            self.component,
            self.repetition,
            self.escape,
            self.subcomponent,
        ]
        .iter()
        .collect()
    }
}

/// One field: its repetitions, each a list of components, each a list of
/// subcomponents, all unescaped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Field {
    reps: Vec<Vec<Vec<String>>>,
}

impl Field {
    /// A field of one plain value.
    pub fn value(text: impl Into<String>) -> Self {
        Field {
            reps: vec![vec![vec![text.into()]]],
        }
    }

    /// Number of repetitions (1 for an empty field).
    pub fn repetitions(&self) -> usize {
        self.reps.len()
    }

    /// Subcomponent `sub` of component `comp` of repetition `rep`, all
    /// 1-based; `None` when absent or empty.
    pub fn get(&self, rep: usize, comp: usize, sub: usize) -> Option<&str> {
        let text = self
            .reps
            .get(rep.checked_sub(1)?)?
            .get(comp.checked_sub(1)?)?
            .get(sub.checked_sub(1)?)?;
        (!text.is_empty()).then_some(text.as_str())
    }

    /// Component `comp` (1-based) of the first repetition.
    pub fn component(&self, comp: usize) -> Option<&str> {
        self.get(1, comp, 1)
    }

    /// True when every part is empty.
    pub fn is_empty(&self) -> bool {
        self.reps.iter().flatten().flatten().all(String::is_empty)
    }

    fn parse(text: &str, d: &Delimiters) -> Field {
        let reps = text
            .split(d.repetition)
            .map(|rep| {
                rep.split(d.component)
                    .map(|comp| {
                        comp.split(d.subcomponent)
                            .map(|sub| unescape(sub, d).into_owned())
                            .collect()
                    })
                    .collect()
            })
            .collect();
        Field { reps }
    }

    fn encode_into(&self, out: &mut String, d: &Delimiters) {
        for (r, rep) in self.reps.iter().enumerate() {
            if r > 0 {
                out.push(d.repetition);
            }
            for (c, comp) in rep.iter().enumerate() {
                if c > 0 {
                    out.push(d.component);
                }
                for (s, sub) in comp.iter().enumerate() {
                    if s > 0 {
                        out.push(d.subcomponent);
                    }
                    escape_into(out, sub, d);
                }
            }
        }
    }
}

/// One segment: a three-character name and its fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    name: String,
    /// `fields[i]` is field `i + 1`; for MSH, field 1 is the field
    /// separator and field 2 the encoding characters, as the standard
    /// numbers them.
    fields: Vec<Field>,
}

impl Segment {
    /// The segment's name (`MSH`, `PID`, `OBX`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Field `n` (1-based), if present.
    pub fn field(&self, n: usize) -> Option<&Field> {
        self.fields.get(n.checked_sub(1)?)
    }

    /// Number of fields present (trailing empty ones included).
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// True when the segment has no fields.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Component `comp` of the first repetition of field `n`; `None` when
    /// absent or empty.
    pub fn get(&self, n: usize, comp: usize) -> Option<&str> {
        self.field(n)?.component(comp)
    }
}

/// A parsed HL7 v2 message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    delimiters: Delimiters,
    segments: Vec<Segment>,
}

impl Message {
    /// Parses ER7 text of at most [`MAX_MESSAGE_BYTES`].
    pub fn parse(text: &str) -> Result<Message, ParseError> {
        Self::parse_capped(text.as_bytes(), MAX_MESSAGE_BYTES)
    }

    /// Parses ER7 bytes (UTF-8) of at most [`MAX_MESSAGE_BYTES`].
    pub fn parse_bytes(bytes: &[u8]) -> Result<Message, ParseError> {
        Self::parse_capped(bytes, MAX_MESSAGE_BYTES)
    }

    /// Parses ER7 bytes of at most `max_bytes`. Segments end with `\r`
    /// (the standard); a `\n` or `\r\n` is taken as the same, since files
    /// and some senders use it.
    pub fn parse_capped(bytes: &[u8], max_bytes: usize) -> Result<Message, ParseError> {
        if bytes.len() > max_bytes {
            return Err(ParseError::TooLarge {
                len: bytes.len(),
                max: max_bytes,
            });
        }
        let text = std::str::from_utf8(bytes).map_err(|e| ParseError::NotUtf8 {
            at: e.valid_up_to(),
        })?;
        let mut lines = text
            .split(['\r', '\n'])
            .map(|l| l.trim_start_matches('\u{feff}'))
            .filter(|l| !l.trim().is_empty());
        let first = lines.next().ok_or(ParseError::Empty)?;
        let delimiters = delimiters_of(first)?;
        let mut segments = vec![parse_msh(first, &delimiters)];
        for (i, line) in lines.enumerate() {
            if segments.len() >= MAX_SEGMENTS {
                return Err(ParseError::TooManySegments { max: MAX_SEGMENTS });
            }
            segments.push(parse_segment(line, i + 2, &delimiters)?);
        }
        Ok(Message {
            delimiters,
            segments,
        })
    }

    /// The delimiters the message declared.
    pub fn delimiters(&self) -> Delimiters {
        self.delimiters
    }

    /// Every segment, in order (MSH first).
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The `nth` (1-based) segment named `name`.
    pub fn segment(&self, name: &str, nth: usize) -> Option<&Segment> {
        let nth = nth.checked_sub(1)?;
        self.segments.iter().filter(|s| s.name == name).nth(nth)
    }

    /// The segments named `name`, in order.
    pub fn segments_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Segment> + 'a {
        self.segments.iter().filter(move |s| s.name == name)
    }

    /// The value at `path`, unescaped; `None` when absent or empty.
    ///
    /// A path is `SEG[n]-field(rep)-component-subcomponent`, all numbers
    /// 1-based and all but the field optional: `PID-3-1`, `OBX[2]-5`,
    /// `MSH-9-2`, `PID-3(2)-4-2`; `.` may stand for `-` (`PID.3.1`). An
    /// omitted component or subcomponent is the first, as HAPI's terser
    /// reads it. `MSH-1` is the field separator and `MSH-2` the encoding
    /// characters.
    pub fn get(&self, path: &str) -> Option<&str> {
        let p = Path::parse(path)?;
        let seg = self.segment(p.segment, p.segment_rep)?;
        if seg.name == "MSH" && p.field <= 2 {
            // MSH-1 and MSH-2 are delimiters, never split.
            return seg.field(p.field)?.get(1, 1, 1);
        }
        seg.field(p.field)?.get(p.rep, p.component, p.subcomponent)
    }

    /// MSH-9 as `(message code, trigger event, structure)`, e.g.
    /// `("ORU", "R01", "ORU_R01")`; absent parts are empty.
    pub fn message_type(&self) -> (&str, &str, &str) {
        (
            self.get("MSH-9-1").unwrap_or(""),
            self.get("MSH-9-2").unwrap_or(""),
            self.get("MSH-9-3").unwrap_or(""),
        )
    }

    /// MSH-10, the message control id.
    pub fn control_id(&self) -> Option<&str> {
        self.get("MSH-10")
    }

    /// The message as ER7, each segment ended by `\r`.
    pub fn encode(&self) -> String {
        let d = &self.delimiters;
        let mut out = String::new();
        for seg in &self.segments {
            out.push_str(&seg.name);
            if seg.name == "MSH" {
                out.push(d.field);
                out.push_str(&d.encoding_characters());
                for f in seg.fields.iter().skip(2) {
                    out.push(d.field);
                    f.encode_into(&mut out, d);
                }
            } else {
                for f in &seg.fields {
                    out.push(d.field);
                    f.encode_into(&mut out, d);
                }
            }
            out.push('\r');
        }
        out
    }
}

/// A parsed path (see [`Message::get`]).
struct Path<'a> {
    segment: &'a str,
    segment_rep: usize,
    field: usize,
    rep: usize,
    component: usize,
    subcomponent: usize,
}

impl<'a> Path<'a> {
    fn parse(path: &'a str) -> Option<Path<'a>> {
        let path = path.trim();
        let segment = path.get(..3)?;
        let mut rest = &path[3..];
        let mut segment_rep = 1;
        if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            segment_rep = r[..end].parse().ok().filter(|n| *n >= 1)?;
            rest = &r[end + 1..];
        }
        let mut parts = rest.strip_prefix(['-', '.'])?.split(['-', '.']);
        let field_part = parts.next()?;
        let (field, rep) = match field_part.split_once('(') {
            Some((f, r)) => (f, r.strip_suffix(')')?.parse().ok()?),
            None => (field_part, 1),
        };
        let number = |s: Option<&str>| -> Option<usize> {
            match s {
                None => Some(1),
                Some(s) => s.parse().ok().filter(|n| *n >= 1),
            }
        };
        let field = number(Some(field))?;
        let component = number(parts.next())?;
        let subcomponent = number(parts.next())?;
        if parts.next().is_some() || rep == 0 {
            return None;
        }
        Some(Path {
            segment,
            segment_rep,
            field,
            rep,
            component,
            subcomponent,
        })
    }
}

fn delimiters_of(first: &str) -> Result<Delimiters, ParseError> {
    let Some(rest) = first.strip_prefix("MSH") else {
        return Err(ParseError::NoMsh {
            found: clip(first, 16),
        });
    };
    let mut chars = rest.chars();
    let bad = |why| ParseError::BadDelimiters {
        found: clip(rest, 8),
        why,
    };
    let field = chars.next().ok_or_else(|| bad("no field separator"))?;
    let enc: Vec<char> = chars.take_while(|c| *c != field).collect();
    if enc.len() < 4 {
        return Err(bad("fewer than four encoding characters"));
    }
    let d = Delimiters {
        field,
        component: enc[0],
        repetition: enc[1],
        escape: enc[2],
        subcomponent: enc[3],
    };
    let all = [d.field, d.component, d.repetition, d.escape, d.subcomponent];
    if all.iter().any(|c| c.is_alphanumeric() || c.is_whitespace()) {
        return Err(bad("a delimiter is a letter, digit or space"));
    }
    for (i, a) in all.iter().enumerate() {
        if all[i + 1..].contains(a) {
            return Err(bad("two delimiters are the same character"));
        }
    }
    Ok(d)
}

fn parse_msh(line: &str, d: &Delimiters) -> Segment {
    // "MSH" + field separator + encoding characters (+ the optional
    // truncation character of v2.7, kept as part of MSH-2) + fields 3...
    let after = &line[3 + d.field.len_utf8()..];
    let (enc, rest) = match after.split_once(d.field) {
        Some((enc, rest)) => (enc, Some(rest)),
        None => (after, None),
    };
    let mut fields = vec![Field::value(d.field), Field::value(enc)];
    if let Some(rest) = rest {
        fields.extend(rest.split(d.field).map(|f| Field::parse(f, d)));
    }
    Segment {
        name: "MSH".into(),
        fields,
    }
}

fn parse_segment(line: &str, index: usize, d: &Delimiters) -> Result<Segment, ParseError> {
    let (name, rest) = match line.split_once(d.field) {
        Some((name, rest)) => (name, Some(rest)),
        None => (line, None),
    };
    let valid = name.len() == 3
        && name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    if !valid {
        return Err(ParseError::BadSegmentName {
            index,
            name: clip(name, 16),
        });
    }
    let fields = rest
        .map(|rest| rest.split(d.field).map(|f| Field::parse(f, d)).collect())
        .unwrap_or_default();
    Ok(Segment {
        name: name.to_owned(),
        fields,
    })
}

/// Replaces escape sequences (`\F\ \S\ \T\ \R\ \E\`, `\Xhh..\` as UTF-8
/// bytes, `\.br\` as a line break) by what they stand for. Sequences it
/// does not know (highlighting `\H\`, character sets) and an unterminated
/// escape are kept as written.
pub fn unescape<'a>(text: &'a str, d: &Delimiters) -> Cow<'a, str> {
    if !text.contains(d.escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(d.escape) {
        out.push_str(&rest[..start]);
        let after = &rest[start + d.escape.len_utf8()..];
        let Some(end) = after.find(d.escape) else {
            out.push_str(&rest[start..]);
            return Cow::Owned(out);
        };
        let seq = &after[..end];
        let known = match seq {
            "F" => Some(Cow::Owned(d.field.to_string())),
            "S" => Some(Cow::Owned(d.component.to_string())),
            "T" => Some(Cow::Owned(d.subcomponent.to_string())),
            "R" => Some(Cow::Owned(d.repetition.to_string())),
            "E" => Some(Cow::Owned(d.escape.to_string())),
            ".br" => Some(Cow::Borrowed("\n")),
            _ => seq.strip_prefix('X').and_then(hex_text).map(Cow::Owned),
        };
        match known {
            Some(s) => out.push_str(&s),
            None => {
                out.push(d.escape);
                out.push_str(seq);
                out.push(d.escape);
            }
        }
        rest = &after[end + d.escape.len_utf8()..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

fn hex_text(hex: &str) -> Option<String> {
    if hex.is_empty() || !hex.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

/// Appends `text` to `out` with the delimiters, the escape character and
/// line breaks escaped (`\F\ \S\ \T\ \R\ \E\`, `\X0D\`, `\X0A\`), so it
/// reads back as one value.
pub fn escape_into(out: &mut String, text: &str, d: &Delimiters) {
    for c in text.chars() {
        let seq = match c {
            c if c == d.field => "F",
            c if c == d.component => "S",
            c if c == d.subcomponent => "T",
            c if c == d.repetition => "R",
            c if c == d.escape => "E",
            '\r' => "X0D",
            '\n' => "X0A",
            c => {
                out.push(c);
                continue;
            }
        };
        out.push(d.escape);
        out.push_str(seq);
        out.push(d.escape);
    }
}

/// MSH-10 of raw ER7 bytes, without parsing the rest: what an MLLP peer
/// needs to match an ACK, or to answer a message it cannot parse.
pub fn control_id(raw: &[u8]) -> Option<String> {
    let start = raw.windows(3).position(|w| w == b"MSH")?;
    let line = raw[start..].split(|b| *b == b'\r' || *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let sep = line[3..].chars().next()?;
    // Split index i is MSH-(i+1): [0] "MSH", [1] MSH-2, ..., [9] MSH-10.
    let id = line.split(sep).nth(9)?.trim();
    (!id.is_empty()).then(|| id.to_owned())
}

/// Writes ER7 with the default delimiters, escaping every value: the
/// encoders' one way of building a message, so no value can break its
/// structure.
#[derive(Debug)]
pub struct Er7Writer {
    out: String,
    d: Delimiters,
    open: bool,
}

impl Default for Er7Writer {
    fn default() -> Self {
        Self::new()
    }
}

impl Er7Writer {
    /// An empty message with the default delimiters.
    pub fn new() -> Self {
        Er7Writer {
            out: String::with_capacity(1024),
            d: Delimiters::default(),
            open: false,
        }
    }

    /// Starts the MSH segment: `MSH|^~\&`; the next field written is MSH-3.
    pub fn msh(&mut self) -> &mut Self {
        self.segment("MSH");
        self.out.push(self.d.field);
        let enc = self.d.encoding_characters();
        self.out.push_str(&enc);
        self
    }

    /// Ends the open segment (if any) and starts segment `name`.
    pub fn segment(&mut self, name: &str) -> &mut Self {
        if self.open {
            self.out.push('\r');
        }
        self.out.push_str(name);
        self.open = true;
        self
    }

    /// Appends one field of a single (escaped) value.
    pub fn field(&mut self, value: &str) -> &mut Self {
        self.out.push(self.d.field);
        escape_into(&mut self.out, value, &self.d);
        self
    }

    /// Appends one field of a number, written as Rust's shortest text that
    /// reads back as the same `f64` (never in exponent form, so a valid
    /// HL7 NM).
    pub fn number(&mut self, value: f64) -> &mut Self {
        self.out.push(self.d.field);
        let _ = write!(self.out, "{value}");
        self
    }

    /// Appends `n` empty fields.
    pub fn empty(&mut self, n: usize) -> &mut Self {
        for _ in 0..n {
            self.out.push(self.d.field);
        }
        self
    }

    /// Appends one field of components (escaped), trailing empty ones
    /// left out.
    pub fn comps(&mut self, comps: &[&str]) -> &mut Self {
        self.out.push(self.d.field);
        self.push_comps(comps);
        self
    }

    /// Appends one field of repetitions, each a list of components.
    pub fn reps(&mut self, reps: &[&[&str]]) -> &mut Self {
        self.out.push(self.d.field);
        for (i, comps) in reps.iter().enumerate() {
            if i > 0 {
                self.out.push(self.d.repetition);
            }
            self.push_comps(comps);
        }
        self
    }

    fn push_comps(&mut self, comps: &[&str]) {
        let used = comps
            .iter()
            .rposition(|c| !c.is_empty())
            .map_or(0, |i| i + 1);
        for (i, c) in comps[..used].iter().enumerate() {
            if i > 0 {
                self.out.push(self.d.component);
            }
            escape_into(&mut self.out, c, &self.d);
        }
    }

    /// The message, its last segment ended by `\r`.
    pub fn finish(mut self) -> String {
        if self.open {
            self.out.push('\r');
        }
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "MSH|^~\\&|APP^0011223344556677^EUI-64|FAC|||20260101080001.000+0000||ORU^R01^ORU_R01|C1|P|2.6|||AL|NE\rPID|||ward-003^^^MEDTWIN^PI~X9^^^OTHER^MR||Doe^J\\S\\K&sub\rOBX|1|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.1.1.1|97\rOBX|2|ST|x|1.0.0.1|a\\F\\b\\E\\c\\X0D\\d\\T\\\r";

    #[test]
    fn paths_read_fields_repetitions_components_and_subcomponents() {
        let m = Message::parse(SAMPLE).unwrap();
        assert_eq!(m.get("MSH-1"), Some("|"));
        assert_eq!(m.get("MSH-2"), Some("^~\\&"));
        assert_eq!(m.get("MSH-3"), Some("APP"));
        assert_eq!(m.get("MSH-3-2"), Some("0011223344556677"));
        assert_eq!(m.get("MSH-9-2"), Some("R01"));
        assert_eq!(m.get("MSH.9.3"), Some("ORU_R01"));
        assert_eq!(m.get("MSH-10"), Some("C1"));
        assert_eq!(m.get("PID-3-1"), Some("ward-003"));
        assert_eq!(m.get("PID-3(2)-1"), Some("X9"));
        assert_eq!(m.get("PID-3(2)-4"), Some("OTHER"));
        assert_eq!(m.get("PID-5-2"), Some("J^K"));
        assert_eq!(m.get("PID-5-2-2"), Some("sub"));
        assert_eq!(m.get("OBX-5"), Some("97"));
        assert_eq!(m.get("OBX[2]-5"), Some("a|b\\c\rd&"));
        assert_eq!(m.get("OBX[3]-5"), None);
        assert_eq!(m.get("PID-4"), None);
        assert_eq!(m.get("PID-99"), None);
        for bad in ["", "PI", "PID", "PID-0", "PID-x", "OBX[0]-5", "PID-3-1-1-1"] {
            assert_eq!(m.get(bad), None, "{bad}");
        }
        assert_eq!(m.message_type(), ("ORU", "R01", "ORU_R01"));
        assert_eq!(control_id(SAMPLE.as_bytes()).as_deref(), Some("C1"));
    }

    #[test]
    fn escapes_round_trip_through_writer_and_parser() {
        let d = Delimiters::default();
        let nasty = "a|b^c~d\\e&f\rg\nh ü";
        let mut w = Er7Writer::new();
        w.msh()
            .field("APP")
            .empty(5)
            .comps(&["ORU", "R01"])
            .field("id");
        w.segment("OBX")
            .field(nasty)
            .comps(&[nasty, "", nasty, "", ""]);
        let text = w.finish();
        assert!(!text.contains("\n"), "{text:?}");
        assert_eq!(text.matches('\r').count(), 2);
        let m = Message::parse(&text).unwrap();
        assert_eq!(m.get("OBX-1"), Some(nasty));
        assert_eq!(m.get("OBX-2-3"), Some(nasty));
        assert_eq!(m.get("MSH-10"), Some("id"));
        assert_eq!(m.encode(), text, "parse then encode gives the same bytes");
        assert_eq!(unescape("\\H\\bold\\N\\", &d), "\\H\\bold\\N\\");
        assert_eq!(unescape("open \\F", &d), "open \\F");
        assert_eq!(unescape("\\XC3BC\\", &d), "ü");
        assert_eq!(unescape("\\XZZ\\", &d), "\\XZZ\\");
    }

    #[test]
    fn other_delimiters_are_honoured() {
        let text = "MSH#*!%@#A*B#\rPID###p1*x*y*AUTH@s";
        let m = Message::parse(text).unwrap();
        assert_eq!(m.get("MSH-3-2"), Some("B"));
        assert_eq!(m.get("PID-3-4"), Some("AUTH"));
        assert_eq!(m.get("PID-3-4-2"), Some("s"));
        assert_eq!(m.encode(), format!("{text}\r"));
    }

    #[test]
    fn bad_input_is_refused_with_a_reason() {
        assert_eq!(Message::parse(""), Err(ParseError::Empty));
        assert!(matches!(
            Message::parse("PID|1"),
            Err(ParseError::NoMsh { .. })
        ));
        assert!(matches!(
            Message::parse("MSH|^^\\&|"),
            Err(ParseError::BadDelimiters { .. })
        ));
        assert!(matches!(
            Message::parse("MSH|^~\\&|\rpid|1"),
            Err(ParseError::BadSegmentName { index: 2, .. })
        ));
        let big = format!("MSH|^~\\&|{}", "x".repeat(MAX_MESSAGE_BYTES));
        assert!(matches!(
            Message::parse(&big),
            Err(ParseError::TooLarge { .. })
        ));
        assert!(matches!(
            Message::parse_bytes(b"MSH|^~\\&|\xff"),
            Err(ParseError::NotUtf8 { at: 9 })
        ));
        let many = format!("MSH|^~\\&|{}", "\rNTE|1".repeat(MAX_SEGMENTS));
        assert!(matches!(
            Message::parse(&many),
            Err(ParseError::TooManySegments { .. })
        ));
    }

    #[test]
    fn newlines_are_read_as_segment_ends() {
        let m = Message::parse("MSH|^~\\&|A\r\nPID|||p\n\nPV1||I\n").unwrap();
        assert_eq!(m.segments().len(), 3);
        assert_eq!(m.get("PV1-2"), Some("I"));
    }
}
