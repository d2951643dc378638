//! LLM agents as typed actors under OTP supervisors.
//!
//! An [`Agent`] is a plain Rust type with typed tasks and outputs. [`System::agent`] turns an
//! [`AgentSpec`] into a supervisor child, so agents, plain workers and nested supervisors mix
//! in one tree. An [`AgentRef`] reaches the agent's current incarnation across restarts, and
//! every ask ends by its deadline with the output or a typed [`AskError`].
//!
//! The call path of one ask: system shut down? → agent stopped or failing fast? → deadline
//! set → queued for the current incarnation → handled (a panic, a fatal error or a hang stops
//! the incarnation; its supervisor decides) → outcome, latency and usage recorded as a
//! [`SystemEvent`] and on the ask's tracing span.
//!
//! ```
//! use overseer_agent::{Agent, AgentContext, AgentError, AgentSpec, System, Usage};
//! use overseer_supervisor::SupervisorSpec;
//! use std::time::Duration;
//!
//! struct Counter { seen: u64 }
//! impl Agent for Counter {
//!     type Task = u64;
//!     type Output = u64;
//!     async fn handle(&mut self, ctx: &mut AgentContext, n: u64) -> Result<u64, AgentError> {
//!         ctx.report_usage(Usage::new(n, 1, 0));
//!         self.seen += n;
//!         Ok(self.seen)
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let system = System::builder().build()?;
//! system.start(SupervisorSpec::one_for_one("root")
//!     .child(system.agent(AgentSpec::new("counter", || Counter { seen: 0 }))?)).await?;
//! let counter = system.agent_ref::<Counter>("counter")?;
//! counter.ask(2).await?;
//! assert_eq!(counter.ask(3).await?, 5);
//! system.shutdown(Duration::from_secs(5)).await?;
//! # Ok(())
//! # }
//! ```

// The modules, bottom to top: each names (`crate::module`) only modules on earlier lines, so
// they import one another without a circle (`tests/layering.rs` checks it).
//
//   name, usage, cause, tasks, injected_mark, message, lifecycle    leaves
//   error, event, model                      errors, events, a model client
//   shared                                   what every ask of one system reads
//   settlement, durable                      settling what admitting an ask took; a durable run
//   context                                  what a handler sees
//   agent                                    the trait
//   spec                                     an agent's declaration
//   slot                                     the queue that outlives incarnations
//   outcome                                  a task's end: judged, settled
//   actor                                    the agent side of an ask
//   agent_ref                                the caller side of an ask
//   durable_ask                              the caller side of an ask of a durable run
//   system/registry                          the agents by name
//   system/agent_child, system/tree          an agent as a child; the tree from start to stop
//   system                                   the entry point: the public handles
mod actor;
mod agent;
mod agent_ref;
mod cause;
mod context;
mod durable;
mod durable_ask;
mod error;
mod event;
mod injected_mark;
mod lifecycle;
mod message;
mod model;
mod name;
mod outcome;
mod settlement;
mod shared;
mod slot;
mod spec;
mod system;
mod tasks;
mod usage;

pub use agent::Agent;
pub use agent_ref::{AgentRef, Answered};
pub use context::{AgentContext, Reconciled};
pub use error::{AgentError, AskError, StepError, SystemError};
pub use event::{
    AskEvent, AskOutcome, BreakerEvent, BudgetWarningEvent, KillSwitchEvent, SystemEvent,
};
pub use model::{
    FinishReason, Message, ModelClient, ModelError, ModelRequest, ModelResponse, ResponseFormat,
    Role, ScriptedModel, Temperature, ToolCall, ToolDefinition,
};
pub use name::AgentName;
/// Error classes, retry policies, the retry budget, the escalation ladder and sagas: the pure
/// rules of `overseer-retry`, which the errors here are classified by.
pub use overseer_retry as retry;
pub use overseer_retry::{Classify, ErrorClass};
pub use shared::StepDurability;
pub use spec::AgentSpec;
pub use system::{System, SystemBuilder, WeakSystem};
pub use usage::{Metered, Usage};

/// What a user of agents types every day.
pub mod prelude {
    pub use crate::{
        Agent, AgentContext, AgentError, AgentRef, AgentSpec, AskError, Classify, ErrorClass,
        ModelClient, ModelRequest, Reconciled, ScriptedModel, StepError, System, SystemEvent,
        Usage, WeakSystem,
    };
}
