//! HTTP endpoints on a running [`System`]: what a container orchestrator probes and an operator
//! reads, served on `axum`.
//!
//! | path | answers | status |
//! |---|---|---|
//! | `GET /readyz` | [`System::readiness`] as JSON: `ready`, `running`, `tripped`, `agents`, `healthy`, `healthy_share` | 200 when ready, 503 otherwise |
//! | `GET /healthz` | [`System::health`] as JSON: each agent's health, last progress and time since its last beat | 200 (503 once the system is gone) |
//!
//! Everything here is read-only. The server holds the system weakly: it keeps no agent alive,
//! and answers 503 once the system is dropped.
//!
//! ```
//! use overseer_agent::System;
//! use overseer_console::{Console, ConsoleConfig};
//! use overseer_supervisor::SupervisorSpec;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let system = System::builder().build()?;
//! system.start(SupervisorSpec::one_for_one("root")).await?;
//! let console = Console::serve(&system, "127.0.0.1:0".parse()?, ConsoleConfig::default()).await?;
//! println!("probe http://{}/readyz", console.local_addr());
//! console.shutdown().await;
//! # Ok(())
//! # }
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]

mod actions;
mod board;
mod probes;
mod server;
mod snapshot;

pub use actions::{authorize, ActionError, Actions};
pub use probes::{health_json, readiness_json};
pub use server::{Console, ConsoleConfig, ConsoleError};

#[doc(no_inline)]
pub use overseer_agent::System;
