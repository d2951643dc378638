//! Ordered shutdown, children that ignore the polite stop, large trees, and restarts racing a
//! shutdown. Public API only; paused clock unless the test needs real concurrency.

mod common;

use std::time::Duration;

use common::*;
use overseer_supervisor::{
    ChildSpec, EventKind, ExitReason, Shutdown, SupervisionTree, SupervisorSpec, TreeError,
};
use ractor::ActorStatus;

#[tokio::test(start_paused = true)]
async fn children_that_ignore_the_polite_stop_are_killed_at_their_timeout() {
    let spec = SupervisorSpec::one_for_one("root")
        .child(worker("polite"))
        .child(
            worker_failing_at("stubborn", FailureSite::StopHang)
                .shutdown(Shutdown::Timeout(Duration::from_millis(200))),
        )
        .child(worker_failing_at("brutal", FailureSite::StopHang).shutdown(Shutdown::BrutalKill));
    let tree = SupervisionTree::start(spec).await.unwrap();
    let mut events = tree.subscribe();
    let started_at = tokio::time::Instant::now();
    tree.shutdown(Duration::from_secs(10))
        .await
        .expect("stops in time");
    let waited = started_at.elapsed();
    let seen = events_until(&mut events, is("root", stopped)).await;
    let stops: Vec<(&str, &EventKind)> = seen
        .iter()
        .map(|event| (event.path.as_str(), &event.kind))
        .collect();
    let killed = EventKind::Stopped {
        reason: ExitReason::Killed,
    };
    let shutdown = EventKind::Stopped {
        reason: ExitReason::Shutdown,
    };
    assert_eq!(
        stops,
        [
            ("root/brutal", &killed),
            ("root/stubborn", &killed),
            ("root/polite", &shutdown),
            ("root", &shutdown),
        ],
        "reverse start order; the stubborn child is killed"
    );
    assert!(waited >= Duration::from_millis(200), "waited {waited:?}");
    assert!(waited < Duration::from_secs(1), "waited {waited:?}");
}

#[tokio::test(start_paused = true)]
async fn a_tree_that_does_not_stop_within_the_deadline_is_killed() {
    let spec = SupervisorSpec::one_for_one("root")
        .child(worker_failing_at("forever", FailureSite::StopHang).shutdown(Shutdown::Infinity));
    let tree = SupervisionTree::start(spec).await.unwrap();
    let cell = child(&tree, &["forever"]).await.unwrap().cell.unwrap();
    let result = tree.shutdown(Duration::from_secs(2)).await;
    assert_eq!(
        result,
        Err(TreeError::ShutdownTimedOut(Duration::from_secs(2)))
    );
    assert!(!tree.is_running());
    assert!(
        cell.wait(Some(Duration::from_secs(1))).await.is_ok(),
        "the child is gone too"
    );
}

#[tokio::test(start_paused = true)]
async fn a_tree_one_thousand_deep_starts_and_stops_in_order() {
    let depth = 1000;
    let mut spec = SupervisorSpec::one_for_one(format!("s{depth}")).child(worker("leaf"));
    for level in (0..depth).rev() {
        spec = SupervisorSpec::one_for_one(format!("s{level}")).child(ChildSpec::supervisor(spec));
    }
    let bus = overseer_supervisor::EventBus::new(8192);
    let mut events = bus.subscribe();
    let tree = SupervisionTree::builder(spec)
        .events(bus)
        .start()
        .await
        .expect("starts");
    tree.shutdown(Duration::from_secs(60)).await.expect("stops");
    let mut starts = 0;
    let mut stops = Vec::new();
    while let Ok(event) = events.try_recv() {
        match event.kind {
            EventKind::Started => starts += 1,
            EventKind::Stopped { .. } => stops.push(event.path.depth()),
            _ => {}
        }
    }
    assert_eq!(starts, depth + 2, "every supervisor and the leaf started");
    assert_eq!(stops.len(), depth + 2);
    assert!(
        stops.windows(2).all(|pair| pair[0] == pair[1] + 1),
        "stopped depth first, deepest first"
    );
}

#[tokio::test(start_paused = true)]
async fn a_tree_ten_thousand_wide_starts_and_stops_cleanly() {
    let width = 10_000;
    let spec = SupervisorSpec::one_for_one("root")
        .children((0..width).map(|index| worker(&format!("w{index}"))));
    let tree = SupervisionTree::builder(spec)
        .events(overseer_supervisor::EventBus::new(16))
        .start()
        .await
        .expect("starts");
    let children = tree.root().which_children().await.unwrap();
    assert_eq!(children.len(), width);
    let cells: Vec<_> = children
        .into_iter()
        .filter_map(|child| child.cell)
        .collect();
    assert_eq!(cells.len(), width);
    tree.shutdown(Duration::from_secs(60)).await.expect("stops");
    assert!(cells
        .iter()
        .all(|cell| cell.get_status() == ActorStatus::Stopped));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_racing_a_shutdown_never_outlive_it() {
    let spec = SupervisorSpec::one_for_one("root")
        .intensity(1_000_000, Duration::from_secs(1))
        .children((0..20).map(|index| worker(&format!("w{index}"))));
    let tree = SupervisionTree::start(spec).await.unwrap();
    let mut events = tree.subscribe();
    let root = tree.root().clone();
    let crasher = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Ok(children) = root.which_children().await {
            for cell in children.into_iter().filter_map(|child| child.cell) {
                let _ = cell.send_message(Command::Panic);
                seen.push(cell);
            }
            tokio::task::yield_now().await;
        }
        seen
    });
    // Let some crashes and restarts happen, then shut down while they continue.
    events_until(&mut events, |event| {
        matches!(
            event.kind,
            EventKind::Stopped {
                reason: ExitReason::Panicked(_)
            }
        )
    })
    .await;
    tree.shutdown(Duration::from_secs(30)).await.expect("stops");
    let every_incarnation = tokio::time::timeout(Duration::from_secs(30), crasher)
        .await
        .expect("the crasher ends when the root is gone")
        .expect("crasher task");
    assert!(!every_incarnation.is_empty());
    for cell in every_incarnation {
        assert!(
            cell.wait(Some(Duration::from_secs(5))).await.is_ok(),
            "no worker outlives the tree"
        );
    }
    // Nothing started after the root stopped.
    let mut after_root = false;
    while let Ok(event) = events.try_recv() {
        if after_root {
            assert_ne!(
                event.kind,
                EventKind::Started,
                "{event:?} after the root stopped"
            );
        }
        after_root |=
            event.path.as_str() == "root" && matches!(event.kind, EventKind::Stopped { .. });
    }
}

/// The wait the census tests use reports what did not happen, instead of hanging.
#[tokio::test(start_paused = true)]
#[should_panic(expected = "something that never happens: not after 1000 yields")]
async fn a_wait_for_something_that_never_happens_fails() {
    yield_until("something that never happens", || false).await;
}

/// Waits until the tree's census is 0; fails the test if it never gets there.
async fn census_reaches_zero(tree: &SupervisionTree) {
    yield_until("the census reaches 0 after the root stopped", || {
        tree.live_actors() == 0
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn the_census_counts_every_live_actor_and_reaches_zero_after_shutdown() {
    let inner = SupervisorSpec::one_for_all("inner")
        .child(worker("c"))
        .child(worker_failing_at("stubborn", FailureSite::StopHang).shutdown(Shutdown::BrutalKill));
    let spec = SupervisorSpec::one_for_one("root")
        .child(worker("a"))
        .child(ChildSpec::supervisor(inner));
    let tree = SupervisionTree::start(spec).await.unwrap();
    assert_eq!(tree.live_actors(), 5, "2 supervisors and 3 workers");
    tree.shutdown(Duration::from_secs(10)).await.unwrap();
    census_reaches_zero(&tree).await;
}

#[tokio::test(start_paused = true)]
async fn the_census_reaches_zero_after_an_escalation_stops_the_root() {
    let spec = SupervisorSpec::one_for_one("root")
        .intensity(0, Duration::from_secs(5))
        .child(worker("a"))
        .child(worker("b"));
    let tree = SupervisionTree::start(spec).await.unwrap();
    send(&tree, &["a"], Command::Panic).await;
    assert!(tree.wait_for_exit(Duration::from_secs(10)).await);
    census_reaches_zero(&tree).await;
}

#[tokio::test(start_paused = true)]
async fn a_shutdown_during_an_escalation_reports_the_children_before_their_supervisor() {
    let inner = SupervisorSpec::one_for_one("inner")
        .intensity(0, Duration::from_secs(5))
        .child(worker_failing_at("slow", FailureSite::StopHang).shutdown(
            overseer_supervisor::Shutdown::Timeout(Duration::from_secs(1)),
        ))
        .child(worker("w"));
    let spec = SupervisorSpec::one_for_one("root")
        .child(overseer_supervisor::ChildSpec::supervisor(inner));
    let tree = SupervisionTree::start(spec).await.unwrap();
    let mut events = tree.subscribe();
    send(&tree, &["inner", "w"], Command::Panic).await;
    events_until(&mut events, is("root/inner", escalated)).await;
    // `inner` is now stopping `slow`, which takes its whole shutdown timeout.
    tree.shutdown(Duration::from_secs(30)).await.unwrap();
    let seen = events_until(&mut events, is("root", stopped)).await;
    let stops: Vec<&str> = seen
        .iter()
        .filter(|event| stopped(&event.kind))
        .map(|event| event.path.as_str())
        .collect();
    assert_eq!(stops, ["root/inner/slow", "root/inner", "root"]);
}
