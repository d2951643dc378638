//! A second ask of the same run id, with Stripe's semantics: the first run's outcome comes back,
//! failure included; another payload under the same id is a conflict; ids expire.

use std::time::Duration;

use crate::{Fingerprint, Recorded, RunRecord};

/// What to do with an ask of a run id, given what the journal holds under that id
/// ([`admit_run`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RunAdmission {
    /// No run under this id (or only one that expired): start a new run.
    Start,
    /// The run finished: answer with its outcome, without running anything.
    Finished(Recorded),
    /// The run has not finished: join it (in this process it is in flight; after a crash it
    /// resumes, replaying what it recorded).
    Unfinished,
    /// The id is taken by a run with another input: a typed error, never a silent mix.
    Conflict {
        /// The fingerprint of the run's input.
        recorded: Fingerprint,
        /// The fingerprint of the input asked now.
        asked: Fingerprint,
    },
}

/// How long the outcome of a finished run answers asks of its id. `None`: for ever.
pub type Retention = Option<Duration>;

/// What to do with an ask of a run id whose input has fingerprint `asked`, at `now_ms`
/// (milliseconds since the Unix epoch), given the run the journal holds under that id, if any,
/// and how long finished runs are kept:
///
/// | held | asked input | decision |
/// |---|---|---|
/// | nothing | any | [`Start`](RunAdmission::Start) |
/// | a finished run older than the retention | any | [`Start`](RunAdmission::Start) (the id is free again) |
/// | a run | another input | [`Conflict`](RunAdmission::Conflict) |
/// | a finished run | the same | [`Finished`](RunAdmission::Finished) with its outcome |
/// | an unfinished run | the same | [`Unfinished`](RunAdmission::Unfinished) |
///
/// ```
/// use overseer_journal::{admit_run, Fingerprint, RunAdmission};
///
/// assert_eq!(admit_run(None, Fingerprint::of(b"q"), 0, None), RunAdmission::Start);
/// ```
pub fn admit_run(
    held: Option<&RunRecord>,
    asked: Fingerprint,
    now_ms: u64,
    retention: Retention,
) -> RunAdmission {
    let Some(held) = held else {
        return RunAdmission::Start;
    };
    let age_ms = u128::from(now_ms.saturating_sub(held.started_at_ms));
    let expired = retention.is_some_and(|retention| age_ms >= retention.as_millis());
    if held.is_finished() && expired {
        return RunAdmission::Start;
    }
    if held.fingerprint != asked {
        return RunAdmission::Conflict {
            recorded: held.fingerprint,
            asked,
        };
    }
    match &held.outcome {
        Some(outcome) => RunAdmission::Finished(outcome.clone()),
        None => RunAdmission::Unfinished,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Entry, Epoch, Index, Payload, RunId};

    const HOUR_MS: u64 = 3_600_000;

    fn index_with(finished: Option<Recorded>) -> (Index, RunId, Fingerprint) {
        let run = RunId::new("order-7").unwrap();
        let input = Payload::encode(&"pay 10").unwrap();
        let fingerprint = input.fingerprint();
        let mut index = Index::default();
        index.apply(&Entry::RunStarted {
            run: run.clone(),
            agent: "root/payer".into(),
            input,
            fingerprint,
            started_at_ms: HOUR_MS,
        });
        index.apply(&Entry::RunClaimed {
            run: run.clone(),
            epoch: Epoch::FIRST,
        });
        if let Some(outcome) = finished {
            index.apply(&Entry::RunFinished {
                run: run.clone(),
                epoch: Epoch::FIRST,
                outcome,
            });
        }
        (index, run, fingerprint)
    }

    #[test]
    fn a_finished_run_answers_with_its_outcome_failure_included() {
        let failed = Recorded::Failed("card declined".into());
        let (index, run, asked) = index_with(Some(failed.clone()));
        assert_eq!(
            admit_run(index.run(&run), asked, 2 * HOUR_MS, None),
            RunAdmission::Finished(failed)
        );
    }

    #[test]
    fn an_unfinished_run_is_joined() {
        let (index, run, asked) = index_with(None);
        assert_eq!(
            admit_run(
                index.run(&run),
                asked,
                2 * HOUR_MS,
                Some(Duration::from_secs(1))
            ),
            RunAdmission::Unfinished,
            "an unfinished run never expires"
        );
    }

    #[test]
    fn another_input_under_the_same_id_is_a_conflict() {
        let (index, run, recorded) = index_with(None);
        let asked = Fingerprint::of(b"\"pay 1000\"");
        assert_eq!(
            admit_run(index.run(&run), asked, HOUR_MS, None),
            RunAdmission::Conflict { recorded, asked }
        );
    }

    #[test]
    fn a_finished_run_expires_after_the_retention() {
        let outcome = Recorded::Value(Payload::encode(&"paid").unwrap());
        let (index, run, asked) = index_with(Some(outcome.clone()));
        let day = Some(Duration::from_secs(24 * 3600));
        let held = index.run(&run);
        assert_eq!(
            admit_run(held, asked, HOUR_MS + 24 * HOUR_MS - 1, day),
            RunAdmission::Finished(outcome)
        );
        assert_eq!(
            admit_run(held, asked, HOUR_MS + 24 * HOUR_MS, day),
            RunAdmission::Start
        );
        let other = Fingerprint::of(b"other");
        assert_eq!(
            admit_run(held, other, HOUR_MS + 24 * HOUR_MS, day),
            RunAdmission::Start,
            "an expired id is free for any input"
        );
    }
}
