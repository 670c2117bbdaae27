//! IHE ACM (PCD-04) alarms in: ORU^R40 over MLLP (`docs/intakes/acm.md`).

use super::{AnyIntake, IntakeContext};
use crate::scenario::interop::AcmOptions;

/// Opens the MLLP listener.
pub async fn open(_options: &AcmOptions, _ctx: &IntakeContext) -> anyhow::Result<AnyIntake> {
    anyhow::bail!("the ACM intake is not available in this build")
}
