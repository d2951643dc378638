//! A well-behaved test agent, and a system running it wrapped in chaos. Public API only.
#![allow(dead_code)]
#![allow(unreachable_pub)] // `pub` for the test files that include it: nothing here is API

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use overseer_agent::{
    Agent, AgentContext, AgentError, AgentRef, AgentSpec, AskEvent, System, SystemEvent, Usage,
};
use overseer_chaos::{Chaos, FaultInjector};
use overseer_supervisor::{LifecycleEvent, SupervisorSpec};
use tokio::sync::broadcast;

/// What every task reports using.
pub const USAGE: Usage = Usage::new(100, 20, 50);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Task {
    Search(String),
    Write(String),
    /// Fails for real (not injected).
    Fail,
}

/// A well-formed answer: which incarnation answered, and the task's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub text: String,
    pub incarnation: u32,
}

/// Answers every task, reporting [`USAGE`], with its incarnation's number.
#[derive(Debug, Default)]
pub struct Worker {
    pub incarnation: u32,
}

impl Agent for Worker {
    type Task = Task;
    type Output = Reply;

    fn task_type(task: &Task) -> &'static str {
        match task {
            Task::Search(_) => "search",
            Task::Write(_) => "write",
            Task::Fail => "fail",
        }
    }

    async fn handle(&mut self, ctx: &mut AgentContext, task: Task) -> Result<Reply, AgentError> {
        ctx.report_usage(USAGE);
        let (Task::Search(text) | Task::Write(text)) = task else {
            return Err(AgentError::failed("a real failure"));
        };
        Ok(Reply {
            text,
            incarnation: self.incarnation,
        })
    }
}

/// A factory numbering the workers it makes: 1, 2, 3...
pub fn numbered_workers() -> impl Fn() -> Worker + Send + Sync + 'static {
    let made = Arc::new(AtomicU32::new(0));
    move || Worker {
        incarnation: made.fetch_add(1, Ordering::Relaxed) + 1,
    }
}

pub fn search(text: &str) -> Task {
    Task::Search(text.to_string())
}

pub fn write(text: &str) -> Task {
    Task::Write(text.to_string())
}

/// A running system with one chaotic worker named "worker" under a generous one_for_one root
/// (100 restarts a second), its handle, and a subscriber to its events.
pub struct Harness {
    pub system: System,
    pub worker: AgentRef<Chaos<Worker>>,
    pub events: broadcast::Receiver<SystemEvent>,
}

impl Harness {
    pub async fn start(injector: &FaultInjector<Worker>) -> Harness {
        Self::start_with(
            injector,
            SupervisorSpec::one_for_one("root").intensity(100, Duration::from_secs(1)),
        )
        .await
        .expect("started")
    }

    pub async fn start_with(
        injector: &FaultInjector<Worker>,
        root: SupervisorSpec,
    ) -> Result<Harness, overseer_agent::SystemError> {
        let system = System::builder()
            .ask_timeout(Duration::from_secs(10))
            .event_capacity(1 << 16)
            .build()
            .unwrap();
        let events = system.subscribe();
        let spec = AgentSpec::new("worker", injector.wrap(numbered_workers()));
        system.start(root.child(system.agent(spec)?)).await?;
        let worker = system
            .agent_ref::<Chaos<Worker>>("worker")
            .expect("declared");
        Ok(Harness {
            system,
            worker,
            events,
        })
    }

    /// Every event published since the last call.
    pub fn drain(&mut self) -> Vec<SystemEvent> {
        std::iter::from_fn(|| self.events.try_recv().ok()).collect()
    }

    /// The ask events published since the last call (lifecycle events are dropped).
    pub fn asks(&mut self) -> Vec<AskEvent> {
        self.drain()
            .into_iter()
            .filter_map(|event| match event {
                SystemEvent::Ask(ask) => Some(ask),
                _ => None,
            })
            .collect()
    }

    /// The lifecycle events published since the last call (ask events are dropped).
    pub fn lifecycle(&mut self) -> Vec<LifecycleEvent> {
        self.drain()
            .into_iter()
            .filter_map(|event| match event {
                SystemEvent::Lifecycle(event) => Some(event),
                _ => None,
            })
            .collect()
    }
}
