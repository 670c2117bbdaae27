//! The reference backend over MQTT, against medtwin's embedded broker: it
//! ingests telemetry published to the template's filter exactly as the
//! HTTP route does (bad payloads counted as `bad_json`, status topics
//! skipped), and publishes its alerts as medtwin's alert JSON.

use std::net::SocketAddr;
use std::time::Duration;

use medtwin_backend::sink::MqttSinkConfig;
use medtwin_backend::{BackendConfig, MqttIngest, Sink};
use medtwin_mqtt::{Broker, BrokerOptions, ConnectOptions, Connection, Qos, Version};
use medtwin_sim::Vital;
use medtwin_wire::{self as wire, AlertMessage, TELEMETRY_SCHEMA, TelemetryMessage, WireValue};
use tokio::sync::mpsc;

fn vitals(
    patient_id: &str,
    seq: u64,
    t_s: f64,
    [hr, rr, spo2, sbp, temp]: [f64; 5],
) -> TelemetryMessage {
    let start = wire::parse_time("2026-01-01T08:00:00Z").unwrap();
    let values = [
        ("hr", hr),
        ("rr", rr),
        ("spo2", spo2),
        ("sbp", sbp),
        ("dbp", 70.0),
        ("temp", temp),
    ];
    TelemetryMessage {
        schema: TELEMETRY_SCHEMA.to_owned(),
        synthetic: true,
        patient_id: patient_id.to_owned(),
        device_id: format!("{patient_id}/vitals_monitor"),
        device_kind: "vitals_monitor".to_owned(),
        seq,
        measured_at: wire::format_time(start + Duration::from_secs_f64(t_s)),
        values: values
            .iter()
            .map(|&(code, value)| {
                let v = Vital::ALL.into_iter().find(|v| v.code() == code).unwrap();
                WireValue {
                    code: code.to_owned(),
                    value,
                    unit: v.unit().to_owned(),
                    loinc: v.loinc().map(str::to_owned),
                }
            })
            .collect(),
        alarm: None,
        event: None,
    }
}

#[tokio::test]
async fn telemetry_in_and_alerts_out_over_mqtt() {
    let broker = Broker::start(BrokerOptions::local()).await.unwrap();
    let addr = broker.addr().to_string();
    let mut config = BackendConfig::new("");
    config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.ingest.mqtt = Some(MqttIngest {
        broker: addr.clone(),
        filter: "medtwin/+/+/+".into(),
        qos: Qos::AtLeastOnce,
        version: Version::V5,
        run: String::new(),
        ignore: vec!["medtwin/+/+/status".into()],
    });
    config.sinks.push(Sink::Mqtt(MqttSinkConfig {
        broker: addr.clone(),
        topic: "medtwin/alerts/{patient}".into(),
        qos: Qos::AtLeastOnce,
        version: Version::V311,
    }));
    let backend = medtwin_backend::start(config).await.unwrap();
    let (tx, mut alerts) = mpsc::channel(16);
    let mut options = ConnectOptions::new(&addr, "alerts", Version::V311);
    options.deliveries = Some(tx);
    let listener = Connection::connect(options).await.unwrap();
    listener
        .subscribe("medtwin/alerts/#", Qos::AtLeastOnce)
        .await
        .unwrap();
    let device = Connection::connect(ConnectOptions::new(&addr, "dev", Version::V311))
        .await
        .unwrap();
    // Not telemetry: a status, and a payload that is not JSON.
    device
        .publish(
            "medtwin/ward-001/monitor/status",
            "online",
            Qos::AtLeastOnce,
            true,
        )
        .await
        .unwrap();
    device
        .publish(
            "medtwin/ward-001/monitor/vitals",
            "not json",
            Qos::AtLeastOnce,
            false,
        )
        .await
        .unwrap();
    // A patient who deteriorates to NEWS2 8 (as in backend.rs).
    let series = [
        [80.0, 16.0, 97.0, 120.0, 37.0],
        [95.0, 22.0, 97.0, 120.0, 38.5],
        [115.0, 22.0, 97.0, 120.0, 38.5],
        [115.0, 22.0, 97.0, 105.0, 38.5],
        [115.0, 22.0, 94.0, 105.0, 38.5],
        [115.0, 26.0, 94.0, 105.0, 38.5],
    ];
    for (i, v) in series.into_iter().enumerate() {
        let body = serde_json::to_vec(&vitals("ward-001", i as u64, 300.0 * i as f64, v)).unwrap();
        device
            .publish(
                "medtwin/ward-001/monitor/vitals",
                body,
                Qos::AtLeastOnce,
                false,
            )
            .await
            .unwrap();
    }
    let mut kinds = Vec::new();
    while kinds.len() < 2 {
        let d = tokio::time::timeout(Duration::from_secs(5), alerts.recv())
            .await
            .expect("alerts within 5 s")
            .unwrap();
        assert_eq!(d.topic, "medtwin/alerts/ward-001");
        let alert: AlertMessage = serde_json::from_slice(&d.payload).unwrap();
        assert_eq!(alert.patient_id, "ward-001");
        kinds.push(alert.kind);
    }
    assert_eq!(kinds, ["news2-medium", "news2-high"]);
    let stats = backend.shutdown(Duration::from_secs(2)).await;
    assert_eq!(stats.accepted, 6);
    assert_eq!(
        stats.rejected.bad_json, 1,
        "the status is skipped, the garbage counted"
    );
    device.disconnect().await;
    listener.disconnect().await;
    broker.stop().await;
}
