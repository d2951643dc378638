//! Overseer's tracing output as JSON lines, with `tracing-subscriber`: one span per ask (with
//! its agent, task type, outcome, latency and usage) and one event per lifecycle change,
//! breaker transition and budget warning.
//!
//! ```text
//! cargo run --example tracing_json
//! ```

use std::time::Duration;

use overseer::prelude::*;
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::EnvFilter;

#[allow(dead_code)] // each example uses part of it
#[path = "support/cli.rs"]
mod cli;

const CLI: cli::Cli = cli::Cli {
    name: "tracing_json",
    about:
        "Overseer's tracing output as JSON lines: one span per ask, one event per lifecycle change",
    synopsis: "",
    options: &[],
};

struct Echo;

impl Agent for Echo {
    type Task = &'static str;
    type Output = String;

    fn task_type(_: &&'static str) -> &'static str {
        "echo"
    }

    async fn handle(
        &mut self,
        ctx: &mut AgentContext,
        text: &'static str,
    ) -> Result<String, AgentError> {
        if text.is_empty() {
            return Err(AgentError::fatal("nothing to echo"));
        }
        ctx.report_usage(Usage::new(3, 1, 4));
        Ok(text.to_uppercase())
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    CLI.no_arguments();
    tracing_subscriber::fmt()
        .json()
        // Overseer's own targets only (ractor traces every actor too).
        .with_env_filter(EnvFilter::new(
            "overseer_agent=info,overseer_supervisor=info,overseer_breaker=info,overseer_budget=info",
        ))
        .with_span_events(FmtSpan::CLOSE) // one line when each ask span closes, with its fields
        .with_current_span(true)
        .with_span_list(false)
        .init();
    let system = System::builder().build()?;
    system
        .start(
            SupervisorSpec::one_for_one("root")
                .child(system.agent(AgentSpec::new("echo", || Echo))?),
        )
        .await?;
    let echo = system.agent_ref::<Echo>("echo")?;
    echo.ask("hello").await?;
    let _ = echo.ask("").await; // crashes the agent: a lifecycle event, then a restart
    echo.ask("again").await?;
    system.shutdown(Duration::from_secs(5)).await?;
    Ok(())
}
