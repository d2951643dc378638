//! Runs the research team with a journal as a user would: the same story as without one, a
//! second start that answers every question from the journal, and a process killed with
//! SIGKILL in the middle of the run that resumes where it stopped when started again on the
//! same file. `cargo test` builds the examples first; when running this file alone, build them
//! too: `cargo build --examples && cargo test --test examples_journal`.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{example, run_example as run};

/// A directory of its own under the system's temporary directory, removed when dropped.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("overseer-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        Self(dir)
    }

    fn file(&self, name: &str) -> String {
        self.0.join(name).display().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The summary of a run, from `== summary` on, without the journal's own lines.
fn summary(out: &str) -> Vec<&str> {
    out.lines()
        .skip_while(|line| !line.starts_with("== summary"))
        .filter(|line| !line.starts_with("journal: ") && !line.starts_with("not billed again: "))
        .collect()
}

/// The lines that say how a question was answered.
fn answered(out: &str) -> Vec<&str> {
    out.lines()
        .filter(|line| line.contains("] answered  "))
        .map(|line| &line[line.find("answered").unwrap_or(0)..])
        .collect()
}

/// The journal's line for the run of question `n`.
fn run_line(out: &str, n: usize) -> &str {
    let id = format!("journal   research-team-q{n}: ");
    out.lines()
        .find_map(|line| line.split_once(&id).map(|(_, rest)| rest))
        .unwrap_or_else(|| panic!("no journal line for question {n}:\n{out}"))
}

#[test]
fn with_a_journal_the_team_tells_the_same_story_and_a_second_start_runs_nothing() {
    let dir = TempDir::new("journal-story");
    let journal = dir.file("team.journal");
    let (_, plain) = run("research_team", &["--seed", "42"]);
    let (_, first) = run("research_team", &["--journal", &journal, "--pace", "0"]);
    assert_eq!(
        summary(&first),
        summary(&plain),
        "the journal changes nothing of the story:\n{first}"
    );
    assert_eq!(answered(&first), answered(&plain));
    for n in 1..=4 {
        assert!(
            run_line(&first, n).ends_with("steps run and journaled"),
            "{first}"
        );
    }
    assert!(
        first.contains("journal: 0 runs answered from the journal, 0 resumed, 4 run from the start; 0 steps replayed"),
        "{first}"
    );
    assert!(
        figure_after(&first, "model calls made by this process: ") > 0,
        "{first}"
    );

    // Started again on the same journal: every question is answered from it, nothing runs.
    let (_, again) = run("research_team", &["--journal", &journal, "--pace", "0"]);
    for n in 1..=4 {
        assert_eq!(
            run_line(&again, n),
            "finished before, answered from the journal, nothing run"
        );
    }
    assert_eq!(answered(&again), answered(&first), "the same reports");
    assert!(
        again.contains("model calls made by this process: 0"),
        "{again}"
    );
    assert!(again.contains("spend: 0 of 800 tokens"), "{again}");
}

/// Runs the team on `journal` with a pace, and kills it with SIGKILL once it has printed
/// `lines` lines (or finished). Returns what it printed.
fn run_killed_after(journal: &str, lines: usize) -> String {
    let mut child = Command::new(example("research_team"))
        .args(["--journal", journal, "--pace", "3"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the example runs (build the examples first)");
    let stdout = child.stdout.take().expect("piped");
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut printed = Vec::new();
    while printed.len() < lines {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => printed.push(line),
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                panic!(
                    "no line {} within 60 s; printed:\n{}",
                    printed.len() + 1,
                    printed.join("\n")
                );
            }
        }
    }
    // SIGKILL: no destructor, no flush, no close of the journal.
    let _ = child.kill();
    let _ = child.wait();
    reader.join().expect("the reader thread");
    printed.extend(rx.try_iter());
    printed.join("\n")
}

/// What a journal file holds of the run of one question.
#[derive(Debug, Default, PartialEq)]
struct Held {
    /// The journal holds the run.
    known: bool,
    finished: bool,
    /// Steps with a result.
    completed: usize,
    /// Tokens the model steps with a result spent.
    model_tokens: u64,
}

/// What the journal file at `path` holds of each question's run, read as the next process
/// would (and closed again, so that the file's lock is released).
fn read_journal(path: &str) -> Vec<Held> {
    use overseer::journal::{JournalConfig, LogStorage, RunId};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let storage = LogStorage::open(path).expect("the journal opens");
    let (journal, _) =
        overseer::journal::Journal::open(storage, JournalConfig::default()).expect("it reads");
    let held = (1..=4)
        .map(|n| {
            let id = RunId::new(format!("research-team-q{n}")).expect("an id");
            journal.with_run(&id, |record| {
                record.map_or_else(Held::default, |record| {
                    let completed: Vec<_> = record
                        .steps()
                        .filter_map(|(_, step)| step.completed.as_ref().map(|done| (step, done)))
                        .collect();
                    Held {
                        known: true,
                        finished: record.is_finished(),
                        completed: completed.len(),
                        model_tokens: completed
                            .iter()
                            .filter(|(step, _)| step.name == "model")
                            .map(|(_, (_, spent))| spent.input_tokens + spent.output_tokens)
                            .sum(),
                    }
                })
            })
        })
        .collect();
    runtime
        .block_on(journal.close())
        .expect("the journal closes");
    held
}

#[test]
fn a_team_killed_mid_run_resumes_where_it_stopped_without_running_its_journaled_steps_again() {
    let dir = TempDir::new("journal-kill");
    let (_, crash_free) = run("research_team", &["--seed", "42"]);
    let answer_line = crash_free
        .lines()
        .find(|line| line.starts_with("answer: "))
        .expect("an answer");
    let mut cut_in_the_middle = 0;
    // Kill points spread over the run's four questions (the crash-free log has about 50 lines).
    for kill_after in [3, 7, 12, 16, 20, 26, 33, 38, 44, 48] {
        let journal = dir.file(&format!("killed-{kill_after}.journal"));
        let killed = run_killed_after(&journal, kill_after);
        let held = read_journal(&journal);
        let (_, resumed) = run("research_team", &["--journal", &journal, "--pace", "0"]);
        let context =
            format!("killed after {kill_after} lines:\n{killed}\n--- journal: {held:?}\n--- resumed:\n{resumed}");

        for (n, held) in held.iter().enumerate() {
            let line = run_line(&resumed, n + 1);
            if held.finished {
                // Finished before the kill (up to which the killed run was the crash-free run):
                // answered from the journal with the crash-free run's report.
                assert_eq!(
                    line, "finished before, answered from the journal, nothing run",
                    "{context}"
                );
                assert_eq!(answered(&resumed)[n], answered(&crash_free)[n], "{context}");
            } else if held.known {
                // Cut: every step with a result is replayed (not run, not billed), the rest runs.
                let expected = format!("resumed, {} steps replayed, ", held.completed);
                assert!(line.starts_with(&expected), "{expected:?}\n{context}");
                assert!(
                    line.contains(&format!("not billed again: {} tokens", held.model_tokens)),
                    "{context}"
                );
                cut_in_the_middle += usize::from(held.completed > 0);
            } else {
                assert!(line.ends_with("steps run and journaled"), "{context}");
            }
        }
        // Every question is answered, and the team's answer is the crash-free run's.
        assert_eq!(answered(&resumed).len(), 4, "{context}");
        assert!(resumed.contains(answer_line), "{context}");

        // Started once more, nothing is left to run.
        let (_, third) = run("research_team", &["--journal", &journal, "--pace", "0"]);
        assert!(
            third.contains("journal: 4 runs answered from the journal")
                && third.contains("model calls made by this process: 0"),
            "{third}"
        );
        assert_eq!(answered(&third), answered(&resumed), "{third}");
    }
    assert!(
        cut_in_the_middle > 0,
        "at least one kill point fell after some steps of a question"
    );
}

/// The number that follows `label` on its line.
fn figure_after(out: &str, label: &str) -> u64 {
    out.lines()
        .find_map(|line| line.split_once(label))
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|word| word.trim_end_matches([',', ';']).parse().ok())
        .unwrap_or_else(|| panic!("no figure after {label:?}:\n{out}"))
}

/// The lines of the first `text` block after `heading` in `docs/durability.md`.
fn durability_block(heading: &str) -> Vec<String> {
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/durability.md"),
    )
    .expect("docs/durability.md");
    let section = &doc[doc.find(heading).expect("the section")..];
    let block = &section[section.find("```text\n").expect("a text block") + 8..];
    block[..block.find("```").expect("closed")]
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn the_durability_doc_shows_a_real_resume_of_research_team() {
    use overseer::journal::{LogStorage, Storage, FORMAT_VERSION};
    let excerpt = durability_block("## Watching it resume");
    let held: u64 = excerpt[0]
        .split_once(": ")
        .and_then(|(_, rest)| rest.split(' ').next())
        .and_then(|records| records.parse().ok())
        .expect("the excerpt starts with the journal's records");
    // The journal a kill leaves is a prefix of a whole run's: cut a whole run's there.
    let dir = TempDir::new("journal-doc");
    let whole = dir.file("whole.journal");
    run("research_team", &["--journal", &whole, "--pace", "0"]);
    let records = LogStorage::open(&whole)
        .and_then(|mut file| file.load())
        .expect("the whole run's journal")
        .records;
    assert!(records.len() as u64 > held, "{} records", records.len());
    let cut = dir.file("cut.journal");
    {
        let mut file = LogStorage::open(&cut).expect("a new journal file");
        file.initialize(FORMAT_VERSION).expect("initialized");
        file.append(&records[..held as usize], true)
            .expect("the prefix written");
    }
    let (_, out) = run("research_team", &["--journal", &cut, "--pace", "0"]);
    let out = out.replace(&cut, "/tmp/team.journal");
    common::assert_excerpt_in(&excerpt, &out, "the doc");
}
