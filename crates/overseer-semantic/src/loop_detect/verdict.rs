//! What the loop detector found, in words.

use std::fmt;

use tokio::time::Duration;

use super::TokenRate;
use crate::canonical::CanonicalHash;

/// Which rule a [`LoopVerdict`] comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LoopRule {
    /// The same call, in a row.
    RepeatedCall,
    /// The same failing call, in a row.
    RepeatedFailure,
    /// Delegations back and forth between two agents.
    PingPong,
    /// No new distinct output.
    NoProgress,
    /// Tokens spent fast without a new distinct output.
    TokenVelocity,
}

/// What a no-progress verdict was measured in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StallMeasure {
    /// Calls since the last new output reached the call threshold.
    Calls,
    /// Time since the last new output reached the time threshold.
    Time,
}

/// A detected loop, with the numbers that explain it: which rule, the count, the threshold.
/// Its [`Display`](fmt::Display) says it in a sentence, for an event or a log.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoopVerdict {
    /// `agent` made the same call `count` times in a row (threshold `threshold`).
    RepeatedCall {
        /// The agent.
        agent: String,
        /// The tool or task type.
        target: String,
        /// The canonical hash of the arguments.
        args: CanonicalHash,
        /// Identical calls in a row.
        count: u32,
        /// The threshold reached.
        threshold: u32,
    },
    /// `agent` made the same call and it failed `count` times in a row.
    RepeatedFailure {
        /// The agent.
        agent: String,
        /// The tool or task type.
        target: String,
        /// The canonical hash of the arguments.
        args: CanonicalHash,
        /// Identical failing calls in a row.
        count: u32,
        /// The threshold reached.
        threshold: u32,
    },
    /// Delegations alternated between `first` and `second` `hand_offs` times within `within`.
    PingPong {
        /// The agent whose delegation started the counted chain.
        first: String,
        /// The other agent.
        second: String,
        /// The task type of the last delegation.
        target: String,
        /// Alternating hand-offs within the window.
        hand_offs: u32,
        /// The threshold reached.
        threshold: u32,
        /// Time from the first counted hand-off to the last.
        within: Duration,
        /// The window.
        window: Duration,
    },
    /// `agent`'s calls to `target` produced nothing new for `calls` calls over `elapsed`.
    NoProgress {
        /// The agent.
        agent: String,
        /// The tool or task type.
        target: String,
        /// Calls since the last new distinct output.
        calls: u32,
        /// Time since the last new distinct output (or the first call).
        elapsed: Duration,
        /// Which threshold was reached.
        measure: StallMeasure,
        /// The call threshold.
        call_threshold: u32,
        /// The time threshold, if any.
        time_threshold: Option<Duration>,
    },
    /// `agent`'s calls to `target` that produced nothing new spent `tokens` within `within`,
    /// reaching `threshold`.
    TokenVelocity {
        /// The agent.
        agent: String,
        /// The tool or task type.
        target: String,
        /// Tokens spent by the calls since the last new output, within the window.
        tokens: u64,
        /// Calls those tokens were spent in.
        calls: u32,
        /// Time from the first of those calls to this one.
        within: Duration,
        /// The threshold reached.
        threshold: TokenRate,
    },
}

impl LoopVerdict {
    /// The rule that fired.
    pub fn rule(&self) -> LoopRule {
        match self {
            Self::RepeatedCall { .. } => LoopRule::RepeatedCall,
            Self::RepeatedFailure { .. } => LoopRule::RepeatedFailure,
            Self::PingPong { .. } => LoopRule::PingPong,
            Self::NoProgress { .. } => LoopRule::NoProgress,
            Self::TokenVelocity { .. } => LoopRule::TokenVelocity,
        }
    }
}

impl fmt::Display for LoopVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RepeatedCall { agent, target, args, count, threshold } => write!(
                f,
                "repeated call: {agent} called {target} with the same arguments ({args}) {count} times in a row (threshold {threshold})"
            ),
            Self::RepeatedFailure { agent, target, args, count, threshold } => write!(
                f,
                "repeated failure: {agent}'s call to {target} with the same arguments ({args}) failed {count} times in a row (threshold {threshold})"
            ),
            Self::PingPong { first, second, target, hand_offs, threshold, within, window } => write!(
                f,
                "delegation ping-pong: {first} and {second} handed {target} back and forth {hand_offs} times in {within:?} (threshold {threshold} within {window:?})"
            ),
            Self::NoProgress { agent, target, calls, elapsed, measure, call_threshold, time_threshold } => {
                write!(f, "no progress: {agent}'s last {calls} calls to {target} over {elapsed:?} produced no new output (")?;
                match (measure, time_threshold) {
                    (StallMeasure::Time, Some(time)) => write!(f, "time threshold {time:?} reached)"),
                    _ => write!(f, "call threshold {call_threshold} reached)"),
                }
            }
            Self::TokenVelocity { agent, target, tokens, calls, within, threshold } => write!(
                f,
                "token velocity: {agent}'s last {calls} calls to {target} spent {tokens} tokens in {within:?} and produced no new output (threshold {threshold})"
            ),
        }
    }
}
