#!/usr/bin/env bash
# ECG synthesis speed, medtwin beside NeuroKit2: one core, lead II at
# 250 Hz (or the rate given). medtwin: `medtwin bench ecg` (1000 streams of
# 60 s, release build). NeuroKit2: `nk.ecg_simulate(method="ecgsyn")` (the
# McSharry 2003 dynamical model medtwin follows) and its faster
# `method="simple"` (a template), each timed on 60 s of signal.
#
# Needs the validators' virtualenv (scripts/test.sh makes it in
# target/validators-venv, or set MEDTWIN_PYTHON) and a release build:
#   cargo build --release --bin medtwin
#   ./scripts/bench-ecg-vs-neurokit2.sh [RATE_HZ]
set -euo pipefail
cd "$(dirname "$0")/.."
rate="${1:-250}"
python="${MEDTWIN_PYTHON:-target/validators-venv/bin/python}"
medtwin="${CARGO_TARGET_DIR:-target}/release/medtwin"
if [ ! -x "$medtwin" ]; then
  echo "error: $medtwin is missing: cargo build --release --bin medtwin" >&2
  exit 2
fi
if [ ! -x "$python" ]; then
  echo "error: no Python with neurokit2 at $python (run scripts/test.sh, or set MEDTWIN_PYTHON)" >&2
  exit 2
fi
echo "== medtwin bench ecg --rate-hz $rate"
taskset -c 0 "$medtwin" bench ecg --rate-hz "$rate" 2>/dev/null || "$medtwin" bench ecg --rate-hz "$rate"
echo "== neurokit2 ecg_simulate, 60 s at $rate Hz"
"$python" - "$rate" <<'PY'
import sys, time, warnings
warnings.filterwarnings("ignore")
import neurokit2 as nk
rate = int(sys.argv[1])
for method in ("ecgsyn", "simple"):
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        nk.ecg_simulate(duration=60, sampling_rate=rate, heart_rate=72, method=method, random_state=1)
        best = min(best, time.perf_counter() - start)
    samples = 60 * rate
    print(f"  neurokit2 {nk.__version__} method={method}: {samples / best / 1e6:.3f} M samples/s ({best:.3f} s for {samples} samples)")
PY
