//! When each loop rule fires, per task type.

use std::collections::HashMap;

use tokio::time::Duration;

/// The thresholds of the loop rules for one task type or tool. Every rule fires when its
/// count *reaches* the threshold, never before.
///
/// | rule | default | why |
/// |---|---|---|
/// | [`repeats`](Self::repeats): the same call (target and canonical arguments) by one agent, in a row | 5 | hermes-agent trips at 5 identical `tool:md5(args)` signatures in a row |
/// | [`identical_failures`](Self::identical_failures): the same call failing, in a row | 3 | AutoGPT trips after 3 identical failing calls |
/// | [`ping_pong`](Self::ping_pong): delegations alternating between two agents (A→B, B→A, …) | 4 hand-offs within [`ping_pong_window`](Self::ping_pong_window) (5 min) | one hand-back is a clarification; two full round trips are a pattern |
/// | [`no_progress_calls`](Self::no_progress_calls): calls of one (agent, target) without a new distinct output | 8 | above AutoGPT's 6 empty calls, as a repeated non-empty output counts too and false positives kill valid work |
/// | [`no_progress_time`](Self::no_progress_time): time without a new distinct output, seen at a call | 10 min | a research step of several slow calls stays well inside it |
/// | [`no_progress_tokens`](Self::no_progress_tokens): token velocity of calls without a new distinct output | 100,000 tokens within 1 min | a stalled agent re-sending a long context: three 40k-token calls that bring nothing new in a minute are a runaway long before 8 calls or 10 minutes; a call that brings something new clears the count, so a busy agent making progress never reaches it |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoopThresholds {
    /// Identical calls in a row that make a [`RepeatedCall`](super::LoopVerdict::RepeatedCall).
    pub repeats: u32,
    /// Identical failing calls in a row that make a
    /// [`RepeatedFailure`](super::LoopVerdict::RepeatedFailure).
    pub identical_failures: u32,
    /// Alternating hand-offs between two agents that make a
    /// [`PingPong`](super::LoopVerdict::PingPong).
    pub ping_pong: u32,
    /// The window the hand-offs must fall in.
    pub ping_pong_window: Duration,
    /// Calls without a new distinct output that make a
    /// [`NoProgress`](super::LoopVerdict::NoProgress).
    pub no_progress_calls: u32,
    /// Time without a new distinct output that makes a
    /// [`NoProgress`](super::LoopVerdict::NoProgress); `None` turns the time rule off.
    pub no_progress_time: Option<Duration>,
    /// Token velocity without a new distinct output that makes a
    /// [`TokenVelocity`](super::LoopVerdict::TokenVelocity): the tokens spent by the calls
    /// since the last new output, within a trailing window; `None` turns the rule off.
    pub no_progress_tokens: Option<TokenRate>,
}

/// A token velocity: `tokens` spent within `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenRate {
    /// Tokens (input and output together).
    pub tokens: u64,
    /// The trailing window they are counted over.
    pub per: Duration,
}

impl TokenRate {
    /// `tokens` within `per`.
    pub fn new(tokens: u64, per: Duration) -> Self {
        Self { tokens, per }
    }
}

impl std::fmt::Display for TokenRate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} tokens within {:?}", self.tokens, self.per)
    }
}

impl Default for LoopThresholds {
    fn default() -> Self {
        Self {
            repeats: 5,
            identical_failures: 3,
            ping_pong: 4,
            ping_pong_window: Duration::from_secs(300),
            no_progress_calls: 8,
            no_progress_time: Some(Duration::from_secs(600)),
            no_progress_tokens: Some(TokenRate::new(100_000, Duration::from_secs(60))),
        }
    }
}

impl LoopThresholds {
    /// Sets [`repeats`](Self::repeats).
    pub fn repeats(mut self, n: u32) -> Self {
        self.repeats = n;
        self
    }

    /// Sets [`identical_failures`](Self::identical_failures).
    pub fn identical_failures(mut self, n: u32) -> Self {
        self.identical_failures = n;
        self
    }

    /// Sets [`ping_pong`](Self::ping_pong) and its window.
    pub fn ping_pong(mut self, hand_offs: u32, window: Duration) -> Self {
        self.ping_pong = hand_offs;
        self.ping_pong_window = window;
        self
    }

    /// Sets the no-progress rules.
    pub fn no_progress(mut self, calls: u32, time: Option<Duration>) -> Self {
        self.no_progress_calls = calls;
        self.no_progress_time = time;
        self
    }

    /// Sets the token-velocity rule ([`no_progress_tokens`](Self::no_progress_tokens)); `None`
    /// turns it off.
    pub fn no_progress_tokens(mut self, rate: Option<TokenRate>) -> Self {
        self.no_progress_tokens = rate;
        self
    }

    /// Checks the numbers.
    ///
    /// # Errors
    ///
    /// [`LoopConfigError`] when a repetition threshold is below 2 (one call is not a
    /// repetition), `no_progress_calls` or a token rate's tokens is 0, or a window is zero.
    pub fn validate(&self) -> Result<(), LoopConfigError> {
        let problem = if self.repeats < 2 || self.identical_failures < 2 || self.ping_pong < 2 {
            Some("repeats, identical_failures and ping_pong must be at least 2")
        } else if self.no_progress_calls == 0 {
            Some("no_progress_calls must be at least 1")
        } else if self.no_progress_tokens.is_some_and(|rate| rate.tokens == 0) {
            Some("a token rate must be at least 1 token")
        } else if self.ping_pong_window.is_zero()
            || self.no_progress_time == Some(Duration::ZERO)
            || self
                .no_progress_tokens
                .is_some_and(|rate| rate.per.is_zero())
        {
            Some("windows must be longer than zero")
        } else {
            None
        };
        problem.map_or(Ok(()), |reason| {
            Err(LoopConfigError {
                thresholds: *self,
                reason,
            })
        })
    }
}

/// Thresholds that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid loop thresholds {thresholds:?}: {reason}")]
#[non_exhaustive]
pub struct LoopConfigError {
    /// The thresholds given.
    pub thresholds: LoopThresholds,
    /// What is wrong.
    pub reason: &'static str,
}

/// Default thresholds and overrides per task type or tool (the call's `target`).
///
/// ```
/// use overseer_semantic::loop_detect::{LoopConfig, LoopThresholds};
///
/// // Polling a job's status is meant to repeat.
/// let config = LoopConfig::default()
///     .target("poll_status", LoopThresholds::default().repeats(30).no_progress(30, None));
/// assert_eq!(config.thresholds("poll_status").repeats, 30);
/// assert_eq!(config.thresholds("search").repeats, 5);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoopConfig {
    default: LoopThresholds,
    targets: HashMap<String, LoopThresholds>,
}

impl LoopConfig {
    /// `default` for every target without an override.
    pub fn new(default: LoopThresholds) -> Self {
        Self {
            default,
            targets: HashMap::new(),
        }
    }

    /// Overrides the thresholds of one target.
    pub fn target(mut self, target: impl Into<String>, thresholds: LoopThresholds) -> Self {
        self.targets.insert(target.into(), thresholds);
        self
    }

    /// The thresholds that apply to `target`.
    pub fn thresholds(&self, target: &str) -> &LoopThresholds {
        self.targets.get(target).unwrap_or(&self.default)
    }

    /// Checks every set of thresholds.
    ///
    /// # Errors
    ///
    /// The first [`LoopConfigError`].
    pub fn validate(&self) -> Result<(), LoopConfigError> {
        self.default.validate()?;
        self.targets.values().try_for_each(LoopThresholds::validate)
    }
}
