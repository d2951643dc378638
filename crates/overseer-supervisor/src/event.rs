//! Lifecycle events: what happened in the tree, as typed values and as tracing events.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::{ChildPath, EventId, ExitReason, StartError};

/// One thing that happened to a supervisor or a child.
///
/// Events of one tree are published in causal order on its [`EventBus`]: a supervisor reports
/// its own start before its children start, a child's exit is reported before the restart it
/// causes, and an escalation before the supervisor's children are stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LifecycleEvent {
    /// This event's id.
    pub id: EventId,
    /// The event that caused this one, if any (see [`EventId`] for the rules).
    pub caused_by: Option<EventId>,
    /// Time since the tree started (tokio clock); `elapsed_ms` in JSON.
    #[serde(rename = "elapsed_ms", with = "overseer_serde::millis")]
    pub elapsed: Duration,
    /// The supervisor or child the event is about.
    pub path: ChildPath,
    /// What happened.
    pub kind: EventKind,
}

impl LifecycleEvent {
    /// An event with these fields, as a tree publishes it (for code that replays or merges
    /// events, and for tests of event consumers: the struct is `#[non_exhaustive]`).
    ///
    /// ```
    /// use overseer_supervisor::{ChildId, ChildPath, EventId, EventKind, LifecycleEvent};
    /// use std::time::Duration;
    ///
    /// let id = EventId::new(1).expect("non-zero");
    /// let path = ChildPath::root(&ChildId::new("root"));
    /// let event = LifecycleEvent::new(id, None, Duration::ZERO, path, EventKind::Started);
    /// assert_eq!(event.kind, EventKind::Started);
    /// ```
    pub fn new(
        id: EventId,
        caused_by: Option<EventId>,
        elapsed: Duration,
        path: ChildPath,
        kind: EventKind,
    ) -> Self {
        Self {
            id,
            caused_by,
            elapsed,
            path,
            kind,
        }
    }
}

/// What happened, in a [`LifecycleEvent`].
///
/// | kind | reported by | when |
/// |---|---|---|
/// | [`Started`](Self::Started) | the supervisor starting a worker; a supervisor itself | a start succeeded (a supervisor: before its children start) |
/// | [`StartFailed`](Self::StartFailed) | the parent supervisor | a start attempt failed |
/// | [`Stopped`](Self::Stopped) | the parent supervisor; the root itself | a child exited or was stopped, with the reason |
/// | [`Escalated`](Self::Escalated) | the supervisor giving up | a restart would exceed its intensity |
/// | [`AutoShutdown`](Self::AutoShutdown) | the supervisor shutting down | significant children exited |
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// Started (first start or restart).
    Started,
    /// A start attempt failed.
    StartFailed {
        /// Why.
        error: StartError,
    },
    /// Exited or was stopped.
    Stopped {
        /// Why.
        reason: ExitReason,
    },
    /// The supervisor exceeded its restart intensity and gives up: it stops its children and
    /// exits with reason `shutdown`.
    Escalated {
        /// The restart limit.
        intensity: u32,
        /// The window, in whole seconds.
        period_secs: u64,
    },
    /// The supervisor shuts itself down because of significant children.
    AutoShutdown,
}

/// In words: `started`, `start failed: <error>`, `stopped: <reason>`, `escalated: more than
/// 2 restarts in 10 s`, `shut down automatically`.
///
/// ```
/// use overseer_supervisor::{EventKind, ExitReason};
/// let kind = EventKind::Stopped { reason: ExitReason::Panicked("boom".into()) };
/// assert_eq!(kind.to_string(), "stopped: panicked: boom");
/// let kind = EventKind::Escalated { intensity: 1, period_secs: 60 };
/// assert_eq!(kind.to_string(), "escalated: more than 1 restart in 60 s");
/// ```
impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Started => f.write_str("started"),
            Self::StartFailed { error } => write!(f, "start failed: {error}"),
            Self::Stopped { reason } => write!(f, "stopped: {reason}"),
            Self::Escalated {
                intensity,
                period_secs,
            } => write!(
                f,
                "escalated: more than {intensity} restart{} in {period_secs} s",
                if *intensity == 1 { "" } else { "s" }
            ),
            Self::AutoShutdown => f.write_str("shut down automatically"),
        }
    }
}

/// The path and what happened: `root/worker stopped: panicked: boom`.
impl fmt::Display for LifecycleEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.path, self.kind)
    }
}

/// Where a tree publishes its [`LifecycleEvent`]s: a broadcast channel, so any number of
/// subscribers each get every event in order. A subscriber that falls more than the capacity
/// behind is told how many events it missed (`RecvError::Lagged`), never silently.
///
/// ```
/// use overseer_supervisor::EventBus;
/// let bus = EventBus::new(1024);
/// let _subscriber = bus.subscribe();
/// ```
#[derive(Debug, Clone)]
pub struct EventBus {
    sender: broadcast::Sender<LifecycleEvent>,
}

impl EventBus {
    /// The default capacity of a tree's bus.
    pub const DEFAULT_CAPACITY: usize = 4096;

    /// A bus keeping up to `capacity` events for slow subscribers (at least 1).
    pub fn new(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity.max(1));
        Self { sender }
    }

    /// A new subscriber, receiving every event published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<LifecycleEvent> {
        self.sender.subscribe()
    }

    /// Publishes an event and writes it as a tracing event with structured fields.
    pub(crate) fn publish(&self, event: LifecycleEvent) {
        trace_event(&event);
        // No subscriber is not an error: events are also in the tracing output.
        if self.sender.receiver_count() > 0 {
            let _ = self.sender.send(event);
        }
    }
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new(Self::DEFAULT_CAPACITY)
    }
}

/// Traces `event` with structured fields, among them `event_id` and `caused_by` (absent for
/// an event without a cause), so a log line joins the event stream.
fn trace_event(event: &LifecycleEvent) {
    let path = event.path.as_str();
    let event_id = event.id.get();
    let caused_by = event.caused_by.map(EventId::get);
    match &event.kind {
        EventKind::Started => {
            tracing::info!(path, event_id, caused_by, event = "started", "started")
        }
        EventKind::StartFailed { error } => tracing::warn!(
            path,
            event_id,
            caused_by,
            event = "start_failed",
            error = %error,
            "start failed"
        ),
        EventKind::Stopped { reason } if reason.is_normal() => tracing::info!(
            path,
            event_id,
            caused_by,
            event = "stopped",
            reason = %reason,
            "stopped"
        ),
        EventKind::Stopped { reason } => tracing::warn!(
            path,
            event_id,
            caused_by,
            event = "stopped",
            reason = %reason,
            "exited abnormally"
        ),
        EventKind::Escalated {
            intensity,
            period_secs,
        } => tracing::error!(
            path,
            event_id,
            caused_by,
            event = "escalated",
            intensity,
            period_secs,
            "restart intensity exceeded; supervisor gives up"
        ),
        EventKind::AutoShutdown => tracing::info!(
            path,
            event_id,
            caused_by,
            event = "auto_shutdown",
            "significant children exited; supervisor shuts down"
        ),
    }
}
