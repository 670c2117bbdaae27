//! `medtwin`: run scenarios against a backend and check its alerts.
//!
//! Exit codes: 0 every expectation held; 1 an expectation failed; 2 usage
//! or input error; 3 the harness itself failed.

fn main() -> std::process::ExitCode {
    medtwin::cli::main()
}
