//! Runs the byzantine team as a user would: every corruption of the researcher is caught (by
//! the validator, the inspector or the vote's red flags) and every question ends answered
//! right, and the vote decides; the looping agent is stopped at its third identical search, not before. `cargo test`
//! builds the examples first; when running this file alone, build them too:
//! `cargo build --examples && cargo test --test examples_byzantine`.

mod common;

use common::run_example as run;

/// The number after `label: ` on the line that starts with it.
fn count(out: &str, label: &str) -> u32 {
    out.lines()
        .find_map(|line| line.strip_prefix(label)?.strip_prefix(": ")?.parse().ok())
        .unwrap_or_else(|| panic!("no {label:?} line:\n{out}"))
}

fn assert_caught(out: &str) {
    // Each question ends answered right (over-long answers are right, and red-flagged only in
    // a vote), first time or asked again with the reason.
    for n in 1..=10 {
        let last = out
            .lines()
            .rfind(|line| line.starts_with(&format!("q{n}: ")))
            .unwrap_or_else(|| panic!("no line for q{n}:\n{out}"));
        assert!(last.contains(r#"answered {"answer": 42"#), "{last}\n{out}");
    }
    assert!(
        out.contains(
            "theory: at p = 0.267 per sample, first-to-ahead-by-3 errs 4.59 % of the time"
        ),
        "{out}"
    );
    assert!(out.contains("vote: 4"), "a vote decided:\n{out}");
    assert_eq!(count(out, "loops"), 1, "{out}");
    assert!(
        out.contains("looper: search {\"page\":1,\"query\":\"the answer\"} (call 3)"),
        "{out}"
    );
    assert!(
        !out.contains("(call 4)"),
        "stopped at the third call:\n{out}"
    );
    assert!(
        out.contains("looper stopped: permanent: loop detected: repeated call: looper called search with the same arguments"),
        "{out}"
    );
    assert!(out.contains("3 times in a row (threshold 3)"), "{out}");
}

#[test]
fn byzantine_team_catches_every_corruption_and_the_loop() {
    let (_, out) = run("byzantine_team", &[]);
    assert_caught(&out);
    assert!(out.contains("vote winner: 42"), "{out}");
    // With the default seed each mechanism catches something.
    assert_eq!(count(&out, "validator rejections"), 1, "{out}");
    assert_eq!(count(&out, "inspector rejections"), 3, "{out}");
    assert_eq!(count(&out, "vote red flags"), 1, "{out}");
    assert!(
        out.contains("refused: not a byzantine_team::Answer"),
        "{out}"
    );
    assert!(
        out.contains("refused: the answer is not 41: check the sources again"),
        "{out}"
    );
    assert!(
        out.contains("red flag (too long): more than 40 characters"),
        "{out}"
    );
    assert!(
        out.contains("vote decided: 42 by 3 after 6 of 15 samples (1 red-flagged)"),
        "{out}"
    );
}

#[test]
fn byzantine_team_is_caught_whatever_the_seed() {
    for seed in ["1", "2", "3"] {
        let (_, out) = run("byzantine_team", &["--seed", seed]);
        assert!(out.starts_with(&format!("seed {seed}\n")), "{out}");
        assert_caught(&out);
    }
}
