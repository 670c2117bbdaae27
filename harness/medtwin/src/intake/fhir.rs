//! Alerts in from FHIR: Subscriptions Backport rest-hook notifications, or
//! polling `Flag`, `DetectedIssue` or `Communication`
//! (`docs/intakes/fhir.md`).

use super::{AnyIntake, IntakeContext};
use crate::scenario::interop::FhirIntakeOptions;

/// Opens the rest-hook listener (subscription) or prepares the poller;
/// neither talks to the FHIR server until [`AnyIntake::attach`].
pub async fn open(
    _options: &FhirIntakeOptions,
    _subscription: bool,
    _ctx: &IntakeContext,
) -> anyhow::Result<AnyIntake> {
    anyhow::bail!("the FHIR intakes are not available in this build")
}
