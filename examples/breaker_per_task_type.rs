//! An agent that keeps failing at one kind of task stops getting that kind, while its other
//! work goes on; after the open duration a probe is let through and closes the breaker.
//! Every breaker transition is printed.
//!
//! ```text
//! cargo run --example breaker_per_task_type
//! ```

use std::time::Duration;

use overseer::breaker::{Backoff, BreakerConfig, BreakerRegistry};
use overseer::prelude::*;

#[allow(dead_code)] // each example uses part of it
#[path = "support/cli.rs"]
mod cli;

const CLI: cli::Cli = cli::Cli {
    name: "breaker_per_task_type",
    about: "an agent failing at one kind of task stops getting that kind; a probe closes the breaker later",
    synopsis: "",
    options: &[],
};

/// A researcher whose citation lookups fail until its upstream service recovers.
struct Researcher {
    citations_up: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

#[derive(Clone)]
enum Task {
    Summarize(&'static str),
    Cite(&'static str),
}

impl Agent for Researcher {
    type Task = Task;
    type Output = String;

    fn task_type(task: &Task) -> &'static str {
        match task {
            Task::Summarize(_) => "summarize",
            Task::Cite(_) => "cite",
        }
    }

    async fn handle(&mut self, _: &mut AgentContext, task: Task) -> Result<String, AgentError> {
        match task {
            Task::Summarize(topic) => Ok(format!("summary of {topic}")),
            Task::Cite(claim) => {
                if self.citations_up.load(std::sync::atomic::Ordering::SeqCst) {
                    Ok(format!("[1] a source for '{claim}'"))
                } else {
                    Err(AgentError::failed("citation service unavailable"))
                }
            }
        }
    }
}

fn print_breaker_events(events: &mut tokio::sync::broadcast::Receiver<SystemEvent>) {
    while let Ok(event) = events.try_recv() {
        if let SystemEvent::Breaker(moved) = event {
            println!(
                "   breaker {}/{}: {} -> {} ({}, failure rate {:.0} %{})",
                moved.agent,
                moved.task_type,
                moved.from,
                moved.to,
                moved.trigger,
                moved.failure_rate * 100.0,
                moved
                    .open_for
                    .map(|open| format!(", open for {open:?}"))
                    .unwrap_or_default()
            );
        }
    }
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    CLI.no_arguments();
    // The clock is paused so the open duration passes instantly and the run is deterministic.
    let breakers = BreakerRegistry::new(
        BreakerConfig::default()
            .consecutive_failures(Some(3))
            .open_duration(Backoff::fixed(Duration::from_secs(30)))
            .half_open_probes(1),
    )?;
    let system = System::builder().breakers(breakers).build()?;
    let citations_up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let up = citations_up.clone();
    let tree = SupervisorSpec::one_for_one("root").child(system.agent(AgentSpec::new(
        "researcher",
        move || Researcher {
            citations_up: up.clone(),
        },
    ))?);
    system.start(tree).await?;
    let mut events = system.subscribe();
    let researcher = system.agent_ref::<Researcher>("researcher")?;

    let show = |task: &Task, outcome: &Result<String, AskError>| {
        let (kind, what) = match task {
            Task::Summarize(topic) => ("summarize", *topic),
            Task::Cite(claim) => ("cite", *claim),
        };
        match outcome {
            Ok(answer) => println!("{kind:>9} {what:<22} -> {answer}"),
            Err(error) => println!("{kind:>9} {what:<22} -> error: {error}"),
        }
    };
    let script = [
        Task::Cite("LLMs hallucinate"),
        Task::Summarize("supervision trees"),
        Task::Cite("Erlang is 38 years old"),
        Task::Cite("OTP has 4 strategies"),
        Task::Cite("breakers save money"),
        Task::Summarize("circuit breakers"),
        Task::Cite("rejected without a call"),
    ];
    for task in script {
        let outcome = researcher.ask(task.clone()).await;
        show(&task, &outcome);
        print_breaker_events(&mut events);
    }

    println!("-- 30 s later; the citation service is back");
    tokio::time::advance(Duration::from_secs(30)).await;
    citations_up.store(true, std::sync::atomic::Ordering::SeqCst);
    for task in [Task::Cite("the probe"), Task::Cite("business as usual")] {
        let outcome = researcher.ask(task.clone()).await;
        show(&task, &outcome);
        print_breaker_events(&mut events);
    }

    println!("-- breakers:");
    for breaker in system.breakers().map(|b| b.snapshot()).unwrap_or_default() {
        println!(
            "   {} {} ({} calls in window)",
            breaker.key, breaker.state, breaker.calls_in_window
        );
    }
    system.shutdown(Duration::from_secs(5)).await?;
    Ok(())
}
