//! What the confidence tracker has recorded of an agent, read through its handle.

use overseer_semantic::confidence::{Calibration, Flag};

use crate::agent::Agent;
use crate::agent_ref::AgentRef;

impl<A: Agent> AgentRef<A> {
    /// How this agent's outputs of `task_type` were judged, per confidence bucket, against the
    /// confidence they claimed ([`AgentSpec::confidence`](crate::AgentSpec::confidence)), and
    /// the flag raised if its high-confidence outputs are wrong too often: what a policy reads
    /// to route its outputs to an inspector. `None` without a confidence tracker
    /// ([`SemanticConfig::confidence`](crate::SemanticConfig::confidence)) or before its first
    /// judged output.
    pub fn calibration(&self, task_type: &'static str) -> Option<(Calibration, Option<Flag>)> {
        let slot = self.slot();
        let watch = slot.shared.semantic.as_ref()?;
        watch.calibration(&(slot.name.clone(), task_type))
    }
}
