//! A test agent that answers from a script, one outcome per call, and records each call: when,
//! what task, and what it was told of the attempt before. Public API only.
#![allow(dead_code)]
#![allow(unreachable_pub)] // `pub` for the test files that include it: nothing here is API

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use overseer_agent::{Agent, AgentContext, AgentError, ErrorClass, SystemEvent};
use tokio::time::Instant;

/// One call's outcome.
#[derive(Debug, Clone)]
pub enum Step {
    /// Answer the task's text.
    Echo,
    Fail(AgentError),
    /// Never answer.
    Hang,
    /// Panic: the agent crashes and is restarted.
    Panic,
    /// Fail after a while.
    SlowFail(Duration, AgentError),
    /// Report usage, then fail.
    CostlyFail(overseer_agent::Usage, AgentError),
}

/// What the handler saw on one call.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub agent: String,
    pub at: Instant,
    pub task: String,
    /// The previous attempt's failure: its number, class and text.
    pub feedback: Option<(u32, ErrorClass, String)>,
}

/// Outcomes per agent name, and every call of every agent.
#[derive(Clone, Default)]
pub struct Script {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    steps: std::collections::HashMap<String, VecDeque<Step>>,
    calls: Vec<Call>,
}

impl Script {
    /// `agent` answers its next calls with `steps`, then echoes.
    pub fn then(self, agent: &str, steps: impl IntoIterator<Item = Step>) -> Self {
        self.inner
            .lock()
            .unwrap()
            .steps
            .entry(agent.to_string())
            .or_default()
            .extend(steps);
        self
    }

    pub fn calls(&self) -> Vec<Call> {
        self.inner.lock().unwrap().calls.clone()
    }

    pub fn calls_of(&self, agent: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.agent == agent)
            .collect()
    }

    fn next(&self, agent: &str, call: Call) -> Step {
        let mut inner = self.inner.lock().unwrap();
        inner.calls.push(call);
        inner
            .steps
            .get_mut(agent)
            .and_then(VecDeque::pop_front)
            .unwrap_or(Step::Echo)
    }

    pub fn agent(&self) -> Flaky {
        Flaky {
            script: self.clone(),
        }
    }
}

pub struct Flaky {
    script: Script,
}

impl Agent for Flaky {
    type Task = String;
    type Output = String;

    fn task_type(task: &String) -> &'static str {
        if task.starts_with("summary") {
            "summary"
        } else {
            "work"
        }
    }

    async fn handle(&mut self, ctx: &mut AgentContext, task: String) -> Result<String, AgentError> {
        let feedback = ctx
            .previous_failure()
            .map(|f| (f.attempt(), f.class(), f.message().to_string()));
        let call = Call {
            agent: ctx.name().to_string(),
            at: Instant::now(),
            task: task.clone(),
            feedback,
        };
        match self.script.next(ctx.name().as_str(), call) {
            Step::Echo => Ok(task),
            Step::Fail(error) => Err(error),
            Step::Hang => std::future::pending().await,
            Step::Panic => panic!("flaky agent panicked"),
            Step::SlowFail(after, error) => {
                tokio::time::sleep(after).await;
                Err(error)
            }
            Step::CostlyFail(usage, error) => {
                ctx.report_usage(usage);
                Err(error)
            }
        }
    }
}

pub fn transient() -> Step {
    Step::Fail(AgentError::failed("flaky"))
}

pub fn permanent() -> Step {
    Step::Fail(AgentError::permanent("bad request"))
}

pub fn invalid(why: &str) -> Step {
    Step::Fail(AgentError::InvalidOutput(why.into()))
}

/// The retry events received so far.
pub fn retry_events(
    events: &mut tokio::sync::broadcast::Receiver<SystemEvent>,
) -> Vec<overseer_agent::RetryEvent> {
    std::iter::from_fn(|| events.try_recv().ok())
        .filter_map(|event| match event {
            SystemEvent::Retry(retry) => Some(retry),
            _ => None,
        })
        .collect()
}
