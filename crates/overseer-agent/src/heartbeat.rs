//! Heartbeats: a long task says it is alive, so a stall is caught within its heartbeat timeout
//! instead of at its deadline.
//!
//! A handler beats with [`AgentContext::heartbeat`](crate::AgentContext::heartbeat) (or reports
//! a [`Progress`] with [`AgentContext::progress`](crate::AgentContext::progress)); its model
//! calls and journaled steps beat on their own. An agent given a heartbeat timeout
//! ([`AgentSpec::heartbeat_timeout`](crate::AgentSpec::heartbeat_timeout)) has each task
//! watched: a handler silent for the timeout is treated as hung, as at a deadline.
//!
//! The rule is [`heartbeat_silence`], a pure function of the last beat, the timeout and now; the
//! [`Pulse`] is where beats land, one per agent, shared by its incarnations' contexts and read
//! by the watch and the live views.

use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

/// How far a handler has got: a step count or a short message, reported with
/// [`AgentContext::progress`](crate::AgentContext::progress). The last one is in the ask's
/// event ([`AskEvent::progress`](crate::AskEvent::progress)), in the agent's health listing
/// ([`System::health`](crate::System::health)), and, journaled with
/// [`AgentContext::record_progress`](crate::AgentContext::record_progress), in a resumed run.
///
/// ```
/// use overseer_agent::Progress;
///
/// assert_eq!(Progress::from(41), Progress::Step(41));
/// assert_eq!(Progress::from("reading sources").to_string(), "reading sources");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Progress {
    /// A count of steps done.
    Step(u64),
    /// A short message.
    Message(Cow<'static, str>),
}

impl From<u64> for Progress {
    fn from(step: u64) -> Self {
        Self::Step(step)
    }
}

impl From<&'static str> for Progress {
    fn from(message: &'static str) -> Self {
        Self::Message(Cow::Borrowed(message))
    }
}

impl From<String> for Progress {
    fn from(message: String) -> Self {
        Self::Message(Cow::Owned(message))
    }
}

impl fmt::Display for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Step(step) => write!(f, "step {step}"),
            Self::Message(message) => f.write_str(message),
        }
    }
}

/// The heartbeat timeouts of one agent: one for every task type, and others per task type.
#[derive(Debug, Clone, Default)]
pub(crate) struct HeartbeatTimeouts {
    every_task: Option<Duration>,
    by_task_type: Vec<(&'static str, Duration)>,
}

impl HeartbeatTimeouts {
    pub(crate) fn set_every_task(&mut self, timeout: Duration) {
        self.every_task = Some(timeout);
    }

    pub(crate) fn set_task_type(&mut self, task_type: &'static str, timeout: Duration) {
        self.by_task_type.retain(|(known, _)| *known != task_type);
        self.by_task_type.push((task_type, timeout));
    }

    /// Whether any task is watched.
    pub(crate) fn any(&self) -> bool {
        self.every_task.is_some() || !self.by_task_type.is_empty()
    }

    /// The timeout a task of `task_type` is watched with, if any.
    pub(crate) fn of(&self, task_type: &str) -> Option<Duration> {
        self.by_task_type
            .iter()
            .find(|(known, _)| *known == task_type)
            .map(|(_, timeout)| *timeout)
            .or(self.every_task)
    }

    /// Every timeout given, for the spec's checks.
    pub(crate) fn all(&self) -> impl Iterator<Item = Duration> + '_ {
        self.every_task
            .into_iter()
            .chain(self.by_task_type.iter().map(|(_, timeout)| *timeout))
    }
}

/// How long a handler whose last beat was at `last_beat` has been silent at `now`, if that is
/// at least `timeout`: `Some` means it is treated as hung. A beat at `now` itself is not
/// silence.
///
/// ```
/// # use std::time::Duration;
/// # use tokio::time::Instant;
/// # use overseer_agent::heartbeat_silence;
/// let beat = Instant::now();
/// let timeout = Duration::from_secs(5);
/// assert_eq!(heartbeat_silence(beat, timeout, beat + Duration::from_secs(4)), None);
/// assert_eq!(heartbeat_silence(beat, timeout, beat + timeout), Some(timeout));
/// ```
pub fn heartbeat_silence(last_beat: Instant, timeout: Duration, now: Instant) -> Option<Duration> {
    let silent = now.saturating_duration_since(last_beat);
    (silent >= timeout).then_some(silent)
}

/// Where an agent's beats land: the time of the last one, in nanoseconds since the pulse was
/// made (one atomic store a beat), and the last progress reported.
#[derive(Debug)]
pub(crate) struct Pulse {
    origin: Instant,
    last_beat_nanos: AtomicU64,
    progress: Mutex<Option<Progress>>,
}

impl Pulse {
    pub(crate) fn new() -> Self {
        Self {
            origin: Instant::now(),
            last_beat_nanos: AtomicU64::new(0),
            progress: Mutex::new(None),
        }
    }

    /// A beat, now.
    #[inline]
    pub(crate) fn beat(&self) {
        self.beat_at(Instant::now());
    }

    #[inline]
    pub(crate) fn beat_at(&self, at: Instant) {
        let nanos = at.saturating_duration_since(self.origin).as_nanos();
        let nanos = u64::try_from(nanos).unwrap_or(u64::MAX);
        self.last_beat_nanos.store(nanos, Ordering::Relaxed);
    }

    /// When the last beat was.
    pub(crate) fn last_beat(&self) -> Instant {
        let nanos = self.last_beat_nanos.load(Ordering::Relaxed);
        self.origin + Duration::from_nanos(nanos)
    }

    pub(crate) fn set_progress(&self, progress: Progress) {
        *self.progress.lock().unwrap_or_else(PoisonError::into_inner) = Some(progress);
    }

    pub(crate) fn progress(&self) -> Option<Progress> {
        self.progress
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// A new task starts: its start is its first beat, and no progress is reported yet.
    pub(crate) fn restart_at(&self, at: Instant) {
        self.beat_at(at);
        *self.progress.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// Completes when the handler has been silent for `timeout`, with how long: the watch of
    /// one task, run beside its handler. It sleeps until the last beat's due time and looks
    /// again, so a handler that beats is never woken for.
    pub(crate) async fn silence(&self, timeout: Duration) -> Duration {
        loop {
            let last = self.last_beat();
            let due = last + timeout;
            tokio::time::sleep_until(due).await;
            if let Some(silent) = heartbeat_silence(self.last_beat(), timeout, Instant::now()) {
                return silent;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_is_the_timeout_or_more_and_never_less() {
        let beat = Instant::now();
        let timeout = Duration::from_millis(500);
        for millis in [0, 1, 250, 499] {
            let now = beat + Duration::from_millis(millis);
            assert_eq!(
                heartbeat_silence(beat, timeout, now),
                None,
                "at {millis} ms"
            );
        }
        for millis in [500, 501, 10_000] {
            let now = beat + Duration::from_millis(millis);
            assert_eq!(
                heartbeat_silence(beat, timeout, now),
                Some(Duration::from_millis(millis))
            );
        }
        // A clock read before the beat (another thread's beat raced the read) is no silence.
        assert_eq!(heartbeat_silence(beat + timeout, timeout, beat), None);
    }

    #[test]
    fn a_task_type_timeout_overrides_the_agents() {
        let mut timeouts = HeartbeatTimeouts::default();
        assert!(!timeouts.any());
        assert_eq!(timeouts.of("search"), None);
        timeouts.set_task_type("search", Duration::from_secs(3));
        assert_eq!(timeouts.of("search"), Some(Duration::from_secs(3)));
        assert_eq!(timeouts.of("write"), None);
        timeouts.set_every_task(Duration::from_secs(10));
        timeouts.set_task_type("search", Duration::from_secs(4));
        assert_eq!(timeouts.of("search"), Some(Duration::from_secs(4)));
        assert_eq!(timeouts.of("write"), Some(Duration::from_secs(10)));
        assert_eq!(timeouts.all().count(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn the_watch_completes_one_timeout_after_the_last_beat() {
        let pulse = Pulse::new();
        let timeout = Duration::from_secs(2);
        pulse.restart_at(Instant::now());
        let start = Instant::now();
        let watch = pulse.silence(timeout);
        tokio::pin!(watch);
        // Beat every second for five seconds: the watch does not complete.
        for _ in 0..5 {
            tokio::select! {
                biased;
                silent = &mut watch => panic!("stalled while beating, after {silent:?}"),
                () = tokio::time::sleep(Duration::from_secs(1)) => pulse.beat(),
            }
        }
        let last_beat = Instant::now();
        let silent = watch.await;
        assert_eq!(silent, timeout);
        assert_eq!(Instant::now() - last_beat, timeout);
        assert_eq!(Instant::now() - start, Duration::from_secs(7));
    }

    #[test]
    fn progress_is_kept_until_the_next_task() {
        let pulse = Pulse::new();
        assert_eq!(pulse.progress(), None);
        pulse.set_progress(Progress::Step(3));
        pulse.set_progress(Progress::from("summarising"));
        assert_eq!(pulse.progress(), Some(Progress::from("summarising")));
        pulse.restart_at(Instant::now());
        assert_eq!(pulse.progress(), None);
    }
}
