//! Bulkheads: named concurrency limits shared across agents.
//!
//! A [`Bulkhead`] is a number of permits (a tokio [`Semaphore`]) and the figures a metric
//! reads. A call takes a permit before it runs and gives it back when its [`BulkheadPermit`]
//! drops, so at most `limit` calls hold one at a time, whoever makes them; a slow tool under
//! its own bulkhead cannot take the capacity that model calls need. Taking a permit waits at
//! most until a deadline (the task's), and the wait is counted.
//!
//! This is the one part of the crate that waits (on the tokio clock, so a paused clock drives
//! it). The uncontended path is one `try_acquire` on the semaphore and no allocation.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use thiserror::Error;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Duration, Instant};

/// A named concurrency limit.
#[derive(Debug)]
pub struct Bulkhead {
    name: Arc<str>,
    limit: usize,
    permits: Arc<Semaphore>,
    waiting: AtomicU64,
    waits: AtomicU64,
    timeouts: AtomicU64,
}

/// A taken permit of a [`Bulkhead`], given back on drop.
#[derive(Debug)]
#[must_use = "the permit is given back when dropped"]
pub struct BulkheadPermit {
    _permit: OwnedSemaphorePermit,
}

/// What a bulkhead's metrics read: its figures at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BulkheadSnapshot {
    /// Its name.
    pub name: Arc<str>,
    /// How many calls may hold a permit at once.
    pub limit: usize,
    /// How many do now.
    pub in_use: usize,
    /// How many wait for one now.
    pub waiting: u64,
    /// Calls that had to wait for a permit, since the bulkhead was made.
    pub waits_total: u64,
    /// Waits that ended at their deadline without a permit, since the bulkhead was made.
    pub timeouts_total: u64,
}

/// A bulkhead that cannot be made, or a permit not taken.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum BulkheadError {
    /// A bulkhead's limit must be at least 1 (and at most tokio's semaphore maximum).
    #[error("the limit of bulkhead '{name}' must be between 1 and {max}; got {limit}")]
    InvalidLimit {
        /// The bulkhead.
        name: String,
        /// The limit asked for.
        limit: usize,
        /// The largest limit.
        max: usize,
    },
    /// No bulkhead has this name.
    #[error("no bulkhead named '{name}'")]
    Unknown {
        /// The name asked for.
        name: String,
    },
    /// The deadline came before a permit was free.
    #[error("no permit of bulkhead '{name}' within {waited:?}")]
    Timeout {
        /// The bulkhead.
        name: String,
        /// How long the call waited.
        waited: Duration,
    },
}

impl Bulkhead {
    /// A bulkhead of `limit` permits.
    ///
    /// # Errors
    ///
    /// [`BulkheadError::InvalidLimit`] for a limit of 0 or above [`Semaphore::MAX_PERMITS`].
    pub fn new(name: impl Into<Arc<str>>, limit: usize) -> Result<Self, BulkheadError> {
        let name = name.into();
        if limit == 0 || limit > Semaphore::MAX_PERMITS {
            return Err(BulkheadError::InvalidLimit {
                name: name.to_string(),
                limit,
                max: Semaphore::MAX_PERMITS,
            });
        }
        Ok(Self {
            name,
            limit,
            permits: Arc::new(Semaphore::new(limit)),
            waiting: AtomicU64::new(0),
            waits: AtomicU64::new(0),
            timeouts: AtomicU64::new(0),
        })
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its limit.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// A permit if one is free now, without waiting (nothing is counted otherwise).
    pub fn try_acquire(&self) -> Option<BulkheadPermit> {
        Arc::clone(&self.permits)
            .try_acquire_owned()
            .ok()
            .map(|permit| BulkheadPermit { _permit: permit })
    }

    /// A permit, waiting for one at most until `deadline` (`None`: as long as it takes).
    /// Waiters are served in the order they came (tokio's semaphore is fair).
    ///
    /// # Errors
    ///
    /// [`BulkheadError::Timeout`] when the deadline comes first.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future gives up its place in the queue; no permit is lost.
    pub async fn acquire_until(
        &self,
        deadline: Option<Instant>,
    ) -> Result<BulkheadPermit, BulkheadError> {
        if let Some(permit) = self.try_acquire() {
            return Ok(permit);
        }
        self.wait(deadline).await
    }

    #[cold]
    async fn wait(&self, deadline: Option<Instant>) -> Result<BulkheadPermit, BulkheadError> {
        let started = Instant::now();
        self.waits.fetch_add(1, Ordering::Relaxed);
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let _waiting = Waiting(&self.waiting);
        let acquire = Arc::clone(&self.permits).acquire_owned();
        let acquired = match deadline {
            Some(deadline) => tokio::time::timeout_at(deadline, acquire).await.ok(),
            None => Some(acquire.await),
        };
        match acquired {
            // The semaphore is never closed.
            Some(Ok(permit)) => Ok(BulkheadPermit { _permit: permit }),
            Some(Err(_)) | None => {
                self.timeouts.fetch_add(1, Ordering::Relaxed);
                Err(BulkheadError::Timeout {
                    name: self.name.to_string(),
                    waited: started.elapsed(),
                })
            }
        }
    }

    /// Its figures now.
    pub fn snapshot(&self) -> BulkheadSnapshot {
        BulkheadSnapshot {
            name: Arc::clone(&self.name),
            limit: self.limit,
            in_use: self.limit - self.permits.available_permits(),
            waiting: self.waiting.load(Ordering::Relaxed),
            waits_total: self.waits.load(Ordering::Relaxed),
            timeouts_total: self.timeouts.load(Ordering::Relaxed),
        }
    }
}

/// Counts a waiter out when its wait ends, however it ends (a dropped future too).
struct Waiting<'a>(&'a AtomicU64);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_of_zero_is_refused() {
        assert!(matches!(
            Bulkhead::new("b", 0),
            Err(BulkheadError::InvalidLimit { limit: 0, .. })
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_ends_at_its_deadline_and_is_counted() {
        let bulkhead = Bulkhead::new("model-calls", 1).unwrap();
        let held = bulkhead.try_acquire().unwrap();
        assert!(bulkhead.try_acquire().is_none());
        let start = Instant::now();
        let deadline = start + Duration::from_secs(2);
        let error = bulkhead.acquire_until(Some(deadline)).await.unwrap_err();
        assert_eq!(Instant::now(), deadline, "waited exactly to the deadline");
        assert_eq!(
            error,
            BulkheadError::Timeout {
                name: "model-calls".into(),
                waited: Duration::from_secs(2)
            }
        );
        let snapshot = bulkhead.snapshot();
        assert_eq!(
            (
                snapshot.in_use,
                snapshot.waiting,
                snapshot.waits_total,
                snapshot.timeouts_total
            ),
            (1, 0, 1, 1)
        );
        drop(held);
        assert_eq!(bulkhead.snapshot().in_use, 0);
        let _permit = bulkhead.acquire_until(Some(deadline)).await.unwrap();
        assert_eq!(
            bulkhead.snapshot().waits_total,
            1,
            "a free permit is no wait"
        );
    }
}
