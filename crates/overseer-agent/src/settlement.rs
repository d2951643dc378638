//! Settling an ask: recording its end with the breaker, the error-rate window and the budget,
//! exactly once, by whichever side learns of the end first.
//!
//! An ask's end can be learnt by the incarnation that ran it (the handler returned, failed or
//! passed its deadline) or by its caller (its deadline passed while the handler still ran, or
//! the incarnation was killed while it held the task). The caller must not return its error
//! before the end is recorded, or an immediate retry would be admitted by a breaker that has not
//! counted the failure yet; the incarnation may never get to record anything (killed). So both
//! hold the same [`Settlement`], and the first to [`take`](Settlement::take) it records the end.
//!
//! The spend a handler reports is added here as it is reported, so that whoever settles commits
//! exactly what was reported, whatever ended the handler: spend reported is spend committed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use overseer_breaker::{Outcome, Permit};
use overseer_budget::{Budget, CommitReport, KillSwitch, Reservation};
use overseer_supervisor::{ChildPath, EventId};
use tokio::time::Instant;

use crate::event::{BudgetWarningEvent, SystemEvent};
use crate::shared::Shared;
use crate::usage::Usage;

/// What admitting one ask took, and the spend its handler has reported so far.
pub(crate) struct Settlement {
    open: Mutex<Open>,
    /// Whether a handler started on the attempt open now: set by the incarnation without the
    /// lock (a plain store), read by whoever takes the settlement. A start that races with the
    /// caller's deadline is seen or not, as with the lock it would have come after the take or
    /// before it; either way what the handler spends is committed (as late spend, if after).
    ran: AtomicBool,
    /// Whether the breaker that admitted the ask wants the handler's latency (it has a
    /// slow-call threshold): else the clock is not read to time the handler.
    wants_latency: bool,
}

struct Open {
    /// `None` once settled.
    taken: Option<Taken>,
    /// Spend reported after the ask was settled (its caller timed out while the handler ran
    /// on): committed by the incarnation when the handler ends.
    late: Usage,
}

/// What admitting an ask took from the breaker and the budget, and the spend reported since.
pub(crate) struct Taken {
    /// The breaker admission: its outcome is recorded, or it is cancelled.
    pub(crate) permit: Option<Permit>,
    /// The budget held for the ask: committed with `reported`.
    pub(crate) reservation: Option<Reservation>,
    /// The spend the handler reported so far.
    pub(crate) reported: Usage,
    /// Whether a handler started on the ask.
    pub(crate) ran: bool,
}

impl Taken {
    /// Commits the spend reported (and a step) if a handler ran, else releases what was
    /// reserved: a reservation is never released once a handler ran, so what was spent is
    /// counted whatever ended it.
    pub(crate) fn commit(&mut self) -> Option<CommitReport> {
        let reservation = self.reservation.take()?;
        if self.ran {
            Some(reservation.commit(self.reported.into()))
        } else {
            reservation.release();
            None
        }
    }
}

impl std::fmt::Debug for Settlement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settlement")
            .field("settled", &self.is_settled())
            .finish()
    }
}

impl Settlement {
    /// `None` when admitting took nothing (no breaker, no budget): nothing to settle.
    #[inline]
    pub(crate) fn new(
        permit: Option<Permit>,
        reservation: Option<Reservation>,
    ) -> Option<Arc<Self>> {
        let wants_latency = permit.as_ref().is_some_and(Permit::measures_latency);
        (permit.is_some() || reservation.is_some()).then(|| {
            Arc::new(Self {
                ran: AtomicBool::new(false),
                wants_latency,
                open: Mutex::new(Open {
                    taken: Some(Taken {
                        permit,
                        reservation,
                        reported: Usage::default(),
                        ran: false,
                    }),
                    late: Usage::default(),
                }),
            })
        })
    }

    fn open(&self) -> MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What the open reservation holds, if it holds nothing in the budget's shared limit (a
    /// task admitted without waiting: a tell, a vote's sample, a replay).
    pub(crate) fn unheld_estimate(&self) -> Option<overseer_budget::Spend> {
        let open = self.open();
        let reservation = open.taken.as_ref()?.reservation.as_ref()?;
        (!reservation.holds_shared()).then(|| reservation.estimate())
    }

    /// Attaches `hold` (on the budget's shared limit) to the open reservation; given back
    /// (dropped) if the ask was settled meanwhile.
    pub(crate) fn attach_shared(&self, hold: overseer_budget::FleetHold) {
        let mut open = self.open();
        if let Some(reservation) = open
            .taken
            .as_mut()
            .and_then(|taken| taken.reservation.as_mut())
        {
            reservation.attach_shared(hold);
        }
    }

    /// Whether the handler is to be timed for the breaker that admitted the ask.
    pub(crate) fn wants_latency(&self) -> bool {
        self.wants_latency
    }

    /// A handler started on the ask.
    pub(crate) fn begin(&self) {
        self.ran.store(true, Ordering::Release);
    }

    /// Adds spend the handler reported.
    pub(crate) fn report(&self, usage: Usage) {
        let mut open = self.open();
        match &mut open.taken {
            Some(taken) => taken.reported += usage,
            None => open.late += usage,
        }
    }

    /// Takes what is to be settled: `None` if the other side settled the ask already.
    pub(crate) fn take(&self) -> Option<Taken> {
        let mut taken = self.open().taken.take()?;
        taken.ran = self.ran.load(Ordering::Acquire);
        Some(taken)
    }

    /// Settles the attempt that ended (its spend committed; with a `verdict`, its outcome
    /// counted) and opens the settlement again for the ask's next attempt, with what `readmit`
    /// reserves for it and no breaker admission: how a durable task requeued after a crash or
    /// a kill stays one ask to its caller, whose deadline settles whatever attempt is in
    /// flight. The attempt is settled before `readmit` runs, so that what it reserved is free
    /// for the next. `Err(None)`, and nothing done, if the caller has settled the ask already;
    /// `Err(Some(refusal))` if `readmit` refused: the ask stays settled.
    pub(crate) fn rearm<E>(
        &self,
        shared: &Shared,
        id: EventId,
        path: Option<&ChildPath>,
        verdict: Option<Verdict>,
        readmit: impl FnOnce() -> Result<Option<Reservation>, E>,
    ) -> Result<(), Option<E>> {
        // One lock over the swap (the budget and the breaker never take it): the caller never
        // sees the ask settled between two attempts.
        let mut open = self.open();
        let mut taken = open.taken.take().ok_or(None)?;
        taken.ran = self.ran.load(Ordering::Acquire);
        taken.settle(shared, id, path, verdict);
        self.ran.store(false, Ordering::Release);
        let reservation = readmit().map_err(Some)?;
        open.taken = Some(Taken {
            permit: None,
            reservation,
            reported: Usage::default(),
            ran: false,
        });
        Ok(())
    }

    /// Whether the ask is settled already.
    pub(crate) fn is_settled(&self) -> bool {
        self.open().taken.is_none()
    }

    /// Settles a task that ended in its incarnation, unless its caller did already (its
    /// deadline passed first); spend reported after that is charged on its own.
    pub(crate) fn settle_ended(
        &self,
        shared: &Shared,
        agent: &str,
        id: EventId,
        path: Option<&ChildPath>,
        verdict: Option<Verdict>,
    ) {
        // One lock for both: what is to be settled, and what was reported after the caller
        // settled it (read only when there is some: the common case moves nothing).
        let (taken, late) = {
            let mut open = self.open();
            let late = (!open.late.is_zero()).then(|| std::mem::take(&mut open.late));
            (open.taken.take(), late)
        };
        if let Some(mut taken) = taken {
            taken.ran = self.ran.load(Ordering::Acquire);
            taken.settle(shared, id, path, verdict);
        }
        if let (Some(budget), Some(late)) = (&shared.budget, late) {
            // Not refused: it was spent.
            budget.charge(agent, late.into());
        }
    }
}

/// Nobody settled the ask (a tell whose incarnation was killed): the spend reported is
/// committed, the breaker admission cancelled.
impl Drop for Settlement {
    fn drop(&mut self) {
        let ran = *self.ran.get_mut();
        let open = self.open.get_mut().unwrap_or_else(PoisonError::into_inner);
        if let Some(taken) = open.taken.take() {
            Taken { ran, ..taken }.commit();
        }
    }
}

/// How an ask ended, as the breaker and the error-rate window count it.
pub(crate) struct Verdict {
    /// What the breaker records.
    pub(crate) outcome: Outcome,
    /// Whether the error-rate window counts a success.
    pub(crate) success: bool,
    /// How long the handler took (the breaker's latency; zero when the breaker does not
    /// measure it).
    pub(crate) latency: Duration,
    /// When the outcome was judged, if the clock was read for it: the breaker and the
    /// error-rate window record it at this instant instead of reading the clock again.
    pub(crate) at: Option<Instant>,
}

impl Taken {
    /// Records the ask's end: its spend committed (with the budget warnings it crossed), and,
    /// with a `verdict`, its outcome counted by the breaker and the error-rate window; without
    /// one (the caller gave up, a kill, a trip's cancellation) the breaker admission is
    /// cancelled and nothing is counted.
    pub(crate) fn settle(
        mut self,
        shared: &Shared,
        id: EventId,
        path: Option<&ChildPath>,
        verdict: Option<Verdict>,
    ) {
        let switch = shared.budget.as_ref().map(Budget::kill_switch);
        let counted = verdict
            .as_ref()
            .filter(|_| switch.is_some_and(KillSwitch::counts_outcomes));
        if self.reservation.is_some() || counted.is_some() {
            // One scope for both: a trip, by a limit or by the error rate, names this ask.
            crate::cause::during_ask(id, path, || {
                self.commit_and_count(shared, id, path, switch.zip(counted))
            });
        }
        let Some(verdict) = verdict else {
            if let Some(permit) = self.permit {
                permit.cancel();
            }
            return;
        };
        if let Some(permit) = self.permit {
            let transition = match verdict.at {
                Some(at) => permit.record_at(verdict.outcome, verdict.latency, at),
                None => permit.record(verdict.outcome, verdict.latency),
            };
            if let Some(transition) = transition {
                shared.publish_transition(&transition, id, path.cloned());
            }
        }
    }

    /// Commits the spend (publishing the budget warnings it crossed), then counts the
    /// outcome in the kill switch's error-rate window if `counted` (the switch, and the
    /// verdict to count). The clock is read only if something uses the instant (a trip).
    fn commit_and_count(
        &mut self,
        shared: &Shared,
        id: EventId,
        path: Option<&ChildPath>,
        counted: Option<(&KillSwitch, &Verdict)>,
    ) {
        if let Some(report) = self.commit() {
            for warning in report.warnings {
                let meta = shared.meta(Some(id), path.cloned());
                shared.publish(SystemEvent::BudgetWarning(BudgetWarningEvent::stamped(
                    meta, warning,
                )));
            }
        }
        if let Some((switch, verdict)) = counted {
            let at = verdict.at;
            switch.record_outcome_with(verdict.success, || at.unwrap_or_else(Instant::now));
        }
    }
}
