#!/usr/bin/env bash
# The whole medtwin test suite: formatting, lints, every test (unit,
# property, snapshot, end to end on loopback) and the doc tests.
# Installs nothing system-wide; uses cargo-nextest when it is there and
# falls back to `cargo test` when it is not.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo is required (Rust 1.95, see README.md)" >&2
  exit 1
fi

echo "== format"
cargo fmt --all --check

echo "== lints"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
  echo "== doc tests"
  cargo test --workspace --doc --locked
else
  echo "(cargo-nextest not found: using cargo test)"
  cargo test --workspace --locked --no-fail-fast
fi
