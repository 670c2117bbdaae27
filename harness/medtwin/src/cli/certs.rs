//! `medtwin certs SCENARIO --out DIR`: a throwaway PKI for a scenario's
//! fleet (`medtwin_tls::TestCa`): `ca.crt` and `ca.key` (0600), a server
//! certificate (`server.crt`, `server.key`) for `--server-name` names, one
//! client identity per device and per gateway connection the MQTT carrier
//! opens (`<name>.crt`, `<name>.key`, named as `[target.tls] identities`
//! reads them: `transport::mqtt::identity_name`, `gateway_name`), one for
//! the MQTT alerts intake, and with `--revoke NAME` a `ca.crl` revoking
//! those. Key material is written, never printed.

use std::path::Path;

use medtwin_tls::{Issued, TestCa, Validity};

use super::args::CertsArgs;
use super::{Failure, Outcome};
use crate::scenario;
use crate::scenario::limits::Estimate;
use crate::transport::mqtt::{
    INTAKE_IDENTITY, MAX_DEVICE_CONNECTIONS, gateway_name, identity_name,
};

/// Lanes of a scenario without `[target] concurrency` (and of `--target`).
const DEFAULT_LANES: usize = 8;

/// Writes the CA, the server certificate and every identity.
pub fn run(args: &CertsArgs) -> Result<Outcome, Failure> {
    let s = scenario::load(&args.scenario).map_err(|d| Failure::Input(d.to_string()))?;
    Estimate::of(&s).check(s.max_memory).map_err(|e| {
        Failure::Input(format!(
            "error: {}: too big to name its devices here: {e}",
            args.scenario.display()
        ))
    })?;
    let twin = medtwin_sim::Twin::new(&s.sim).map_err(|e| {
        Failure::Input(format!(
            "error: {}: the twin refused the scenario: {e}",
            args.scenario.display()
        ))
    })?;
    let devices: Vec<String> = twin
        .device_names()
        .iter()
        .map(|d| identity_name(d))
        .collect();
    drop(twin);
    // A fleet too big for a connection per device uses gateways only.
    let devices = if devices.len() > MAX_DEVICE_CONNECTIONS {
        println!(
            "note: {} devices, more than the {MAX_DEVICE_CONNECTIONS} connections connection = \"device\" opens: gateway identities only",
            devices.len()
        );
        Vec::new()
    } else {
        devices
    };
    let lanes = s.target.as_ref().map_or(DEFAULT_LANES, |t| t.concurrency);
    let gateways: Vec<String> = (0..lanes.max(1)).map(gateway_name).collect();
    for name in devices.iter().chain(&gateways) {
        if name.is_empty() || name.starts_with('.') || name.contains(['/', '\\']) {
            return Err(Failure::Input(format!(
                "error: the name {name:?} cannot be a file name in the identities folder (rename the cohort)"
            )));
        }
    }
    let known =
        |name: &str| devices.iter().any(|d| d == name) || gateways.iter().any(|g| g == name);
    if let Some(unknown) = args.revoke.iter().find(|n| !known(n)) {
        let example = devices.first().unwrap_or(&gateways[0]);
        return Err(Failure::Input(format!(
            "error: --revoke {unknown}: no device or gateway of {} is called so (names look like {example} or gateway-0)",
            args.scenario.display()
        )));
    }
    let server_names: Vec<String> = if args.server_names.is_empty() {
        vec!["localhost".into(), "127.0.0.1".into()]
    } else {
        args.server_names.clone()
    };
    let dir = &args.out;
    if dir.join("ca.key").exists() {
        return Err(Failure::Input(format!(
            "error: {} already holds a CA (ca.key); choose another folder or remove it",
            dir.display()
        )));
    }
    let harness = |e: medtwin_tls::TlsError| Failure::Harness(format!("error: {e}"));
    let io = |path: &Path, e: std::io::Error| {
        Failure::Harness(format!("error: cannot write {}: {e}", path.display()))
    };
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    // A name of its own: a verifier looks for the issuer by name, so two
    // CAs called alike (two `medtwin certs` runs) would read as a bad
    // signature rather than an unknown CA.
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let ca_name = format!(
        "medtwin test CA ({}) {:x}",
        s.name,
        stamp & 0xffff_ffff_ffff
    );
    let ca = TestCa::generate(&ca_name).map_err(harness)?;
    std::fs::write(dir.join("ca.crt"), ca.cert_pem()).map_err(|e| io(&dir.join("ca.crt"), e))?;
    write_private(&dir.join("ca.key"), &ca.key_pem()).map_err(|e| io(&dir.join("ca.key"), e))?;
    let names: Vec<&str> = server_names.iter().map(String::as_str).collect();
    ca.issue_server(&names, Validity::Current)
        .map_err(harness)?
        .write(dir, "server")
        .map_err(|e| io(&dir.join("server.crt"), e))?;
    let mut revoked: Vec<Issued> = Vec::new();
    for name in devices
        .iter()
        .chain(&gateways)
        .map(String::as_str)
        .chain([INTAKE_IDENTITY])
    {
        let issued = ca.issue_client(name, Validity::Current).map_err(harness)?;
        issued
            .write(dir, name)
            .map_err(|e| io(&dir.join(format!("{name}.crt")), e))?;
        if args.revoke.iter().any(|r| r == name) {
            revoked.push(issued);
        }
    }
    println!("certs: wrote {}", dir.display());
    println!("  ca.crt, ca.key (private, 0600): the test CA \"{ca_name}\"");
    println!(
        "  server.crt, server.key: a server certificate for {}",
        server_names.join(", ")
    );
    if let (Some(first), Some(last)) = (devices.first(), devices.last()) {
        println!(
            "  {} device identities for connection = \"device\": {first}.crt/.key ... {last}.crt/.key",
            devices.len()
        );
    }
    println!(
        "  {} gateway identities for connection = \"gateway\": gateway-0.crt/.key ... gateway-{}.crt/.key",
        gateways.len(),
        gateways.len() - 1
    );
    println!("  {INTAKE_IDENTITY}.crt/.key: the MQTT alerts intake's identity");
    if !revoked.is_empty() {
        let refs: Vec<&Issued> = revoked.iter().collect();
        let crl = ca.crl(&refs).map_err(harness)?;
        std::fs::write(dir.join("ca.crl"), crl).map_err(|e| io(&dir.join("ca.crl"), e))?;
        println!(
            "  ca.crl: revokes {} (valid for a day)",
            args.revoke.join(", ")
        );
    }
    println!(
        "use: medtwin run {} --target mqtts://HOST:8883 --ca-cert {} --identities {}",
        args.scenario.display(),
        dir.join("ca.crt").display(),
        dir.display()
    );
    Ok(Outcome::Pass)
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        // Created 0600: the key is never readable by others, even briefly.
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)?;
        file.write_all(text.as_bytes())
    }
    #[cfg(not(unix))]
    {
        std::fs::write(path, text)
    }
}
