//! Serde helpers shared by Overseer's crates, kept in one place so that every crate writes
//! the same JSON.
//!
//! # Durations
//!
//! Every [`Duration`](std::time::Duration) that Overseer serializes is a JSON number of
//! **milliseconds**, and a named field holding one ends in `_ms` (`elapsed_ms`, `after_ms`,
//! `open_for_ms`): an integer when the duration is a whole number of milliseconds (`10000`),
//! a fraction otherwise (`0.38894` for 388,940 ns). Reading it back gives the same duration
//! to the nanosecond for durations under about 26 days, and to within a nanosecond per
//! 2^51 ns beyond. serde's own form (`{"secs":10,"nanos":0}`) hides the unit and reads badly in
//! logs; this one is what tools like `jq` compare and sum directly.
//!
//! ```
//! use std::time::Duration;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, PartialEq, Serialize, Deserialize)]
//! struct Event {
//!     #[serde(rename = "elapsed_ms", with = "overseer_serde::millis")]
//!     elapsed: Duration,
//!     #[serde(rename = "open_for_ms", with = "overseer_serde::millis::option", default)]
//!     open_for: Option<Duration>,
//! }
//!
//! let event = Event { elapsed: Duration::from_nanos(388_940), open_for: Some(Duration::from_secs(30)) };
//! let json = serde_json::to_string(&event)?;
//! assert_eq!(json, r#"{"elapsed_ms":0.38894,"open_for_ms":30000}"#);
//! assert_eq!(serde_json::from_str::<Event>(&json)?, event);
//! # Ok::<(), serde_json::Error>(())
//! ```

pub mod millis;
