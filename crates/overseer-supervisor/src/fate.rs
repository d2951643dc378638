//! What a supervisor decides about a child, told to whoever watches it.

use std::sync::Arc;

use crate::ChildPath;

/// What a supervisor decided about one of its children, told to the child's
/// [`watch`](crate::ChildSpec::watch) callback.
///
/// | fate | when | the child |
/// |---|---|---|
/// | [`Restarting`](Self::Restarting) | it exited and will be restarted, or a group restart stopped it | will run again (unless the supervisor gives up: then [`Stopped`](Self::Stopped) follows) |
/// | [`Stopped`](Self::Stopped) | it exited and is not restarted, or was terminated | is not running; its spec is kept |
/// | [`Removed`](Self::Removed) | it exited or was terminated and its spec was deleted (temporary, dynamic) or deleted by hand | is gone for good from this supervisor instance |
/// | [`SupervisorExiting`](Self::SupervisorExiting) | its supervisor is exiting (escalation, automatic shutdown, or stopped by its own parent) | is stopped with it; it runs again if the supervisor's parent restarts the supervisor and the child is in the supervisor's spec |
///
/// After [`SupervisorExiting`](Self::SupervisorExiting) the child hears once more when the
/// supervisor's parent decides the supervisor's fate: the same [`Stopped`](Self::Stopped) or
/// [`Removed`](Self::Removed) if the supervisor stays down, [`Removed`](Self::Removed) if it is
/// restarted and the child was added at runtime (a new supervisor starts only its spec's
/// children), and nothing if it is restarted and the child is in its spec (it simply starts
/// again). This holds however the supervisor ended: killed at its shutdown timeout, or
/// failing in a restart before it started the child. Once the root supervisor has exited (or
/// been killed by a tree shutdown past its deadline), every child still waiting is told
/// [`Stopped`](Self::Stopped). A failed [`restart_child`](crate::SupervisorRef::restart_child)
/// tells the child [`Stopped`](Self::Stopped) (it stays stopped) and a failed
/// [`start_child`](crate::SupervisorRef::start_child) tells it [`Removed`](Self::Removed),
/// which reaches whatever part of a nested supervisor had started.
///
/// The fates are the outcomes of OTP's restart decision for one child (restarted, kept,
/// deleted) and its supervisor's exit, so the set is fixed and the enum is not
/// `#[non_exhaustive]`: a watcher matches on it exhaustively.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChildFate {
    /// About to be started again.
    Restarting,
    /// Not running; the spec is kept.
    Stopped,
    /// Not running and forgotten.
    Removed,
    /// Stopped because its supervisor is exiting; whether it comes back is up to the
    /// supervisor's parent.
    SupervisorExiting,
}

/// A callback told each [`ChildFate`] decided for a child, with the child's path.
pub(crate) type FateWatcher = Arc<dyn Fn(&ChildPath, ChildFate) + Send + Sync>;
