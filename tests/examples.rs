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
        "breaker   researcher-3/search: closed -> open",
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
    // Durations are numbers of milliseconds in fields named for their unit.
    assert!(!text.contains("\"secs\"") && !text.contains("\"nanos\""));
    for line in text.lines() {
        let value: serde_json::Value = serde_json::from_str(line)?;
        assert!(value["elapsed_ms"].is_number(), "{line}");
        if value["source"] == "ask" {
            assert!(value["latency_ms"].is_number(), "{line}");
        }
    }
    assert!(
        text.contains(r#""reason":{"kind":"timed_out","detail":10000}"#),
        "the hung researcher's exit, in milliseconds"
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
            .antecedent()
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
            "ok team/lead",
        ],
        "restart <- its stop <- the escalation <- the crash <- the ask <- the user's question"
    );
    // Every ask made inside a handler names the ask it serves, and its request: only the
    // user's questions (to the lead) start a chain.
    let requests: Vec<String> = events
        .iter()
        .filter_map(|event| match event {
            SystemEvent::Ask(ask) if ask.parent.is_none() => Some(ask.agent.to_string()),
            _ => None,
        })
        .collect();
    assert!(!requests.is_empty());
    assert!(
        requests.iter().all(|agent| agent == "lead"),
        "asks with no parent: {requests:?}"
    );
    for event in &events {
        let SystemEvent::Ask(ask) = event else {
            continue;
        };
        if let Some(request) = ask.request {
            let names_a_lead_ask = matches!(by_id.get(&request),
                Some(SystemEvent::Ask(asked)) if asked.agent.as_str() == "lead");
            assert!(names_a_lead_ask, "{ask:?} names a request not the lead's");
        }
    }
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

/// The examples' names: `examples/*.rs` and `examples/*/main.rs`.
fn example_names() -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("examples/")
        .flatten()
        .filter_map(|entry| {
            let path = entry.path();
            let stem = path.file_stem()?.to_str()?.to_string();
            let is_example = if path.is_dir() {
                path.join("main.rs").exists()
            } else {
                path.extension().is_some_and(|ext| ext == "rs")
            };
            is_example.then_some(stem)
        })
        .collect();
    names.sort();
    names
}

#[test]
fn every_example_takes_help_and_lists_its_options() {
    let names = example_names();
    assert!(names.len() >= 11, "{names:?}");
    for name in &names {
        for flag in ["--help", "-h"] {
            let output = Command::new(example(name))
                .arg(flag)
                .output()
                .expect("runs");
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert_eq!(output.status.code(), Some(0), "{name} {flag}: {stdout}");
            assert!(output.stderr.is_empty(), "{name} {flag} wrote to stderr");
            assert!(stdout.starts_with(&format!("{name}: ")), "{stdout}");
            assert!(stdout.contains(&format!("\nusage: {name}")), "{stdout}");
            assert!(stdout.contains("\noptions:\n"), "{stdout}");
            assert!(stdout.contains("  -h, --help  "), "{stdout}");
        }
        let output = Command::new(example(name))
            .args(["--no-such-option", "x"])
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{name}: {stderr}");
        assert!(stderr.contains(&format!("usage: {name}")), "{stderr}");
        assert!(output.stdout.is_empty(), "{name} ran despite a bad option");
    }
    for (name, options) in [
        (
            "research_team",
            &[
                "--seed N",
                "--observe",
                "--observe-snapshot",
                "--events FILE",
                "--journal FILE",
                "--run ID",
                "--pace MS",
                "--base-url URL",
                "--model NAME",
            ][..],
        ),
        (
            "durable_steps",
            &[
                "--steps N",
                "--agents K",
                "--journal FILE",
                "--no-journal",
                "--replay",
                "--progress",
                "--calls-log FILE",
                "--fsync-floor",
            ],
        ),
        (
            "chaos_soak",
            &[
                "--asks N",
                "--agents N",
                "--group-size N",
                "--fragile-groups N",
                "--in-flight N",
                "--timeout-ms N",
                "--seed N",
            ],
        ),
        ("metrics_prometheus", &["--port N", "--serve-for-secs N"]),
        ("otp_trace", &["FILE.scn"]),
    ] {
        let (_, help) = run(name, &["--help"]);
        for option in options {
            assert!(
                help.contains(&format!("\n  {option} ")),
                "{option}:\n{help}"
            );
        }
    }
}

/// The lines of the first `text` block after `heading` in the README.
fn readme_block(heading: &str) -> Vec<String> {
    let readme =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
            .expect("README.md");
    let section = &readme[readme.find(heading).expect("the section")..];
    let block = &section[section.find("```text\n").expect("a text block") + 8..];
    block[..block.find("```").expect("closed")]
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn the_readme_shows_a_real_run_of_research_team() {
    let (_, out) = run("research_team", &[]);
    let excerpt = readme_block("## What the main example shows");
    common::assert_excerpt_in(&excerpt, &out, "the README");
}

#[test]
fn research_team_prints_each_injected_fault_before_what_it_caused() {
    let (_, out) = run("research_team", &["--seed", "42"]);
    let lines: Vec<&str> = out.lines().collect();
    let mut checked = 0;
    for (at, line) in lines.iter().enumerate() {
        // `crash     team/researchers/researcher-2: panicked: injected panic (call 4)`
        let crashed = line
            .split_once("] crash     ")
            .filter(|(_, what)| what.contains("injected") || what.contains("timed out"))
            .and_then(|(_, what)| what.split(':').next())
            .and_then(|path| path.rsplit('/').next());
        // `lead discards a bad finding from researcher-3: ...`
        let discarded = line
            .split_once("lead discards a bad finding from ")
            .and_then(|(_, rest)| rest.split(':').next());
        let Some(agent) = crashed.or(discarded) else {
            continue;
        };
        let since_last_question = lines[..at]
            .iter()
            .rev()
            .take_while(|line| !line.contains("] question  "));
        assert!(
            since_last_question
                .into_iter()
                .any(|earlier| earlier.contains("inject    ")
                    && earlier.contains(&format!(" into {agent} "))),
            "{line:?} is not preceded by the fault injected into {agent}:\n{out}"
        );
        checked += 1;
    }
    assert_eq!(checked, 5, "3 crashes and 2 discarded findings:\n{out}");
}

#[test]
fn no_example_prints_debug_names() {
    // Debug forms of the types the examples print (variant names, Option, Duration's serde).
    let debug_names = [
        "Tokens",
        "Steps",
        "ConsecutiveFailures",
        "FailureRate",
        "OpenElapsed",
        "ProbesSucceeded",
        "ProbeFailed",
        "ForcedOpen",
        "HalfOpen",
        "StartFailed",
        "AutoShutdown",
        "Escalated",
        "TimedOut",
        "Panicked",
        "Stopped",
        "Started",
        "BudgetWarning",
        "Some(",
        "None",
        "secs",
        "nanos",
    ];
    let mut runs: Vec<(String, Vec<&str>)> = example_names()
        .into_iter()
        .filter(|name| !["chaos_soak", "otp_trace"].contains(&name.as_str()))
        .map(|name| (name, Vec::new()))
        .collect();
    runs.push((
        "chaos_soak".into(),
        vec!["--asks", "300", "--agents", "10", "--group-size", "5"],
    ));
    runs.push((
        "otp_trace".into(),
        vec!["crates/overseer-conformance/tests/otp/07_escalation_two_levels.scn"],
    ));
    for (name, args) in &runs {
        let (_, out) = run(name, args);
        for line in out.lines() {
            let words: Vec<&str> = line
                .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .collect();
            for debug in debug_names {
                let found = if debug.ends_with('(') {
                    line.contains(debug)
                } else {
                    words.contains(&debug)
                };
                assert!(!found, "{name} prints {debug:?}: {line}");
            }
        }
    }
}
