//! medtwin's end-to-end tests, as a user runs it: the binary, real
//! servers on loopback, a real browser for the HTML report. One test binary
//! (modules below) so the crate is linked once.

mod architecture;
mod chaos;
mod common;
mod compare;
mod device_scenarios;
mod digests;
mod e2e;
mod faults;
mod interop;
mod interop_fhir;
mod interop_hl7;
mod interop_matrix;
mod interop_mqtt;
mod ledger;
mod load;
mod network_scenarios;
mod physiology_scenarios;
mod reports;
mod secure;
mod secure_auth;
mod secure_mqtt;
mod snapshots;
mod training;
mod training_browser;
mod waveform_stream;
mod waveforms;
