//! FHIR R4 out: Observations per the vital-signs profile, over REST
//! (`docs/transports/fhir.md`).

pub use super::select::FhirOptions;
use super::select::{AnyEncoder, EncodeContext, TargetConfig, Wired};

/// Creates the patients and devices on the FHIR server and returns the
/// carrier and encoder.
pub async fn connect(_cfg: &TargetConfig, _ctx: &EncodeContext) -> anyhow::Result<Wired> {
    anyhow::bail!("the FHIR transport is not available in this build")
}

/// The FHIR encoder, for carriers that take any encoding.
pub fn encoder(_ctx: &EncodeContext) -> anyhow::Result<AnyEncoder> {
    anyhow::bail!("the FHIR encoding is not available in this build")
}
