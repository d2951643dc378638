//! A real process appending to a real journal file, killed with SIGKILL at seeded points: every
//! append it was told was durable is in the file when it is opened again.
//!
//! The test runs its own binary again as the child (`OVERSEER_JOURNAL_CHILD` names the file).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use overseer_journal::{
    Durability, Effect, Entry, Journal, JournalConfig, LogStorage, Payload, Recorded, RunId, Spent,
    StepId,
};

const CHILD: &str = "OVERSEER_JOURNAL_CHILD";
/// How many steps the child appends at most (it is killed long before).
const STEPS: u32 = 100_000;

fn run() -> RunId {
    RunId::new("killed-run").unwrap()
}

/// The child: appends steps one by one, printing each ordinal once its append is acknowledged.
#[tokio::test]
async fn child_appends_until_killed() {
    let Ok(path) = std::env::var(CHILD) else {
        return; // run as a test of its own: nothing to do
    };
    let (journal, opened) =
        Journal::open(LogStorage::open(&path).unwrap(), JournalConfig::default()).unwrap();
    let first = if opened.runs == 0 {
        let input = Payload::encode("steps").unwrap();
        journal
            .append(
                vec![Entry::RunStarted {
                    run: run(),
                    agent: "root/a".into(),
                    fingerprint: input.fingerprint(),
                    input,
                    started_at_ms: 0,
                }],
                Durability::Sync,
            )
            .await
            .unwrap();
        0
    } else {
        journal.with_run(&run(), |r| r.unwrap().steps().count() as u32)
    };
    let epoch = journal.claim(&run()).await.unwrap();
    for ordinal in first..STEPS {
        let step = Entry::StepCompleted {
            run: run(),
            epoch,
            step: StepId::new("root/a", 0, ordinal),
            name: "step".into(),
            effect: Effect::Unsafe,
            outcome: Recorded::Value(Payload::encode(&ordinal).unwrap()),
            spent: Spent::NONE,
        };
        journal.append(vec![step], Durability::Sync).await.unwrap();
        println!("acked {ordinal}");
    }
}

/// Starts the child on `path` and kills it with SIGKILL once it has reported `kill_after`
/// acknowledged steps; returns the last ordinal it reported.
fn run_child_until(path: &std::path::Path, kill_after: u32) -> Option<u32> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_appends_until_killed",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let started = Instant::now();
    let mut last = None;
    let mut seen = 0;
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        if let Some(ordinal) = line.strip_prefix("acked ") {
            last = Some(ordinal.trim().parse().unwrap());
            seen += 1;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the child took over a minute to report {kill_after} steps"
        );
        if seen >= kill_after {
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    last
}

#[tokio::test]
async fn every_acknowledged_append_survives_sigkill() {
    if std::env::var(CHILD).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("killed.journal");
    let mut reported: Option<u32> = None;
    // Seeded kill points: a few steps in, then more each time; the same file throughout, so
    // each child resumes where the last one was killed.
    for kill_after in [1, 7, 3, 25, 12] {
        let last = run_child_until(&path, kill_after);
        reported = last.or(reported);
        let (journal, _) =
            Journal::open(LogStorage::open(&path).unwrap(), JournalConfig::default()).unwrap();
        let held = journal.with_run(&run(), |r| {
            let record = r.expect("the run survives");
            record
                .steps()
                .map(|(step, _)| step.ordinal)
                .collect::<Vec<_>>()
        });
        let expected_at_least = reported.map_or(0, |last| last + 1);
        assert!(
            held.len() as u32 >= expected_at_least,
            "killed after acknowledging step {reported:?}, the journal holds {} steps",
            held.len()
        );
        assert!(
            held.iter().copied().eq(0..held.len() as u32),
            "the steps held are not a prefix: {held:?}"
        );
        journal.close().await.unwrap();
    }
    assert!(
        reported.unwrap_or(0) >= 40,
        "the children reported {reported:?}"
    );
}
