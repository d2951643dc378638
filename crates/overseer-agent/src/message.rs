//! The messages an agent's actor gets: its slot wakes it, its supervisor asks it to park.

use tokio::sync::oneshot;

/// The messages an agent's actor gets.
pub(crate) enum AgentMsg {
    /// Work is waiting in the slot.
    Wake,
    /// Its supervisor restarts a group while the agent works: park it after the task.
    Park(oneshot::Sender<()>),
    /// Time for the agent's health check (run only if it is idle).
    CheckHealth,
}

impl std::fmt::Debug for AgentMsg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Wake => "Wake",
            Self::Park(_) => "Park",
            Self::CheckHealth => "CheckHealth",
        })
    }
}
