//! The loop detector as handlers feed it: each step, model call, tool call and delegation a
//! handler makes is observed as (agent, tool or step, canonical arguments hash), and a loop it
//! completes is acted on as the system is configured ([`LoopAction`]).

use overseer_semantic::loop_detect::{Call, CallOutcome, CanonicalHash, LoopVerdict};
use overseer_supervisor::{ChildPath, EventId};
use tokio::time::Instant;

use crate::error::AgentError;
use crate::finding::{open_breaker, publish_about};
use crate::name::AgentName;
use crate::semantic_event::{Finding, LoopAction};
use crate::shared::Shared;

/// The system a context feeds its calls to, when it watches them for loops.
pub(crate) struct Watching(pub(crate) std::sync::Arc<Shared>);

impl std::fmt::Debug for Watching {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Watching")
    }
}

/// Who made a watched call: the agent, where it is, and the task it was handling.
pub(crate) struct Caller<'a> {
    pub(crate) shared: &'a Shared,
    pub(crate) agent: &'a AgentName,
    pub(crate) path: &'a ChildPath,
    pub(crate) task: Option<EventId>,
    pub(crate) task_type: &'static str,
}

impl Caller<'_> {
    /// Observes a finished call to `target` with arguments hashing to `args`, which spent
    /// `tokens` (a model call's input and output; 0 for other calls).
    ///
    /// # Errors
    ///
    /// [`AgentError::Permanent`] (`loop detected: ...`) when the call completes a loop and the
    /// system's action is [`LoopAction::Fail`].
    pub(crate) fn observe_call(
        &self,
        target: &str,
        args: CanonicalHash,
        tokens: u64,
        outcome: CallOutcome,
    ) -> Result<(), AgentError> {
        let Some(watch) = &self.shared.semantic else {
            return Ok(());
        };
        let call = Call::with_hash(self.agent.as_str(), target, args).spending(tokens);
        match watch.observe_call(Instant::now(), &call, outcome) {
            Some((verdicts, action)) => self.act(verdicts, action),
            None => Ok(()),
        }
    }

    /// Observes a delegation of a `target` task from this agent to `to`.
    ///
    /// # Errors
    ///
    /// As [`observe_call`](Self::observe_call), for a delegation ping-pong.
    pub(crate) fn observe_delegation(&self, to: &str, target: &str) -> Result<(), AgentError> {
        let Some(watch) = &self.shared.semantic else {
            return Ok(());
        };
        match watch.observe_delegation(Instant::now(), self.agent.as_str(), to, target) {
            Some((verdict, action)) => self.act(vec![verdict], action),
            None => Ok(()),
        }
    }

    /// Publishes each verdict and does `action`; the error of the first verdict for
    /// [`LoopAction::Fail`].
    fn act(&self, verdicts: Vec<LoopVerdict>, action: LoopAction) -> Result<(), AgentError> {
        let mut failure = None;
        for verdict in verdicts {
            let explanation = verdict.to_string();
            tracing::warn!(agent = %self.agent, task_type = self.task_type, %explanation, %action, "loop detected");
            match action {
                LoopAction::Fail => {
                    failure.get_or_insert_with(|| loop_error(&explanation));
                }
                LoopAction::OpenBreaker => open_breaker(
                    self.shared,
                    self.agent.as_str(),
                    self.task_type,
                    self.task,
                    Some(self.path.clone()),
                ),
                LoopAction::Report => {}
            }
            let finding = Finding::Loop {
                rule: rule_name(&verdict).to_owned(),
                explanation,
                action,
            };
            publish_about(
                self.shared,
                self.agent.as_str(),
                Some(self.path.clone()),
                self.task,
                self.task_type,
                finding,
            );
        }
        failure.map_or(Ok(()), Err)
    }
}

/// The error a loop fails its call with: permanent, as the same task would loop again.
pub(crate) fn loop_error(explanation: &str) -> AgentError {
    AgentError::permanent(format!("loop detected: {explanation}"))
}

/// The rule's name, as events write it.
fn rule_name(verdict: &LoopVerdict) -> &'static str {
    use overseer_semantic::loop_detect::LoopRule;
    match verdict.rule() {
        LoopRule::RepeatedCall => "repeated_call",
        LoopRule::RepeatedFailure => "repeated_failure",
        LoopRule::PingPong => "ping_pong",
        LoopRule::NoProgress => "no_progress",
        LoopRule::TokenVelocity => "token_velocity",
        _ => "other",
    }
}
