//! A live terminal view of any running system (feature `console-tui`): the supervision tree
//! with each node's state, restarts, queue depth and throughput; the circuit breakers; the
//! process budget; and the latest events.
//!
//! [`run`] attaches to a system and draws until the system shuts down or `q` is pressed.
//! The parts are public for programs that draw on their own terms (a paced demo, a text
//! snapshot): a [`Console`] folds the event stream and reads the system into a
//! [`Snapshot`], [`draw`] renders a snapshot into any ratatui frame, and [`render_text`]
//! draws one as plain text.
//!
//! The view fits 80 columns: below 100 the panels are stacked, and every line is wrapped at
//! word boundaries, so no word is cut at the right edge.
//!
//! ```
//! use overseer_observe::tui::{render_text, Console};
//! use overseer_agent::prelude::*;
//! use overseer_supervisor::prelude::*;
//! use std::time::Duration;
//!
//! struct Echo;
//! impl Agent for Echo {
//!     type Task = String;
//!     type Output = String;
//!     async fn handle(&mut self, _: &mut AgentContext, task: String) -> Result<String, AgentError> {
//!         Ok(task)
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let system = System::builder().build()?;
//! let mut console = Console::new("echo demo");
//! let mut events = system.subscribe();
//! system
//!     .start(SupervisorSpec::one_for_one("root").child(system.agent(AgentSpec::new("echo", || Echo))?))
//!     .await?;
//! system.agent_ref::<Echo>("echo")?.ask("hi".to_string()).await?;
//! while let Ok(event) = events.try_recv() {
//!     console.note(&event);
//! }
//! let frame = render_text(&console.snapshot(&system).await, 80, 24);
//! assert!(frame.contains("echo demo"));
//! assert!(frame.lines().any(|line| line.contains("echo") && line.contains("0/256")));
//! system.shutdown(Duration::from_secs(5)).await?;
//! # Ok(())
//! # }
//! ```

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io;
use std::time::Duration;

use overseer_agent::{AskOutcome, NodeKind, NodeState, System, SystemEvent};
use overseer_breaker::State;
use overseer_budget::Dimension;
use overseer_supervisor::EventKind;
use ratatui::backend::{CrosstermBackend, TestBackend};
use ratatui::buffer::Buffer;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, LineGauge, Paragraph, Wrap};
use ratatui::{Frame, Terminal};
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

/// Event lines a [`Console`] keeps.
const LOG_KEPT: usize = 200;
/// Below this width the tree and the breakers are stacked instead of side by side.
const SIDE_BY_SIDE_WIDTH: u16 = 100;

/// Everything one frame shows: what [`Console::snapshot`] reads and [`draw`] renders.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Snapshot {
    /// The title bar's text (the system's name, a seed, ...).
    pub title: String,
    /// Time since the console was made (tokio clock).
    pub elapsed: Duration,
    /// The system has shut down, or the program says the run is over.
    pub finished: bool,
    /// Supervisors and agents, depth first in start order.
    pub tree: Vec<TreeRow>,
    /// The breakers, by `agent/task_type`.
    pub breakers: Vec<BreakerRow>,
    /// The process budget's tokens, if the system has a budget.
    pub budget: Option<BudgetGauge>,
    /// The log, oldest first: the console's event lines, or lines of the program's own.
    pub log: Vec<String>,
}

/// One supervisor or agent of the tree.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TreeRow {
    /// 0 for the root.
    pub depth: usize,
    /// The child id (the root: its name).
    pub name: String,
    /// A supervisor (drawn with a trailing `/`).
    pub supervisor: bool,
    /// `running`, `restarting`, `not running`, `exited` (while being read), `silent`, or, for
    /// a running agent whose health check failed, `unhealthy`.
    pub state: &'static str,
    /// Restarts (starts caused by a stop), as the console saw them.
    pub restarts: u32,
    /// An agent's queued tasks and its queue's capacity (`None` for a supervisor).
    pub queue: Option<(usize, usize)>,
    /// An agent's finished asks per second over the console's window (`None` for a
    /// supervisor).
    pub asks_per_sec: Option<f64>,
    /// The last progress an agent's handler reported (`AgentContext::progress`), and how long
    /// ago it last beat when its tasks are watched by a heartbeat timeout.
    pub progress: Option<(String, Option<Duration>)>,
    /// A supervisor's restart intensity: the restarts that count now, the most it tolerates
    /// in its period, and the period (`None` for an agent, and a supervisor that did not
    /// answer).
    pub intensity: Option<(u32, u32, Duration)>,
}

impl TreeRow {
    /// A row with no restarts, queue or throughput.
    pub fn new(
        depth: usize,
        name: impl Into<String>,
        supervisor: bool,
        state: &'static str,
    ) -> Self {
        Self {
            depth,
            name: name.into(),
            supervisor,
            state,
            restarts: 0,
            queue: None,
            asks_per_sec: None,
            progress: None,
            intensity: None,
        }
    }

    /// The row with a supervisor's restart intensity: `restarts_in_window` of
    /// `max_restarts` in `period`.
    pub fn intensity(
        mut self,
        restarts_in_window: u32,
        max_restarts: u32,
        period: Duration,
    ) -> Self {
        self.intensity = Some((restarts_in_window, max_restarts, period));
        self
    }

    /// The row with `restarts`.
    pub fn restarts(mut self, restarts: u32) -> Self {
        self.restarts = restarts;
        self
    }

    /// The row with an agent's last progress, and the time since its last beat.
    pub fn progress(
        mut self,
        progress: impl Into<String>,
        since_last_beat: Option<Duration>,
    ) -> Self {
        self.progress = Some((progress.into(), since_last_beat));
        self
    }

    /// The row with an agent's queue and throughput.
    pub fn agent(mut self, queued: usize, capacity: usize, asks_per_sec: f64) -> Self {
        self.queue = Some((queued, capacity));
        self.asks_per_sec = Some(asks_per_sec);
        self
    }
}

/// One breaker, per (agent, task type).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct BreakerRow {
    /// `agent/task_type`.
    pub key: String,
    /// Its state.
    pub state: State,
    /// Failures in a row.
    pub consecutive_failures: u32,
    /// Time until it half-opens, when open.
    pub retry_after: Option<Duration>,
}

impl BreakerRow {
    /// A breaker row.
    pub fn new(
        key: impl Into<String>,
        state: State,
        consecutive_failures: u32,
        retry_after: Option<Duration>,
    ) -> Self {
        Self {
            key: key.into(),
            state,
            consecutive_failures,
            retry_after,
        }
    }
}

/// The process budget's tokens.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct BudgetGauge {
    /// Committed.
    pub used: u64,
    /// The limit (`None`: unlimited).
    pub limit: Option<u64>,
    /// The highest tier reached, as the budget writes it (`tier 1 (70%)`).
    pub tier: Option<String>,
}

impl BudgetGauge {
    /// A gauge of `used` tokens against `limit`.
    pub fn new(used: u64, limit: Option<u64>, tier: Option<String>) -> Self {
        Self { used, limit, tier }
    }
}

/// Folds a system's events into what a frame needs beyond the system's own reads: starts
/// per path (for restarts), recent asks per agent (for throughput) and an event log.
#[derive(Debug)]
pub struct Console {
    title: String,
    started: Instant,
    window: Duration,
    /// Restarts per path: starts caused by a stop the console saw.
    starts: BTreeMap<String, u32>,
    /// The ids of the latest stops seen (bounded), for telling a restart from a first start.
    stops: VecDeque<overseer_supervisor::EventId>,
    asks: HashMap<String, VecDeque<Instant>>,
    log: VecDeque<String>,
    finished: bool,
}

/// How many stop ids the console keeps to recognise the restarts that answer them: a restart
/// follows its stop at once, so a short memory is enough.
const STOPS_KEPT: usize = 1024;

impl Console {
    /// A console titled `title`, with a 10-second throughput window.
    pub fn new(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            started: Instant::now(),
            window: Duration::from_secs(10),
            starts: BTreeMap::new(),
            stops: VecDeque::new(),
            asks: HashMap::new(),
            log: VecDeque::new(),
            finished: false,
        }
    }

    /// Throughput is asks finished in the last `window` (at least 1 ms), per second.
    pub fn window(mut self, window: Duration) -> Self {
        self.window = window.max(Duration::from_millis(1));
        self
    }

    /// Records what `event` changes, at the present instant; `true` if the frame changes.
    pub fn note(&mut self, event: &SystemEvent) -> bool {
        self.note_at(event, Instant::now())
    }

    /// [`note`](Self::note) at `now`.
    pub fn note_at(&mut self, event: &SystemEvent, now: Instant) -> bool {
        let line = match event {
            SystemEvent::Lifecycle(event) => {
                let path = event.path.to_string();
                match event.kind {
                    // A restart is a start caused by a stop (a first start is caused by its
                    // supervisor's): counted even by a console attached after the first start.
                    EventKind::Started => {
                        let restart = event
                            .caused_by
                            .is_some_and(|cause| self.stops.contains(&cause));
                        restart.then(|| {
                            *self.starts.entry(path.clone()).or_default() += 1;
                            format!("restart {path}")
                        })
                    }
                    _ => {
                        if matches!(event.kind, EventKind::Stopped { .. }) {
                            if self.stops.len() == STOPS_KEPT {
                                self.stops.pop_front();
                            }
                            self.stops.push_back(event.id);
                        }
                        Some(format!("{path} {}", event.kind))
                    }
                }
            }
            SystemEvent::Ask(ask) => {
                let agent = ask.agent.to_string();
                let times = self.asks.entry(agent.clone()).or_default();
                times.push_back(now);
                Self::expire(times, now, self.window);
                match &ask.outcome {
                    AskOutcome::Ok => None,
                    AskOutcome::Error { kind, .. } => {
                        Some(format!("{agent} {} failed: {kind}", ask.task_type))
                    }
                }
            }
            SystemEvent::Breaker(moved) => Some(format!(
                "breaker {}/{}: {} -> {}",
                moved.agent, moved.task_type, moved.from, moved.to
            )),
            SystemEvent::BudgetWarning(warning) => Some(format!("budget {}", warning.warning)),
            SystemEvent::KillSwitchTripped(_) => Some("kill switch tripped".to_string()),
            _ => return false,
        };
        if let Some(line) = line {
            let at = event.elapsed().as_secs_f64();
            self.log.push_back(format!("[{at:.3}s] {line}"));
            if self.log.len() > LOG_KEPT {
                self.log.pop_front();
            }
        }
        true
    }

    fn expire(times: &mut VecDeque<Instant>, now: Instant, window: Duration) {
        while times
            .front()
            .is_some_and(|at| now.saturating_duration_since(*at) > window)
        {
            times.pop_front();
        }
    }

    /// Marks the run over: the title bar says so.
    pub fn finish(&mut self) {
        self.finished = true;
    }

    /// `agent`'s asks per second at `now`: those finished within the window, over the
    /// window (or over the time since the console was made, if shorter).
    pub fn asks_per_sec_at(&mut self, agent: &str, now: Instant) -> f64 {
        let Some(times) = self.asks.get_mut(agent) else {
            return 0.0;
        };
        Self::expire(times, now, self.window);
        let span = now
            .saturating_duration_since(self.started)
            .min(self.window)
            .max(Duration::from_millis(1));
        times.len() as f64 / span.as_secs_f64()
    }

    /// Restarts of `path` the console saw (starts caused by a stop).
    pub fn restarts(&self, path: &str) -> u32 {
        self.starts.get(path).copied().unwrap_or(0)
    }

    /// Reads the tree, the queues, the breakers and the budget as they are now, with the
    /// console's restarts, throughput and log.
    pub async fn snapshot(&mut self, system: &System) -> Snapshot {
        let now = Instant::now();
        let budget = system.budget().map(|budget| {
            let ledger = budget.process();
            let status = ledger.status();
            let tokens = status.dimension(Dimension::Tokens);
            BudgetGauge {
                used: tokens.committed,
                limit: tokens.limit,
                tier: ledger.tier().map(|tier| tier.to_string()),
            }
        });
        let breakers = system
            .breakers()
            .map(|registry| {
                let mut rows: Vec<BreakerRow> = registry
                    .snapshot()
                    .into_iter()
                    .map(|breaker| BreakerRow {
                        key: breaker.key.to_string(),
                        state: breaker.state,
                        consecutive_failures: breaker.consecutive_failures,
                        retry_after: breaker.retry_after,
                    })
                    .collect();
                rows.sort_by(|a, b| a.key.cmp(&b.key));
                rows
            })
            .unwrap_or_default();
        Snapshot {
            title: self.title.clone(),
            elapsed: now.saturating_duration_since(self.started),
            finished: self.finished || system.is_shut_down(),
            tree: self.tree(system, now).await,
            breakers,
            budget,
            log: self.log.iter().cloned().collect(),
        }
    }

    /// The tree depth first in start order ([`System::tree_snapshot`]), with the restarts
    /// and throughput this console saw.
    async fn tree(&mut self, system: &System, now: Instant) -> Vec<TreeRow> {
        let nodes = system.tree_snapshot().await;
        let mut rows = Vec::with_capacity(nodes.len());
        for node in nodes {
            let mut row = TreeRow::new(
                node.depth,
                node.name.clone(),
                node.is_supervisor(),
                node.state.as_str(),
            )
            .restarts(self.restarts(node.path.as_str()));
            match &node.kind {
                NodeKind::Supervisor {
                    status: Some(status),
                } => {
                    row = row.intensity(
                        status.restarts_in_window,
                        status.max_restarts,
                        status.period,
                    );
                }
                NodeKind::Agent {
                    queued,
                    capacity,
                    health,
                } => {
                    let rate = self.asks_per_sec_at(&node.name, now);
                    row = row.agent(*queued, *capacity, rate);
                    if let Some(agent) = health {
                        if node.state == NodeState::Running && !agent.health.is_serving() {
                            row.state = "unhealthy";
                        }
                        if let Some(progress) = &agent.progress {
                            row = row.progress(progress.to_string(), agent.since_last_beat);
                        }
                    }
                }
                _ => {}
            }
            rows.push(row);
        }
        rows
    }
}

/// Draws `snapshot` over the whole frame: a title bar; the tree beside the breakers (from
/// 100 columns) or above them; the budget gauge; the log below, its latest lines.
pub fn draw(frame: &mut Frame<'_>, snapshot: &Snapshot) {
    let area = frame.area();
    let side_by_side = area.width >= SIDE_BY_SIDE_WIDTH;
    let inner = |width: u16| usize::from(width.saturating_sub(2));
    let (tree_width, breaker_width) = if side_by_side {
        let tree = area.width * 52 / 100;
        (tree, area.width - tree)
    } else {
        (area.width, area.width)
    };
    let tree_lines = tree_lines(snapshot, inner(tree_width));
    let breaker_lines = breaker_lines(snapshot);
    let tree_height = wrapped_height(&tree_lines, inner(tree_width)) + 2;
    let breaker_height = wrapped_height(&breaker_lines, inner(breaker_width)) + 2;
    let budget_height = if snapshot.budget.is_some() { 3 } else { 0 };
    let panels = if side_by_side {
        vec![Constraint::Length(tree_height.max(breaker_height))]
    } else {
        vec![
            Constraint::Length(tree_height),
            Constraint::Length(breaker_height),
        ]
    };
    let mut constraints = vec![Constraint::Length(1)];
    constraints.extend(panels);
    constraints.push(Constraint::Length(budget_height));
    constraints.push(Constraint::Min(3));
    let areas = Layout::vertical(constraints).split(area);
    let (title, tree, breakers, budget, log) = if side_by_side {
        let [tree, breakers] = Layout::horizontal([
            Constraint::Length(tree_width),
            Constraint::Length(breaker_width),
        ])
        .areas(areas[1]);
        (areas[0], tree, breakers, areas[2], areas[3])
    } else {
        (areas[0], areas[1], areas[2], areas[3], areas[4])
    };
    frame.render_widget(title_bar(snapshot, title.width), title);
    frame.render_widget(panel(tree_lines, " supervision tree "), tree);
    frame.render_widget(
        panel(breaker_lines, " breakers (agent/task type) "),
        breakers,
    );
    if let Some(gauge) = &snapshot.budget {
        frame.render_widget(budget_gauge(gauge), budget);
    }
    frame.render_widget(log_panel(snapshot, log), log);
}

/// `snapshot` drawn on a `width` × `height` test backend, as plain text: one line per row,
/// trailing blanks trimmed.
pub fn render_text(snapshot: &Snapshot, width: u16, height: u16) -> String {
    let Ok(mut terminal) = Terminal::new(TestBackend::new(width, height)) else {
        return String::new();
    };
    if terminal.draw(|frame| draw(frame, snapshot)).is_err() {
        return String::new();
    }
    buffer_text(terminal.backend().buffer())
}

/// A buffer's symbols, one line per row, trailing blanks trimmed.
pub fn buffer_text(buffer: &Buffer) -> String {
    let area = buffer.area;
    let mut text = String::new();
    for y in area.top()..area.bottom() {
        let row: String = (area.left()..area.right())
            .map(|x| buffer[(x, y)].symbol())
            .collect();
        text.push_str(row.trim_end());
        text.push('\n');
    }
    text
}

fn panel(lines: Vec<Line<'static>>, title: &'static str) -> Paragraph<'static> {
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .block(Block::bordered().title(title))
}

/// Rows `lines` take in `width` columns, wrapped at word boundaries (as [`Wrap`] does).
fn wrapped_height(lines: &[Line<'_>], width: usize) -> u16 {
    let rows: usize = lines
        .iter()
        .map(|line| {
            let text: String = line.spans.iter().map(|s| s.content.as_ref()).collect();
            wrap_words(&text, width).len().max(1)
        })
        .sum();
    u16::try_from(rows.max(1)).unwrap_or(u16::MAX)
}

/// `text` in lines of at most `width` characters, broken at spaces; a word longer than
/// `width` is the only thing ever split.
pub fn wrap_words(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = Vec::new();
    let mut current = String::new();
    for word in text.split(' ') {
        let mut word = word.to_string();
        loop {
            let used = current.chars().count();
            let needed = word.chars().count() + usize::from(used > 0);
            if used + needed <= width {
                if used > 0 {
                    current.push(' ');
                }
                current.push_str(&word);
                break;
            }
            if used > 0 {
                lines.push(std::mem::take(&mut current));
                continue;
            }
            // A word wider than a whole line: split it, as nothing else can be done.
            let head: String = word.chars().take(width).collect();
            word = word.chars().skip(width).collect();
            lines.push(head);
            if word.is_empty() {
                break;
            }
        }
    }
    if !current.is_empty() || lines.is_empty() {
        lines.push(current);
    }
    lines
}

/// `text` cut at the last word that fits in `width` characters.
fn fit_words(text: &str, width: usize) -> String {
    wrap_words(text, width)
        .into_iter()
        .next()
        .unwrap_or_default()
}

fn title_bar(snapshot: &Snapshot, width: u16) -> Paragraph<'static> {
    let status = if snapshot.finished {
        "run over"
    } else {
        "running (q quits)"
    };
    let text = format!(
        " {} | t = {:.3}s | {status}",
        snapshot.title,
        snapshot.elapsed.as_secs_f64()
    );
    Paragraph::new(fit_words(&text, usize::from(width))).style(
        Style::new()
            .fg(Color::Black)
            .bg(Color::Cyan)
            .add_modifier(Modifier::BOLD),
    )
}

fn state_style(state: &str) -> Style {
    match state {
        "running" | "closed" => Style::new().fg(Color::Green),
        "restarting" | "half_open" => Style::new().fg(Color::Yellow),
        _ => Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
    }
}

/// The tree as a table: name (indented), state, restarts, queue (depth/capacity), asks/s; for a
/// supervisor, over the last two columns, its restart intensity's use (`1/3 in 10s`).
fn tree_lines(snapshot: &Snapshot, width: usize) -> Vec<Line<'static>> {
    let names: Vec<String> = snapshot
        .tree
        .iter()
        .map(|row| {
            format!(
                "{}{}{}",
                "  ".repeat(row.depth),
                row.name,
                if row.supervisor { "/" } else { "" }
            )
        })
        .collect();
    // The name column as wide as the widest name, but leaving the other columns (36) room.
    let name_width = names
        .iter()
        .map(|name| name.chars().count())
        .max()
        .unwrap_or(0)
        .max(4)
        .min(width.saturating_sub(36).max(4));
    let dim = Style::new().fg(Color::DarkGray);
    let mut lines = vec![Line::styled(
        format!(
            "{:<name_width$} {:<11} {:>3} {:>9} {:>7}",
            "name", "state", "rst", "queue", "asks/s"
        ),
        dim.add_modifier(Modifier::BOLD),
    )];
    for (row, name) in snapshot.tree.iter().zip(names) {
        let restarts_style = if row.restarts > 0 {
            Style::new().fg(Color::Yellow)
        } else {
            dim
        };
        let mut spans = vec![
            Span::raw(format!("{name:<name_width$} ")),
            Span::styled(format!("{:<11} ", row.state), state_style(row.state)),
            Span::styled(format!("{:>3}", row.restarts), restarts_style),
        ];
        if let Some((queued, capacity)) = row.queue {
            // Yellow from half the capacity: the agent is falling behind, and asks past its
            // capacity are shed.
            let style = if queued * 2 >= capacity {
                Style::new().fg(Color::Yellow)
            } else {
                dim
            };
            spans.push(Span::styled(
                format!(" {:>9}", format!("{queued}/{capacity}")),
                style,
            ));
        }
        if let Some(rate) = row.asks_per_sec {
            spans.push(Span::raw(format!(" {rate:>7.2}")));
        }
        if let Some((counted, most, period)) = row.intensity {
            // Over the queue and asks/s columns: how close the supervisor is to giving up.
            let style = if counted >= most {
                Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
            } else if counted > 0 {
                Style::new().fg(Color::Yellow)
            } else {
                dim
            };
            let used = format!("{counted}/{most} in {}s", period.as_secs());
            spans.push(Span::styled(format!(" {used:>17}"), style));
        }
        lines.push(Line::from(spans));
        if let Some((progress, since)) = &row.progress {
            let since = since.map_or_else(String::new, |since| {
                format!(", beat {:.1}s ago", since.as_secs_f64())
            });
            let indent = "  ".repeat(row.depth + 1);
            lines.push(Line::styled(
                format!("{indent}progress: {progress}{since}"),
                dim,
            ));
        }
    }
    lines
}

fn breaker_lines(snapshot: &Snapshot) -> Vec<Line<'static>> {
    if snapshot.breakers.is_empty() {
        return vec![Line::from("(no calls yet)")];
    }
    let key_width = snapshot
        .breakers
        .iter()
        .map(|row| row.key.chars().count())
        .max()
        .unwrap_or(0);
    snapshot
        .breakers
        .iter()
        .map(|row| {
            let detail = match row.retry_after {
                Some(wait) if wait.is_zero() => "probe due".to_string(),
                Some(wait) => format!("probe in {}s", wait.as_secs_f64().ceil()),
                None if row.consecutive_failures > 0 => {
                    format!("{} failed in a row", row.consecutive_failures)
                }
                None => String::new(),
            };
            Line::from(vec![
                Span::raw(format!("{:<key_width$} ", row.key)),
                Span::styled(
                    format!("{:<11} ", row.state.as_str()),
                    state_style(row.state.as_str()),
                ),
                Span::styled(detail, Style::new().fg(Color::DarkGray)),
            ])
        })
        .collect()
}

fn budget_gauge(gauge: &BudgetGauge) -> LineGauge<'static> {
    let BudgetGauge { used, limit, tier } = gauge;
    let (ratio, label) = match limit {
        Some(limit) => (
            (*used as f64 / (*limit).max(1) as f64).clamp(0.0, 1.0),
            format!(
                "{used} of {limit} tokens ({}%), {} ",
                used * 100 / (*limit).max(1),
                tier.as_deref().unwrap_or("below the first tier")
            ),
        ),
        None => (0.0, format!("{used} tokens, no limit ")),
    };
    let color = match tier {
        None => Color::Green,
        Some(_) if ratio < 0.85 => Color::Yellow,
        Some(_) => Color::Red,
    };
    LineGauge::default()
        .block(Block::bordered().title(" budget (process tokens) "))
        .label(label)
        .ratio(ratio)
        .line_set(symbols::line::THICK)
        .filled_style(Style::new().fg(color))
        .unfilled_style(Style::new().fg(Color::DarkGray))
}

/// The latest log lines that fit, each wrapped at word boundaries.
fn log_panel(snapshot: &Snapshot, area: Rect) -> Paragraph<'static> {
    let width = usize::from(area.width.saturating_sub(2));
    let shown = usize::from(area.height.saturating_sub(2));
    let mut rows: Vec<Line<'static>> = Vec::new();
    for line in snapshot.log.iter().rev() {
        let style = if line.contains("] crash") || line.contains("escalate") {
            Style::new().fg(Color::Red)
        } else if line.contains("] breaker") || line.contains("] budget") {
            Style::new().fg(Color::Yellow)
        } else if line.contains("] restart") {
            Style::new().fg(Color::Cyan)
        } else {
            Style::new()
        };
        for piece in wrap_words(line, width).into_iter().rev() {
            rows.push(Line::styled(piece, style));
        }
        if rows.len() >= shown {
            break;
        }
    }
    let first = rows.len().saturating_sub(shown);
    let mut rows: Vec<Line<'static>> = rows.drain(..).rev().collect();
    rows.drain(..first);
    Paragraph::new(rows).block(Block::new().borders(Borders::ALL).title(" log "))
}

/// What [`run`] shows and how often.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConsoleOptions {
    /// The title bar's text.
    pub title: String,
    /// How often the frame is redrawn without events (tokio clock).
    pub refresh: Duration,
}

impl Default for ConsoleOptions {
    fn default() -> Self {
        Self {
            title: "Overseer".to_string(),
            refresh: Duration::from_millis(250),
        }
    }
}

impl ConsoleOptions {
    /// Title `Overseer`, redrawn every 250 ms.
    pub fn new() -> Self {
        Self::default()
    }

    /// The title bar's text.
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = title.into();
        self
    }

    /// How often the frame is redrawn without events (at least 10 ms).
    pub fn refresh(mut self, every: Duration) -> Self {
        self.refresh = every.max(Duration::from_millis(10));
        self
    }
}

/// Attaches to `system` and draws it on the terminal (raw mode, the alternate screen) until
/// the system shuts down or `q`, Esc or Ctrl-C is pressed; then restores the terminal. The
/// frame is redrawn after events and every [`ConsoleOptions::refresh`]. Restarts are counted
/// from the moment it attaches.
///
/// # Errors
///
/// The terminal's: it cannot enter raw mode, or a write fails.
pub async fn run(system: &System, options: ConsoleOptions) -> io::Result<()> {
    let mut events = system.subscribe();
    let mut console = Console::new(options.title);
    let mut screen = Screen::enter()?;
    let mut tick = tokio::time::interval(options.refresh);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut dirty = true;
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Ok(event) => dirty |= console.note(&event),
                Err(RecvError::Lagged(_)) => dirty = true,
                Err(RecvError::Closed) => break,
            },
            _ = tick.tick() => {
                if screen.quit_pressed()? {
                    return Ok(());
                }
                if dirty || console.asks.values().any(|times| !times.is_empty()) {
                    let snapshot = console.snapshot(system).await;
                    screen.terminal.draw(|frame| draw(frame, &snapshot))?;
                    dirty = false;
                }
            }
        }
    }
    console.finish();
    let snapshot = console.snapshot(system).await;
    screen.terminal.draw(|frame| draw(frame, &snapshot))?;
    Ok(())
}

/// The terminal in raw mode on the alternate screen, restored when dropped.
struct Screen {
    terminal: Terminal<CrosstermBackend<io::Stdout>>,
}

impl Screen {
    fn enter() -> io::Result<Self> {
        enable_raw_mode()?;
        execute!(io::stdout(), EnterAlternateScreen)?;
        let mut terminal = Terminal::new(CrosstermBackend::new(io::stdout()))?;
        terminal.clear()?;
        Ok(Self { terminal })
    }

    /// Whether `q`, Esc or Ctrl-C is waiting among the pending keys (does not block).
    fn quit_pressed(&mut self) -> io::Result<bool> {
        while event::poll(Duration::ZERO)? {
            if let Event::Key(key) = event::read()? {
                if key.kind != KeyEventKind::Press {
                    continue;
                }
                let ctrl_c =
                    key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL);
                if matches!(key.code, KeyCode::Char('q') | KeyCode::Esc) || ctrl_c {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        let _ = self.terminal.show_cursor();
        let _ = disable_raw_mode();
        let _ = execute!(self.terminal.backend_mut(), LeaveAlternateScreen);
    }
}
