//! Erlang/OTP supervision trees on [ractor](https://docs.rs/ractor), with OTP's exact semantics.
//!
//! A tree is built in code: a [`SupervisorSpec`] holds an ordered list of [`ChildSpec`]s, each
//! a worker (any ractor actor, made by a start function that may fail) or a nested supervisor.
//! [`SupervisionTree`] starts it; a [`SupervisorRef`] offers OTP's child API on a running
//! supervisor; every lifecycle change is a [`LifecycleEvent`] on the tree's [`EventBus`] and a
//! `tracing` event.
//!
//! What it implements, as OTP's `supervisor` does:
//! * strategies `one_for_one`, `one_for_all`, `rest_for_one` and [`Strategy::Dynamic`]
//!   (OTP's `simple_one_for_one`);
//! * restart types [`Restart::Permanent`], [`Restart::Transient`], [`Restart::Temporary`], with
//!   OTP's exit-reason rules ([`ExitReason::is_normal`]);
//! * restart intensity per supervisor, counted in whole seconds with an inclusive window
//!   ([`RestartWindow`]); the restart that would exceed it is not made, the supervisor stops
//!   its children and exits with `shutdown`, and its parent decides by its restart type;
//! * failed restarts retried and counted, as OTP's `try_again_restart`;
//! * ordered shutdown (reverse start order, depth first) with [`Shutdown`] specs;
//! * significant children and [`AutoShutdown`].
//!
//! What follows a child's exit is decided by one pure function, [`decide_restart`], from the
//! child's restart type, its exit reason, the strategy and the restart window; it returns a
//! [`RestartDecision`] (see its rule table), and the supervisor only carries it out.
//!
//! Every event has an [`EventId`] and names the event that caused it, if any (see
//! [`EventId`] for the rules): the crash that caused a restart, the
//! restart that exceeded the intensity and caused an escalation.
//!
//! All time goes through `tokio::time`, so a paused tokio clock drives every window and
//! timeout.
//!
//! ```
//! use overseer_supervisor::prelude::*;
//! use ractor::{Actor, ActorProcessingErr, ActorRef};
//! use std::time::Duration;
//!
//! struct Echo;
//! impl Actor for Echo {
//!     type Msg = String;
//!     type State = ();
//!     type Arguments = ();
//!     async fn pre_start(&self, _: ActorRef<String>, _: ()) -> Result<(), ActorProcessingErr> {
//!         Ok(())
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let spec = SupervisorSpec::one_for_one("root")
//!     .intensity(3, Duration::from_secs(5))
//!     .child(ChildSpec::actor("echo", || (Echo, ())).restart(Restart::Transient));
//! let tree = SupervisionTree::start(spec).await?;
//! let counts = tree.root().count_children().await?;
//! assert_eq!(counts.active, 1);
//! tree.shutdown(Duration::from_secs(5)).await?;
//! # Ok(())
//! # }
//! ```

mod causality;
mod census;
mod child_info;
mod child_spec;
mod decision;
mod error;
mod event;
mod exit_reason;
mod fate;
mod id;
mod intensity;
mod restart;
mod shutdown;
mod strategy;
mod subtree_watchers;
mod supervisor;
mod supervisor_ref;
mod supervisor_spec;
mod time;
mod tree;
mod worker;

pub use causality::{EventId, EventIds, ExitCause};
pub use child_info::{ChildCounts, ChildInfo, ChildState, SupervisorStatus};
pub use child_spec::{ChildSpec, ChildType};
pub use decision::{count_restart, decide_restart, Decider, RestartDecision, RestartScope};
pub use error::{ChildOpError, SpecError, StartError, TreeError};
pub use event::{EventBus, EventKind, LifecycleEvent};
pub use exit_reason::{panic_message, ChildExit, ExitReason};
pub use fate::ChildFate;
pub use id::{ChildId, ChildPath, IdError};
pub use intensity::{RestartWindow, Verdict};
pub use restart::{decide_on_exit, ExitDecision, Restart};
pub use shutdown::Shutdown;
pub use strategy::{AutoShutdown, Strategy};
pub use supervisor::in_place::{
    child_reply, AfterFailure, FailureReporter, InPlaceChild, InPlaceRestart,
};
pub use supervisor_ref::SupervisorRef;
pub use supervisor_spec::{SupervisorSpec, MAX_TREE_DEPTH};
pub use time::deadline_after;
pub use tree::{SupervisionTree, TreeBuilder};
pub use worker::{StartContext, Supervised, SupervisedState};

/// What a user of supervisors types every day.
pub mod prelude {
    pub use crate::{
        AutoShutdown, ChildId, ChildSpec, EventKind, ExitReason, LifecycleEvent, Restart, Shutdown,
        StartContext, StartError, Strategy, SupervisionTree, SupervisorRef, SupervisorSpec,
    };
}
