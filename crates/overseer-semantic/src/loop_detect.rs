//! Loop and stall detection over an agent's calls and delegations.
//!
//! Looping agents crash nothing: they call the same tool with the same arguments until the
//! budget is gone. A [`LoopDetector`] watches calls, identified by (agent, target, canonical
//! arguments hash), where the target is a tool or a task type, and delegations between
//! agents, and returns a [`LoopVerdict`] when one of its rules reaches its threshold:
//!
//! - **repeated call**: one agent makes the same call `repeats` times in a row;
//! - **repeated failure**: the same call fails `identical_failures` times in a row;
//! - **ping-pong**: delegations alternate between two agents (A→B, B→A, A→B, …)
//!   `ping_pong` times within a window;
//! - **no progress**: one agent's calls to one target give no new distinct output for
//!   `no_progress_calls` calls, or for `no_progress_time`;
//! - **token velocity**: the calls since one agent's last new distinct output from one
//!   target spend `no_progress_tokens` tokens within its window (a stall that burns budget
//!   fast: long contexts re-sent for the same answer).
//!
//! Thresholds are per target ([`LoopConfig`]) because false positives are costly: a blind
//! step cap kills valid 15-step workflows. A rule fires when its count reaches the
//! threshold, never before, and again on every further call while the count stays at or
//! above it (each verdict carries its count), so a caller that chose to only log sees the
//! loop go on. What to do (open the breaker, climb the retry ladder, end the run) is the
//! caller's policy.
//!
//! Time is a [`tokio::time::Instant`] passed in, so tests run on a paused clock; the
//! detector never reads a clock itself.
//!
//! # Example
//!
//! ```
//! use overseer_semantic::loop_detect::{Call, CallOutcome, LoopConfig, LoopDetector, LoopRule};
//! use serde_json::json;
//! use tokio::time::Instant;
//!
//! let mut detector = LoopDetector::new(LoopConfig::default())?;
//! let call = Call::new("researcher", "web_search", &json!({"q": "overseer"}));
//! let same_page = CallOutcome::output_text("no results");
//! let now = Instant::now();
//! for _ in 0..4 {
//!     assert!(detector.observe_call(now, &call, same_page).is_empty());
//! }
//! let verdicts = detector.observe_call(now, &call, same_page);
//! assert_eq!(verdicts[0].rule(), LoopRule::RepeatedCall);
//! println!("{}", verdicts[0]); // "repeated call: researcher called web_search with ... 5 times in a row (threshold 5)"
//! # Ok::<(), overseer_semantic::loop_detect::LoopConfigError>(())
//! ```

mod thresholds;
mod verdict;

pub use crate::canonical::{canonical_hash, CanonicalHash};
pub use thresholds::{LoopConfig, LoopConfigError, LoopThresholds, TokenRate};
pub use verdict::{LoopRule, LoopVerdict, StallMeasure};

use std::collections::{HashMap, HashSet, VecDeque};

use serde_json::Value;
use tokio::time::{Duration, Instant};

/// Distinct outputs remembered per (agent, target) for the no-progress rule. Past this the
/// memory is cleared, which can only make an output look new (a missed stall, never a
/// false one).
const MAX_REMEMBERED_OUTPUTS: usize = 4096;

/// One call an agent made: who, to what, with which arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call<'a> {
    /// The agent that called.
    pub agent: &'a str,
    /// The tool or task type called.
    pub target: &'a str,
    /// The [`canonical_hash`] of the arguments.
    pub args: CanonicalHash,
    /// The tokens the call spent (a model call's input and output), for the token-velocity
    /// rule; 0 for a call that spends none.
    pub tokens: u64,
}

impl<'a> Call<'a> {
    /// A call with its arguments hashed canonically.
    pub fn new(agent: &'a str, target: &'a str, args: &Value) -> Self {
        Self::with_hash(agent, target, canonical_hash(args))
    }

    /// A call whose arguments were already hashed.
    pub fn with_hash(agent: &'a str, target: &'a str, args: CanonicalHash) -> Self {
        Self {
            agent,
            target,
            args,
            tokens: 0,
        }
    }

    /// The call, having spent `tokens`.
    #[must_use]
    pub fn spending(mut self, tokens: u64) -> Self {
        self.tokens = tokens;
        self
    }
}

/// How a call ended, as the no-progress and failure rules see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallOutcome {
    /// It returned an output with this hash ([`canonical_hash`], or
    /// [`CanonicalHash::of_text`]).
    Output(CanonicalHash),
    /// It failed (no output: not progress).
    Failure,
}

impl CallOutcome {
    /// A JSON output.
    pub fn output(value: &Value) -> Self {
        Self::Output(canonical_hash(value))
    }

    /// A text output.
    pub fn output_text(text: &str) -> Self {
        Self::Output(CanonicalHash::of_text(text))
    }
}

/// The loop detector (see the [module documentation](self)).
///
/// ```
/// use overseer_semantic::loop_detect::{LoopConfig, LoopDetector, LoopVerdict};
/// use tokio::time::{Duration, Instant};
///
/// let mut detector = LoopDetector::new(LoopConfig::default())?;
/// let start = Instant::now();
/// let hops = [("writer", "editor"), ("editor", "writer"), ("writer", "editor")];
/// for (i, (from, to)) in hops.into_iter().enumerate() {
///     let at = start + Duration::from_secs(20 * i as u64);
///     assert!(detector.observe_delegation(at, from, to, "draft").is_none());
/// }
/// let verdict = detector.observe_delegation(start + Duration::from_secs(60), "editor", "writer", "draft");
/// assert!(matches!(verdict, Some(LoopVerdict::PingPong { hand_offs: 4, .. })));
/// # Ok::<(), overseer_semantic::loop_detect::LoopConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct LoopDetector {
    config: LoopConfig,
    agents: HashMap<String, AgentState>,
    pairs: HashMap<(String, String), Chain>,
}

/// What the detector keeps per agent.
#[derive(Debug, Clone, Default)]
struct AgentState {
    streak: Streak,
    targets: HashMap<String, Progress>,
}

/// One agent's run of identical calls.
#[derive(Debug, Clone, Default)]
struct Streak {
    last: Option<(String, CanonicalHash)>,
    count: u32,
    failures: u32,
}

/// One (agent, target)'s distinct outputs and the calls since the last new one.
#[derive(Debug, Clone)]
struct Progress {
    seen: HashSet<CanonicalHash>,
    calls_since_new: u32,
    last_new: Instant,
    spent: Spent,
}

/// The tokens spent by the calls since the last new output, within a trailing window.
#[derive(Debug, Clone, Default)]
struct Spent {
    calls: VecDeque<(Instant, u64)>,
    total: u64,
}

/// The alternating delegations of one pair of agents.
#[derive(Debug, Clone, Default)]
struct Chain {
    last_from: String,
    hand_offs: VecDeque<Instant>,
}

impl LoopDetector {
    /// A detector with nothing observed.
    ///
    /// # Errors
    ///
    /// [`LoopConfigError`] when a set of thresholds cannot work.
    pub fn new(config: LoopConfig) -> Result<Self, LoopConfigError> {
        config.validate()?;
        Ok(Self {
            config,
            agents: HashMap::new(),
            pairs: HashMap::new(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &LoopConfig {
        &self.config
    }

    /// Observes one finished call at `now` and returns the verdicts of every rule at or
    /// past its threshold: empty, without allocating, when none is.
    pub fn observe_call(
        &mut self,
        now: Instant,
        call: &Call<'_>,
        outcome: CallOutcome,
    ) -> Vec<LoopVerdict> {
        let thresholds = *self.config.thresholds(call.target);
        let Some(agent) = self.agent_state(call.agent) else {
            return Vec::new();
        };
        let (count, failures) = agent.streak.record(call, outcome);
        let mut verdicts: Vec<LoopVerdict> =
            repeat_verdicts(call, count, failures, &thresholds).collect();
        if let Some(progress) = agent.progress(call.target, now) {
            let (calls, elapsed) = progress.record(now, outcome);
            verdicts.extend(stall_verdict(call, calls, elapsed, &thresholds));
            if let Some(rate) = thresholds.no_progress_tokens {
                let spent = &mut progress.spent;
                if calls == 0 {
                    spent.clear();
                } else {
                    spent.add(now, call.tokens, rate.per);
                }
                verdicts.extend(spent.verdict(call, now, rate));
            }
        }
        verdicts
    }

    /// Observes a delegation of a `target` task from `from` to `to` at `now`; returns a
    /// [`LoopVerdict::PingPong`] when the pair's alternating hand-offs within the window
    /// reach the threshold.
    pub fn observe_delegation(
        &mut self,
        now: Instant,
        from: &str,
        to: &str,
        target: &str,
    ) -> Option<LoopVerdict> {
        let thresholds = *self.config.thresholds(target);
        let chain = self.pairs.entry(ordered_pair(from, to)).or_default();
        chain.extend(now, from, &thresholds);
        let hand_offs = u32::try_from(chain.hand_offs.len()).unwrap_or(u32::MAX);
        let started = *chain.hand_offs.front()?;
        // The chain alternates and ends with `from`, so an odd count started with `from`.
        let (first, second) = if hand_offs % 2 == 1 {
            (from, to)
        } else {
            (to, from)
        };
        (hand_offs >= thresholds.ping_pong).then(|| LoopVerdict::PingPong {
            first: first.to_owned(),
            second: second.to_owned(),
            target: target.to_owned(),
            hand_offs,
            threshold: thresholds.ping_pong,
            within: now.saturating_duration_since(started),
            window: thresholds.ping_pong_window,
        })
    }

    /// Forgets everything about `agent` (it was restarted, or its run ended).
    pub fn forget_agent(&mut self, agent: &str) {
        self.agents.remove(agent);
        self.pairs.retain(|(a, b), _| a != agent && b != agent);
    }

    /// The agent's state, created on its first call (the key is allocated only then).
    fn agent_state(&mut self, agent: &str) -> Option<&mut AgentState> {
        if !self.agents.contains_key(agent) {
            self.agents.insert(agent.to_owned(), AgentState::default());
        }
        self.agents.get_mut(agent)
    }
}

impl AgentState {
    /// The target's progress record, created at `now` on the first call to it.
    fn progress(&mut self, target: &str, now: Instant) -> Option<&mut Progress> {
        if !self.targets.contains_key(target) {
            let fresh = Progress {
                seen: HashSet::new(),
                calls_since_new: 0,
                last_new: now,
                spent: Spent::default(),
            };
            self.targets.insert(target.to_owned(), fresh);
        }
        self.targets.get_mut(target)
    }
}

impl Streak {
    /// Counts `call` and returns `(identical calls in a row, identical failures in a row)`.
    fn record(&mut self, call: &Call<'_>, outcome: CallOutcome) -> (u32, u32) {
        let failed = outcome == CallOutcome::Failure;
        let same = self
            .last
            .as_ref()
            .is_some_and(|(target, args)| target == call.target && *args == call.args);
        if same {
            self.count += 1;
            self.failures = if failed { self.failures + 1 } else { 0 };
        } else {
            // The previous target's string is reused: no allocation once warmed up.
            match &mut self.last {
                Some((target, args)) => {
                    call.target.clone_into(target);
                    *args = call.args;
                }
                None => self.last = Some((call.target.to_owned(), call.args)),
            }
            self.count = 1;
            self.failures = u32::from(failed);
        }
        (self.count, self.failures)
    }
}

impl Progress {
    /// Records an outcome; returns the calls since the last new output and the time since.
    fn record(&mut self, now: Instant, outcome: CallOutcome) -> (u32, Duration) {
        let new = match outcome {
            CallOutcome::Output(hash) => {
                if self.seen.len() >= MAX_REMEMBERED_OUTPUTS {
                    self.seen.clear();
                }
                self.seen.insert(hash)
            }
            CallOutcome::Failure => false,
        };
        if new {
            self.calls_since_new = 0;
            self.last_new = now;
        } else {
            self.calls_since_new += 1;
        }
        (
            self.calls_since_new,
            now.saturating_duration_since(self.last_new),
        )
    }
}

impl Spent {
    /// Forgets the calls counted (a new output came).
    fn clear(&mut self) {
        self.calls.clear();
        self.total = 0;
    }

    /// Counts a call of `tokens` at `now`; calls older than `per` fall out.
    fn add(&mut self, now: Instant, tokens: u64, per: Duration) {
        self.calls.push_back((now, tokens));
        self.total = self.total.saturating_add(tokens);
        while let Some(&(at, old)) = self.calls.front() {
            if now.saturating_duration_since(at) <= per {
                break;
            }
            self.calls.pop_front();
            self.total = self.total.saturating_sub(old);
        }
    }

    /// The token-velocity verdict, if the calls counted reach `rate`.
    fn verdict(&self, call: &Call<'_>, now: Instant, rate: TokenRate) -> Option<LoopVerdict> {
        let &(first, _) = self.calls.front()?;
        (self.total >= rate.tokens).then(|| LoopVerdict::TokenVelocity {
            agent: call.agent.to_owned(),
            target: call.target.to_owned(),
            tokens: self.total,
            calls: u32::try_from(self.calls.len()).unwrap_or(u32::MAX),
            within: now.saturating_duration_since(first),
            threshold: rate,
        })
    }
}

impl Chain {
    /// Adds a hand-off from `from`: an alternation extends the chain, the same direction
    /// again starts it anew; hand-offs older than the window fall out, and no more than the
    /// threshold are kept.
    fn extend(&mut self, now: Instant, from: &str, t: &LoopThresholds) {
        if self.last_from == from {
            self.hand_offs.clear();
        }
        from.clone_into(&mut self.last_from);
        self.hand_offs.push_back(now);
        while self
            .hand_offs
            .front()
            .is_some_and(|&first| now.saturating_duration_since(first) > t.ping_pong_window)
        {
            self.hand_offs.pop_front();
        }
        while self.hand_offs.len() > t.ping_pong as usize {
            self.hand_offs.pop_front();
        }
    }
}

/// The repetition rules alone, on the streak's counts.
fn repeat_verdicts(
    call: &Call<'_>,
    count: u32,
    failures: u32,
    t: &LoopThresholds,
) -> impl Iterator<Item = LoopVerdict> {
    let failed = (failures >= t.identical_failures).then(|| LoopVerdict::RepeatedFailure {
        agent: call.agent.to_owned(),
        target: call.target.to_owned(),
        args: call.args,
        count: failures,
        threshold: t.identical_failures,
    });
    let repeated = (count >= t.repeats).then(|| LoopVerdict::RepeatedCall {
        agent: call.agent.to_owned(),
        target: call.target.to_owned(),
        args: call.args,
        count,
        threshold: t.repeats,
    });
    failed.into_iter().chain(repeated)
}

/// The no-progress rule alone.
fn stall_verdict(
    call: &Call<'_>,
    calls: u32,
    elapsed: Duration,
    t: &LoopThresholds,
) -> Option<LoopVerdict> {
    let by_calls = calls >= t.no_progress_calls;
    let by_time = calls > 0 && t.no_progress_time.is_some_and(|limit| elapsed >= limit);
    let measure = match (by_calls, by_time) {
        (true, _) => StallMeasure::Calls,
        (false, true) => StallMeasure::Time,
        (false, false) => return None,
    };
    Some(LoopVerdict::NoProgress {
        agent: call.agent.to_owned(),
        target: call.target.to_owned(),
        calls,
        elapsed,
        measure,
        call_threshold: t.no_progress_calls,
        time_threshold: t.no_progress_time,
    })
}

fn ordered_pair(a: &str, b: &str) -> (String, String) {
    if a <= b {
        (a.to_owned(), b.to_owned())
    } else {
        (b.to_owned(), a.to_owned())
    }
}
