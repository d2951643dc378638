//! What the web console folds from a system's event stream (every event but answered asks')
//! and its ask tallies, beyond what the system reports when read: starts per path (restarts),
//! restarts per supervisor in the last window (intensity use), each agent's recent asks
//! (throughput and latency percentiles from readings of its tally, errors from the failed
//! asks' events), and the latest events by id (the stream and its causal chains). A pure
//! state machine: every change takes the instant it happens at.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use overseer_agent::{AskOutcome, AskTally, LatencyHistogram, SystemEvent};
use overseer_supervisor::EventKind;
use serde_json::{json, Value};
use tokio::time::Instant;

/// One reading of an agent's ask tally.
#[derive(Debug)]
struct Reading {
    at: Instant,
    ended: u64,
    latency: LatencyHistogram,
}

/// The readings of one agent's tally kept at most: spaced at least a window's eighth apart,
/// so a window holds about eight and one before it, the baseline.
const READINGS_PER_WINDOW: u32 = 8;

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
    window: Duration,
    kept: usize,
    starts: BTreeMap<String, u32>,
    restarts_under: HashMap<String, VecDeque<Instant>>,
    escalated: HashMap<String, (u32, u64)>,
    /// When each failed ask within the window failed, per agent.
    failures: HashMap<String, VecDeque<Instant>>,
    errors_total: HashMap<String, u64>,
    /// Readings of each agent's ask tally, oldest first: the first is at or before the window's
    /// start (or the oldest there is).
    answered: HashMap<String, VecDeque<Reading>>,
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
    /// A board counting over `window` and keeping the latest `kept` events.
    pub(crate) fn new(window: Duration, kept: usize) -> Self {
        Self {
            window: window.max(Duration::from_millis(1)),
            kept: kept.max(1),
            starts: BTreeMap::new(),
            restarts_under: HashMap::new(),
            escalated: HashMap::new(),
            failures: HashMap::new(),
            errors_total: HashMap::new(),
            answered: HashMap::new(),
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
                // Asks are counted by the agents' tallies; a failure's event counts an error
                // (answered asks' events come only to a console that asked for every ask).
                let failed = !matches!(ask.outcome, AskOutcome::Ok);
                kind = if failed { "ask_error" } else { "ask" };
                if failed {
                    self.note_failure(ask.agent.as_str(), now);
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

    /// Counts a failed ask of `agent`.
    fn note_failure(&mut self, agent: &str, now: Instant) {
        *self.errors_total.entry(agent.to_string()).or_default() += 1;
        // One lookup per failure: the name is hashed once.
        if let Some(failures) = self.failures.get_mut(agent) {
            failures.push_back(now);
            expire(failures, now, self.window);
        } else {
            self.failures
                .insert(agent.to_string(), VecDeque::from([now]));
        }
    }

    /// Records readings of the agents' tallies taken at `now`.
    pub(crate) fn tallied(&mut self, tallies: Vec<AskTally>, now: Instant) {
        let spacing = self.window / READINGS_PER_WINDOW;
        for tally in tallies {
            let reading = Reading {
                at: now,
                ended: tally.ended,
                latency: tally.latency,
            };
            let Some(readings) = self.answered.get_mut(tally.agent.as_str()) else {
                self.answered
                    .insert(tally.agent.to_string(), VecDeque::from([reading]));
                continue;
            };
            // The newest reading is replaced while it is within a spacing of the one before.
            let crowded = readings.len() >= 2
                && readings[readings.len() - 1]
                    .at
                    .saturating_duration_since(readings[readings.len() - 2].at)
                    < spacing;
            if crowded {
                readings.pop_back();
            }
            readings.push_back(reading);
            // One reading at or before the window's start is kept, as the baseline.
            while readings.len() > 2 && now.saturating_duration_since(readings[1].at) >= self.window
            {
                readings.pop_front();
            }
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
                        "(the ask it serves: still running, answered (answers are counted, not listed), or no longer kept)"
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

    /// `agent`'s figures over the window ending at `now`: the asks it ended between the oldest
    /// and the newest kept readings of its tally (the window, give or take a reading's
    /// spacing), and its failures within the window.
    pub(crate) fn figures(&mut self, agent: &str, now: Instant) -> AskFigures {
        let errors_total = self.errors_total.get(agent).copied().unwrap_or(0);
        let errors = self.failures.get_mut(agent).map_or(0, |failures| {
            expire(failures, now, self.window);
            failures.len()
        });
        let (mut asks_per_sec, mut latency) = (0.0, LatencyHistogram::default());
        if let Some((first, last)) = self
            .answered
            .get(agent)
            .and_then(|readings| readings.front().zip(readings.back()))
        {
            let between = last
                .at
                .saturating_duration_since(first.at)
                .max(Duration::from_millis(1));
            asks_per_sec = last.ended.saturating_sub(first.ended) as f64 / between.as_secs_f64();
            latency = last.latency.since(&first.latency);
        }
        let ms = |q: f64| latency.quantile(q).map_or(0.0, |at| at.as_secs_f64() * 1e3);
        AskFigures {
            asks_per_sec,
            p50_ms: ms(0.5),
            p95_ms: ms(0.95),
            p99_ms: ms(0.99),
            errors,
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

fn expire(failures: &mut VecDeque<Instant>, now: Instant, window: Duration) {
    while failures
        .front()
        .is_some_and(|at| now.saturating_duration_since(*at) > window)
    {
        failures.pop_front();
    }
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
        let mut board = Board::new(Duration::from_secs(10), 100);
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
        let mut board = Board::new(Duration::from_secs(10), 100);
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
        let mut board = Board::new(Duration::from_secs(10), 100);
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
        let mut board = Board::new(Duration::from_secs(10), 2);
        board.note(ask(1, "a", ms(1), true), now);
        board.note(ask(2, "a", ms(1), true), now);
        board.note(lifecycle(3, Some(1), "a", EventKind::Started), now);
        let chain = board.chain(3).unwrap();
        assert_eq!(chain[0]["kind"], "gone");
        assert_eq!(chain.len(), 2);
    }

    /// A reading of `agent`'s tally: `ended` asks, and for each `(count, ms)`, `count` of
    /// them sampled at `ms`.
    fn tally(agent: &str, ended: u64, sampled: &[(u64, u64)]) -> Vec<AskTally> {
        let mut latency = LatencyHistogram::default();
        for &(count, ms_each) in sampled {
            for _ in 0..count {
                latency.record(ms(ms_each));
            }
        }
        vec![AskTally::new(AgentName::new(agent), ended, latency)]
    }

    fn about(got: f64, want: f64) -> bool {
        (got - want).abs() <= want / 16.0
    }

    #[test]
    fn figures_count_asks_and_latencies_from_tally_readings_and_errors_from_events() {
        let start = Instant::now();
        let mut board = Board::new(Duration::from_secs(10), 1_000);
        board.tallied(tally("a", 7, &[(2, 1)]), start);
        // 100 asks between the readings at 0 and 10 s, 25 of them sampled; 10 failed.
        for n in 1..=10 {
            board.note(ask(n, "a", ms(200), false), start + Duration::from_secs(5));
        }
        board.tallied(
            tally("a", 107, &[(2, 1), (20, 50), (5, 200)]),
            start + Duration::from_secs(10),
        );
        let figures = board.figures("a", start + Duration::from_secs(10));
        assert!(about(figures.asks_per_sec, 10.0), "{figures:?}");
        assert!(about(figures.p50_ms, 50.0), "{figures:?}");
        assert!(about(figures.p95_ms, 200.0), "{figures:?}");
        assert_eq!((figures.errors, figures.errors_total), (10, 10));
        // An answered ask's event (from a console that asked for every ask) changes nothing:
        // the tally has it.
        board.note(ask(11, "a", ms(1), true), start + Duration::from_secs(10));
        assert_eq!(board.figures("a", start + Duration::from_secs(10)), figures);
        // Past the window, the failures are forgotten (not their total), and readings with
        // nothing new between them count nothing.
        board.tallied(
            tally("a", 107, &[(2, 1), (20, 50), (5, 200)]),
            start + Duration::from_secs(21),
        );
        let figures = board.figures("a", start + Duration::from_secs(21));
        assert_eq!(
            (figures.asks_per_sec, figures.errors, figures.errors_total),
            (0.0, 0, 10)
        );
        assert_eq!(figures.p50_ms, 0.0);
    }

    #[test]
    fn tally_readings_are_spaced_and_one_before_the_window_is_kept() {
        let start = Instant::now();
        let mut board = Board::new(Duration::from_secs(8), 10);
        for tenth in 0..=200u64 {
            let at = start + Duration::from_millis(tenth * 100);
            board.tallied(tally("a", tenth, &[(tenth, 1)]), at);
        }
        let readings = &board.answered["a"];
        assert!(
            readings.len() <= READINGS_PER_WINDOW as usize + 2,
            "{}",
            readings.len()
        );
        let end = start + Duration::from_secs(20);
        let first = readings.front().unwrap().at;
        assert!(end.saturating_duration_since(first) >= Duration::from_secs(8));
        assert!(end.saturating_duration_since(first) <= Duration::from_secs(10));
        // 10 asks ended per second all along.
        let figures = board.figures("a", end);
        assert!(about(figures.asks_per_sec, 10.0), "{figures:?}");
    }

    #[test]
    fn at_most_the_latest_events_are_pushed_and_the_rest_counted() {
        let now = Instant::now();
        let mut board = Board::new(Duration::from_secs(10), 500);
        for n in 1..=300 {
            board.note(ask(n, "a", ms(1), true), now);
        }
        let (events, skipped) = board.events_since(0, 200);
        assert_eq!((events.len(), skipped), (200, 100));
        assert_eq!(events[0]["id"], 101);
        let (events, skipped) = board.events_since(board.next_seq(), 200);
        assert_eq!((events.len(), skipped), (0, 0));
    }
}
