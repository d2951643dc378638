//! Agents in a loop that would spend forever. The budget warns at 70, 85 and 90 %, the kill
//! switch trips before the limit would be crossed, the tree stops, and the final spend is
//! printed: at or under the limit.
//!
//! ```text
//! cargo run --example kill_switch_runaway
//! ```

use std::time::Duration;

use overseer::budget::{Budget, Dimension, Limits};
use overseer::prelude::*;
use overseer::supervisor::EventKind;

#[allow(dead_code)] // each example uses part of it
#[path = "support/cli.rs"]
mod cli;

const CLI: cli::Cli = cli::Cli {
    name: "kill_switch_runaway",
    about: "agents that would spend forever: budget warnings, then the kill switch stops the tree",
    synopsis: "",
    options: &[],
};

/// Keeps "thinking" with a scripted model; every thought costs tokens.
struct Ruminator {
    model: ScriptedModel,
}

impl Agent for Ruminator {
    type Task = u32;
    type Output = String;

    async fn handle(&mut self, ctx: &mut AgentContext, round: u32) -> Result<String, AgentError> {
        let prompt = format!("round {round}: think again about the same question, at length");
        let answer = self
            .model
            .complete(ModelRequest::new(prompt))
            .await
            .map_err(|error| AgentError::failed(error.to_string()))?;
        ctx.report_usage(answer.usage);
        if let Some(tier) = ctx.budget_tier() {
            // An agent can read how close the budget is and wrap up (this one does not).
            tracing::debug!(%tier, "budget tier reached");
        }
        Ok(answer.text)
    }

    /// Each round is estimated at its maximum: 11 prompt words and up to 40 answer words.
    fn estimate(_: &u32) -> Usage {
        Usage::new(11, 40, 153)
    }
}

const TOKEN_LIMIT: u64 = 2_000;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    CLI.no_arguments();
    let budget = Budget::builder()
        .process_limits(Limits::new().tokens(TOKEN_LIMIT).cost_micros(10_000))
        // Warnings at 70, 85 and 90 % of what is reserved and spent; the hard stop when 95 %
        // is spent. Without it the switch trips only when spend reaches the limit itself, and
        // asks whose estimates no longer fit are refused one by one meanwhile.
        .hard_tier(0.95)
        .build()?;
    let system = System::builder().budget(budget.clone()).build()?;
    let model = ScriptedModel::new()
        .replies([
            "perhaps the answer is more subtle than it first appears and deserves another pass",
            "on reflection the previous thought was incomplete so let us reconsider everything",
        ])
        .price_per_token(3);
    let mut root = SupervisorSpec::one_for_one("runaways").intensity(10, Duration::from_secs(1));
    for name in ["ruminator-1", "ruminator-2", "ruminator-3"] {
        let model = model.clone();
        root = root.child(system.agent(AgentSpec::new(name, move || Ruminator {
            model: model.clone(),
        }))?);
    }
    let mut events = system.subscribe();
    system.start(root).await?;
    println!("budget: {TOKEN_LIMIT} tokens, 10,000 micro-units; three agents loop until stopped");

    let mut loops = Vec::new();
    for name in ["ruminator-1", "ruminator-2", "ruminator-3"] {
        let agent = system.agent_ref::<Ruminator>(name)?;
        loops.push(tokio::spawn(async move {
            let mut answered = 0u32;
            loop {
                match agent.ask(answered).await {
                    Ok(_) => answered += 1,
                    // Budget held by the others' calls in flight: a runaway just tries again.
                    Err(AskError::BudgetExceeded { .. }) => tokio::task::yield_now().await,
                    Err(error) => return (answered, error),
                }
            }
        }));
    }

    // Print the warnings and the trip as they arrive, until the tree has stopped.
    let report = async {
        while let Ok(event) = events.recv().await {
            match event {
                SystemEvent::BudgetWarning(event) => {
                    let warning = &event.warning;
                    println!(
                        "warning: {} of {} used ({} of {})",
                        warning.tier, warning.dimension, warning.used, warning.limit
                    )
                }
                SystemEvent::KillSwitchTripped(event) => {
                    let trip = &event.report;
                    println!("KILL SWITCH: {} after {:?}", trip.reason, trip.after)
                }
                SystemEvent::Lifecycle(event)
                    if event.path.depth() == 0
                        && matches!(event.kind, EventKind::Stopped { .. }) =>
                {
                    println!("tree stopped: {}", event.path);
                    return;
                }
                _ => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), report).await?;

    for (index, handle) in loops.into_iter().enumerate() {
        let (answered, error) = handle.await?;
        println!("ruminator-{}: {answered} rounds, then: {error}", index + 1);
    }
    let tokens = budget.process().committed(Dimension::Tokens);
    let cost = budget.process().committed(Dimension::Cost);
    println!("final spend: {tokens} of {TOKEN_LIMIT} tokens, {cost} of 10000 micro-units");
    assert!(tokens <= TOKEN_LIMIT, "the budget was overshot");
    system.shutdown(Duration::from_secs(5)).await?;
    Ok(())
}
