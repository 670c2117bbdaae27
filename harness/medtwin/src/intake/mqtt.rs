//! Alerts in from an MQTT subscription (`docs/intakes/mqtt.md`).

use super::{AnyIntake, IntakeContext};
use crate::scenario::interop::MqttIntakeOptions;

/// Connects and subscribes.
pub async fn open(_options: &MqttIntakeOptions, _ctx: &IntakeContext) -> anyhow::Result<AnyIntake> {
    anyhow::bail!("the MQTT intake is not available in this build")
}
