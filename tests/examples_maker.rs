//! Runs the maker_hanoi example as a user would, at 10 disks (1,023 steps): voting with the k
//! it chooses makes no error at p = 1 %, asking once per step at p = 5 % does, and the lines
//! the issue names are printed; with correlated errors plain voting fails and the length cap
//! or a second model recovers. `cargo test` builds the examples first; when running this file
//! alone, build them too: `cargo build --examples && cargo test --test examples_maker`.

mod common;

use common::run_example as run;

/// The number after `label: ` on the line that starts with it.
fn count(out: &str, label: &str) -> f64 {
    out.lines()
        .find_map(|line| line.strip_prefix(label)?.strip_prefix(": ")?.parse().ok())
        .unwrap_or_else(|| panic!("no {label:?} line:\n{out}"))
}

fn hanoi(args: &[&str]) -> String {
    let mut all = vec!["--disks", "10"];
    all.extend_from_slice(args);
    run("maker_hanoi", &all).1
}

#[test]
fn voting_with_the_chosen_k_solves_ten_disks_without_an_error_at_one_percent() {
    let out = hanoi(&["--error-rate", "0.01", "--seed", "1"]);
    for label in ["steps", "errors", "samples", "red_flags", "seconds"] {
        count(&out, label);
    }
    assert_eq!(count(&out, "steps"), 1023.0, "{out}");
    assert_eq!(count(&out, "errors"), 0.0, "{out}");
    assert!(out.contains("\nsolved: yes\n"), "{out}");
    // 1,023 votes with k = 3 (the smallest under 1 % expected errors: k = 2 expects 10 %).
    assert!(out.contains("\nk: 3\n"), "{out}");
    assert!(
        out.contains("first-to-ahead-by-3 within 12 samples"),
        "{out}"
    );
    let samples = count(&out, "samples");
    // 3.09 samples per step in theory (red flags included): within 5 %.
    assert!(
        (samples / 1023.0 - 3.092).abs() < 0.15,
        "{samples} samples:\n{out}"
    );
    // About 1 % of the samples are malformed or over-long, each discarded before it votes.
    let flags = count(&out, "red_flags");
    assert!((10.0..=70.0).contains(&flags), "{flags} red flags:\n{out}");
}

#[test]
fn the_same_seed_gives_the_same_run() {
    let strip = |out: String| -> Vec<String> {
        out.lines()
            .filter(|line| !line.starts_with("seconds") && !line.starts_with("us per"))
            .map(String::from)
            .collect()
    };
    let args = ["--error-rate", "0.05", "--seed", "9"];
    assert_eq!(strip(hanoi(&args)), strip(hanoi(&args)));
}

#[test]
fn a_larger_error_rate_gets_a_larger_k_and_still_no_error() {
    let out = hanoi(&["--error-rate", "0.05", "--seed", "2"]);
    assert!(out.contains("\nk: 4\n"), "{out}");
    assert_eq!(count(&out, "errors"), 0.0, "{out}");
}

#[test]
fn asking_once_per_step_at_five_percent_errs_early() {
    let out = hanoi(&["--error-rate", "0.05", "--seed", "1", "--no-vote"]);
    assert!(count(&out, "errors") > 0.0, "{out}");
    assert!(out.contains("\nsolved: no\n"), "{out}");
    // One sample per step, drawn again only when red-flagged.
    let samples = count(&out, "samples");
    assert!((1023.0..1023.0 * 1.05).contains(&samples), "{out}");
    let wrong = count(&out, "wrong decisions");
    // About 5 % of 1,023 steps decided wrong (51 expected; 4 standard deviations either way).
    assert!(
        (22.0..80.0).contains(&wrong),
        "{wrong} wrong decisions:\n{out}"
    );
}

#[test]
fn correlated_errors_beat_plain_voting_and_the_length_cap_or_a_second_model_recover() {
    // Seed 1 has two hard steps in 1,023.
    let plain = hanoi(&["--correlated", "--no-length-cap"]);
    assert!(count(&plain, "errors") > 0.0, "{plain}");
    assert!(count(&plain, "wrong decisions") >= 1.0, "{plain}");
    for recovery in [
        &["--correlated"][..],
        &["--correlated", "--no-length-cap", "--second-model"],
    ] {
        let out = hanoi(recovery);
        assert_eq!(count(&out, "errors"), 0.0, "{recovery:?}:\n{out}");
        assert_eq!(count(&out, "wrong decisions"), 0.0, "{recovery:?}:\n{out}");
    }
}
