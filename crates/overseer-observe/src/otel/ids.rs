//! Span and trace ids derived from event ids: what lets a nested ask's span name its parent's
//! span before the parent has ended (its event comes only then).

use std::cell::Cell;

use opentelemetry::trace::{SpanId, TraceId};
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator};
use overseer_supervisor::EventId;

thread_local! {
    /// The ids the exporter chose for the span it is building on this thread, if it is.
    static CHOSEN: Cell<Option<Chosen>> = const { Cell::new(None) };
}

/// The ids chosen for one span: its own, and the trace it starts if it has no parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Chosen {
    pub(super) span: SpanId,
    pub(super) trace: TraceId,
}

/// An id generator for the SDK's tracer provider that gives the spans an
/// [`OtelExporter`](super::OtelExporter) builds the ids it derives from their events (and any
/// other span random ids, as [`RandomIdGenerator`] does). Install it so that a nested ask's span
/// is exported as soon as its event comes, as a child of its parent ask's span that is yet to
/// be exported (the exporter knows that span's id in advance); without it, a nested ask waits
/// for its parent's event, at most [`max_wait`](super::OtelExporter::max_wait).
///
/// ```
/// use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
/// use overseer_observe::otel::EventSpanIds;
///
/// let provider = SdkTracerProvider::builder()
///     .with_id_generator(EventSpanIds::default())
///     .with_simple_exporter(InMemorySpanExporter::default())
///     .build();
/// # drop(provider);
/// ```
#[derive(Debug, Default)]
pub struct EventSpanIds {
    random: RandomIdGenerator,
}

impl IdGenerator for EventSpanIds {
    fn new_trace_id(&self) -> TraceId {
        match CHOSEN.with(Cell::get) {
            Some(chosen) => chosen.trace,
            None => self.random.new_trace_id(),
        }
    }

    fn new_span_id(&self) -> SpanId {
        match CHOSEN.with(Cell::get) {
            Some(chosen) => chosen.span,
            None => self.random.new_span_id(),
        }
    }
}

/// Runs `build` (a span's start) with `chosen` as the ids [`EventSpanIds`] gives.
pub(super) fn building_with<R>(chosen: Chosen, build: impl FnOnce() -> R) -> R {
    let previous = CHOSEN.with(|cell| cell.replace(Some(chosen)));
    let built = build();
    CHOSEN.with(|cell| cell.set(previous));
    built
}

/// The ids of one exporter's spans, by event id: distinct between exporters (a random salt),
/// never zero (an invalid id).
#[derive(Debug, Clone, Copy)]
pub(super) struct Derivation {
    salt: u64,
}

impl Derivation {
    pub(super) fn random() -> Self {
        let salt = u64::from_be_bytes(RandomIdGenerator::default().new_span_id().to_bytes());
        Self { salt }
    }

    /// The span id of `event`'s span.
    pub(super) fn span(self, event: EventId) -> SpanId {
        SpanId::from(nonzero(mix(self.salt ^ event.get())))
    }

    /// The id of the trace `request` (an event without parent) starts.
    pub(super) fn trace(self, request: EventId) -> TraceId {
        let high = mix(self.salt.rotate_left(32) ^ request.get());
        let low = mix(high ^ self.salt);
        TraceId::from((u128::from(high) << 64) | u128::from(nonzero(low)))
    }

    pub(super) fn chosen(self, event: EventId) -> Chosen {
        Chosen {
            span: self.span(event),
            trace: self.trace(event),
        }
    }
}

/// SplitMix64's finalizer: a bijection of `u64` that spreads neighbouring ids apart.
fn mix(value: u64) -> u64 {
    let mut z = value.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn nonzero(value: u64) -> u64 {
    value.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(value: u64) -> EventId {
        EventId::new(value).expect("non-zero")
    }

    #[test]
    fn ids_are_valid_distinct_for_neighbouring_events_and_for_two_exporters() {
        let (one, other) = (Derivation::random(), Derivation::random());
        let spans: std::collections::HashSet<SpanId> =
            (1..=1_000).map(|n| one.span(id(n))).collect();
        assert_eq!(spans.len(), 1_000);
        assert!(!spans.contains(&SpanId::INVALID));
        assert_ne!(one.trace(id(1)), TraceId::INVALID);
        assert_ne!(one.span(id(1)), other.span(id(1)));
        assert_ne!(one.trace(id(1)), other.trace(id(1)));
    }

    #[test]
    fn the_generator_gives_the_chosen_ids_while_building_and_random_ones_after() {
        let generator = EventSpanIds::default();
        let chosen = Derivation::random().chosen(id(7));
        let inside = building_with(chosen, || {
            (generator.new_span_id(), generator.new_trace_id())
        });
        assert_eq!(inside, (chosen.span, chosen.trace));
        assert_ne!(generator.new_span_id(), chosen.span);
    }
}
