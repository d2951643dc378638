//! The states a breaker can be in.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The state of one breaker.
///
/// | state | admits calls | outcomes recorded | leaves when |
/// |---|---|---|---|
/// | [`Closed`](Self::Closed) | all | into the sliding window | failure rate or consecutive failures reach their threshold → `Open` |
/// | [`Open`](Self::Open) | none (rejected with `retry_after`) | no | the open duration has passed and a call arrives → `HalfOpen` |
/// | [`HalfOpen`](Self::HalfOpen) | up to `half_open_probes` probes | probes only | every probe succeeded → `Closed`; any probe failed → `Open` (longer) |
/// | [`ForcedOpen`](Self::ForcedOpen) | none (no `retry_after`) | no | an operator calls `reset` → `Closed` |
/// | [`Disabled`](Self::Disabled) | all | no, and never opens | an operator calls `reset` → `Closed` |
///
/// Any state goes to `ForcedOpen` on `force_open`, to `Disabled` on `disable` and to `Closed` on
/// `reset`. Time alone never changes the state: an open breaker whose duration has passed stays
/// `Open` until the next call asks to be admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Healthy: calls flow and their outcomes are counted.
    Closed,
    /// Tripped: calls are rejected until the open duration has passed.
    Open,
    /// On trial: a few probe calls decide between closing and re-opening.
    HalfOpen,
    /// Held open by an operator until reset.
    ForcedOpen,
    /// Switched off by an operator: everything is admitted and nothing is counted.
    Disabled,
}

impl State {
    /// The state's name in snake case, as it appears in events and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
            Self::ForcedOpen => "forced_open",
            Self::Disabled => "disabled",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
