//! Positioned errors for scenario files, and the loop that finds *all* of
//! them although serde stops at the first: deserialize, record the error,
//! prune the offending key from the parsed tree, and try again.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// One problem in a scenario file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// Dotted path of the field, e.g. `cohort[0].devices[1].every`.
    pub field: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it, when we can tell (e.g. the nearest valid name).
    pub help: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: error",
            self.file.display(),
            self.line,
            self.column
        )?;
        if !self.field.is_empty() {
            write!(f, " in `{}`", self.field)?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

/// All problems found in one file, in file order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// Turns byte spans into positioned diagnostics for one file.
pub struct Reporter<'a> {
    file: &'a Path,
    text: &'a str,
    /// The parsed tree as written, for naming fields by position.
    root: Option<&'a Spanned<DeTable<'a>>>,
    /// What has been found so far.
    pub found: Vec<Diagnostic>,
    /// Fields removed because they were invalid: their absence is not news.
    pruned: Vec<String>,
}

impl<'a> Reporter<'a> {
    /// A reporter for `text`, read from `file`.
    pub fn new(
        file: &'a Path,
        text: &'a str,
        root: Option<&'a Spanned<DeTable<'a>>>,
    ) -> Reporter<'a> {
        Reporter {
            file,
            text,
            root,
            found: Vec::new(),
            pruned: Vec::new(),
        }
    }

    /// The file being checked.
    pub fn path(&self) -> &'a Path {
        self.file
    }

    /// The text being checked.
    pub fn source(&self) -> &'a str {
        self.text
    }

    /// 1-based line and column of byte `offset`.
    fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        (line, before[line_start..].chars().count() + 1)
    }

    /// Records a problem at `span`. The field path is worked out from the
    /// tree unless `field` names it.
    pub fn error(
        &mut self,
        span: Range<usize>,
        field: Option<String>,
        message: impl Into<String>,
        help: Option<String>,
    ) {
        let (line, column) = self.position(span.start);
        let field = field.unwrap_or_else(|| {
            self.root
                .map(|root| path_text(&locate(root, span.start).0))
                .unwrap_or_default()
        });
        self.found.push(Diagnostic {
            file: self.file.to_owned(),
            line,
            column,
            field,
            message: message.into(),
            help,
        });
    }

    /// Records a required field that is absent, unless it was present but
    /// invalid (and already reported).
    pub fn missing(&mut self, span: Range<usize>, field: String) {
        if self.pruned.contains(&field) {
            return;
        }
        let name = field.rsplit('.').next().unwrap_or(&field).to_owned();
        self.error(span, Some(field), format!("missing field `{name}`"), None);
    }

    /// Field path at a byte offset, e.g. `cohort[0].name`.
    pub fn field_at(&self, offset: usize) -> String {
        self.root
            .map(|root| path_text(&locate(root, offset).0))
            .unwrap_or_default()
    }

    /// The diagnostics, sorted by position, or `Ok` if there are none.
    pub fn finish(mut self) -> Result<(), Diagnostics> {
        if self.found.is_empty() {
            return Ok(());
        }
        self.found.sort_by_key(|d| (d.line, d.column));
        self.found.dedup();
        Err(Diagnostics(self.found))
    }
}

/// One step of a path into the tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seg {
    /// A table key.
    Key(String),
    /// An array index.
    Index(usize),
}

/// `cohort[0].devices[1].every` from segments.
pub fn path_text(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

fn contains(span: &Range<usize>, offset: usize) -> bool {
    span.start <= offset && offset < span.end.max(span.start + 1)
}

/// The deepest entry whose key or value covers `offset`: its path, and
/// whether the offset is on the key itself (as for an unknown field).
fn locate(root: &Spanned<DeTable<'_>>, offset: usize) -> (Vec<Seg>, bool) {
    let mut path = Vec::new();
    let mut on_key = false;
    let mut table = root.get_ref();
    let mut value: Option<&Spanned<DeValue<'_>>>;
    'tables: loop {
        value = None;
        for (key, entry) in table.iter() {
            if contains(&key.span(), offset) {
                path.push(Seg::Key(key.get_ref().to_string()));
                on_key = true;
                break 'tables;
            }
            if contains(&hull(entry), offset) {
                path.push(Seg::Key(key.get_ref().to_string()));
                value = Some(entry);
                break;
            }
        }
        let Some(mut current) = value else { break };
        loop {
            match current.get_ref() {
                DeValue::Table(inner) => {
                    table = inner;
                    continue 'tables;
                }
                DeValue::Array(items) => {
                    let Some((i, item)) = items
                        .iter()
                        .enumerate()
                        .find(|(_, item)| contains(&hull(item), offset))
                    else {
                        break 'tables;
                    };
                    path.push(Seg::Index(i));
                    current = item;
                }
                _ => break 'tables,
            }
        }
    }
    (path, on_key)
}

/// The extent of a value in the text. A table given by a header
/// (`[[cohort]]`) has a span covering the header while its keys come later,
/// so take the hull of the value's span and everything inside it.
fn hull(value: &Spanned<DeValue<'_>>) -> Range<usize> {
    let mut hull = value.span();
    match value.get_ref() {
        DeValue::Table(table) => {
            for (key, inner) in table.iter() {
                let h = self::hull(inner);
                hull.start = hull.start.min(key.span().start).min(h.start);
                hull.end = hull.end.max(h.end);
            }
        }
        DeValue::Array(items) => {
            for item in items.iter() {
                let h = self::hull(item);
                hull.start = hull.start.min(h.start);
                hull.end = hull.end.max(h.end);
            }
        }
        _ => {}
    }
    hull
}

/// Removes the entry at `path` from the tree; false if there was none.
/// A path ending in an array index cannot be removed (that would shift the
/// indices of later elements); the caller then prunes the array's key.
fn prune(table: &mut DeTable<'_>, path: &[Seg]) -> bool {
    match path {
        [Seg::Key(key)] => table.remove(key.as_str()).is_some(),
        [Seg::Key(key), rest @ ..] => table
            .get_mut(key.as_str())
            .is_some_and(|v| prune_value(v.get_mut(), rest)),
        _ => false,
    }
}

fn prune_value(value: &mut DeValue<'_>, path: &[Seg]) -> bool {
    match (value, path) {
        (DeValue::Table(table), _) => prune(table, path),
        (DeValue::Array(items), [Seg::Index(i), rest @ ..]) => items
            .get_mut(*i)
            .is_some_and(|item| prune_value(item.get_mut(), rest)),
        _ => false,
    }
}

/// Whether `text` can name a cohort or profile: letters, digits, `_`, `-`.
pub fn valid_name(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Parses TOML text, reporting every syntax error; `None` if there were any.
pub fn parse_toml<'t>(file: &Path, text: &'t str) -> Result<Spanned<DeTable<'t>>, Diagnostics> {
    let (root, syntax) = DeTable::parse_recoverable(text);
    if syntax.is_empty() {
        return Ok(root);
    }
    let mut reporter = Reporter::new(file, text, None);
    for error in syntax {
        let span = error.span().unwrap_or(0..0);
        reporter.error(
            span,
            Some(String::new()),
            format!("invalid TOML: {}", one_line(error.message())),
            None,
        );
    }
    Err(reporter.finish().err().unwrap_or(Diagnostics(Vec::new())))
}

/// Deserializes `T` from the reporter's tree, reporting every error serde
/// can find.
///
/// Each round deserializes the (pruned) tree; on an error it records the
/// error with its position and field, removes the offending key, and goes
/// again. The result is `T` from what was left once nothing failed (so the
/// caller can go on to check meaning), or `None` if nothing could be saved.
pub fn deserialize_all<T: DeserializeOwned>(reporter: &mut Reporter<'_>) -> Option<T> {
    let root = reporter.root?;
    let mut pruned = root.clone();
    // Every round removes one key, so this bounds the work on any file.
    for _ in 0..256 {
        let error = match T::deserialize(toml::de::Deserializer::from(pruned.clone())) {
            Ok(value) => return Some(value),
            Err(error) => error,
        };
        let span = error.span().unwrap_or(0..0);
        let (mut path, _) = locate(&pruned, span.start);
        let field = path_text(&locate(root, span.start).0);
        let (message, help, suggested) = explain(error.message());
        reporter.error(span, Some(field.clone()), message, help);
        if let Some(best) = suggested {
            // `duraton` suggested `duration`: "missing duration" would be noise.
            let parent = field.rsplit_once('.').map_or("", |(p, _)| p);
            reporter.pruned.push(if parent.is_empty() {
                best
            } else {
                format!("{parent}.{best}")
            });
        }
        reporter.pruned.push(field);
        while !path.is_empty() && !prune(pruned.get_mut(), &path) {
            path.pop();
        }
        if path.is_empty() {
            return None;
        }
    }
    None
}

fn one_line(message: &str) -> String {
    message.lines().next().unwrap_or("").trim().to_owned()
}

/// Rewrites serde's message into ours, with a suggestion where serde listed
/// the valid names (`unknown field`/`unknown variant ..., expected one of`).
fn explain(message: &str) -> (String, Option<String>, Option<String>) {
    let mut message = one_line(message);
    // serde names our Rust types; a user wrote TOML.
    if let Some(at) = message.find("expected struct ") {
        message.truncate(at);
        message.push_str("expected a table");
    }
    for (prefix, what) in [
        ("unknown field `", "unknown field"),
        ("unknown variant `", "unknown value"),
    ] {
        let Some(rest) = message.strip_prefix(prefix) else {
            continue;
        };
        let Some((found, expected)) = rest.split_once('`') else {
            continue;
        };
        let valid: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
        let best = suggest(found, &valid);
        let help = match best {
            Some(best) => Some(format!("did you mean `{best}`?")),
            None if !valid.is_empty() => Some(format!("expected one of {}", quoted_list(&valid))),
            None => None,
        };
        return (format!("{what} `{found}`"), help, best.map(str::to_owned));
    }
    (message, None, None)
}

/// `a`, `b` or `c`.
pub fn quoted_list(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => quoted.join(""),
    }
}

pub use medtwin_check::rules::suggest;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_lists_read_naturally() {
        assert_eq!(quoted_list(&["a"]), "`a`");
        assert_eq!(quoted_list(&["a", "b", "c"]), "`a`, `b` or `c`");
    }
}
