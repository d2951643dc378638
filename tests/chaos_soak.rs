//! Runs the chaos soak example briefly (20,000 asks into 100 agents, on the real clock) and
//! checks its report: every ask resolved, every injected fault seen, agents restarted, a
//! fragile group escalating, memory flat, nothing left alive. The full soak is the example
//! itself: `cargo run --release --example chaos_soak`.
//!
//! The soak is bounded by its count of asks, not by time: how long it takes (the report's
//! `wall time:` line) is a performance figure, for a benchmark, not for a test.
//!
//! `cargo test` builds the examples first; when running this file alone, build the example
//! too: `cargo build --example chaos_soak && cargo test --test chaos_soak`.

use std::process::Command;

mod common;

use common::example;

const ASKS: u64 = 20_000;

/// The report line starting with `label`, without the label.
fn line<'a>(report: &'a str, label: &str) -> &'a str {
    report
        .lines()
        .find_map(|line| line.strip_prefix(label))
        .unwrap_or_else(|| panic!("no line starts with {label:?}:\n{report}"))
        .trim()
}

/// The number right after `label` on its line.
fn number(report: &str, label: &str) -> u64 {
    let text = line(report, label);
    let digits: String = text.chars().take_while(char::is_ascii_digit).collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("{label:?} is not followed by a number: {text:?}"))
}

/// The count of `kind` in a line like `outcomes: corrupted 200, crashed 951, ok 17618`.
fn count_of(list: &str, kind: &str) -> u64 {
    list.split(", ")
        .find_map(|entry| entry.strip_prefix(kind)?.strip_prefix(' '))
        .and_then(|count| count.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_short_chaos_soak_resolves_every_ask_restarts_agents_and_keeps_memory_flat() {
    let path = example("chaos_soak");
    let output = Command::new(&path)
        .args([
            "--asks",
            &ASKS.to_string(),
            "--agents",
            "100",
            "--seed",
            "7",
        ])
        .output()
        .unwrap_or_else(|error| {
            panic!(
                "cannot run {} (build it: cargo build --example chaos_soak): {error}",
                path.display()
            )
        });
    let report = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "the soak failed: {:?}\nstdout:\n{report}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );

    assert_eq!(number(&report, "asks sent:"), ASKS, "{report}");
    assert_eq!(number(&report, "asks resolved:"), ASKS, "{report}");
    let outcomes = line(&report, "outcomes:");
    let kinds = ["ok", "corrupted", "crashed", "failed", "timeout"];
    for kind in kinds {
        assert!(count_of(outcomes, kind) > 0, "no {kind} outcome:\n{report}");
    }
    assert_eq!(
        kinds
            .iter()
            .map(|kind| count_of(outcomes, kind))
            .sum::<u64>(),
        ASKS,
        "only these outcomes, one per ask:\n{report}"
    );
    let injected = line(&report, "injected:");
    // An output is wrong only if a corruption was injected (an injected one may still lose
    // the race with its ask's deadline).
    assert!(
        count_of(outcomes, "corrupted") <= count_of(injected, "corrupt"),
        "{report}"
    );
    assert!(
        count_of(outcomes, "crashed") <= count_of(injected, "panic"),
        "only injected panics crash agents:\n{report}"
    );
    assert!(
        count_of(outcomes, "timeout") >= count_of(injected, "hang"),
        "every hang ends as a timeout:\n{report}"
    );

    let restarts = number(&report, "restarts:");
    assert!(restarts > 0, "{report}");
    let injector_restarts: u64 = line(&report, "restarts:")
        .rsplit(' ')
        .next()
        .and_then(|count| count.trim_end_matches(')').parse().ok())
        .expect("the injectors' count");
    assert_eq!(
        restarts, injector_restarts,
        "lifecycle events and fault injectors agree on restarts:\n{report}"
    );
    assert!(
        number(&report, "escalations:") > 0,
        "the fragile group escalates:\n{report}"
    );
    assert!(
        line(&report, "rss:").ends_with("memory check passed"),
        "{report}"
    );
    assert_eq!(
        number(&report, "live actors after shutdown:"),
        0,
        "{report}"
    );
    assert_eq!(line(&report, "result:"), "PASS", "{report}");
}
