//! FHIR R4 (4.0.1) as medtwin speaks it: a format crate, pure functions
//! between medtwin's own wire types ([`medtwin_wire`]) and FHIR resources.
//!
//! - [`observation`]: telemetry as vital-signs `Observation`s (LOINC,
//!   UCUM, MDC beside LOINC, the R4 vital-signs and HL7 CGM profiles), and
//!   back.
//! - [`admin`]: `Patient` and `Device`, conditional-create searches,
//!   name-derived UUIDs.
//! - [`bundle`]: transaction `Bundle`s and their responses,
//!   `OperationOutcome`.
//! - [`alert`]: alerts as `DetectedIssue`, `Flag` and `Communication`, and
//!   back.
//! - [`subscription`]: the R4 Subscriptions Backport IG's `Subscription`
//!   and notification Bundles.
//!
//! Every code, system and profile is in [`codes`], each cited in
//! `docs/references.md` ("FHIR R4").

pub mod admin;
pub mod alert;
pub mod bundle;
pub mod codes;
pub mod error;
pub mod model;
pub mod observation;
pub mod subscription;

pub use error::FhirError;
