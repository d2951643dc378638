//! A tracing layer that records every field of every span of one name, in the order the spans
//! were made, with the id of each one's parent span: what the span tests read back.
#![allow(dead_code)]
#![allow(unreachable_pub)] // `pub` for the test files that include it: nothing here is API

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

/// A span's fields by name, as text; `parent_span` holds its parent span's id, if it has one.
pub type Fields = BTreeMap<String, String>;

/// Records the spans named `name`.
#[derive(Clone)]
pub struct Spans {
    name: &'static str,
    seen: Arc<Mutex<Vec<(u64, Fields)>>>,
}

impl Spans {
    /// A recorder of the spans named `name`.
    pub fn named(name: &'static str) -> Self {
        Self {
            name,
            seen: Arc::default(),
        }
    }

    /// Sets a subscriber with this recorder for the current thread, until the guard drops.
    pub fn capture(&self) -> tracing::subscriber::DefaultGuard {
        let subscriber = tracing_subscriber::registry().with(self.clone());
        tracing::subscriber::set_default(subscriber)
    }

    /// The spans recorded so far: each one's id and fields, in the order they were made.
    pub fn recorded(&self) -> Vec<(u64, Fields)> {
        self.seen.lock().unwrap().clone()
    }
}

struct Collect<'a>(&'a mut Fields);

impl Visit for Collect<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().to_string(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), value.to_string());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_string(), value.to_string());
    }
}

impl<S: tracing::Subscriber> Layer<S> for Spans {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, context: Context<'_, S>) {
        if attrs.metadata().name() != self.name {
            return;
        }
        let mut fields = Fields::new();
        attrs.record(&mut Collect(&mut fields));
        let parent = match attrs.parent() {
            Some(parent) => Some(parent.clone()),
            None if attrs.is_contextual() => context.current_span().id().cloned(),
            None => None,
        };
        if let Some(parent) = parent {
            fields.insert("parent_span".into(), parent.into_u64().to_string());
        }
        self.seen.lock().unwrap().push((id.into_u64(), fields));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        let mut seen = self.seen.lock().unwrap();
        if let Some((_, fields)) = seen.iter_mut().find(|(seen, _)| *seen == id.into_u64()) {
            values.record(&mut Collect(fields));
        }
    }
}
