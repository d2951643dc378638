//! Every transition is emitted as a structured tracing event.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use overseer_breaker::{BreakerConfig, BreakerKey, BreakerRegistry, Outcome};
use tokio::time::Instant;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

#[derive(Debug, Clone)]
struct Captured {
    level: Level,
    fields: BTreeMap<String, String>,
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Captured>>>);

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().to_string(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), value.to_string());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_string(), value.to_string());
    }
}

impl<S: Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        self.0.lock().unwrap().push(Captured {
            level: *event.metadata().level(),
            fields,
        });
    }
}

fn captured(f: impl FnOnce()) -> Vec<Captured> {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    tracing::subscriber::with_default(subscriber, f);
    let events = capture.0.lock().unwrap().clone();
    events
}

#[test]
fn every_transition_emits_an_event_with_agent_task_states_and_failure_rate() {
    let events = captured(|| {
        let registry = BreakerRegistry::new(BreakerConfig::default().seed(Some(1))).unwrap();
        let key = BreakerKey::new("researcher", "summarize");
        let t0 = Instant::now();
        for _ in 0..3 {
            let p = registry.try_acquire_at(&key, t0).unwrap();
            registry.record_at(p, Outcome::Failure, Duration::from_secs(1), t0);
        }
        let later = t0 + Duration::from_secs(300);
        let probe = registry.try_acquire_at(&key, later).unwrap();
        probe.record_at(Outcome::Success, Duration::from_secs(1), later);
        registry.force_open_at(&key, later);
        registry.disable_at(&key, later);
        registry.reset_at(&key, later);
    });
    let summary: Vec<_> = events
        .iter()
        .map(|e| {
            (
                e.level,
                e.fields["message"].as_str(),
                e.fields["from"].as_str(),
                e.fields["to"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (Level::WARN, "breaker opened", "closed", "open"),
            (Level::INFO, "breaker half-open", "open", "half_open"),
            (Level::INFO, "breaker closed", "half_open", "closed"),
            (Level::WARN, "breaker forced open", "closed", "forced_open"),
            (Level::WARN, "breaker disabled", "forced_open", "disabled"),
            (Level::INFO, "breaker closed", "disabled", "closed"),
        ]
    );
    let opened = &events[0].fields;
    assert_eq!(opened["agent"], "researcher");
    assert_eq!(opened["task_type"], "summarize");
    assert_eq!(opened["failure_rate"], "1");
    assert_eq!(opened["consecutive_failures"], "3");
    assert_eq!(opened["trigger"], "consecutive_failures");
    assert!(opened.contains_key("open_for_ms"));
}

#[test]
fn the_closed_hot_path_emits_nothing() {
    let events = captured(|| {
        let registry = BreakerRegistry::default();
        let key = BreakerKey::new("a", "t");
        for _ in 0..100 {
            let p = registry.try_acquire(&key).unwrap();
            registry.record(p, Outcome::Success, Duration::from_millis(1));
        }
    });
    assert!(events.is_empty(), "{events:?}");
}
