//! Restart intensity and escalation through the tree. Public API only, paused clock.

mod common;

use std::sync::atomic::AtomicU32;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use overseer_supervisor::{ChildSpec, Restart, SupervisionTree, SupervisorSpec};

fn three_levels() -> SupervisorSpec {
    let leaf = SupervisorSpec::one_for_one("leaf")
        .intensity(1, Duration::from_secs(10))
        .child(worker("w"));
    let mid = SupervisorSpec::one_for_one("mid")
        .intensity(0, Duration::from_secs(10))
        .child(worker("m"))
        .child(ChildSpec::supervisor(leaf));
    SupervisorSpec::one_for_one("root")
        .intensity(0, Duration::from_secs(10))
        .child(worker("r"))
        .child(ChildSpec::supervisor(mid))
}

#[tokio::test(start_paused = true)]
async fn escalation_climbs_through_a_middle_supervisor_to_the_root() {
    let tree = SupervisionTree::start(three_levels()).await.unwrap();
    let mut events = tree.subscribe();
    send(&tree, &["mid", "leaf", "w"], Command::Panic).await;
    events_until(&mut events, is("root/mid/leaf/w", started)).await;
    send(&tree, &["mid", "leaf", "w"], Command::Panic).await;
    let seen = events_until(&mut events, is("root", stopped)).await;
    let escalations: Vec<&str> = seen
        .iter()
        .filter(|event| escalated(&event.kind))
        .map(|event| event.path.as_str())
        .collect();
    assert_eq!(escalations, ["root/mid/leaf", "root/mid", "root"]);
    assert!(tree.wait_for_exit(Duration::from_secs(1)).await);
    assert!(!tree.is_running());
}

#[tokio::test(start_paused = true)]
async fn a_transient_child_supervisor_that_gives_up_is_not_restarted() {
    let inner = SupervisorSpec::one_for_one("inner")
        .intensity(0, Duration::from_secs(5))
        .child(worker("w"));
    let spec = SupervisorSpec::one_for_one("root")
        .child(ChildSpec::supervisor(inner).restart(Restart::Transient));
    let tree = SupervisionTree::start(spec).await.unwrap();
    let mut events = tree.subscribe();
    send(&tree, &["inner", "w"], Command::Panic).await;
    events_until(&mut events, is("root/inner", stopped)).await;
    let children = tree.root().which_children().await.unwrap();
    assert_eq!(children.len(), 1, "the spec of a transient child is kept");
    assert_eq!(
        children[0].state,
        overseer_supervisor::ChildState::NotRunning
    );
    assert!(
        tree.is_running(),
        "shutdown is a normal exit: no escalation"
    );
}

#[tokio::test(start_paused = true)]
async fn restarts_age_out_of_the_window_after_the_period() {
    let spec = SupervisorSpec::one_for_one("root")
        .intensity(1, Duration::from_secs(5))
        .child(worker("w"));
    let tree = SupervisionTree::start(spec).await.unwrap();
    let mut events = tree.subscribe();
    for _ in 0..5 {
        send(&tree, &["w"], Command::Fail).await;
        events_until(&mut events, is("root/w", started)).await;
        tokio::time::advance(Duration::from_secs(6)).await;
    }
    assert!(
        tree.is_running(),
        "one restart per 6 s never exceeds 1 per 5 s"
    );
    send(&tree, &["w"], Command::Fail).await;
    events_until(&mut events, is("root/w", started)).await;
    send(&tree, &["w"], Command::Fail).await;
    events_until(&mut events, is("root", escalated)).await;
}

#[tokio::test(start_paused = true)]
async fn failed_restart_attempts_are_retried_and_each_one_counts() {
    // A child whose next three starts fail after a crash: 1 + 3 restarts > 3 → escalate,
    // and the fourth attempt is never made.
    let attempts = Arc::new(AtomicU32::new(0));
    let flaky = ChildSpec::worker("w", {
        let attempts = Arc::clone(&attempts);
        move |context: overseer_supervisor::StartContext| {
            let attempts = Arc::clone(&attempts);
            async move {
                let attempt = attempts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if (1..=3).contains(&attempt) {
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
    });
    let spec = SupervisorSpec::one_for_one("root")
        .intensity(3, Duration::from_secs(5))
        .child(flaky);
    let tree = SupervisionTree::start(spec).await.unwrap();
    let mut events = tree.subscribe();
    send(&tree, &["w"], Command::Panic).await;
    let seen = events_until(&mut events, is("root", stopped)).await;
    let failures = seen.iter().filter(|e| start_failed(&e.kind)).count();
    assert_eq!(failures, 3, "three failed attempts, then the limit");
    assert!(seen.iter().any(|e| is("root", escalated)(e)));
    assert_eq!(attempts.load(std::sync::atomic::Ordering::SeqCst), 4);
}

#[tokio::test(start_paused = true)]
async fn a_restarted_child_is_told_why_its_previous_incarnation_exited() {
    let reasons = Arc::new(std::sync::Mutex::new(Vec::new()));
    let spec = SupervisorSpec::one_for_one("root")
        .intensity(5, Duration::from_secs(5))
        .child(ChildSpec::worker("w", {
            let reasons = Arc::clone(&reasons);
            move |context: overseer_supervisor::StartContext| {
                reasons
                    .lock()
                    .unwrap()
                    .push(context.previous_exit().cloned());
                async move {
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
    let mut events = tree.subscribe();
    send(&tree, &["w"], Command::Panic).await;
    events_until(&mut events, is("root/w", started)).await;
    assert_eq!(
        *reasons.lock().unwrap(),
        [
            None,
            Some(overseer_supervisor::ExitReason::Panicked(
                "boom in handle".into()
            ))
        ]
    );
}
