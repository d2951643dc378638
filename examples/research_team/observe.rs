//! The research team's terminal view (issue 8, issue 23): `--observe` draws the running
//! tree, the queues and throughput, the breakers, the budget and the log while the team
//! works; `--observe-snapshot` prints the final frame as plain text and exits.
//!
//! The view itself is the library's (`overseer_observe::tui`, feature `console-tui`), which
//! attaches to any system: a `Console` folds the events and reads the system into a
//! `Snapshot`, and `tui::draw` renders it. What is this example's own: the log shows the
//! example's lines (taken from stdout) instead of the console's event lines, and the run is
//! paced for people to watch.
//!
//! The run uses a paused clock, so it would be over before anyone saw it. The live view paces
//! it: after each frame it blocks the (single) runtime thread for a short real delay, waiting
//! for a key, and the paused clock does not move while it waits. (A program without that need
//! calls `overseer_observe::tui::run(&system, options)`.)

use std::collections::VecDeque;
use std::io;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use overseer::prelude::*;
use overseer_observe::tui::{self, Console, Snapshot};
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{enable_raw_mode, EnterAlternateScreen};
use ratatui::Terminal;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

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

/// The size of a `--observe-snapshot` frame: a classic terminal's width.
const SNAPSHOT_SIZE: (u16, u16) = (80, 30);
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

/// How long to show the frame after `event` (`None`: the event changes nothing on screen).
fn pause_after(event: &SystemEvent) -> Option<Duration> {
    match event {
        SystemEvent::Lifecycle(_) => Some(NOTABLE_PAUSE),
        SystemEvent::Ask(ask) if ask.injected.is_some() => Some(NOTABLE_PAUSE),
        SystemEvent::Ask(_) => Some(ASK_PAUSE),
        SystemEvent::Breaker(_)
        | SystemEvent::BudgetWarning(_)
        | SystemEvent::KillSwitchTripped(_) => Some(NOTABLE_PAUSE),
        _ => None,
    }
}

/// The library's snapshot, with this example's log lines.
async fn snapshot(console: &mut Console, system: &System) -> Snapshot {
    let mut snapshot = console.snapshot(system).await;
    snapshot.log = captured_lines();
    snapshot
}

/// Starts observing `system` (call it before the tree starts, so every start is seen), or
/// returns `None` in [`Mode::Plain`].
pub(crate) fn start(mode: Mode, seed: u64, system: &System) -> io::Result<Option<Observing>> {
    if mode == Mode::Plain {
        return Ok(None);
    }
    start_capture();
    let mut screen = match mode {
        Mode::Live => Some(Screen::enter()?),
        _ => None,
    };
    // The questions come a minute apart (paused clock): throughput over two minutes.
    let mut console = Console::new(format!("Overseer: research team | seed {seed}"))
        .window(Duration::from_secs(120));
    let system = system.clone();
    let mut events = system.subscribe();
    let (finish, mut finished) = oneshot::channel();
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                biased;
                event = events.recv() => match event {
                    Ok(event) => {
                        console.note(&event);
                        if let (Some(screen), Some(pause)) = (screen.as_mut(), pause_after(&event)) {
                            let view = snapshot(&mut console, &system).await;
                            screen.show(&view, pause)?;
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                },
                _ = &mut finished => break,
            }
        }
        console.finish();
        let view = snapshot(&mut console, &system).await;
        match (mode, screen) {
            (Mode::Live, Some(mut screen)) => screen.show(&view, FINAL_PAUSE)?,
            _ => {
                let (width, height) = SNAPSHOT_SIZE;
                print!("{}", tui::render_text(&view, width, height));
            }
        }
        Ok(())
    });
    Ok(Some(Observing { finish, task }))
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
    fn show(&mut self, view: &Snapshot, pause: Duration) -> io::Result<()> {
        self.terminal.draw(|frame| tui::draw(frame, view))?;
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
