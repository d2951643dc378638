//! The exporter's memory: the spans of recent events (to link their effects to), and the
//! events waiting for a cause that has not arrived yet. Both are bounded.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::Hash;
use std::time::Duration;

use overseer_agent::SystemEvent;
use overseer_supervisor::EventId;

/// A map that keeps its `capacity` most recently inserted keys: inserting one more forgets
/// the oldest.
#[derive(Debug)]
pub(super) struct Recent<K, V> {
    map: HashMap<K, V>,
    order: VecDeque<K>,
    capacity: usize,
}

impl<K: Clone + Eq + Hash, V> Recent<K, V> {
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            map: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// Inserts `key`; returns whether it was new. A key already present keeps its place.
    pub(super) fn insert(&mut self, key: K, value: V) -> bool {
        if let Some(slot) = self.map.get_mut(&key) {
            *slot = value;
            return false;
        }
        self.map.insert(key.clone(), value);
        self.order.push_back(key);
        while self.order.len() > self.capacity {
            if let Some(oldest) = self.order.pop_front() {
                self.map.remove(&oldest);
            }
        }
        true
    }

    pub(super) fn get(&self, key: &K) -> Option<&V> {
        self.map.get(key)
    }

    pub(super) fn contains(&self, key: &K) -> bool {
        self.map.contains_key(key)
    }
}

/// An event held back until the span of its cause exists.
#[derive(Debug, Clone)]
pub(super) struct Held {
    pub(super) event: SystemEvent,
    /// Decided when it arrived (arrival order is what tells a restart).
    pub(super) restart: bool,
}

/// Events waiting for their cause, in arrival order, at most `capacity` of them.
#[derive(Debug)]
pub(super) struct Waiting {
    next: u64,
    held: BTreeMap<u64, (EventId, Held)>,
    by_cause: HashMap<EventId, Vec<u64>>,
    capacity: usize,
}

impl Waiting {
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            next: 0,
            held: BTreeMap::new(),
            by_cause: HashMap::new(),
            capacity: capacity.max(1),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.held.len()
    }

    /// Holds `held` until `cause` arrives. If that makes too many, returns the oldest, which
    /// must be exported without its cause.
    pub(super) fn hold(&mut self, cause: EventId, held: Held) -> Option<Held> {
        let key = self.next;
        self.next += 1;
        self.held.insert(key, (cause, held));
        self.by_cause.entry(cause).or_default().push(key);
        if self.held.len() > self.capacity {
            self.pop_oldest()
        } else {
            None
        }
    }

    /// The events waiting for `cause`, in arrival order, released.
    pub(super) fn release(&mut self, cause: EventId) -> Vec<Held> {
        self.by_cause
            .remove(&cause)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|key| self.held.remove(&key).map(|(_, held)| held))
            .collect()
    }

    /// The stream time of the oldest event waiting.
    pub(super) fn oldest_elapsed(&self) -> Option<Duration> {
        self.held
            .values()
            .next()
            .map(|(_, held)| held.event.elapsed())
    }

    /// The oldest event waiting, released.
    pub(super) fn pop_oldest(&mut self) -> Option<Held> {
        let (key, (cause, held)) = self.held.pop_first()?;
        if let Some(keys) = self.by_cause.get_mut(&cause) {
            keys.retain(|&waiting| waiting != key);
            if keys.is_empty() {
                self.by_cause.remove(&cause);
            }
        }
        Some(held)
    }

    /// The oldest event waiting if it arrived at `max_wait` or more before `now` (stream time).
    pub(super) fn pop_expired(&mut self, now: Duration, max_wait: Duration) -> Option<Held> {
        let oldest = self.oldest_elapsed()?;
        if oldest.saturating_add(max_wait) <= now {
            self.pop_oldest()
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use overseer_agent::{AgentName, AskEvent, AskOutcome};

    use super::*;

    fn id(value: u64) -> EventId {
        EventId::new(value).expect("non-zero")
    }

    fn held(own: u64, elapsed_secs: u64) -> Held {
        let mut ask = AskEvent::new(id(own), AgentName::from("a"), "t", AskOutcome::Ok);
        ask.elapsed = Duration::from_secs(elapsed_secs);
        Held {
            event: SystemEvent::Ask(ask),
            restart: false,
        }
    }

    fn ids(held: &[Held]) -> Vec<u64> {
        held.iter().map(|held| held.event.id().get()).collect()
    }

    #[test]
    fn recent_forgets_the_oldest_key_past_its_capacity() {
        let mut recent = Recent::new(2);
        assert!(recent.insert(1, "a"));
        assert!(recent.insert(2, "b"));
        assert!(!recent.insert(1, "a again"));
        assert!(recent.insert(3, "c"));
        assert!(!recent.contains(&1));
        assert_eq!(recent.get(&2), Some(&"b"));
        assert_eq!(recent.get(&3), Some(&"c"));
    }

    #[test]
    fn waiting_events_are_released_by_their_cause_in_arrival_order() {
        let mut waiting = Waiting::new(10);
        assert!(waiting.hold(id(1), held(5, 0)).is_none());
        assert!(waiting.hold(id(2), held(6, 0)).is_none());
        assert!(waiting.hold(id(1), held(7, 0)).is_none());
        assert_eq!(ids(&waiting.release(id(1))), [5, 7]);
        assert!(waiting.release(id(1)).is_empty());
        assert_eq!(waiting.len(), 1);
    }

    #[test]
    fn the_oldest_waiting_event_goes_when_there_are_too_many_or_it_waited_too_long() {
        let mut waiting = Waiting::new(2);
        assert!(waiting.hold(id(1), held(5, 1)).is_none());
        assert!(waiting.hold(id(2), held(6, 2)).is_none());
        let evicted = waiting.hold(id(3), held(7, 3)).expect("over capacity");
        assert_eq!(evicted.event.id(), id(5));
        assert!(waiting.release(id(1)).is_empty(), "no longer waiting");

        let wait = Duration::from_secs(10);
        assert!(waiting.pop_expired(Duration::from_secs(11), wait).is_none());
        let expired = waiting
            .pop_expired(Duration::from_secs(12), wait)
            .expect("expired");
        assert_eq!(expired.event.id(), id(6));
        assert_eq!(waiting.oldest_elapsed(), Some(Duration::from_secs(3)));
        assert_eq!(waiting.len(), 1);
    }
}
