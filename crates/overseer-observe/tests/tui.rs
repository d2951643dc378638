//! The terminal view (`console-tui`): a frame fits 80 × 24 without cutting a word, shows
//! every key row, and a console attached to a running system shows its tree, queues and
//! throughput. Public API only; paused clock.
#![cfg(feature = "console-tui")]

use std::collections::HashSet;
use std::time::Duration;

use overseer_agent::prelude::*;
use overseer_breaker::{BreakerRegistry, State};
use overseer_observe::tui::{render_text, wrap_words, BreakerRow, BudgetGauge, Console, TreeRow};
use overseer_supervisor::prelude::*;

/// A snapshot as a long run leaves it: nested supervisors, restarts, open breakers, a budget
/// tier and log lines far wider than 80 columns.
async fn busy_snapshot() -> overseer_observe::tui::Snapshot {
    let system = System::builder().build().unwrap();
    let mut snapshot = Console::new("research team | seed 42")
        .snapshot(&system)
        .await;
    snapshot.tree = vec![
        TreeRow::new(0, "team", true, "running").intensity(0, 5, Duration::from_secs(60)),
        TreeRow::new(1, "lead", false, "running").agent(0, 256, 1.5),
        TreeRow::new(1, "researchers", true, "running")
            .restarts(1)
            .intensity(1, 3, Duration::from_secs(10)),
        TreeRow::new(2, "researcher-1", false, "running")
            .restarts(2)
            .agent(3, 256, 12.25),
        TreeRow::new(2, "researcher-3", false, "restarting")
            .restarts(1)
            .agent(200, 256, 0.0),
        TreeRow::new(1, "citations", false, "running").agent(0, 16, 0.4),
    ];
    snapshot.breakers = vec![
        BreakerRow::new(
            "citations/verify",
            State::Open,
            0,
            Some(Duration::from_secs(30)),
        ),
        BreakerRow::new(
            "researcher-3/search",
            State::HalfOpen,
            0,
            Some(Duration::ZERO),
        ),
        BreakerRow::new("lead/investigate", State::Closed, 2, None),
    ];
    snapshot.budget = Some(BudgetGauge::new(
        578,
        Some(800),
        Some("tier 1 (70%)".into()),
    ));
    snapshot.log = (0..12)
        .map(|n| {
            format!(
                "[{n}.000s] answered  3 findings (from researcher-1, researcher-2, \
                 researcher-1), 3 cited, 0 verified, and the lead discards a bad finding \
                 from researcher-3 number {n}"
            )
        })
        .collect();
    system.shutdown(Duration::from_secs(5)).await.unwrap();
    snapshot
}

/// The words a frame may show: those of the snapshot's texts and the view's own labels.
fn known_words(snapshot: &overseer_observe::tui::Snapshot) -> HashSet<String> {
    let mut texts: Vec<String> = snapshot.log.clone();
    texts.push(snapshot.title.clone());
    texts.extend(
        snapshot
            .tree
            .iter()
            .map(|row| format!("{}/ {}", row.name, row.state)),
    );
    texts.extend(snapshot.breakers.iter().map(|row| row.key.clone()));
    texts.push(
        "supervision tree breakers (agent/task type) budget (process tokens) log name state \
         rst queue asks/s open half_open closed probe due in failed a row of tokens run over \
         1/3 0/5 10s 60s \
         running (q quits) t ="
            .to_string(),
    );
    texts
        .iter()
        .flat_map(|text| {
            text.split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// A token is whole if it is a known word or made of digits and punctuation (a figure).
fn is_whole(token: &str, known: &HashSet<String>) -> bool {
    known.contains(token)
        || token
            .chars()
            .all(|c| c.is_ascii_digit() || ".,/%()[]s=|:-".contains(c))
}

#[tokio::test(start_paused = true)]
async fn an_80_by_24_frame_cuts_no_word_at_the_right_edge_and_shows_every_key_row() {
    let snapshot = busy_snapshot().await;
    let frame = render_text(&snapshot, 80, 24);
    let lines: Vec<&str> = frame.lines().collect();
    assert_eq!(lines.len(), 24, "{frame}");
    assert!(
        lines.iter().all(|line| line.chars().count() <= 80),
        "{frame}"
    );
    let known = known_words(&snapshot);
    for line in &lines {
        // The last token before the right border (or the line's end) is a whole word.
        let inside = line.trim_end_matches(['│', '┐', '┘', '─']).trim_end();
        let Some(last) = inside
            .split(|c: char| c.is_whitespace() || "│┌└┐┘─━".contains(c))
            .rfind(|token| !token.is_empty())
        else {
            continue;
        };
        assert!(
            is_whole(last, &known),
            "{last:?} is a cut word in {line:?}:\n{frame}"
        );
    }
    for expected in [
        "research team | seed 42",
        "supervision tree",
        "name",
        "asks/s",
        "team/",
        "  researchers/",
        "    researcher-1",
        "breakers (agent/task type)",
        "citations/verify",
        "budget (process tokens)",
        "578 of 800 tokens (72%), tier 1 (70%)",
        " log ",
        "researcher-3 number 11",
    ] {
        assert!(frame.contains(expected), "missing {expected:?}:\n{frame}");
    }
    let row = |name: &str| {
        *lines
            .iter()
            .find(|line| line.contains(name))
            .unwrap_or_else(|| panic!("no {name} row:\n{frame}"))
    };
    let researcher = row("    researcher-1");
    for cell in ["running", " 2 ", "3/256", "12.25"] {
        assert!(researcher.contains(cell), "{cell} in {researcher:?}");
    }
    assert!(row("researcher-3 ").contains("200/256"), "{frame}");
    assert!(row("  researchers/").contains("1/3 in 10s"), "{frame}");
    assert!(row("team/").contains("0/5 in 60s"), "{frame}");
    assert!(row("citations/verify").contains("probe in 30s"), "{frame}");
}

#[test]
fn words_wrap_at_spaces_and_only_a_word_wider_than_a_line_is_split() {
    assert_eq!(
        wrap_words("a supervision tree restarts", 12),
        vec!["a", "supervision", "tree", "restarts"]
            .into_iter()
            .fold(Vec::<String>::new(), |mut lines, word| {
                match lines.last_mut() {
                    Some(last) if last.len() + 1 + word.len() <= 12 => {
                        last.push(' ');
                        last.push_str(word);
                    }
                    _ => lines.push(word.to_string()),
                }
                lines
            })
    );
    assert_eq!(wrap_words("abcdefgh", 3), vec!["abc", "def", "gh"]);
    assert_eq!(wrap_words("", 10), vec![""]);
}

/// Answers each task after a tick of the (paused) clock.
struct Worker;

impl Agent for Worker {
    type Task = u32;
    type Output = u32;

    fn task_type(_: &u32) -> &'static str {
        "work"
    }

    async fn handle(&mut self, _: &mut AgentContext, task: u32) -> Result<u32, AgentError> {
        tokio::time::sleep(Duration::from_millis(100)).await;
        Ok(task)
    }
}

#[tokio::test(start_paused = true)]
async fn a_console_attached_to_a_system_shows_its_tree_queues_throughput_and_breakers() {
    let system = System::builder()
        .breakers(BreakerRegistry::default())
        .build()
        .unwrap();
    let mut console = Console::new("live");
    let mut events = system.subscribe();
    system
        .start(
            SupervisorSpec::one_for_one("root")
                .child(system.agent(AgentSpec::new("worker", || Worker)).unwrap()),
        )
        .await
        .unwrap();
    let worker = system.agent_ref::<Worker>("worker").unwrap();
    for n in 0..20 {
        worker.ask(n).await.unwrap();
    }
    while let Ok(event) = events.try_recv() {
        console.note(&event);
    }
    let snapshot = console.snapshot(&system).await;
    let row = snapshot
        .tree
        .iter()
        .find(|row| row.name == "worker")
        .expect("a worker row");
    assert_eq!(row.queue, Some((0, 256)));
    // 20 asks, 100 ms each: 2 s of the 10 s window has passed, so 10 asks/s.
    let rate = row.asks_per_sec.expect("an agent's throughput");
    assert!((rate - 10.0).abs() < 0.5, "{rate}");
    assert_eq!(snapshot.breakers.len(), 1);
    assert_eq!(snapshot.breakers[0].key, "worker/work");
    let frame = render_text(&snapshot, 80, 24);
    assert!(frame.contains("root/"), "{frame}");
    assert!(
        frame
            .lines()
            .any(|line| line.contains("  worker") && line.contains("0/256")),
        "{frame}"
    );
    system.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn an_unhealthy_agent_and_a_tasks_progress_are_shown() {
    let mut snapshot = busy_snapshot().await;
    snapshot.tree = vec![
        TreeRow::new(0, "team", true, "running"),
        TreeRow::new(1, "writer", false, "unhealthy").agent(0, 256, 0.0),
        TreeRow::new(1, "researcher", false, "running")
            .agent(0, 256, 0.1)
            .progress("step 4", Some(Duration::from_millis(1_500))),
    ];
    let frame = render_text(&snapshot, 80, 24);
    let writer = frame.lines().find(|line| line.contains("writer")).unwrap();
    assert!(writer.contains("unhealthy"), "{frame}");
    assert!(frame.contains("progress: step 4, beat 1.5s ago"), "{frame}");
}

/// Fails its health check, and reports progress before it answers.
struct Sick;

impl Agent for Sick {
    type Task = ();
    type Output = ();

    async fn handle(&mut self, ctx: &mut AgentContext, _: ()) -> Result<(), AgentError> {
        ctx.progress("half way");
        Ok(())
    }

    async fn health_check(&mut self, _: &mut AgentContext) -> Result<(), AgentError> {
        Err(AgentError::failed("credentials expired"))
    }
}

#[tokio::test(start_paused = true)]
async fn a_console_attached_to_a_system_shows_health_and_progress() {
    let system = System::builder().build().unwrap();
    let check = HealthCheck::every(Duration::from_secs(1)).restart_after(0);
    let spec = AgentSpec::new("sick", || Sick).health_check(check);
    let root = SupervisorSpec::one_for_one("team").child(system.agent(spec).unwrap());
    system.start(root).await.unwrap();
    let sick = system.agent_ref::<Sick>("sick").unwrap();
    sick.ask(()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let snapshot = Console::new("sick").snapshot(&system).await;
    let row = snapshot
        .tree
        .iter()
        .find(|row| row.name == "sick")
        .expect("the agent's row");
    assert_eq!(row.state, "unhealthy");
    assert_eq!(row.progress, Some(("half way".to_string(), None)));
    system.shutdown(Duration::from_secs(5)).await.unwrap();
}

/// Crashes when asked to.
struct Crasher;

impl Agent for Crasher {
    type Task = bool;
    type Output = ();

    async fn handle(&mut self, _: &mut AgentContext, crash: bool) -> Result<(), AgentError> {
        if crash {
            return Err(AgentError::fatal("asked to crash"));
        }
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_console_attached_after_the_start_counts_each_restart() {
    let system = System::builder().build().unwrap();
    let root = SupervisorSpec::one_for_one("root")
        .intensity(10, Duration::from_secs(1))
        .child(system.agent(AgentSpec::new("crasher", || Crasher)).unwrap());
    system.start(root).await.unwrap();
    // Attached late: the first start was never seen.
    let mut console = Console::new("late");
    let mut events = system.subscribe();
    let crasher = system.agent_ref::<Crasher>("crasher").unwrap();
    for _ in 0..2 {
        assert!(crasher.ask(true).await.is_err());
        crasher.ask(false).await.unwrap();
    }
    while let Ok(event) = events.try_recv() {
        console.note(&event);
    }
    assert_eq!(console.restarts("root/crasher"), 2);
    assert_eq!(console.restarts("root"), 0);
    system.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_supervisors_intensity_and_its_use_are_shown_from_the_start() {
    let system = System::builder().build().unwrap();
    let team = SupervisorSpec::one_for_one("team")
        .intensity(3, Duration::from_secs(10))
        .child(system.agent(AgentSpec::new("crasher", || Crasher)).unwrap());
    let root = SupervisorSpec::one_for_one("root")
        .intensity(5, Duration::from_secs(60))
        .child(ChildSpec::supervisor(team));
    system.start(root).await.unwrap();
    let mut console = Console::new("intensity");
    let intensity = |snapshot: &overseer_observe::tui::Snapshot, name: &str| {
        snapshot
            .tree
            .iter()
            .find(|row| row.name == name)
            .and_then(|row| row.intensity)
    };
    // Before anything failed: what each supervisor was configured with.
    let snapshot = console.snapshot(&system).await;
    assert_eq!(
        intensity(&snapshot, "root"),
        Some((0, 5, Duration::from_secs(60)))
    );
    assert_eq!(
        intensity(&snapshot, "team"),
        Some((0, 3, Duration::from_secs(10)))
    );
    assert_eq!(intensity(&snapshot, "crasher"), None, "an agent has none");
    let frame = render_text(&snapshot, 80, 24);
    assert!(
        frame
            .lines()
            .any(|line| line.contains("  team/") && line.contains("0/3 in 10s")),
        "{frame}"
    );
    // Two crashes count in the team's window, and age out of it after its period.
    let crasher = system.agent_ref::<Crasher>("crasher").unwrap();
    for _ in 0..2 {
        assert!(crasher.ask(true).await.is_err());
        crasher.ask(false).await.unwrap();
    }
    let snapshot = console.snapshot(&system).await;
    assert_eq!(
        intensity(&snapshot, "team"),
        Some((2, 3, Duration::from_secs(10)))
    );
    tokio::time::advance(Duration::from_secs(12)).await;
    let snapshot = console.snapshot(&system).await;
    assert_eq!(
        intensity(&snapshot, "team"),
        Some((0, 3, Duration::from_secs(10)))
    );
    system.shutdown(Duration::from_secs(5)).await.unwrap();
}
