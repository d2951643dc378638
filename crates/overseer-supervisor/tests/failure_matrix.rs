//! Failures in start, handle and stop, each as a panic and as a returned error: what the
//! supervisor sees and does. Public API only, paused clock.

mod common;

use std::time::Duration;

use common::*;
use overseer_supervisor::{
    ChildOpError, EventKind, ExitReason, StartError, SupervisionTree, SupervisorSpec, TreeError,
};

fn tree_spec(child: overseer_supervisor::ChildSpec) -> SupervisorSpec {
    SupervisorSpec::one_for_one("root")
        .intensity(10, Duration::from_secs(5))
        .child(child)
}

#[tokio::test(start_paused = true)]
async fn a_panic_in_pre_start_fails_the_start_with_the_panic_message() {
    let error = SupervisionTree::start(tree_spec(worker_failing_at("w", FailureSite::StartPanic)))
        .await
        .expect_err("the start fails");
    let TreeError::StartFailed(StartError::ChildFailed { child, cause }) = error else {
        panic!("unexpected error {error:?}");
    };
    assert_eq!(child.as_str(), "w");
    assert_eq!(*cause, StartError::Panicked("boom in pre_start".into()));
}

#[tokio::test(start_paused = true)]
async fn an_error_in_pre_start_fails_the_start_with_the_error() {
    let error = SupervisionTree::start(tree_spec(worker_failing_at("w", FailureSite::StartError)))
        .await
        .expect_err("the start fails");
    let TreeError::StartFailed(StartError::ChildFailed { cause, .. }) = error else {
        panic!("unexpected error {error:?}");
    };
    assert_eq!(*cause, StartError::Failed("error in pre_start".into()));
}

#[tokio::test(start_paused = true)]
async fn a_child_added_at_run_time_that_fails_to_start_is_reported_and_not_kept() {
    let tree = SupervisionTree::start(SupervisorSpec::one_for_one("root"))
        .await
        .expect("tree starts");
    let error = tree
        .root()
        .start_child(worker_failing_at("late", FailureSite::StartPanic))
        .await
        .expect_err("the start fails");
    assert_eq!(
        error,
        ChildOpError::StartFailed(StartError::Panicked("boom in pre_start".into()))
    );
    assert_eq!(tree.root().count_children().await.unwrap().specs, 0);
}

#[tokio::test(start_paused = true)]
async fn a_panic_in_handle_is_reported_as_a_panic_and_the_child_restarted() {
    let tree = SupervisionTree::start(tree_spec(worker("w")))
        .await
        .unwrap();
    let mut events = tree.subscribe();
    send(&tree, &["w"], Command::Panic).await;
    let seen = events_until(&mut events, is("root/w", started)).await;
    let reasons: Vec<&EventKind> = seen.iter().map(|event| &event.kind).collect();
    assert_eq!(
        reasons,
        [
            &EventKind::Stopped {
                reason: ExitReason::Panicked("boom in handle".into())
            },
            &EventKind::Started
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn an_error_in_handle_is_reported_as_a_failure_and_the_child_restarted() {
    let tree = SupervisionTree::start(tree_spec(worker("w")))
        .await
        .unwrap();
    let mut events = tree.subscribe();
    send(&tree, &["w"], Command::Fail).await;
    let seen = events_until(&mut events, is("root/w", started)).await;
    assert_eq!(
        seen[0].kind,
        EventKind::Stopped {
            reason: ExitReason::Failed("error in handle".into())
        }
    );
}

#[tokio::test(start_paused = true)]
async fn a_panic_in_post_stop_turns_a_normal_exit_into_an_abnormal_one() {
    let spec = tree_spec(
        worker_failing_at("w", FailureSite::StopPanic)
            .restart(overseer_supervisor::Restart::Transient),
    );
    let tree = SupervisionTree::start(spec).await.unwrap();
    let mut events = tree.subscribe();
    send(&tree, &["w"], Command::Stop(None)).await;
    let seen = events_until(&mut events, is("root/w", started)).await;
    assert_eq!(
        seen[0].kind,
        EventKind::Stopped {
            reason: ExitReason::Panicked("boom in post_stop".into())
        },
        "a transient child is restarted because its exit became abnormal"
    );
}

#[tokio::test(start_paused = true)]
async fn an_error_in_post_stop_turns_a_normal_exit_into_an_abnormal_one() {
    let spec = tree_spec(
        worker_failing_at("w", FailureSite::StopError)
            .restart(overseer_supervisor::Restart::Transient),
    );
    let tree = SupervisionTree::start(spec).await.unwrap();
    let mut events = tree.subscribe();
    send(&tree, &["w"], Command::Stop(None)).await;
    let seen = events_until(&mut events, is("root/w", started)).await;
    assert_eq!(
        seen[0].kind,
        EventKind::Stopped {
            reason: ExitReason::Failed("error in post_stop".into())
        }
    );
}

#[tokio::test(start_paused = true)]
async fn a_failure_in_post_stop_during_shutdown_counts_as_stopped_and_is_reported() {
    for (site, died_of) in [
        (
            FailureSite::StopPanic,
            ExitReason::Panicked("boom in post_stop".into()),
        ),
        (
            FailureSite::StopError,
            ExitReason::Failed("error in post_stop".into()),
        ),
    ] {
        let tree = SupervisionTree::start(tree_spec(worker_failing_at("w", site)))
            .await
            .unwrap();
        let mut events = tree.subscribe();
        let cell = child(&tree, &["w"]).await.unwrap().cell.unwrap();
        tree.root().terminate_child("w").await.expect("terminated");
        assert_eq!(cell.get_status(), ractor::ActorStatus::Stopped, "{site:?}");
        assert!(tree.root().is_alive(), "the supervisor survives");
        let seen = events_until(&mut events, is("root/w", stopped)).await;
        assert_eq!(
            seen.last().map(|event| &event.kind),
            Some(&EventKind::Stopped { reason: died_of }),
            "what it died of, not `shutdown` (OTP's shutdown_error)"
        );
        // Once reported, the failure is not reported again at the next stop.
        tree.root().restart_child("w").await.expect("restarted");
        let mut events = tree.subscribe();
        tree.shutdown(Duration::from_secs(5)).await.unwrap();
        let seen = events_until(&mut events, is("root/w", stopped)).await;
        assert!(
            matches!(&seen.last().unwrap().kind, EventKind::Stopped { reason } if reason != &ExitReason::Shutdown),
            "its post_stop fails again"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_worker_stopped_after_a_failure_it_recovered_from_reports_shutdown() {
    let tree = SupervisionTree::start(tree_spec(worker("w")))
        .await
        .unwrap();
    let mut events = tree.subscribe();
    send(&tree, &["w"], Command::Panic).await;
    events_until(&mut events, is("root/w", started)).await;
    tree.root().terminate_child("w").await.expect("terminated");
    let seen = events_until(&mut events, is("root/w", stopped)).await;
    assert_eq!(
        seen.last().map(|event| &event.kind),
        Some(&EventKind::Stopped {
            reason: ExitReason::Shutdown
        }),
        "the earlier incarnation's panic is not this one's"
    );
}

#[tokio::test(start_paused = true)]
async fn a_child_that_stops_itself_with_a_reason_reports_that_reason() {
    let tree = SupervisionTree::start(tree_spec(worker("w")))
        .await
        .unwrap();
    let mut events = tree.subscribe();
    send(&tree, &["w"], Command::Stop(Some("shutdown:done".into()))).await;
    let seen = events_until(&mut events, is("root/w", started)).await;
    assert_eq!(
        seen[0].kind,
        EventKind::Stopped {
            reason: ExitReason::ShutdownWith("done".into())
        },
        "a permanent child is restarted even after a normal exit"
    );
}

#[tokio::test(start_paused = true)]
async fn a_supervisor_whose_check_before_start_panics_fails_to_start_with_the_panic() {
    let spec = SupervisorSpec::one_for_one("root").before_start(|| panic!("not today"));
    let error = SupervisionTree::start(spec)
        .await
        .expect_err("the start fails");
    assert_eq!(
        error,
        TreeError::StartFailed(StartError::Panicked("not today".into()))
    );
}

#[tokio::test(start_paused = true)]
async fn a_supervisor_whose_check_before_start_fails_fails_to_start_with_that_error() {
    let spec = SupervisorSpec::one_for_one("root")
        .before_start(|| Err(StartError::InvalidSpec("no quota".into())));
    let error = SupervisionTree::start(spec)
        .await
        .expect_err("the start fails");
    assert_eq!(
        error,
        TreeError::StartFailed(StartError::InvalidSpec("no quota".into()))
    );
}
