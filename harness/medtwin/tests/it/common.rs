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

/// A small JSON Schema checker, enough for `docs/schemas/report.schema.json`
/// (type, const, enum, properties, required, additionalProperties, items,
/// oneOf, $ref into $defs, pattern by prefix). Returns the first mismatch.
pub fn check_schema(root: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.trim_start_matches("#/$defs/");
        return check_schema(root, &root["$defs"][name], value, at);
    }
    if let Some(options) = schema.get("oneOf").and_then(Value::as_array) {
        let ok = options
            .iter()
            .filter(|o| check_schema(root, o, value, at).is_ok())
            .count();
        return if ok == 1 {
            Ok(())
        } else {
            Err(format!("{at}: {ok} of oneOf match"))
        };
    }
    if let Some(c) = schema.get("const")
        && c != value
    {
        return Err(format!("{at}: {value} is not {c}"));
    }
    if let Some(e) = schema.get("enum").and_then(Value::as_array)
        && !e.contains(value)
    {
        return Err(format!("{at}: {value} not in {e:?}"));
    }
    if let Some(t) = schema.get("type") {
        let types: Vec<&str> = match t {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let fits = types.iter().any(|t| match *t {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "integer" => value.is_u64() || value.is_i64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            "null" => value.is_null(),
            _ => false,
        });
        if !fits {
            return Err(format!("{at}: {value} is not {types:?}"));
        }
    }
    if let (Some(p), Some(text)) = (
        schema.get("pattern").and_then(Value::as_str),
        value.as_str(),
    ) && p.starts_with("^sha256:")
        && !text.starts_with("sha256:")
    {
        return Err(format!("{at}: {text} does not match {p}"));
    }
    if let Some(obj) = value.as_object() {
        let props = schema.get("properties").and_then(Value::as_object);
        for name in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = name.as_str().unwrap();
            if !obj.contains_key(name) {
                return Err(format!("{at}: missing required `{name}`"));
            }
        }
        for (k, v) in obj {
            let sub = props.and_then(|p| p.get(k));
            match (sub, schema.get("additionalProperties")) {
                (Some(sub), _) => check_schema(root, sub, v, &format!("{at}.{k}"))?,
                (None, Some(Value::Bool(false))) => {
                    return Err(format!("{at}: `{k}` is not in the schema"));
                }
                (None, Some(extra @ Value::Object(_))) => {
                    check_schema(root, extra, v, &format!("{at}.{k}"))?
                }
                _ => {}
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (i, v) in array.iter().enumerate() {
            check_schema(root, items, v, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
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
