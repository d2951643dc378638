//! Runs the goodput example at 400 tasks as a user would and checks its targets: Overseer with
//! everything finishes at least 99 % of the tasks correctly, delivers no wrong answer (every
//! corruption injected is one its validators can catch), and spends fewer tokens than naive
//! retry; the table has a row per variant. `cargo test` builds the examples first; when running
//! this file alone, build them too: `cargo build --examples && cargo test --test
//! examples_goodput`.

mod common;

use common::run_example as run;

/// One variant's summary line: `NAME: correct C wrong W failed F tokens T`.
#[derive(Debug)]
struct Summary {
    correct: u64,
    wrong: u64,
    failed: u64,
    tokens: u64,
}

fn summary(out: &str, name: &str) -> Summary {
    let prefix = format!("{name}: ");
    let line = out
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no summary of {name:?}:\n{out}"));
    let fields: Vec<&str> = line.split_whitespace().collect();
    let field = |key: &str| -> u64 {
        let at = fields
            .iter()
            .position(|field| *field == key)
            .unwrap_or_else(|| panic!("no {key} in {line:?}"));
        fields[at + 1]
            .parse()
            .unwrap_or_else(|_| panic!("{key} is not a number in {line:?}"))
    };
    Summary {
        correct: field("correct"),
        wrong: field("wrong"),
        failed: field("failed"),
        tokens: field("tokens"),
    }
}

#[test]
fn overseer_with_everything_answers_99_percent_correctly_delivers_no_wrong_answer_and_spends_less_than_naive_retry(
) {
    let tasks = 400;
    let (_, out) = run("goodput", &["--tasks", &tasks.to_string(), "--seed", "42"]);
    let header = "| variant | correct | wrong | failed | p50 | p99 | model calls | tokens | wasted tokens | budget overshoot |";
    assert!(out.lines().any(|line| line == header), "no table:\n{out}");
    for name in [
        "plain tokio",
        "naive retry x3",
        "overseer: supervision",
        "overseer: everything",
    ] {
        assert!(
            out.lines()
                .any(|line| line.starts_with(&format!("| {name} |"))),
            "no row for {name}:\n{out}"
        );
        let s = summary(&out, name);
        assert_eq!(s.correct + s.wrong + s.failed, tasks, "{name}: {s:?}");
    }
    let everything = summary(&out, "overseer: everything");
    let naive = summary(&out, "naive retry x3");
    let plain = summary(&out, "plain tokio");
    assert!(
        everything.correct * 100 >= tasks * 99,
        "fewer than 99 % correct: {everything:?}\n{out}"
    );
    assert_eq!(everything.wrong, 0, "a wrong answer delivered:\n{out}");
    assert!(
        everything.tokens < naive.tokens,
        "spent more than naive retry ({everything:?} against {naive:?}):\n{out}"
    );
    // The faults are real: without the validators, corrupted answers get through.
    assert!(
        plain.wrong > 0 && naive.wrong > 0,
        "no corruption reached the unguarded variants:\n{out}"
    );
    assert!(plain.failed > 0, "no fault failed a plain task:\n{out}");
    // And variant 4's machinery met them: its validators refused outputs, its loop detector
    // stopped the looper, and backups answered for it.
    let caught = out
        .lines()
        .find_map(|line| line.strip_prefix("overseer: everything caught: "))
        .unwrap_or_else(|| panic!("no caught line:\n{out}"));
    let count = |what: &str| -> u64 {
        let words: Vec<&str> = caught.split(", ").collect();
        words
            .iter()
            .find(|part| part.contains(what))
            .and_then(|part| part.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {what} in {caught:?}"))
    };
    assert!(count("refused by validators") > 0, "{caught}");
    assert!(count("loop verdicts") > 0, "{caught}");
    assert!(count("from a backup") > 0, "{caught}");
}
