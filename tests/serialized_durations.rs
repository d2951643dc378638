//! Every duration Overseer serializes is a number of milliseconds, in a field whose name ends
//! in `_ms` when the field has a name: in the events' JSON, the JSON-lines sink, and the
//! configuration and report types. (serde's own form, `{"secs":10,"nanos":0}`, hid the unit.)
//! The research team's event file is checked in `tests/examples.rs`.

use std::time::Duration;

use overseer::breaker::{Backoff, BreakerConfig};
use overseer::budget::{InFlightPolicy, KillSwitch, KillSwitchConfig, TripReason, TripReport};
use overseer::prelude::*;
use overseer_chaos::Fault;
use serde_json::{json, Value};

/// Fails with the path of every `secs`/`nanos` object, and of every `*_ms` field that is not a
/// number (or null).
fn assert_milliseconds(value: &Value) {
    fn walk(value: &Value, path: &str, problems: &mut Vec<String>) {
        match value {
            Value::Object(fields) => {
                if fields.contains_key("secs") || fields.contains_key("nanos") {
                    problems.push(format!("{path}: {value}"));
                }
                for (key, field) in fields {
                    if key.ends_with("_ms") && !(field.is_number() || field.is_null()) {
                        problems.push(format!("{path}.{key}: {field}"));
                    }
                    walk(field, &format!("{path}.{key}"), problems);
                }
            }
            Value::Array(items) => {
                for (index, item) in items.iter().enumerate() {
                    walk(item, &format!("{path}[{index}]"), problems);
                }
            }
            _ => {}
        }
    }
    let mut problems = Vec::new();
    walk(value, "$", &mut problems);
    assert!(problems.is_empty(), "not in milliseconds: {problems:?}");
}

#[test]
fn configurations_and_reports_write_durations_as_milliseconds() -> Result<(), serde_json::Error> {
    let config = BreakerConfig::default()
        .slow_call_threshold(Some(Duration::from_millis(1500)))
        .open_duration(Backoff::fixed(Duration::from_secs(30)));
    let value = serde_json::to_value(&config)?;
    assert_milliseconds(&value);
    assert_eq!(value["slow_call_threshold_ms"], 1500);
    assert_eq!(value["probe_timeout_ms"], 300_000);
    assert_eq!(value["open_duration"]["base_ms"], 30_000);
    assert_eq!(value["open_duration"]["max_ms"], 30_000);
    assert_eq!(serde_json::from_value::<BreakerConfig>(value)?, config);

    // A report as a switch without a ledger or an error-rate trigger makes it.
    let started = tokio::time::Instant::now();
    let config =
        KillSwitchConfig::new().in_flight(InFlightPolicy::CancelAfter(Duration::from_secs(10)));
    let switch = KillSwitch::new_at(config, started).expect("a valid configuration");
    let reason = TripReason::DeadlinePassed {
        time_limit: Duration::from_secs(3600),
    };
    switch.trip_at(reason, started + Duration::from_micros(3_600_000_250));
    let report = switch.report().expect("tripped").clone();
    let value = serde_json::to_value(&report)?;
    assert_milliseconds(&value);
    assert_eq!(
        value["reason"],
        json!({"kind": "deadline_passed", "time_limit_ms": 3_600_000})
    );
    assert_eq!(value["after_ms"], 3_600_000.25);
    assert_eq!(value["in_flight"], json!({"cancel_after": 10_000}));
    assert_eq!(serde_json::from_value::<TripReport>(value)?, report);

    let slow = Fault::Slow(Duration::from_millis(2000));
    assert_eq!(
        serde_json::to_value(slow)?,
        json!({"fault": "slow", "value": 2000})
    );
    let stop = Shutdown::Timeout(Duration::from_secs(5));
    assert_eq!(serde_json::to_value(stop)?, json!({"timeout": 5000}));
    let hung = ExitReason::TimedOut(Duration::from_secs(10));
    assert_eq!(
        serde_json::to_value(&hung)?,
        json!({"kind": "timed_out", "detail": 10_000})
    );
    assert_eq!(
        serde_json::from_value::<ExitReason>(json!({"kind": "timed_out", "detail": 10_000}))?,
        hung
    );
    let stalled = ExitReason::Stalled(Duration::from_secs(5));
    assert_eq!(
        serde_json::to_value(&stalled)?,
        json!({"kind": "stalled", "detail": 5_000})
    );
    Ok(())
}

struct Sleeper;

impl Agent for Sleeper {
    type Task = u64;
    type Output = u64;

    fn estimate(_: &u64) -> Usage {
        Usage::new(5, 5, 1)
    }

    async fn handle(&mut self, ctx: &mut AgentContext, millis: u64) -> Result<u64, AgentError> {
        if millis == 0 {
            return Err(AgentError::failed("nothing to wait for"));
        }
        tokio::time::sleep(Duration::from_millis(millis)).await;
        ctx.report_usage(Usage::new(5, 5, 1));
        Ok(millis)
    }
}

/// A hung ask, a breaker opening and the kill switch's trip, through the JSON-lines sink.
#[tokio::test(start_paused = true)]
async fn the_json_lines_sink_writes_every_duration_as_milliseconds(
) -> Result<(), Box<dyn std::error::Error>> {
    use overseer::budget::{Budget, Limits};

    let budget = Budget::builder()
        .process_limits(Limits::new().tokens(40))
        .build()?;
    let breakers = BreakerRegistry::new(
        BreakerConfig::default()
            .consecutive_failures(Some(1))
            .open_duration(Backoff::fixed(Duration::from_secs(30)).jitter(0.0)),
    )?;
    let system = System::builder()
        .ask_timeout(Duration::from_millis(250))
        .budget(budget)
        .breakers(breakers)
        .build()
        .unwrap();
    let written = Shared::default();
    let sink = overseer_observe::JsonLines::spawn(&system, written.clone());
    let tree = SupervisorSpec::one_for_one("root")
        .child(system.agent(AgentSpec::new("sleeper", || Sleeper))?);
    system.start(tree).await?;
    let sleeper = system.agent_ref::<Sleeper>("sleeper")?;
    assert!(sleeper.ask(1000).await.is_err(), "hangs past its deadline");
    assert!(
        sleeper.ask(0).await.is_err(),
        "fails, which opens the breaker"
    );
    assert!(
        matches!(sleeper.ask(1).await, Err(AskError::BreakerOpen { .. })),
        "refused by the open breaker"
    );
    tokio::time::sleep(Duration::from_secs(31)).await;
    for _ in 0..8 {
        if sleeper.ask(1).await.is_err() {
            break; // the budget ran out: the switch tripped
        }
    }
    system.shutdown(Duration::from_secs(5)).await?;
    drop(system);
    sink.await??;
    let text = String::from_utf8(written.0.lock().map_err(|_| "poisoned")?.clone())?;
    let events: Vec<Value> = text
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    for event in &events {
        assert_milliseconds(event);
        assert!(event["elapsed_ms"].is_number(), "{event}");
    }
    let find = |source: &str| {
        events
            .iter()
            .filter(move |event| event["source"] == source)
            .collect::<Vec<_>>()
    };
    assert!(find("lifecycle")
        .iter()
        .any(|event| event["kind"]["reason"] == json!({"kind": "timed_out", "detail": 250})));
    assert!(find("ask").iter().all(|ask| ask["latency_ms"].is_number()));
    assert!(find("breaker")
        .iter()
        .any(|moved| moved["to"] == "open" && moved["open_for_ms"] == 30_000));
    let trips = find("kill_switch_tripped");
    assert_eq!(trips.len(), 1, "{text}");
    assert!(trips[0]["report"]["after_ms"].is_number(), "{text}");
    Ok(())
}

/// A writer whose bytes the test can read once the sink is done.
#[derive(Clone, Default)]
struct Shared(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Shared {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
