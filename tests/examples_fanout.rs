//! Runs the fan_out example as a user would and checks its story: a lead asks four
//! researchers under a quorum of two; one crashes (and is restarted once), one hangs; the lead
//! goes on at the quorum, 3 s in, with a degraded answer that names both missing members.
//! `cargo test` builds the examples first; when running this file alone, build them too:
//! `cargo build --examples && cargo test --test examples_fanout`.

mod common;

use common::run_example as run;

#[test]
fn the_lead_goes_on_with_a_quorum_and_a_degraded_answer_while_one_researcher_hangs_and_one_crashes()
{
    let (_, out) = run("fan_out", &[]);
    let lines: Vec<&str> = out.lines().collect();
    let expected = [
        "== the cohort: quorum of 2 out of 4, decided Quorum",
        "researcher-1: answered: researcher-1 found a source on fan-in barriers",
        "researcher-2: replaced by (no finding)",
        "researcher-3: replaced by (no finding)",
        "researcher-4: answered: researcher-4 found a source on fan-in barriers",
        "missing: researcher-2: no answer when the quorum was reached",
        "missing: researcher-3: crashed (agent 'researcher-3' crashed: panicked: researcher-3 lost its connection)",
        "== the lead's answer after 3s",
        "2 findings on fan-in barriers [degraded]",
        "researcher-3 started 2 times (once, then once after its crash)",
    ];
    assert_eq!(lines, expected, "the story changed:\n{out}");
}
