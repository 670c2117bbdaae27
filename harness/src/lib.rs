//! The medtwin harness: everything at the edge of the twin. It owns time
//! (the clock modes), sockets (transport out, alert intake in), formats,
//! the checker, reports, the embedded reference backend and the `medtwin`
//! command line.

pub mod backend;
pub mod bench;
pub mod checker;
pub mod cli;
pub mod clock;
pub mod compare;
pub mod digest;
pub mod html;
pub mod intake;
pub mod junit;
pub mod list;
pub mod report;
pub mod rules;
pub mod run;
pub mod scenario;
pub mod suite;
pub mod transport;
pub mod wire;
