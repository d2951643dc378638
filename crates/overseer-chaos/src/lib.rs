//! Fault injection for Overseer agents, deterministic for a seed.
//!
//! Wrap any [`Agent`](overseer_agent::Agent) in [`Chaos`] and it misbehaves as a
//! [`FaultPlan`] says: it panics, fails the task, fails fatally, hangs, answers slowly,
//! answers with a well-formed but wrong output, reports inflated token usage, or fails to
//! start. A plan combines scheduled rules (on the Nth call, on calls N to M, for one task type
//! only) with probabilities drawn from a seeded generator; schedules take precedence.
//!
//! A [`FaultInjector`] holds the plan, the seed, and the counters and random streams that every
//! incarnation of the agent shares, so call numbers run on across restarts and the same seed
//! with the same sequence of tasks gives the same faults. Each injected fault is marked in the
//! ask's [`AskEvent::injected`](overseer_agent::AskEvent::injected) (real failures have `None`)
//! and logged as a `tracing` warning; [`FaultInjector::stats`] counts them by [`FaultKind`].
//!
//! ```
//! use overseer_agent::{Agent, AgentContext, AgentError, AgentSpec, AskError, System, SystemEvent};
//! use overseer_chaos::{Chaos, Fault, FaultInjector, FaultKind, FaultPlan};
//! use overseer_supervisor::SupervisorSpec;
//! use std::time::Duration;
//!
//! struct Echo;
//! impl Agent for Echo {
//!     type Task = String;
//!     type Output = String;
//!     async fn handle(&mut self, _: &mut AgentContext, task: String) -> Result<String, AgentError> {
//!         Ok(task)
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let plan = FaultPlan::builder()
//!     .on_call(2, Fault::Error)
//!     .probability(Fault::Slow(Duration::from_millis(10)), 0.2)
//!     .build()?;
//! let injector = FaultInjector::new(plan, 42)?;
//!
//! let system = System::builder().build()?;
//! let mut events = system.subscribe();
//! system.start(SupervisorSpec::one_for_one("root")
//!     .child(system.agent(AgentSpec::new("echo", injector.wrap(|| Echo)))?)).await?;
//! let echo = system.agent_ref::<Chaos<Echo>>("echo")?;
//!
//! echo.ask("first".to_string()).await?;
//! let second = echo.ask("second".to_string()).await;
//! assert!(matches!(second, Err(AskError::Failed { .. })));
//!
//! let injected: Vec<_> = std::iter::from_fn(|| events.try_recv().ok())
//!     .filter_map(|event| match event {
//!         SystemEvent::Ask(ask) => Some(ask.injected),
//!         _ => None,
//!     })
//!     .collect();
//! assert_eq!(injected[1].as_deref(), Some("error"));
//! assert_eq!(injector.stats().count(FaultKind::Error), 1);
//! system.shutdown(Duration::from_secs(5)).await?;
//! # Ok(())
//! # }
//! ```

mod chaos;
mod error;
mod fault;
mod injector;
mod plan;

pub use chaos::Chaos;
pub use error::PlanError;
pub use fault::{Fault, FaultKind};
pub use injector::{ChaosStats, FaultInjector};
pub use plan::{FaultPlan, FaultPlanBuilder, Rule};

/// The `rand` crate corruptors draw from (its [`RngCore`](rand::RngCore) is what a
/// corruptor is given; bring [`rand::Rng`] into scope for `random_range` and friends).
pub use rand;
