//! What a system watches for errors that don't crash, across its agents: the loop detector fed
//! by every handler's calls, and the confidence tracker fed by every judged output.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use overseer_semantic::confidence::{
    Calibration, ConfidenceConfig, ConfidenceError, ConfidenceTracker, Flag,
};
use overseer_semantic::loop_detect::{
    Call, CallOutcome, LoopConfig, LoopConfigError, LoopDetector, LoopVerdict,
};
use tokio::time::Instant;

use crate::name::AgentName;
use crate::semantic_event::LoopAction;

/// The system-wide watches for errors that don't crash
/// ([`SystemBuilder::semantic`](crate::SystemBuilder::semantic)): none by default, and a
/// system without them pays nothing for them.
///
/// ```
/// use overseer_agent::{LoopAction, SemanticConfig, System};
/// use overseer_agent::semantic::confidence::ConfidenceConfig;
/// use overseer_agent::semantic::loop_detect::{LoopConfig, LoopThresholds};
///
/// // Three identical calls in a row fail the third; `search` may repeat up to 10 times.
/// let loops = LoopConfig::new(LoopThresholds::default().repeats(3))
///     .target("search", LoopThresholds::default().repeats(10));
/// let semantic = SemanticConfig::new()
///     .loops(loops, LoopAction::Fail)?
///     .confidence(ConfidenceConfig::default())?;
/// let system = System::builder().semantic(semantic).build()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Default)]
pub struct SemanticConfig {
    loops: Option<(LoopDetector, LoopAction)>,
    confidence: Option<ConfidenceTracker<ConfidenceKey>>,
}

/// Confidence is tracked per (agent, task type).
pub(crate) type ConfidenceKey = (AgentName, &'static str);

impl SemanticConfig {
    /// No watches.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds every handler's [`step`](crate::AgentContext::step),
    /// [`model`](crate::AgentContext::model) and
    /// [`tool_call`](crate::AgentContext::tool_call) to a loop detector with these
    /// thresholds (per tool or step name), and does `action` on each loop found.
    ///
    /// # Errors
    ///
    /// [`LoopConfigError`] when a set of thresholds cannot work.
    pub fn loops(
        mut self,
        config: LoopConfig,
        action: LoopAction,
    ) -> Result<Self, LoopConfigError> {
        self.loops = Some((LoopDetector::new(config)?, action));
        Ok(self)
    }

    /// Tracks, per (agent, task type), how often outputs reported at each confidence
    /// ([`AgentSpec::confidence`](crate::AgentSpec::confidence)) were accepted by validators,
    /// inspectors and votes, and flags over-confident agents.
    ///
    /// # Errors
    ///
    /// [`ConfidenceError::InvalidConfig`] when the configuration cannot work.
    pub fn confidence(mut self, config: ConfidenceConfig) -> Result<Self, ConfidenceError> {
        self.confidence = Some(ConfidenceTracker::new(config)?);
        Ok(self)
    }

    /// Whether nothing is watched.
    pub fn is_empty(&self) -> bool {
        self.loops.is_none() && self.confidence.is_none()
    }
}

/// A route installed by [`AgentRef::inspect_when_flagged`](crate::AgentRef::inspect_when_flagged):
/// an `Arc<dyn FlaggedRoute<A>>` for the agent's type `A`.
pub(crate) type ErasedRoute = Arc<dyn Any + Send + Sync>;

/// A system's watches, shared by its agents.
pub(crate) struct SemanticWatch {
    loops: Option<(Mutex<LoopDetector>, LoopAction)>,
    confidence: Option<Mutex<ConfidenceTracker<ConfidenceKey>>>,
    /// Whether any route is installed: a plain ask reads this, not the map.
    routing: AtomicBool,
    /// The inspectors of flagged agents, by agent.
    routes: RwLock<HashMap<AgentName, ErasedRoute>>,
}

impl fmt::Debug for SemanticWatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemanticWatch")
            .field("loops", &self.loops.as_ref().map(|(_, action)| action))
            .field("confidence", &self.confidence.is_some())
            .field("routing", &self.routing.load(Ordering::Relaxed))
            .finish()
    }
}

impl SemanticWatch {
    /// The watches of `config`; `None` when it watches nothing.
    pub(crate) fn new(config: SemanticConfig) -> Option<Self> {
        if config.is_empty() {
            return None;
        }
        Some(Self {
            loops: config
                .loops
                .map(|(detector, action)| (Mutex::new(detector), action)),
            confidence: config.confidence.map(Mutex::new),
            routing: AtomicBool::new(false),
            routes: RwLock::new(HashMap::new()),
        })
    }

    /// Whether outputs' confidence is tracked.
    pub(crate) fn tracks_confidence(&self) -> bool {
        self.confidence.is_some()
    }

    /// Routes `agent`'s outputs to an inspector while it is flagged.
    pub(crate) fn install_route(&self, agent: AgentName, route: ErasedRoute) {
        self.routes
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(agent, route);
        self.routing.store(true, Ordering::Release);
    }

    /// The route installed for `agent`, if any.
    #[inline]
    pub(crate) fn route(&self, agent: &AgentName) -> Option<ErasedRoute> {
        if !self.routing.load(Ordering::Acquire) {
            return None;
        }
        self.routes
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(agent)
            .cloned()
    }

    /// The flag (agent, task type) carries now, if any.
    pub(crate) fn flag(&self, key: &ConfidenceKey) -> Option<Flag> {
        self.confidence
            .as_ref()?
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .flag(key)
    }

    /// Whether handlers' calls are watched for loops.
    pub(crate) fn watches_loops(&self) -> bool {
        self.loops.is_some()
    }

    /// Observes one finished call; the loops it completes, and what to do about them.
    pub(crate) fn observe_call(
        &self,
        now: Instant,
        call: &Call<'_>,
        outcome: CallOutcome,
    ) -> Option<(Vec<LoopVerdict>, LoopAction)> {
        let (detector, action) = self.loops.as_ref()?;
        let verdicts = detector
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .observe_call(now, call, outcome);
        (!verdicts.is_empty()).then_some((verdicts, *action))
    }

    /// Observes a delegation from `from` to `to`; the ping-pong it completes, if any.
    pub(crate) fn observe_delegation(
        &self,
        now: Instant,
        from: &str,
        to: &str,
        target: &str,
    ) -> Option<(LoopVerdict, LoopAction)> {
        let (detector, action) = self.loops.as_ref()?;
        let verdict = detector
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .observe_delegation(now, from, to, target)?;
        Some((verdict, *action))
    }

    /// Records that an output of (agent, task type) reported at `confidence` was `accepted`
    /// or not; the flag this raised, if it raised one. A confidence outside `[0, 1]` is not
    /// recorded.
    pub(crate) fn record_confidence(
        &self,
        key: ConfidenceKey,
        confidence: f64,
        accepted: bool,
    ) -> Option<Flag> {
        let tracker = self.confidence.as_ref()?;
        let recorded = tracker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .record(key, confidence, accepted);
        match recorded {
            Ok(flag) => flag,
            Err(error) => {
                tracing::debug!(%error, "a reported confidence was not recorded");
                None
            }
        }
    }

    /// The calibration of (agent, task type) so far.
    pub(crate) fn calibration(&self, key: &ConfidenceKey) -> Option<(Calibration, Option<Flag>)> {
        let tracker = self
            .confidence
            .as_ref()?
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Some((tracker.calibration(key)?, tracker.flag(key)))
    }
}
