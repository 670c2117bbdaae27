//! The medtwin harness: everything at the edge of the twin, and the
//! `medtwin` binary. It owns time (the clock modes), sockets (transport out,
//! alert intake in), formats, reports and the command line; the twin
//! (`medtwin-sim`), the judge (`medtwin-check`), the wire types
//! (`medtwin-wire`) and the reference backend (`medtwin-backend`) are
//! crates of their own.
//!
//! Rules of the house (ARCHITECTURE.md, checked by a test): nothing
//! imports [`cli`]; [`transport`], [`intake`] and [`report`] never import
//! [`run`]; no import circle between modules.

pub mod bench;
pub mod cli;
pub mod clock;
pub mod compare;
pub mod intake;
pub mod list;
pub mod load;
pub mod record;
pub mod replay;
pub mod report;
pub mod run;
pub mod scenario;
pub mod serve;
pub mod stop;
pub mod suite;
pub mod transport;
