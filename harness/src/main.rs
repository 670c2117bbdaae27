//! `medtwin`: run scenarios against a backend and check its alerts.
//!
//! Exit codes: 0 every expectation held; 1 an expectation failed; 2 usage
//! or input error; 3 the harness itself failed.

use std::process::ExitCode;

use clap::Parser;
use medtwin_harness::cli::{self, Cli};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let code = if error.use_stderr() {
                cli::EXIT_INPUT
            } else {
                0
            };
            let _ = error.print();
            return ExitCode::from(code);
        }
    };
    ExitCode::from(cli::execute(cli))
}
