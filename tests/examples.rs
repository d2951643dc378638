//! Runs the examples as a user would and checks their outcomes: exit status 0 and the
//! restarts and escalations they are meant to show. `cargo test` builds the examples first;
//! when running this file alone, build them too: `cargo build --examples && cargo test --test examples`.

mod common;

use std::process::Command;

use common::{example, run_example as run};

#[test]
fn supervision_tree_heals_restarts_and_escalates_once() {
    let (_, out) = run("supervision_tree", &[]);
    assert!(
        out.contains("root/planner stopped: failed: planner returned an error"),
        "{out}"
    );
    assert!(
        out.contains("root/researchers/reader stopped: panicked: reader panicked"),
        "{out}"
    );
    assert_eq!(
        out.matches("root/researchers gave up").count(),
        1,
        "researchers escalate exactly once:\n{out}"
    );
    assert!(
        !out.contains("root gave up"),
        "the root absorbs the escalation:\n{out}"
    );
    assert!(out.trim_end().ends_with("root stopped: shutdown"), "{out}");
}

#[test]
fn agents_quickstart_restarts_the_crashed_agent_while_the_other_serves() {
    let (_, out) = run("agents_quickstart", &[]);
    assert!(
        out.contains("<- writer failed: agent 'writer' crashed: panicked"),
        "{out}"
    );
    assert!(
        out.contains("team/writer stopped: panicked: cannot draft about nothing"),
        "{out}"
    );
    assert_eq!(
        out.matches("team/writer started").count(),
        2,
        "started, then restarted:\n{out}"
    );
    assert_eq!(
        out.matches("team/reviewer started").count(),
        1,
        "never restarted:\n{out}"
    );
    assert!(
        out.contains("<- draft #1: agents should fail loudly"),
        "the new incarnation serves:\n{out}"
    );
}

#[test]
fn otp_trace_prints_a_scenario_trace_and_rejects_malformed_input() {
    let (_, out) = run(
        "otp_trace",
        &["crates/overseer-conformance/tests/otp/07_escalation_two_levels.scn"],
    );
    let expected = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("crates/overseer-conformance/tests/otp/07_escalation_two_levels.trace"),
    )
    .expect("trace");
    assert_eq!(out, expected);

    let bad = std::env::temp_dir().join(format!("overseer-bad-{}.scn", std::process::id()));
    std::fs::write(&bad, "sup root one_for_none\n").expect("temp file");
    let output = Command::new(example("otp_trace"))
        .arg(&bad)
        .output()
        .expect("runs");
    let _ = std::fs::remove_file(&bad);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("line 1"), "{stderr}");
    assert!(output.stdout.is_empty());
}

#[test]
fn kill_switch_runaway_warns_trips_and_stays_within_the_limit() {
    let (_, out) = run("kill_switch_runaway", &[]);
    for tier in ["tier 1 (70%)", "tier 2 (85%)", "tier 3 (90%)"] {
        assert_eq!(out.matches(tier).count(), 1, "{tier} fires once:\n{out}");
    }
    assert_eq!(out.matches("KILL SWITCH").count(), 1, "{out}");
    assert!(out.contains("tree stopped: runaways"), "{out}");
    assert_eq!(
        out.matches("then: the kill switch has tripped").count(),
        3,
        "{out}"
    );
    let spend = out
        .lines()
        .find_map(|line| line.strip_prefix("final spend: "))
        .expect("final spend printed");
    let tokens: u64 = spend.split(' ').next().unwrap().parse().unwrap();
    assert!(tokens <= 2_000, "{spend}");
}

#[test]
fn breaker_per_task_type_opens_for_one_kind_only_and_a_probe_closes_it() {
    let (_, out) = run("breaker_per_task_type", &[]);
    let transitions: Vec<&str> = out
        .lines()
        .filter(|line| line.contains("breaker researcher/"))
        .collect();
    assert_eq!(transitions.len(), 3, "{out}");
    assert!(
        transitions[0].contains("researcher/cite: closed -> open"),
        "{out}"
    );
    assert!(transitions[1].contains("open -> half_open"), "{out}");
    assert!(transitions[2].contains("half_open -> closed"), "{out}");
    assert_eq!(out.matches("not taking 'cite' tasks").count(), 2, "{out}");
    assert!(
        out.contains("summarize circuit breakers       -> summary of circuit breakers"),
        "{out}"
    );
}

#[test]
fn research_team_heals_itself_and_is_deterministic_for_a_seed() {
    let (_, first) = run("research_team", &["--seed", "42"]);
    let (_, again) = run("research_team", &["--seed", "42"]);
    assert_eq!(first, again, "the same seed gives the same run");
    for expected in [
        "crash     team/researchers/researcher-1: panicked: injected panic",
        "crash     team/researchers/researcher-2: timed out after 10s",
        "lead discards a bad finding from researcher-3",
        "breaker   citations/verify: closed -> open",
        "escalate  team/researchers gave up",
        "restart   team/researchers",
        "budget    tier 1 (70%)",
        "breaker   researcher-3/search: half_open -> closed",
        "== summary (seed 42)",
        "answer: Supervisors restart what fails",
    ] {
        assert!(
            first.contains(expected),
            "missing {expected:?} in:\n{first}"
        );
    }
    let spend = first
        .lines()
        .find_map(|line| line.strip_prefix("spend: "))
        .expect("spend printed");
    let tokens: u64 = spend.split(' ').next().unwrap().parse().unwrap();
    assert!(tokens <= 800, "{spend}");
    let (_, other) = run("research_team", &["--seed", "7"]);
    assert_ne!(first, other, "another seed gives another run");
}

#[test]
fn research_team_writes_every_event_as_a_json_line_from_which_the_escalation_is_traced_back(
) -> Result<(), Box<dyn std::error::Error>> {
    use std::collections::HashMap;

    use overseer::agent::SystemEvent;
    use overseer::supervisor::EventKind;

    let file = std::env::temp_dir().join(format!("research_team-{}.jsonl", std::process::id()));
    let (_, out) = run(
        "research_team",
        &[
            "--seed",
            "42",
            "--events",
            file.to_str().ok_or("utf-8 temp dir")?,
        ],
    );
    let text = std::fs::read_to_string(&file)?;
    std::fs::remove_file(&file)?;
    let mut events = Vec::new();
    for line in text.lines() {
        let value: serde_json::Value = serde_json::from_str(line)?;
        let stamp = value["timestamp"]
            .as_str()
            .ok_or("a timestamp on every line")?;
        humantime::parse_rfc3339(stamp)?;
        events.push(serde_json::from_str::<SystemEvent>(line)?);
    }
    assert!(
        out.contains(&format!("{} events written to", events.len())),
        "{out}"
    );
    let by_id: HashMap<_, _> = events.iter().map(|event| (event.id(), event)).collect();
    assert_eq!(by_id.len(), events.len(), "ids are unique");
    for event in &events {
        if let Some(cause) = event.caused_by() {
            assert!(
                by_id.contains_key(&cause),
                "{event:?} names a missing cause"
            );
        }
    }

    // From the researchers' restart back to the ask that started it all.
    let restart = events
        .iter()
        .rfind(|event| {
            matches!(event, SystemEvent::Lifecycle(lifecycle)
                if lifecycle.path.to_string() == "team/researchers"
                    && lifecycle.kind == EventKind::Started)
        })
        .ok_or("the researchers started")?;
    let mut chain = Vec::new();
    let mut next = Some(restart);
    while let Some(event) = next {
        let what = match event {
            SystemEvent::Lifecycle(lifecycle) => match &lifecycle.kind {
                EventKind::Started => "started",
                EventKind::Stopped { .. } => "stopped",
                EventKind::Escalated { .. } => "escalated",
                _ => "other lifecycle",
            },
            SystemEvent::Ask(ask) => ask.outcome.kind().unwrap_or("ok"),
            _ => "other",
        };
        let path = event.path().map(ToString::to_string).unwrap_or_default();
        chain.push(format!("{what} {path}"));
        next = event
            .caused_by()
            .and_then(|cause| by_id.get(&cause).copied());
    }
    assert_eq!(
        chain,
        [
            "started team/researchers",
            "stopped team/researchers",
            "escalated team/researchers",
            "stopped team/researchers/researcher-2",
            "crashed team/researchers/researcher-2",
        ],
        "restart <- its stop <- the escalation <- the crash <- the ask"
    );
    Ok(())
}

#[test]
fn tracing_json_prints_one_json_object_per_line_with_ask_spans() {
    let (_, out) = run("tracing_json", &[]);
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    let asks: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|line| line["span"]["name"] == "ask")
        .collect();
    assert_eq!(asks.len(), 3, "{out}");
    assert_eq!(asks[0]["span"]["outcome"], "ok");
    assert_eq!(asks[0]["span"]["input_tokens"], 3);
    assert_eq!(asks[1]["span"]["outcome"], "crashed");
    assert!(lines.iter().any(|line| line["fields"]["event"] == "stopped"
        && line["fields"]["reason"] == "failed: nothing to echo"));
}
