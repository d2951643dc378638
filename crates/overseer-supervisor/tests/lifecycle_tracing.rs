//! What the tree traces, captured by a subscriber: every lifecycle event's `tracing` event
//! carries its `event_id` and, when it has one, its `caused_by`, so a log line can be joined
//! with the event stream. Alone in this binary: tracing's callsite interest is global (see
//! overseer-budget's `tier_tracing.rs`).

mod common;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use overseer_supervisor::{LifecycleEvent, SupervisionTree, SupervisorSpec};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

/// Records every `tracing` event's fields.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<BTreeMap<String, String>>>>);

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S: tracing::Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        self.0.lock().unwrap().push(fields);
    }
}

#[test]
fn each_lifecycle_trace_carries_its_event_id_and_cause() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    let events: Vec<LifecycleEvent> = tracing::subscriber::with_default(subscriber, || {
        tracing::callsite::rebuild_interest_cache();
        // One thread: the tree's tasks run where the subscriber is the default.
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap()
            .block_on(async {
                let spec = SupervisorSpec::one_for_one("root").child(worker("w"));
                let tree = SupervisionTree::start(spec).await.unwrap();
                let mut events = tree.subscribe();
                send(&tree, &["w"], Command::Panic).await;
                let seen = events_until(&mut events, is("root/w", started)).await;
                tree.shutdown(Duration::from_secs(5)).await.unwrap();
                seen
            })
    });
    let traced = capture.0.lock().unwrap();
    let crash = events
        .iter()
        .find(|e| e.path.as_str() == "root/w" && stopped(&e.kind))
        .expect("the crash");
    let restart = events.last().expect("the restart");
    assert_eq!(restart.caused_by, Some(crash.id));
    for event in [crash, restart] {
        let line = traced
            .iter()
            .find(|fields| fields.get("event_id") == Some(&event.id.get().to_string()))
            .unwrap_or_else(|| panic!("no trace with event_id {}: {traced:#?}", event.id.get()));
        assert_eq!(line["path"], "root/w");
        assert_eq!(
            line.get("caused_by"),
            event.caused_by.map(|id| id.get().to_string()).as_ref(),
            "{line:?}"
        );
    }
    let crash_line = traced
        .iter()
        .find(|fields| fields.get("event_id") == Some(&crash.id.get().to_string()))
        .unwrap();
    assert_eq!(crash_line["event"], "stopped");
}
