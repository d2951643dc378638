//! The count-based sliding window: the last N outcomes, as two ring bitsets.

use std::fmt;

/// The last `capacity` recorded outcomes, oldest overwritten first.
///
/// Two bits per slot (failed, slow) live in two ring bitsets allocated once, with running
/// counts kept beside them, so recording an outcome is a few bit operations and never
/// allocates, and reading the failure rate is one division.
pub(crate) struct Window {
    failed: Box<[u64]>,
    slow: Box<[u64]>,
    capacity: u32,
    /// The slot the next outcome goes into (holding the oldest outcome once full).
    head: u32,
    len: u32,
    failures: u32,
    slow_calls: u32,
}

impl Window {
    /// An empty window of `capacity` slots (at least 1; validated by the config).
    pub(crate) fn new(capacity: u32) -> Self {
        let capacity = capacity.max(1);
        let words = capacity.div_ceil(64) as usize;
        Self {
            failed: vec![0; words].into_boxed_slice(),
            slow: vec![0; words].into_boxed_slice(),
            capacity,
            head: 0,
            len: 0,
            failures: 0,
            slow_calls: 0,
        }
    }

    /// Adds one outcome, evicting the oldest when the window is full.
    #[inline]
    pub(crate) fn push(&mut self, failed: bool, slow: bool) {
        let slot = self.head as usize;
        let (word, bit) = (slot / 64, 1u64 << (slot % 64));
        if self.len == self.capacity {
            if self.failed[word] & bit != 0 {
                self.failures -= 1;
            }
            if self.slow[word] & bit != 0 {
                self.slow_calls -= 1;
            }
        } else {
            self.len += 1;
        }
        if failed {
            self.failed[word] |= bit;
            self.failures += 1;
        } else {
            self.failed[word] &= !bit;
        }
        if slow {
            self.slow[word] |= bit;
            self.slow_calls += 1;
        } else {
            self.slow[word] &= !bit;
        }
        self.head = if self.head + 1 == self.capacity {
            0
        } else {
            self.head + 1
        };
    }

    /// Forgets every outcome.
    pub(crate) fn clear(&mut self) {
        self.failed.fill(0);
        self.slow.fill(0);
        self.head = 0;
        self.len = 0;
        self.failures = 0;
        self.slow_calls = 0;
    }

    /// How many outcomes the window holds (at most its capacity).
    pub(crate) fn len(&self) -> u32 {
        self.len
    }

    /// How many of them were failures (slow calls included when they count as failures).
    pub(crate) fn failures(&self) -> u32 {
        self.failures
    }

    /// How many of them were slow.
    pub(crate) fn slow_calls(&self) -> u32 {
        self.slow_calls
    }

    /// Failures over outcomes, in `[0, 1]`; 0 for an empty window.
    pub(crate) fn failure_rate(&self) -> f64 {
        if self.len == 0 {
            0.0
        } else {
            f64::from(self.failures) / f64::from(self.len)
        }
    }
}

impl fmt::Debug for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Window")
            .field("capacity", &self.capacity)
            .field("len", &self.len)
            .field("failures", &self.failures)
            .field("slow_calls", &self.slow_calls)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same window, kept the slow obvious way.
    fn model(outcomes: &[(bool, bool)], capacity: usize) -> (u32, u32, u32) {
        let start = outcomes.len().saturating_sub(capacity);
        let kept = &outcomes[start..];
        let failures = kept.iter().filter(|(f, _)| *f).count() as u32;
        let slow = kept.iter().filter(|(_, s)| *s).count() as u32;
        (kept.len() as u32, failures, slow)
    }

    #[test]
    fn holds_exactly_capacity_outcomes_and_drops_the_oldest_first() {
        let mut w = Window::new(3);
        w.push(true, false);
        w.push(false, false);
        w.push(false, false);
        assert_eq!((w.len(), w.failures()), (3, 1));
        // The fourth outcome evicts the first (the failure).
        w.push(false, false);
        assert_eq!((w.len(), w.failures()), (3, 0));
        assert_eq!(w.failure_rate(), 0.0);
    }

    #[test]
    fn matches_a_simple_model_across_word_boundaries() {
        for capacity in [1u32, 2, 63, 64, 65, 100, 130] {
            let mut w = Window::new(capacity);
            let mut seen = Vec::new();
            for i in 0..(capacity as usize * 3 + 7) {
                let outcome = (i % 3 == 0 || i % 7 == 0, i % 5 == 0);
                w.push(outcome.0, outcome.1);
                seen.push(outcome);
                assert_eq!(
                    (w.len(), w.failures(), w.slow_calls()),
                    model(&seen, capacity as usize),
                    "capacity={capacity} after {} pushes",
                    i + 1
                );
            }
        }
    }

    #[test]
    fn clear_forgets_everything() {
        let mut w = Window::new(70);
        for _ in 0..100 {
            w.push(true, true);
        }
        w.clear();
        assert_eq!((w.len(), w.failures(), w.slow_calls()), (0, 0, 0));
        w.push(false, false);
        assert_eq!((w.len(), w.failures(), w.slow_calls()), (1, 0, 0));
    }

    #[test]
    fn failure_rate_of_an_empty_window_is_zero() {
        assert_eq!(Window::new(5).failure_rate(), 0.0);
    }
}
