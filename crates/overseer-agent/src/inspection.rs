//! An ask whose output a separate agent reviews before it is returned: the inspector of
//! arXiv 2408.00989, outside the producer's context.

use overseer_semantic::confidence::Flag;
use overseer_semantic::validator::{Rejection, RejectionKind};

use crate::agent::Agent;
use crate::agent_ref::AgentRef;
use crate::error::AskError;
use crate::name::AgentName;
use crate::semantic_event::{Finding, InspectionOutcome};
use crate::validation::{
    count_failure, invalid_output, judged, publish, tracks_confidence, JudgedLater,
};

/// What an inspector is asked to review: the producer's task and its output.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Inspection<T, O> {
    /// The agent that produced the output.
    pub producer: AgentName,
    /// The task's type ([`Agent::task_type`]).
    pub task_type: &'static str,
    /// The task it was given.
    pub task: T,
    /// What it answered.
    pub output: O,
}

/// An inspector's verdict on an output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict<O> {
    /// The output is returned as it is.
    Accept,
    /// The output is refused, for this reason (given back to the caller in the error, so a
    /// retry can feed it to the producer).
    Reject(String),
    /// This corrected output is returned instead.
    Correct(O),
}

impl<A: Agent> AgentRef<A> {
    /// Asks this agent, then has `inspector` review the output before it is returned: it
    /// accepts it, rejects it with a reason, or returns a correction. The inspector is asked
    /// as any agent is: its ask is admitted by its own breaker and budget (its cost is
    /// reserved before it runs) within its own deadline. Each verdict is published as a
    /// [`SemanticEvent`](crate::SemanticEvent) ([`Finding::Inspected`]) and recorded by the
    /// confidence tracker against the producer's claimed confidence; a rejection also counts
    /// as a failure of the producer's (agent, task type) breaker, as a crash would.
    ///
    /// ```
    /// use overseer_agent::{Agent, AgentContext, AgentError, AgentSpec, Inspection, System, Verdict};
    /// use overseer_supervisor::SupervisorSpec;
    ///
    /// struct Adder;
    /// impl Agent for Adder {
    ///     type Task = (u32, u32);
    ///     type Output = u32;
    ///     async fn handle(&mut self, _: &mut AgentContext, (a, b): (u32, u32)) -> Result<u32, AgentError> {
    ///         Ok(a + b + 1) // off by one
    ///     }
    /// }
    ///
    /// struct Checker;
    /// impl Agent for Checker {
    ///     type Task = Inspection<(u32, u32), u32>;
    ///     type Output = Verdict<u32>;
    ///     async fn handle(&mut self, _: &mut AgentContext, seen: Self::Task) -> Result<Verdict<u32>, AgentError> {
    ///         let (a, b) = seen.task;
    ///         Ok(if seen.output == a + b { Verdict::Accept } else { Verdict::Correct(a + b) })
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let system = System::builder().build()?;
    /// system.start(SupervisorSpec::one_for_one("root")
    ///     .child(system.agent(AgentSpec::new("adder", || Adder))?)
    ///     .child(system.agent(AgentSpec::new("checker", || Checker))?)).await?;
    /// let adder = system.agent_ref::<Adder>("adder")?;
    /// let checker = system.agent_ref::<Checker>("checker")?;
    /// assert_eq!(adder.ask_inspected((2, 2), &checker).await?, 4);
    /// # system.shutdown(std::time::Duration::from_secs(5)).await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// * The producer's ask's errors, as [`ask`](Self::ask) returns them (the inspector is not
    ///   asked);
    /// * the inspector's ask's errors (its breaker open, its budget, its crash...): the output
    ///   is not returned unreviewed;
    /// * [`AskError::Failed`] with [`AgentError::InvalidOutput`](crate::AgentError::InvalidOutput)
    ///   holding the inspector's reason, naming the producer, when it rejects the output.
    ///
    /// # Cancel safety
    /// Dropping the future gives up the ask in progress, the producer's or the inspector's,
    /// as dropping [`ask`](Self::ask)'s does.
    ///
    /// # Panics
    /// As [`ask`](Self::ask).
    pub async fn ask_inspected<I>(
        &self,
        task: A::Task,
        inspector: &AgentRef<I>,
    ) -> Result<A::Output, AskError>
    where
        A::Task: Clone,
        A::Output: Clone,
        I: Agent<Task = Inspection<A::Task, A::Output>, Output = Verdict<A::Output>>,
    {
        self.inspect(task, inspector, None).await
    }

    /// [`ask_inspected`](Self::ask_inspected)'s body; with the flag that routed the ask to the
    /// inspector, if a flag did ([`AgentRef::inspect_when_flagged`]), published before the
    /// inspector is asked.
    pub(crate) async fn inspect<I>(
        &self,
        task: A::Task,
        inspector: &AgentRef<I>,
        routed_by: Option<Flag>,
    ) -> Result<A::Output, AskError>
    where
        A::Task: Clone,
        A::Output: Clone,
        I: Agent<Task = Inspection<A::Task, A::Output>, Output = Verdict<A::Output>>,
    {
        let task_type = A::task_type(&task);
        let producer = JudgedLater {
            tracked: tracks_confidence(self.slot()),
        };
        let (id, answer) = self.ask_answer(task.clone(), producer).await;
        let output = answer.outcome.map_err(|error| *error)?;
        if let Some(flag) = routed_by {
            let finding = Finding::RoutedToInspector {
                inspector: inspector.name().to_string(),
                because: flag.to_string(),
            };
            publish(self.slot(), id, task_type, finding);
        }
        let inspection = Inspection {
            producer: self.name().clone(),
            task_type,
            task,
            output: output.clone(),
        };
        let (_, verdict) = inspector.ask_answer(inspection, ()).await;
        let verdict = verdict.outcome.map_err(|error| *error)?;
        self.conclude_inspection(id, task_type, inspector.name(), output, verdict)
    }

    /// Publishes and records an inspector's verdict on the output of ask `id`, and returns
    /// what the caller gets.
    fn conclude_inspection(
        &self,
        id: overseer_supervisor::EventId,
        task_type: &'static str,
        inspector: &AgentName,
        output: A::Output,
        verdict: Verdict<A::Output>,
    ) -> Result<A::Output, AskError> {
        let slot = self.slot();
        let (outcome, reason) = match &verdict {
            Verdict::Accept => (InspectionOutcome::Accepted, None),
            Verdict::Reject(reason) => (InspectionOutcome::Rejected, Some(reason.clone())),
            Verdict::Correct(_) => (InspectionOutcome::Corrected, None),
        };
        judged(
            slot,
            id,
            task_type,
            &output,
            outcome == InspectionOutcome::Accepted,
        );
        let finding = Finding::Inspected {
            inspector: inspector.to_string(),
            verdict: outcome,
            reason,
        };
        publish(slot, id, task_type, finding);
        match verdict {
            Verdict::Accept => Ok(output),
            Verdict::Correct(corrected) => Ok(corrected),
            Verdict::Reject(reason) => {
                count_failure(slot, id, task_type);
                let rejection = Rejection::new(RejectionKind::Inspector, reason);
                Err(invalid_output(slot, &rejection))
            }
        }
    }
}
