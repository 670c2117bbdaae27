//! What the end-to-end test files share: the repository root, running the
//! `medtwin` binary there, and reading what it wrote.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The repository root (scenario paths in tests are relative to it).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("harness/medtwin/ is two levels down")
        .to_owned()
}

/// Runs `medtwin ARGS` from the repository root, without a token in the
/// environment, and waits for it.
pub fn medtwin(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_medtwin"))
        .args(args)
        .current_dir(root())
        .env_remove("MEDTWIN_ALERT_TOKEN")
        .output()
        .expect("the medtwin binary runs")
}

/// Output bytes as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The `report.json` a run wrote into `dir`.
pub fn report(dir: &Path) -> Value {
    let json = std::fs::read_to_string(dir.join("report.json")).expect("report.json written");
    serde_json::from_str(&json).expect("report.json is JSON")
}

/// Validates `value` against `schema` with a real JSON Schema validator
/// (the `jsonschema` crate, draft 2020-12): every error, with its path
/// under `at`. (`root` is the document `$ref`s resolve in: the schema
/// itself for medtwin's schemas.)
pub fn check_schema(root: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    assert_eq!(
        root, schema,
        "medtwin's schemas resolve $refs in themselves"
    );
    let validator = jsonschema::validator_for(schema).map_err(|e| format!("bad schema: {e}"))?;
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| format!("{at}{}: {e}", e.instance_path()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("\n"))
    }
}

/// Runs `medtwin run ARGS --out DIR` into a fresh folder, insists that it
/// passed (showing what it printed if not), and returns the folder and
/// its standard output.
pub fn run_passing(args: &[&str]) -> (tempfile::TempDir, String) {
    let out = tempfile::tempdir().expect("a temporary folder");
    let mut all = vec!["run"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--out", out.path().to_str().expect("a UTF-8 path")]);
    let run = medtwin(&all);
    let stdout = text(&run.stdout);
    assert_eq!(
        run.status.code(),
        Some(0),
        "medtwin {all:?}\nstdout:\n{stdout}\nstderr:\n{}",
        text(&run.stderr)
    );
    (out, stdout)
}

/// Insists that a report.json is valid against `docs/schemas/report.schema.json`.
pub fn assert_valid(report: &Value) {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("docs/schemas/report.schema.json"))
            .expect("the report schema is committed"),
    )
    .expect("the report schema is JSON");
    if let Err(errors) = check_schema(&schema, &schema, report, "report.json") {
        panic!("{errors}");
    }
}
