//! Where an agent is in its life, as its slot keeps it: whether asks are served, queued or
//! refused.

use std::sync::atomic::{AtomicU8, Ordering};

/// Where an agent is in its life: whether asks to it are served, queued or refused. Its slot
/// keeps it in one atomic ([`LifecycleCell`]), read on every ask.
///
/// | state | asks | the incarnation is woken |
/// |---|---|---|
/// | [`Starting`](Self::Starting) | queue | when it is installed |
/// | [`Running`](Self::Running) | served | yes |
/// | [`Restarting`](Self::Restarting) | queue (within each ask's deadline), or refused with [`AskError::Restarting`](crate::AskError::Restarting) if the agent fails fast | no: the next incarnation drains the queue when it is installed |
/// | [`SupervisorExiting`](Self::SupervisorExiting) | as while restarting | yes: a running incarnation serves until it is stopped |
/// | [`Stopped`](Self::Stopped) | refused with [`AskError::AgentStopped`](crate::AskError::AgentStopped) (or why the system closed), the queue too | no |
/// | [`NotInTree`](Self::NotInTree) | refused with [`AskError::NotInTree`](crate::AskError::NotInTree), the queue too | no |
/// | [`Unhealthy`](Self::Unhealthy) | refused with [`AskError::Unhealthy`](crate::AskError::Unhealthy); those queued before are served | yes |
///
/// The transitions, and who makes them:
///
/// | from | to | by | when |
/// |---|---|---|---|
/// | (none) | `Starting` | `Slot::new` | the agent is declared, or a template's child first starts |
/// | `Starting` | `NotInTree` | `AnySlot::tree_started` | the tree is running and did not place the agent |
/// | `NotInTree` | `Starting` | `Slot::place` | the agent is added to the running tree |
/// | any | `Running` | `Slot::install` | an incarnation starts serving (first start, restart, rebuild in place) |
/// | any | `Restarting` | `AnySlot::on_fate` | its supervisor will restart it |
/// | any | `SupervisorExiting` | `AnySlot::on_fate` | its supervisor is exiting (its parent decides) |
/// | any | `Stopped` | `AnySlot::on_fate`, `AnySlot::shut_down` | stopped or removed for good, or the system shut down |
/// | `Running` | `Unhealthy` | the agent's actor | a health check failed |
/// | `Unhealthy` | `Running` | the agent's actor | a health check passed |
///
/// The unconditional moves are plain stores (the latest wins); the conditional ones
/// (`Starting` ⇄ `NotInTree`, `Running` ⇄ `Unhealthy`) are compare-and-swaps, so they never
/// undo another move (a restart's `Restarting`, a stop's `Stopped`).
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lifecycle {
    /// Not started yet: asks queue.
    Starting = 0,
    /// An incarnation serves asks.
    Running = 1,
    /// Between incarnations: asks queue (or fail fast).
    Restarting = 2,
    /// Its supervisor is exiting: asks queue as while restarting, but a running incarnation
    /// still serves them until it is stopped.
    SupervisorExiting = 3,
    /// Stopped for good (until something starts it again): asks fail at once.
    Stopped = 4,
    /// Declared, but not started by the running tree (never placed in it, or not yet): asks
    /// fail at once, until it is added and starts.
    NotInTree = 5,
    /// Its health check failed: asks fail at once (as with an open breaker), until a check
    /// passes or the agent restarts.
    Unhealthy = 6,
}

impl Lifecycle {
    /// The state stored as `value`.
    ///
    /// Only [`LifecycleCell`] stores states, always as `state as u8`, so every value read
    /// back is one of the seven. Should another value ever be read, it is taken as
    /// [`Stopped`](Self::Stopped), the state that never leaves an ask waiting: asks fail at
    /// once with a typed error rather than queue for an incarnation that may not come.
    #[inline]
    const fn from_u8(value: u8) -> Self {
        match value {
            0 => Self::Starting,
            1 => Self::Running,
            2 => Self::Restarting,
            3 => Self::SupervisorExiting,
            5 => Self::NotInTree,
            6 => Self::Unhealthy,
            _ => Self::Stopped,
        }
    }
}

/// A [`Lifecycle`] in one atomic byte.
#[derive(Debug)]
pub(crate) struct LifecycleCell(AtomicU8);

impl LifecycleCell {
    pub(crate) const fn new(state: Lifecycle) -> Self {
        Self(AtomicU8::new(state as u8))
    }

    /// The current state.
    #[inline]
    pub(crate) fn get(&self) -> Lifecycle {
        Lifecycle::from_u8(self.0.load(Ordering::Acquire))
    }

    /// Moves to `state`, whatever the state was.
    #[inline]
    pub(crate) fn set(&self, state: Lifecycle) {
        self.0.store(state as u8, Ordering::Release);
    }

    /// Moves from `from` to `to` if the state is `from`; returns whether it moved.
    pub(crate) fn replace(&self, from: Lifecycle, to: Lifecycle) -> bool {
        self.0
            .compare_exchange(from as u8, to as u8, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Lifecycle; 7] = [
        Lifecycle::Starting,
        Lifecycle::Running,
        Lifecycle::Restarting,
        Lifecycle::SupervisorExiting,
        Lifecycle::Stopped,
        Lifecycle::NotInTree,
        Lifecycle::Unhealthy,
    ];

    #[test]
    fn every_state_reads_back_as_stored() {
        for state in ALL {
            assert_eq!(Lifecycle::from_u8(state as u8), state);
            let cell = LifecycleCell::new(Lifecycle::Starting);
            cell.set(state);
            assert_eq!(cell.get(), state);
        }
    }

    #[test]
    fn an_unknown_value_reads_as_stopped() {
        for value in 7..=u8::MAX {
            assert_eq!(Lifecycle::from_u8(value), Lifecycle::Stopped);
        }
    }

    #[test]
    fn a_conditional_move_happens_only_from_the_state_named() {
        let cell = LifecycleCell::new(Lifecycle::Starting);
        assert!(cell.replace(Lifecycle::Starting, Lifecycle::NotInTree));
        assert!(!cell.replace(Lifecycle::Starting, Lifecycle::NotInTree));
        assert_eq!(cell.get(), Lifecycle::NotInTree);
        cell.set(Lifecycle::Running);
        assert!(!cell.replace(Lifecycle::NotInTree, Lifecycle::Starting));
        assert_eq!(cell.get(), Lifecycle::Running);
    }
}
