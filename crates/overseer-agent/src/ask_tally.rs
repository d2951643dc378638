//! The asks each agent ended, counted with a sample of their latencies by their callers once
//! someone reads them ([`System::ask_tallies`](crate::System::ask_tallies)): what a console or
//! a dashboard shows per agent (asks per second, latency percentiles) without an event per
//! ask. Failed asks are counted too, and are also events
//! ([`System::subscribe_unanswered`](crate::System::subscribe_unanswered)).
//!
//! The latencies sampled are one ask in four, and the first after each reading of the
//! tallies, so that a quiet agent's are read as well as a busy one's, and most asks cost no
//! clock read. They are counted in log-linear buckets, eight per power of two, so a latency
//! read back is within 6.25 % of the real one (its bucket's midpoint), from a nanosecond to
//! 73 minutes (longer ones count in the last bucket).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::AgentName;

/// Sub-buckets per power of two, as a number of bits.
const SUB_BITS: u32 = 3;
const SUB_BUCKETS: usize = 1 << SUB_BITS;
/// The largest latency told apart, in nanoseconds (about 73 minutes); longer ones count in the
/// last bucket.
const LARGEST_NANOS: u64 = (1 << 42) - 1;
/// Buckets of a histogram: exact below `SUB_BUCKETS` ns, then `SUB_BUCKETS` per power of two.
const BUCKETS: usize = bucket_of(LARGEST_NANOS) + 1;

/// The bucket a latency of `nanos` counts in.
const fn bucket_of(nanos: u64) -> usize {
    let nanos = if nanos > LARGEST_NANOS {
        LARGEST_NANOS
    } else {
        nanos
    };
    if nanos < SUB_BUCKETS as u64 {
        return nanos as usize;
    }
    let shift = 63 - nanos.leading_zeros() - SUB_BITS;
    (shift as usize + 1) * SUB_BUCKETS + ((nanos >> shift) as usize & (SUB_BUCKETS - 1))
}

/// The bucket `latency` counts in.
fn bucket_of_latency(latency: Duration) -> usize {
    bucket_of(u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX))
}

/// The latencies bucket `index` counts, as nanoseconds: from `.0` to `.1`, both included.
const fn bucket_bounds(index: usize) -> (u64, u64) {
    if index < SUB_BUCKETS {
        return (index as u64, index as u64);
    }
    let shift = (index / SUB_BUCKETS - 1) as u32;
    let mantissa = (SUB_BUCKETS + index % SUB_BUCKETS) as u64;
    (mantissa << shift, ((mantissa + 1) << shift) - 1)
}

/// Of the asks an agent ends, one in this many has its latency read (with the first of each
/// reading's period: [`LiveTally::count`]), so that counting costs most asks no clock read.
const SAMPLE_EVERY: u64 = 4;

/// An agent's live tally: the asks ended and the latencies sampled, counted by their callers.
pub(crate) struct LiveTally {
    ended: AtomicU64,
    /// The reading period ([`System::ask_tallies`](crate::System::ask_tallies) calls) of the
    /// latest sample.
    sampled_in: AtomicU64,
    buckets: Box<[AtomicU64]>,
}

impl LiveTally {
    pub(crate) fn new() -> Self {
        Self {
            ended: AtomicU64::new(0),
            sampled_in: AtomicU64::new(u64::MAX),
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Counts one ask ended; in `period` (the number of readings so far), reads its latency
    /// since `asked_at` if it is one in [`SAMPLE_EVERY`] or the first of the period (so a
    /// quiet agent has its latencies read too).
    #[inline]
    pub(crate) fn count(&self, asked_at: Instant, period: u64) {
        // Relaxed: counters read by snapshots, ordered with nothing else.
        let ended = self.ended.fetch_add(1, Ordering::Relaxed);
        if ended.is_multiple_of(SAMPLE_EVERY) || self.sampled_in.load(Ordering::Relaxed) != period {
            self.sampled_in.store(period, Ordering::Relaxed);
            self.sample(asked_at.elapsed());
        }
    }

    /// Counts one latency sample.
    fn sample(&self, latency: Duration) {
        self.buckets[bucket_of_latency(latency)].fetch_add(1, Ordering::Relaxed);
    }

    /// What it counted so far.
    pub(crate) fn read(&self) -> (u64, LatencyHistogram) {
        let latency = LatencyHistogram {
            counts: self
                .buckets
                .iter()
                .map(|bucket| bucket.load(Ordering::Relaxed))
                .collect(),
        };
        (self.ended.load(Ordering::Relaxed), latency)
    }
}

/// Latencies counted in log-linear buckets (eight per power of two): read back within 6.25 %
/// of the real values, from a nanosecond to 73 minutes.
///
/// ```
/// use std::time::Duration;
/// use overseer_agent::LatencyHistogram;
///
/// let mut latencies = LatencyHistogram::default();
/// for ms in 1..=100 {
///     latencies.record(Duration::from_millis(ms));
/// }
/// assert_eq!(latencies.count(), 100);
/// let p50 = latencies.quantile(0.5).unwrap();
/// assert!(p50 >= Duration::from_millis(47) && p50 <= Duration::from_millis(53), "{p50:?}");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatencyHistogram {
    counts: Vec<u64>,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self {
            counts: vec![0; BUCKETS],
        }
    }
}

impl LatencyHistogram {
    /// Counts one latency.
    pub fn record(&mut self, latency: Duration) {
        self.counts[bucket_of_latency(latency)] += 1;
    }

    /// How many latencies it counts.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Whether it counts none.
    pub fn is_empty(&self) -> bool {
        self.counts.iter().all(|&count| count == 0)
    }

    /// The latency at quantile `q` (0 to 1; nearest rank), as the midpoint of its bucket;
    /// `None` when it counts none.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        let index = self.counts.iter().position(|&count| {
            seen += count;
            seen >= rank
        })?;
        let (low, high) = bucket_bounds(index);
        Some(Duration::from_nanos(low + (high - low) / 2))
    }

    /// What it counts beyond `earlier` (an earlier reading of the same tally): the latencies
    /// counted between the two readings.
    pub fn since(&self, earlier: &LatencyHistogram) -> LatencyHistogram {
        LatencyHistogram {
            counts: self
                .counts
                .iter()
                .zip(&earlier.counts)
                .map(|(now, before)| now.saturating_sub(*before))
                .collect(),
        }
    }

    /// Adds what `other` counts.
    pub fn merge(&mut self, other: &LatencyHistogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
    }
}

/// One agent's asks, as [`System::ask_tallies`](crate::System::ask_tallies) read them: counted
/// since tallies were first read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AskTally {
    /// The agent.
    pub agent: AgentName,
    /// The asks and tells of it that ended, answered or failed (refusals included).
    pub ended: u64,
    /// The latencies of a sample of them: one in four, and the first after each reading.
    pub latency: LatencyHistogram,
}

impl AskTally {
    /// A tally of `agent`: `ended` asks, `latency` sampled (for a watcher's tests; the system
    /// makes the real ones).
    pub fn new(agent: AgentName, ended: u64, latency: LatencyHistogram) -> Self {
        Self {
            agent,
            ended,
            latency,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn buckets_are_exact_below_eight_nanoseconds_then_eight_per_power_of_two() {
        for nanos in 0..8 {
            assert_eq!(bucket_of(nanos), nanos as usize);
            assert_eq!(bucket_bounds(nanos as usize), (nanos, nanos));
        }
        assert_eq!(bucket_of(8), 8);
        assert_eq!(bucket_of(15), 15);
        assert_eq!(bucket_of(16), 16);
        assert_eq!(bucket_bounds(16), (16, 17));
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
        assert_eq!(bucket_bounds(BUCKETS - 1).1, LARGEST_NANOS);
    }

    proptest! {
        #[test]
        fn every_latency_falls_within_its_buckets_bounds(nanos in 0..=LARGEST_NANOS) {
            let (low, high) = bucket_bounds(bucket_of(nanos));
            prop_assert!(low <= nanos && nanos <= high, "{nanos} in {low}..={high}");
            // Within 1/8 of the value: the midpoint is within 6.25 %.
            prop_assert!((high - low) as f64 <= nanos as f64 / 8.0);
        }
    }

    #[test]
    fn quantiles_are_nearest_rank_and_a_reading_less_an_earlier_is_what_came_between() {
        let mut tally = LatencyHistogram::default();
        assert_eq!(tally.quantile(0.5), None);
        for ms in 1..=10 {
            tally.record(Duration::from_millis(ms));
        }
        let before = tally.clone();
        for _ in 0..90 {
            tally.record(Duration::from_millis(100));
        }
        let now = tally;
        assert_eq!(now.count(), 100);
        let near = |got: Option<Duration>, ms: f64| {
            let got = got.unwrap().as_secs_f64() * 1e3;
            assert!((got - ms).abs() <= ms / 16.0, "{got} ms, not about {ms}");
        };
        near(now.quantile(0.05), 5.0);
        near(now.quantile(0.5), 100.0);
        let between = now.since(&before);
        assert_eq!(between.count(), 90);
        near(between.quantile(0.01), 100.0);
        let mut merged = between.clone();
        merged.merge(&before);
        assert_eq!(merged, now);
        assert!(LatencyHistogram::default().is_empty() && !now.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn every_ask_is_counted_one_in_four_timed_and_the_first_of_each_period() {
        let live = LiveTally::new();
        let asked_at = Instant::now();
        tokio::time::advance(Duration::from_millis(3)).await;
        for _ in 0..100 {
            live.count(asked_at, 0);
        }
        let (ended, latency) = live.read();
        assert_eq!((ended, latency.count()), (100, 25));
        let p50 = latency.quantile(0.5).unwrap();
        assert!(p50.abs_diff(Duration::from_millis(3)) <= Duration::from_micros(200));
        live.count(asked_at, 0);
        assert_eq!(live.read().1.count(), 26, "the 101st is one in four");
        // A new period: its first ask is timed although it is not one in four.
        live.count(asked_at, 1);
        live.count(asked_at, 1);
        assert_eq!(live.read(), (103, live.read().1));
        assert_eq!(live.read().1.count(), 27);
    }
}
