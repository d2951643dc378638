//! Whether an agent's reported confidence means anything.
//!
//! Where an agent reports a confidence with its output, a [`ConfidenceTracker`] keeps, per
//! key (typically (agent, task type)), how often outputs at each confidence level were later
//! accepted or rejected by a validator, an inspector or a vote, and raises a [`Flag`] when the
//! outputs claimed at or above a high threshold are wrong more often than allowed. Agents
//! that claim over 95 % are often less accurate than ones that claim 75 %; the flag lets a
//! policy send such an agent's outputs to an inspector.
//!
//! # Example
//!
//! ```
//! use overseer_semantic::confidence::{ConfidenceConfig, ConfidenceTracker};
//!
//! let mut tracker = ConfidenceTracker::new(ConfidenceConfig::default())?;
//! let key = ("researcher", "summarize");
//! // 20 outputs claimed at 95 %, 6 of them later rejected: 30 % wrong, over the 25 % allowed.
//! let mut raised = None;
//! for i in 0..20 {
//!     if let Some(flag) = tracker.record(key, 0.95, i % 10 >= 3)? {
//!         raised = Some(flag);
//!     }
//! }
//! let flag = raised.expect("raised on the 20th output");
//! assert_eq!((flag.outputs, flag.wrong), (20, 6));
//! println!("{flag}"); // explains the numbers
//! assert_eq!(tracker.calibration(&key).unwrap().buckets[9].rejected, 6);
//! # Ok::<(), overseer_semantic::confidence::ConfidenceError>(())
//! ```

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;

/// What counts as over-confident.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct ConfidenceConfig {
    /// How many equal buckets `[0, 1]` is cut into for [`Calibration`]. Default 10 (deciles).
    pub buckets: u32,
    /// Outputs claimed at or above this are "high confidence". Default 0.9.
    pub high_threshold: f64,
    /// The largest share of high-confidence outputs that may be wrong. Default 0.25: a
    /// claim of 90 % or more that is right less than 75 % of the time is the pattern to
    /// catch, an agent that does worse than a modest claim would.
    pub max_wrong_rate: f64,
    /// No flag before this many high-confidence outputs were judged. Default 20: with 20
    /// outputs an honest agent right 90 % of the time is flagged (6 or more wrong) about
    /// 1 % of the time, where with 3 outputs one unlucky miss would flag it.
    pub min_samples: u32,
}

impl Default for ConfidenceConfig {
    fn default() -> Self {
        Self {
            buckets: 10,
            high_threshold: 0.9,
            max_wrong_rate: 0.25,
            min_samples: 20,
        }
    }
}

impl ConfidenceConfig {
    /// Sets the number of buckets.
    pub fn buckets(mut self, buckets: u32) -> Self {
        self.buckets = buckets;
        self
    }

    /// Sets the high-confidence threshold.
    pub fn high_threshold(mut self, threshold: f64) -> Self {
        self.high_threshold = threshold;
        self
    }

    /// Sets the allowed wrong rate of high-confidence outputs.
    pub fn max_wrong_rate(mut self, rate: f64) -> Self {
        self.max_wrong_rate = rate;
        self
    }

    /// Sets the minimum number of high-confidence outputs before a flag.
    pub fn min_samples(mut self, min: u32) -> Self {
        self.min_samples = min;
        self
    }

    /// Checks the numbers.
    ///
    /// # Errors
    ///
    /// [`ConfidenceError::InvalidConfig`] when there are no buckets, no minimum, or a
    /// threshold or rate outside `[0, 1]`.
    pub fn validate(&self) -> Result<(), ConfidenceError> {
        let problem = if self.buckets == 0 {
            Some("buckets must be at least 1")
        } else if self.min_samples == 0 {
            Some("min_samples must be at least 1")
        } else if !(0.0..=1.0).contains(&self.high_threshold) {
            Some("high_threshold must be in [0, 1]")
        } else if !(0.0..=1.0).contains(&self.max_wrong_rate) {
            Some("max_wrong_rate must be in [0, 1]")
        } else {
            None
        };
        problem.map_or(Ok(()), |reason| {
            Err(ConfidenceError::InvalidConfig { reason })
        })
    }
}

/// A confidence tracker was misused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfidenceError {
    /// The configuration cannot work.
    #[error("invalid confidence configuration: {reason}")]
    InvalidConfig {
        /// What is wrong.
        reason: &'static str,
    },
    /// A reported confidence was not in `[0, 1]`.
    #[error("confidence {0} is not in [0, 1]")]
    InvalidConfidence(f64),
}

/// Outputs reported in one confidence range and how they were judged.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Bucket {
    /// The lowest confidence in the bucket (inclusive).
    pub low: f64,
    /// The highest (exclusive, except 1.0 in the last bucket).
    pub high: f64,
    /// Outputs later accepted.
    pub accepted: u64,
    /// Outputs later rejected.
    pub rejected: u64,
}

impl Bucket {
    /// The share accepted, `None` when empty: against `(low + high) / 2` this shows how
    /// well calibrated the claims are.
    pub fn accuracy(&self) -> Option<f64> {
        let total = self.accepted + self.rejected;
        #[allow(clippy::cast_precision_loss)]
        (total > 0).then(|| self.accepted as f64 / total as f64)
    }
}

/// One key's record: every bucket, and the high-confidence outputs apart.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Calibration {
    /// The buckets, lowest confidence first.
    pub buckets: Vec<Bucket>,
    /// High-confidence outputs (claimed at or above the threshold) judged.
    pub high_outputs: u64,
    /// Of those, rejected.
    pub high_wrong: u64,
}

/// High-confidence outputs of one key are wrong too often.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Flag {
    /// Outputs claimed at or above `high_threshold`.
    pub outputs: u64,
    /// Of those, rejected.
    pub wrong: u64,
    /// `wrong / outputs`.
    pub wrong_rate: f64,
    /// The threshold that makes an output high-confidence.
    pub high_threshold: f64,
    /// The allowed wrong rate.
    pub max_wrong_rate: f64,
    /// The minimum number of outputs before a flag.
    pub min_samples: u32,
}

impl fmt::Display for Flag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} of {} outputs claimed at confidence >= {} were wrong ({:.1} %, more than the {:.1} % allowed; judged after at least {})",
            self.wrong,
            self.outputs,
            self.high_threshold,
            self.wrong_rate * 100.0,
            self.max_wrong_rate * 100.0,
            self.min_samples
        )
    }
}

/// Calibration records per key, and the over-confidence flag (see the
/// [module documentation](self)).
///
/// ```
/// use overseer_semantic::confidence::{ConfidenceConfig, ConfidenceTracker};
///
/// let mut tracker = ConfidenceTracker::new(ConfidenceConfig::default().min_samples(5))?;
/// for accepted in [true, false, false, true, false] {
///     tracker.record("oracle", 0.99, accepted)?;
/// }
/// let flag = tracker.flag(&"oracle").expect("3 of 5 wrong at 99 %");
/// assert_eq!(flag.to_string(), "3 of 5 outputs claimed at confidence >= 0.9 were wrong \
///     (60.0 %, more than the 25.0 % allowed; judged after at least 5)");
/// # Ok::<(), overseer_semantic::confidence::ConfidenceError>(())
/// ```
#[derive(Debug, Clone)]
pub struct ConfidenceTracker<K> {
    config: ConfidenceConfig,
    records: HashMap<K, Record>,
}

#[derive(Debug, Clone)]
struct Record {
    accepted: Vec<u64>,
    rejected: Vec<u64>,
    high_outputs: u64,
    high_wrong: u64,
    flagged: bool,
}

impl<K: Eq + Hash + Clone> ConfidenceTracker<K> {
    /// A tracker with no records.
    ///
    /// # Errors
    ///
    /// [`ConfidenceError::InvalidConfig`] (see [`ConfidenceConfig::validate`]).
    pub fn new(config: ConfidenceConfig) -> Result<Self, ConfidenceError> {
        config.validate()?;
        Ok(Self {
            config,
            records: HashMap::new(),
        })
    }

    /// Records that an output of `key` claimed at `confidence` was later `accepted` or not.
    /// Returns the [`Flag`] when this record raised it (it was not raised before); see
    /// [`flag`](Self::flag) for the current state.
    ///
    /// # Errors
    ///
    /// [`ConfidenceError::InvalidConfidence`] when `confidence` is not in `[0, 1]`; nothing
    /// is recorded then.
    pub fn record(
        &mut self,
        key: K,
        confidence: f64,
        accepted: bool,
    ) -> Result<Option<Flag>, ConfidenceError> {
        if !(0.0..=1.0).contains(&confidence) {
            return Err(ConfidenceError::InvalidConfidence(confidence));
        }
        let config = self.config;
        let buckets = config.buckets as usize;
        let record = self.records.entry(key).or_insert_with(|| Record {
            accepted: vec![0; buckets],
            rejected: vec![0; buckets],
            high_outputs: 0,
            high_wrong: 0,
            flagged: false,
        });
        let bucket = bucket_index(confidence, config.buckets);
        if accepted {
            record.accepted[bucket] += 1;
        } else {
            record.rejected[bucket] += 1;
        }
        if confidence >= config.high_threshold {
            record.high_outputs += 1;
            record.high_wrong += u64::from(!accepted);
        }
        let flag = over_confidence(&config, record.high_outputs, record.high_wrong);
        let raised = flag.is_some() && !record.flagged;
        record.flagged = flag.is_some();
        Ok(flag.filter(|_| raised))
    }

    /// The record of `key`, `None` before its first output.
    pub fn calibration(&self, key: &K) -> Option<Calibration> {
        let record = self.records.get(key)?;
        let n = f64::from(self.config.buckets);
        let buckets = (0..self.config.buckets)
            .map(|i| Bucket {
                low: f64::from(i) / n,
                high: f64::from(i + 1) / n,
                accepted: record.accepted[i as usize],
                rejected: record.rejected[i as usize],
            })
            .collect();
        Some(Calibration {
            buckets,
            high_outputs: record.high_outputs,
            high_wrong: record.high_wrong,
        })
    }

    /// The flag of `key` as things stand, if its high-confidence outputs are wrong too often.
    pub fn flag(&self, key: &K) -> Option<Flag> {
        let record = self.records.get(key)?;
        over_confidence(&self.config, record.high_outputs, record.high_wrong)
    }

    /// Forgets `key` (an agent replaced, a prompt changed).
    pub fn reset(&mut self, key: &K) {
        self.records.remove(key);
    }
}

/// The bucket of a confidence in `[0, 1]`; 1.0 goes in the last bucket.
fn bucket_index(confidence: f64, buckets: u32) -> usize {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let index = (confidence * f64::from(buckets)).floor() as usize;
    index.min(buckets as usize - 1)
}

/// The flag rule alone: enough high-confidence outputs, and too many of them wrong.
fn over_confidence(config: &ConfidenceConfig, outputs: u64, wrong: u64) -> Option<Flag> {
    if outputs < u64::from(config.min_samples) {
        return None;
    }
    #[allow(clippy::cast_precision_loss)]
    let wrong_rate = wrong as f64 / outputs as f64;
    (wrong_rate > config.max_wrong_rate).then_some(Flag {
        outputs,
        wrong,
        wrong_rate,
        high_threshold: config.high_threshold,
        max_wrong_rate: config.max_wrong_rate,
        min_samples: config.min_samples,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker() -> ConfidenceTracker<&'static str> {
        ConfidenceTracker::new(ConfidenceConfig::default()).unwrap()
    }

    #[test]
    fn confidences_land_in_their_decile() {
        assert_eq!(bucket_index(0.0, 10), 0);
        assert_eq!(bucket_index(0.09, 10), 0);
        assert_eq!(bucket_index(0.1, 10), 1);
        assert_eq!(bucket_index(0.95, 10), 9);
        assert_eq!(bucket_index(1.0, 10), 9);
        assert_eq!(bucket_index(0.5, 1), 0);
    }

    #[test]
    fn no_flag_on_three_wrong_samples() {
        let mut t = tracker();
        for _ in 0..3 {
            assert_eq!(t.record("a", 0.99, false).unwrap(), None);
        }
        assert_eq!(t.flag(&"a"), None);
    }

    #[test]
    fn the_flag_is_raised_once_at_min_samples_and_cleared_when_it_recovers() {
        let mut t = tracker();
        for _ in 0..19 {
            assert_eq!(t.record("a", 0.9, false).unwrap(), None);
        }
        let flag = t.record("a", 0.9, false).unwrap().expect("raised at 20");
        assert_eq!((flag.outputs, flag.wrong), (20, 20));
        assert_eq!(t.record("a", 0.9, false).unwrap(), None, "raised only once");
        assert!(t.flag(&"a").is_some());
        for _ in 0..100 {
            t.record("a", 0.9, true).unwrap();
        }
        assert_eq!(t.flag(&"a"), None);
    }

    #[test]
    fn the_rate_at_the_limit_is_not_flagged() {
        let mut t = tracker();
        // 5 wrong of 20 is exactly 25 %.
        for i in 0..20 {
            t.record("a", 0.95, i >= 5).unwrap();
        }
        assert_eq!(t.flag(&"a"), None);
        t.record("a", 0.95, false).unwrap();
        assert!(t.flag(&"a").is_some(), "6 of 21 is over 25 %");
    }

    #[test]
    fn low_confidence_outputs_do_not_count_toward_the_flag() {
        let mut t = tracker();
        for _ in 0..50 {
            t.record("a", 0.6, false).unwrap();
        }
        assert_eq!(t.flag(&"a"), None);
        let calibration = t.calibration(&"a").unwrap();
        assert_eq!(calibration.buckets[6].rejected, 50);
        assert_eq!(calibration.buckets[6].accuracy(), Some(0.0));
        assert_eq!(calibration.high_outputs, 0);
    }

    #[test]
    fn keys_are_tracked_apart() {
        let mut t = tracker();
        for _ in 0..30 {
            t.record("liar", 0.99, false).unwrap();
            t.record("honest", 0.99, true).unwrap();
        }
        assert!(t.flag(&"liar").is_some());
        assert_eq!(t.flag(&"honest"), None);
        t.reset(&"liar");
        assert_eq!(t.calibration(&"liar"), None);
    }

    #[test]
    fn bad_inputs_are_typed_errors() {
        let mut t = tracker();
        for c in [-0.1, 1.01, f64::NAN] {
            assert!(matches!(
                t.record("a", c, true),
                Err(ConfidenceError::InvalidConfidence(_))
            ));
        }
        assert_eq!(t.calibration(&"a"), None);
        for config in [
            ConfidenceConfig::default().buckets(0),
            ConfidenceConfig::default().min_samples(0),
            ConfidenceConfig::default().high_threshold(1.5),
            ConfidenceConfig::default().max_wrong_rate(f64::NAN),
        ] {
            assert!(ConfidenceTracker::<u8>::new(config).is_err());
        }
    }
}
