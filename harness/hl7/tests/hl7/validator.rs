//! Every message kind medtwin-hl7 writes passes an independent HL7 v2
//! validator (hl7apy, strict), and the validator is not a rubber stamp.

use medtwin_hl7::{AckCode, AckErrorInfo, Message, Pcd01Options, build_ack, encode_oru_r01};

use crate::common::{every_device, every_report, python, validate};

#[test]
fn every_message_kind_passes_hl7apy() {
    let Some(py) = python() else { return };
    let opts = Pcd01Options::default();
    let mut messages = Vec::new();
    for (i, m) in every_device().iter().enumerate() {
        messages.push((
            format!("oru-r01-{i}-{}", m.device_kind),
            encode_oru_r01(m, &opts),
        ));
    }
    for (i, r) in every_report().iter().enumerate() {
        messages.push((
            format!("oru-r40-{i}-{}-{}", r.kind, r.phase),
            r.encode(&opts, &format!("A{i}")),
        ));
    }
    let orig = Message::parse(&messages[0].1).unwrap();
    messages.push((
        "ack-aa".into(),
        build_ack(
            Some(&orig),
            "C1",
            AckCode::AA,
            None,
            "20260101080002+0000",
            "K1",
        ),
    ));
    let err = AckErrorInfo {
        code: 101,
        text: "PID-3-1 is missing",
    };
    messages.push((
        "ack-ae".into(),
        build_ack(
            Some(&orig),
            "C1",
            AckCode::AE,
            Some(err.clone()),
            "20260101080002+0000",
            "K2",
        ),
    ));
    messages.push((
        "ack-ar".into(),
        build_ack(
            Some(&orig),
            "C1",
            AckCode::AR,
            Some(err),
            "20260101080002+0000",
            "K3",
        ),
    ));
    let (ok, out) = validate(&py, &messages);
    assert!(ok, "{out}");
}

#[test]
fn the_validator_refuses_broken_messages() {
    let Some(py) = python() else { return };
    let good = encode_oru_r01(&every_device()[0], &Pcd01Options::default());
    let broken = [
        // OBX before any OBR: out of ORU_R01's structure.
        ("obx-first", good.replacen("PID|", "OBX|1|NM|x||1\rPID|", 1)),
        // MSH-9 missing: the structure cannot be known.
        ("no-type", good.replacen("ORU^R01^ORU_R01", "", 1)),
        // A datatype error: OBX-1 (SI) is not a number.
        ("bad-si", good.replacen("OBX|1|", "OBX|one|", 1)),
    ];
    for (name, text) in broken {
        let (ok, out) = validate(&py, &[(name.into(), text)]);
        assert!(!ok, "{name} passed: {out}");
        assert!(out.contains("INVALID"), "{name}: {out}");
    }
}
