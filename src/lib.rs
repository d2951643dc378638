//! Overseer: Erlang/OTP supervision for multi-agent LLM systems.
//!
//! This facade re-exports the layers:
//! * [`supervisor`]: OTP supervisors on ractor (strategies, restart types, intensity and
//!   escalation, ordered shutdown), knowing nothing of LLMs;
//! * [`agent`]: agents as typed actors, handles that survive restarts, asks that never hang;
//! * [`breaker`]: circuit breakers per agent and task type (pure state machines);
//! * [`budget`]: the budget ledger and the process-wide kill switch (pure state machines).
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
#![warn(missing_docs)]

pub use overseer_agent as agent;
pub use overseer_breaker as breaker;
pub use overseer_budget as budget;
pub use overseer_supervisor as supervisor;

/// Everything a user types every day.
pub mod prelude {
    pub use overseer_agent::prelude::*;
    pub use overseer_breaker::{BreakerConfig, BreakerRegistry};
    pub use overseer_budget::{Budget, Limits};
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
