//! Whether a system is up, in one value a container orchestrator's probe can read
//! ([`System::readiness`](crate::System::readiness)).

use overseer_budget::TripReason;

/// Whether a system is up: its tree running, its kill switch not tripped, and enough of its
/// agents healthy.
///
/// ```
/// use overseer_agent::Readiness;
///
/// let up = Readiness::new(true, None, 4, 3);
/// assert!(up.is_ready(0.75));
/// assert!(!up.is_ready(1.0));
/// assert_eq!(up.healthy_share(), 0.75);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Readiness {
    /// Whether the supervision tree has started and is still running (not shut down, and its
    /// root has not exited: an escalation past the root stops it).
    pub running: bool,
    /// Why the kill switch tripped, if it has.
    pub tripped: Option<TripReason>,
    /// How many agents are declared.
    pub agents: usize,
    /// How many of them are not unhealthy (their last health check passed, or none has failed).
    pub healthy: usize,
}

impl Readiness {
    /// A readiness with these facts (systems make them; this is for what consumes them).
    pub fn new(running: bool, tripped: Option<TripReason>, agents: usize, healthy: usize) -> Self {
        Self {
            running,
            tripped,
            agents,
            healthy: healthy.min(agents),
        }
    }

    /// The share of agents that are healthy, from 0 to 1 (1 with no agents).
    pub fn healthy_share(&self) -> f64 {
        if self.agents == 0 {
            return 1.0;
        }
        self.healthy as f64 / self.agents as f64
    }

    /// Whether the system is ready: running, not tripped, and at least `min_healthy_share` of
    /// its agents healthy (1.0: all of them).
    pub fn is_ready(&self, min_healthy_share: f64) -> bool {
        self.running && self.tripped.is_none() && self.healthy_share() >= min_healthy_share
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use overseer_budget::TripReason;

    #[test]
    fn a_trip_or_a_stopped_tree_is_never_ready() {
        let tripped = Readiness::new(
            true,
            Some(TripReason::Manual {
                reason: "test".into(),
            }),
            2,
            2,
        );
        assert!(!tripped.is_ready(0.0));
        let stopped = Readiness::new(false, None, 2, 2);
        assert!(!stopped.is_ready(0.0));
        let empty = Readiness::new(true, None, 0, 0);
        assert!(empty.is_ready(1.0));
        assert_eq!(Readiness::new(true, None, 2, 5).healthy, 2);
    }
}
