//! The `durable_steps` example as a real process on a real journal file, killed with SIGKILL at
//! seeded points and started again each time on the same file: it finishes with the output of
//! a run that was never killed, each process replays exactly the steps the journal holds, and
//! the model calls made over all the processes are the steps plus at most one per run and kill
//! (a call whose answer was not yet journaled), as counted by a file every real call appends to.
//!
//! The child is this test binary run again (`OVERSEER_DURABLE_STEPS_CHILD` holds the example's
//! arguments, one a line), running the example's own code, included below: the example's
//! binary is built only by a `cargo test` without a target filter, so a test cannot count on it.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[allow(dead_code)] // the test drives the example's code, not its `main`
#[path = "../examples/durable_steps.rs"]
mod durable_steps;

const CHILD: &str = "OVERSEER_DURABLE_STEPS_CHILD";
/// The most one child may take, killed or not.
const CHILD_DEADLINE: Duration = Duration::from_secs(120);
/// The seed of the kill points (printed with every failure).
const SEED: u64 = 16;

/// The child: the example, with the arguments the parent gave.
#[test]
fn child_runs_the_example() {
    let Ok(args) = std::env::var(CHILD) else {
        return; // run as a test of its own: nothing to do
    };
    let options = durable_steps::Options::parse(args.lines().map(String::from).collect());
    if let Err(problem) = durable_steps::run_blocking(&options) {
        panic!("durable_steps failed: {problem}");
    }
}

/// When the parent kills a child.
#[derive(Debug, Clone, Copy)]
enum Kill {
    /// As soon as it has opened the journal (before or while its runs start).
    AtOpen,
    /// Once it has reported this many steps journaled.
    AfterSteps(usize),
    /// Never: it runs to its end.
    Never,
}

/// What one child printed, and how it ended.
#[derive(Debug)]
struct Child {
    lines: Vec<String>,
    /// `None` when it was killed.
    status: Option<ExitStatus>,
}

impl Child {
    fn text(&self) -> String {
        self.lines.join("\n")
    }

    /// The value after `prefix` on the line that starts with it.
    fn after(&self, prefix: &str) -> Option<&str> {
        self.lines.iter().find_map(|line| line.strip_prefix(prefix))
    }

    /// The steps it reported journaled, by run: (run, step) in the order printed.
    fn journaled(&self) -> Vec<(usize, u32)> {
        self.lines
            .iter()
            .filter_map(|line| parse_step(line.strip_prefix("journaled ")?))
            .collect()
    }

    /// The steps the journal held of each run when it started, as it reported them.
    fn resuming(&self) -> BTreeMap<usize, u32> {
        self.lines
            .iter()
            .filter_map(|line| {
                let rest = line.strip_prefix("resuming durable-steps-")?;
                let (run, rest) = rest.split_once(": ")?;
                let steps = rest.strip_suffix(" steps journaled")?;
                Some((run.parse().ok()?, steps.parse().ok()?))
            })
            .collect()
    }

    /// The runs it found finished when it started.
    fn finished_before(&self) -> BTreeSet<usize> {
        self.lines
            .iter()
            .filter_map(|line| {
                let rest = line.strip_prefix("durable-steps-")?;
                rest.split_once(" had finished: ")?.0.parse().ok()
            })
            .collect()
    }

    fn outputs(&self) -> Vec<&str> {
        self.lines
            .iter()
            .filter(|line| line.starts_with("output durable-steps-"))
            .map(String::as_str)
            .collect()
    }
}

/// `step I of durable-steps-K` as (K, I).
fn parse_step(text: &str) -> Option<(usize, u32)> {
    let rest = text.strip_prefix("step ")?;
    let (step, run) = rest.split_once(" of durable-steps-")?;
    Some((run.trim().parse().ok()?, step.parse().ok()?))
}

/// Runs the example as a child with `args`, and kills it with SIGKILL at `kill`. Every line it
/// printed before it died is kept, those still in the pipe when it was killed too.
fn run_child(args: &[String], kill: Kill) -> Child {
    let mut child = Command::new(std::env::current_exe().expect("the test binary"))
        .args([
            "--exact",
            "child_runs_the_example",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, args.join("\n"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the child starts");
    let stdout = child.stdout.take().expect("piped");
    let (lines, received) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(mut line) = line else { break };
            // libtest's own line runs into the child's first.
            if let Some(rest) = line.strip_prefix("test child_runs_the_example ... ") {
                line = rest.to_string();
            }
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let started = Instant::now();
    let mut seen = Vec::new();
    let mut killed = false;
    loop {
        let left = CHILD_DEADLINE.saturating_sub(started.elapsed());
        match received.recv_timeout(left) {
            Ok(line) => {
                let now = match kill {
                    Kill::AtOpen => line.starts_with("journal "),
                    Kill::AfterSteps(steps) => {
                        line.starts_with("journaled ")
                            && seen
                                .iter()
                                .filter(|seen: &&String| seen.starts_with("journaled "))
                                .count()
                                + 1
                                >= steps
                    }
                    Kill::Never => false,
                };
                seen.push(line);
                if now {
                    child.kill().expect("SIGKILL"); // SIGKILL on Unix
                    killed = true;
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the child ran over {CHILD_DEADLINE:?} (seed {SEED}, {kill:?}); it printed:\n{}",
                    seen.join("\n")
                );
            }
        }
    }
    let status = child.wait().expect("the child ends");
    // What it printed before it died: the pipe holds a bounded amount, and is closed now.
    seen.extend(received.iter());
    reader.join().expect("the reader ends");
    Child {
        lines: seen,
        status: (!killed).then_some(status),
    }
}

/// Kill points from the seed: one at the journal's opening, then `count` after 1 to `most`
/// journaled steps.
fn kill_points(count: usize, most: u64) -> Vec<Kill> {
    let mut state = SEED.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut points = vec![Kill::AtOpen];
    for _ in 0..count {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        points.push(Kill::AfterSteps((1 + state % most) as usize));
    }
    points
}

fn args(steps: u32, agents: usize, journal: &Path, calls: &Path) -> Vec<String> {
    vec![
        "--steps".into(),
        steps.to_string(),
        "--agents".into(),
        agents.to_string(),
        "--journal".into(),
        journal.display().to_string(),
        "--calls-log".into(),
        calls.display().to_string(),
        "--progress".into(),
    ]
}

/// The model calls a calls log holds: how many times each (run, step) was called.
fn calls(log: &Path) -> BTreeMap<(usize, u32), u32> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut calls = BTreeMap::new();
    for line in text.lines() {
        let step =
            parse_step(line).unwrap_or_else(|| panic!("a bad line in the calls log: {line:?}"));
        *calls.entry(step).or_insert(0) += 1;
    }
    calls
}

/// A directory of its own in the temporary directory, removed when dropped.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "overseer-durable-steps-kill-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("a temporary directory");
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `agents` runs of `steps` steps once without a kill, then on another journal file
/// killed at each of `kills` and started again, then to the end; checks what is promised.
fn killed_and_resumed(steps: u32, agents: usize, kills: &[Kill]) {
    let dir = TempDir::new(&format!("{agents}x{steps}"));
    let whole = |name: &str| dir.0.join(name);

    // The run without a crash: its outputs, and one model call per step.
    let reference = run_child(
        &args(
            steps,
            agents,
            &whole("reference.journal"),
            &whole("reference.calls"),
        ),
        Kill::Never,
    );
    assert!(
        reference.status.is_some_and(|status| status.success()),
        "the run without a crash failed:\n{}",
        reference.text()
    );
    let expected = reference.outputs();
    assert_eq!(expected.len(), agents, "{}", reference.text());
    let reference_calls = calls(&whole("reference.calls"));
    assert_eq!(reference_calls.len(), steps as usize * agents);
    assert!(
        reference_calls.values().all(|&n| n == 1),
        "{reference_calls:?}"
    );

    // The same runs killed again and again on one journal file.
    let (journal, log) = (whole("killed.journal"), whole("killed.calls"));
    let mut reported: BTreeMap<usize, u32> = BTreeMap::new(); // steps reported journaled, by run
    let mut first_executed = Vec::new(); // (run, step): the first step a resumed process ran
    let mut processes = Vec::new();
    for &kill in kills.iter().chain([&Kill::Never]) {
        let child = run_child(&args(steps, agents, &journal, &log), kill);
        let context = || format!("seed {SEED}, {kill:?}:\n{}", child.text());
        // It replays at least every step a process before it reported journaled.
        let (resuming, finished) = (child.resuming(), child.finished_before());
        for (&run, &held) in &reported {
            let found = resuming.get(&run).copied().unwrap_or(0);
            assert!(
                found >= held || finished.contains(&run),
                "run {run}: {held} steps were reported journaled, the journal holds {found}; {}",
                context()
            );
        }
        // Each run goes on from the first step the journal does not hold, one step at a time.
        let mut next: BTreeMap<usize, u32> = resuming.clone();
        for (run, step) in child.journaled() {
            let expected_step = next.entry(run).or_insert(0);
            assert_eq!(
                step,
                *expected_step,
                "run {run} skipped or repeated a step; {}",
                context()
            );
            if step == resuming.get(&run).copied().unwrap_or(0) && resuming.contains_key(&run) {
                first_executed.push((run, step));
            }
            *expected_step += 1;
            let held = reported.entry(run).or_insert(0);
            *held = (*held).max(step + 1);
        }
        match kill {
            Kill::Never => {
                assert!(
                    child.status.is_some_and(|status| status.success()),
                    "the last process failed; {}",
                    context()
                );
                assert_eq!(
                    child.outputs(),
                    expected,
                    "not the output of a run without a crash; {}",
                    context()
                );
                let resumed = child
                    .after("resumed: ")
                    .unwrap_or_else(|| panic!("no resume line; {}", context()));
                let (replayed, executed) = resumed
                    .split_once(" replayed, ")
                    .and_then(|(r, e)| {
                        Some((
                            r.parse::<u64>().ok()?,
                            e.strip_suffix(" executed")?.parse::<u64>().ok()?,
                        ))
                    })
                    .unwrap_or_else(|| panic!("a bad resume line {resumed:?}; {}", context()));
                let unfinished = (agents - finished.len()) as u64;
                assert_eq!(
                    replayed + executed,
                    unfinished * u64::from(steps),
                    "{}",
                    context()
                );
                assert_eq!(
                    replayed,
                    resuming.values().map(|&s| u64::from(s)).sum::<u64>(),
                    "it replays what the journal held; {}",
                    context()
                );
            }
            _ => assert!(
                child.status.is_none(),
                "the child ended before its kill point (raise the steps); {}",
                context()
            ),
        }
        processes.push(child);
    }

    let resumed_at: Vec<_> = processes.iter().map(Child::resuming).collect();
    println!(
        "seed {SEED}: {} processes, kill points {kills:?}; the journal held, as each started: {resumed_at:?}",
        processes.len()
    );

    // Over all the processes: every step called, and called again only where a process was
    // killed after the call and before its answer was journaled, that is, as the first step the
    // next process ran.
    let made = calls(&log);
    let kills_made = kills.len() as u64;
    let total: u64 = made.values().map(|&n| u64::from(n)).sum();
    let steps_all = u64::from(steps) * agents as u64;
    assert_eq!(
        made.len() as u64,
        steps_all,
        "every step was called: {made:?}"
    );
    assert!(
        total <= steps_all + kills_made * agents as u64,
        "{total} model calls for {steps_all} steps and {kills_made} kills (seed {SEED})"
    );
    println!(
        "{total} model calls for {steps_all} steps; called again: {:?}",
        made.iter().filter(|(_, &n)| n > 1).collect::<Vec<_>>()
    );
    for (&(run, step), &n) in &made {
        if n > 1 {
            assert!(
                first_executed.contains(&(run, step)),
                "run {run} step {step} was called {n} times, though it is not where a killed process stopped (seed {SEED}); resumed processes began at {first_executed:?}"
            );
            assert!(
                u64::from(n) <= 1 + kills_made,
                "run {run} step {step}: {n} calls"
            );
        }
    }
}

#[test]
fn one_run_killed_at_seeded_points_resumes_to_the_output_of_a_run_never_killed() {
    if std::env::var(CHILD).is_ok() {
        return;
    }
    killed_and_resumed(240, 1, &kill_points(5, 30));
}

#[test]
fn three_concurrent_runs_killed_at_seeded_points_each_resume() {
    if std::env::var(CHILD).is_ok() {
        return;
    }
    killed_and_resumed(120, 3, &kill_points(4, 40));
}
