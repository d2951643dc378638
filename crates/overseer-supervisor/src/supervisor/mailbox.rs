//! Where an in-place worker's reports reach its supervisor, and what they say.

use ractor::ActorCell;

use crate::ExitReason;

/// What an in-place worker reports to its supervisor.
#[derive(Debug)]
pub(crate) enum InPlaceReport {
    /// It failed with `reason` and has parked (see [`FailureReporter::report`](crate::FailureReporter::report)); `generation`
    /// is how many parks and rebuilds it had seen, so that a report overtaken by a group
    /// restart is recognised as stale.
    Failed {
        child: ActorCell,
        reason: ExitReason,
        generation: u64,
    },
    /// Its own restart ([`InPlaceRestart`](crate::InPlaceRestart)) failed to rebuild it, after `previous_exit`.
    RebuildFailed {
        child: ActorCell,
        previous_exit: ExitReason,
    },
}

/// Where an in-place worker's reports reach its supervisor: the supervisor's actor, and the
/// function that posts a report in its mailbox (`false` if the supervisor is gone).
///
/// A plain function, given by the supervisor (see `message.rs`), rather than the supervisor's
/// message type itself: that type carries child specs, which name the
/// [`StartContext`](crate::StartContext) that hands out reporters, so naming it below would
/// close a circle of imports. It is called only to report, never on a restart the worker
/// carries out itself.
#[derive(Clone)]
pub(crate) struct SupervisorMailbox {
    supervisor: ActorCell,
    post: fn(&ActorCell, InPlaceReport) -> bool,
}

impl SupervisorMailbox {
    pub(crate) fn new(supervisor: ActorCell, post: fn(&ActorCell, InPlaceReport) -> bool) -> Self {
        Self { supervisor, post }
    }

    /// The supervisor's actor.
    pub(crate) fn supervisor(&self) -> &ActorCell {
        &self.supervisor
    }

    /// Posts `report` to the supervisor; `false` if it is gone.
    pub(crate) fn post(&self, report: InPlaceReport) -> bool {
        (self.post)(&self.supervisor, report)
    }
}

impl std::fmt::Debug for SupervisorMailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SupervisorMailbox")
            .field("supervisor", &self.supervisor.get_id())
            .finish()
    }
}
