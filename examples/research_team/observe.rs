//! The research team's terminal view (issue 8): `--observe` draws the running tree, the
//! breakers, the budget and the log while the team works; `--observe-snapshot` prints the
//! final frame as plain text and exits.
//!
//! Two pure steps do the work, each testable without a terminal: [`Observer::view`] reads the
//! tree, the breakers and the budget into a [`View`], and [`draw`] renders a `View` into any
//! ratatui frame. Only [`Screen`] touches the terminal.
//!
//! The run uses a paused clock, so it would be over before anyone saw it. The live view paces
//! it: after each frame it blocks the (single) runtime thread for a short real delay, waiting
//! for a key, and the paused clock does not move while it waits.

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use overseer::breaker::State;
use overseer::budget::Dimension;
use overseer::prelude::*;
use overseer::supervisor::{ChildOpError, ChildState, EventKind};
use ratatui::backend::{CrosstermBackend, TestBackend};
use ratatui::buffer::Buffer;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{enable_raw_mode, EnterAlternateScreen};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, LineGauge, Paragraph};
use ratatui::{Frame, Terminal};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How the example shows its run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// The plain log and summary on stdout.
    Plain,
    /// The live terminal view (`--observe`).
    Live,
    /// The final frame as text on stdout (`--observe-snapshot`).
    Snapshot,
}

/// The size of a `--observe-snapshot` frame.
const SNAPSHOT_SIZE: (u16, u16) = (100, 30);
/// Log lines kept for the view.
const LOG_KEPT: usize = 200;
/// How long a frame stays up after an event that changes the tree, a breaker or the budget tier.
const NOTABLE_PAUSE: Duration = Duration::from_millis(450);
/// How long a frame stays up after an ordinary ask.
const ASK_PAUSE: Duration = Duration::from_millis(120);
/// How long the final frame stays up when no key is pressed.
const FINAL_PAUSE: Duration = Duration::from_secs(2);

/// Log lines taken from stdout while a view is on (`None`: print them).
static CAPTURED: Mutex<Option<VecDeque<String>>> = Mutex::new(None);

/// From now on, log lines go to the view instead of stdout.
fn start_capture() {
    *CAPTURED.lock().unwrap_or_else(PoisonError::into_inner) = Some(VecDeque::new());
}

/// Keeps `line` for the view and returns `true`, or returns `false` when no view is on.
pub(crate) fn capture(line: &str) -> bool {
    let mut captured = CAPTURED.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(lines) = captured.as_mut() else {
        return false;
    };
    lines.push_back(line.to_string());
    if lines.len() > LOG_KEPT {
        lines.pop_front();
    }
    true
}

fn captured_lines() -> Vec<String> {
    CAPTURED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
        .map_or_else(Vec::new, |lines| lines.iter().cloned().collect())
}

/// Everything one frame shows.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct View {
    pub seed: u64,
    /// Time on the run's (paused) clock.
    pub elapsed: Duration,
    pub finished: bool,
    /// Supervisors and agents, depth first in start order.
    pub tree: Vec<TreeRow>,
    pub breakers: Vec<BreakerRow>,
    pub budget: BudgetGauge,
    /// The log, oldest first.
    pub log: Vec<String>,
}

/// One supervisor or agent.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TreeRow {
    /// 0 for the root.
    pub depth: usize,
    pub name: String,
    pub supervisor: bool,
    /// `running`, `restarting`, `not running`, or `exited while being read`.
    pub state: &'static str,
    /// Starts after the first.
    pub restarts: u32,
    /// An agent's queued tasks and its queue's capacity (`None` for a supervisor).
    pub queue: Option<(usize, usize)>,
}

/// One breaker, per (agent, task type).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BreakerRow {
    /// `agent/task_type`.
    pub key: String,
    pub state: State,
    pub consecutive_failures: u32,
    pub retry_after: Option<Duration>,
}

/// Tokens committed against the process limit.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BudgetGauge {
    pub used: u64,
    pub limit: u64,
    /// The highest tier reached, as the budget writes it (`tier 1 (70%)`).
    pub tier: Option<String>,
}

/// Folds the system's events and reads into views, and shows them.
struct Observer {
    mode: Mode,
    seed: u64,
    started: Instant,
    token_limit: u64,
    system: System,
    /// How many times each path has started.
    starts: BTreeMap<String, u32>,
}

/// A running observer; [`finish`](Self::finish) shows the last frame.
pub(crate) struct Observing {
    finish: oneshot::Sender<()>,
    task: JoinHandle<io::Result<()>>,
}

impl Observing {
    /// Shows the final frame (live: until a key or for two seconds; snapshot: on stdout). Call
    /// it before the system shuts down, while the tree can still be read.
    pub(crate) async fn finish(self) -> io::Result<()> {
        let _ = self.finish.send(());
        self.task.await.map_err(io::Error::other)?
    }
}

/// Starts observing `system` (call it before the tree starts, so every start is seen), or
/// returns `None` in [`Mode::Plain`].
pub(crate) fn start(
    mode: Mode,
    seed: u64,
    started: Instant,
    token_limit: u64,
    system: &System,
) -> io::Result<Option<Observing>> {
    if mode == Mode::Plain {
        return Ok(None);
    }
    start_capture();
    let mut screen = match mode {
        Mode::Live => Some(Screen::enter()?),
        _ => None,
    };
    let mut observer = Observer {
        mode,
        seed,
        started,
        token_limit,
        system: system.clone(),
        starts: BTreeMap::new(),
    };
    let mut events = system.subscribe();
    let (finish, mut finished) = oneshot::channel();
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                biased;
                event = events.recv() => match event {
                    Ok(event) => {
                        let pause = observer.note(&event);
                        if let (Some(screen), Some(pause)) = (screen.as_mut(), pause) {
                            let view = observer.view(false).await;
                            screen.show(&view, pause)?;
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                },
                _ = &mut finished => break,
            }
        }
        let view = observer.view(true).await;
        match (observer.mode, screen) {
            (Mode::Live, Some(mut screen)) => screen.show(&view, FINAL_PAUSE)?,
            _ => print!("{}", snapshot(&view)),
        }
        Ok(())
    });
    Ok(Some(Observing { finish, task }))
}

impl Observer {
    /// Records what `event` changes, and says how long to show the next frame (`None`: the
    /// event changes nothing on screen).
    fn note(&mut self, event: &SystemEvent) -> Option<Duration> {
        match event {
            SystemEvent::Lifecycle(event) => {
                if matches!(event.kind, EventKind::Started) {
                    *self.starts.entry(event.path.to_string()).or_default() += 1;
                }
                Some(NOTABLE_PAUSE)
            }
            SystemEvent::Ask(ask) if ask.injected.is_some() => Some(NOTABLE_PAUSE),
            SystemEvent::Ask(_) => Some(ASK_PAUSE),
            SystemEvent::Breaker(_)
            | SystemEvent::BudgetWarning(_)
            | SystemEvent::KillSwitchTripped(_) => Some(NOTABLE_PAUSE),
            _ => None,
        }
    }

    fn restarts(&self, path: &str) -> u32 {
        self.starts
            .get(path)
            .map_or(0, |starts| starts.saturating_sub(1))
    }

    /// Reads the tree, the breakers and the budget as they are now.
    async fn view(&self, finished: bool) -> View {
        let budget = self.system.budget().map(|budget| budget.process());
        View {
            seed: self.seed,
            elapsed: self.started.elapsed(),
            finished,
            tree: self.tree().await,
            breakers: self
                .system
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
                .unwrap_or_default(),
            budget: BudgetGauge {
                used: budget.map_or(0, |ledger| ledger.committed(Dimension::Tokens)),
                limit: self.token_limit,
                tier: budget
                    .and_then(|ledger| ledger.tier())
                    .map(|tier| tier.to_string()),
            },
            log: captured_lines(),
        }
    }

    /// The tree, walked with `which_children` depth first in start order.
    async fn tree(&self) -> Vec<TreeRow> {
        let Some(root) = self.system.tree().map(|tree| tree.root().clone()) else {
            return Vec::new();
        };
        let children = root.which_children().await.unwrap_or_default();
        let root_name = children
            .first()
            .and_then(|child| child.path.as_str().rsplit_once('/'))
            .map_or("(root)", |(parent, _)| parent);
        let mut rows = vec![TreeRow {
            depth: 0,
            name: root_name.to_string(),
            supervisor: true,
            state: if root.is_alive() {
                "running"
            } else {
                "not running"
            },
            restarts: self.restarts(root_name),
            queue: None,
        }];
        let queues: std::collections::HashMap<String, (usize, usize)> = self
            .system
            .queue_depths()
            .into_iter()
            .map(|depth| (depth.agent.to_string(), (depth.queued, depth.capacity)))
            .collect();
        let mut pending: Vec<_> = children.into_iter().rev().map(|c| (1, c)).collect();
        while let Some((depth, child)) = pending.pop() {
            let mut state = match child.state {
                ChildState::Running => "running",
                ChildState::Restarting => "restarting",
                ChildState::NotRunning => "not running",
            };
            let supervisor = child.supervisor();
            let mut grandchildren = Vec::new();
            if let Some(supervisor) = &supervisor {
                match supervisor.which_children().await {
                    Ok(found) => grandchildren = found,
                    Err(ChildOpError::SupervisorNotRunning) => state = "exited while being read",
                    Err(_) => state = "not answering",
                }
            }
            rows.push(TreeRow {
                depth,
                name: child.id.to_string(),
                supervisor: supervisor.is_some(),
                state,
                restarts: self.restarts(child.path.as_str()),
                queue: queues.get(child.id.as_str()).copied(),
            });
            pending.extend(grandchildren.into_iter().rev().map(|g| (depth + 1, g)));
        }
        rows
    }
}

/// Draws `view` over the whole frame: a title bar, the tree beside the breakers, the budget
/// gauge, and the log below.
pub(crate) fn draw(frame: &mut Frame<'_>, view: &View) {
    let panels = (view.tree.len().max(view.breakers.len()) as u16 + 2).max(4);
    let [title, top, budget, log] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(panels),
        Constraint::Length(3),
        Constraint::Min(3),
    ])
    .areas(frame.area());
    let [tree, breakers] =
        Layout::horizontal([Constraint::Percentage(52), Constraint::Percentage(48)]).areas(top);
    frame.render_widget(title_bar(view), title);
    frame.render_widget(tree_panel(view), tree);
    frame.render_widget(breaker_panel(view), breakers);
    frame.render_widget(budget_gauge(view), budget);
    frame.render_widget(log_panel(view, log), log);
}

fn title_bar(view: &View) -> Paragraph<'static> {
    let status = if view.finished {
        "run over"
    } else {
        "running (q quits)"
    };
    Paragraph::new(format!(
        " Overseer: research team | seed {} | t = {:.3}s | {status}",
        view.seed,
        view.elapsed.as_secs_f64()
    ))
    .style(
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

fn tree_panel(view: &View) -> Paragraph<'static> {
    let lines: Vec<Line<'static>> = view
        .tree
        .iter()
        .map(|row| {
            let name = format!(
                "{}{}{}",
                "  ".repeat(row.depth),
                row.name,
                if row.supervisor { "/" } else { "" }
            );
            let restarts = Span::styled(
                format!("restarts {}", row.restarts),
                if row.restarts > 0 {
                    Style::new().fg(Color::Yellow)
                } else {
                    Style::new().fg(Color::DarkGray)
                },
            );
            let mut spans = vec![
                Span::raw(format!("{name:<18} ")),
                Span::styled(format!("{:<11} ", row.state), state_style(row.state)),
                restarts,
            ];
            if let Some((queued, capacity)) = row.queue {
                // The depth alone (the panel is narrow); yellow from half the capacity: the
                // agent is falling behind, and asks past its capacity are shed.
                let style = if queued * 2 >= capacity {
                    Style::new().fg(Color::Yellow)
                } else {
                    Style::new().fg(Color::DarkGray)
                };
                spans.push(Span::styled(format!(" queue {queued}"), style));
            }
            Line::from(spans)
        })
        .collect();
    Paragraph::new(lines).block(Block::bordered().title(" supervision tree "))
}

fn breaker_panel(view: &View) -> Paragraph<'static> {
    let lines: Vec<Line<'static>> = if view.breakers.is_empty() {
        vec![Line::from("(no calls yet)")]
    } else {
        view.breakers
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
                    Span::raw(format!("{:<20} ", row.key)),
                    Span::styled(
                        format!("{:<10} ", row.state.as_str()),
                        state_style(row.state.as_str()),
                    ),
                    Span::styled(detail, Style::new().fg(Color::DarkGray)),
                ])
            })
            .collect()
    };
    Paragraph::new(lines).block(Block::bordered().title(" breakers (agent/task type) "))
}

fn budget_gauge(view: &View) -> LineGauge<'static> {
    let BudgetGauge { used, limit, tier } = &view.budget;
    let ratio = if *limit == 0 {
        0.0
    } else {
        (*used as f64 / *limit as f64).clamp(0.0, 1.0)
    };
    let color = match tier {
        None => Color::Green,
        Some(_) if ratio < 0.85 => Color::Yellow,
        Some(_) => Color::Red,
    };
    LineGauge::default()
        .block(Block::bordered().title(" budget (process tokens) "))
        .label(format!(
            "{used} of {limit} tokens ({}%), {} ",
            used * 100 / (*limit).max(1),
            tier.as_deref().unwrap_or("below the first tier")
        ))
        .ratio(ratio)
        .line_set(symbols::line::THICK)
        .filled_style(Style::new().fg(color))
        .unfilled_style(Style::new().fg(Color::DarkGray))
}

fn log_panel(view: &View, area: Rect) -> Paragraph<'static> {
    let shown = usize::from(area.height.saturating_sub(2));
    let first = view.log.len().saturating_sub(shown);
    let lines: Vec<Line<'static>> = view.log[first..]
        .iter()
        .map(|line| {
            let style = if line.contains("] crash") || line.contains("] escalate") {
                Style::new().fg(Color::Red)
            } else if line.contains("] breaker") || line.contains("] budget") {
                Style::new().fg(Color::Yellow)
            } else if line.contains("] restart") {
                Style::new().fg(Color::Cyan)
            } else {
                Style::new()
            };
            Line::styled(line.clone(), style)
        })
        .collect();
    Paragraph::new(lines).block(Block::bordered().title(" log "))
}

/// `view` drawn on a [`SNAPSHOT_SIZE`] test backend, as plain text.
pub(crate) fn snapshot(view: &View) -> String {
    let (width, height) = SNAPSHOT_SIZE;
    let mut terminal =
        Terminal::new(TestBackend::new(width, height)).expect("a test backend never fails");
    terminal
        .draw(|frame| draw(frame, view))
        .expect("a test backend never fails");
    buffer_text(terminal.backend().buffer())
}

/// A buffer's symbols, one line per row, trailing blanks trimmed.
fn buffer_text(buffer: &Buffer) -> String {
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

/// The terminal in raw mode on the alternate screen, restored when dropped, on a real panic,
/// and before quitting on `q`.
struct Screen {
    terminal: Terminal<CrosstermBackend<io::Stdout>>,
}

impl Screen {
    fn enter() -> io::Result<Self> {
        // Injected panics are part of the show; anything else restores the terminal before
        // it is reported. (ratatui's `init` would restore on every panic, injected ones too.)
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !info.to_string().contains("injected") {
                ratatui::restore();
            }
            previous(info);
        }));
        enable_raw_mode()?;
        execute!(io::stdout(), EnterAlternateScreen)?;
        let mut terminal = Terminal::new(CrosstermBackend::new(io::stdout()))?;
        terminal.clear()?;
        Ok(Self { terminal })
    }

    /// Draws `view`, then holds it for `pause`; quits the program on `q`, Esc or Ctrl-C, and
    /// ends the pause on any key once the run is over.
    fn show(&mut self, view: &View, pause: Duration) -> io::Result<()> {
        self.terminal.draw(|frame| draw(frame, view))?;
        let until = std::time::Instant::now() + pause;
        loop {
            let left = until.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() || !event::poll(left)? {
                return Ok(());
            }
            if let Event::Key(key) = event::read()? {
                if key.kind != KeyEventKind::Press {
                    continue;
                }
                let ctrl_c =
                    key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL);
                if matches!(key.code, KeyCode::Char('q') | KeyCode::Esc) || ctrl_c {
                    self.leave();
                    std::process::exit(0);
                }
                if view.finished {
                    return Ok(());
                }
            }
        }
    }

    fn leave(&mut self) {
        let _ = self.terminal.show_cursor();
        ratatui::restore();
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        self.leave();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(depth: usize, name: &str, supervisor: bool, restarts: u32) -> TreeRow {
        TreeRow {
            depth,
            name: name.to_string(),
            supervisor,
            state: "running",
            restarts,
            queue: (!supervisor).then_some((0, 256)),
        }
    }

    fn view() -> View {
        View {
            seed: 42,
            elapsed: Duration::from_millis(240_500),
            finished: true,
            tree: vec![
                row(0, "team", true, 0),
                row(1, "lead", false, 0),
                row(1, "researchers", true, 1),
                row(2, "researcher-1", false, 2),
            ],
            breakers: vec![BreakerRow {
                key: "citations/verify".to_string(),
                state: State::Open,
                consecutive_failures: 0,
                retry_after: Some(Duration::from_secs(30)),
            }],
            budget: BudgetGauge {
                used: 600,
                limit: 800,
                tier: Some("tier 1 (70%)".to_string()),
            },
            log: (0..40).map(|n| format!("line {n}")).collect(),
        }
    }

    #[test]
    fn a_frame_shows_the_tree_the_breakers_the_budget_and_the_latest_log_lines() {
        let text = snapshot(&view());
        assert_eq!(text.lines().count(), 30);
        assert!(text.contains("seed 42 | t = 240.500s"), "{text}");
        assert!(text.contains("    researcher-1"), "{text}");
        assert!(text.contains("restarts 2"), "{text}");
        assert!(text.contains("citations/verify"), "{text}");
        assert!(text.contains("open       probe in 30s"), "{text}");
        assert!(
            text.contains("600 of 800 tokens (75%), tier 1 (70%)"),
            "{text}"
        );
        assert!(text.contains("line 39"), "{text}");
        assert!(!text.contains("line 0\n"), "old lines scroll away:\n{text}");
    }

    #[test]
    fn captured_lines_are_kept_up_to_the_limit() {
        start_capture();
        for n in 0..LOG_KEPT + 5 {
            assert!(capture(&format!("line {n}")));
        }
        let lines = captured_lines();
        assert_eq!(lines.len(), LOG_KEPT);
        assert_eq!(lines[0], "line 5");
    }
}
