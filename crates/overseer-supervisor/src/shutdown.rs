//! How a supervisor stops one of its children.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How a child is stopped when its supervisor terminates it:
///
/// | shutdown | what the supervisor does | exit reason seen |
/// |---|---|---|
/// | [`BrutalKill`](Self::BrutalKill) | kills it at once | `killed` |
/// | [`Timeout(d)`](Self::Timeout) | asks it to stop, waits up to `d`, then kills it | `shutdown`, or `killed` after `d` |
/// | [`Infinity`](Self::Infinity) | asks it to stop and waits as long as it takes | `shutdown` |
///
/// A polite stop is ractor's `stop`: an actor busy in a handler finishes that handler first,
/// and an actor whose `post_stop` never returns is killed at the timeout. The defaults are
/// OTP's: 5 seconds for a worker, `Infinity` for a supervisor. Children are stopped one at a
/// time, in reverse start order; a dynamic supervisor stops all its children at once under one
/// timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shutdown {
    /// Kill without asking.
    BrutalKill,
    /// Ask, then kill after this long (in JSON, milliseconds: `{"timeout":5000}`).
    #[serde(with = "overseer_serde::millis")]
    Timeout(Duration),
    /// Ask and wait without limit (meant for supervisors).
    Infinity,
}

impl Shutdown {
    /// OTP's default for workers: ask, then kill after 5 seconds.
    pub const WORKER_DEFAULT: Shutdown = Shutdown::Timeout(Duration::from_secs(5));
    /// OTP's default for supervisors: wait for the whole subtree.
    pub const SUPERVISOR_DEFAULT: Shutdown = Shutdown::Infinity;
}
