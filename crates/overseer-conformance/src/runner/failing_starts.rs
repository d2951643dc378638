//! The starts a scenario makes fail (`failstart NAME N`), counted down as they fail.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// How many of each name's next starts must fail, shared by the run that sets them and the
/// start functions of the supervisors and workers that fail them.
#[derive(Debug, Default, Clone)]
pub(super) struct FailingStarts(Arc<Mutex<HashMap<String, u32>>>);

impl FailingStarts {
    /// Makes the next `times` starts of `name` fail.
    pub(super) fn set(&self, name: &str, times: u32) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.to_owned(), times);
    }

    /// Whether the next start of `name` must fail (and counts that failure down).
    pub(super) fn take(&self, name: &str) -> bool {
        let mut failing = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match failing.get_mut(name) {
            Some(left) if *left > 0 => {
                *left -= 1;
                true
            }
            _ => false,
        }
    }
}
