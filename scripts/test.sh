#!/usr/bin/env bash
# The whole medtwin test suite: formatting, lints, every test (unit,
# property, snapshot, end to end on loopback) and the doc tests.
# Installs Debian's chromium when it is missing (for the HTML report test);
# uses cargo-nextest when it is there and falls back to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo is required (Rust 1.95, see README.md)" >&2
  exit 1
fi

# The HTML report is tested in a real headless Chromium (Debian's
# `chromium`). Install it when missing: as root, or through sudo; with
# neither, say so and let the browser test skip (on CI it runs as root and
# always installs).
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
  echo "== installing chromium (for the HTML report test)"
  if [ "$(id -u)" = "0" ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
  elif [ -n "${CI:-}" ]; then
    echo "error: CI must run the HTML report in chromium, but it is missing and cannot be installed (no root, no sudo)" >&2
    exit 1
  else
    echo "warning: chromium is missing and neither root nor sudo is available:" >&2
    echo "warning: the HTML-in-a-browser test will be SKIPPED (install chromium to run it)" >&2
    export MEDTWIN_NO_BROWSER=1
  fi
fi

# The training pages (`medtwin serve`) are tested in headless Chromium
# driven over WebDriver: Debian's `chromium-driver` (chromedriver).
if ! command -v chromedriver >/dev/null 2>&1; then
  echo "== installing chromium-driver (for the training pages' browser tests)"
  if [ "$(id -u)" = "0" ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium-driver
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium-driver
  elif [ -n "${CI:-}" ]; then
    echo "error: CI must run the training pages in chromium, but chromium-driver is missing and cannot be installed" >&2
    exit 1
  else
    echo "warning: chromium-driver is missing and cannot be installed: the training browser tests will be SKIPPED" >&2
    export MEDTWIN_NO_BROWSER=1
  fi
fi

# The interop tests talk to a real MQTT broker (Debian's mosquitto) and
# run what medtwin emits through independent validators (Python FHIR and
# HL7 v2 libraries, in a virtualenv under target/). Install what is
# missing, the same way as chromium; without root the tests that need them
# skip, and say so (on CI they are required).
if ! command -v mosquitto >/dev/null 2>&1 || ! command -v mosquitto_pub >/dev/null 2>&1; then
  echo "== installing mosquitto (for the MQTT interop tests)"
  if [ "$(id -u)" = "0" ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto mosquitto-clients
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto mosquitto-clients
  elif [ -n "${CI:-}" ]; then
    echo "error: CI must test against mosquitto, but it is missing and cannot be installed" >&2
    exit 1
  else
    echo "warning: mosquitto is missing and cannot be installed: its interop tests will be SKIPPED" >&2
    export MEDTWIN_NO_MOSQUITTO=1
  fi
fi
# The TLS tests put medtwin in front of a real nginx (Debian's) with
# certificates from a test CA.
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  echo "== installing nginx (for the TLS tests)"
  if [ "$(id -u)" = "0" ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx
  elif [ -n "${CI:-}" ]; then
    echo "error: CI must test TLS against nginx, but it is missing and cannot be installed" >&2
    exit 1
  else
    echo "warning: nginx is missing and cannot be installed: its TLS tests will be SKIPPED" >&2
    export MEDTWIN_NO_NGINX=1
  fi
fi
# Debian puts nginx in /usr/sbin, which a non-root PATH may lack.
case ":$PATH:" in *:/usr/sbin:*) ;; *) export PATH="$PATH:/usr/sbin" ;; esac
venv=target/validators-venv
if [ ! -x "$venv/bin/python" ] || ! cmp -s scripts/validators/requirements.txt "$venv/requirements.txt"; then
  echo "== installing the Python validators (fhir.resources, hl7apy, wfdb, pyedflib, neurokit2) into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r scripts/validators/requirements.txt
  cp scripts/validators/requirements.txt "$venv/requirements.txt"
fi
MEDTWIN_PYTHON="$(pwd)/$venv/bin/python"
export MEDTWIN_PYTHON

echo "== format"
cargo fmt --all --check

echo "== lints"
cargo clippy --workspace --all-targets --locked -- -D warnings

# The benchmarks must build; they are built with the test profile's
# (already compiled) dependencies rather than a second, optimised build of
# them. Run them, optimised, with: cargo bench -p medtwin-sim
echo "== benchmarks build"
cargo bench --workspace --locked --no-run --profile dev

echo "== tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
  echo "== doc tests"
  cargo test --workspace --doc --locked
else
  echo "(cargo-nextest not found: using cargo test)"
  cargo test --workspace --locked --no-fail-fast
fi
