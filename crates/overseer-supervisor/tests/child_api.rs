//! The child API of a running supervisor and its typed outcomes. Public API only.

mod common;

use std::time::Duration;

use common::*;
use overseer_supervisor::{
    ChildOpError, ChildSpec, ChildState, Restart, SpecError, SupervisionTree, SupervisorSpec,
};

#[tokio::test(start_paused = true)]
async fn a_dynamic_supervisor_makes_children_from_its_template() {
    let pool = SupervisorSpec::dynamic("pool", worker("template").restart(Restart::Transient));
    let tree = SupervisionTree::start(
        SupervisorSpec::one_for_one("root").child(ChildSpec::supervisor(pool)),
    )
    .await
    .unwrap();
    let pool = child(&tree, &["pool"]).await.unwrap().supervisor().unwrap();
    pool.start_dynamic_child("w1").await.expect("w1 starts");
    pool.start_dynamic_child("w2").await.expect("w2 starts");
    assert_eq!(
        pool.start_dynamic_child("w1").await.unwrap_err(),
        ChildOpError::AlreadyStarted("w1".into())
    );
    let counts = pool.count_children().await.unwrap();
    assert_eq!((counts.specs, counts.active, counts.workers), (2, 2, 2));
    assert_eq!(
        pool.restart_child("w1").await.unwrap_err(),
        ChildOpError::NotAllowedOnDynamic
    );
    assert_eq!(
        pool.delete_child("w1").await.unwrap_err(),
        ChildOpError::NotAllowedOnDynamic
    );
    assert_eq!(
        pool.start_child(worker("x")).await.unwrap_err(),
        ChildOpError::NotAllowedOnDynamic
    );
    pool.terminate_child("w1").await.expect("terminated");
    assert_eq!(
        pool.count_children().await.unwrap().specs,
        1,
        "a dynamic child is forgotten"
    );
    assert_eq!(
        tree.root().start_dynamic_child("y").await.unwrap_err(),
        ChildOpError::OnlyOnDynamic
    );
}

#[tokio::test(start_paused = true)]
async fn the_child_api_reports_otp_outcomes_on_a_static_supervisor() {
    let tree = SupervisionTree::start(
        SupervisorSpec::one_for_one("root")
            .child(worker("a"))
            .child(worker("t").restart(Restart::Temporary)),
    )
    .await
    .unwrap();
    let root = tree.root();
    assert_eq!(
        root.restart_child("a").await.unwrap_err(),
        ChildOpError::Running("a".into())
    );
    assert_eq!(
        root.delete_child("a").await.unwrap_err(),
        ChildOpError::Running("a".into())
    );
    assert_eq!(
        root.terminate_child("zz").await.unwrap_err(),
        ChildOpError::NotFound("zz".into())
    );
    root.terminate_child("a").await.unwrap();
    root.terminate_child("a")
        .await
        .expect("terminating a stopped child succeeds");
    let children = root.which_children().await.unwrap();
    assert_eq!(children[0].state, ChildState::NotRunning);
    assert!(children[0].cell.is_none());
    assert_eq!(
        root.start_child(worker("a")).await.unwrap_err(),
        ChildOpError::AlreadyPresent("a".into())
    );
    root.restart_child("a").await.expect("restarted by hand");
    root.terminate_child("t").await.unwrap();
    assert_eq!(
        root.restart_child("t").await.unwrap_err(),
        ChildOpError::NotFound("t".into()),
        "a terminated temporary child's spec is deleted"
    );
    root.start_child(worker("b")).await.expect("added");
    let ids: Vec<String> = root
        .which_children()
        .await
        .unwrap()
        .iter()
        .map(|c| c.id.to_string())
        .collect();
    assert_eq!(ids, ["a", "b"], "added children go last in start order");
}

#[tokio::test(start_paused = true)]
async fn invalid_children_added_at_run_time_are_rejected_with_typed_errors() {
    let tree = SupervisionTree::start(SupervisorSpec::one_for_one("root"))
        .await
        .unwrap();
    let root = tree.root();
    assert!(matches!(
        root.start_child(worker("s").restart(Restart::Transient).significant(true))
            .await,
        Err(ChildOpError::InvalidSpec(
            SpecError::SignificantWithoutAutoShutdown { .. }
        ))
    ));
    assert!(matches!(
        root.start_child(worker("")).await,
        Err(ChildOpError::InvalidSpec(SpecError::InvalidId {
            error: overseer_supervisor::IdError::Empty,
            ..
        }))
    ));
    assert!(matches!(
        root.start_child(ChildSpec::supervisor(
            SupervisorSpec::one_for_one("bad").intensity(1, Duration::ZERO)
        ))
        .await,
        Err(ChildOpError::InvalidSpec(SpecError::ZeroPeriod { .. }))
    ));
}

#[tokio::test(start_paused = true)]
async fn calls_after_the_tree_stopped_fail_with_supervisor_not_running() {
    let tree = SupervisionTree::start(SupervisorSpec::one_for_one("root").child(worker("a")))
        .await
        .unwrap();
    let root = tree.root().clone();
    tree.shutdown(Duration::from_secs(5)).await.unwrap();
    assert!(!root.is_alive());
    assert_eq!(
        root.which_children().await.unwrap_err(),
        ChildOpError::SupervisorNotRunning
    );
    assert_eq!(
        root.start_child(worker("b")).await.unwrap_err(),
        ChildOpError::SupervisorNotRunning
    );
    tree.shutdown(Duration::from_secs(5))
        .await
        .expect("stopping a stopped tree succeeds");
}

#[tokio::test(start_paused = true)]
async fn a_call_to_a_busy_supervisor_fails_at_its_timeout() {
    // The supervisor is busy waiting for a child that ignores the polite stop.
    let tree = SupervisionTree::start(SupervisorSpec::one_for_one("root").child(
        worker_failing_at("stubborn", FailureSite::StopHang).shutdown(
            overseer_supervisor::Shutdown::Timeout(Duration::from_secs(30)),
        ),
    ))
    .await
    .unwrap();
    let root = tree.root().clone();
    let terminating = tokio::spawn(async move { root.terminate_child("stubborn").await });
    tokio::task::yield_now().await;
    let impatient = tree
        .root()
        .clone()
        .with_call_timeout(Duration::from_secs(1));
    assert_eq!(
        impatient.count_children().await.unwrap_err(),
        ChildOpError::Timeout(Duration::from_secs(1))
    );
    assert_eq!(terminating.await.unwrap(), Ok(()), "killed after 30 s");
}

#[tokio::test(start_paused = true)]
async fn terminating_a_child_that_waits_for_a_restart_retry_cancels_the_retry() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    // The child's restarts fail until `healthy` is set; the supervisor keeps retrying.
    let healthy = Arc::new(AtomicBool::new(true));
    let spec = SupervisorSpec::one_for_one("root")
        .intensity(1_000_000, Duration::from_secs(1))
        .child(ChildSpec::worker("w", {
            let healthy = Arc::clone(&healthy);
            move |context: overseer_supervisor::StartContext| {
                let healthy = healthy.load(Ordering::SeqCst);
                async move {
                    if !healthy {
                        // Yield so the supervisor can take calls between retries.
                        tokio::task::yield_now().await;
                        return Err(overseer_supervisor::StartError::failed("down"));
                    }
                    context
                        .spawn(
                            TestWorker {
                                site: FailureSite::None,
                            },
                            (),
                        )
                        .await
                }
            }
        }));
    let tree = SupervisionTree::start(spec).await.unwrap();
    healthy.store(false, Ordering::SeqCst);
    send(&tree, &["w"], Command::Panic).await;
    let mut state = ChildState::Running;
    for _ in 0..100 {
        state = tree.root().which_children().await.unwrap()[0].state;
        if state == ChildState::Restarting {
            break;
        }
    }
    assert_eq!(state, ChildState::Restarting);
    tree.root().terminate_child("w").await.unwrap();
    healthy.store(true, Ordering::SeqCst);
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    let child = &tree.root().which_children().await.unwrap()[0];
    assert_eq!(
        child.state,
        ChildState::NotRunning,
        "the queued retry was dropped"
    );
    assert_eq!(
        tree.root().delete_child("w").await,
        Ok(()),
        "a terminated child can be deleted"
    );
}

#[tokio::test(start_paused = true)]
async fn a_watched_child_is_told_each_decision_its_supervisor_takes() {
    use overseer_supervisor::ChildFate;
    use std::sync::{Arc, Mutex};
    let fates: Arc<Mutex<Vec<(&'static str, ChildFate)>>> = Arc::default();
    let watched = |id: &'static str, restart: Restart| {
        let fates = Arc::clone(&fates);
        worker(id).restart(restart).watch(move |child, fate| {
            assert_eq!(child.as_str(), format!("root/{id}"));
            fates.lock().unwrap().push((id, fate))
        })
    };
    let spec = SupervisorSpec::one_for_one("root")
        .intensity(10, Duration::from_secs(5))
        .child(watched("p", Restart::Permanent))
        .child(watched("tr", Restart::Transient))
        .child(watched("tm", Restart::Temporary));
    let tree = SupervisionTree::start(spec).await.unwrap();
    let mut events = tree.subscribe();
    send(&tree, &["p"], Command::Panic).await;
    events_until(&mut events, is("root/p", started)).await;
    send(&tree, &["tr"], Command::Stop(None)).await;
    events_until(&mut events, is("root/tr", stopped)).await;
    send(&tree, &["tm"], Command::Fail).await;
    events_until(&mut events, is("root/tm", stopped)).await;
    tree.shutdown(Duration::from_secs(5)).await.unwrap();
    assert_eq!(
        *fates.lock().unwrap(),
        [
            ("p", ChildFate::Restarting),
            ("tr", ChildFate::Stopped),
            ("tm", ChildFate::Removed),
            ("p", ChildFate::SupervisorExiting),
            ("tr", ChildFate::SupervisorExiting),
            ("p", ChildFate::Stopped),
            ("tr", ChildFate::Stopped),
        ],
        "once the root has exited, nobody will start them again"
    );
}

type Fates = std::sync::Arc<std::sync::Mutex<Vec<(&'static str, overseer_supervisor::ChildFate)>>>;

fn watched_worker(id: &'static str, fates: &Fates) -> ChildSpec {
    let fates = std::sync::Arc::clone(fates);
    worker(id).watch(move |_, fate| fates.lock().unwrap().push((id, fate)))
}

#[tokio::test(start_paused = true)]
async fn a_child_under_a_supervisor_its_parent_does_not_restart_is_told_it_stopped() {
    use overseer_supervisor::ChildFate;
    let fates = Fates::default();
    let team = SupervisorSpec::one_for_one("team")
        .intensity(0, Duration::from_secs(5))
        .child(watched_worker("w", &fates));
    let tree = SupervisionTree::start(
        SupervisorSpec::one_for_one("root")
            .child(ChildSpec::supervisor(team).restart(Restart::Transient)),
    )
    .await
    .unwrap();
    let mut events = tree.subscribe();
    send(&tree, &["team", "w"], Command::Panic).await;
    events_until(&mut events, is("root/team", stopped)).await;
    let heard = fates.lock().unwrap().clone();
    assert_eq!(
        heard.last(),
        Some(&("w", ChildFate::Stopped)),
        "the transient team escalated with `shutdown` and stays stopped: {heard:?}"
    );
    assert_eq!(
        child(&tree, &["team"]).await.unwrap().state,
        ChildState::NotRunning
    );
    tree.shutdown(Duration::from_secs(5)).await.unwrap();
    assert_eq!(
        *fates.lock().unwrap(),
        [
            ("w", ChildFate::Restarting),
            ("w", ChildFate::SupervisorExiting),
            ("w", ChildFate::Stopped),
        ],
        "told once that it stopped"
    );
}

#[tokio::test(start_paused = true)]
async fn restarting_a_supervisor_removes_the_children_added_to_it_at_runtime() {
    use overseer_supervisor::ChildFate;
    let fates = Fates::default();
    let team = SupervisorSpec::one_for_one("team")
        .intensity(0, Duration::from_secs(5))
        .child(watched_worker("w", &fates));
    let tree = SupervisionTree::start(
        SupervisorSpec::one_for_one("root").child(ChildSpec::supervisor(team)),
    )
    .await
    .unwrap();
    let team = child(&tree, &["team"]).await.unwrap().supervisor().unwrap();
    team.start_child(watched_worker("extra", &fates))
        .await
        .unwrap();
    let mut events = tree.subscribe();
    send(&tree, &["team", "w"], Command::Panic).await;
    events_until(&mut events, is("root/team", started)).await;
    events_until(&mut events, is("root/team/w", started)).await;
    assert_eq!(
        *fates.lock().unwrap(),
        [
            ("w", ChildFate::Restarting),
            ("w", ChildFate::SupervisorExiting),
            ("extra", ChildFate::SupervisorExiting),
            ("extra", ChildFate::Removed),
        ],
        "the new team starts `w` from its spec; `extra` is gone"
    );
    assert!(child(&tree, &["team", "extra"]).await.is_none());
    assert_eq!(
        child(&tree, &["team", "w"]).await.unwrap().state,
        ChildState::Running
    );
}

#[tokio::test(start_paused = true)]
async fn an_event_sink_sees_every_event_in_order_before_subscribers() {
    use std::sync::{Arc, Mutex};
    let sunk: Arc<Mutex<Vec<overseer_supervisor::LifecycleEvent>>> = Arc::default();
    let tree = SupervisionTree::builder(SupervisorSpec::one_for_one("root").child(worker("a")))
        .event_sink({
            let sunk = Arc::clone(&sunk);
            move |event| sunk.lock().unwrap().push(event.clone())
        })
        .start()
        .await
        .unwrap();
    tree.shutdown(Duration::from_secs(5)).await.unwrap();
    let paths: Vec<String> = sunk
        .lock()
        .unwrap()
        .iter()
        .map(|e| e.path.to_string())
        .collect();
    assert_eq!(paths, ["root", "root/a", "root/a", "root"]);
}

#[tokio::test(start_paused = true)]
async fn the_children_of_a_supervisor_killed_while_stopping_them_are_told_they_stopped() {
    use overseer_supervisor::{ChildFate, Shutdown};
    let fates = Fates::default();
    // `team` may take 1 s to stop; its last child never finishes stopping and may take 10 s,
    // so the root kills `team` half way, before it reaches `w`.
    let team = SupervisorSpec::one_for_one("team")
        .child(watched_worker("w", &fates))
        .child(
            worker_failing_at("stuck", FailureSite::StopHang)
                .shutdown(Shutdown::Timeout(Duration::from_secs(10))),
        );
    let tree = SupervisionTree::start(
        SupervisorSpec::one_for_one("root")
            .child(ChildSpec::supervisor(team).shutdown(Shutdown::Timeout(Duration::from_secs(1)))),
    )
    .await
    .unwrap();
    tree.root().terminate_child("team").await.unwrap();
    assert_eq!(
        *fates.lock().unwrap(),
        [
            ("w", ChildFate::SupervisorExiting),
            ("w", ChildFate::Stopped)
        ]
    );
    assert_eq!(tree.live_actors(), 1, "only the root is left");
}
