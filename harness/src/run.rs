//! `medtwin run` and `medtwin reference-backend` (being written).

use crate::cli::{BackendArgs, RunArgs, EXIT_HARNESS};

/// Entry point of `medtwin run`.
pub fn main(_args: RunArgs) -> u8 {
    EXIT_HARNESS
}

/// Entry point of `medtwin reference-backend`.
pub fn reference_backend_main(_args: BackendArgs) -> u8 {
    EXIT_HARNESS
}
