//! What the child API reports about children: OTP's `which_children/1` and `count_children/1`.

use std::fmt;
use std::time::Duration;

use ractor::ActorCell;
use serde::{Deserialize, Serialize};

use crate::{ChildId, ChildPath, ChildType, Restart};

/// Whether a child is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChildState {
    /// Running.
    Running,
    /// A restart attempt failed; a retry is queued.
    Restarting,
    /// Stopped, spec kept.
    NotRunning,
}

/// One child, as [`SupervisorRef::which_children`](crate::SupervisorRef::which_children)
/// reports it. [`ChildInfo::supervisor`] gives a handle to a child that is a running supervisor
/// (it is implemented with [`SupervisorRef`](crate::SupervisorRef), which this file lies below).
#[derive(Clone)]
#[non_exhaustive]
pub struct ChildInfo {
    /// The child's id.
    pub id: ChildId,
    /// Its path in the tree.
    pub path: ChildPath,
    /// Worker or supervisor.
    pub child_type: ChildType,
    /// Its restart type.
    pub restart: Restart,
    /// Whether it runs.
    pub state: ChildState,
    /// Its actor, when running.
    pub cell: Option<ActorCell>,
    pub(crate) call_timeout: Duration,
}

impl fmt::Debug for ChildInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildInfo")
            .field("id", &self.id)
            .field("path", &self.path)
            .field("child_type", &self.child_type)
            .field("restart", &self.restart)
            .field("state", &self.state)
            .field("actor", &self.cell.as_ref().map(ActorCell::get_id))
            .finish()
    }
}

/// Child counts, as OTP's `count_children/1` returns them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChildCounts {
    /// All children, running or not.
    pub specs: usize,
    /// Running children.
    pub active: usize,
    /// Children that are supervisors.
    pub supervisors: usize,
    /// Children that are workers.
    pub workers: usize,
}

/// A running supervisor as it reports itself
/// ([`SupervisorRef::status`](crate::SupervisorRef::status)): where it is, how it restarts, and
/// how much of its restart intensity is used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SupervisorStatus {
    /// Its path in the tree.
    pub path: ChildPath,
    /// Its restart strategy.
    pub strategy: crate::Strategy,
    /// The restarts it tolerates within [`period`](Self::period) (OTP's `intensity`); one more
    /// and it gives up (escalates).
    pub max_restarts: u32,
    /// The window restarts are counted in (OTP's `period`); `period_ms` in JSON.
    #[serde(rename = "period_ms", with = "overseer_serde::millis")]
    pub period: Duration,
    /// The restarts that count now: those within the last `period` (whole seconds, both edges
    /// inclusive, as [`RestartWindow`](crate::RestartWindow) counts them).
    pub restarts_in_window: u32,
}
