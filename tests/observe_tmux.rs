//! The live terminal view on a real terminal: `research_team --observe` runs in a detached
//! tmux session of 80 × 24, and the pane, captured as text, shows the tree with its queue and
//! throughput columns, the breakers and the budget. Under `CI=1` a missing tmux fails the
//! test; elsewhere it is skipped with a message. `cargo test` builds the examples first; when
//! running this file alone, build them too: `cargo build --examples && cargo test --test
//! observe_tmux`.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

/// A tmux session of this test's own, killed (by its name) when dropped.
struct Session(String);

impl Drop for Session {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.0])
            .status();
    }
}

fn tmux_available() -> bool {
    Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|out| out.status.success())
}

#[test]
fn the_live_view_under_tmux_shows_the_tree_queues_throughput_breakers_and_budget() {
    if !tmux_available() {
        assert!(
            std::env::var_os("CI").is_none_or(|v| v != "1"),
            "CI=1 but tmux is not installed: apt-get install tmux"
        );
        eprintln!("skipped: tmux not found (apt-get install tmux)");
        return;
    }
    let example = common::example("research_team");
    assert!(
        example.exists(),
        "build the examples first: {}",
        example.display()
    );
    let session = Session(format!("overseer-observe-{}", std::process::id()));
    let started = Command::new("tmux")
        .args([
            "new-session",
            "-d",
            "-s",
            &session.0,
            "-x",
            "80",
            "-y",
            "24",
        ])
        .arg(format!("{} --observe --seed 42", example.display()))
        .env("TERM", "xterm-256color")
        .status()
        .expect("tmux runs");
    assert!(started.success(), "tmux new-session failed");

    // Poll the pane until the view is up, with a deadline.
    let deadline = Instant::now() + Duration::from_secs(30);
    let wanted = [
        "research team | seed 42",
        "supervision tree",
        "queue  asks/s",
        "team/",
        "  lead",
        "researcher-1",
        "/256",
        "breakers (agent/task type)",
        "budget (process tokens)",
    ];
    let mut pane = String::new();
    while Instant::now() < deadline {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &session.0])
            .output()
            .expect("tmux capture-pane runs");
        pane = String::from_utf8_lossy(&out.stdout).into_owned();
        if wanted.iter().all(|w| pane.contains(w)) {
            break;
        }
        std::thread::yield_now();
    }
    for w in wanted {
        assert!(pane.contains(w), "missing {w:?} in the pane:\n{pane}");
    }
    assert!(
        pane.lines().all(|line| line.chars().count() <= 80),
        "{pane}"
    );
}
