//! The JSON-lines sink writes every event of a run, in order, one parseable object a line.

use std::io::{self, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use overseer_agent::prelude::*;
use overseer_observe::JsonLines;
use overseer_supervisor::prelude::*;

/// A `Vec<u8>` the test can read while the sink owns a handle to it.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

struct Echo;

impl Agent for Echo {
    type Task = String;
    type Output = String;

    fn task_type(_: &String) -> &'static str {
        "echo"
    }

    async fn handle(&mut self, _: &mut AgentContext, task: String) -> Result<String, AgentError> {
        if task == "fail" {
            return Err(AgentError::failed("asked to fail"));
        }
        Ok(task)
    }
}

#[tokio::test]
async fn every_event_is_one_json_line_in_order() -> Result<(), Box<dyn std::error::Error>> {
    let system = System::builder().build().unwrap();
    let out = Shared::default();
    let sink = JsonLines::spawn(&system, out.clone());
    let mut events = system.subscribe();
    system
        .start(
            SupervisorSpec::one_for_one("root")
                .child(system.agent(AgentSpec::new("echo", || Echo))?),
        )
        .await?;
    let echo = system.agent_ref::<Echo>("echo")?;
    echo.ask("hello".to_string()).await?;
    assert!(echo.ask("fail".to_string()).await.is_err());
    system.shutdown(Duration::from_secs(5)).await?;

    let lines = sink.await??;
    let mut expected = Vec::new();
    while let Ok(event) = events.recv().await {
        expected.push(event);
    }
    let text = String::from_utf8(out.0.lock().unwrap().clone())?;
    let parsed: Vec<SystemEvent> = text
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    assert_eq!(lines, parsed.len() as u64);
    assert_eq!(parsed, expected, "the same events, in the same order");
    assert!(text.ends_with('\n'));

    // Each line leads with its event's wall-clock time: the system's origin plus `elapsed`.
    for (line, event) in text.lines().zip(&parsed) {
        let value: serde_json::Value = serde_json::from_str(line)?;
        let stamp = value["timestamp"]
            .as_str()
            .ok_or("a timestamp on every line")?;
        assert!(line.starts_with(&format!(r#"{{"timestamp":"{stamp}","source":"#)));
        assert!(stamp.ends_with('Z') && stamp.len() == "2026-11-22T09:14:03.000389Z".len());
        let at = humantime::parse_rfc3339(stamp)?;
        let expected = system.timestamp(event);
        let gap = expected
            .duration_since(at)
            .unwrap_or_else(|early| early.duration());
        assert!(gap < Duration::from_micros(1), "{stamp} for {expected:?}");
    }

    // What the run looks like: two starts, two asks (ok, failed), two stops.
    let sources: Vec<&str> = text
        .lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            match value["source"].as_str().unwrap() {
                "lifecycle" => "lifecycle",
                "ask" => "ask",
                _ => "other",
            }
        })
        .collect();
    assert_eq!(
        sources,
        [
            "lifecycle",
            "lifecycle",
            "ask",
            "ask",
            "lifecycle",
            "lifecycle"
        ]
    );
    let asks: Vec<_> = parsed
        .iter()
        .filter_map(|event| match event {
            SystemEvent::Ask(ask) => Some((ask.agent.to_string(), ask.outcome.is_ok())),
            _ => None,
        })
        .collect();
    assert_eq!(
        asks,
        [("echo".to_string(), true), ("echo".to_string(), false)]
    );
    Ok(())
}
