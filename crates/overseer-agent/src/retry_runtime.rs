//! What every retry of one system shares: the random generator its jitter draws from, and the
//! retry budget.

use std::sync::{Mutex, PoisonError};

use overseer_retry::{Attempt, RetryBudget, RetryDecision, RetryPolicy};
use rand::rngs::StdRng;
use rand::SeedableRng;

/// The system's retry state: one seeded generator (so a test that sets the seed knows every
/// delay) and the optional retry budget.
#[derive(Debug)]
pub(crate) struct RetryRuntime {
    rng: Mutex<StdRng>,
    pub(crate) budget: Option<RetryBudget>,
}

impl RetryRuntime {
    /// A generator seeded with `seed`, or from the operating system's entropy.
    pub(crate) fn new(seed: Option<u64>, budget: Option<RetryBudget>) -> Self {
        let rng = match seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        Self {
            rng: Mutex::new(rng),
            budget,
        }
    }

    /// `policy`'s decision after `attempt`, drawing its jitter from the system's generator.
    pub(crate) fn decide(&self, policy: &RetryPolicy, attempt: &Attempt) -> RetryDecision {
        let mut rng = self.rng.lock().unwrap_or_else(PoisonError::into_inner);
        policy.decide(attempt, &mut *rng)
    }
}
