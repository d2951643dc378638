//! Overseer: Erlang/OTP supervision for multi-agent LLM systems.
//!
//! This facade re-exports the layers: [`supervisor`] (OTP supervisors on ractor).
#![warn(missing_docs)]

pub use overseer_supervisor as supervisor;

/// Everything a user types every day.
pub mod prelude {
    pub use overseer_supervisor::prelude::*;
}
