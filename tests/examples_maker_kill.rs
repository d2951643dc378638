//! The durable maker_hanoi (`--journal`, 10 disks, 1,023 steps) killed with SIGKILL at seeded
//! points and started again on the same journal each time: the last process finishes with the
//! correct solution, and no step journaled by a killed process is asked again (billed again)
//! by a later one, as the calls log every real model call appends to shows. `cargo test`
//! builds the examples first; when running this file alone, build them too: `cargo build
//! --examples && cargo test --test examples_maker_kill`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The most one child may take, killed or not.
const CHILD_DEADLINE: Duration = Duration::from_secs(120);
/// The seed of the kill points (printed with every failure).
const SEED: u64 = 21;

/// One child's printed lines, and whether it was killed.
struct Child {
    pid: u32,
    lines: Vec<String>,
    killed: bool,
}

impl Child {
    /// How many steps it reported journaled (`journaled step N` lines).
    fn journaled(&self) -> u64 {
        self.lines
            .iter()
            .filter_map(|line| line.strip_prefix("journaled step ")?.parse().ok())
            .max()
            .unwrap_or(0)
    }
}

/// Runs the example with `args` and kills it (SIGKILL) once it has printed `kill_after`
/// `journaled step` lines; `None` lets it run to its end.
fn run_child(args: &[&str], kill_after: Option<usize>) -> Child {
    let mut child = Command::new(common::example("maker_hanoi"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the example starts (build the examples first)");
    let pid = child.id();
    let stdout = child.stdout.take().expect("piped");
    let (lines, received) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let started = Instant::now();
    let mut seen: Vec<String> = Vec::new();
    let mut steps = 0;
    let mut killed = false;
    loop {
        let left = CHILD_DEADLINE.saturating_sub(started.elapsed());
        match received.recv_timeout(left) {
            Ok(line) => {
                // Killed at the journal's opening (0) or after its n-th journaled step.
                if line.starts_with("journaled step ") {
                    steps += 1;
                }
                let now = kill_after.is_some_and(|n| {
                    (n == 0 && line.starts_with("journal ")) || (n > 0 && steps >= n)
                });
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
                    "the child ran over {CHILD_DEADLINE:?} (seed {SEED}); it printed:\n{}",
                    seen.join("\n")
                );
            }
        }
    }
    let status = child.wait().expect("the child ends");
    seen.extend(received.iter());
    reader.join().expect("the reader ends");
    assert!(
        killed || status.success(),
        "the child failed: {status:?}\n{}",
        seen.join("\n")
    );
    Child {
        pid,
        lines: seen,
        killed,
    }
}

/// The calls log's lines, `pid step sample`, by process: (step, sample) in order.
fn calls_by_process(path: &Path) -> BTreeMap<u32, Vec<(u64, u64)>> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut processes: BTreeMap<u32, Vec<(u64, u64)>> = BTreeMap::new();
    for line in text.lines() {
        let numbers: Vec<u64> = line
            .split(' ')
            .map(|n| n.parse().expect("a number"))
            .collect();
        let [pid, step, sample] = numbers[..] else {
            panic!("a bad calls log line {line:?}");
        };
        let pid = u32::try_from(pid).expect("a pid");
        processes.entry(pid).or_default().push((step, sample));
    }
    processes
}

#[test]
fn a_durable_run_killed_at_random_points_finishes_correctly_and_bills_no_finished_step_again() {
    let dir = std::env::temp_dir().join(format!("maker-kill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let (journal, calls) = (dir.join("hanoi.journal"), dir.join("calls.log"));
    let (journal_arg, calls_arg) = (
        journal.to_str().expect("utf-8"),
        calls.to_str().expect("utf-8"),
    );
    let args = [
        "--disks",
        "10",
        "--journal",
        journal_arg,
        "--calls-log",
        calls_arg,
        "--progress",
    ];
    // Seeded kill points: at the journal's opening, then after 1 to 250 more journaled steps.
    let mut state = SEED;
    let mut points = vec![0];
    for _ in 0..5 {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        points.push(1 + usize::try_from(state >> 33).expect("small") % 250);
    }
    let mut children = Vec::new();
    for &point in &points {
        let child = run_child(&args, Some(point));
        assert!(
            child.killed,
            "seed {SEED}: the run ended before its kill point {point}:\n{}",
            child.lines.join("\n")
        );
        children.push(child);
    }
    let last = run_child(&args, None);
    let out = last.lines.join("\n");
    assert!(out.contains("\nerrors: 0\n"), "seed {SEED}:\n{out}");
    assert!(out.contains("\nsolved: yes\n"), "seed {SEED}:\n{out}");
    assert!(out.contains("\nsteps: 1023\n"), "seed {SEED}:\n{out}");

    // No process asks a step that an earlier one journaled.
    let processes = calls_by_process(&calls);
    let mut finished = 0; // the steps journaled by the processes so far
    let mut seen_steps = BTreeSet::new();
    let mut total = 0;
    for child in children.iter().chain([&last]) {
        for &(step, _) in processes.get(&child.pid).map_or(&[][..], Vec::as_slice) {
            assert!(
                step >= finished,
                "seed {SEED}: process {} asked step {} again after it was journaled ({finished} steps were)",
                child.pid,
                step + 1
            );
            seen_steps.insert(step);
            total += 1;
        }
        finished = finished.max(child.journaled());
    }
    assert!(finished > 0, "seed {SEED}: no step was journaled");
    // The last process replayed what the killed ones had journaled (each printed every step it
    // journaled, but one may have been killed between a step's journaling and its line), and
    // took the rest.
    let before_last = children.iter().map(Child::journaled).max().unwrap_or(0);
    let replayed: u64 = last
        .lines
        .iter()
        .find_map(|line| line.strip_prefix("replayed steps: ")?.parse().ok())
        .expect("a replayed steps line");
    assert!(
        (before_last..=before_last + 1).contains(&replayed),
        "seed {SEED}: {replayed} replayed, {before_last} journaled before:\n{out}"
    );
    eprintln!(
        "kill points {points:?}: journaled {:?}, the last replayed {replayed}; {} processes called the model",
        children.iter().map(Child::journaled).collect::<Vec<_>>(),
        processes.len()
    );
    let ours: BTreeSet<u32> = children.iter().chain([&last]).map(|c| c.pid).collect();
    assert!(
        processes.keys().all(|pid| ours.contains(pid)),
        "seed {SEED}: calls from a process not started here"
    );
    assert_eq!(seen_steps.len(), 1023, "seed {SEED}: every step was asked");
    // Only a step in flight at a kill is asked again: at most a vote's cap (12) per kill.
    let clean = run_child(&["--disks", "10"], None);
    let clean_samples: u64 = clean
        .lines
        .iter()
        .find_map(|line| line.strip_prefix("samples: ")?.parse().ok())
        .expect("a samples line");
    let most = clean_samples + 12 * u64::try_from(points.len()).expect("small");
    assert!(
        (clean_samples..=most).contains(&total),
        "seed {SEED}: {total} calls over the processes, {clean_samples} in a run never killed"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
