//! The rules an append must pass: runs start once, epochs are claimed in order, a stale
//! incarnation cannot write, nothing follows a run's end, and a step completes once.

use crate::{Entry, Epoch, RunId, StepId};

/// What the journal knows of a run when it checks an append: enough to fence it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunHead {
    /// The epoch last claimed, if an incarnation has taken the run up.
    pub epoch: Option<Epoch>,
    /// Whether the run has finished.
    pub finished: bool,
}

/// Why the journal refused an entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// An entry of a run the journal has no start of.
    #[error("run {run} has not been started in this journal")]
    UnknownRun {
        /// The run.
        run: RunId,
    },
    /// A second start of a run that has not finished.
    #[error("run {run} is already started and has not finished")]
    AlreadyStarted {
        /// The run.
        run: RunId,
    },
    /// An entry after the run's end.
    #[error("run {run} has finished: nothing more is appended to it")]
    Finished {
        /// The run.
        run: RunId,
    },
    /// A claim of an epoch other than the next one.
    #[error("run {run}: {claimed} claimed, but the next epoch is {next}")]
    EpochOutOfOrder {
        /// The run.
        run: RunId,
        /// The epoch claimed.
        claimed: Epoch,
        /// The only epoch that could be claimed.
        next: Epoch,
    },
    /// A write from an incarnation that no longer holds the run: a zombie.
    #[error("run {run}: a write under {writer} refused, the run is held under {holder:?}")]
    Stale {
        /// The run.
        run: RunId,
        /// The epoch the write came with.
        writer: Epoch,
        /// The epoch that holds the run, if any was claimed.
        holder: Option<Epoch>,
    },
    /// A second result of the same step.
    #[error("run {run}: step {step} has already completed")]
    StepAlreadyCompleted {
        /// The run.
        run: RunId,
        /// The step.
        step: StepId,
    },
}

/// Whether `entry` may be appended to a run whose head is `head` (`None`: a run the journal has
/// never seen, or has forgotten), and the head after it. `step_completed` says whether the
/// entry's step (if it names one) already has a result.
///
/// | entry | refused when |
/// |---|---|
/// | `RunStarted` | the run exists and has not finished ([`AlreadyStarted`](Refusal::AlreadyStarted)); a finished run is replaced |
/// | `RunClaimed` | the run is unknown or finished, or the epoch is not the next one |
/// | `StepIntent`, `StepCompleted`, `StepDeadLettered`, `RunFinished` | the run is unknown; its writer's epoch is not the one holding the run ([`Stale`](Refusal::Stale), even once the run has finished); the run has finished; a second result of one step |
/// | `SignalDelivered` | the run is unknown or finished |
/// | `DeadLettered`, `DeadLetterRemoved` | never: they belong to no run (`head` is returned as it is, or an open head for `None`) |
///
/// ```
/// use overseer_journal::{admit_entry, Entry, Epoch, Refusal, RunHead, RunId};
///
/// let run = RunId::new("r")?;
/// let held = RunHead { epoch: Some(Epoch(2)), finished: false };
/// let zombie = Entry::RunFinished {
///     run: run.clone(),
///     epoch: Epoch(1),
///     outcome: overseer_journal::Recorded::Failed("late".into()),
/// };
/// assert!(matches!(admit_entry(Some(held), &zombie, false), Err(Refusal::Stale { .. })));
/// # Ok::<(), overseer_journal::RunIdError>(())
/// ```
///
/// # Errors
///
/// The [`Refusal`], naming the rule.
pub fn admit_entry(
    head: Option<RunHead>,
    entry: &Entry,
    step_completed: bool,
) -> Result<RunHead, Refusal> {
    let Some(run) = entry.run() else {
        return Ok(head.unwrap_or(RunHead {
            epoch: None,
            finished: false,
        }));
    };
    if let Entry::RunStarted { .. } = entry {
        return match head {
            Some(RunHead {
                finished: false, ..
            }) => Err(Refusal::AlreadyStarted { run: run.clone() }),
            _ => Ok(RunHead {
                epoch: None,
                finished: false,
            }),
        };
    }
    let Some(head) = head else {
        return Err(Refusal::UnknownRun { run: run.clone() });
    };
    // A zombie is told it is one, even once the run has finished.
    if let Some(writer) = entry.writer_epoch() {
        if head.epoch != Some(writer) {
            return Err(Refusal::Stale {
                run: run.clone(),
                writer,
                holder: head.epoch,
            });
        }
    }
    if head.finished {
        return Err(Refusal::Finished { run: run.clone() });
    }
    match entry {
        Entry::RunClaimed { epoch, .. } => {
            let next = head.epoch.map_or(Epoch::FIRST, Epoch::next);
            if *epoch != next {
                return Err(Refusal::EpochOutOfOrder {
                    run: run.clone(),
                    claimed: *epoch,
                    next,
                });
            }
            Ok(RunHead {
                epoch: Some(*epoch),
                ..head
            })
        }
        Entry::SignalDelivered { .. } => Ok(head),
        _ => admit_fenced(run, head, entry, step_completed),
    }
}

/// An entry written by the incarnation holding the run.
fn admit_fenced(
    run: &RunId,
    head: RunHead,
    entry: &Entry,
    step_completed: bool,
) -> Result<RunHead, Refusal> {
    match entry {
        Entry::StepCompleted { step, .. } if step_completed => Err(Refusal::StepAlreadyCompleted {
            run: run.clone(),
            step: step.clone(),
        }),
        Entry::RunFinished { .. } => Ok(RunHead {
            finished: true,
            ..head
        }),
        _ => Ok(head),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Effect, Fingerprint, Payload, Recorded, Spent};

    fn run() -> RunId {
        RunId::new("r").unwrap()
    }

    fn started() -> Entry {
        let input = Payload::encode(&1).unwrap();
        Entry::RunStarted {
            run: run(),
            agent: "root/a".into(),
            fingerprint: Fingerprint::of(input.as_json().as_bytes()),
            input,
            started_at_ms: 0,
        }
    }

    fn claimed(epoch: u64) -> Entry {
        Entry::RunClaimed {
            run: run(),
            epoch: Epoch(epoch),
        }
    }

    fn completed(epoch: u64) -> Entry {
        Entry::StepCompleted {
            run: run(),
            epoch: Epoch(epoch),
            step: StepId::new("root/a", 0, 0),
            name: "search".into(),
            effect: Effect::Idempotent,
            outcome: Recorded::Value(Payload::encode("found").unwrap()),
            spent: Spent::NONE,
        }
    }

    fn finished(epoch: u64) -> Entry {
        Entry::RunFinished {
            run: run(),
            epoch: Epoch(epoch),
            outcome: Recorded::Value(Payload::encode(&2).unwrap()),
        }
    }

    const OPEN: RunHead = RunHead {
        epoch: None,
        finished: false,
    };

    fn held(epoch: u64) -> RunHead {
        RunHead {
            epoch: Some(Epoch(epoch)),
            finished: false,
        }
    }

    #[test]
    fn a_run_starts_once_until_it_finishes() {
        assert_eq!(admit_entry(None, &started(), false), Ok(OPEN));
        assert!(matches!(
            admit_entry(Some(held(3)), &started(), false),
            Err(Refusal::AlreadyStarted { .. })
        ));
        let done = RunHead {
            epoch: Some(Epoch(3)),
            finished: true,
        };
        assert_eq!(admit_entry(Some(done), &started(), false), Ok(OPEN));
    }

    #[test]
    fn epochs_are_claimed_one_after_the_other() {
        assert_eq!(admit_entry(Some(OPEN), &claimed(1), false), Ok(held(1)));
        assert_eq!(admit_entry(Some(held(1)), &claimed(2), false), Ok(held(2)));
        assert_eq!(
            admit_entry(Some(held(1)), &claimed(3), false),
            Err(Refusal::EpochOutOfOrder {
                run: run(),
                claimed: Epoch(3),
                next: Epoch(2),
            })
        );
        assert!(admit_entry(Some(OPEN), &claimed(2), false).is_err());
        assert!(matches!(
            admit_entry(None, &claimed(1), false),
            Err(Refusal::UnknownRun { .. })
        ));
    }

    #[test]
    fn only_the_holder_writes() {
        assert_eq!(
            admit_entry(Some(held(2)), &completed(2), false),
            Ok(held(2))
        );
        assert_eq!(
            admit_entry(Some(held(2)), &completed(1), false),
            Err(Refusal::Stale {
                run: run(),
                writer: Epoch(1),
                holder: Some(Epoch(2)),
            })
        );
        assert!(matches!(
            admit_entry(Some(OPEN), &completed(1), false),
            Err(Refusal::Stale { holder: None, .. })
        ));
        assert!(matches!(
            admit_entry(Some(held(2)), &finished(1), false),
            Err(Refusal::Stale { .. })
        ));
    }

    #[test]
    fn a_step_completes_once_and_nothing_follows_the_end() {
        assert!(matches!(
            admit_entry(Some(held(1)), &completed(1), true),
            Err(Refusal::StepAlreadyCompleted { .. })
        ));
        let done = admit_entry(Some(held(1)), &finished(1), false).unwrap();
        assert!(done.finished);
        for entry in [claimed(2), completed(1), finished(1)] {
            assert!(matches!(
                admit_entry(Some(done), &entry, false),
                Err(Refusal::Finished { .. })
            ));
        }
    }
}
