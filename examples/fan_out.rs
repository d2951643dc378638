//! Fan-out that survives its members: a lead asks four researchers at once and goes on as soon
//! as a quorum of them has answered, while one researcher hangs and another crashes. The
//! crash is counted once (its supervisor restarts it), the hang is given up at the decision,
//! and both are replaced by their declared defaults, so the lead's answer is marked degraded
//! with what is missing: no caller waits for the hung researcher, nothing is invented for it.
//!
//! ```text
//! cargo run --example fan_out
//! ```
//!
//! Runs on a paused tokio clock: the times printed are the run's own, the same on every machine.

use std::time::Duration;

use overseer::agent::{CohortDecision, MemberResult, SystemEvent};
use overseer::prelude::*;

#[allow(dead_code)] // each example uses part of it
#[path = "support/cli.rs"]
mod cli;

const CLI: cli::Cli = cli::Cli {
    name: "fan_out",
    about: "a lead fans out to four researchers and goes on at a quorum of two while one hangs and one crashes, with a degraded answer that names what is missing",
    synopsis: "",
    options: &[],
};

/// How a researcher behaves: it answers after a delay, hangs, or crashes.
#[derive(Clone, Copy)]
enum Behaviour {
    Answers { after_secs: u64 },
    Hangs,
    Crashes { after_secs: u64 },
}

struct Researcher {
    behaviour: Behaviour,
}

impl Agent for Researcher {
    type Task = String;
    type Output = String;

    fn task_type(_: &String) -> &'static str {
        "research"
    }

    async fn handle(
        &mut self,
        ctx: &mut AgentContext,
        topic: String,
    ) -> Result<String, AgentError> {
        match self.behaviour {
            Behaviour::Answers { after_secs } => {
                tokio::time::sleep(Duration::from_secs(after_secs)).await;
                ctx.report_usage(Usage::new(120, 40, 0));
                Ok(format!("{} found a source on {topic}", ctx.name()))
            }
            Behaviour::Hangs => {
                std::future::pending::<()>().await;
                unreachable!("a pending future never completes")
            }
            Behaviour::Crashes { after_secs } => {
                tokio::time::sleep(Duration::from_secs(after_secs)).await;
                panic!("{} lost its connection", ctx.name())
            }
        }
    }
}

/// The lead: fans the topic out to the researchers and writes up what a quorum found.
struct Lead {
    researchers: Vec<AgentRef<Researcher>>,
}

impl Agent for Lead {
    type Task = String;
    type Output = String;

    async fn handle(&mut self, _: &mut AgentContext, topic: String) -> Result<String, AgentError> {
        // Two critical researchers and two optional ones, whose place a neutral default takes.
        let [first, second, third, fourth] = &self.researchers[..] else {
            return Err(AgentError::permanent("the lead needs four researchers"));
        };
        let none = || "(no finding)".to_string();
        let outcome = Cohort::quorum(2)
            .member(first, topic.clone())
            .optional(second, topic.clone(), none())
            .optional(third, topic.clone(), none())
            .member(fourth, topic.clone())
            .run_within(Duration::from_secs(30))
            .await
            .map_err(|error| AgentError::failed(error.to_string()))?;
        println!(
            "== the cohort: quorum of 2 out of 4, decided {:?}",
            outcome.decision
        );
        for member in &outcome.members {
            let result = match &member.result {
                MemberResult::Ok(finding) => format!("answered: {finding}"),
                MemberResult::Replaced { default, .. } => format!("replaced by {default}"),
                MemberResult::Failed(error) => format!("failed: {error}"),
                MemberResult::NotAnswered => "not answered".to_string(),
            };
            println!("{}: {result}", member.agent);
        }
        for missing in outcome.missing_members() {
            let why = match &missing.error {
                Some(error) => format!("{} ({})", error.kind(), error),
                None => "no answer when the quorum was reached".to_string(),
            };
            println!("missing: {}: {why}", missing.agent);
        }
        if outcome.decision != CohortDecision::Quorum {
            return Err(AgentError::failed("no quorum"));
        }
        let findings: Vec<&String> = outcome.outputs().map(|(_, finding)| finding).collect();
        let mark = if outcome.degraded { " [degraded]" } else { "" };
        Ok(format!("{} findings on {topic}{mark}", findings.len()))
    }
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    CLI.no_arguments();
    std::panic::set_hook(Box::new(|_| {})); // the crash is reported below, by the cohort
    let system = System::builder()
        .ask_timeout(Duration::from_secs(60))
        .build()?;
    let mut events = system.subscribe();
    let behaviours = [
        Behaviour::Answers { after_secs: 2 },
        Behaviour::Hangs,
        Behaviour::Crashes { after_secs: 1 },
        Behaviour::Answers { after_secs: 3 },
    ];
    let mut researchers = SupervisorSpec::one_for_one("researchers");
    for (i, behaviour) in behaviours.into_iter().enumerate() {
        let name = format!("researcher-{}", i + 1);
        researchers = researchers
            .child(system.agent(AgentSpec::new(name, move || Researcher { behaviour }))?);
    }
    let refs: Vec<AgentRef<Researcher>> = (1..=4)
        .map(|i| system.agent_ref::<Researcher>(&format!("researcher-{i}")))
        .collect::<Result<_, _>>()?;
    let lead = AgentSpec::new("lead", move || Lead {
        researchers: refs.clone(),
    });
    let root = SupervisorSpec::one_for_one("team")
        .child(system.agent(lead)?)
        .child(ChildSpec::supervisor(researchers));
    system.start(root).await?;

    let started = tokio::time::Instant::now();
    let answer = system
        .agent_ref::<Lead>("lead")?
        .ask("fan-in barriers".to_string())
        .await?;
    println!("== the lead's answer after {:?}", started.elapsed());
    println!("{answer}");

    let restarts = std::iter::from_fn(|| events.try_recv().ok())
        .filter(|event| match event {
            SystemEvent::Lifecycle(lifecycle) => {
                lifecycle.kind == overseer::supervisor::EventKind::Started
                    && lifecycle.path.as_str().ends_with("researcher-3")
            }
            _ => false,
        })
        .count();
    // Its first start and one restart after the crash.
    println!("researcher-3 started {restarts} times (once, then once after its crash)");
    // The hung researcher's handler is stopped as the agents shut down (asked, then killed
    // after 5 s): give the shutdown longer than that.
    system.shutdown(Duration::from_secs(10)).await?;
    Ok(())
}
