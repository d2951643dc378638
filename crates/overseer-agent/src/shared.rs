//! What every ask of one system reads: whether the system is open, its budget and breakers, its
//! event stream and the ids and clock its events are stamped with.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use dashmap::DashMap;
use overseer_breaker::{BreakerKey, BreakerRegistry, State as BreakerState, Transition};
use overseer_budget::{Budget, InFlightPolicy, Reservation, TripReport};
use overseer_supervisor::{deadline_after, ChildPath, EventId, EventIds};
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;

use overseer_journal::{Durability, Effect, Journal, RunId};

use crate::dead_letter::{DeadLetter, DeadLetterChange, DeadLetterEvent, LetterQueue};
use crate::error::AskError;
use crate::event::{BreakerEvent, EventMeta, KillSwitchEvent, SystemEvent};
use crate::retry_runtime::RetryRuntime;
use crate::semantic_watch::SemanticWatch;
use crate::usage::Usage;

/// What every ask of one system reads: held by each agent's slot. It holds no slot and no tree,
/// so slots and the tree never keep each other alive through it.
pub(crate) struct Shared {
    pub(crate) default_ask_timeout: Duration,
    pub(crate) budget: Option<Budget>,
    pub(crate) breakers: Option<BreakerRegistry>,
    /// When the kill switch tripped (set once), for cancelling tasks in flight.
    tripped_at: watch::Sender<Option<Instant>>,
    /// How long the tree may take to stop in order after a trip.
    pub(crate) trip_shutdown_timeout: Duration,
    shut_down: AtomicBool,
    /// The event streams; taken when the system shuts down, which ends every subscriber's.
    events: RwLock<Option<EventStreams>>,
    /// Who watches the system ([`Observers`]): until the first subscriber no event is built
    /// (a subscriber's bit stays set once it has been), and while no tally reader exists no
    /// ask is counted (one atomic load per ask instead of a lock and the channels' receiver
    /// counts).
    observers: AtomicU8,
    /// How many times the tallies were read ([`Shared::start_tally_period`]).
    tally_period: AtomicU64,
    /// How many readers of the tallies there are: while any, the `TALLIED` observer bit is
    /// set (changed under this lock, so that a reader made and one dropped do not race).
    tally_readers: Mutex<usize>,
    /// Numbers every event of the system, the tree's included.
    pub(crate) ids: EventIds,
    /// The origin of every event's `elapsed`: when the system was built.
    pub(crate) epoch: Instant,
    /// The wall-clock time at `epoch`.
    pub(crate) created_at: SystemTime,
    /// The kill switch's trip event and the ask that caused it, once it tripped.
    trip_event: OnceLock<(EventId, Option<EventId>)>,
    /// The event of each breaker's latest opening, named by the asks it refuses.
    breaker_openings: DashMap<BreakerKey, EventId>,
    /// Where durable runs are journaled, if anywhere.
    pub(crate) journal: Option<Journal>,
    /// How durably each kind of step is journaled.
    pub(crate) step_durability: StepDurability,
    /// The durable runs an ask of this process is handling.
    live_runs: DashMap<RunId, ()>,
    /// Reservations held for unfinished runs' intents without a result, found in the journal
    /// when the system was built, until each run is taken up again.
    held_reservations: DashMap<RunId, Reservation>,
    /// The tasks given up on, journaled when there is a journal.
    pub(crate) dead_letters: LetterQueue,
    /// The retries' generator and budget.
    pub(crate) retries: RetryRuntime,
    /// The loop detector and confidence tracker, if the system watches for them.
    pub(crate) semantic: Option<SemanticWatch>,
    /// The named concurrency limits handlers enter.
    pub(crate) bulkheads: crate::bulkheads::Bulkheads,
}

/// The options a [`Shared`] is made from (checked by the system's builder).
pub(crate) struct SharedOptions {
    pub(crate) default_ask_timeout: Duration,
    pub(crate) event_capacity: usize,
    pub(crate) budget: Option<Budget>,
    pub(crate) breakers: Option<BreakerRegistry>,
    pub(crate) trip_shutdown_timeout: Duration,
    pub(crate) journal: Option<Journal>,
    pub(crate) step_durability: StepDurability,
    pub(crate) retries: RetryRuntime,
    pub(crate) semantic: Option<SemanticWatch>,
    pub(crate) bulkheads: crate::bulkheads::Bulkheads,
}

/// The system's event streams: every event, and (made for its first subscriber) every event
/// but answered asks'.
struct EventStreams {
    every: broadcast::Sender<SystemEvent>,
    unanswered: Option<broadcast::Sender<SystemEvent>>,
    /// Each stream's capacity.
    capacity: usize,
}

/// The bits of [`Shared::observers`]: who has ever subscribed, and whether tallies are read.
pub(crate) struct Observers;

impl Observers {
    /// Someone subscribed to every event.
    pub(crate) const EVERY_EVENT: u8 = 1;
    /// Someone subscribed to the events but answered asks'.
    pub(crate) const UNANSWERED: u8 = 2;
    /// Someone subscribed to either stream.
    pub(crate) const SUBSCRIBED: u8 = Self::EVERY_EVENT | Self::UNANSWERED;
    /// Someone reads the ask tallies: the asks' callers count them.
    pub(crate) const TALLIED: u8 = 4;
}

impl Shared {
    /// A system's shared part, open, with an event stream of `event_capacity` (not zero); the
    /// clock origin of its events is now.
    pub(crate) fn new(options: SharedOptions) -> Self {
        let (events, _) = broadcast::channel(options.event_capacity);
        Self {
            default_ask_timeout: options.default_ask_timeout,
            budget: options.budget,
            breakers: options.breakers,
            tripped_at: watch::channel(None).0,
            trip_shutdown_timeout: options.trip_shutdown_timeout,
            shut_down: AtomicBool::new(false),
            events: RwLock::new(Some(EventStreams {
                every: events,
                unanswered: None,
                capacity: options.event_capacity,
            })),
            observers: AtomicU8::new(0),
            tally_period: AtomicU64::new(0),
            tally_readers: Mutex::new(0),
            ids: EventIds::default(),
            epoch: Instant::now(),
            created_at: SystemTime::now(),
            trip_event: OnceLock::new(),
            breaker_openings: DashMap::new(),
            journal: options.journal,
            step_durability: options.step_durability,
            live_runs: DashMap::new(),
            held_reservations: DashMap::new(),
            dead_letters: LetterQueue::default(),
            retries: options.retries,
            semantic: options.semantic,
            bulkheads: options.bulkheads,
        }
    }

    /// Restores into the budget what the journal's unfinished runs spent and hold reserved
    /// (a process that died left them so): their steps' spend is charged once, and what their
    /// intents without a result reserved is reserved again until the run is taken up. So a new
    /// process admits asks against what was really spent, across the crash.
    pub(crate) fn restore_from_journal(&self) {
        if let Some(journal) = &self.journal {
            let letters = self
                .dead_letters
                .restore(journal.dead_letters(), journal.highest_dead_letter_id());
            tracing::info!(letters, "dead letters: restored from the journal");
        }
        let (Some(journal), Some(budget)) = (&self.journal, &self.budget) else {
            return;
        };
        for run in journal.unfinished() {
            let found = journal.with_run(&run, |record| {
                record.map(|record| {
                    let spent = Usage::from(record.spent());
                    let open = Usage::from(record.open_reservations());
                    (record.agent.clone(), spent, open)
                })
            });
            let Some((agent, spent, open)) = found else {
                continue;
            };
            if !spent.is_zero() {
                budget.charge(&agent, spent.into());
            }
            if !open.is_zero() {
                match budget.admit(&agent, open.into()) {
                    Ok(reservation) => {
                        self.held_reservations.insert(run.clone(), reservation);
                    }
                    Err(refusal) => {
                        tracing::warn!(%agent, %run, %refusal, "durable run: a reservation open before the crash could not be held again")
                    }
                }
            }
            tracing::info!(%agent, %run, tokens = spent.total_tokens(), cost_micros = spent.cost_micros, "durable run: journaled spend restored into the budget");
        }
    }

    /// The reservation held for `run` since the system was built, if any: given back when the
    /// run is asked again (its ask's own reservation covers it from there).
    pub(crate) fn take_held_reservation(&self, run: &RunId) -> Option<Reservation> {
        self.held_reservations
            .remove(run)
            .map(|(_, reservation)| reservation)
    }

    /// Marks `run` as handled by an ask of this process until the guard drops; `None` if an ask
    /// of this process handles it already.
    pub(crate) fn take_up_run(&self, run: &RunId) -> Option<LiveRun<'_>> {
        match self.live_runs.entry(run.clone()) {
            dashmap::Entry::Occupied(_) => None,
            dashmap::Entry::Vacant(vacant) => {
                vacant.insert(());
                Some(LiveRun {
                    shared: self,
                    run: run.clone(),
                })
            }
        }
    }

    /// Whether asks are admitted (neither tripped nor shut down): atomic loads only, for the
    /// call path; [`closed`](Self::closed) says why not.
    #[inline]
    pub(crate) fn is_open(&self) -> bool {
        !self.is_shut_down() && !self.budget.as_ref().is_some_and(Budget::is_tripped)
    }

    #[inline]
    pub(crate) fn is_shut_down(&self) -> bool {
        self.shut_down.load(Ordering::Acquire)
    }

    /// Marks the system shut down (no ask is admitted from now on); returns whether it was
    /// already.
    pub(crate) fn mark_shut_down(&self) -> bool {
        self.shut_down.swap(true, Ordering::AcqRel)
    }

    /// Why no ask is admitted any more, if so: the kill switch tripped, or the system shut
    /// down.
    pub(crate) fn closed(&self) -> Option<AskError> {
        if self.is_open() {
            return None;
        }
        if let Some(budget) = &self.budget {
            if budget.is_tripped() {
                if let Some(reason) = budget.kill_switch().reason() {
                    return Some(AskError::KillSwitchTripped {
                        reason: reason.clone(),
                    });
                }
            }
        }
        self.is_shut_down().then_some(AskError::ShutDown)
    }

    /// Completes when the kill switch trips (never without a budget): what a retry's wait
    /// ends early on.
    pub(crate) async fn tripped(&self) {
        if self.budget.is_none() {
            return std::future::pending().await;
        }
        let mut tripped = self.tripped_at.subscribe();
        if tripped.wait_for(Option::is_some).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Completes when a task in flight must be abandoned because the kill switch tripped, as
    /// the in-flight policy says (never, at once, or after a grace period).
    pub(crate) async fn cancelled(&self) {
        let Some(budget) = &self.budget else {
            return std::future::pending().await;
        };
        let mut tripped = self.tripped_at.subscribe();
        let at = match tripped.wait_for(Option::is_some).await {
            Ok(at) => *at,
            Err(_) => None,
        };
        match (budget.kill_switch().in_flight_policy(), at) {
            (InFlightPolicy::CancelNow, _) => {}
            (InFlightPolicy::CancelAfter(grace), Some(at)) => {
                tokio::time::sleep_until(deadline_after(at, grace)).await
            }
            _ => std::future::pending().await,
        }
    }

    /// The kill switch tripped: records when (tasks in flight are cancelled from that instant,
    /// as the policy says) and publishes the trip, caused by the ask in progress on this thread
    /// if one tripped it. Returns the trip event's id.
    pub(crate) fn record_trip(&self, report: &TripReport) -> EventId {
        self.tripped_at.send_replace(Some(Instant::now()));
        let (caused_by, path) = match crate::cause::ask_in_progress() {
            Some((ask, path)) => (Some(ask), path),
            None => (None, None),
        };
        let meta = self.meta(caused_by, path);
        let trip = meta.id;
        let _ = self.trip_event.set((trip, caused_by));
        self.publish(SystemEvent::KillSwitchTripped(KillSwitchEvent::stamped(
            meta,
            report.clone(),
        )));
        trip
    }

    /// Who watches the system: [`Observers`]' bits, zero until someone subscribes or reads the
    /// tallies.
    #[inline(always)]
    pub(crate) fn observers(&self) -> u8 {
        self.observers.load(Ordering::Acquire)
    }

    /// Whether anyone receives the events but answered asks' (so that events nobody reads
    /// are not built): any subscriber.
    #[inline]
    pub(crate) fn has_subscribers(&self) -> bool {
        self.observers() & Observers::SUBSCRIBED != 0 && self.receivers_left(false)
    }

    /// Whether anyone receives the events of asks answered without error: a subscriber to
    /// every event.
    #[inline]
    pub(crate) fn has_answered_subscribers(&self) -> bool {
        self.observers() & Observers::EVERY_EVENT != 0 && self.receivers_left(true)
    }

    /// The lineage of an ask or tell made here ([`cause::handled`](crate::cause::handled)),
    /// for its job: read only once the system has had a subscriber (one atomic load before).
    #[inline(always)]
    pub(crate) fn lineage_here(&self) -> Option<crate::cause::Lineage> {
        if self.observers.load(Ordering::Relaxed) & Observers::SUBSCRIBED != 0 {
            crate::cause::handled()
        } else {
            None
        }
    }

    /// Whether a stream has receivers: the stream of every event, or (`every_only` false)
    /// either stream.
    fn receivers_left(&self, every_only: bool) -> bool {
        let streams = self.events.read().unwrap_or_else(PoisonError::into_inner);
        streams.as_ref().is_some_and(|streams| {
            streams.every.receiver_count() > 0
                || (!every_only
                    && streams
                        .unanswered
                        .as_ref()
                        .is_some_and(|sender| sender.receiver_count() > 0))
        })
    }

    /// A new subscriber to every event; once the stream has ended, a receiver whose stream is
    /// already over.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<SystemEvent> {
        match self
            .events
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            Some(streams) => {
                self.observers
                    .fetch_or(Observers::EVERY_EVENT, Ordering::Release);
                streams.every.subscribe()
            }
            None => broadcast::channel(1).1,
        }
    }

    /// A new subscriber to every event but those of asks and tells answered without error
    /// (the stream is made on the first); once the streams have ended, a receiver whose stream
    /// is already over.
    pub(crate) fn subscribe_unanswered(&self) -> broadcast::Receiver<SystemEvent> {
        let mut streams = self.events.write().unwrap_or_else(PoisonError::into_inner);
        match streams.as_mut() {
            Some(streams) => {
                self.observers
                    .fetch_or(Observers::UNANSWERED, Ordering::Release);
                let capacity = streams.capacity;
                streams
                    .unanswered
                    .get_or_insert_with(|| broadcast::channel(capacity).0)
                    .subscribe()
            }
            None => broadcast::channel(1).1,
        }
    }

    /// A reader of the tallies more: from now on, ended asks are counted by their callers
    /// ([`LiveTally`](crate::ask_tally::LiveTally)).
    pub(crate) fn add_tally_reader(&self) {
        let mut readers = self
            .tally_readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *readers += 1;
        self.observers
            .fetch_or(Observers::TALLIED, Ordering::Release);
    }

    /// A reader of the tallies less: after the last, asks are no longer counted.
    pub(crate) fn drop_tally_reader(&self) {
        let mut readers = self
            .tally_readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *readers = readers.saturating_sub(1);
        if *readers == 0 {
            self.observers
                .fetch_and(!Observers::TALLIED, Ordering::Release);
        }
    }

    /// A new reading period begins: the next ask of each agent has its latency sampled.
    pub(crate) fn start_tally_period(&self) {
        self.tally_period.fetch_add(1, Ordering::Relaxed);
    }

    /// The number of tally readings so far: the period an ask's end is counted in.
    #[inline]
    pub(crate) fn tally_period(&self) -> u64 {
        self.tally_period.load(Ordering::Relaxed)
    }

    /// Publishes `event` to both streams.
    pub(crate) fn publish(&self, event: SystemEvent) {
        if let Some(streams) = self
            .events
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            if let Some(unanswered) = &streams.unanswered {
                if unanswered.receiver_count() > 0 {
                    let _ = unanswered.send(event.clone());
                }
            }
            let _ = streams.every.send(event);
        }
    }

    /// Publishes the event of an ask or tell answered without error: to the stream of every
    /// event only.
    pub(crate) fn publish_answered(&self, event: SystemEvent) {
        if let Some(streams) = self
            .events
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            let _ = streams.every.send(event);
        }
    }

    /// Ends the event streams: subscribers receive what was published, then `Closed`.
    pub(crate) fn close_events(&self) {
        self.events
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }

    /// Stamps a new event: its id, its cause, the time, the path.
    pub(crate) fn meta(&self, caused_by: Option<EventId>, path: Option<ChildPath>) -> EventMeta {
        self.meta_at(self.ids.next(), caused_by, path, Instant::now())
    }

    /// Stamps an event that happened at `at`, whose id may have been assigned earlier (an
    /// ask's).
    pub(crate) fn meta_at(
        &self,
        id: EventId,
        caused_by: Option<EventId>,
        path: Option<ChildPath>,
        at: Instant,
    ) -> EventMeta {
        EventMeta {
            id,
            caused_by,
            elapsed: at.saturating_duration_since(self.epoch),
            path,
        }
    }

    /// The latest opening of the breaker of (`agent`, `task_type`), as the cause of a refusal.
    pub(crate) fn breaker_opening(&self, agent: &str, task_type: &str) -> Option<EventId> {
        self.breaker_openings
            .get(&BreakerKey::new(agent, task_type))
            .map(|opening| *opening)
    }

    /// The kill switch's trip event, as the cause of ask `ask`'s refusal: `None` if it has not
    /// tripped, or if this very ask tripped it (the trip names the ask instead).
    pub(crate) fn trip_event_causing(&self, ask: EventId) -> Option<EventId> {
        match self.trip_event.get() {
            Some(&(trip, cause)) if cause != Some(ask) => Some(trip),
            _ => None,
        }
    }

    /// Publishes a change of the dead-letter queue: `letter` was `change`d, leaving `queue_len`.
    pub(crate) fn publish_dead_letter(
        &self,
        change: DeadLetterChange,
        letter: &DeadLetter,
        queue_len: usize,
    ) {
        tracing::warn!(letter = %letter.id, agent = %letter.agent, task_type = %letter.task_type, change = ?change, queue_len, "dead letters: the queue changed");
        if self.has_subscribers() {
            let mut event = DeadLetterEvent::new(self.ids.next(), change, letter, queue_len);
            event.elapsed = Instant::now().saturating_duration_since(self.epoch);
            self.publish(SystemEvent::DeadLetter(event));
        }
    }

    /// Publishes a breaker's change of state, caused by the ask `cause` of the agent at `path`.
    pub(crate) fn publish_transition(
        &self,
        transition: &Transition,
        cause: EventId,
        path: Option<ChildPath>,
    ) {
        let meta = self.meta(Some(cause), path);
        if transition.to == BreakerState::Open {
            self.breaker_openings
                .insert(transition.key.clone(), meta.id);
        }
        self.publish(SystemEvent::Breaker(BreakerEvent::stamped(
            transition, meta,
        )));
    }
}

/// A durable run an ask of this process handles, until it drops.
pub(crate) struct LiveRun<'a> {
    shared: &'a Shared,
    run: RunId,
}

impl Drop for LiveRun<'_> {
    fn drop(&mut self) {
        self.shared.live_runs.remove(&self.run);
    }
}

/// How durably each kind of step is journaled: [`Durability::Sync`] (the default for all)
/// acknowledges a step only once its record is on disk; [`Durability::Async`] before, with
/// the loss of the steps since the last fsync as the price of a crash. A keyed or unsafe
/// effect's intent is always written synchronously: it is what keeps the effect from being
/// repeated blindly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StepDurability {
    /// The results of keyed and unsafe effects.
    pub effects: Durability,
    /// The results of model calls ([`AgentContext::model`](crate::AgentContext::model)).
    pub model_calls: Durability,
    /// The results of pure and idempotent steps.
    pub other_steps: Durability,
}

impl StepDurability {
    /// The durability of a step with `effect`, a model call or not.
    pub(crate) fn of(&self, effect: Effect, model_call: bool) -> Durability {
        match effect {
            Effect::Keyed | Effect::Unsafe => self.effects,
            _ if model_call => self.model_calls,
            _ => self.other_steps,
        }
    }
}
