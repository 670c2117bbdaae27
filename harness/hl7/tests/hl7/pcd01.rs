//! PCD-01: what the encoder writes, field by field, and that the decoder
//! reads it back.

use medtwin_hl7::pcd01::{control_id_for, eui64};
use medtwin_hl7::{Message, Pcd01Options, decode_oru_r01, encode_oru_r01};
use medtwin_wire::{TelemetryMessage, WireValue};
use quickcheck::{Arbitrary, Gen, QuickCheck};

use crate::common::{every_device, telemetry, value};

#[test]
fn every_device_round_trips_through_the_decoder() {
    let opts = Pcd01Options::default();
    for m in every_device() {
        let text = encode_oru_r01(&m, &opts);
        assert_eq!(text, encode_oru_r01(&m, &opts), "same input, same bytes");
        let back = decode_oru_r01(&Message::parse(&text).unwrap()).unwrap();
        assert_eq!(back.message, m, "{}", text.replace('\r', "\n"));
        assert!(back.unknown_metrics.is_empty());
    }
}

#[test]
fn the_header_patient_and_order_follow_pcd01() {
    let m = &every_device()[0];
    let text = encode_oru_r01(m, &Pcd01Options::default());
    let msg = Message::parse(&text).unwrap();
    let eui = eui64(&m.device_id);
    let expect = [
        ("MSH-3-3", "EUI-64"),
        ("MSH-9", "ORU"),
        ("MSH-9-2", "R01"),
        ("MSH-9-3", "ORU_R01"),
        ("MSH-11", "P"),
        ("MSH-12", "2.6"),
        ("MSH-15", "AL"),
        ("MSH-16", "NE"),
        ("MSH-18", "UNICODE UTF-8"),
        ("MSH-21-1", "IHE_PCD_001"),
        ("MSH-21-2", "IHE PCD"),
        ("MSH-21-3", "1.3.6.1.4.1.19376.1.6.1.1.1"),
        ("MSH-21-4", "ISO"),
        ("MSH-7", "20260101080001.250+0000"),
        ("PID-3-1", "ward-003"),
        ("PID-3-4", "MEDTWIN"),
        ("PID-3-5", "PI"),
        ("PV1-2", "I"),
        ("OBR-3-1", "4711"),
        ("OBR-3-3", &eui),
        ("OBR-4-1", "182777000"),
        ("OBR-7", "20260101080001.250+0000"),
    ];
    for (path, want) in expect {
        assert_eq!(msg.get(path), Some(want), "{path}");
    }
    assert_eq!(
        msg.control_id(),
        Some(control_id_for(&m.device_id, m.seq).as_str())
    );
    let segs: Vec<&str> = msg.segments().iter().map(|s| s.name()).collect();
    assert_eq!(&segs[..4], ["MSH", "PID", "PV1", "OBR"]);
    assert!(text.ends_with('\r') && !text.contains('\n'));
}

#[test]
fn obx_rows_carry_mdc_codes_containment_units_times_and_the_device() {
    let m = &every_device()[0]; // pulse oximeter: SpO2 and pulse rate
    let msg = Message::parse(&encode_oru_r01(m, &Pcd01Options::default())).unwrap();
    let eui = eui64(&m.device_id);
    let rows: Vec<[Option<&str>; 4]> = msg
        .segments_named("OBX")
        .map(|o| [o.get(3, 1), o.get(4, 1), o.get(2, 1), o.get(11, 1)])
        .collect();
    assert_eq!(
        rows,
        vec![
            [Some("69965"), Some("1.0.0.0"), None, Some("X")],
            [Some("531969"), Some("1.0.0.1"), Some("ST"), Some("R")],
            [Some("69642"), Some("1.1.0.0"), None, Some("X")],
            [Some("150456"), Some("1.1.1.1"), Some("NM"), Some("R")],
            [Some("149530"), Some("1.1.1.2"), Some("NM"), Some("R")],
        ]
    );
    for (i, obx) in msg.segments_named("OBX").enumerate() {
        assert_eq!(
            obx.get(1, 1),
            Some((i + 1).to_string().as_str()),
            "OBX-1 numbers the rows"
        );
        assert_eq!(
            obx.get(14, 1),
            Some("20260101080001.250+0000"),
            "OBX-14 has the offset"
        );
    }
    let spo2 = msg.segment("OBX", 4).unwrap();
    assert_eq!(spo2.get(3, 2), Some("MDC_PULS_OXIM_SAT_O2"));
    assert_eq!(spo2.get(3, 3), Some("MDC"));
    assert_eq!(spo2.get(3, 4), Some("59408-5"));
    assert_eq!(spo2.get(3, 6), Some("LN"));
    assert_eq!(spo2.get(5, 1), Some("97"));
    assert_eq!(spo2.get(6, 1), Some("262688"));
    assert_eq!(spo2.get(6, 2), Some("MDC_DIM_PERCENT"));
    assert_eq!(spo2.get(6, 4), Some("%"));
    assert_eq!(spo2.get(6, 6), Some("UCUM"));
    assert_eq!(spo2.get(18, 1), Some(m.device_id.as_str()));
    assert_eq!(spo2.get(18, 3), Some(eui.as_str()));
    assert_eq!(spo2.get(18, 4), Some("EUI-64"));
    let mds = msg.segment("OBX", 1).unwrap();
    assert_eq!(mds.get(18, 3), Some(eui.as_str()));
}

#[test]
fn nibp_has_its_vmd_and_channel_and_heart_rate_its_source() {
    let msg = Message::parse(&encode_oru_r01(
        &every_device()[3],
        &Pcd01Options::default(),
    ))
    .unwrap();
    let subs: Vec<(&str, &str)> = msg
        .segments_named("OBX")
        .map(|o| (o.get(3, 1).unwrap(), o.get(4, 1).unwrap()))
        .collect();
    assert_eq!(
        &subs[2..],
        [
            ("70686", "1.3.0.0"),
            ("70687", "1.3.1.0"),
            ("150021", "1.3.1.1"),
            ("150022", "1.3.1.2"),
            ("150023", "1.3.1.3"),
        ]
    );
    for (kind, code) in [
        ("ecg_patch", "147842"),
        ("finger_oximeter", "149530"),
        ("home_bp_cuff", "149546"),
    ] {
        let m = telemetry(kind, vec![value("hr", 60.0, "/min", None)], None);
        let msg = Message::parse(&encode_oru_r01(&m, &Pcd01Options::default())).unwrap();
        let hr = msg
            .segments_named("OBX")
            .find(|o| o.get(2, 1) == Some("NM"))
            .unwrap();
        assert_eq!(hr.get(3, 1), Some(code), "{kind}");
    }
}

#[test]
fn a_technical_alarm_is_an_mds_event_row_read_back() {
    let m = telemetry("ecg_patch", vec![], Some("lead_off"));
    let msg = Message::parse(&encode_oru_r01(&m, &Pcd01Options::default())).unwrap();
    let row = msg.segment("OBX", 3).unwrap();
    assert_eq!(row.get(3, 1), Some("196616"));
    assert_eq!(row.get(4, 1), Some("1.0.0.2"));
    assert_eq!(row.get(5, 1), Some("196680"));
    assert_eq!(row.get(5, 2), Some("MDC_EVT_LEAD_OFF"));
    assert_eq!(row.get(5, 9), Some("lead_off"));
    // A foreign sender's alarm row without medtwin's text still reads.
    let foreign = msg.encode().replace("^^^^^^lead_off", "");
    let back = decode_oru_r01(&Message::parse(&foreign).unwrap()).unwrap();
    assert_eq!(back.message.alarm.as_deref(), Some("lead_off"));
}

#[test]
fn hostile_values_cannot_break_the_structure() {
    let mut m = telemetry(
        "pulse_oximeter",
        vec![value("spo2", 97.0, "%", None)],
        Some("x|y^z"),
    );
    m.patient_id = "p|1^2~3\\4&5\r6".into();
    m.device_id = "dev\rMSH|^~\\&|evil".into();
    let text = encode_oru_r01(&m, &Pcd01Options::default());
    let msg = Message::parse(&text).unwrap();
    assert_eq!(msg.segments_named("MSH").count(), 1);
    let back = decode_oru_r01(&msg).unwrap().message;
    assert_eq!(back.patient_id, m.patient_id);
    assert_eq!(back.device_id, m.device_id);
    assert_eq!(back.alarm, m.alarm);
}

#[test]
fn the_decoder_reads_a_monitors_message_and_names_what_it_cannot() {
    // A bedside monitor's PCD-01 in the shape the TF's examples show:
    // UCUM-only units, no model row, a metric medtwin does not know.
    let text = "MSH|^~\\&|ACME_GW^080019FFFE3ED02D^EUI-64|ACME|||20110602045842+0000||ORU^R01^ORU_R01|0104ef19|P|2.6|||AL|NE||UNICODE UTF-8|||IHE_PCD_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.1.1^ISO\r\
PID|||HO2009001^^^NIST^PI||Hon^Albert^^^^^L\r\
PV1||I|HO Surgery^OR^1\r\
OBR|1|X1^ACME^080019FFFE3ED02D^EUI-64|X1^ACME^080019FFFE3ED02D^EUI-64|182777000^monitoring of patient^SCT|||20110602045842+0100\r\
OBX|1||69965^MDC_DEV_MON_PHYSIO_MULTI_PARAM_MDS^MDC|1.0.0.0|||||||X\r\
OBX|2|NM|150021^MDC_PRESS_BLD_NONINV_SYS^MDC|1.1.1.1|120|mm[Hg]^mm[Hg]^UCUM|||||R|||20110602045842+0100||||080019FFFE3ED02D^GATEWAY_ACME\r\
OBX|3|NM|150488^MDC_BLD_PERF_INDEX^MDC|1.3.1.150488|3.06|262688^MDC_DIM_PERCENT^MDC|||||R\r\
OBX|4|NM|151562^MDC_RESP_RATE^MDC|1.14.1.151562|20|264928^MDC_DIM_RESP_PER_MIN^MDC|||||F\r";
    let d = decode_oru_r01(&Message::parse(text).unwrap()).unwrap();
    let m = d.message;
    assert_eq!(m.patient_id, "HO2009001");
    assert_eq!(m.device_id, "080019FFFE3ED02D");
    assert_eq!(m.device_kind, "unknown");
    assert_eq!(m.seq, 0, "not a number: no sequence");
    assert_eq!(
        m.measured_at, "2011-06-02T03:58:42.000Z",
        "offset +0100 honoured"
    );
    let values: Vec<(&str, f64, &str)> = m
        .values
        .iter()
        .map(|v| (v.code.as_str(), v.value, v.unit.as_str()))
        .collect();
    assert_eq!(values, [("sbp", 120.0, "mm[Hg]"), ("rr", 20.0, "/min")]);
    assert_eq!(d.unknown_metrics, ["150488^MDC_BLD_PERF_INDEX"]);
}

#[test]
fn the_decoder_refuses_what_it_cannot_read() {
    let good = encode_oru_r01(&every_device()[0], &Pcd01Options::default());
    let cases = [
        (
            good.replacen("ORU^R01^ORU_R01", "ADT^A01^ADT_A01", 1),
            "MSH-9",
        ),
        (good.replacen("ward-003^^^MEDTWIN^PI", "", 1), "PID-3-1"),
        (good.replacen("|97|", "|ninety|", 1), "OBX[4]-5"),
        (
            good.replace("20260101080001.250+0000", "yesterday"),
            "OBR-7",
        ),
    ];
    for (text, path) in cases {
        let err = decode_oru_r01(&Message::parse(&text).unwrap()).unwrap_err();
        assert!(err.to_string().contains(path), "{path}: {err}");
    }
}

#[derive(Clone, Debug)]
struct Arb(TelemetryMessage);

impl Arbitrary for Arb {
    fn arbitrary(g: &mut Gen) -> Self {
        let kinds = [
            "pulse_oximeter",
            "ecg_patch",
            "bp_cuff",
            "cgm",
            "weight_scale",
            "infusion_pump",
            "nurse_observations",
        ];
        let codes = [
            ("hr", "/min"),
            ("spo2", "%"),
            ("rr", "/min"),
            ("sbp", "mm[Hg]"),
            ("temp", "Cel"),
            ("glucose", "mg/dL"),
            ("weight", "kg"),
            ("infusion_rate", "mL/h"),
            ("acvpu", "{ACVPU}"),
            ("o2_flow", "L/min"),
        ];
        let text = |g: &mut Gen| -> String {
            let chars = ['a', 'Z', '0', '-', '/', '|', '^', '~', '\\', '&', ' ', 'é'];
            let n = usize::arbitrary(g) % 12 + 1;
            (0..n).map(|_| *g.choose(&chars).unwrap()).collect()
        };
        let n = usize::arbitrary(g) % 4;
        let values = (0..n)
            .map(|_| {
                let (code, unit) = *g.choose(&codes).unwrap();
                // Any finite f64: the encoder writes the shortest exact text.
                let value = loop {
                    let v = f64::arbitrary(g);
                    if v.is_finite() {
                        break v;
                    }
                };
                WireValue {
                    code: code.into(),
                    value,
                    unit: unit.into(),
                    loinc: bool::arbitrary(g).then(|| "8867-4".into()),
                }
            })
            .collect();
        let ms = u64::arbitrary(g) % 4_000_000_000_000;
        let t = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(ms);
        let mut m = telemetry(g.choose(&kinds).unwrap(), values, None);
        m.patient_id = text(g);
        m.device_id = text(g);
        m.seq = u64::arbitrary(g);
        m.measured_at = medtwin_wire::format_time(t);
        m.alarm = bool::arbitrary(g).then(|| {
            g.choose(&["lead_off", "sensor_off", "low_battery", "odd|one"])
                .unwrap()
                .to_string()
        });
        Arb(m)
    }
}

#[test]
fn encode_then_decode_is_the_identity_on_random_messages() {
    fn prop(a: Arb) -> bool {
        let m = a.0;
        let text = encode_oru_r01(&m, &Pcd01Options::default());
        let back = decode_oru_r01(&Message::parse(&text).unwrap())
            .unwrap()
            .message;
        // Values come back grouped by VMD: compare as sets of text.
        let key = |v: &WireValue| {
            format!(
                "{}|{:?}|{}|{:?}",
                v.code,
                v.value.to_bits(),
                v.unit,
                v.loinc
            )
        };
        let mut want: Vec<String> = m.values.iter().map(key).collect();
        let mut got: Vec<String> = back.values.iter().map(key).collect();
        want.sort();
        got.sort();
        (
            back.patient_id,
            back.device_id,
            back.seq,
            back.measured_at,
            back.alarm,
            back.device_kind,
        ) == (
            m.patient_id,
            m.device_id,
            m.seq,
            m.measured_at,
            m.alarm,
            m.device_kind,
        ) && want == got
    }
    QuickCheck::new()
        .tests(500)
        .quickcheck(prop as fn(Arb) -> bool);
}
