//! What the end-to-end test files share: the repository root, running the
//! `medtwin` binary there, and reading what it wrote.
#![allow(dead_code)] // each test file uses its own subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The repository root (scenario paths in tests are relative to it).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("harness/ has a parent")
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
