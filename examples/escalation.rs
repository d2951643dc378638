//! Restart intensity exceeded two levels deep. A worker at the bottom of a three-level tree
//! keeps failing: its supervisor (`leaf`) restarts it once, then gives up and escalates; the
//! `middle` supervisor restarts `leaf` once, then gives up too; the `root` restarts `middle`
//! once, and when the failures reach it a second time the root itself gives up and the whole
//! tree stops. Every supervisor allows 1 restart in 60 s, and the failures come one second
//! apart, so each count stays within its window.
//!
//! The tree is drawn before the failures and after each escalation; escalations are printed
//! from the tree's event bus as they happen. The clock is paused (tokio's virtual time), so the
//! story and its timestamps are the same on every run.
//!
//! ```text
//! cargo run --example escalation
//! ```

use std::time::Duration;

use overseer::supervisor::{
    ChildInfo, ChildPath, ChildSpec, EventBus, EventKind, LifecycleEvent, SupervisionTree,
    SupervisorRef, SupervisorSpec,
};
// `overseer::observe::render_tree` with the facade's `observe` feature.
use overseer_observe::render_tree;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::broadcast;

#[allow(dead_code)] // each example uses part of it
#[path = "support/cli.rs"]
mod cli;

const CLI: cli::Cli = cli::Cli {
    name: "escalation",
    about: "restart intensity exceeded two levels deep, printed as a tree after each escalation",
    synopsis: "",
    options: &[],
};

/// The worker that fails, by path from the root's children down.
const FAILING_WORKER: [&str; 3] = ["middle", "leaf", "parser"];
/// Its path as events name it.
const FAILING_WORKER_PATH: &str = "root/middle/leaf/parser";
/// Enough failures for the story (it needs 8); more would mean a supervisor did not give up.
const MAX_FAILURES: u32 = 12;

/// A worker that panics when told to, the way a buggy parser would on bad input.
struct Flaky;

/// Panic with this message.
struct Fail(String);

impl Actor for Flaky {
    type Msg = Fail;
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<Fail>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }

    async fn handle(
        &self,
        _: ActorRef<Fail>,
        Fail(why): Fail,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        panic!("{why}");
    }
}

fn worker(id: &str) -> ChildSpec {
    ChildSpec::actor(id, || (Flaky, ()))
}

/// root → middle → leaf, each allowing 1 restart in 60 s, each with a bystander worker.
fn three_levels() -> SupervisorSpec {
    let window = Duration::from_secs(60);
    let leaf = SupervisorSpec::one_for_one("leaf")
        .intensity(1, window)
        .child(worker("fetcher"))
        .child(worker("parser"));
    let middle = SupervisorSpec::one_for_one("middle")
        .intensity(1, window)
        .child(worker("indexer"))
        .child(ChildSpec::supervisor(leaf));
    SupervisorSpec::one_for_one("root")
        .intensity(1, window)
        .child(worker("audit-log"))
        .child(ChildSpec::supervisor(middle))
}

/// The child at `path` (ids from the root's children down), as its supervisor reports it.
async fn find(root: &SupervisorRef, path: &[&str]) -> Option<ChildInfo> {
    let (last, parents) = path.split_last()?;
    let mut supervisor = root.clone();
    for name in parents {
        let children = supervisor.which_children().await.ok()?;
        supervisor = children
            .iter()
            .find(|child| child.id.as_str() == *name)?
            .supervisor()?;
    }
    let children = supervisor.which_children().await.ok()?;
    children
        .into_iter()
        .find(|child| child.id.as_str() == *last)
}

fn describe(event: &LifecycleEvent) -> String {
    let what = match &event.kind {
        EventKind::Started => "started".to_string(),
        EventKind::StartFailed { error } => format!("failed to start: {error}"),
        EventKind::Stopped { reason } => format!("stopped: {reason}"),
        EventKind::Escalated {
            intensity,
            period_secs,
        } => format!(
            "ESCALATED: more than {intensity} restart{} in {period_secs} s; it stops its children and exits",
            if *intensity == 1 { "" } else { "s" }
        ),
        EventKind::AutoShutdown => "shutting down: significant children exited".to_string(),
        other => format!("{other:?}"),
    };
    let indent = "  ".repeat(event.path.depth());
    format!(
        "   t={}s {indent}{} {what}",
        event.elapsed.as_secs(),
        event.path
    )
}

/// The id of the supervisor above `path` (`root/middle/leaf` → `middle`).
fn parent_of(path: &ChildPath) -> &str {
    let parent = path
        .as_str()
        .rsplit_once('/')
        .map_or("", |(parent, _)| parent);
    parent.rsplit('/').next().unwrap_or(parent)
}

/// What one failure led to.
#[derive(Debug, Default)]
struct Aftermath {
    /// The supervisors that gave up, in order.
    escalations: Vec<ChildPath>,
    /// Whether the root stopped.
    root_stopped: bool,
}

/// Prints the tree's events until the failing worker runs again or the root has stopped (at
/// most 10 s of the paused clock).
async fn print_aftermath(events: &mut broadcast::Receiver<LifecycleEvent>) -> Aftermath {
    let mut aftermath = Aftermath::default();
    let settled = async {
        while let Ok(event) = events.recv().await {
            println!("{}", describe(&event));
            match &event.kind {
                EventKind::Escalated { .. } => aftermath.escalations.push(event.path.clone()),
                EventKind::Started if event.path.as_str() == FAILING_WORKER_PATH => return,
                EventKind::Stopped { .. } if event.path.as_str() == "root" => {
                    aftermath.root_stopped = true;
                    return;
                }
                _ => {}
            }
        }
    };
    if tokio::time::timeout(Duration::from_secs(10), settled)
        .await
        .is_err()
    {
        println!("   (the tree did not settle within 10 s)");
    }
    aftermath
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    CLI.no_arguments();
    // The injected panics are reported below, from the event bus; keep stderr quiet.
    std::panic::set_hook(Box::new(|_| {}));
    let events = EventBus::default();
    let mut feed = events.subscribe();
    let tree = SupervisionTree::builder(three_levels())
        .events(events)
        .start()
        .await?;
    while feed.try_recv().is_ok() {} // the first starts are in the tree below

    println!("The tree before any failure:");
    print!("{}", render_tree(tree.root()).await?);

    let mut escalation_count = 0;
    for failure in 1..=MAX_FAILURES {
        tokio::time::advance(Duration::from_secs(1)).await;
        let Some(parser) = find(tree.root(), &FAILING_WORKER)
            .await
            .and_then(|info| info.cell)
        else {
            println!("-- {} is not running", FAILING_WORKER.join("/"));
            break;
        };
        println!("-- failure {failure}: the parser panics");
        parser.send_message(Fail(format!("bad input #{failure}")))?;
        let aftermath = print_aftermath(&mut feed).await;
        if aftermath.escalations.is_empty() {
            continue;
        }
        escalation_count += 1;
        let gave_up: Vec<&str> = aftermath.escalations.iter().map(ChildPath::name).collect();
        let gave_up = gave_up.join(", then ");
        if aftermath.root_stopped {
            println!("Escalation {escalation_count}: {gave_up} gave up; nothing is above the root, so the tree stops.");
            println!("The final tree:");
            match render_tree(tree.root()).await {
                Ok(drawing) => print!("{drawing}"),
                Err(error) => println!("(nothing is running: {error})"),
            }
            break;
        }
        if let Some(highest) = aftermath.escalations.last() {
            println!(
                "Escalation {escalation_count}: {gave_up} gave up; {} restarted {}. The tree after it:",
                parent_of(highest),
                highest.name(),
            );
        }
        print!("{}", render_tree(tree.root()).await?);
    }

    let exited = tree.wait_for_exit(Duration::from_secs(5)).await;
    println!(
        "Final state: the tree is {}.",
        if exited && !tree.is_running() {
            "stopped"
        } else {
            "still running"
        }
    );
    Ok(())
}
