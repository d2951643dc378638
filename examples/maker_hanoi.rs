//! MAKER's Towers of Hanoi (Meyerson et al., arXiv 2511.09030) reproduced offline: every one
//! of the 2^n − 1 moves is a fresh call of a scripted *microagent* that sees only the previous
//! move and the current state and answers with the next move and the next state; each step is
//! decided by a first-to-ahead-by-k vote whose samples are red-flagged (a strict parse, a
//! length cap) before they vote; an independent simulator checks the result move by move.
//!
//! ```text
//! cargo run --release --example maker_hanoi -- --disks 20 --error-rate 0.01 --seed 1
//! cargo run --release --example maker_hanoi -- --disks 20 --error-rate 0.05 --seed 1
//! cargo run --release --example maker_hanoi -- --disks 20 --error-rate 0.01 --no-vote
//! cargo run --release --example maker_hanoi -- --disks 10 --correlated               # red flags recover
//! cargo run --release --example maker_hanoi -- --disks 10 --correlated --no-length-cap # they do not
//! cargo run --release --example maker_hanoi -- --disks 10 --correlated --no-length-cap --second-model
//! ```
//!
//! **The microagent** answers right, or wrong with probability `--error-rate` per sample (a
//! different legal move, or the right move with the state left as it was), independently of
//! its other samples; each answer is also malformed with probability `--malformed` and
//! over-long (a rambling reasoning line before the answer) with `--overlong`. Every sample's
//! randomness comes from its own generator, seeded by (seed, step, sample index), so a run is
//! the same whatever the scheduling. With `--correlated`, one step in 500 is *hard*: there
//! the samples give one particular wrong answer with probability 0.6, and that wrong answer
//! rambles (is over-long) nine times in ten, as MAKER saw long answers go with wrong ones.
//! `--second-model` draws every other sample from a second scripted model, whose errors are
//! independent of the first's (never correlated).
//!
//! **The run** asks each step with [`AgentRef::ask_voting`] (first-to-ahead-by-k within a cap
//! of `--cap` samples, 4k by default: an undecided vote is asked again with twice the cap, up
//! to five times), the next step's task built from the winner; with no `--k`, k is the
//! smallest that expects fewer than 0.01 errors over the whole run (the theory: `steps × r /
//! (1 + r)`, `r = (p / (1 − p))^k`; docs/benchmarks.md). `--no-vote` asks once per step
//! (drawing again only a red-flagged answer). The budget's token limit is twice the run's
//! expected need, plus room for the largest vote's worst case. It prints `steps:`, `errors:` (steps whose move and next
//! state differ from the optimal solution's: after a first error the run goes on from the
//! wrong state, as MAKER's would, so the later steps differ too), `samples:` (model calls),
//! `red_flags:` and `seconds:` at the end, each on its own line; before them, the first error,
//! the *wrong decisions* (steps whose winner is not the right answer to the task as given,
//! which counts each mistake once), and the times per step and per sample.
//!
//! **`--journal FILE`** makes the run one durable ask ([`AgentRef::ask_run`]) of a solver agent
//! whose every move is a journaled step ([`AgentContext::step_with_spend`]: the move's vote,
//! its winner and spend journaled). Killed and started again on the same file, it replays the
//! journaled moves (no model call, nothing billed again) and goes on from the first that is
//! not; a finished run answers with its recorded winners. `--progress` prints a line as each
//! move is journaled; `--calls-log FILE` appends `pid step sample` to FILE for every real model
//! call (`tests/examples_maker_kill.rs` kills it with SIGKILL and checks both).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use overseer::agent::{
    Agent, AgentContext, AgentError, AgentRef, AgentSpec, AskError, System, Usage, VoteSpec,
};
use overseer::budget::{Budget, Limits};
use overseer::journal::{Effect, Journal, JournalConfig, LogStorage, RunId};
use overseer::semantic::red_flag::{RedFlag, RedFlagKind, RedFlagRules};
use overseer::semantic::vote::{first_to_ahead_error, AnswerKey, VoteError, VoteRule};
use overseer::supervisor::SupervisorSpec;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[allow(dead_code)] // each example uses part of it
#[path = "support/cli.rs"]
mod cli;

const CLI: cli::Cli = cli::Cli {
    name: "maker_hanoi",
    about: "MAKER's Towers of Hanoi: one voted microagent call per move, checked by a simulator",
    synopsis: "[--disks N] [--error-rate P] [--seed S] [--k K] [--cap C] [--no-vote] [--correlated] [--no-length-cap] [--second-model] [--malformed P] [--overlong P] [--journal FILE] [--calls-log FILE] [--progress]",
    options: &[
        ("--disks N", "the number of disks, 2^N - 1 steps (default 10)"),
        ("--error-rate P", "the probability that a sample is wrong (default 0.01)"),
        ("--seed S", "the seed of the microagent's errors (default 1)"),
        ("--k K", "first-to-ahead-by-K (default: the smallest K expected to err below 1 % over the run)"),
        ("--cap C", "the most samples one vote may draw (default 4 K)"),
        ("--no-vote", "ask once per step (a red-flagged answer is drawn again)"),
        ("--correlated", "one step in 500 is hard: a likely, rambling wrong answer"),
        ("--no-length-cap", "no red flag for over-long answers (the strict parse stays)"),
        ("--second-model", "every other sample from a second model, whose errors are independent"),
        ("--malformed P", "the probability that an answer is malformed (default 0.005)"),
        ("--overlong P", "the probability that an answer is over-long (default 0.005)"),
        ("--journal FILE", "a durable run: each step journaled; started again on the same file, it resumes"),
        ("--calls-log FILE", "append `pid step sample` to FILE for every real model call"),
        ("--progress", "with --journal, print a line as each step is journaled"),
    ],
};

/// The tokens a sample is estimated to read and write (MAKER's prompts are a few hundred
/// tokens; the answer a few dozen).
const INPUT_TOKENS: u64 = 300;
const OUTPUT_TOKENS: u64 = 40;
/// With `--correlated`: the share of hard steps, and a hard step's wrong-answer rate.
const HARD_STEP_RATE: f64 = 0.002;
const HARD_ERROR_RATE: f64 = 0.6;
const HARD_RAMBLES: f64 = 0.9;

// ---------------------------------------------------------------------------------------------
// The simulator: pegs, moves and the optimal solution, independent of the microagent.

/// A move of `disk` (1 is the smallest) from peg `from` to peg `to` (0, 1 or 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Move {
    disk: u8,
    from: u8,
    to: u8,
}

/// Three pegs, each listing its disks bottom to top.
#[derive(Debug, Clone, PartialEq, Eq)]
struct State {
    pegs: [Vec<u8>; 3],
}

/// Why a move cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
enum IllegalMove {
    NoSuchPeg,
    NotOnTop,
    OntoSmaller,
}

impl State {
    /// All `disks` on peg 0.
    fn start(disks: u8) -> Self {
        Self {
            pegs: [(1..=disks).rev().collect(), Vec::new(), Vec::new()],
        }
    }

    fn disks(&self) -> u8 {
        let count: usize = self.pegs.iter().map(Vec::len).sum();
        u8::try_from(count).unwrap_or(u8::MAX)
    }

    fn top(&self, peg: u8) -> Option<u8> {
        self.pegs.get(usize::from(peg))?.last().copied()
    }

    /// The state after `m`, if `m` is legal here.
    fn apply(&self, m: Move) -> Result<State, IllegalMove> {
        if m.from > 2 || m.to > 2 || m.from == m.to {
            return Err(IllegalMove::NoSuchPeg);
        }
        if self.top(m.from) != Some(m.disk) {
            return Err(IllegalMove::NotOnTop);
        }
        if self.top(m.to).is_some_and(|top| top < m.disk) {
            return Err(IllegalMove::OntoSmaller);
        }
        let mut next = self.clone();
        next.pegs[usize::from(m.from)].pop();
        next.pegs[usize::from(m.to)].push(m.disk);
        Ok(next)
    }

    /// Every legal move from here.
    fn legal_moves(&self) -> Vec<Move> {
        let mut moves = Vec::with_capacity(3);
        for from in 0..3 {
            for to in 0..3 {
                if let Some(disk) = self.top(from) {
                    let m = Move { disk, from, to };
                    if self.apply(m).is_ok() {
                        moves.push(m);
                    }
                }
            }
        }
        moves
    }

    fn solved(&self, disks: u8) -> bool {
        self.pegs[2].len() == usize::from(disks)
    }
}

/// The optimal solution for `disks` disks from peg 0 to peg 2, by the textbook recursion.
fn optimal_moves(disks: u8) -> Vec<Move> {
    fn solve(n: u8, from: u8, to: u8, via: u8, out: &mut Vec<Move>) {
        if n == 0 {
            return;
        }
        solve(n - 1, from, via, to, out);
        out.push(Move { disk: n, from, to });
        solve(n - 1, via, to, from, out);
    }
    let mut out = Vec::with_capacity((1usize << disks) - 1);
    solve(disks, 0, 2, 1, &mut out);
    out
}

// ---------------------------------------------------------------------------------------------
// The answer's text, and its strict parse.

/// `move = [disk, from, to]` and `next_state = [[...], [...], [...]]`, on two lines.
fn render(m: Move, state: &State) -> String {
    let mut text = String::with_capacity(48 + 4 * usize::from(state.disks()));
    text.push_str("move = [");
    push_number(&mut text, m.disk);
    text.push_str(", ");
    push_number(&mut text, m.from);
    text.push_str(", ");
    push_number(&mut text, m.to);
    text.push_str("]\nnext_state = [");
    for (i, peg) in state.pegs.iter().enumerate() {
        if i > 0 {
            text.push_str(", ");
        }
        text.push('[');
        for (j, &disk) in peg.iter().enumerate() {
            if j > 0 {
                text.push_str(", ");
            }
            push_number(&mut text, disk);
        }
        text.push(']');
    }
    text.push(']');
    text
}

/// A number's decimal digits (no formatting machinery: this runs for every sample).
fn push_number(text: &mut String, n: u8) {
    if n >= 100 {
        text.push(char::from(b'0' + n / 100));
    }
    if n >= 10 {
        text.push(char::from(b'0' + n / 10 % 10));
    }
    text.push(char::from(b'0' + n % 10));
}

fn malformed(detail: impl Into<String>) -> RedFlag {
    RedFlag::new(RedFlagKind::Parse, detail)
}

/// Reads an answer's text in its one canonical form, byte by byte.
struct Cursor<'a> {
    text: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn literal(&mut self, expected: &str) -> Result<(), RedFlag> {
        let expected = expected.as_bytes();
        if self.text[self.at..].starts_with(expected) {
            self.at += expected.len();
            Ok(())
        } else {
            Err(malformed(format!(
                "expected {:?} at byte {}",
                String::from_utf8_lossy(expected),
                self.at
            )))
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    /// A decimal integer of 0 to 255 without a leading zero.
    fn number(&mut self) -> Result<u8, RedFlag> {
        let start = self.at;
        let mut value: u16 = 0;
        while let Some(digit @ b'0'..=b'9') = self.peek() {
            if self.at > start && self.text[start] == b'0' {
                return Err(malformed("a number with a leading zero"));
            }
            value = value * 10 + u16::from(digit - b'0');
            if value > 255 {
                return Err(malformed("a number out of range"));
            }
            self.at += 1;
        }
        if self.at == start {
            return Err(malformed(format!("expected an integer at byte {start}")));
        }
        u8::try_from(value).map_err(|_| malformed("a number out of range"))
    }

    /// `[a, b, c]` or `[]`.
    fn list(&mut self, into: &mut Vec<u8>) -> Result<(), RedFlag> {
        self.literal("[")?;
        if self.peek() == Some(b']') {
            self.at += 1;
            return Ok(());
        }
        loop {
            into.push(self.number()?);
            if self.peek() == Some(b']') {
                self.at += 1;
                return Ok(());
            }
            self.literal(", ")?;
        }
    }
}

/// MAKER's strict parse: an optional `reasoning: ...` line, then exactly the two answer lines
/// in their canonical form (so that equal texts are equal answers), a move of three integers
/// and a next state holding each of the `disks` disks exactly once. Nothing is repaired.
fn parse_answer(text: &str, disks: u8) -> Result<(Move, State), RedFlag> {
    let answer = match text.strip_prefix("reasoning: ") {
        Some(rest) => rest.split_once('\n').map_or("", |(_, answer)| answer),
        None => text,
    };
    let mut cursor = Cursor {
        text: answer.as_bytes(),
        at: 0,
    };
    cursor.literal("move = ")?;
    let mut numbers = Vec::with_capacity(3);
    cursor.list(&mut numbers)?;
    let m = match numbers.as_slice() {
        &[disk, from, to] => Move { disk, from, to },
        other => return Err(malformed(format!("a move of {} integers", other.len()))),
    };
    cursor.literal("\nnext_state = [")?;
    let mut pegs: [Vec<u8>; 3] = Default::default();
    for (i, peg) in pegs.iter_mut().enumerate() {
        if i > 0 {
            cursor.literal(", ")?;
        }
        cursor.list(peg)?;
    }
    cursor.literal("]")?;
    if cursor.at != answer.len() {
        return Err(malformed("more after the state"));
    }
    let mut seen = [false; 256];
    for &disk in pegs.iter().flatten() {
        if disk == 0 || disk > disks || seen[usize::from(disk)] {
            return Err(malformed(format!(
                "disk {disk} is not one of 1..={disks} once"
            )));
        }
        seen[usize::from(disk)] = true;
    }
    if pegs.iter().map(Vec::len).sum::<usize>() != usize::from(disks) {
        return Err(malformed("a disk is missing from the state"));
    }
    Ok((m, State { pegs }))
}

// ---------------------------------------------------------------------------------------------
// The scripted microagent.

/// What one call sees: the previous move and the current state (and the step's number, which
/// only seeds the scripted errors).
#[derive(Debug, Clone)]
struct StepTask {
    step: u64,
    previous: Option<Move>,
    state: State,
}

/// The scripted model's error rates.
#[derive(Debug, Clone, Copy)]
struct Rates {
    seed: u64,
    wrong: f64,
    malformed: f64,
    overlong: f64,
    correlated: bool,
}

/// splitmix64's mixing step.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The generator of one sample: seeded by (seed, step, sample), nothing else.
fn sample_rng(seed: u64, step: u64, sample: u64) -> StdRng {
    StdRng::seed_from_u64(mix(mix(mix(seed) ^ step) ^ sample))
}

/// The right answer by the rule a microagent is told: the smallest disk moves every other
/// step, always the same way round (0 → 1 → 2 → 0 for an even number of disks, 0 → 2 → 1 → 0
/// for an odd one); in between, the one legal move that does not touch it.
fn rule_move(previous: Option<Move>, state: &State) -> Option<Move> {
    let disks = state.disks();
    if previous.is_none_or(|m| m.disk != 1) {
        let from = u8::try_from(state.pegs.iter().position(|p| p.last() == Some(&1))?).ok()?;
        let to = if disks.is_multiple_of(2) {
            (from + 1) % 3
        } else {
            (from + 2) % 3
        };
        Some(Move { disk: 1, from, to })
    } else {
        state.legal_moves().into_iter().find(|m| m.disk != 1)
    }
}

impl Rates {
    /// Whether `step` is hard (only with `--correlated`).
    fn hard(&self, step: u64) -> bool {
        self.correlated && sample_rng(self.seed, step, u64::MAX).random_bool(HARD_STEP_RATE)
    }

    /// The text of sample `sample` of a task.
    fn answer(&self, task: &StepTask, sample: u64) -> String {
        let mut rng = sample_rng(self.seed, task.step, sample);
        let right = rule_move(task.previous, &task.state);
        let hard = self.hard(task.step);
        let wrong_rate = if hard { HARD_ERROR_RATE } else { self.wrong };
        let wrong = rng.random_bool(wrong_rate);
        let (m, next) = match right {
            Some(m) if !wrong => (m, task.state.apply(m).unwrap_or(task.state.clone())),
            right => self.wrong_answer(task, right, hard, &mut rng),
        };
        let text = render(m, &next);
        let rambles = wrong && hard && rng.random_bool(HARD_RAMBLES);
        if rng.random_bool(self.malformed) {
            corrupt(text, &mut rng)
        } else if rambles || rng.random_bool(self.overlong) {
            format!(
                "reasoning: {}\n{text}",
                "the smallest disk moved last so now the other disk moves, or does it? "
                    .repeat(usize::from(task.state.disks()))
            )
        } else {
            text
        }
    }

    /// A wrong answer: another legal move with its next state, or the right move with the
    /// state left as it was; a hard step's is always the same one.
    fn wrong_answer(
        &self,
        task: &StepTask,
        right: Option<Move>,
        hard: bool,
        rng: &mut StdRng,
    ) -> (Move, State) {
        let mut wrongs: Vec<(Move, State)> = task
            .state
            .legal_moves()
            .into_iter()
            .filter(|&m| Some(m) != right)
            .filter_map(|m| Some((m, task.state.apply(m).ok()?)))
            .collect();
        if let Some(m) = right {
            wrongs.push((m, task.state.clone()));
        }
        let pick = if hard {
            usize::try_from(mix(self.seed ^ task.step)).unwrap_or(0) % wrongs.len().max(1)
        } else {
            rng.random_range(0..wrongs.len().max(1))
        };
        wrongs.into_iter().nth(pick).unwrap_or_else(|| {
            (
                Move {
                    disk: 1,
                    from: 0,
                    to: 0,
                },
                task.state.clone(),
            )
        })
    }
}

/// A malformed version of an answer: a short move, a lost disk, a doubled disk, or prose.
fn corrupt(text: String, rng: &mut StdRng) -> String {
    match rng.random_range(0..4) {
        0 => text.replacen("move = [", "move = [0, ", 1),
        1 => text.replacen(", 1]", "]", 1).replacen("[1]", "[]", 1),
        2 => text.replacen("next_state = [[", "next_state = [[1, ", 1),
        _ => "I would move the smallest disk one peg to the right.".to_string(),
    }
}

/// The microagent: answers a step from the previous move and the current state, through its
/// scripted model. It counts the samples of the current step, so that sample i of a step is
/// always the same answer.
struct Microagent {
    rates: Rates,
    second: Option<Rates>,
    step: u64,
    sample: u64,
    calls: Arc<AtomicU64>,
    log: Option<CallsLog>,
}

impl Agent for Microagent {
    type Task = StepTask;
    type Output = String;

    fn task_type(_: &StepTask) -> &'static str {
        "hanoi_step"
    }

    fn estimate(_: &StepTask) -> Usage {
        Usage::new(INPUT_TOKENS, OUTPUT_TOKENS, 0)
    }

    async fn handle(
        &mut self,
        ctx: &mut AgentContext,
        task: StepTask,
    ) -> Result<String, AgentError> {
        if task.step != self.step {
            self.step = task.step;
            self.sample = 0;
        }
        // With a second model, every other sample is its: its errors are its own
        // (independent, never correlated with the first model's hard steps).
        let text = match self.second {
            Some(second) if self.sample % 2 == 1 => second.answer(&task, self.sample),
            _ => self.rates.answer(&task, self.sample),
        };
        if let Some(log) = &self.log {
            log.record(task.step, self.sample);
        }
        self.sample += 1;
        self.calls.fetch_add(1, Ordering::Relaxed);
        let written = u64::try_from(text.len().div_ceil(4)).unwrap_or(u64::MAX);
        ctx.report_usage(Usage::new(INPUT_TOKENS, written.min(OUTPUT_TOKENS * 20), 0));
        Ok(text)
    }
}

// ---------------------------------------------------------------------------------------------
// The run.

#[derive(Debug, Clone)]
struct Options {
    disks: u8,
    rates: Rates,
    k: Option<u32>,
    cap: Option<u32>,
    vote: bool,
    length_cap: bool,
    second_model: bool,
    journal: Option<PathBuf>,
    calls_log: Option<PathBuf>,
    progress: bool,
}

fn parse_options(args: Vec<String>) -> Options {
    let mut options = Options {
        disks: 10,
        rates: Rates {
            seed: 1,
            wrong: 0.01,
            malformed: 0.005,
            overlong: 0.005,
            correlated: false,
        },
        k: None,
        cap: None,
        vote: true,
        length_cap: true,
        second_model: false,
        journal: None,
        calls_log: None,
        progress: false,
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = |what: &str| {
            args.next()
                .unwrap_or_else(|| CLI.fail(format!("{arg} takes {what}")))
        };
        fn number<T: std::str::FromStr>(flag: &str, text: String) -> T {
            text.parse()
                .unwrap_or_else(|_| CLI.fail(format!("{flag} takes a number, not {text:?}")))
        }
        fn probability(flag: &str, text: String) -> f64 {
            let p: f64 = number(flag, text);
            if !(0.0..=1.0).contains(&p) {
                CLI.fail(format!("{flag} takes a probability in [0, 1], not {p}"));
            }
            p
        }
        match arg.as_str() {
            "--disks" => {
                options.disks = number(&arg, value("a number"));
                if !(1..=24).contains(&options.disks) {
                    CLI.fail("--disks takes 1 to 24");
                }
            }
            "--error-rate" => options.rates.wrong = probability(&arg, value("a probability")),
            "--malformed" => options.rates.malformed = probability(&arg, value("a probability")),
            "--overlong" => options.rates.overlong = probability(&arg, value("a probability")),
            "--seed" => options.rates.seed = number(&arg, value("a number")),
            "--k" => options.k = Some(number(&arg, value("a number"))),
            "--cap" => options.cap = Some(number(&arg, value("a number"))),
            "--no-vote" => options.vote = false,
            "--correlated" => options.rates.correlated = true,
            "--no-length-cap" => options.length_cap = false,
            "--second-model" => options.second_model = true,
            "--journal" => options.journal = Some(value("a file").into()),
            "--calls-log" => options.calls_log = Some(value("a file").into()),
            "--progress" => options.progress = true,
            other => CLI.fail(format!("unexpected argument {other}")),
        }
    }
    options
}

/// The smallest k whose expected errors over `steps` votes, `steps × first_to_ahead_error(p,
/// k)`, are below `target`; `None` when no k up to 200 reaches it (p of 0.5 or more).
fn choose_k(p: f64, steps: u64, target: f64) -> Option<u32> {
    let steps = float(steps);
    (1..=200).find(|&k| first_to_ahead_error(p, k).is_ok_and(|e| steps * e < target))
}

/// The expected samples of a first-to-ahead-by-k vote with two answers, independent samples
/// wrong with probability p (q = 1 − p), and no cap: the expected duration of a gambler's ruin
/// from 0 to ±k (Feller, vol. 1, XIV.3), `k (1 − 2ε) / (q − p)` with ε the vote's error
/// ([`first_to_ahead_error`]); `k²` at p = q.
fn expected_samples(p: f64, k: u32) -> f64 {
    let q = 1.0 - p;
    if (q - p).abs() < 1e-12 {
        return f64::from(k) * f64::from(k);
    }
    let error = first_to_ahead_error(p, k).unwrap_or(0.0);
    f64::from(k) * (1.0 - 2.0 * error) / (q - p)
}

/// A count as a float (exact below 2^53, far above any count here).
#[allow(clippy::cast_precision_loss)]
fn float(n: u64) -> f64 {
    n as f64
}

/// What the steps' decisions counted, shared with the solver agent of a durable run.
#[derive(Debug, Default)]
struct Counters {
    red_flags: AtomicU64,
    undecided: AtomicU64,
}

/// How many times an undecided vote is asked again, each time with twice the cap before.
const ESCALATIONS: u32 = 5;

/// How a step is decided.
#[derive(Debug, Clone)]
enum Decide {
    /// By a vote, asked again with twice the cap while it is undecided (the specs in order).
    Vote(Vec<VoteSpec>),
    /// By one sample that passes the red flags.
    Once(RedFlagRules),
}

impl Decide {
    /// The winning text of one step and what its samples reported spending; an undecided vote
    /// (its cap reached) is asked again with twice the cap, up to [`ESCALATIONS`] times; a
    /// red-flagged single sample is drawn again, up to 100 times.
    async fn step(
        &self,
        agent: &AgentRef<Microagent>,
        task: &StepTask,
        counters: &Counters,
    ) -> Result<(String, Usage), AskError> {
        match self {
            Self::Vote(specs) => {
                for spec in specs {
                    match agent.ask_voting(task.clone(), spec).await {
                        Ok(voted) => {
                            counters
                                .red_flags
                                .fetch_add(u64::from(voted.red_flags), Ordering::Relaxed);
                            return Ok((voted.output, voted.usage));
                        }
                        Err(AskError::Failed {
                            error: AgentError::Failed(_),
                            ..
                        }) => {
                            counters.undecided.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(other) => return Err(other),
                    }
                }
            }
            Self::Once(flags) => {
                for _ in 0..100 {
                    let text = agent.ask(task.clone()).await?;
                    match flags.check(&text) {
                        Ok(()) => return Ok((text, Usage::default())),
                        Err(_) => {
                            counters.red_flags.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
        }
        Err(AskError::Failed {
            agent: agent.name().clone(),
            error: AgentError::failed(format!(
                "step {}: undecided however often it was asked",
                task.step + 1
            )),
        })
    }
}

/// The independent check: follows the optimal solution beside the run, and judges each
/// step's winner as it comes; the next step's task is built from the winner.
#[derive(Debug)]
struct Checker {
    disks: u8,
    optimal: Vec<Move>,
    truth: State,
    task: StepTask,
    errors: u64,
    first_error: Option<u64>,
    wrong_decisions: u64,
}

impl Checker {
    fn new(disks: u8) -> Self {
        Self {
            disks,
            optimal: optimal_moves(disks),
            truth: State::start(disks),
            task: StepTask {
                step: 0,
                previous: None,
                state: State::start(disks),
            },
            errors: 0,
            first_error: None,
            wrong_decisions: 0,
        }
    }

    /// Judges the winner of the current step and moves on to the next.
    fn observe(&mut self, text: &str) -> Result<(), String> {
        let step = self.task.step;
        let right = *usize::try_from(step)
            .ok()
            .and_then(|at| self.optimal.get(at))
            .ok_or("more steps than the solution has")?;
        let (m, next) = parse_answer(text, self.disks)
            .map_err(|flag| format!("step {}: the winner does not parse: {flag}", step + 1))?;
        if !right_for(&self.task, m, &next) {
            self.wrong_decisions += 1;
        }
        self.truth = self
            .truth
            .apply(right)
            .map_err(|e| format!("the optimal move {right:?} is illegal: {e:?}"))?;
        if m != right || next != self.truth {
            self.errors += 1;
            self.first_error.get_or_insert(step + 1);
        }
        self.task = StepTask {
            step: step + 1,
            previous: Some(m),
            state: next,
        };
        Ok(())
    }

    fn solved(&self) -> bool {
        self.errors == 0 && self.task.state.solved(self.disks)
    }
}

/// Whether (m, next) is the right answer to the task as given, judged by the simulator: the
/// move the textbook iterative solution makes from this state after this previous move (the
/// optimal one whenever the state is on the optimal path), legal, and its state applied.
fn right_for(task: &StepTask, m: Move, next: &State) -> bool {
    rule_move(task.previous, &task.state) == Some(m) && task.state.apply(m).as_ref() == Ok(next)
}

/// The durable run's input: the puzzle.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Solve {
    disks: u8,
}

/// With `--journal`, the run is one durable ask of this agent: each step a journaled step
/// ([`AgentContext::step_with_spend`]) whose work is the step's vote, so a process started
/// again after a kill replays the steps journaled (no sample drawn, nothing billed again)
/// and carries on from the first that is not. Its output is every step's winner.
struct Solver {
    microagent: Arc<OnceLock<AgentRef<Microagent>>>,
    decide: Decide,
    counters: Arc<Counters>,
    calls: Arc<AtomicU64>,
    progress: bool,
}

impl Agent for Solver {
    type Task = Solve;
    type Output = Vec<String>;

    async fn handle(
        &mut self,
        ctx: &mut AgentContext,
        solve: Solve,
    ) -> Result<Vec<String>, AgentError> {
        let mut checker = Checker::new(solve.disks);
        let steps = (1u64 << solve.disks) - 1;
        let mut winners = Vec::with_capacity(usize::try_from(steps).unwrap_or(0));
        let mut replayed = 0;
        let microagent = self
            .microagent
            .get()
            .ok_or_else(|| AgentError::permanent("the microagent has not started"))?
            .clone();
        for _ in 0..steps {
            let task = checker.task.clone();
            let before = self.calls.load(Ordering::Relaxed);
            let (microagent, decide, counters) = (&microagent, &self.decide, &self.counters);
            let text: String = ctx
                .step_with_spend("move", Effect::Idempotent, |_key| async move {
                    decide
                        .step(microagent, &task, counters)
                        .await
                        .map_err(|error| AgentError::failed(error.to_string()))
                })
                .await?;
            if self.calls.load(Ordering::Relaxed) == before {
                replayed += 1;
            } else if self.progress {
                println!("journaled step {}", checker.task.step + 1);
            }
            checker.observe(&text).map_err(AgentError::permanent)?;
            winners.push(text);
        }
        println!("replayed steps: {replayed}");
        Ok(winners)
    }
}

/// Appends `pid step sample` to the calls log for every real call, in one write (O_APPEND), so a
/// process killed mid-call leaves whole lines.
#[derive(Debug, Clone)]
struct CallsLog(Arc<Mutex<File>>);

impl CallsLog {
    fn record(&self, step: u64, sample: u64) {
        let line = format!("{} {step} {sample}\n", std::process::id());
        let mut file = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // The log is the test's evidence, not the run's: a failed write shows there.
        let _ = file.write_all(line.as_bytes());
    }
}

async fn run(options: Options) -> Result<(), Box<dyn std::error::Error>> {
    let disks = options.disks;
    let steps = (1u64 << disks) - 1;
    let p = options.rates.wrong;
    let k = match options.k {
        Some(k) => k,
        None => choose_k(p, steps, 0.01).ok_or_else(|| {
            format!("no k keeps the expected errors below 1 % at p = {p}: voting needs p < 0.5")
        })?,
    };
    let cap = options.cap.unwrap_or(4 * k).max(k);
    // The samples the run is expected to draw, red flags included (a sample is malformed with
    // one probability, else over-long with another); the token limit is twice that, plus one
    // vote's worst case (reserved before its first sample) twice over.
    let clean = (1.0 - options.rates.malformed) * (1.0 - options.rates.overlong);
    let drawn_per_vote = expected_samples(p, k) / clean.max(0.01);
    let per_step = if options.vote {
        drawn_per_vote
    } else {
        1.0 / clean.max(0.01)
    };
    // Whole tokens: rounded up, and far below u64::MAX.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let need = (2.0 * float(steps) * per_step * float(INPUT_TOKENS + OUTPUT_TOKENS)).ceil() as u64;
    let limit = need + 2 * (u64::from(cap) << ESCALATIONS) * (INPUT_TOKENS + OUTPUT_TOKENS * 20);
    let budget = Budget::builder()
        .process_limits(Limits::new().tokens(limit))
        .build()?;
    let mut builder = System::builder()
        .budget(budget.clone())
        .ask_timeout(Duration::from_secs(24 * 3600));
    let journal = match &options.journal {
        Some(path) => {
            let (journal, opened) =
                Journal::open(LogStorage::open(path)?, JournalConfig::default())?;
            println!(
                "journal {}: {} records, {} unfinished runs",
                path.display(),
                opened.records,
                opened.unfinished.len()
            );
            builder = builder.journal(journal.clone());
            Some(journal)
        }
        None => None,
    };
    let system = builder.build()?;
    let calls = Arc::new(AtomicU64::new(0));
    let log = match &options.calls_log {
        Some(path) => Some(CallsLog(Arc::new(Mutex::new(
            OpenOptions::new().create(true).append(true).open(path)?,
        )))),
        None => None,
    };
    let rates = options.rates;
    let counter = calls.clone();
    let second = options.second_model.then_some(Rates {
        seed: mix(rates.seed ^ 0x5EC0_0D00),
        correlated: false,
        ..rates
    });
    let spec = AgentSpec::new("microagent", move || Microagent {
        rates,
        second,
        step: u64::MAX,
        sample: 0,
        calls: counter.clone(),
        log: log.clone(),
    });

    let max_chars = 64 + 8 * usize::from(disks);
    let mut flags = RedFlagRules::new();
    if options.length_cap {
        flags = flags.max_chars(max_chars);
    }
    let flags = flags.custom("hanoi_answer", move |text| {
        parse_answer(text, disks).map(|_| ())
    });
    let decide = if options.vote {
        let votes = (0..=ESCALATIONS)
            .map(|doubled| {
                Ok(
                    VoteSpec::new(VoteRule::first_to_ahead_by(k, cap << doubled))?
                        .key(AnswerKey::Exact)
                        .red_flags(flags.clone()),
                )
            })
            .collect::<Result<Vec<_>, VoteError>>()?;
        println!(
            "disks {disks}, p = {p}, first-to-ahead-by-{k} within {cap} samples: theory {:.2e} errors per step, {:.3} expected over the run, {:.3} samples per vote",
            first_to_ahead_error(p, k)?,
            float(steps) * first_to_ahead_error(p, k)?,
            expected_samples(p, k)
        );
        Decide::Vote(votes)
    } else {
        println!("disks {disks}, p = {p}, no vote: one sample per step");
        Decide::Once(flags)
    };
    if options.rates.correlated {
        println!(
            "correlated: one step in {:.0} is hard (wrong {HARD_ERROR_RATE}, rambling {HARD_RAMBLES}); length cap {}; second model {}",
            1.0 / HARD_STEP_RATE,
            if options.length_cap { "on" } else { "off" },
            if options.second_model { "on" } else { "off" }
        );
    }

    let mut tree = SupervisorSpec::one_for_one("maker").child(system.agent(spec)?);
    let counters = Arc::new(Counters::default());
    // The solver's handle on the microagent, known once the tree has started.
    let handle: Arc<OnceLock<AgentRef<Microagent>>> = Arc::default();
    if journal.is_some() {
        let (handle, decide, counters, calls) = (
            handle.clone(),
            decide.clone(),
            counters.clone(),
            calls.clone(),
        );
        let progress = options.progress;
        let solver = AgentSpec::new("solver", move || Solver {
            microagent: handle.clone(),
            decide: decide.clone(),
            counters: counters.clone(),
            calls: calls.clone(),
            progress,
        });
        tree = tree.child(system.agent(solver)?);
    }
    system.start(tree).await?;
    let agent = system.agent_ref::<Microagent>("microagent")?;
    let _ = handle.set(agent.clone());
    let started = Instant::now();
    let mut checker = Checker::new(disks);
    match &journal {
        None => {
            for _ in 0..steps {
                let (text, _) = decide.step(&agent, &checker.task, &counters).await?;
                checker.observe(&text)?;
            }
        }
        Some(_) => {
            let solver = system.agent_ref::<Solver>("solver")?;
            let winners = solver
                .ask_run(RunId::new("maker-hanoi")?, Solve { disks })
                .await?;
            for text in &winners {
                checker.observe(text)?;
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let samples = calls.load(Ordering::Relaxed);
    let spent = budget.remaining("microagent");
    system.shutdown(Duration::from_secs(5)).await?;
    if let Some(journal) = journal {
        journal.close().await?;
    }

    let (per_step, per_sample) = (
        float(samples) / float(steps),
        seconds * 1e6 / float(samples.max(1)),
    );
    println!(
        "first error: {}",
        checker
            .first_error
            .map_or_else(|| "none".to_string(), |s| format!("step {s}"))
    );
    println!("solved: {}", if checker.solved() { "yes" } else { "no" });
    println!(
        "k: {}",
        if options.vote {
            k.to_string()
        } else {
            "no vote".into()
        }
    );
    if options.vote {
        println!("samples per step: {per_step:.3} (theory {drawn_per_vote:.3})");
    } else {
        println!("samples per step: {per_step:.3}");
    }
    println!(
        "undecided votes: {}",
        counters.undecided.load(Ordering::Relaxed)
    );
    println!("wrong decisions: {}", checker.wrong_decisions);
    println!(
        "token limit: {limit}, remaining: {}",
        spent
            .tokens
            .map_or_else(|| "unlimited".to_string(), |t| t.to_string())
    );
    println!("us per step: {:.2}", seconds * 1e6 / float(steps));
    println!("us per sample: {per_sample:.2}");
    println!("steps: {steps}");
    println!("errors: {}", checker.errors);
    println!("samples: {samples}");
    println!("red_flags: {}", counters.red_flags.load(Ordering::Relaxed));
    println!("seconds: {seconds:.3}");
    Ok(())
}

fn main() -> ExitCode {
    let options = parse_options(CLI.args());
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("maker_hanoi: no runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("maker_hanoi: {error}");
            ExitCode::FAILURE
        }
    }
}
