//! A supervision tree that heals itself: crashes are injected into workers and the
//! supervisors restart them, following OTP's rules, until one supervisor gives up and the
//! escalation climbs to the root.
//!
//! ```text
//! cargo run --example supervision_tree
//! ```

use std::time::Duration;

use overseer::supervisor::{
    ChildSpec, EventBus, EventKind, LifecycleEvent, Restart, SupervisionTree, SupervisorRef,
    SupervisorSpec,
};
use ractor::{Actor, ActorProcessingErr, ActorRef};

#[allow(dead_code)] // each example uses part of it
#[path = "support/cli.rs"]
mod cli;

const CLI: cli::Cli = cli::Cli {
    name: "supervision_tree",
    about: "plain ractor workers in a supervision tree that heals itself until one supervisor escalates",
    synopsis: "",
    options: &[],
};

/// A worker that fails on command, the way an agent's handler might.
struct Flaky;

enum Command {
    Panic(&'static str),
    Fail(&'static str),
}

impl Actor for Flaky {
    type Msg = Command;
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<Command>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }

    async fn handle(
        &self,
        _: ActorRef<Command>,
        command: Command,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        match command {
            Command::Panic(why) => panic!("{why}"),
            Command::Fail(why) => Err(why.into()),
        }
    }
}

fn describe(event: &LifecycleEvent) -> String {
    let indent = "  ".repeat(event.path.depth());
    let what = match &event.kind {
        EventKind::Started => "started".to_string(),
        EventKind::StartFailed { error } => format!("failed to start: {error}"),
        EventKind::Stopped { reason } => format!("stopped: {reason}"),
        EventKind::Escalated {
            intensity,
            period_secs,
        } => format!("gave up: more than {intensity} restarts in {period_secs} s, escalating"),
        EventKind::AutoShutdown => "shutting down: significant children exited".to_string(),
        other => format!("{other:?}"),
    };
    format!(
        "{:>8.3}s {indent}{} {what}",
        event.elapsed.as_secs_f64(),
        event.path
    )
}

async fn worker_cell(tree: &SupervisionTree, path: &[&str]) -> Option<ractor::ActorCell> {
    let mut supervisor = tree.root().clone();
    let (last, parents) = path.split_last()?;
    for name in parents {
        let children = supervisor.which_children().await.ok()?;
        supervisor = children
            .iter()
            .find(|c| c.id.as_str() == *name)?
            .supervisor()?;
    }
    let children = supervisor.which_children().await.ok()?;
    children.into_iter().find(|c| c.id.as_str() == *last)?.cell
}

/// The running supervisors from the root down to the parent of `path`.
async fn supervisors_along(tree: &SupervisionTree, path: &[&str]) -> Vec<SupervisorRef> {
    let mut chain = vec![tree.root().clone()];
    for name in &path[..path.len().saturating_sub(1)] {
        let Some(current) = chain.last() else { break };
        let Ok(children) = current.which_children().await else {
            break;
        };
        match children
            .iter()
            .find(|c| c.id.as_str() == *name)
            .and_then(|c| c.supervisor())
        {
            Some(next) => chain.push(next),
            None => break,
        }
    }
    chain
}

/// Waits until the supervisors above `path` have handled its failure, then prints the events.
///
/// A supervisor answers calls only between handling exits, so once each supervisor on the way
/// up has answered a call, the restart (or the escalation) is complete.
async fn settle_and_print(
    tree: &SupervisionTree,
    chain: &[SupervisorRef],
    feed: &mut tokio::sync::broadcast::Receiver<LifecycleEvent>,
    failed_path: &str,
) {
    let stopped = async {
        while let Ok(event) = feed.recv().await {
            println!("{}", describe(&event));
            if event.path.as_str() == failed_path && matches!(event.kind, EventKind::Stopped { .. })
            {
                return;
            }
        }
    };
    if tokio::time::timeout(Duration::from_secs(5), stopped)
        .await
        .is_err()
    {
        println!("({failed_path} did not fail within 5 s)");
    }
    for supervisor in chain.iter().rev() {
        let _ = supervisor.count_children().await;
    }
    // A supervisor that gave up answers no more calls: wait until its parent has reported it
    // stopped (after it stopped its own children), so the parent's answer below comes after
    // the parent has handled that exit.
    let mut escalated = Vec::new();
    while let Ok(event) = feed.try_recv() {
        println!("{}", describe(&event));
        match event.kind {
            EventKind::Escalated { .. } => escalated.push(event.path.clone()),
            EventKind::Stopped { .. } => escalated.retain(|path| *path != event.path),
            _ => {}
        }
    }
    for path in escalated {
        let reported = async {
            while let Ok(event) = feed.recv().await {
                println!("{}", describe(&event));
                if event.path == path && matches!(event.kind, EventKind::Stopped { .. }) {
                    return;
                }
            }
        };
        if tokio::time::timeout(Duration::from_secs(5), reported)
            .await
            .is_err()
        {
            println!("({path} was not reported stopped within 5 s)");
        }
    }
    let _ = tree.root().count_children().await;
    while let Ok(event) = feed.try_recv() {
        println!("{}", describe(&event));
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    CLI.no_arguments();
    // Injected panics are reported below as lifecycle events; keep stderr quiet.
    std::panic::set_hook(Box::new(|_| {}));
    let researchers = SupervisorSpec::one_for_all("researchers")
        .intensity(2, Duration::from_secs(10))
        .child(ChildSpec::actor("searcher", || (Flaky, ())))
        .child(ChildSpec::actor("reader", || (Flaky, ())));
    let spec = SupervisorSpec::one_for_one("root")
        .intensity(3, Duration::from_secs(10))
        .child(ChildSpec::actor("planner", || (Flaky, ())).restart(Restart::Transient))
        .child(ChildSpec::supervisor(researchers));

    let events = EventBus::default();
    let mut feed = events.subscribe();
    let tree = SupervisionTree::builder(spec)
        .events(events)
        .start()
        .await?;
    while let Ok(event) = feed.try_recv() {
        println!("{}", describe(&event));
    }

    let injections: [(&[&str], Command); 5] = [
        (&["planner"], Command::Fail("planner returned an error")),
        (
            &["researchers", "reader"],
            Command::Panic("reader panicked"),
        ),
        (
            &["researchers", "searcher"],
            Command::Fail("searcher returned an error"),
        ),
        // The third failure within 10 s is one too many for `researchers`: it gives up, and
        // the root restarts it with a fresh restart history.
        (
            &["researchers", "reader"],
            Command::Panic("reader panicked again"),
        ),
        (
            &["researchers", "searcher"],
            Command::Panic("searcher panicked"),
        ),
    ];
    for (path, command) in injections {
        let Some(cell) = worker_cell(&tree, path).await else {
            println!("-- {} is not running", path.join("/"));
            continue;
        };
        println!("-- injecting a failure into {}", path.join("/"));
        let chain = supervisors_along(&tree, path).await;
        cell.send_message(command)?;
        settle_and_print(
            &tree,
            &chain,
            &mut feed,
            &format!("root/{}", path.join("/")),
        )
        .await;
    }

    println!("-- shutting the tree down in order");
    tree.shutdown(Duration::from_secs(5)).await?;
    while let Ok(event) = feed.try_recv() {
        println!("{}", describe(&event));
    }
    Ok(())
}
