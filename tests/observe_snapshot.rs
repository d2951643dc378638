//! Runs `research_team --observe-snapshot` and checks its final frame: the terminal view of
//! issues 8 and 23 (`overseer_observe::tui`), drawn as text at 80 columns instead of on a
//! terminal. `cargo test` builds the examples first;
//! when running this file alone, build them too:
//! `cargo build --examples && cargo test --test observe_snapshot`.

mod common;

fn snapshot(seed: &str) -> String {
    common::run_example("research_team", &["--observe-snapshot", "--seed", seed]).1
}

#[test]
fn the_final_frame_shows_the_tree_the_breakers_the_budget_and_the_log() {
    let frame = snapshot("42");
    let lines: Vec<&str> = frame.lines().collect();
    assert_eq!(lines.len(), 30, "a 30-row frame and nothing else:\n{frame}");
    assert!(
        lines.iter().all(|line| line.chars().count() <= 80),
        "80 columns:\n{frame}"
    );
    assert!(
        lines[0].contains("research team | seed 42"),
        "title bar first:\n{frame}"
    );
    for expected in [
        "supervision tree",
        "queue  asks/s",
        "team/",
        "  researchers/",
        "    researcher-1",
        "    researcher-3",
        "  citations",
        "breakers (agent/task type)",
        "citations/verify",
        "researcher-3/search",
        "budget (process tokens)",
        "of 800 tokens",
        "tier 1 (70%)",
        " log ",
        "answered",
    ] {
        assert!(
            frame.contains(expected),
            "missing {expected:?} in:\n{frame}"
        );
    }
    let researchers = lines
        .iter()
        .find(|line| line.contains("  researchers/"))
        .expect("researchers row");
    assert!(
        researchers.contains("running       1"),
        "the escalation restarted the researchers once:\n{frame}"
    );
    assert!(
        lines
            .iter()
            .any(|line| line.contains("    researcher-3") && line.contains("0/256")),
        "each agent shows its queue depth and capacity:\n{frame}"
    );
    // The last column of the agents' rows: asks per second over the last two minutes.
    let rates: Vec<f64> = lines
        .iter()
        .filter(|line| line.contains("/256"))
        .filter_map(|line| line.trim_end_matches(['│', ' ']).rsplit(' ').next())
        .filter_map(|cell| cell.parse().ok())
        .collect();
    assert_eq!(rates.len(), 5, "five agents with a throughput:\n{frame}");
    assert!(
        rates.iter().any(|rate| *rate > 0.0),
        "agents answered asks in the last two minutes:\n{frame}"
    );
    assert!(
        !frame.contains("== summary"),
        "the snapshot replaces the summary:\n{frame}"
    );
}

#[test]
fn the_final_frame_is_the_same_for_the_same_seed() {
    assert_eq!(snapshot("42"), snapshot("42"));
}
