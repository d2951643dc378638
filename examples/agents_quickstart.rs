//! Two agents under a one_for_one supervisor: one crashes on a bad task and is restarted while
//! the other keeps serving. Everything is printed as it happens.
//!
//! ```text
//! cargo run --example agents_quickstart
//! ```

use std::time::Duration;

use overseer::prelude::*;
use overseer::supervisor::EventKind;

#[allow(dead_code)] // each example uses part of it
#[path = "support/cli.rs"]
mod cli;

const CLI: cli::Cli = cli::Cli {
    name: "agents_quickstart",
    about: "two agents under a one_for_one supervisor: one crashes and is restarted while the other keeps serving",
    synopsis: "",
    options: &[],
};

/// Drafts answers with a (scripted) model; panics on a task it cannot parse.
struct Writer {
    model: ScriptedModel,
    drafts: u32,
}

/// Reviews drafts; never fails.
struct Reviewer;

impl Agent for Writer {
    type Task = String;
    type Output = String;

    fn task_type(_: &String) -> &'static str {
        "draft"
    }

    async fn handle(
        &mut self,
        ctx: &mut AgentContext,
        topic: String,
    ) -> Result<String, AgentError> {
        if topic.trim().is_empty() {
            panic!("cannot draft about nothing");
        }
        let answer = self
            .model
            .complete(ModelRequest::new(format!("Write one line about {topic}")))
            .await
            .map_err(|error| AgentError::failed(error.to_string()))?;
        ctx.report_usage(answer.usage);
        self.drafts += 1;
        Ok(format!("draft #{}: {}", self.drafts, answer.text))
    }

    async fn on_restart(
        &mut self,
        _: &mut AgentContext,
        previous_exit: &ExitReason,
    ) -> Result<(), AgentError> {
        println!("   writer restarting; its previous incarnation died of: {previous_exit}");
        Ok(())
    }
}

impl Agent for Reviewer {
    type Task = String;
    type Output = String;

    async fn handle(&mut self, _: &mut AgentContext, draft: String) -> Result<String, AgentError> {
        Ok(format!(
            "approved ({} words)",
            draft.split_whitespace().count()
        ))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    CLI.no_arguments();
    std::panic::set_hook(Box::new(|_| {})); // the crash is reported below as an event
    let model = ScriptedModel::new()
        .when("supervision", |_| {
            Ok("supervisors restart what fails".into())
        })
        .replies(["agents should fail loudly and recover quietly"])
        .price_per_token(3);
    let system = System::builder()
        .ask_timeout(Duration::from_secs(5))
        .build()?;
    let tree = SupervisorSpec::one_for_one("team")
        .intensity(3, Duration::from_secs(10))
        .child(system.agent(AgentSpec::new("writer", move || Writer {
            model: model.clone(),
            drafts: 0,
        }))?)
        .child(system.agent(AgentSpec::new("reviewer", || Reviewer))?);

    let mut events = system.subscribe();
    system.start(tree).await?;
    let writer = system.agent_ref::<Writer>("writer")?;
    let reviewer = system.agent_ref::<Reviewer>("reviewer")?;

    show(&mut events);
    for topic in ["supervision", "", "resilience"] {
        println!("-> writer, draft about {topic:?}");
        match writer.ask(topic.to_string()).await {
            Ok(draft) => {
                println!("<- {draft}");
                println!("-> reviewer");
                println!("<- {}", reviewer.ask(draft).await?);
                show(&mut events);
            }
            Err(error) => {
                println!("<- writer failed: {error}");
                // The reviewer is not affected by the writer's crash.
                println!("-> reviewer, meanwhile");
                println!("<- {}", reviewer.ask("a quick check".into()).await?);
                wait_for_restart(&mut events, "team/writer").await;
            }
        }
    }

    println!("-> shutting down in order");
    system.shutdown(Duration::from_secs(5)).await?;
    show(&mut events);
    Ok(())
}

fn describe(event: SystemEvent) -> String {
    match event {
        SystemEvent::Lifecycle(event) => format!("   [tree] {event}"),
        SystemEvent::Ask(_) => {
            format!("   [ask]  {}", event.to_string().trim_start_matches("ask "))
        }
        SystemEvent::BudgetWarning(_) | SystemEvent::KillSwitchTripped(_) => {
            format!("   [budget] {event}")
        }
        other => format!("   {other}"),
    }
}

/// Prints the events published so far.
fn show(events: &mut tokio::sync::broadcast::Receiver<SystemEvent>) {
    while let Ok(event) = events.try_recv() {
        println!("{}", describe(event));
    }
}

/// Prints events until `path` has started again (at most 5 s).
async fn wait_for_restart(events: &mut tokio::sync::broadcast::Receiver<SystemEvent>, path: &str) {
    let restarted = async {
        while let Ok(event) = events.recv().await {
            let done = matches!(&event, SystemEvent::Lifecycle(e)
                if e.path.as_str() == path && e.kind == EventKind::Started);
            println!("{}", describe(event));
            if done {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), restarted).await;
}
