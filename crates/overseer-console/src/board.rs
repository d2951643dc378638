//! What the web console folds from a system's event stream, beyond what the system reports
//! when read: starts per path (restarts), restarts per supervisor in the last window
//! (intensity use), each agent's recent asks (throughput, latency percentiles, errors), and
//! the latest events by id (the stream and its causal chains). A pure state machine: every
//! change takes the instant it happens at.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use overseer_agent::{AskOutcome, SystemEvent};
use overseer_supervisor::EventKind;
use serde_json::{json, Value};
use tokio::time::Instant;

/// One finished ask, as the window keeps it.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    latency: Duration,
    failed: bool,
}

/// An agent's figures over the window: what its row shows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct AskFigures {
    /// Asks finished per second.
    pub asks_per_sec: f64,
    /// Latency percentiles (nearest rank), in milliseconds; 0 without asks.
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    /// Asks that failed within the window.
    pub errors: usize,
    /// Asks that failed since the console attached.
    pub errors_total: u64,
}

/// The fold: see the module's documentation.
#[derive(Debug)]
pub(crate) struct Board {
    started: Instant,
    window: Duration,
    kept: usize,
    starts: BTreeMap<String, u32>,
    restarts_under: HashMap<String, VecDeque<Instant>>,
    escalated: HashMap<String, (u32, u64)>,
    asks: HashMap<String, VecDeque<Sample>>,
    errors_total: HashMap<String, u64>,
    /// The kept events, oldest first; the first has sequence number `first_seq`.
    events: VecDeque<Kept>,
    first_seq: u64,
    /// Events the stream dropped before the console read them (it lagged).
    missed: u64,
}

/// One kept event: rendered as JSON only when a page or a request reads it.
#[derive(Debug)]
struct Kept {
    kind: &'static str,
    event: SystemEvent,
}

impl Board {
    /// A board made at `now`, keeping asks for `window` and the latest `kept` events.
    pub(crate) fn new(now: Instant, window: Duration, kept: usize) -> Self {
        Self {
            started: now,
            window: window.max(Duration::from_millis(1)),
            kept: kept.max(1),
            starts: BTreeMap::new(),
            restarts_under: HashMap::new(),
            escalated: HashMap::new(),
            asks: HashMap::new(),
            errors_total: HashMap::new(),
            events: VecDeque::new(),
            first_seq: 0,
            missed: 0,
        }
    }

    /// The kind of the kept event `id`, if kept.
    fn kind_of(&self, id: u64) -> Option<&'static str> {
        self.kept(id).map(|kept| kept.kind)
    }

    /// The kept event `id`: searched from the newest, as causes are recent and lookups rare
    /// (a start, a chain asked for); an index would cost every event.
    fn kept(&self, id: u64) -> Option<&Kept> {
        self.events
            .iter()
            .rev()
            .find(|kept| kept.event.id().get() == id)
    }

    /// Counts events the stream dropped before the console read them.
    pub(crate) fn missed(&mut self, missed: u64) {
        self.missed += missed;
    }

    /// Events the stream dropped before the console read them.
    pub(crate) fn missed_total(&self) -> u64 {
        self.missed
    }

    /// The sequence number the next event will get: events `from..next_seq()` are those noted
    /// since `from`.
    pub(crate) fn next_seq(&self) -> u64 {
        self.first_seq + self.events.len() as u64
    }

    /// Records `event`, seen at `now`. Cheap: counts, and keeps the event as it is.
    pub(crate) fn note(&mut self, event: SystemEvent, now: Instant) {
        let mut kind = "event";
        match &event {
            SystemEvent::Lifecycle(lifecycle) => {
                let path = lifecycle.path.to_string();
                match &lifecycle.kind {
                    EventKind::Started => {
                        // A restart: a second start seen, or a start caused by a stop (the
                        // console may attach after the first start).
                        let after_stop = lifecycle
                            .caused_by
                            .and_then(|cause| self.kind_of(cause.get()))
                            .is_some_and(|cause| matches!(cause, "crash" | "stopped"));
                        let starts = self.starts.entry(path).or_default();
                        *starts += 1;
                        if *starts > 1 || after_stop {
                            kind = "restart";
                            *starts = (*starts).max(2);
                            if let Some(parent) = lifecycle.path.parent() {
                                let times =
                                    self.restarts_under.entry(parent.to_string()).or_default();
                                times.push_back(now);
                            }
                        } else {
                            kind = "started";
                        }
                    }
                    EventKind::Stopped { reason } => {
                        kind = if reason.is_normal() {
                            "stopped"
                        } else {
                            "crash"
                        };
                    }
                    EventKind::StartFailed { .. } => kind = "start_failed",
                    EventKind::Escalated {
                        intensity,
                        period_secs,
                    } => {
                        kind = "escalation";
                        self.escalated.insert(path, (*intensity, *period_secs));
                    }
                    _ => kind = "shutdown",
                }
            }
            SystemEvent::Ask(ask) => {
                let agent = ask.agent.as_str();
                let failed = !matches!(ask.outcome, AskOutcome::Ok);
                kind = if failed { "ask_error" } else { "ask" };
                if failed {
                    *self.errors_total.entry(agent.to_string()).or_default() += 1;
                }
                let sample = Sample {
                    at: now,
                    latency: ask.latency,
                    failed,
                };
                // One lookup per ask: the name is hashed once.
                if let Some(samples) = self.asks.get_mut(agent) {
                    samples.push_back(sample);
                    expire(samples, now, self.window);
                } else {
                    self.asks
                        .insert(agent.to_string(), VecDeque::from([sample]));
                }
            }
            SystemEvent::Breaker(_) => kind = "breaker",
            SystemEvent::BudgetWarning(_) => kind = "budget",
            SystemEvent::KillSwitchTripped(_) => kind = "trip",
            SystemEvent::DeadLetter(_) => kind = "dead_letter",
            SystemEvent::Retry(_) => kind = "retry",
            SystemEvent::Semantic(_) => kind = "semantic",
            SystemEvent::Cohort(_) => kind = "cohort",
            SystemEvent::Health(_) => kind = "health",
            _ => {}
        }
        self.events.push_back(Kept { kind, event });
        while self.events.len() > self.kept {
            self.events.pop_front();
            self.first_seq += 1;
        }
    }

    /// The kept events, oldest first, as the page shows them.
    pub(crate) fn events(&self) -> Vec<Value> {
        self.events.iter().map(shown).collect()
    }

    /// The events noted from sequence number `from` on, at most the `most` latest of them, as
    /// the page shows them; and how many of them were left out.
    pub(crate) fn events_since(&self, from: u64, most: usize) -> (Vec<Value>, u64) {
        let from = from.max(self.first_seq);
        let new = self.next_seq().saturating_sub(from);
        let shown_count = new.min(most as u64);
        let skip = self.events.len() - shown_count as usize;
        let events = self.events.iter().skip(skip).map(shown).collect();
        (events, new - shown_count)
    }

    /// The chain of causes of event `id`, root cause first and `id` last, as far back as the
    /// kept events reach (`None` when `id` itself is not kept): each event's cause, or a
    /// nested ask's parent ask ([`SystemEvent::antecedent`]).
    pub(crate) fn chain(&self, id: u64) -> Option<Vec<Value>> {
        let mut at = self.kept(id)?;
        let mut chain = vec![shown(at)];
        let mut seen = vec![id];
        while let Some(before) = at.event.antecedent().map(|before| before.get()) {
            // Ids only point back in time, but a loop must not hang the console.
            if seen.contains(&before) {
                break;
            }
            seen.push(before);
            match self.kept(before) {
                Some(event) => {
                    chain.push(shown(event));
                    at = event;
                }
                None => {
                    // A parent ask still running has published nothing yet.
                    let text = if at.event.caused_by().is_none() {
                        "(the ask it serves: still running, or no longer kept)"
                    } else {
                        "(no longer kept)"
                    };
                    chain.push(json!({ "id": before, "kind": "gone", "text": text }));
                    break;
                }
            }
        }
        chain.reverse();
        Some(chain)
    }

    /// Starts of `path` after its first, since the board was made.
    pub(crate) fn restarts(&self, path: &str) -> u32 {
        self.starts.get(path).map_or(0, |n| n.saturating_sub(1))
    }

    /// Restarts of the children of supervisor `path` within the window, and the intensity and
    /// period it escalated at, if it did.
    pub(crate) fn intensity_use(
        &mut self,
        path: &str,
        now: Instant,
    ) -> (usize, Option<(u32, u64)>) {
        let recent = self.restarts_under.get_mut(path).map_or(0, |times| {
            while times
                .front()
                .is_some_and(|at| now.saturating_duration_since(*at) > self.window)
            {
                times.pop_front();
            }
            times.len()
        });
        (recent, self.escalated.get(path).copied())
    }

    /// `agent`'s figures over the window ending at `now`.
    pub(crate) fn figures(&mut self, agent: &str, now: Instant) -> AskFigures {
        let errors_total = self.errors_total.get(agent).copied().unwrap_or(0);
        let span = now
            .saturating_duration_since(self.started)
            .min(self.window)
            .max(Duration::from_millis(1));
        let Some(samples) = self.asks.get_mut(agent) else {
            return AskFigures {
                asks_per_sec: 0.0,
                p50_ms: 0.0,
                p95_ms: 0.0,
                p99_ms: 0.0,
                errors: 0,
                errors_total,
            };
        };
        expire(samples, now, self.window);
        let mut latencies: Vec<Duration> = samples.iter().map(|s| s.latency).collect();
        latencies.sort_unstable();
        AskFigures {
            asks_per_sec: samples.len() as f64 / span.as_secs_f64(),
            p50_ms: percentile_ms(&latencies, 50),
            p95_ms: percentile_ms(&latencies, 95),
            p99_ms: percentile_ms(&latencies, 99),
            errors: samples.iter().filter(|s| s.failed).count(),
            errors_total,
        }
    }

    /// The window the figures cover.
    pub(crate) fn window(&self) -> Duration {
        self.window
    }
}

/// An event as the page shows it: id, cause, parent ask, time, kind, path, and a line of text.
fn shown(kept: &Kept) -> Value {
    let event = &kept.event;
    json!({
        "id": event.id().get(),
        "caused_by": event.caused_by().map(|cause| cause.get()),
        "parent": event.parent().map(|parent| parent.get()),
        "at_ms": event.elapsed().as_secs_f64() * 1e3,
        "kind": kept.kind,
        "path": event.path().map(ToString::to_string),
        "text": event.to_string(),
    })
}

fn expire(samples: &mut VecDeque<Sample>, now: Instant, window: Duration) {
    while samples
        .front()
        .is_some_and(|s| now.saturating_duration_since(s.at) > window)
    {
        samples.pop_front();
    }
}

/// The nearest-rank `pct`th percentile of sorted `latencies`, in milliseconds (0 if empty).
fn percentile_ms(sorted: &[Duration], pct: usize) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (pct * sorted.len()).div_ceil(100).clamp(1, sorted.len());
    sorted[rank - 1].as_secs_f64() * 1e3
}

#[cfg(test)]
mod tests {
    use super::*;
    use overseer_agent::{AgentName, AskEvent};
    use overseer_supervisor::{ChildId, ChildPath, EventId, ExitReason, LifecycleEvent};

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn id(n: u64) -> EventId {
        EventId::new(n).unwrap()
    }

    fn path(child: &str) -> ChildPath {
        ChildPath::root(&ChildId::new("root")).join(&ChildId::new(child))
    }

    fn lifecycle(n: u64, cause: Option<u64>, child: &str, kind: EventKind) -> SystemEvent {
        SystemEvent::Lifecycle(LifecycleEvent::new(
            id(n),
            cause.map(id),
            Duration::ZERO,
            path(child),
            kind,
        ))
    }

    fn ask(n: u64, agent: &str, latency: Duration, ok: bool) -> SystemEvent {
        let outcome = if ok {
            AskOutcome::Ok
        } else {
            AskOutcome::Error {
                kind: "crashed".into(),
                message: "boom".into(),
            }
        };
        let mut event = AskEvent::new(id(n), AgentName::new(agent), "work", outcome);
        event.latency = latency;
        SystemEvent::Ask(event)
    }

    #[test]
    fn a_start_caused_by_a_stop_is_a_restart_even_unseen_first_starts() {
        let now = Instant::now();
        let mut board = Board::new(now, Duration::from_secs(10), 100);
        board.note(ask(1, "a", ms(1), false), now);
        let crash = EventKind::Stopped {
            reason: ExitReason::Panicked("boom".into()),
        };
        board.note(lifecycle(2, Some(1), "a", crash), now);
        board.note(lifecycle(3, Some(2), "a", EventKind::Started), now);
        assert_eq!(board.restarts("root/a"), 1);
        assert_eq!(board.intensity_use("root", now).0, 1);
        board.note(lifecycle(4, None, "b", EventKind::Started), now);
        assert_eq!(board.restarts("root/b"), 0, "a first start");
        // Past the window, the supervisor's recent restarts are forgotten, not the count.
        let later = now + Duration::from_secs(11);
        assert_eq!(board.intensity_use("root", later).0, 0);
        assert_eq!(board.restarts("root/a"), 1);
    }

    #[test]
    fn a_chain_runs_from_the_root_cause_to_the_event() {
        let now = Instant::now();
        let mut board = Board::new(now, Duration::from_secs(10), 100);
        board.note(ask(1, "a", ms(1), false), now);
        let crash = EventKind::Stopped {
            reason: ExitReason::Panicked("boom".into()),
        };
        board.note(lifecycle(2, Some(1), "a", crash), now);
        board.note(lifecycle(3, Some(2), "a", EventKind::Started), now);
        let chain = board.chain(3).unwrap();
        let ids: Vec<u64> = chain.iter().map(|e| e["id"].as_u64().unwrap()).collect();
        assert_eq!(ids, [1, 2, 3]);
        let kinds: Vec<&str> = chain.iter().map(|e| e["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["ask_error", "crash", "restart"]);
        assert!(board.chain(99).is_none());
    }

    #[test]
    fn a_chain_goes_on_from_a_nested_ask_to_the_ask_it_serves() {
        let now = Instant::now();
        let mut board = Board::new(now, Duration::from_secs(10), 100);
        let mut nested = AskEvent::new(id(2), AgentName::new("b"), "work", AskOutcome::Ok);
        nested.parent = Some(id(1));
        nested.request = Some(id(1));
        board.note(SystemEvent::Ask(nested), now);
        let crash = EventKind::Stopped {
            reason: ExitReason::Panicked("boom".into()),
        };
        board.note(lifecycle(3, Some(2), "b", crash), now);
        // The request is still running: its ask has published nothing.
        let chain = board.chain(3).unwrap();
        assert_eq!(chain[0]["kind"], "gone");
        assert_eq!(chain[0]["id"], 1);
        assert_eq!(chain[1]["parent"], 1);
        board.note(ask(1, "a", ms(1), true), now);
        let ids: Vec<u64> = board
            .chain(3)
            .unwrap()
            .iter()
            .map(|e| e["id"].as_u64().unwrap())
            .collect();
        assert_eq!(ids, [1, 2, 3]);
    }

    #[test]
    fn a_cause_no_longer_kept_ends_the_chain_as_gone() {
        let now = Instant::now();
        let mut board = Board::new(now, Duration::from_secs(10), 2);
        board.note(ask(1, "a", ms(1), true), now);
        board.note(ask(2, "a", ms(1), true), now);
        board.note(lifecycle(3, Some(1), "a", EventKind::Started), now);
        let chain = board.chain(3).unwrap();
        assert_eq!(chain[0]["kind"], "gone");
        assert_eq!(chain.len(), 2);
    }

    #[test]
    fn figures_count_asks_latencies_and_errors_within_the_window() {
        let start = Instant::now();
        let mut board = Board::new(start, Duration::from_secs(10), 1_000);
        for n in 1..=100 {
            board.note(
                ask(n, "a", ms(n), n % 10 != 0),
                start + Duration::from_secs(5),
            );
        }
        let figures = board.figures("a", start + Duration::from_secs(10));
        assert_eq!(figures.asks_per_sec, 10.0);
        assert_eq!(
            (figures.p50_ms, figures.p95_ms, figures.p99_ms),
            (50.0, 95.0, 99.0)
        );
        assert_eq!((figures.errors, figures.errors_total), (10, 10));
        let figures = board.figures("a", start + Duration::from_secs(16));
        assert_eq!(
            (figures.asks_per_sec, figures.errors, figures.errors_total),
            (0.0, 0, 10)
        );
    }

    #[test]
    fn at_most_the_latest_events_are_pushed_and_the_rest_counted() {
        let now = Instant::now();
        let mut board = Board::new(now, Duration::from_secs(10), 500);
        for n in 1..=300 {
            board.note(ask(n, "a", ms(1), true), now);
        }
        let (events, skipped) = board.events_since(0, 200);
        assert_eq!((events.len(), skipped), (200, 100));
        assert_eq!(events[0]["id"], 101);
        let (events, skipped) = board.events_since(board.next_seq(), 200);
        assert_eq!((events.len(), skipped), (0, 0));
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let sorted: Vec<Duration> = (1..=100).map(ms).collect();
        assert_eq!(percentile_ms(&sorted, 50), 50.0);
        assert_eq!(percentile_ms(&sorted, 95), 95.0);
        assert_eq!(percentile_ms(&sorted, 99), 99.0);
        assert_eq!(percentile_ms(&[ms(7)], 99), 7.0);
        assert_eq!(percentile_ms(&[], 50), 0.0);
    }
}
