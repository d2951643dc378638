//! Lifecycle events are typed, ordered and serde-serializable.

mod common;

use std::time::Duration;

use common::*;
use overseer_supervisor::{EventBus, EventKind, LifecycleEvent, SupervisionTree, SupervisorSpec};

#[tokio::test(start_paused = true)]
async fn events_serialize_to_json_and_back() {
    let bus = EventBus::new(64);
    let mut events = bus.subscribe();
    let tree = SupervisionTree::builder(SupervisorSpec::one_for_one("root").child(worker("w")))
        .events(bus)
        .start()
        .await
        .unwrap();
    send(&tree, &["w"], Command::Panic).await;
    let mut seen = events_until(
        &mut events,
        is("root/w", |k| matches!(k, EventKind::Stopped { .. })),
    )
    .await;
    tree.shutdown(Duration::from_secs(5)).await.unwrap();
    seen.extend(std::iter::from_fn(|| events.try_recv().ok()));
    assert!(seen.len() >= 4);
    for event in &seen {
        let json = serde_json::to_string(event).expect("serializes");
        let back: LifecycleEvent = serde_json::from_str(&json).expect("deserializes");
        assert_eq!(&back, event);
    }
    let crash = serde_json::to_value(&seen[2]).unwrap();
    assert_eq!(crash["path"], "root/w");
    assert_eq!(crash["kind"]["event"], "stopped");
    assert_eq!(crash["kind"]["reason"]["kind"], "panicked");
}
