//! What a dropped call does, as the `# Cancel safety` sections of `SupervisorRef` and
//! `SupervisionTree::shutdown` say: nothing before its first poll, and from then on the
//! supervisor carries the request out anyway. Public API only, paused clock, no sleeps: a call
//! made after the dropped one is answered after it (one mailbox, in order).

mod common;

use std::future::Future;
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use common::{events_until, is, stopped, worker};
use overseer_supervisor::{
    ChildState, EventKind, ExitReason, Restart, SupervisionTree, SupervisorSpec,
};

/// Polls `call` once, then drops it; says whether it was still waiting for its answer.
async fn poll_once_and_drop<F: Future>(call: F) -> bool {
    let mut call = pin!(call);
    std::future::poll_fn(|context| Poll::Ready(call.as_mut().poll(context).is_pending())).await
}

#[tokio::test(start_paused = true)]
async fn a_start_child_dropped_before_its_first_poll_starts_nothing() {
    let tree = SupervisionTree::start(SupervisorSpec::one_for_one("root"))
        .await
        .expect("tree starts");

    drop(tree.root().start_child(worker("never")));

    let counts = tree
        .root()
        .count_children()
        .await
        .expect("supervisor answers");
    assert_eq!(counts.specs, 0);
    tree.shutdown(Duration::from_secs(5))
        .await
        .expect("clean shutdown");
}

#[tokio::test(start_paused = true)]
async fn a_start_child_dropped_after_its_first_poll_still_starts_the_child() {
    let tree = SupervisionTree::start(SupervisorSpec::one_for_one("root"))
        .await
        .expect("tree starts");

    let waiting = poll_once_and_drop(tree.root().start_child(worker("late"))).await;
    assert!(
        waiting,
        "the answer had not come yet when the call was dropped"
    );

    let children = tree
        .root()
        .which_children()
        .await
        .expect("supervisor answers");
    assert_eq!(children.len(), 1);
    assert_eq!(children[0].id.as_str(), "late");
    assert_eq!(children[0].state, ChildState::Running);
    tree.shutdown(Duration::from_secs(5))
        .await
        .expect("clean shutdown");
}

#[tokio::test(start_paused = true)]
async fn a_terminate_child_dropped_after_its_first_poll_still_stops_and_forgets_the_child() {
    let spec = SupervisorSpec::one_for_one("root")
        .child(worker("kept"))
        .child(worker("temporary").restart(Restart::Temporary));
    let tree = SupervisionTree::start(spec).await.expect("tree starts");
    let mut events = tree.subscribe();

    assert!(poll_once_and_drop(tree.root().terminate_child("kept")).await);
    assert!(poll_once_and_drop(tree.root().terminate_child("temporary")).await);

    let children = tree
        .root()
        .which_children()
        .await
        .expect("supervisor answers");
    assert_eq!(children.len(), 1, "the temporary child is forgotten");
    assert_eq!(children[0].id.as_str(), "kept");
    assert_eq!(
        children[0].state,
        ChildState::NotRunning,
        "its spec is kept"
    );
    for path in ["root/kept", "root/temporary"] {
        let seen = events_until(&mut events, |event| {
            event.path.as_str() == path && stopped(&event.kind)
        })
        .await;
        let last = seen.last().expect("the stop was seen");
        assert_eq!(
            last.kind,
            EventKind::Stopped {
                reason: ExitReason::Shutdown
            }
        );
    }
    tree.shutdown(Duration::from_secs(5))
        .await
        .expect("clean shutdown");
}

#[tokio::test(start_paused = true)]
async fn a_shutdown_dropped_after_its_first_poll_still_stops_the_tree_in_order() {
    let spec = SupervisorSpec::one_for_one("root")
        .child(worker("first"))
        .child(worker("second"));
    let tree = SupervisionTree::start(spec).await.expect("tree starts");
    let mut events = tree.subscribe();

    assert!(poll_once_and_drop(tree.shutdown(Duration::from_secs(5))).await);

    let seen = events_until(&mut events, is("root", stopped)).await;
    let stops: Vec<&str> = seen
        .iter()
        .filter(|event| stopped(&event.kind))
        .map(|event| event.path.as_str())
        .collect();
    assert_eq!(stops, ["root/second", "root/first", "root"]);
    assert!(tree.wait_for_exit(Duration::from_secs(5)).await);
}
