//! What the budget traces, captured by a subscriber: a tier reached is a warning with
//! structured fields, a trip an error with its reason. Alone in this binary: tracing's callsite
//! interest is global, so a test without a subscriber running beside these could leave their
//! callsites cached as uninteresting (it did, now and then, when they lived in `tiers.rs`).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use overseer_budget::{Budget, Limits, Spend};
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
        fields.insert("level".to_owned(), event.metadata().level().to_string());
        event.record(&mut Fields(&mut fields));
        self.0.lock().unwrap().push(fields);
    }
}

#[test]
fn a_warning_is_traced_with_structured_fields() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    tracing::subscriber::with_default(subscriber, || {
        // Tests of this binary run in parallel without a subscriber: one that reaches the
        // callsite while this subscriber is being registered can leave it cached as
        // uninteresting. Rebuilding the cache under the subscriber makes the capture certain.
        tracing::callsite::rebuild_interest_cache();
        let budget = Budget::builder()
            .process_limits(Limits::new().tokens(1_000))
            .build()
            .unwrap();
        budget
            .admit("a", Spend::from_tokens(860))
            .unwrap()
            .commit(Spend::from_tokens(860));
    });
    let events = capture.0.lock().unwrap();
    let tiers: Vec<_> = events
        .iter()
        .filter(|e| e.get("message").map(String::as_str) == Some("budget tier reached"))
        .collect();
    assert_eq!(tiers.len(), 2, "{events:#?}");
    let second = tiers[1];
    assert_eq!(second["level"], "WARN");
    assert_eq!(second["scope"], "process");
    assert_eq!(second["dimension"], "tokens");
    assert_eq!(second["tier"], "2");
    assert_eq!(second["fraction_ppm"], "850000");
    assert_eq!(second["used"], "860");
    assert_eq!(second["limit"], "1000");
}

#[test]
fn a_trip_is_traced_as_an_error_with_its_reason() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    tracing::subscriber::with_default(subscriber, || {
        let budget = Budget::builder().build().unwrap();
        budget.trip(overseer_budget::TripReason::manual("drill"));
    });
    let events = capture.0.lock().unwrap();
    let trip = events
        .iter()
        .find(|e| e.get("message").map(String::as_str) == Some("kill switch tripped"))
        .expect("a trip event");
    assert_eq!(trip["level"], "ERROR");
    assert_eq!(trip["reason"], "manual trip: drill");
}
