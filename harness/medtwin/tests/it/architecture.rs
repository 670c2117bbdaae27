//! The rules of the house (ARCHITECTURE.md, "Invariants"), checked: crate
//! dependencies from `cargo metadata`, module imports inside the `medtwin`
//! crate from its source.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::common::root;

/// Crates that mean async, networking or JSON: never in the twin.
const ASYNC_NETWORK_JSON: [&str; 10] = [
    "tokio",
    "axum",
    "hyper",
    "reqwest",
    "mio",
    "socket2",
    "h2",
    "serde_json",
    "toml",
    "futures",
];

/// The resolved dependency graph: package name → names of its normal
/// (non-dev, non-build) dependencies.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    // This machine's platform only: a wasm-only dependency of bevy is not
    // a dependency of the twin here.
    let rustc = Command::new("rustc")
        .arg("-vV")
        .output()
        .expect("rustc runs");
    let host = String::from_utf8_lossy(&rustc.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
        .expect("rustc -vV names the host");
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked", "--offline"])
        .args(["--filter-platform", &host])
        .current_dir(root())
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).unwrap();
    let name_of: BTreeMap<&str, &str> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    let mut graph = BTreeMap::new();
    for node in meta["resolve"]["nodes"].as_array().unwrap() {
        let name = name_of[node["id"].as_str().unwrap()].to_owned();
        let deps: BTreeSet<String> = node["deps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| {
                d["dep_kinds"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|k| k["kind"].is_null())
            })
            .map(|d| name_of[d["pkg"].as_str().unwrap()].to_owned())
            .collect();
        graph.insert(name, deps);
    }
    graph
}

/// Every package `name` depends on, directly or not.
fn closure(graph: &BTreeMap<String, BTreeSet<String>>, name: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![name.to_owned()];
    while let Some(next) = todo.pop() {
        for dep in graph.get(&next).into_iter().flatten() {
            if seen.insert(dep.clone()) {
                todo.push(dep.clone());
            }
        }
    }
    seen
}

#[test]
fn crate_dependencies_point_the_right_way() {
    let g = graph();
    let workspace = [
        "medtwin-sim",
        "medtwin-check",
        "medtwin-wire",
        "medtwin-backend",
        "medtwin-listen",
        "medtwin-fhir",
        "medtwin-mqtt",
        "medtwin-hl7",
        "medtwin-tls",
        "medtwin",
    ];
    let of = |name: &str| -> BTreeSet<String> { closure(&g, name) };
    let ours = |deps: &BTreeSet<String>| -> BTreeSet<String> {
        deps.iter()
            .filter(|d| workspace.contains(&d.as_str()))
            .cloned()
            .collect()
    };
    let sim = of("medtwin-sim");
    let bad: Vec<&&str> = ASYNC_NETWORK_JSON
        .iter()
        .filter(|c| sim.contains(**c))
        .collect();
    assert!(bad.is_empty(), "sim depends on {bad:?}");
    assert!(ours(&sim).is_empty(), "sim depends on {:?}", ours(&sim));

    let check = of("medtwin-check");
    assert_eq!(ours(&check), BTreeSet::from(["medtwin-sim".to_owned()]));
    let bad: Vec<&&str> = ASYNC_NETWORK_JSON
        .iter()
        .filter(|c| check.contains(**c))
        .collect();
    assert!(bad.is_empty(), "check depends on {bad:?}");

    let wire = of("medtwin-wire");
    assert!(ours(&wire).is_empty(), "wire depends on {:?}", ours(&wire));

    // TLS is infrastructure, like the listener: it knows nothing of ours.
    let tls = of("medtwin-tls");
    assert!(ours(&tls).is_empty(), "tls depends on {:?}", ours(&tls));

    let listen = of("medtwin-listen");
    assert_eq!(
        ours(&listen),
        BTreeSet::from(["medtwin-tls".to_owned()]),
        "the listener depends on the TLS crate only"
    );

    // Format crates depend on medtwin's wire types only.
    let fhir = of("medtwin-fhir");
    assert_eq!(
        ours(&fhir),
        BTreeSet::from(["medtwin-wire".to_owned()]),
        "the FHIR format crate depends on the wire types only"
    );

    // A format crate: nothing of ours but the wire types, TLS and the
    // listener.
    let mqtt = of("medtwin-mqtt");
    assert!(
        ours(&mqtt).is_subset(&BTreeSet::from([
            "medtwin-wire".to_owned(),
            "medtwin-tls".to_owned(),
            "medtwin-listen".to_owned()
        ])),
        "mqtt depends on {:?}",
        ours(&mqtt)
    );

    // Format crates depend on no medtwin crate but the wire types (and
    // TLS, for MLLP over TLS).
    let hl7 = of("medtwin-hl7");
    assert_eq!(
        ours(&hl7),
        BTreeSet::from(["medtwin-wire".to_owned(), "medtwin-tls".to_owned()]),
        "the HL7 format crate depends on the wire types and TLS only"
    );

    let backend = of("medtwin-backend");
    assert_eq!(
        ours(&backend),
        BTreeSet::from([
            "medtwin-sim".to_owned(),
            "medtwin-wire".to_owned(),
            "medtwin-tls".to_owned(),
            "medtwin-listen".to_owned(),
            "medtwin-fhir".to_owned(),
            "medtwin-mqtt".to_owned(),
            "medtwin-hl7".to_owned()
        ]),
        "the backend depends on the twin, the wire types, the listener and the format crates, never on the judge"
    );

    for (name, deps) in &g {
        assert!(
            !deps.contains("medtwin"),
            "{name} depends on the binary crate"
        );
    }
}

/// The top-level module of `medtwin` each file under `src/` belongs to.
fn module_of(file: &Path, src: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_owned()
}

/// `crate::X` paths in a file (its `use` lines and inline paths), comments
/// and test modules included: a test may not break the rules either.
fn imports(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices("crate::") {
        let before = text[..i].chars().last();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // e.g. `medtwin_crate::`
        }
        let rest = &text[i + "crate::".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            out.insert(name);
        }
    }
    // `use crate::{a, b::c}` groups.
    for (i, _) in text.match_indices("crate::{") {
        let rest = &text[i + "crate::{".len()..];
        let group = &rest[..rest.find('}').unwrap_or(rest.len())];
        for item in group.split(',') {
            let name: String = item
                .trim()
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Module → the modules it imports.
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = root().join("harness/medtwin/src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in all {
        let module = module_of(&file, &src);
        let text = std::fs::read_to_string(&file).unwrap();
        let deps = graph.entry(module.clone()).or_default();
        for import in imports(&text) {
            if import != module {
                deps.insert(import);
            }
        }
    }
    graph
}

#[test]
fn module_imports_follow_the_rules_of_the_house() {
    let g = module_graph();
    assert!(g.contains_key("cli") && g.contains_key("run"), "{g:?}");
    for (module, deps) in &g {
        assert!(
            !deps.contains("cli"),
            "`{module}` imports cli/: only main.rs may call into it"
        );
    }
    for module in ["transport", "intake", "report"] {
        assert!(
            !g[module].contains("run"),
            "`{module}` imports run/ ({:?})",
            g[module]
        );
    }
    // No import circle: a topological order exists.
    let mut order = Vec::new();
    let mut left = g.clone();
    while !left.is_empty() {
        let ready: Vec<String> = left
            .iter()
            .filter(|(_, deps)| deps.iter().all(|d| !left.contains_key(d)))
            .map(|(m, _)| m.clone())
            .collect();
        assert!(!ready.is_empty(), "import circle among {:?}", left);
        for m in ready {
            left.remove(&m);
            order.push(m);
        }
    }
}

#[test]
fn the_import_scan_sees_what_it_must() {
    // The scanner itself: grouped, nested and inline paths all count.
    let text =
        "use crate::{clock::SimClock, report};\nlet x = crate::run::execute;\n// medtwin_crate::x";
    let found = imports(text);
    assert_eq!(
        found,
        BTreeSet::from(["clock".into(), "report".into(), "run".into()])
    );
}

#[test]
fn no_file_points_outside_the_repository() {
    // A user's clone has nothing beside the repository: every fact the
    // code cites lives in docs/references.md.
    let needle = ["..", "/shared"].concat();
    let mut hits = Vec::new();
    let mut todo = vec![root()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                if !matches!(
                    name.as_str(),
                    "target" | ".git" | "reports" | ".venv" | "node_modules"
                ) {
                    todo.push(path);
                }
            } else if let Ok(text) = std::fs::read_to_string(&path)
                && text.contains(&needle)
            {
                hits.push(path.display().to_string());
            }
        }
    }
    assert!(hits.is_empty(), "files cite {needle}: {hits:?}");
    assert!(root().join("docs/references.md").is_file());
}
