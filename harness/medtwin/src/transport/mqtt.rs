//! MQTT 3.1.1 and 5 out (`docs/transports/mqtt.md`).

pub use super::select::MqttOptions;
use super::select::{EncodeContext, TargetConfig, Wired};

/// Connects to the broker and returns the carrier and encoder.
pub async fn connect(_cfg: &TargetConfig, _ctx: &EncodeContext) -> anyhow::Result<Wired> {
    anyhow::bail!("the MQTT transport is not available in this build")
}
