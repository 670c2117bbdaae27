//! medtwin-hl7's integration tests, one binary: PCD-01 and PCD-04 round
//! trips and their fields, every message kind through an independent
//! validator (hl7apy), MLLP over real sockets.

mod acm;
mod common;
mod mllp;
mod pcd01;
mod robust;
mod validator;
