#!/usr/bin/env python3
"""Independent checks of what `medtwin record` wrote (docs/formats/).

For each record named on the command line as RECORD=EXPECT (EXPECT is
`narrow`, `wide` or `none`: the QRS complexes the record should show):

* the WFDB record opens with wfdb.rdrecord and its annotations with
  wfdb.rdann; the EDF+ file opens with pyedflib, and its samples equal the
  WFDB record's within one quantisation step (1/gain);
* two standard QRS detectors from independent packages (wfdb's XQRS, and
  NeuroKit2's `ecg_peaks` with method `engzeemod2012`, Engelse & Zeelenberg
  1979 as modified by Lourenço et al. 2012, on the signal cleaned by
  NeuroKit2's default `ecg_clean`) each find the true beats (the `.atr` annotations): sensitivity and
  positive predictivity scored as ANSI/AAMI EC57 does (a detection matches
  a true beat within 150 ms), each at least 99.5 %;
* the heart rate, defined as HR = 60 / mean RR over the segment (that is
  60 (n - 1) / (t_last - t_first) over the n beats), from each detector's
  detections is within 1 /min of the same from the true beats;
* the QRS width, measured on the median beat (the span where the slope
  exceeds 20 % of its largest value), is under 120 ms for `narrow`
  records and at least 120 ms for `wide` ones (the clinical definition of
  a wide complex);
* `none` (VF, asystole): no true beats annotated.

The first 2 s (the detector learns) and the last 1 s are left out of the
scoring. Prints one JSON line per record and exits 1 if any check fails.
"""

import json
import os
import sys

import neurokit2 as nk
import numpy as np
import pyedflib
import wfdb
from wfdb import processing

MIN_SCORE = 0.995
WINDOW_S = 0.150
MAX_HR_ERROR = 1.0
WIDE_MS = 120.0
BEAT_SYMBOLS = {"N", "V", "L", "R", "A", "F", "/", "f", "Q"}


def hr(samples, fs):
    if len(samples) < 2:
        return float("nan")
    return 60.0 * (len(samples) - 1) * fs / float(samples[-1] - samples[0])


def score(ref, test, fs):
    """EC57-style beat matching: each true beat matched to at most one
    detection within the window, nearest first."""
    window = WINDOW_S * fs
    test = np.asarray(test)
    used = np.zeros(len(test), dtype=bool)
    tp = 0
    for r in ref:
        if len(test) == 0:
            break
        k = np.searchsorted(test, r)
        best = None
        for j in (k - 1, k, k + 1):
            if 0 <= j < len(test) and not used[j] and abs(test[j] - r) <= window:
                if best is None or abs(test[j] - r) < abs(test[best] - r):
                    best = j
        if best is not None:
            used[best] = True
            tp += 1
    fn = len(ref) - tp
    fp = len(test) - tp
    se = tp / (tp + fn) if tp + fn else 1.0
    ppv = tp / (tp + fp) if tp + fp else 1.0
    return se, ppv, tp, fn, fp


def qrs_width_ms(ecg, beats, fs):
    half = int(0.25 * fs)
    windows = [ecg[b - half:b + half] for b in beats if b - half >= 0 and b + half <= len(ecg)]
    if not windows:
        return float("nan")
    template = np.median(np.vstack(windows), axis=0)
    slope = np.abs(np.diff(template))
    above = np.nonzero(slope >= 0.2 * slope.max())[0]
    return (above[-1] - above[0] + 1) * 1000.0 / fs


def score_detector(ref, found, lo, hi, fs):
    """One detector's detections scored against the true beats of the
    segment [lo, hi), EC57-style, with its HR."""
    test = found[(found >= lo - WINDOW_S * fs) & (found < hi + WINDOW_S * fs)]
    se, ppv, tp, fn, fp = score(ref, test, fs)
    # Detections just outside the scored segment that match nothing
    # inside it are not false positives of the segment.
    inside = test[(test >= lo) & (test < hi)]
    _, ppv_inside, _, _, fp_inside = score(ref, inside, fs)
    return {
        "sensitivity": round(se, 5),
        "ppv": round(max(ppv, ppv_inside), 5),
        "tp": tp,
        "fn": fn,
        "fp": min(fp, fp_inside),
        "hr_detected": round(hr(inside, fs), 2),
    }


def check(directory, name, expect):
    path = os.path.join(directory, name)
    failures = []
    record = wfdb.rdrecord(path)
    ann = wfdb.rdann(path, "atr")
    fs = record.fs
    names = [n.upper() for n in record.sig_name]
    ecg_channel = names.index("ECG II")
    ecg = record.p_signal[:, ecg_channel]

    # EDF+ against WFDB, sample for sample, within one quantisation step.
    edf = pyedflib.EdfReader(path + ".edf")
    try:
        labels = edf.getSignalLabels()
        if "EDF Annotations" in labels:
            failures.append("the annotations signal is listed as an ordinary signal")
        round_trip = 0.0
        for c in range(record.n_sig):
            x = edf.readSignal(c)
            n = min(len(x), record.sig_len)
            if n < record.sig_len - fs:
                failures.append(f"EDF channel {c}: {len(x)} samples, WFDB {record.sig_len}")
            step = 1.0 / record.adc_gain[c]
            err = float(np.max(np.abs(x[:n] - record.p_signal[:n, c]))) if n else 0.0
            round_trip = max(round_trip, err / step)
            if err > step * 1.0001:
                failures.append(f"EDF channel {c} differs from WFDB by {err} (> one step {step})")
        onsets, _, texts = edf.readAnnotations()
        edf_rhythms = [t for t in texts if t.startswith("(")]
    finally:
        edf.close()

    beats = np.array([s for s, sym in zip(ann.sample, ann.symbol) if sym in BEAT_SYMBOLS])
    kinds = [sym for sym in ann.symbol if sym in BEAT_SYMBOLS]
    rhythms = [aux.strip("\x00") for sym, aux in zip(ann.symbol, ann.aux_note) if sym == "+"]
    if rhythms != edf_rhythms[: len(rhythms)]:
        failures.append(f"EDF rhythm annotations {edf_rhythms} differ from WFDB {rhythms}")
    result = {
        "record": name,
        "fs": fs,
        "expect": expect,
        "rhythms": rhythms,
        "beats": len(beats),
        "ventricular": kinds.count("V"),
        "edf_max_error_steps": round(round_trip, 3),
    }
    lo, hi = int(2 * fs), record.sig_len - int(fs)
    ref = beats[(beats >= lo) & (beats < hi)]
    if expect == "none":
        if len(beats):
            failures.append(f"{len(beats)} beats annotated in a rhythm without beats")
    else:
        xqrs = processing.XQRS(sig=ecg, fs=fs)
        xqrs.detect(verbose=False)
        cleaned = nk.ecg_clean(ecg, sampling_rate=fs)
        _, info = nk.ecg_peaks(cleaned, sampling_rate=fs, method="engzeemod2012")
        # NeuroKit2's default method, reported and not held to the bar: it
        # never puts two peaks within 300 ms, so it misses AF's shortest
        # RR intervals (a fifth of them at 160 /min).
        _, default_info = nk.ecg_peaks(cleaned, sampling_rate=fs)
        result["neurokit2_default"] = score_detector(
            ref, np.asarray(default_info["ECG_R_Peaks"]), lo, hi, fs
        )
        true_hr = hr(ref, fs)
        width = qrs_width_ms(ecg, ref, fs)
        rr = np.diff(ref) / fs
        result.update(
            {
                "hr_true": round(true_hr, 2),
                "qrs_width_ms": round(width, 1),
                "rmssd_over_rr": round(float(np.sqrt(np.mean(np.diff(rr) ** 2)) / np.mean(rr)), 4),
            }
        )
        for detector, found in (
            ("xqrs", np.asarray(xqrs.qrs_inds)),
            ("neurokit2", np.asarray(info["ECG_R_Peaks"])),
        ):
            scored = score_detector(ref, found, lo, hi, fs)
            result[detector] = scored
            if scored["sensitivity"] < MIN_SCORE:
                failures.append(f"{detector}: sensitivity {scored['sensitivity']:.4f} < {MIN_SCORE}")
            if scored["ppv"] < MIN_SCORE:
                failures.append(f"{detector}: positive predictivity {scored['ppv']:.4f} < {MIN_SCORE}")
            if not abs(scored["hr_detected"] - true_hr) <= MAX_HR_ERROR:
                failures.append(f"{detector}: HR {scored['hr_detected']:.2f} vs true {true_hr:.2f}")
        if expect == "narrow" and not width < WIDE_MS:
            failures.append(f"QRS {width:.0f} ms, expected narrow (< {WIDE_MS:.0f})")
        if expect == "wide" and not width >= WIDE_MS:
            failures.append(f"QRS {width:.0f} ms, expected wide (>= {WIDE_MS:.0f})")
    result["failures"] = failures
    return result


def main(argv):
    if len(argv) < 3:
        print(__doc__)
        print("usage: validate_waveforms.py DIR RECORD=narrow|wide|none ...")
        return 2
    directory = argv[1]
    bad = 0
    for arg in argv[2:]:
        name, _, expect = arg.partition("=")
        if expect not in ("narrow", "wide", "none"):
            print(f"bad expectation {arg!r}")
            return 2
        result = check(directory, name, expect)
        print(json.dumps(result))
        if result["failures"]:
            bad += 1
    if bad:
        print(f"{bad} record(s) failed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
