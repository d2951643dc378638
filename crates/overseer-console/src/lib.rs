//! A web console and HTTP probes for a running [`System`], served on `axum`: a live page for
//! people, and what a container orchestrator probes.
//!
//! | path | answers | status |
//! |---|---|---|
//! | `GET /` | the page (with `/console.js` and `/console.css`, built into the binary): the supervision tree as nested boxes, each agent's queue, asks/s, latency percentiles, errors and health, the breakers, the budget's gauges, dead letters, unfinished runs, and the event stream with causal chains | 200 |
//! | `GET /api/stream` | server-sent events: `events` (a batch of events, at most 200 per refresh) and `snapshot` (everything else, every refresh while connected) | 200 |
//! | `GET /api/snapshot`, `/api/events`, `/api/chain/{id}` | the same as JSON; an event's chain of causes, root first | 200; 404 `no_event` |
//! | `POST /api/actions/trip`, `/api/actions/redrive/{id}` | trips the kill switch, redrives a dead letter: only with [`Actions`] configured, for the callers they admit ([`authorize`]) | 200; 403 with a typed [`ActionError`] |
//! | `GET /readyz` | [`System::readiness`] as JSON: `ready`, `running`, `tripped`, `agents`, `healthy`, `healthy_share` | 200 when ready, 503 otherwise |
//! | `GET /healthz` | [`System::health`] as JSON: each agent's health, last progress and time since its last beat | 200 (503 once the system is gone) |
//!
//! Read-only unless [`ConsoleConfig::actions`] is given. The server holds the system weakly:
//! it keeps no agent alive, and answers 503 once the system is dropped. With no console the
//! system builds no events for it; attached, it reads the event stream every 10 ms (it is not
//! woken per event) and reads the system only while a page is connected.
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
//! println!("open http://{}/ (probe /readyz)", console.local_addr());
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
