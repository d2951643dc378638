//! Every scenario recorded from real Erlang/OTP 25 (in the conformance crate's `tests/otp/`,
//! their one copy) must produce its `.trace` line for line when run against Overseer's
//! supervisors.

use std::path::{Path, PathBuf};

use overseer_conformance::runner::{run_text_with, Restarts};

/// The scenarios recorded from OTP, with `FORMAT.md` and `SEMANTICS.md`: the conformance crate
/// owns them (its own tests read them too).
const RECORDED: &str = "crates/overseer-conformance/tests/otp";

fn scenarios(folder: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(folder);
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "scn"))
        .collect();
    found.sort();
    found
}

/// Runs each scenario and returns a description of every mismatch.
fn mismatches(folder: &str) -> (usize, Vec<String>) {
    mismatches_with(folder, Restarts::NewActor)
}

/// [`mismatches`] with the workers restarted as `restarts` says.
fn mismatches_with(folder: &str, restarts: Restarts) -> (usize, Vec<String>) {
    let files = scenarios(folder);
    let mut failures = Vec::new();
    for scenario in &files {
        let text = std::fs::read_to_string(scenario).expect("scenario readable");
        let expected = std::fs::read_to_string(scenario.with_extension("trace"))
            .expect("every scenario has a .trace");
        let actual = match run_text_with(&text, restarts) {
            Ok(trace) => trace,
            Err(error) => {
                failures.push(format!("{}: run failed: {error}", scenario.display()));
                continue;
            }
        };
        let expected_lines: Vec<&str> = expected.lines().collect();
        let actual_lines: Vec<&str> = actual.lines().collect();
        if expected_lines != actual_lines {
            let first = expected_lines
                .iter()
                .zip(&actual_lines)
                .position(|(e, a)| e != a)
                .unwrap_or(expected_lines.len().min(actual_lines.len()));
            failures.push(format!(
                "{}: first difference at line {}\n--- expected\n{}\n--- actual\n{}",
                scenario.display(),
                first + 1,
                expected,
                actual
            ));
        }
    }
    (files.len(), failures)
}

#[test]
fn every_recorded_otp_scenario_is_reproduced_line_for_line() {
    let (count, failures) = mismatches(RECORDED);
    assert_eq!(count, 14, "the 14 recorded scenarios are in {RECORDED}");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Scenarios whose traces we derived by hand from `SEMANTICS.md` (beside the recorded ones) and
/// OTP's source (not recorded from a real OTP run): the surprises of section 10 and the child
/// API's errors.
#[test]
fn every_derived_scenario_follows_otp_semantics() {
    let (count, failures) = mismatches("tests/otp_derived");
    assert!(count >= 12, "derived scenarios are in tests/otp_derived");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The same scenarios with every worker restarted in place (its actor kept, its state rebuilt):
/// a faster restart must not change a single line of what OTP would do.
#[test]
fn every_scenario_is_reproduced_with_workers_restarted_in_place() {
    for folder in [RECORDED, "tests/otp_derived"] {
        let (count, failures) = mismatches_with(folder, Restarts::InPlace);
        assert!(count >= 12, "scenarios are in {folder}");
        assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    }
}

/// The same scenarios with workers that carry out their own one_for_one restarts when the
/// supervisor lets them (no message to the supervisor and back): still not a line different.
#[test]
fn every_scenario_is_reproduced_with_workers_that_restart_themselves() {
    for folder in [RECORDED, "tests/otp_derived"] {
        let (count, failures) = mismatches_with(folder, Restarts::InPlaceHere);
        assert!(count >= 12, "scenarios are in {folder}");
        assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    }
}
