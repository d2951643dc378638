//! Replay: which step comes next in program order, and what to do with it given what the
//! journal recorded.

use std::sync::Arc;

use crate::{Effect, IdempotencyKey, Recorded, RunId, Spent, StepId, StepRecord};

/// Hands out step ids in program order for one ask of one agent within a run: the same program
/// asks for the same ids in the same order on every replay.
///
/// ```
/// use overseer_journal::{ReplayCursor, StepId};
///
/// let mut cursor = ReplayCursor::new("root/writer", 0);
/// assert_eq!(cursor.next_step(), StepId::new("root/writer", 0, 0));
/// assert_eq!(cursor.next_step(), StepId::new("root/writer", 0, 1));
/// ```
#[derive(Debug, Clone)]
pub struct ReplayCursor {
    path: Arc<str>,
    ask: u32,
    next: u32,
}

impl ReplayCursor {
    /// The cursor of ask `ask` of the agent at `path`, at its first step.
    pub fn new(path: impl Into<Arc<str>>, ask: u32) -> Self {
        Self {
            path: path.into(),
            ask,
            next: 0,
        }
    }

    /// The id of the next step, and moves past it.
    pub fn next_step(&mut self) -> StepId {
        let step = StepId {
            path: Arc::clone(&self.path),
            ask: self.ask,
            ordinal: self.next,
        };
        self.next = self.next.saturating_add(1);
        step
    }

    /// How many steps have been handed out.
    pub fn steps_taken(&self) -> u32 {
        self.next
    }
}

/// What to do with a step, from what the journal holds of it ([`decide_step`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StepDecision {
    /// Nothing recorded: run it (after writing its intent, when
    /// [`Effect::needs_intent`] or it reserves budget).
    Execute,
    /// It completed before: return the recorded outcome without running anything, and restore
    /// what it spent into the ledger.
    Replay {
        /// How it ended.
        outcome: Recorded,
        /// What it spent the first time.
        spent: Spent,
    },
    /// A keyed effect has an intent but no result: the process died in between. Run it again with
    /// the same key, which the external system applies once.
    RetryWithKey {
        /// The key to send.
        key: IdempotencyKey,
        /// What its intent reserved.
        reserved: Spent,
    },
    /// An unsafe effect has an intent but no result: nothing may run it again blindly. Ask the
    /// user's check whether it happened; without one, it goes to the dead letters.
    Reconcile {
        /// The key the effect was (or would have been) given.
        key: IdempotencyKey,
        /// What its intent reserved.
        reserved: Spent,
    },
    /// It was given up before (a dead letter): it fails again with the same reason.
    DeadLettered {
        /// Why it was given up.
        reason: String,
    },
    /// The program asked for another step than was recorded at this place: the code or its
    /// inputs changed since the run began, and the recorded results cannot be trusted for it.
    Diverged(Divergence),
}

/// A replay that asked for another step than the journal holds at its place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "step {step} of run {run}: the journal holds {recorded_name:?} ({recorded_effect}), \
     the program asked for {requested_name:?} ({requested_effect})"
)]
#[non_exhaustive]
pub struct Divergence {
    /// The run.
    pub run: RunId,
    /// The step.
    pub step: StepId,
    /// The name recorded.
    pub recorded_name: String,
    /// The effect recorded.
    pub recorded_effect: Effect,
    /// The name the program asked for.
    pub requested_name: String,
    /// The effect the program asked for.
    pub requested_effect: Effect,
}

/// What to do with step `step` of `run`, named `name` with effect `effect`, given the journal's
/// `recorded` record of it:
///
/// | recorded | decision |
/// |---|---|
/// | nothing | [`Execute`](StepDecision::Execute) |
/// | another name or effect at this id | [`Diverged`](StepDecision::Diverged) |
/// | a result | [`Replay`](StepDecision::Replay) (a recorded failure too) |
/// | a dead letter | [`DeadLettered`](StepDecision::DeadLettered) |
/// | an intent, no result, keyed | [`RetryWithKey`](StepDecision::RetryWithKey) |
/// | an intent, no result, unsafe | [`Reconcile`](StepDecision::Reconcile) |
/// | an intent, no result, pure or idempotent (a model call that reserved budget) | [`Execute`](StepDecision::Execute): run again, the intent's reservation still open until it completes |
///
/// ```
/// use overseer_journal::{decide_step, Effect, RunId, StepDecision, StepId};
///
/// let run = RunId::new("r")?;
/// let step = StepId::new("root/a", 0, 0);
/// assert_eq!(decide_step(&run, &step, "search", Effect::Idempotent, None), StepDecision::Execute);
/// # Ok::<(), overseer_journal::RunIdError>(())
/// ```
pub fn decide_step(
    run: &RunId,
    step: &StepId,
    name: &str,
    effect: Effect,
    recorded: Option<&StepRecord>,
) -> StepDecision {
    let Some(recorded) = recorded else {
        return StepDecision::Execute;
    };
    if recorded.name != name || recorded.effect != effect {
        return StepDecision::Diverged(Divergence {
            run: run.clone(),
            step: step.clone(),
            recorded_name: recorded.name.clone(),
            recorded_effect: recorded.effect,
            requested_name: name.to_string(),
            requested_effect: effect,
        });
    }
    if let Some((outcome, spent)) = &recorded.completed {
        return StepDecision::Replay {
            outcome: outcome.clone(),
            spent: *spent,
        };
    }
    if let Some(reason) = &recorded.dead_lettered {
        return StepDecision::DeadLettered {
            reason: reason.clone(),
        };
    }
    let Some(reserved) = recorded.intent else {
        return StepDecision::Execute;
    };
    let key = IdempotencyKey::derive(run, step);
    match effect {
        Effect::Keyed => StepDecision::RetryWithKey { key, reserved },
        Effect::Unsafe => StepDecision::Reconcile { key, reserved },
        Effect::Pure | Effect::Idempotent => StepDecision::Execute,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Payload;

    fn record(effect: Effect) -> StepRecord {
        StepRecord {
            name: "pay".into(),
            effect,
            intent: None,
            completed: None,
            dead_lettered: None,
        }
    }

    fn decide(recorded: &StepRecord, effect: Effect) -> StepDecision {
        let run = RunId::new("r").unwrap();
        decide_step(
            &run,
            &StepId::new("root/a", 0, 3),
            "pay",
            effect,
            Some(recorded),
        )
    }

    #[test]
    fn a_result_is_replayed_whatever_the_effect() {
        for effect in [
            Effect::Pure,
            Effect::Idempotent,
            Effect::Keyed,
            Effect::Unsafe,
        ] {
            let mut step = record(effect);
            step.intent = Some(Spent::NONE);
            step.completed = Some((Recorded::Failed("card declined".into()), Spent::NONE));
            assert_eq!(
                decide(&step, effect),
                StepDecision::Replay {
                    outcome: Recorded::Failed("card declined".into()),
                    spent: Spent::NONE,
                }
            );
        }
    }

    #[test]
    fn an_intent_without_a_result_is_never_a_blind_rerun_of_an_effect() {
        let reserved = Spent {
            input_tokens: 100,
            ..Spent::NONE
        };
        let mut keyed = record(Effect::Keyed);
        keyed.intent = Some(Spent::NONE);
        assert!(matches!(
            decide(&keyed, Effect::Keyed),
            StepDecision::RetryWithKey { .. }
        ));
        let mut unsafe_step = record(Effect::Unsafe);
        unsafe_step.intent = Some(Spent::NONE);
        assert!(matches!(
            decide(&unsafe_step, Effect::Unsafe),
            StepDecision::Reconcile { .. }
        ));
        // A model call that reserved budget and died before its answer is asked again.
        let mut model = record(Effect::Idempotent);
        model.intent = Some(reserved);
        assert_eq!(decide(&model, Effect::Idempotent), StepDecision::Execute);
        let mut pure = record(Effect::Pure);
        pure.intent = Some(Spent::NONE);
        assert_eq!(decide(&pure, Effect::Pure), StepDecision::Execute);
    }

    #[test]
    fn the_key_of_a_retry_is_the_key_of_the_step() {
        let mut keyed = record(Effect::Keyed);
        keyed.intent = Some(Spent::NONE);
        let run = RunId::new("r").unwrap();
        let step = StepId::new("root/a", 0, 3);
        let StepDecision::RetryWithKey { key, .. } =
            decide_step(&run, &step, "pay", Effect::Keyed, Some(&keyed))
        else {
            panic!("expected a retry with the key");
        };
        assert_eq!(key, IdempotencyKey::derive(&run, &step));
    }

    #[test]
    fn another_step_at_a_recorded_place_is_a_divergence() {
        let mut done = record(Effect::Idempotent);
        done.completed = Some((Recorded::Value(Payload::encode(&1).unwrap()), Spent::NONE));
        let run = RunId::new("r").unwrap();
        let step = StepId::new("root/a", 0, 3);
        let StepDecision::Diverged(divergence) =
            decide_step(&run, &step, "refund", Effect::Idempotent, Some(&done))
        else {
            panic!("expected a divergence");
        };
        assert_eq!(divergence.recorded_name, "pay");
        assert_eq!(divergence.requested_name, "refund");
        assert!(matches!(
            decide(&done, Effect::Unsafe),
            StepDecision::Diverged(_)
        ));
    }

    #[test]
    fn a_dead_letter_stays_one() {
        let mut given_up = record(Effect::Unsafe);
        given_up.intent = Some(Spent::NONE);
        given_up.dead_lettered = Some("no reconciliation".into());
        assert_eq!(
            decide(&given_up, Effect::Unsafe),
            StepDecision::DeadLettered {
                reason: "no reconciliation".into()
            }
        );
    }
}
