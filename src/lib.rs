//! Overseer: Erlang/OTP supervision for multi-agent LLM systems.
//!
//! This facade re-exports the layers:
//! * [`supervisor`]: OTP supervisors on ractor (strategies, restart types, intensity and
//!   escalation, ordered shutdown), knowing nothing of LLMs;
//! * [`agent`]: agents as typed actors, handles that survive restarts, asks that never hang;
//! * [`breaker`]: circuit breakers per agent and task type (pure state machines);
//! * [`budget`]: the budget ledger and the process-wide kill switch (pure state machines);
//! * [`fanout`]: the fan-in barrier, graceful degradation and bulkheads that
//!   [`agent::Cohort`] and `AgentContext::bulkhead` run (pure rules and a semaphore).
//!
//! # Features
//!
//! None is on by default: the layers above are always there, and the others come with a
//! feature of this crate, so that `overseer` is the one dependency to declare.
//!
//! | feature | adds | crate |
//! |---|---|---|
//! | `chaos` | `overseer::chaos`: deterministic fault injection for agents | `overseer-chaos` |
//! | `observe` | `overseer::observe`: metrics from the event stream, a JSON-lines event sink, a text picture of the tree | `overseer-observe` |
//! | `otel` | `observe`, with `overseer::observe::otel`: the events as OpenTelemetry spans | `overseer-observe` (its `otel` feature) |
//! | `postgres` | `overseer::postgres`: runs shared through PostgreSQL (leases, owner epochs, fenced appends, a work queue, a fleet-wide budget) | `overseer-postgres` |
//! | `schema` | JSON Schema validators on agents' outputs (`AgentSpec::task_schema`) and `overseer::semantic::schema` | `overseer-agent` and `overseer-semantic` (their `schema` features) |
//!
//! ```toml
//! [dependencies]
//! overseer = { version = "0.1", features = ["chaos", "otel"] }
//! ```
//!
//! ```
//! use overseer::prelude::*;
//! use std::time::Duration;
//!
//! struct Greeter;
//! impl Agent for Greeter {
//!     type Task = String;
//!     type Output = String;
//!     async fn handle(&mut self, _: &mut AgentContext, name: String) -> Result<String, AgentError> {
//!         Ok(format!("hello, {name}"))
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let system = System::builder().build()?;
//! let tree = SupervisorSpec::one_for_one("root")
//!     .child(system.agent(AgentSpec::new("greeter", || Greeter))?);
//! system.start(tree).await?;
//! let greeter = system.agent_ref::<Greeter>("greeter")?;
//! assert_eq!(greeter.ask("Ada".into()).await?, "hello, Ada");
//! system.shutdown(Duration::from_secs(5)).await?;
//! # Ok(())
//! # }
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]

pub use overseer_agent as agent;
pub use overseer_breaker as breaker;
pub use overseer_budget as budget;
#[cfg(feature = "chaos")]
#[cfg_attr(docsrs, doc(cfg(feature = "chaos")))]
pub use overseer_chaos as chaos;
#[cfg(feature = "console")]
#[cfg_attr(docsrs, doc(cfg(feature = "console")))]
pub use overseer_console as console;
pub use overseer_fanout as fanout;
pub use overseer_journal as journal;
#[cfg(feature = "observe")]
#[cfg_attr(docsrs, doc(cfg(feature = "observe")))]
pub use overseer_observe as observe;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use overseer_postgres as postgres;
#[cfg(feature = "provider")]
#[cfg_attr(docsrs, doc(cfg(feature = "provider")))]
pub use overseer_provider as provider;
pub use overseer_retry as retry;
pub use overseer_semantic as semantic;
pub use overseer_supervisor as supervisor;

/// Everything a user types every day.
pub mod prelude {
    pub use overseer_agent::prelude::*;
    pub use overseer_breaker::{BreakerConfig, BreakerRegistry};
    pub use overseer_budget::{Budget, Limits};
    pub use overseer_fanout::Criticality;
    #[cfg(feature = "redb")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redb")))]
    pub use overseer_journal::RedbStorage;
    pub use overseer_journal::{Effect, Journal, JournalConfig, LogStorage, RunId};
    pub use overseer_supervisor::prelude::*;
}

/// The guide's code blocks, compiled and run as doc tests so that they cannot drift from the
/// API (`cargo test --doc -p overseer`).
#[cfg(doctest)]
#[doc = include_str!("../docs/guide.md")]
pub struct GuideDoctests;

/// The README's code blocks, as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// The code blocks of `docs/observability.md`, as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../docs/observability.md")]
pub struct ObservabilityDoctests;

/// The code blocks of `docs/providers.md`, as doc tests (the provider crate is a
/// dev-dependency, so they build without the `provider` feature).
#[cfg(doctest)]
#[doc = include_str!("../docs/providers.md")]
pub struct ProvidersDoctests;

/// The code blocks of `docs/coordination.md`, as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../docs/coordination.md")]
pub struct CoordinationDoctests;

/// The code blocks of `docs/durability.md`, as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../docs/durability.md")]
pub struct DurabilityDoctests;

/// The code blocks of `docs/health.md`, as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../docs/health.md")]
pub struct HealthDoctests;
/// The code blocks of `docs/distributed.md`, as doc tests (the postgres crate is a
/// dev-dependency, so they build without the `postgres` feature).
#[cfg(doctest)]
#[doc = include_str!("../docs/distributed.md")]
pub struct DistributedDoctests;
