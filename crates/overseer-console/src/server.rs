//! The HTTP server: bound on the address given, serving the probes until shut down.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::stream::{self, Stream, StreamExt};
use overseer_agent::{AskTallies, DeadLetterId, System, SystemEvent, WeakSystem};
use overseer_budget::TripReason;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::actions::{authorize, ActionError, Actions};
use crate::board::Board;
use crate::probes::{health_json, readiness_json};
use crate::snapshot::{lock, snapshot};

const PAGE: &str = include_str!("page/index.html");
const SCRIPT: &str = include_str!("page/console.js");
const STYLE: &str = include_str!("page/console.css");
/// The most events pushed to the pages per refresh: the page shows the latest few hundred,
/// and rendering every event of a busy system would cost more than the asks themselves.
const PUSHED_PER_REFRESH: usize = 200;

/// How the console answers.
#[derive(Debug, Clone)]
pub struct ConsoleConfig {
    min_healthy_share: f64,
    actions: Option<Arc<Actions>>,
    window: Duration,
    refresh: Duration,
    events_kept: usize,
    every_ask: bool,
}

impl Default for ConsoleConfig {
    /// Ready only with every agent healthy; read-only; figures over 10 s; the page refreshed
    /// every 200 ms while one is connected; the latest 500 events kept; answered asks
    /// counted, not shown one by one.
    fn default() -> Self {
        Self {
            min_healthy_share: 1.0,
            actions: None,
            window: Duration::from_secs(10),
            refresh: Duration::from_millis(200),
            events_kept: 500,
            every_ask: false,
        }
    }
}

impl ConsoleConfig {
    /// The share of agents (0 to 1) that must be healthy for `/readyz` to answer 200.
    pub fn min_healthy_share(mut self, share: f64) -> Self {
        self.min_healthy_share = share.clamp(0.0, 1.0);
        self
    }

    /// Enables the page's actions (trip the kill switch, redrive a dead letter) for the
    /// callers [`Actions`] admits. Without it the console is read-only.
    pub fn actions(mut self, actions: Actions) -> Self {
        self.actions = Some(Arc::new(actions));
        self
    }

    /// The window asks per second, latency percentiles, errors and a supervisor's recent
    /// restarts are counted over (at least 1 ms).
    pub fn window(mut self, window: Duration) -> Self {
        self.window = window.max(Duration::from_millis(1));
        self
    }

    /// How often a connected page gets a new snapshot, and the agents' ask tallies are read
    /// (at least 10 ms). No snapshot is made while no page is connected.
    pub fn refresh(mut self, every: Duration) -> Self {
        self.refresh = every.max(Duration::from_millis(10));
        self
    }

    /// How many of the latest events the console keeps for the stream and causal chains
    /// (at least 1).
    pub fn events_kept(mut self, kept: usize) -> Self {
        self.events_kept = kept.max(1);
        self
    }

    /// Whether the stream shows every answered ask too, not only failed ones. Off by default:
    /// the console then reads [`System::subscribe_unanswered`] and the agents'
    /// [`System::ask_tallies`], so that an answered ask builds no event and costs its caller
    /// an atomic increment, and a clock read for one in four (`docs/benchmarks.md`, issue 23's
    /// section). On, every answered ask builds and publishes its event (about a fifth more for
    /// the ask), and listing them for a page costs more again.
    pub fn every_ask(mut self, every_ask: bool) -> Self {
        self.every_ask = every_ask;
        self
    }
}

/// Why the console could not be served.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConsoleError {
    /// The address could not be bound (in use, not local, not permitted).
    #[error("the console could not listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

/// A running console: its address, and a handle to stop it.
#[derive(Debug)]
pub struct Console {
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    served: JoinHandle<()>,
    folding: JoinHandle<()>,
}

/// What every handler reads.
#[derive(Clone)]
struct Probed {
    system: WeakSystem,
    config: ConsoleConfig,
    board: Arc<Mutex<Board>>,
    /// While the console lives, the agents count their asks for it.
    tallies: Arc<AskTallies>,
    snapshots: watch::Sender<Arc<str>>,
    events: broadcast::Sender<Arc<str>>,
    stop: watch::Receiver<bool>,
}

impl Console {
    /// Serves the console of `system` on `addr` (port 0: any free port, see
    /// [`local_addr`](Self::local_addr)), on the current tokio runtime, until
    /// [`shutdown`](Self::shutdown) or the console is dropped: the page at `/`, its live
    /// stream, and the probes.
    ///
    /// # Errors
    ///
    /// [`ConsoleError::Bind`] when the address cannot be bound.
    pub async fn serve(
        system: &System,
        addr: SocketAddr,
        config: ConsoleConfig,
    ) -> Result<Console, ConsoleError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ConsoleError::Bind { addr, source })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| ConsoleError::Bind { addr, source })?;
        let (stop, stopped) = watch::channel(false);
        let (snapshots, _) = watch::channel(Arc::<str>::from("null"));
        let (events, _) = broadcast::channel(1024);
        let state = Probed {
            system: system.downgrade(),
            board: Arc::new(Mutex::new(Board::new(config.window, config.events_kept))),
            tallies: Arc::new(system.ask_tallies()),
            config,
            snapshots,
            events,
            stop: stopped.clone(),
        };
        let system_events = if state.config.every_ask {
            system.subscribe()
        } else {
            system.subscribe_unanswered()
        };
        // The first reading of the tallies: the figures' baseline.
        read_tallies(&state.tallies, &state.board);
        let folding = tokio::spawn(fold(state.clone(), system_events));
        let app = Router::new()
            .route("/", get(page))
            .route("/console.js", get(script))
            .route("/console.css", get(style))
            .route("/api/snapshot", get(snapshot_now))
            .route("/api/events", get(events_kept))
            .route("/api/chain/{id}", get(chain))
            .route("/api/stream", get(live))
            .route("/api/actions/trip", post(trip))
            .route("/api/actions/redrive/{id}", post(redrive))
            .route("/readyz", get(readyz))
            .route("/healthz", get(healthz))
            .with_state(state);
        let mut until_stopped = stopped;
        let served = tokio::spawn(async move {
            let graceful = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async move {
                let _ = until_stopped.wait_for(|stop| *stop).await;
            });
            if let Err(error) = graceful.await {
                tracing::warn!(%error, "the console stopped serving");
            }
        });
        tracing::info!(addr = %local_addr, "console serving");
        Ok(Console {
            local_addr,
            stop,
            served,
            folding,
        })
    }

    /// The address the console listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops serving: live streams end, requests in progress finish, new connections are
    /// refused.
    pub async fn shutdown(mut self) {
        self.stop.send_replace(true);
        self.folding.abort();
        let _ = (&mut self.served).await;
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        self.stop.send_replace(true);
        self.folding.abort();
    }
}

/// The least time between two reads of the event stream: a busy stream (every ask listed) is
/// read in bursts, at most this often, not woken for each event. The system's stream holds
/// 16,384 events by default, more than its asks publish in this time.
const DRAIN_EVERY: Duration = Duration::from_millis(10);

/// Folds the system's events into the board as they come (a burst in one go, at most every
/// [`DRAIN_EVERY`]) and, every refresh, reads the ask tallies and pushes the new events and a
/// snapshot to the connected pages. Ends when the system's stream closes or the console stops.
async fn fold(probed: Probed, mut system_events: broadcast::Receiver<SystemEvent>) {
    let mut refresh = tokio::time::interval(probed.config.refresh);
    refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut stop = probed.stop.clone();
    // The first event a page has not been sent yet.
    let mut unsent = 0;
    loop {
        // Cancel safety: a broadcast receiver's `recv` loses nothing when dropped unfinished.
        let received = tokio::select! {
            received = system_events.recv() => Some(received),
            _ = refresh.tick() => None,
            _ = stop.changed() => break,
        };
        let ticked = received.is_none();
        let closed =
            received.is_some_and(|first| note_burst(&probed.board, first, &mut system_events));
        if closed || ticked {
            read_tallies(&probed.tallies, &probed.board);
            unsent = push(&probed, unsent).await;
        }
        if closed {
            break;
        }
        if !ticked {
            tokio::select! {
                () = tokio::time::sleep(DRAIN_EVERY) => {}
                _ = stop.changed() => break,
            }
        }
    }
}

/// Notes `first` and whatever else the stream holds already, under one lock of the board;
/// whether the stream has closed.
fn note_burst(
    board: &Mutex<Board>,
    first: Result<SystemEvent, RecvError>,
    system_events: &mut broadcast::Receiver<SystemEvent>,
) -> bool {
    let now = Instant::now();
    let mut board = lock(board);
    let mut next = first.map_err(|error| match error {
        RecvError::Closed => TryRecvError::Closed,
        RecvError::Lagged(missed) => TryRecvError::Lagged(missed),
    });
    loop {
        match next {
            Ok(event) => board.note(event, now),
            Err(TryRecvError::Lagged(missed)) => board.missed(missed),
            Err(TryRecvError::Closed) => return true,
            Err(TryRecvError::Empty) => return false,
        }
        next = system_events.try_recv();
    }
}

/// Reads the agents' ask tallies into the board.
fn read_tallies(tallies: &AskTallies, board: &Mutex<Board>) {
    let read = tallies.read();
    lock(board).tallied(read, Instant::now());
}

/// Pushes the events from `unsent` on and a snapshot to the connected pages, if any; the
/// first event not yet pushed.
async fn push(probed: &Probed, unsent: u64) -> u64 {
    let mut next = lock(&probed.board).next_seq();
    if probed.events.receiver_count() > 0 {
        let batch = {
            let board = lock(&probed.board);
            let (events, skipped) = board.events_since(unsent, PUSHED_PER_REFRESH);
            next = board.next_seq();
            (!events.is_empty() || skipped > 0)
                .then(|| json!({ "events": events, "skipped": skipped }).to_string())
        };
        if let Some(batch) = batch {
            let _ = probed.events.send(Arc::from(batch));
        }
    }
    if probed.snapshots.receiver_count() > 0 {
        if let Some(system) = probed.system.upgrade() {
            let now = snapshot(&system, &probed.board, probed.config.actions.is_some()).await;
            probed.snapshots.send_replace(Arc::from(now.to_string()));
        }
    }
    next
}

async fn page() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], PAGE)
}

async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
}

async fn style() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE)
}

async fn snapshot_now(State(probed): State<Probed>) -> (StatusCode, Json<Value>) {
    let Some(system) = probed.system.upgrade() else {
        return gone();
    };
    read_tallies(&probed.tallies, &probed.board);
    let now = snapshot(&system, &probed.board, probed.config.actions.is_some()).await;
    (StatusCode::OK, Json(now))
}

async fn events_kept(State(probed): State<Probed>) -> Json<Value> {
    let events = lock(&probed.board).events();
    Json(json!({ "events": events }))
}

async fn chain(State(probed): State<Probed>, Path(id): Path<u64>) -> (StatusCode, Json<Value>) {
    match lock(&probed.board).chain(id) {
        Some(chain) => (StatusCode::OK, Json(json!({ "id": id, "chain": chain }))),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({ "error": "no_event", "message": format!("event {id} is not kept") })),
        ),
    }
}

/// The live stream: the kept events (`event: events`, a JSON object with the list), then
/// each refresh's new events (at most [`PUSHED_PER_REFRESH`], with how many were left out)
/// and snapshots (`event: snapshot`), until the console stops.
async fn live(State(probed): State<Probed>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let events = probed.events.subscribe();
    let mut snapshots = probed.snapshots.subscribe();
    snapshots.mark_changed();
    let backlog = json!({ "events": lock(&probed.board).events(), "skipped": 0 }).to_string();
    let backlog = [Ok(Event::default().event("events").data(backlog))];
    let stop = probed.stop.clone();
    let updates = stream::unfold(
        (snapshots, events, stop),
        |(mut snapshots, mut events, mut stop)| async move {
            loop {
                let next = tokio::select! {
                    changed = snapshots.changed() => {
                        changed.ok()?;
                        let now = Arc::clone(&snapshots.borrow_and_update());
                        if &*now == "null" {
                            continue;
                        }
                        Event::default().event("snapshot").data(&*now)
                    }
                    event = events.recv() => match event {
                        Ok(batch) => Event::default().event("events").data(&*batch),
                        Err(RecvError::Lagged(_)) => continue,
                        Err(RecvError::Closed) => return None,
                    },
                    _ = stop.changed() => return None,
                };
                return Some((Ok(next), (snapshots, events, stop)));
            }
        },
    );
    Sse::new(stream::iter(backlog).chain(updates)).keep_alive(KeepAlive::default())
}

fn refused(error: ActionError) -> Response {
    (error.status(), Json(error.body())).into_response()
}

/// `POST /api/actions/trip`: trips the kill switch by hand (reason: the body's `reason`, or
/// "tripped from the console").
async fn trip(
    State(probed): State<Probed>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if let Err(error) = authorize(probed.config.actions.as_deref(), peer, &headers) {
        return refused(error);
    }
    let Some(system) = probed.system.upgrade() else {
        return refused(ActionError::Gone);
    };
    let Some(budget) = system.budget() else {
        return refused(ActionError::NoBudget);
    };
    let reason = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|body| body["reason"].as_str().map(str::to_string))
        .unwrap_or_else(|| "tripped from the console".to_string());
    tracing::warn!(%peer, %reason, "kill switch tripped from the console");
    let outcome = budget.trip(TripReason::manual(reason));
    (
        StatusCode::OK,
        Json(json!({ "tripped": true, "outcome": format!("{outcome:?}") })),
    )
        .into_response()
}

/// `POST /api/actions/redrive/{id}`: asks a dead letter's task again of its agent.
async fn redrive(
    State(probed): State<Probed>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<u64>,
    headers: HeaderMap,
) -> Response {
    let actions = probed.config.actions.as_deref();
    if let Err(error) = authorize(actions, peer, &headers) {
        return refused(error);
    }
    let Some(system) = probed.system.upgrade() else {
        return refused(ActionError::Gone);
    };
    let Some(letter) = system.dead_letters().get(DeadLetterId(id)) else {
        return refused(ActionError::NoLetter(id));
    };
    let Some(redriver) = actions.and_then(|actions| actions.redriver(&letter.agent)) else {
        return refused(ActionError::NoRedriver(letter.agent));
    };
    tracing::info!(%peer, letter = id, agent = %letter.agent, "redrive from the console");
    match redriver(system, DeadLetterId(id)).await {
        Ok(()) => (StatusCode::OK, Json(json!({ "redriven": id }))).into_response(),
        Err(error) => refused(ActionError::RedriveFailed(error)),
    }
}

async fn readyz(State(probed): State<Probed>) -> (StatusCode, Json<Value>) {
    let Some(system) = probed.system.upgrade() else {
        return gone();
    };
    let (ready, body) = readiness_json(&system.readiness(), probed.config.min_healthy_share);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

async fn healthz(State(probed): State<Probed>) -> (StatusCode, Json<Value>) {
    let Some(system) = probed.system.upgrade() else {
        return gone();
    };
    (StatusCode::OK, Json(health_json(&system.health())))
}

fn gone() -> (StatusCode, Json<Value>) {
    let body = json!({ "ready": false, "error": "the system is gone" });
    (StatusCode::SERVICE_UNAVAILABLE, Json(body))
}
