//! The faults that can be injected into an agent, and their names.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A fault injected into one call to an agent's `handle`.
///
/// What the wrapped agent does instead of (or besides) answering, and what the caller of the
/// ask sees:
///
/// | fault | the wrapper | the ask ends with | the agent |
/// |---|---|---|---|
/// | [`Panic`](Self::Panic) | panics with `injected panic (call N)` | [`AskError::Crashed`](overseer_agent::AskError::Crashed) | crashes; its supervisor decides |
/// | [`Error`](Self::Error) | returns [`AgentError::Failed`](overseer_agent::AgentError::Failed) | [`AskError::Failed`](overseer_agent::AskError::Failed) | carries on |
/// | [`Fatal`](Self::Fatal) | returns [`AgentError::Fatal`](overseer_agent::AgentError::Fatal) | [`AskError::Crashed`](overseer_agent::AskError::Crashed) | crashes; its supervisor decides |
/// | [`Hang`](Self::Hang) | never answers | [`AskError::Timeout`](overseer_agent::AskError::Timeout) at the deadline | stopped as hung (`TimedOut`) |
/// | [`Slow(d)`](Self::Slow) | waits `d`, then lets the agent answer | the answer, `d` later (or a timeout) | carries on |
/// | [`Corrupt`](Self::Corrupt) | lets the agent answer, then corrupts the output | a well-formed but wrong output | carries on |
/// | [`InflateUsage(k)`](Self::InflateUsage) | lets the agent answer, then reports more usage | the answer, with `k` × the usage reported | carries on |
///
/// [`Corrupt`](Self::Corrupt) and [`InflateUsage`](Self::InflateUsage) change a successful
/// answer: when the agent itself fails the task they are not injected (not marked, not
/// counted). Starts fail through the plan's `fail_start_*` rules ([`FaultKind::FailStart`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "fault", content = "value", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Fault {
    /// Panic in the handler.
    Panic,
    /// Fail the task; the agent carries on.
    Error,
    /// Fail fatally; the agent crashes.
    Fatal,
    /// Never answer.
    Hang,
    /// Answer after this extra delay (in JSON, milliseconds: `{"fault":"slow","value":2000}`).
    #[serde(with = "overseer_serde::millis")]
    Slow(Duration),
    /// Answer with an output that is well-formed but wrong (made by the injector's corruptor).
    Corrupt,
    /// Answer, reporting this many times the usage the agent reported (at least 2).
    InflateUsage(u32),
}

impl Fault {
    /// The kind of this fault (its name, without parameters).
    pub const fn kind(&self) -> FaultKind {
        match self {
            Self::Panic => FaultKind::Panic,
            Self::Error => FaultKind::Error,
            Self::Fatal => FaultKind::Fatal,
            Self::Hang => FaultKind::Hang,
            Self::Slow(_) => FaultKind::Slow,
            Self::Corrupt => FaultKind::Corrupt,
            Self::InflateUsage(_) => FaultKind::InflateUsage,
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Slow(delay) => write!(f, "slow ({delay:?})"),
            Self::InflateUsage(factor) => write!(f, "inflate_usage (x{factor})"),
            other => f.write_str(other.kind().as_str()),
        }
    }
}

/// The kind of an injected fault: the name that marks it in
/// [`AskEvent::injected`](overseer_agent::AskEvent::injected), in tracing and in
/// [`ChaosStats`](crate::ChaosStats).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FaultKind {
    /// [`Fault::Panic`]: `"panic"`.
    Panic,
    /// [`Fault::Error`]: `"error"`.
    Error,
    /// [`Fault::Fatal`]: `"fatal"`.
    Fatal,
    /// [`Fault::Hang`]: `"hang"`.
    Hang,
    /// [`Fault::Slow`]: `"slow"`.
    Slow,
    /// [`Fault::Corrupt`]: `"corrupt"`.
    Corrupt,
    /// [`Fault::InflateUsage`]: `"inflate_usage"`.
    InflateUsage,
    /// A start attempt made to fail: `"fail_start"`.
    FailStart,
}

impl FaultKind {
    /// Every kind, in order.
    pub const ALL: [FaultKind; 8] = [
        Self::Panic,
        Self::Error,
        Self::Fatal,
        Self::Hang,
        Self::Slow,
        Self::Corrupt,
        Self::InflateUsage,
        Self::FailStart,
    ];

    /// The kind's name, as it appears in events and tracing.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::Panic => "panic",
            Self::Error => "error",
            Self::Fatal => "fatal",
            Self::Hang => "hang",
            Self::Slow => "slow",
            Self::Corrupt => "corrupt",
            Self::InflateUsage => "inflate_usage",
            Self::FailStart => "fail_start",
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fault_names_its_kind() {
        assert_eq!(Fault::Slow(Duration::from_secs(2)).kind(), FaultKind::Slow);
        assert_eq!(Fault::InflateUsage(3).kind().as_str(), "inflate_usage");
        assert_eq!(Fault::Panic.to_string(), "panic");
        assert_eq!(Fault::Slow(Duration::from_secs(2)).to_string(), "slow (2s)");
        let names: Vec<_> = FaultKind::ALL.iter().map(FaultKind::as_str).collect();
        assert_eq!(
            names,
            [
                "panic",
                "error",
                "fatal",
                "hang",
                "slow",
                "corrupt",
                "inflate_usage",
                "fail_start"
            ]
        );
    }
}
