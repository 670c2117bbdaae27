//! PCD-04: the report's rows, the round trip, foreign alarm managers'
//! variants, and the conversion to medtwin's alert.

use medtwin_hl7::{
    AlarmPriority, AlarmState, AlertReport, AlertType, EventPhase, Message, Pcd01Options,
};
use medtwin_wire::Priority;

use crate::common::{alert, every_report};

#[test]
fn every_report_round_trips() {
    let opts = Pcd01Options::default();
    for (i, r) in every_report().into_iter().enumerate() {
        let text = r.encode(&opts, &format!("A{i}"));
        let back = AlertReport::decode(&Message::parse(&text).unwrap()).unwrap();
        assert_eq!(back, r, "{}", text.replace('\r', "\n"));
    }
}

#[test]
fn the_rows_are_pcd04s_facets() {
    let r = &every_report()[0]; // news2-high, start, SpO2 88 % trigger, score 8
    let msg = Message::parse(&r.encode(&Pcd01Options::default(), "A1")).unwrap();
    for (path, want) in [
        ("MSH-9", "ORU"),
        ("MSH-9-2", "R40"),
        ("MSH-9-3", "ORU_R40"),
        ("MSH-21-1", "IHE_PCD_ACM_001"),
        ("MSH-21-3", "1.3.6.1.4.1.19376.1.6.4.4"),
        ("MSH-10", "A1"),
        ("PID-3-1", "ward-003"),
        ("OBR-3-1", "ward-003/news2-high/1"),
        ("OBR-4-1", "196616"),
        ("OBR-4-2", "MDC_EVT_ALARM"),
        ("OBR-7", "20260101080002.000+0000"),
    ] {
        assert_eq!(msg.get(path), Some(want), "{path}");
    }
    let rows: Vec<(&str, &str, &str)> = msg
        .segments_named("OBX")
        .map(|o| {
            (
                o.get(3, 2).unwrap(),
                o.get(4, 1).unwrap(),
                o.get(5, 1).unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("MDC_EVT_ALARM", "1.0.0.0.1", "258049"),
            ("MDC_PULS_OXIM_SAT_O2", "1.0.0.0.2", "88"),
            ("MDC_ATTR_EVENT_PHASE", "1.0.0.0.3", "start"),
            ("MDC_ATTR_ALARM_STATE", "1.0.0.0.4", "active"),
            ("MDC_ATTR_ALARM_INACTIVATION_STATE", "1.0.0.0.5", "enabled"),
            ("MDC_ATTR_ALARM_PRIORITY", "1.0.0.0.6", "PH"),
            ("MDC_ATTR_ALERT_TYPE", "1.0.0.0.7", "SP"),
            ("MDCX_MEDTWIN_NEWS2_SCORE", "1.0.0.0.8", "8"),
        ]
    );
    let event = msg.segment("OBX", 1).unwrap();
    assert_eq!(
        event.get(5, 9),
        Some("news2-high"),
        "the kind as original text"
    );
    let flags = event.field(8).unwrap();
    assert_eq!(
        (flags.get(1, 1, 1), flags.get(2, 1, 1)),
        (Some("PH"), Some("SP"))
    );
    let trigger = msg.segment("OBX", 2).unwrap();
    assert_eq!(trigger.get(14, 1), Some("20260101080001.250+0000"));
    assert_eq!(trigger.get(6, 2), Some("MDC_DIM_PERCENT"));
}

#[test]
fn phases_states_and_kinds_map_as_medtwin_sends_them() {
    let reports = every_report();
    let end = reports.iter().find(|r| r.phase == EventPhase::End).unwrap();
    assert_eq!(end.state, AlarmState::Inactive);
    let lead = reports
        .iter()
        .find(|r| r.kind == "device-lead-off")
        .unwrap();
    assert_eq!(
        (lead.event_code, lead.alert_type.clone()),
        (196680, AlertType::Technical)
    );
    assert_eq!(lead.priority, AlarmPriority::Low);
    let a = alert("spo2-low", Priority::High, None);
    let r = AlertReport::from_alert(&a, EventPhase::Start, "2026-01-01T08:00:02Z", None);
    assert_eq!(
        r.event_code, 196616,
        "a kind without its own term: MDC_EVT_ALARM"
    );
    let back =
        AlertReport::decode(&Message::parse(&r.encode(&Pcd01Options::default(), "X")).unwrap())
            .unwrap();
    assert_eq!(back.kind, "spo2-low", "the kind travels as text");
    let m = back.to_alert_message();
    assert_eq!(
        (m.patient_id.as_str(), m.kind.as_str(), m.priority),
        ("ward-003", "spo2-low", Priority::High)
    );
    assert_eq!(m.alert_id.as_deref(), Some("ward-003/spo2-low/1"));
    // Without a triggering value the measurement time rides on the
    // source row (OBX-14) and comes back.
    let m =
        AlertReport::decode(&Message::parse(&lead.encode(&Pcd01Options::default(), "L")).unwrap())
            .unwrap()
            .to_alert_message();
    assert_eq!(
        m.measurement_time.as_deref(),
        Some("2026-01-01T08:00:01.250Z")
    );
    let m = every_report()[0].to_alert_message();
    assert_eq!(
        m.measurement_time.as_deref(),
        Some("2026-01-01T08:00:01.250Z")
    );
    assert_eq!(m.score, Some(8));
}

#[test]
fn reports_from_alarm_managers_in_other_shapes_read() {
    // An alarm source that puts the event term in OBX-3, numbers the ACM
    // attributes 68165-68168 and writes MSH-9 without the structure.
    let text = "MSH|^~\\&|0030E60000000001^EUI-64|Vendor|||20191105183941+0100||ORU^R40|79|P|2.6|||AL|NE\r\
PID|||8888^^^^AN||Data^Simulated^Patient^^^^L\r\
PV1|||TAM\r\
OBR|1||1^381a5f0b^0030E60000000001|196616^MDC_EVT_ALARM^MDC|||20191105183941+0100\r\
OBX|1|ST|196650^MDC_EVT_HI_GT_LIM^MDC|1.0.0.0.1|PVC/min > 10|||H~PM~SP|||F\r\
OBX|2|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.0.0.0.2|99|262688^MDC_DIM_PERCENT^MDC|||||F|||20191105183940+0100\r\
OBX|3|ST|68165^MDC_ATTR_EVENT_PHASE^MDC|1.0.0.0.3|continue||||||F\r\
OBX|4|ST|68166^MDC_ATTR_ALERT_STATE^MDC|1.0.0.0.4|latched||||||F\r\
OBX|5|ST|68167^MDC_ATTR_ALARM_INACTIVATION_STATE^MDC|1.0.0.0.5|audio-paused||||||F\r";
    let r = AlertReport::decode(&Message::parse(text).unwrap()).unwrap();
    assert_eq!(r.patient_id, "8888");
    assert_eq!(r.alert_id, "1");
    assert_eq!(
        (r.event_code, r.event_name.as_str()),
        (196650, "MDC_EVT_HI_GT_LIM")
    );
    assert_eq!(r.kind, "PVC/min > 10", "a foreign event's kind is its text");
    assert_eq!(r.priority, AlarmPriority::Medium);
    assert_eq!(r.alert_type, AlertType::Physiological);
    assert_eq!(r.abnormality.as_deref(), Some("H"));
    assert_eq!(r.phase, EventPhase::Continue);
    assert_eq!(r.state, AlarmState::Latched);
    assert_eq!(r.inactivation.as_str(), "audio-paused");
    assert_eq!(r.time, "2019-11-05T17:39:41.000Z");
    let t = r.trigger.unwrap();
    assert_eq!(
        (t.value.code.as_str(), t.value.value, t.value.unit.as_str()),
        ("spo2", 99.0, "%")
    );
    assert_eq!(t.time, "2019-11-05T17:39:40.000Z");
    // Unknown facet values are kept, not refused.
    let odd = text.replace("|continue|", "|present|");
    let r = AlertReport::decode(&Message::parse(&odd).unwrap()).unwrap();
    assert_eq!(r.phase, EventPhase::Other("present".into()));
}

#[test]
fn reports_the_decoder_cannot_read_are_refused_by_field() {
    let good = every_report()[0].encode(&Pcd01Options::default(), "A1");
    let cases = [
        (
            good.replacen("ORU^R40^ORU_R40", "ORU^R01^ORU_R01", 1),
            "MSH-9",
        ),
        (good.replacen("ward-003^^^MEDTWIN^PI", "", 1), "PID-3-1"),
        (good.replacen("|88|", "|eighty|", 1), "OBX[2]-5"),
        (good.replacen("|8|{score}", "|8.5|{score}", 1), "OBX[8]-5"),
    ];
    for (text, path) in cases {
        let err = AlertReport::decode(&Message::parse(&text).unwrap()).unwrap_err();
        assert!(err.to_string().contains(path), "{path}: {err}");
    }
    let no_event: String = good
        .split('\r')
        .filter(|s| !s.starts_with("OBX|1|"))
        .collect::<Vec<_>>()
        .join("\r");
    assert!(AlertReport::decode(&Message::parse(&no_event).unwrap()).is_err());
}
