//! Whether a process may take a run: the claim rule as a pure function over the run's row and
//! the database's clock, apart from the SQL that carries it out.

use std::time::Duration;

use overseer_journal::Epoch;

/// Where a run stands in the shared database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    /// Waiting for a process: new, or handed back.
    Queued,
    /// Held by a process under a lease (which may have expired).
    Running,
    /// Finished: nobody takes it again.
    Finished,
}

impl RunStatus {
    /// The text stored in `overseer_runs.status`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Finished => "finished",
        }
    }

    /// The status stored as `text`, if it is one.
    pub fn parse(text: &str) -> Option<RunStatus> {
        match text {
            "queued" => Some(RunStatus::Queued),
            "running" => Some(RunStatus::Running),
            "finished" => Some(RunStatus::Finished),
            _ => None,
        }
    }
}

/// A run's row as the claim rule sees it. Times are milliseconds since the Unix epoch **on the
/// database's clock**: the processes' clocks never enter the decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseHead {
    /// The epoch last claimed (`None`: never claimed).
    pub epoch: Option<Epoch>,
    /// Who claimed it last.
    pub owner: Option<String>,
    /// When the last claim's lease runs out (`None`: no lease, as after a hand-back).
    pub lease_expires_ms: Option<i64>,
    /// Where the run stands.
    pub status: RunStatus,
}

/// What a claim gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimDecision {
    /// The run is the asker's under this epoch (one more than the last); every write to it
    /// carries the epoch, and the writes of earlier epochs are refused from now on.
    Claimed {
        /// The asker's epoch.
        epoch: Epoch,
    },
    /// Another process holds the run under a lease that has not run out.
    Busy {
        /// Who holds it.
        owner: String,
        /// How long its lease still runs, on the database's clock.
        remaining: Duration,
    },
    /// The run has finished: there is nothing to take.
    Finished,
}

/// Whether `asker` may claim a run whose row is `head` (`None`: no row yet, a new run) at
/// `now_ms` (the database's clock):
///
/// | the run | decision |
/// |---|---|
/// | no row, queued, or handed back | [`Claimed`](ClaimDecision::Claimed) with the next epoch |
/// | running, its lease run out (`now >= expiry`) | `Claimed` with the next epoch: its owner is presumed dead |
/// | running under a live lease of another owner | [`Busy`](ClaimDecision::Busy) with the time left |
/// | running under a live lease of the asker | `Claimed` with the next epoch: a new incarnation in the same process fences the old one |
/// | finished | [`Finished`](ClaimDecision::Finished) |
///
/// ```
/// use overseer_journal::Epoch;
/// use overseer_postgres::{decide_claim, ClaimDecision, LeaseHead, RunStatus};
///
/// let held = LeaseHead {
///     epoch: Some(Epoch(3)),
///     owner: Some("machine-a".into()),
///     lease_expires_ms: Some(10_000),
///     status: RunStatus::Running,
/// };
/// assert!(matches!(decide_claim(Some(&held), 9_000, "machine-b"), ClaimDecision::Busy { .. }));
/// assert_eq!(
///     decide_claim(Some(&held), 10_000, "machine-b"),
///     ClaimDecision::Claimed { epoch: Epoch(4) }
/// );
/// ```
pub fn decide_claim(head: Option<&LeaseHead>, now_ms: i64, asker: &str) -> ClaimDecision {
    let Some(head) = head else {
        return ClaimDecision::Claimed {
            epoch: Epoch::FIRST,
        };
    };
    let next = head.epoch.map_or(Epoch::FIRST, Epoch::next);
    match head.status {
        RunStatus::Finished => ClaimDecision::Finished,
        RunStatus::Queued => ClaimDecision::Claimed { epoch: next },
        RunStatus::Running => match (&head.owner, head.lease_expires_ms) {
            (Some(owner), Some(expiry)) if now_ms < expiry && owner != asker => {
                ClaimDecision::Busy {
                    owner: owner.clone(),
                    remaining: Duration::from_millis(expiry.saturating_sub(now_ms).unsigned_abs()),
                }
            }
            _ => ClaimDecision::Claimed { epoch: next },
        },
    }
}

/// A lease's length in whole milliseconds, as the SQL takes it (at least 1, at most `i64::MAX`).
pub(crate) fn lease_ms(lease: Duration) -> i64 {
    i64::try_from(lease.as_millis()).unwrap_or(i64::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn running(epoch: u64, owner: &str, expiry: i64) -> LeaseHead {
        LeaseHead {
            epoch: Some(Epoch(epoch)),
            owner: Some(owner.into()),
            lease_expires_ms: Some(expiry),
            status: RunStatus::Running,
        }
    }

    #[test]
    fn a_new_run_is_claimed_at_the_first_epoch() {
        assert_eq!(
            decide_claim(None, 0, "a"),
            ClaimDecision::Claimed {
                epoch: Epoch::FIRST
            }
        );
        let queued = LeaseHead {
            epoch: None,
            owner: None,
            lease_expires_ms: None,
            status: RunStatus::Queued,
        };
        assert_eq!(
            decide_claim(Some(&queued), 0, "a"),
            ClaimDecision::Claimed {
                epoch: Epoch::FIRST
            }
        );
    }

    #[test]
    fn a_live_lease_of_another_owner_makes_the_run_busy_until_it_runs_out() {
        let head = running(2, "a", 5_000);
        assert_eq!(
            decide_claim(Some(&head), 4_250, "b"),
            ClaimDecision::Busy {
                owner: "a".into(),
                remaining: Duration::from_millis(750)
            }
        );
        assert_eq!(
            decide_claim(Some(&head), 5_000, "b"),
            ClaimDecision::Claimed { epoch: Epoch(3) }
        );
    }

    #[test]
    fn the_holder_claiming_again_fences_its_own_earlier_incarnation() {
        let head = running(2, "a", 5_000);
        assert_eq!(
            decide_claim(Some(&head), 0, "a"),
            ClaimDecision::Claimed { epoch: Epoch(3) }
        );
    }

    #[test]
    fn a_handed_back_run_is_claimed_at_once_and_a_finished_one_never() {
        let handed_back = LeaseHead {
            epoch: Some(Epoch(4)),
            owner: None,
            lease_expires_ms: None,
            status: RunStatus::Queued,
        };
        assert_eq!(
            decide_claim(Some(&handed_back), 0, "b"),
            ClaimDecision::Claimed { epoch: Epoch(5) }
        );
        let finished = LeaseHead {
            status: RunStatus::Finished,
            ..running(4, "a", i64::MAX)
        };
        assert_eq!(
            decide_claim(Some(&finished), i64::MAX, "b"),
            ClaimDecision::Finished
        );
    }

    #[test]
    fn statuses_round_trip_through_their_text() {
        for status in [RunStatus::Queued, RunStatus::Running, RunStatus::Finished] {
            assert_eq!(RunStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(RunStatus::parse("done"), None);
    }

    proptest! {
        /// Whatever the row and the clock: a claim is granted exactly when the run is not
        /// finished and not held by someone else under a live lease, and a granted epoch is
        /// always above the last one.
        #[test]
        fn a_claim_is_granted_exactly_when_no_one_else_holds_a_live_lease(
            epoch in proptest::option::of(1u64..1_000),
            owner in proptest::option::of(prop_oneof![Just("a"), Just("b")]),
            expiry in proptest::option::of(-10_000i64..10_000),
            status in prop_oneof![Just(RunStatus::Queued), Just(RunStatus::Running), Just(RunStatus::Finished)],
            now in -10_000i64..10_000,
            asker in prop_oneof![Just("a"), Just("b")],
        ) {
            let head = LeaseHead {
                epoch: epoch.map(Epoch),
                owner: owner.map(str::to_owned),
                lease_expires_ms: expiry,
                status,
            };
            let held_by_other = status == RunStatus::Running
                && owner.is_some_and(|o| o != asker)
                && expiry.is_some_and(|e| now < e);
            match decide_claim(Some(&head), now, asker) {
                ClaimDecision::Claimed { epoch: granted } => {
                    prop_assert!(status != RunStatus::Finished && !held_by_other);
                    prop_assert!(granted > epoch.map_or(Epoch(0), Epoch));
                    prop_assert_eq!(granted, epoch.map_or(Epoch::FIRST, |e| Epoch(e + 1)));
                }
                ClaimDecision::Busy { remaining, .. } => {
                    prop_assert!(held_by_other);
                    prop_assert!(remaining > Duration::ZERO);
                }
                ClaimDecision::Finished => prop_assert_eq!(status, RunStatus::Finished),
            }
        }
    }
}
