//! A test agent that does what its task says. Public API only.
#![allow(dead_code)]
#![allow(unreachable_pub)] // `pub` for the test files that include it: nothing here is API

use std::time::Duration;

use overseer_agent::{Agent, AgentContext, AgentError, AgentSpec, System, SystemEvent, Usage};
use overseer_supervisor::{ExitReason, SupervisorSpec};

#[derive(Debug, Clone)]
pub enum Task {
    Echo(String),
    Panic(&'static str),
    Fatal(&'static str),
    Fail(&'static str),
    Invalid,
    Hang,
    Slow(Duration),
    /// Fails the task after a while.
    SlowFail(Duration),
    Spend(Usage),
    Incarnation,
    /// Answers with the budget tier the agent sees.
    Tier,
}

/// Answers with text; counts its incarnation; can be slow to restart.
pub struct Tester {
    pub incarnation: String,
    pub restart_delay: Duration,
}

impl Tester {
    pub fn new() -> Self {
        Self {
            incarnation: "first".into(),
            restart_delay: Duration::ZERO,
        }
    }

    pub fn slow_to_restart(delay: Duration) -> impl Fn() -> Tester + Send + Sync {
        move || Tester {
            incarnation: "first".into(),
            restart_delay: delay,
        }
    }
}

impl Agent for Tester {
    type Task = Task;
    type Output = String;

    fn task_type(task: &Task) -> &'static str {
        match task {
            Task::Echo(_) => "echo",
            Task::Spend(_) => "spend",
            _ => "trouble",
        }
    }

    async fn handle(&mut self, ctx: &mut AgentContext, task: Task) -> Result<String, AgentError> {
        match task {
            Task::Echo(text) => Ok(text),
            Task::Panic(message) => panic!("{message}"),
            Task::Fatal(message) => Err(AgentError::fatal(message)),
            Task::Fail(message) => Err(AgentError::failed(message)),
            Task::Invalid => Err(AgentError::InvalidOutput("not json".into())),
            Task::Hang => std::future::pending().await,
            Task::Slow(duration) => {
                tokio::time::sleep(duration).await;
                Ok("slow".into())
            }
            Task::SlowFail(duration) => {
                tokio::time::sleep(duration).await;
                Err(AgentError::failed("slow failure"))
            }
            Task::Spend(usage) => {
                ctx.report_usage(usage);
                ctx.report_model("test-model");
                Ok("spent".into())
            }
            Task::Incarnation => Ok(self.incarnation.clone()),
            Task::Tier => Ok(ctx
                .budget_tier()
                .map_or_else(|| "none".to_string(), |tier| tier.to_string())),
        }
    }

    fn estimate(task: &Task) -> Usage {
        match task {
            Task::Spend(usage) => *usage,
            _ => Usage::default(),
        }
    }

    async fn on_restart(
        &mut self,
        _: &mut AgentContext,
        previous_exit: &ExitReason,
    ) -> Result<(), AgentError> {
        tokio::time::sleep(self.restart_delay).await;
        self.incarnation = format!("after {previous_exit}");
        Ok(())
    }
}

/// A started system with one tester agent under a generous one_for_one root.
pub async fn system_with(spec: AgentSpec<Tester>) -> System {
    let system = System::builder()
        .ask_timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let root = SupervisorSpec::one_for_one("root")
        .intensity(100, Duration::from_secs(1))
        .child(system.agent(spec).expect("declared"));
    system.start(root).await.expect("started");
    system
}

/// The events `rx` holds now.
pub fn drain(rx: &mut tokio::sync::broadcast::Receiver<SystemEvent>) -> Vec<SystemEvent> {
    std::iter::from_fn(|| rx.try_recv().ok()).collect()
}

pub async fn tester_system() -> System {
    system_with(AgentSpec::new("tester", Tester::new)).await
}

#[path = "../../../overseer-supervisor/tests/common/yield_until.rs"]
mod yield_until;
#[allow(unused_imports)] // each test file uses part of it
pub use yield_until::yield_until;
