//! Output validators run by the actor on every successful output before it is returned, and
//! what every judgement of an output feeds: the breaker (a rejected output counts as a failure,
//! exactly as a crash does), the confidence tracker and the event stream.

use std::sync::Arc;

use overseer_breaker::Outcome;
use overseer_semantic::validator::{Rejection, Validator};
use overseer_supervisor::EventId;

use crate::agent::Agent;
use crate::error::{AgentError, AskError};
use crate::finding::publish_about;
use crate::output_checks::OutputChecks;
use crate::semantic_event::Finding;
use crate::slot::{JobExtras, JobPart, Slot};
use crate::spec::AgentSpec;

impl<A: Agent> AgentSpec<A> {
    /// Checks every successful output of this agent before it is returned. An output it
    /// rejects fails the ask with [`AskError::Failed`] holding
    /// [`AgentError::InvalidOutput`] with the rejection's reason (class
    /// [`InvalidOutput`](crate::ErrorClass::InvalidOutput): a retry ladder's feedback rung can
    /// give the reason back to the agent), the (agent, task type) breaker counts it as a
    /// failure exactly as it counts a crash, and a [`SemanticEvent`](crate::SemanticEvent) says why. Validators run
    /// in the order added, the ones for every task type first; the first rejection counts.
    ///
    /// Unlike [`valid_output`](Self::valid_output), which only tells the breaker, a validator
    /// refuses the output: the caller never receives it. An agent without validators runs no
    /// check at all.
    ///
    /// ```
    /// use overseer_agent::{Agent, AgentContext, AgentError, AgentSpec};
    /// use overseer_agent::semantic::validator::from_predicate;
    ///
    /// struct Writer;
    /// impl Agent for Writer {
    ///     type Task = String;
    ///     type Output = String;
    ///     async fn handle(&mut self, _: &mut AgentContext, topic: String) -> Result<String, AgentError> {
    ///         Ok(format!("a note on {topic}"))
    ///     }
    /// }
    ///
    /// let spec = AgentSpec::new("writer", || Writer)
    ///     .validator(from_predicate("short", |note: &String| note.len() < 280));
    /// ```
    pub fn validator(
        mut self,
        validator: impl Validator<A::Output> + Send + Sync + 'static,
    ) -> Self {
        self.checks().add(Arc::new(validator));
        self
    }

    /// As [`validator`](Self::validator), for the outputs of tasks of `task_type` only
    /// ([`Agent::task_type`]).
    pub fn task_validator(
        mut self,
        task_type: &'static str,
        validator: impl Validator<A::Output> + Send + Sync + 'static,
    ) -> Self {
        self.checks().add_for(task_type, Arc::new(validator));
        self
    }

    /// How an output reports its confidence (in `[0, 1]`; `None` if it does not say). With a
    /// confidence tracker ([`SemanticConfig::confidence`](crate::SemanticConfig::confidence)),
    /// each judgement of an output (a validator's, an inspector's, a vote's) is recorded
    /// against the confidence the output claimed, per (agent, task type), and an agent whose
    /// high-confidence outputs are wrong too often is flagged by a [`SemanticEvent`](crate::SemanticEvent)
    /// ([`Finding::OverConfident`]); [`AgentRef::calibration`](crate::AgentRef::calibration)
    /// reads the record.
    pub fn confidence(
        mut self,
        confidence: impl Fn(&A::Output) -> Option<f64> + Send + Sync + 'static,
    ) -> Self {
        self.checks().confidence = Some(Arc::new(confidence));
        self
    }

    fn checks(&mut self) -> &mut OutputChecks<A::Output> {
        Arc::make_mut(self.classifier.checks.get_or_insert_with(Arc::default))
    }
}

/// Runs the agent's validators on a successful result of a `task_type` task, in place: a
/// rejection turns it into [`AgentError::InvalidOutput`] (which the breaker counts as the
/// failure it is). An agent without validators costs one branch, and nothing is moved.
///
/// The confidence tracker records one verdict per output, the final one: a rejection here is
/// final; an acceptance is, unless the output is `judged_later` (by an inspector, or by the
/// vote it is a sample of), whose verdict is recorded instead.
#[inline(always)]
pub(crate) fn check_judged<A: Agent, E, C>(
    slot: &Slot<A>,
    id: EventId,
    task_type: &'static str,
    judged: &mut (Result<A::Output, AskError>, E, C),
    judged_later: bool,
) {
    if let Some(checks) = &slot.classifier.checks {
        let ask = Judging {
            id,
            task_type,
            judged_later,
        };
        check_output(slot, checks, &ask, &mut judged.0);
    }
}

/// The ask whose output is checked.
struct Judging {
    id: EventId,
    task_type: &'static str,
    judged_later: bool,
}

#[inline(never)]
fn check_output<A: Agent>(
    slot: &Slot<A>,
    checks: &OutputChecks<A::Output>,
    ask: &Judging,
    result: &mut Result<A::Output, AskError>,
) {
    let Judging { id, task_type, .. } = *ask;
    let Ok(output) = result else {
        return;
    };
    if !checks.validates(task_type) {
        return;
    }
    let checked = checks.check(task_type, output);
    if !(ask.judged_later && checked.is_ok()) {
        judged(slot, id, task_type, output, checked.is_ok());
    }
    if let Err(rejection) = checked {
        let finding = Finding::Rejected {
            check: rejection.kind.to_string(),
            reason: rejection.reason.clone(),
        };
        publish(slot, id, task_type, finding);
        *result = Err(invalid_output(slot, &rejection));
    }
}

/// The error of an ask whose output was rejected.
pub(crate) fn invalid_output<A: Agent>(slot: &Slot<A>, rejection: &Rejection) -> AskError {
    AskError::Failed {
        agent: slot.name.clone(),
        error: AgentError::InvalidOutput(rejection.reason.clone()),
    }
}

/// Records a judgement of an output of (agent, `task_type`) against the confidence it
/// claimed, if the agent reports one and the system tracks it; a flag this raises is
/// published.
pub(crate) fn judged<A: Agent>(
    slot: &Slot<A>,
    id: EventId,
    task_type: &'static str,
    output: &A::Output,
    accepted: bool,
) {
    if let Some(confidence) = confidence_of(slot, output) {
        record_judgement(slot, id, task_type, confidence, accepted);
    }
}

/// Whether the confidence tracker records this agent's outputs (it reports a confidence and
/// the system tracks it): only then is a job marked as judged later.
pub(crate) fn tracks_confidence<A: Agent>(slot: &Slot<A>) -> bool {
    slot.shared.semantic.is_some()
        && slot
            .classifier
            .checks
            .as_ref()
            .is_some_and(|checks| checks.confidence.is_some())
}

/// The extras of a job whose output is judged after its validators, when confidence is
/// tracked (else nothing: no verdict to keep from being recorded twice).
pub(crate) fn judged_later_extras<A: Agent>(tracked: bool) -> Option<Box<JobExtras<A>>> {
    tracked.then(|| {
        Box::new(JobExtras {
            judged_later: true,
            ..JobExtras::new()
        })
    })
}

/// The producer's ask of an inspection: asked once, its output judged again by the inspector
/// (so its validators' acceptance is not recorded as a verdict of its own).
pub(crate) struct JudgedLater {
    /// Whether the confidence tracker records the agent's outputs.
    pub(crate) tracked: bool,
}

impl<A: Agent> JobPart<A> for JudgedLater {
    fn preassigned_id(&self) -> Option<EventId> {
        None
    }

    fn retried_here(&self) -> bool {
        false
    }

    fn into_extras(self) -> Option<Box<JobExtras<A>>> {
        judged_later_extras(self.tracked)
    }
}

/// The confidence `output` claims, if the agent reports one and the system tracks it.
pub(crate) fn confidence_of<A: Agent>(slot: &Slot<A>, output: &A::Output) -> Option<f64> {
    slot.shared.semantic.as_ref()?;
    let checks = slot.classifier.checks.as_ref()?;
    (checks.confidence.as_ref()?)(output)
}

/// Records that an output of (agent, `task_type`) claimed at `confidence` was `accepted` or
/// not; a flag this raises is published.
pub(crate) fn record_judgement<A: Agent>(
    slot: &Slot<A>,
    id: EventId,
    task_type: &'static str,
    confidence: f64,
    accepted: bool,
) {
    let Some(watch) = &slot.shared.semantic else {
        return;
    };
    let key = (slot.name.clone(), task_type);
    if let Some(flag) = watch.record_confidence(key, confidence, accepted) {
        tracing::warn!(agent = %slot.name, task_type, %flag, "over-confident agent");
        let finding = Finding::OverConfident {
            outputs: flag.outputs,
            wrong: flag.wrong,
            explanation: flag.to_string(),
        };
        publish(slot, id, task_type, finding);
    }
}

/// Counts an output found wrong after its ask ended (an inspector's rejection, a red-flagged
/// sample) as a failure of the (agent, `task_type`) breaker, as a crash is counted.
pub(crate) fn count_failure<A: Agent>(slot: &Slot<A>, id: EventId, task_type: &'static str) {
    let Some(breaker) = slot.breaker(task_type) else {
        return;
    };
    // An open breaker admits nothing, and has nothing more to learn.
    let Ok(permit) = breaker.try_acquire() else {
        return;
    };
    if let Some(transition) = permit.record(Outcome::Failure, std::time::Duration::ZERO) {
        slot.shared
            .publish_transition(&transition, id, slot.path().cloned());
    }
}

/// Publishes a finding about an ask of this agent (nothing is built if nobody listens).
pub(crate) fn publish<A: Agent>(
    slot: &Slot<A>,
    id: EventId,
    task_type: &'static str,
    finding: Finding,
) {
    publish_about(
        &slot.shared,
        slot.name.as_str(),
        slot.path().cloned(),
        Some(id),
        task_type,
        finding,
    );
}
