//! Causal links between lifecycle events: every event has an id, and names the event that
//! caused it. Public API only, paused clock.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use overseer_supervisor::{
    ChildSpec, EventId, EventIds, EventKind, LifecycleEvent, StartContext, SupervisionTree,
    SupervisorSpec,
};

/// A worker that records `cause` as the reason for its next exit, as an agent records the ask
/// it is handling.
fn worker_recording(id: &str, cause: EventId) -> ChildSpec {
    ChildSpec::worker(id, move |context: StartContext| async move {
        context.exit_cause().set(Some(cause));
        context
            .spawn(
                TestWorker {
                    site: FailureSite::None,
                },
                (),
            )
            .await
    })
}

fn find<'a>(
    events: &'a [LifecycleEvent],
    path: &str,
    kind: fn(&EventKind) -> bool,
) -> Vec<&'a LifecycleEvent> {
    events
        .iter()
        .filter(|event| event.path.as_str() == path && kind(&event.kind))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn ids_are_unique_and_drawn_from_a_shared_sequence() {
    let ids = EventIds::default();
    let before = ids.next();
    let tree = SupervisionTree::builder(SupervisorSpec::one_for_one("root").child(worker("w")))
        .event_ids(ids.clone())
        .start()
        .await
        .unwrap();
    let mut events = tree.subscribe();
    tree.shutdown(Duration::from_secs(5)).await.unwrap();
    let seen = events_until(&mut events, is("root", stopped)).await;
    let after = ids.next();
    let mut numbers: Vec<u64> = seen.iter().map(|event| event.id.get()).collect();
    numbers.sort_unstable();
    numbers.dedup();
    assert_eq!(numbers.len(), seen.len(), "ids are unique");
    assert!(numbers.iter().all(|&n| n > before.get() && n < after.get()));
}

#[tokio::test(start_paused = true)]
async fn a_crash_names_the_recorded_cause_and_the_group_restart_names_the_crash() {
    let cause = EventIds::default().next();
    let spec = SupervisorSpec::one_for_all("root")
        .child(worker("a"))
        .child(worker_recording("b", cause))
        .child(worker("c"));
    let tree = SupervisionTree::start(spec).await.unwrap();
    let mut events = tree.subscribe();
    send(&tree, &["b"], Command::Panic).await;
    let seen = events_until(&mut events, is("root/c", started)).await;

    let crash = find(&seen, "root/b", stopped)[0];
    assert_eq!(
        crash.caused_by,
        Some(cause),
        "the crash names what b recorded"
    );
    for sibling in ["root/a", "root/c"] {
        let stop = find(&seen, sibling, stopped)[0];
        assert_eq!(
            stop.caused_by,
            Some(crash.id),
            "{sibling} was stopped because b crashed"
        );
    }
    for child in ["root/a", "root/b", "root/c"] {
        let restart = find(&seen, child, started)[0];
        assert_eq!(
            restart.caused_by,
            Some(crash.id),
            "{child} restarted because b crashed"
        );
    }
    tree.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn an_escalation_chain_can_be_followed_back_to_the_crash() {
    let inner = SupervisorSpec::one_for_one("inner")
        .intensity(0, Duration::from_secs(5))
        .child(worker("w"))
        .child(worker("v"));
    let spec = SupervisorSpec::one_for_one("root").child(ChildSpec::supervisor(inner));
    let tree = SupervisionTree::start(spec).await.unwrap();
    let mut events = tree.subscribe();
    send(&tree, &["inner", "w"], Command::Panic).await;
    let seen = events_until(&mut events, is("root/inner/v", started)).await;
    let by_id: HashMap<EventId, &LifecycleEvent> =
        seen.iter().map(|event| (event.id, event)).collect();

    // Follow the causes back from v's restart under the new inner supervisor.
    let mut chain = Vec::new();
    let mut at = seen.last();
    while let Some(event) = at {
        chain.push((event.path.as_str().to_string(), kind_name(&event.kind)));
        at = event.caused_by.and_then(|id| by_id.get(&id).copied());
    }
    assert_eq!(
        chain,
        [
            ("root/inner/v".to_string(), "started"),
            ("root/inner".to_string(), "started"),
            ("root/inner".to_string(), "stopped"),
            ("root/inner".to_string(), "escalated"),
            ("root/inner/w".to_string(), "stopped"),
        ]
    );
    let escalation = find(&seen, "root/inner", escalated)[0];
    let sibling_stop = find(&seen, "root/inner/v", stopped)[0];
    assert_eq!(sibling_stop.caused_by, Some(escalation.id));
    tree.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_shutdown_with_a_cause_names_it_on_every_stop() {
    let ids = EventIds::default();
    let inner = SupervisorSpec::one_for_one("inner").child(worker("w"));
    let spec = SupervisorSpec::one_for_one("root")
        .child(worker("a"))
        .child(ChildSpec::supervisor(inner));
    let tree = SupervisionTree::builder(spec)
        .event_ids(ids.clone())
        .start()
        .await
        .unwrap();
    let mut events = tree.subscribe();
    let cause = ids.next();
    tree.shutdown_caused_by(Duration::from_secs(5), Some(cause))
        .await
        .unwrap();
    let seen = events_until(&mut events, is("root", stopped)).await;
    let stops: Vec<(&str, Option<EventId>)> = seen
        .iter()
        .filter(|event| stopped(&event.kind))
        .map(|event| (event.path.as_str(), event.caused_by))
        .collect();
    assert_eq!(
        stops,
        [
            ("root/inner/w", Some(cause)),
            ("root/inner", Some(cause)),
            ("root/a", Some(cause)),
            ("root", Some(cause)),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn first_starts_name_their_supervisors_start() {
    let bus = overseer_supervisor::EventBus::new(64);
    let mut events = bus.subscribe();
    let inner = SupervisorSpec::one_for_one("inner").child(worker("w"));
    let spec = SupervisorSpec::one_for_one("root").child(ChildSpec::supervisor(inner));
    let tree = SupervisionTree::builder(spec)
        .events(bus)
        .start()
        .await
        .unwrap();
    let seen: Vec<LifecycleEvent> = std::iter::from_fn(|| events.try_recv().ok()).collect();
    let root = find(&seen, "root", started)[0];
    let inner = find(&seen, "root/inner", started)[0];
    let w = find(&seen, "root/inner/w", started)[0];
    assert_eq!(root.caused_by, None);
    assert_eq!(inner.caused_by, Some(root.id));
    assert_eq!(w.caused_by, Some(inner.id));
    tree.shutdown(Duration::from_secs(5)).await.unwrap();
}

fn kind_name(kind: &EventKind) -> &'static str {
    match kind {
        EventKind::Started => "started",
        EventKind::StartFailed { .. } => "start_failed",
        EventKind::Stopped { .. } => "stopped",
        EventKind::Escalated { .. } => "escalated",
        EventKind::AutoShutdown => "auto_shutdown",
        _ => "other",
    }
}
