//! Reports: the model `report.json` holds ([`model`], its own types), and
//! what is rendered from it: the terminal summary ([`summary`]),
//! `junit.xml` ([`junit`]) and the self-contained `index.html` ([`html`],
//! with its SVG charts in [`charts`]).
//! Nothing here runs anything: a report is built by the run and read back
//! by `medtwin report` and `medtwin compare`.

pub mod charts;
pub mod html;
pub mod junit;
pub mod model;
pub mod summary;

use std::path::Path;

use anyhow::Context as _;

pub use model::*;

/// The JSON Schema of `report.json` (`docs/schemas/report.schema.json`),
/// generated from [`Report`].
pub fn schema() -> serde_json::Value {
    let mut schema = schemars::schema_for!(Report).to_value();
    medtwin_wire::unwrap_descriptions(&mut schema);
    schema
}

impl Report {
    /// Writes `report.json`, `junit.xml` and `index.html` into `dir`.
    /// Each file is written whole or not at all (see [`write_atomic`]).
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let json = serde_json::to_string_pretty(self)?;
        write_atomic(&dir.join("report.json"), (json + "\n").as_bytes())?;
        self.render(dir)
    }

    /// Writes `junit.xml` and `index.html` from this report (what
    /// `medtwin report` does with a report.json).
    pub fn render(&self, dir: &Path) -> anyhow::Result<()> {
        write_atomic(
            &dir.join("junit.xml"),
            junit::render(std::slice::from_ref(self))?.as_bytes(),
        )?;
        write_atomic(&dir.join("index.html"), html::render(self).as_bytes())?;
        Ok(())
    }

    /// Reads a `report.json` (a file, or a run folder holding one).
    pub fn read(path: &Path) -> anyhow::Result<Report> {
        let file = if path.is_dir() {
            path.join("report.json")
        } else {
            path.to_owned()
        };
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        let report: Report = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a medtwin report", file.display()))?;
        anyhow::ensure!(
            report.schema == REPORT_SCHEMA,
            "{} has schema `{}`; this medtwin reads `{REPORT_SCHEMA}`",
            file.display(),
            report.schema
        );
        Ok(report)
    }
}

/// Writes `bytes` to a temporary file beside `path`, flushes it to disk,
/// then renames it over `path`: a full disk or a crash leaves the old file
/// (or none), never a truncated one. The temporary file is removed on
/// failure.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let written = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", path.display()));
    }
    Ok(())
}

/// Text cut to `n` characters, with an ellipsis when cut.
pub fn truncate(text: &str, n: usize) -> String {
    if text.chars().count() <= n {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(n - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_report_schema_is_the_generated_one() {
        // `docs/schemas/report.schema.json` is generated from the report's
        // model; set MEDTWIN_BLESS=1 to rewrite it after a deliberate change
        // (and bump REPORT_SCHEMA with a note in docs/report.md when the
        // shape of report.json changes).
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/schemas/report.schema.json");
        let text = serde_json::to_string_pretty(&schema()).unwrap() + "\n";
        if std::env::var_os("MEDTWIN_BLESS").is_some() {
            std::fs::write(&path, &text).unwrap();
            return;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == text,
            "docs/schemas/report.schema.json drifted from report::model; run \
             `MEDTWIN_BLESS=1 cargo test -p medtwin --lib report` and commit it"
        );
    }

    #[test]
    fn an_atomic_write_replaces_whole_or_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.json");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second, longer").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second, longer");
        // A write that cannot happen leaves neither a file nor a temporary.
        let missing = dir.path().join("no-such-dir").join("report.json");
        assert!(write_atomic(&missing, b"x").is_err());
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["report.json"]);
    }

    #[test]
    fn the_schema_refuses_what_the_model_cannot_hold() {
        let validator = jsonschema::validator_for(&schema()).unwrap();
        // Reports are checked whole in the end-to-end tests; here, that the
        // generated schema is strict where the model is.
        let bad = serde_json::json!({"schema": "medtwin.report.v0", "synthetic_data": false});
        let errors: Vec<String> = validator.iter_errors(&bad).map(|e| e.to_string()).collect();
        assert!(
            errors.iter().any(|e| e.contains(REPORT_SCHEMA)),
            "{errors:?}"
        );
        assert!(errors.iter().any(|e| e.contains("required")), "{errors:?}");
    }
}
