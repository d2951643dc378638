//! Runs the pipeline and escalation examples as a user would and checks what they are meant to
//! show: exit status 0, which stages restart and in what order, and how far an escalation
//! climbs. `cargo test` builds the examples first; when running this file alone, build them
//! too: `cargo build --examples && cargo test --test examples_stages`.

mod common;

/// Runs the example, asserts it exits with 0, and returns its standard output.
fn run(name: &str) -> String {
    common::run_example(name, &[]).1
}

/// The index of the first line containing `needle`, failing with the whole output if none does.
fn line_of(out: &str, needle: &str) -> usize {
    out.lines()
        .position(|line| line.contains(needle))
        .unwrap_or_else(|| panic!("no line contains {needle:?}:\n{out}"))
}

#[test]
fn pipeline_restarts_validation_and_the_stages_after_it_but_never_extraction() {
    let out = run("pipeline_rest_for_one");

    assert!(
        out.contains("<- lost: agent 'validation' crashed: panicked"),
        "{out}"
    );
    assert!(
        !out.contains("pipeline/extraction restarted"),
        "extraction is never restarted:\n{out}"
    );
    for stage in ["validation", "enrichment", "report"] {
        assert_eq!(
            out.matches(&format!("pipeline/{stage} restarted")).count(),
            1,
            "{stage} restarts once:\n{out}"
        );
    }

    // The later stages stop in reverse start order, then all restart in start order.
    let order = [
        line_of(&out, "pipeline/validation stopped: panicked"),
        line_of(&out, "pipeline/report stopped: shutdown"),
        line_of(&out, "pipeline/enrichment stopped: shutdown"),
        line_of(&out, "pipeline/validation restarted"),
        line_of(&out, "pipeline/enrichment restarted"),
        line_of(&out, "pipeline/report restarted"),
    ];
    assert!(order.is_sorted(), "out of order {order:?}:\n{out}");

    // The pipeline carries on after the crash.
    assert!(
        line_of(&out, "<- report: INV-1006") > line_of(&out, "pipeline/report restarted"),
        "{out}"
    );
    assert!(
        out.contains("summary: 6 invoices: 4 reported, 1 rejected, 1 lost to a crash"),
        "{out}"
    );
    assert!(
        out.contains("restarts per stage: extraction 0, validation 1, enrichment 1, report 1"),
        "{out}"
    );
}

#[test]
fn escalation_climbs_from_the_leaf_through_the_middle_to_the_root() {
    let out = run("escalation");

    let escalated: Vec<&str> = out
        .lines()
        .filter_map(|line| line.split_once(" ESCALATED:"))
        .filter_map(|(before, _)| before.split_whitespace().last())
        .collect();
    assert_eq!(
        escalated,
        [
            "root/middle/leaf",
            "root/middle/leaf",
            "root/middle",
            "root/middle/leaf",
            "root/middle/leaf",
            "root/middle",
            "root",
        ],
        "{out}"
    );

    // The tree is drawn before the failures and after each escalation the root survived.
    assert_eq!(out.matches("root (supervisor)").count(), 4, "{out}");
    assert!(
        line_of(&out, "The tree before any failure:") < line_of(&out, "-- failure 1:"),
        "{out}"
    );
    assert!(
        out.contains("Escalation 1: leaf gave up; middle restarted leaf."),
        "{out}"
    );
    assert!(
        out.contains("Escalation 2: leaf, then middle gave up; root restarted middle."),
        "{out}"
    );
    assert!(
        out.contains("Escalation 4: leaf, then middle, then root gave up"),
        "{out}"
    );
    assert!(
        out.contains("-- failure 8:") && !out.contains("-- failure 9:"),
        "{out}"
    );

    // The final state: the root stopped and nothing is left to draw.
    assert!(
        line_of(&out, "The final tree:") > line_of(&out, " root stopped: shutdown"),
        "{out}"
    );
    assert!(
        out.contains("(nothing is running: the supervisor is not running)"),
        "{out}"
    );
    assert!(
        out.trim_end()
            .ends_with("Final state: the tree is stopped."),
        "{out}"
    );
}
