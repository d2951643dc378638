//! Health checks: an agent's cheap self-test (its model reachable, its credentials valid), run
//! by the system at an interval on the agent while it is idle.
//!
//! [`HealthCheck`] says how often, within what timeout, and after how many failures in a row
//! the agent is restarted; [`HealthTally::record`] is the rule, a pure function from one check's
//! result to what changes ([`HealthChange`]). The agent side runs the check in the agent's own
//! actor, between tasks, so a check never runs beside a task.

use std::borrow::Cow;
use std::time::Duration;

use overseer_supervisor::{ChildPath, EventId};
use serde::{Deserialize, Serialize};

use crate::name::AgentName;

/// How an agent's health is checked
/// ([`AgentSpec::health_check`](crate::AgentSpec::health_check)): its
/// [`Agent::health_check`](crate::Agent::health_check) runs every `interval` while the agent is
/// idle, and must pass within `timeout`; a failure (an error, a panic, or no answer within the
/// timeout) marks the agent unhealthy, and `restart_after` failures in a row restart it through
/// its supervisor.
///
/// ```
/// use overseer_agent::HealthCheck;
/// use std::time::Duration;
///
/// let check = HealthCheck::every(Duration::from_secs(30))
///     .timeout(Duration::from_secs(2))
///     .restart_after(3);
/// assert_eq!(check.interval(), Duration::from_secs(30));
/// assert_eq!(check.failures_before_restart(), 3);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthCheck {
    interval: Duration,
    timeout: Duration,
    restart_after: u32,
}

impl HealthCheck {
    /// A check every `interval`, within a timeout of a tenth of it (at least 1 ms), restarting
    /// the agent after 3 failures in a row.
    pub fn every(interval: Duration) -> Self {
        Self {
            interval,
            timeout: (interval / 10).max(Duration::from_millis(1)),
            restart_after: 3,
        }
    }

    /// How long one check may take before it counts as failed (silent).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// After how many failures in a row the agent is restarted; 0 never restarts it (it stays
    /// unhealthy, refusing work, until a check passes).
    pub fn restart_after(mut self, failures: u32) -> Self {
        self.restart_after = failures;
        self
    }

    /// How often the check runs.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// How long one check may take.
    pub fn check_timeout(&self) -> Duration {
        self.timeout
    }

    /// After how many failures in a row the agent is restarted (0: never).
    pub fn failures_before_restart(&self) -> u32 {
        self.restart_after
    }
}

/// An agent's health, as its checks found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
#[non_exhaustive]
pub enum Health {
    /// No check has run since the incarnation started (or the agent has none).
    Unchecked,
    /// The last check passed.
    Healthy,
    /// The last `failures` checks failed: asks are refused with
    /// [`AskError::Unhealthy`](crate::AskError::Unhealthy) until one passes or the agent is
    /// restarted.
    Unhealthy {
        /// Failures in a row.
        failures: u32,
    },
}

impl Health {
    /// Whether the agent takes work: not [`Unhealthy`](Self::Unhealthy).
    pub fn is_serving(&self) -> bool {
        !matches!(self, Self::Unhealthy { .. })
    }
}

/// What one check's result changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthChange {
    /// Nothing: it passed again, or it failed again and the agent was already unhealthy but
    /// has not reached the restart count.
    Unchanged,
    /// It passed after failures: the agent takes work again.
    Recovered,
    /// It failed and the agent was healthy (or unchecked): it refuses work from now on.
    BecameUnhealthy,
    /// It failed for the configured number of times in a row: restart the agent.
    Restart,
}

/// The failures in a row of one incarnation's checks: the pure rule of health.
///
/// ```
/// use overseer_agent::{Health, HealthChange, HealthTally};
///
/// let mut tally = HealthTally::default();
/// assert_eq!(tally.record(false, 2), HealthChange::BecameUnhealthy);
/// assert_eq!(tally.health(), Health::Unhealthy { failures: 1 });
/// assert_eq!(tally.record(false, 2), HealthChange::Restart);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthTally {
    health: Health,
}

impl Default for HealthTally {
    fn default() -> Self {
        Self {
            health: Health::Unchecked,
        }
    }
}

impl HealthTally {
    /// The health found so far.
    pub fn health(&self) -> Health {
        self.health
    }

    /// Counts one check (`passed` or not) with the agent restarted after `restart_after`
    /// failures in a row (0: never), and says what changes. After [`Restart`](HealthChange::Restart)
    /// the tally starts again (the next incarnation is unchecked).
    pub fn record(&mut self, passed: bool, restart_after: u32) -> HealthChange {
        let previous = self.health;
        if passed {
            self.health = Health::Healthy;
            return match previous {
                Health::Unhealthy { .. } => HealthChange::Recovered,
                _ => HealthChange::Unchanged,
            };
        }
        let failures = match previous {
            Health::Unhealthy { failures } => failures.saturating_add(1),
            _ => 1,
        };
        if restart_after > 0 && failures >= restart_after {
            self.health = Health::Unchecked;
            return HealthChange::Restart;
        }
        self.health = Health::Unhealthy { failures };
        match previous {
            Health::Unhealthy { .. } => HealthChange::Unchanged,
            _ => HealthChange::BecameUnhealthy,
        }
    }
}

/// A health check's result that changed something, or failed
/// ([`SystemEvent::Health`](crate::SystemEvent::Health)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct HealthEvent {
    /// This event's id.
    pub id: EventId,
    /// The event that caused this one (none: checks run on their own).
    pub caused_by: Option<EventId>,
    /// When: time since the system started (tokio clock); `elapsed_ms` in JSON.
    #[serde(rename = "elapsed_ms", with = "overseer_serde::millis")]
    pub elapsed: Duration,
    /// The agent's path in the tree.
    pub path: Option<ChildPath>,
    /// The agent checked.
    pub agent: AgentName,
    /// Its health after the check.
    pub health: Health,
    /// Why the check failed (`None` if it passed).
    pub failure: Option<Cow<'static, str>>,
    /// Whether the agent is being restarted for it.
    pub restarting: bool,
}

impl std::fmt::Display for HealthEvent {
    /// `health writer: unhealthy (2 failures in a row): model unreachable` or
    /// `health writer: healthy`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "health {}: ", self.agent)?;
        match self.health {
            Health::Unhealthy { failures } => {
                write!(f, "unhealthy ({failures} failures in a row)")?
            }
            Health::Healthy => f.write_str("healthy")?,
            Health::Unchecked => f.write_str("unchecked")?,
        }
        if let Some(failure) = &self.failure {
            write!(f, ": {failure}")?;
        }
        if self.restarting {
            f.write_str(", restarting")?;
        }
        Ok(())
    }
}

/// One agent's health, as [`System::health`](crate::System::health) lists it (in the manner of
/// OTP's `which_children`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AgentHealth {
    /// The agent.
    pub agent: AgentName,
    /// Its path in the tree, once it has started.
    pub path: Option<ChildPath>,
    /// What its checks found.
    pub health: Health,
    /// The last progress its current (or last) task reported.
    pub progress: Option<crate::heartbeat::Progress>,
    /// How long ago the agent's handler last beat (a heartbeat, a model call, a step), if its
    /// tasks are watched by a heartbeat timeout and one has run.
    pub since_last_beat: Option<Duration>,
}

impl AgentHealth {
    /// A row with this agent and health, and nothing else (no path, no progress, no beat):
    /// systems make them; this is for testing what consumes them. Set the other fields as
    /// needed.
    pub fn new(agent: AgentName, health: Health) -> Self {
        Self {
            agent,
            path: None,
            health,
            progress: None,
            since_last_beat: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_in_a_row_restart_and_a_pass_recovers() {
        let mut tally = HealthTally::default();
        assert_eq!(tally.record(true, 3), HealthChange::Unchanged);
        assert_eq!(tally.health(), Health::Healthy);
        assert_eq!(tally.record(false, 3), HealthChange::BecameUnhealthy);
        assert_eq!(tally.record(false, 3), HealthChange::Unchanged);
        assert_eq!(tally.health(), Health::Unhealthy { failures: 2 });
        assert_eq!(tally.record(true, 3), HealthChange::Recovered);
        assert_eq!(tally.health(), Health::Healthy);
        // The count starts again after a pass.
        assert_eq!(tally.record(false, 3), HealthChange::BecameUnhealthy);
        assert_eq!(tally.record(false, 3), HealthChange::Unchanged);
        assert_eq!(tally.record(false, 3), HealthChange::Restart);
        assert_eq!(tally.health(), Health::Unchecked);
    }

    #[test]
    fn one_failure_restarts_when_the_count_is_one_and_never_when_zero() {
        let mut tally = HealthTally::default();
        assert_eq!(tally.record(false, 1), HealthChange::Restart);
        let mut never = HealthTally::default();
        for _ in 0..100 {
            assert_ne!(never.record(false, 0), HealthChange::Restart);
        }
        assert_eq!(never.health(), Health::Unhealthy { failures: 100 });
    }

    #[test]
    fn the_default_timeout_is_a_tenth_of_the_interval() {
        let check = HealthCheck::every(Duration::from_secs(10));
        assert_eq!(check.check_timeout(), Duration::from_secs(1));
        let tiny = HealthCheck::every(Duration::from_micros(5));
        assert_eq!(tiny.check_timeout(), Duration::from_millis(1));
    }
}
