//! What a supervisor's mailbox carries: the child API's calls, its own restart retries, and
//! the reports of its in-place children.

use ractor::{ActorCell, RpcReplyPort};

use crate::supervisor::mailbox::{InPlaceReport, SupervisorMailbox};
use crate::{ChildCounts, ChildId, ChildInfo, ChildOpError, ChildSpec, SupervisorStatus};

/// Requests a supervisor handles, one at a time.
pub(crate) enum SupervisorMsg {
    /// Retry a restart that failed (OTP's `try_again_restart` cast).
    TryAgain(ChildId),
    /// An in-place worker failed, or its own restart failed (see
    /// [`FailureReporter`](crate::FailureReporter)).
    InPlace(InPlaceReport),
    /// [`SupervisorRef::start_child`](crate::SupervisorRef::start_child).
    StartChild(ChildSpec, RpcReplyPort<Result<ActorCell, ChildOpError>>),
    /// [`SupervisorRef::start_dynamic_child`](crate::SupervisorRef::start_dynamic_child).
    StartDynamicChild(ChildId, RpcReplyPort<Result<ActorCell, ChildOpError>>),
    /// [`SupervisorRef::terminate_child`](crate::SupervisorRef::terminate_child).
    TerminateChild(ChildId, RpcReplyPort<Result<(), ChildOpError>>),
    /// [`SupervisorRef::restart_child`](crate::SupervisorRef::restart_child).
    RestartChild(ChildId, RpcReplyPort<Result<ActorCell, ChildOpError>>),
    /// [`SupervisorRef::delete_child`](crate::SupervisorRef::delete_child).
    DeleteChild(ChildId, RpcReplyPort<Result<(), ChildOpError>>),
    /// [`SupervisorRef::which_children`](crate::SupervisorRef::which_children).
    WhichChildren(RpcReplyPort<Vec<ChildInfo>>),
    /// [`SupervisorRef::count_children`](crate::SupervisorRef::count_children).
    CountChildren(RpcReplyPort<ChildCounts>),
    /// [`SupervisorRef::status`](crate::SupervisorRef::status).
    Status(RpcReplyPort<SupervisorStatus>),
}

impl SupervisorMsg {
    /// Where the in-place children of the supervisor `supervisor` send their reports.
    pub(crate) fn mailbox(supervisor: ActorCell) -> SupervisorMailbox {
        SupervisorMailbox::new(supervisor, post_report)
    }
}

/// Posts an in-place worker's report to its supervisor; `false` if the supervisor is gone.
fn post_report(supervisor: &ActorCell, report: InPlaceReport) -> bool {
    supervisor
        .send_message(SupervisorMsg::InPlace(report))
        .is_ok()
}
