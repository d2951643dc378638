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
//   name, usage, cause, tasks, injected_mark, message, lifecycle, output_checks,
//   bulkheads, heartbeat, reply, job_queue   leaves
//   health, readiness, deadlines,            an agent's health checks and their rule; a
//   ask_tally                                system's readiness; one timer for an agent's asks;
//                                            the count of an agent's asks and their latencies
//   tree_snapshot                            the tree as one walk reads it
//   dead_letter                              a task given up on, and the queue that holds it
//   retry_event, retry_runtime               a retry's event; the system's retry state
//   semantic_event, cohort_event             the events of errors that don't crash; of cohorts
//   error, model                             errors, a model client
//   model_call                               one model call, as its ask's event lists it
//   event                                    events
//   feedback                                 what a retry is told of the attempt before
//   semantic_watch                           the loop detector and confidence tracker
//   shared                                   what every ask of one system reads
//   settlement, durable, finding,            settling an ask; a durable run; a finding published;
//   cancellation                             a handler under the kill switch's cancellation
//   loop_watch                               the loop detector as handlers feed it
//   context                                  what a handler sees
//   agent                                    the trait
//   retry_plan                               an agent's retry policies
//   spec                                     an agent's declaration
//   slot                                     the queue that outlives incarnations
//   retry_loop                               the retry loop of one ask
//   outcome, validation                      a task's end: judged, validated, settled
//   actor                                    the agent side of an ask
//   agent_ref                                the caller side of an ask
//   inspection, voting, calibration,         an ask reviewed by an inspector; a vote of asks;
//   delegation, cohort                       the confidence record; a handler asking an agent;
//                                            asks under one fan-in barrier
//   durable_ask                              the caller side of an ask of a durable run
//   durable_cohort                           a cohort's members as durable runs
//   dead_letters                             the dead-letter queue as its users hold it
//   escalation                               the escalation ladder, fallbacks
//   system/registry                          the agents by name
//   system/agent_child, system/tree          an agent as a child; the tree from start to stop
//   system                                   the entry point: the public handles
//   saga                                     steps with compensations, run on a system
mod actor;
mod agent;
mod agent_ref;
mod ask_tally;
mod bulkheads;
mod calibration;
mod cancellation;
mod cause;
mod cohort;
mod cohort_event;
mod context;
mod dead_letter;
mod dead_letters;
mod deadlines;
mod delegation;
mod durable;
mod durable_ask;
mod durable_cohort;
mod error;
mod escalation;
mod event;
mod exhausted;
mod feedback;
mod finding;
mod flagged_route;
mod health;
mod heartbeat;
mod injected_mark;
mod inspection;
mod inspector_route;
mod job_queue;
mod lifecycle;
mod loop_watch;
mod message;
mod model;
mod model_call;
mod name;
mod outcome;
mod output_checks;
mod readiness;
mod reply;
mod retry_event;
mod retry_loop;
mod retry_plan;
mod retry_runtime;
mod saga;
#[cfg(feature = "schema")]
mod schema_validation;
mod semantic_event;
mod semantic_watch;
mod settlement;
mod shared;
mod slot;
mod spec;
mod system;
mod tasks;
mod tree_snapshot;
mod usage;
mod validation;
mod voting;

pub use agent::Agent;
pub use agent_ref::{AgentRef, Answered};
pub use ask_tally::{AskTally, LatencyHistogram};
pub use bulkheads::BulkheadCall;
pub use cohort::{Cohort, CohortError, CohortMember, CohortOutcome, MemberResult, MissingMember};
pub use cohort_event::{CohortDecision, CohortEvent, CohortStep};
pub use context::{AgentContext, Reconciled, PROGRESS_STEP};
pub use dead_letter::{
    DeadLetter, DeadLetterChange, DeadLetterError, DeadLetterEvent, DeadLetterId, FailedAttempt,
    LetterOrigin,
};
pub use dead_letters::{DeadLetters, RedriveError};
pub use error::{AgentError, AskError, AttemptRecord, StepError, SystemError};
pub use escalation::Escalation;
pub use event::{
    AskEvent, AskOutcome, BreakerEvent, BudgetWarningEvent, KillSwitchEvent, SystemEvent,
};
pub use feedback::Feedback;
pub use flagged_route::RouteError;
pub use health::{AgentHealth, Health, HealthChange, HealthCheck, HealthEvent, HealthTally};
pub use heartbeat::{heartbeat_silence, Progress};
pub use inspection::{Inspection, Verdict};
pub use model::{
    FinishReason, Message, ModelClient, ModelError, ModelRequest, ModelResponse, ResponseFormat,
    Role, ScriptedModel, Temperature, ToolCall, ToolDefinition,
};
pub use model_call::{class_label, ModelCall};
pub use name::AgentName;
/// The pure rules of fan-out (`overseer-fanout`): the barrier and graceful degradation that a
/// [`Cohort`] runs.
pub use overseer_fanout as fanout;
pub use overseer_fanout::{BulkheadError, BulkheadSnapshot, Criticality, OnDeadline};
/// Error classes, retry policies, the retry budget, the escalation ladder and sagas: the pure
/// rules of `overseer-retry`, which the errors here are classified by.
pub use overseer_retry as retry;
pub use overseer_retry::{Classify, ErrorClass};
/// The pure rules of errors that don't crash (`overseer-semantic`): validators, red flags,
/// votes, confidence calibration and loop detection, which the agent layer runs.
pub use overseer_semantic as semantic;
pub use readiness::Readiness;
pub use retry_event::{RetryEvent, RetryStep};
pub use saga::{Saga, SagaBuilder, SagaContext, SagaError, SagaOutcome, SagaStep};
pub use semantic_event::{Finding, InspectionOutcome, LoopAction, SemanticEvent};
pub use semantic_watch::SemanticConfig;
pub use shared::StepDurability;
pub use spec::{AgentSpec, DEFAULT_QUEUE_CAPACITY};
pub use system::{AskTallies, QueueDepth, System, SystemBuilder, WeakSystem};
pub use tree_snapshot::{NodeKind, NodeState, TreeNode};
pub use usage::{Metered, Usage};
pub use voting::{VoteSpec, Voted};

/// What a user of agents types every day.
pub mod prelude {
    pub use crate::{
        Agent, AgentContext, AgentError, AgentRef, AgentSpec, AskError, Classify, Cohort,
        CohortOutcome, ErrorClass, Escalation, Feedback, HealthCheck, ModelClient, ModelRequest,
        OnDeadline, Progress, Reconciled, ScriptedModel, StepError, System, SystemEvent, Usage,
        WeakSystem,
    };
}
