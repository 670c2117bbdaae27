//! Alerts out over MQTT: each alert's start is published as medtwin's
//! alert JSON to a topic rendered from a template (default
//! `medtwin/alerts/{patient}`; `{kind}` is the alert's kind, `{device}`
//! is `backend`) at the configured QoS, not retained. An alert's end has
//! no place in that payload and is not published. The connection is made
//! on first use and reconnects by itself; a publish that fails is retried
//! by the alert lanes when the connection was the trouble.

use medtwin_mqtt::{
    ConnectOptions, Connection, PublishError, Qos, TopicNames, TopicTemplate, Version,
};
use medtwin_wire::AlertMessage;
use tokio::sync::OnceCell;

use super::Undelivered;

pub use medtwin_mqtt::defaults::ALERT_TOPIC as DEFAULT_TOPIC;

/// Where and how to publish alerts.
#[derive(Clone, Debug, PartialEq)]
pub struct MqttSinkConfig {
    /// Broker `host:port`.
    pub broker: String,
    /// Topic template (`{patient}`, `{kind}`, `{device}`).
    pub topic: String,
    /// QoS of each alert.
    pub qos: Qos,
    /// Protocol version.
    pub version: Version,
}

/// Publishes alerts.
#[derive(Debug)]
pub struct MqttSink {
    config: MqttSinkConfig,
    topic: TopicTemplate,
    connection: OnceCell<Connection>,
}

impl MqttSink {
    /// Checks the template; connects on first use.
    pub fn new(config: MqttSinkConfig) -> Result<MqttSink, crate::BackendError> {
        let topic = TopicTemplate::parse(&config.topic).map_err(|e| crate::BackendError::Mqtt {
            broker: config.broker.clone(),
            detail: e.to_string(),
        })?;
        Ok(MqttSink {
            config,
            topic,
            connection: OnceCell::new(),
        })
    }

    async fn connection(&self) -> Result<&Connection, Undelivered> {
        self.connection
            .get_or_try_init(|| async {
                let id = format!("mtal{}x{}", std::process::id(), unique());
                Connection::connect(ConnectOptions::new(
                    &self.config.broker,
                    id,
                    self.config.version,
                ))
                .await
                .map_err(|e| Undelivered {
                    retry: true,
                    detail: e.to_string(),
                })
            })
            .await
    }

    /// Publishes one alert once.
    pub(crate) async fn deliver(&self, alert: &AlertMessage) -> Result<(), Undelivered> {
        let body = serde_json::to_vec(alert).map_err(|e| Undelivered {
            retry: false,
            detail: e.to_string(),
        })?;
        let topic = self.topic.render(&TopicNames {
            patient: &alert.patient_id,
            device: "backend",
            kind: &alert.kind,
        });
        let connection = self.connection().await?;
        connection
            .publish(topic, body, self.config.qos, false)
            .await
            .map_err(|e| Undelivered {
                retry: matches!(
                    e,
                    PublishError::Disconnected { .. } | PublishError::NotConnected { .. }
                ),
                detail: e.to_string(),
            })
    }
}

fn unique() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
