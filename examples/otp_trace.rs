//! Runs an OTP conformance scenario against Overseer's supervisors and prints the trace.
//!
//! ```text
//! cargo run -q --release --example otp_trace -- crates/overseer-conformance/tests/otp/01_brief_example.scn
//! ```
//!
//! The scenario format and the trace format are those of `crates/overseer-conformance/tests/otp/` (recorded from real
//! Erlang/OTP 25): `diff` the output against the matching `.trace` file. A malformed scenario
//! prints a message naming the line on stderr and exits with status 2.

use std::process::ExitCode;

#[allow(dead_code)] // each example uses part of it
#[path = "support/cli.rs"]
mod cli;

const CLI: cli::Cli = cli::Cli {
    name: "otp_trace",
    about: "runs an OTP conformance scenario against Overseer's supervisors and prints the trace",
    synopsis: "FILE.scn",
    options: &[(
        "FILE.scn",
        "the scenario (format: crates/overseer-conformance/tests/otp/FORMAT.md)",
    )],
};

fn main() -> ExitCode {
    let mut args = CLI.args().into_iter();
    let (Some(path), None) = (args.next(), args.next()) else {
        CLI.fail("one scenario file is needed");
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) => {
            eprintln!("otp_trace: cannot read {path}: {error}");
            return ExitCode::from(2);
        }
    };
    match overseer_conformance::runner::run_text(&text) {
        Ok(trace) => {
            print!("{trace}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("otp_trace: {path}: {error}");
            ExitCode::from(2)
        }
    }
}
