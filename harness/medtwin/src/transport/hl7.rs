//! HL7 v2.6 out: ORU^R01 per IHE PCD-01 over MLLP
//! (`docs/transports/hl7-mllp.md`).

pub use super::select::Hl7Options;
use super::select::{AnyEncoder, EncodeContext, TargetConfig, Wired};

/// Opens the MLLP connections and returns the carrier and encoder.
pub async fn connect(_cfg: &TargetConfig, _ctx: &EncodeContext) -> anyhow::Result<Wired> {
    anyhow::bail!("the HL7 v2 / MLLP transport is not available in this build")
}

/// The HL7 encoder, for carriers that take any encoding.
pub fn encoder(_ctx: &EncodeContext) -> anyhow::Result<AnyEncoder> {
    anyhow::bail!("the HL7 encoding is not available in this build")
}
