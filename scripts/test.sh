#!/usr/bin/env bash
# The whole medtwin test suite: formatting, lints, every test (unit,
# property, snapshot, end to end on loopback) and the doc tests.
# Installs what the tests run against when it is missing (Debian's chromium
# and chromedriver, mosquitto and nginx; Python validators in a venv under target/);
# uses cargo-nextest when it is there and falls back to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo is required (Rust 1.95, see README.md)" >&2
  exit 1
fi

# The suite runs against real programs from Debian: a headless Chromium
# and its WebDriver (the HTML report, the training pages), mosquitto (MQTT interop) and nginx (TLS). Whatever is
# missing is installed in one apt transaction: as root, or through sudo;
# with neither, say so and let those tests skip (on CI, which runs as root,
# they are required and a failed install is an error).
# need PACKAGE SKIP_VARIABLE WHAT COMMAND...: install PACKAGE unless one of
# the COMMANDs is found.
missing=()
skips=()
need() {
  local package=$1 skip=$2 what=$3
  shift 3
  for cmd in "$@"; do
    if command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ]; then
      return
    fi
  done
  missing+=("$package")
  skips+=("$skip:$what")
}
need chromium MEDTWIN_NO_BROWSER "the browser tests (HTML report, training pages)" chromium chromium-browser
# chromedriver drives the training pages (`medtwin serve`) over WebDriver.
need chromium-driver MEDTWIN_NO_BROWSER "the training pages' browser tests" chromedriver
need mosquitto MEDTWIN_NO_MOSQUITTO "the MQTT interop tests" mosquitto
need mosquitto-clients MEDTWIN_NO_MOSQUITTO "the MQTT interop tests" mosquitto_pub
need nginx MEDTWIN_NO_NGINX "the TLS tests against nginx" nginx
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing ${missing[*]} (Debian packages the tests run against)"
  sudo_=()
  if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo_=(sudo)
  fi
  if [ "$(id -u)" = "0" ] || [ ${#sudo_[@]} -gt 0 ]; then
    "${sudo_[@]}" apt-get update -qq
    "${sudo_[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  elif [ -n "${CI:-}" ]; then
    echo "error: CI must run the tests against ${missing[*]}, but they are missing and cannot be installed (no root, no sudo)" >&2
    exit 1
  else
    for skip in "${skips[@]}"; do
      echo "warning: cannot install without root or sudo: ${skip#*:} will be SKIPPED" >&2
      export "${skip%%:*}=1"
    done
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
