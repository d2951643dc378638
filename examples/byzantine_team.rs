//! A team whose agents fail without crashing, caught by the semantic layer. The researcher's
//! model (a `ScriptedModel` with a seeded per-sample error rate) answers right most of the
//! time, but now and then wrong (`{"answer": 41}`), malformed (prose instead of JSON) or
//! over-long; a second agent calls its search tool with the same arguments until stopped.
//!
//! - a **validator** on the researcher refuses malformed answers (the ask fails with an
//!   invalid output, which its breaker would count as a crash);
//! - an **inspector** (a fact-checker outside the researcher's context) rejects wrong answers
//!   with a reason, and the question is asked again with that reason as feedback;
//! - a **vote** (first-to-ahead-by-3 within 15 samples) red-flags over-long samples and
//!   decides the answer, its worst case reserved in the budget before the first sample;
//! - the **loop detector** fails the looping agent's third identical search;
//! - the **confidence tracker** records the researcher's claimed 0.97 against how often it was
//!   right.
//!
//! Everything caught is printed from the system's event stream. The clock is paused and the
//! model's errors come from a seed, so the story is the same on every run.
//!
//! ```text
//! cargo run --example byzantine_team [-- --seed N]
//! ```

use std::sync::{Arc, Mutex};
use std::time::Duration;

use overseer::agent::{
    Agent, AgentContext, AgentError, AgentSpec, AskError, Finding, Inspection, LoopAction,
    ModelRequest, ScriptedModel, SemanticConfig, System, SystemEvent, Usage, Verdict, VoteSpec,
};
use overseer::budget::{Budget, Limits};
use overseer::semantic::confidence::ConfidenceConfig;
use overseer::semantic::loop_detect::{LoopConfig, LoopThresholds};
use overseer::semantic::red_flag::RedFlagRules;
use overseer::semantic::validator::parses_as;
use overseer::semantic::vote::{first_to_ahead_error, AnswerKey, VoteRule};
use overseer::supervisor::SupervisorSpec;
use tokio::sync::broadcast;

#[allow(dead_code)] // each example uses part of it
#[path = "support/cli.rs"]
mod cli;

const CLI: cli::Cli = cli::Cli {
    name: "byzantine_team",
    about: "a corrupting researcher and a looping agent, caught by a validator, an inspector, a vote and the loop detector",
    synopsis: "[--seed N]",
    options: &[("--seed N", "the seed of the model's errors (default 7)")],
};

/// The right answer to every question here.
const RIGHT: &str = r#"{"answer": 42}"#;

/// A question, with the reason its last answer was rejected if this is a retry.
#[derive(Debug, Clone)]
struct Question {
    text: String,
    feedback: Option<String>,
}

/// What the researcher's answers must parse as.
#[derive(serde::Deserialize)]
#[allow(dead_code)] // read by the validator only
struct Answer {
    answer: u32,
    #[serde(default)]
    notes: String,
}

/// Asks its model; the model is the one that corrupts.
struct Researcher {
    model: ScriptedModel,
}

impl Agent for Researcher {
    type Task = Question;
    type Output = String;

    fn task_type(_: &Question) -> &'static str {
        "research"
    }

    fn estimate(_: &Question) -> Usage {
        Usage::new(40, 20, 0)
    }

    async fn handle(&mut self, ctx: &mut AgentContext, q: Question) -> Result<String, AgentError> {
        let prompt = match &q.feedback {
            Some(reason) => format!("question: {}\nfeedback: {reason}", q.text),
            None => format!("question: {}", q.text),
        };
        Ok(ctx
            .model(&self.model, ModelRequest::new(prompt))
            .await?
            .text)
    }
}

/// Knows the right answer; rejects any other, with the reason.
struct FactChecker;

impl Agent for FactChecker {
    type Task = Inspection<Question, String>;
    type Output = Verdict<String>;

    async fn handle(
        &mut self,
        _: &mut AgentContext,
        seen: Self::Task,
    ) -> Result<Verdict<String>, AgentError> {
        let value: serde_json::Value = serde_json::from_str(&seen.output).unwrap_or_default();
        Ok(match value["answer"].as_u64() {
            Some(42) => Verdict::Accept,
            other => Verdict::Reject(format!(
                "the answer is not {}: check the sources again",
                other.map_or_else(|| "missing".to_string(), |n| n.to_string())
            )),
        })
    }
}

/// Searches for the same thing until the loop detector stops it.
struct Looper;

impl Agent for Looper {
    type Task = ();
    type Output = u32;

    async fn handle(&mut self, ctx: &mut AgentContext, (): ()) -> Result<u32, AgentError> {
        let args = serde_json::json!({"query": "the answer", "page": 1});
        let mut calls = 0;
        loop {
            calls += 1;
            println!("   looper: search {args} (call {calls})");
            ctx.tool_call("search", &args, Some(&serde_json::json!("no new results")))?;
            tokio::time::sleep(Duration::from_secs(1)).await;
            if calls == 100 {
                return Ok(calls);
            }
        }
    }
}

/// A model whose answers are right, wrong, malformed or over-long at seeded rates; with
/// feedback it answers right.
fn corrupting_model(seed: u64) -> ScriptedModel {
    let state = Arc::new(Mutex::new(seed));
    ScriptedModel::new()
        .when("feedback", |_| Ok(RIGHT.to_string()))
        .when("question", move |_| {
            let roll = next(&mut state.lock().unwrap_or_else(|e| e.into_inner())) % 100;
            Ok(match roll {
                0..=19 => r#"{"answer": 41}"#.to_string(),
                20..=34 => "I believe the answer is forty-two".to_string(),
                35..=44 => format!(
                    r#"{{"answer": 42, "notes": "{}"}}"#,
                    "and so on ".repeat(12).trim_end()
                ),
                _ => RIGHT.to_string(),
            })
        })
}

/// splitmix64: a tiny seeded generator, so the example needs no dependency for it.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn seed() -> u64 {
    let args = CLI.args();
    match args.as_slice() {
        [] => 7,
        [flag, n] if flag == "--seed" => n
            .parse()
            .unwrap_or_else(|_| CLI.fail(format!("--seed takes a number, not {n:?}"))),
        _ => CLI.fail(format!("unexpected arguments: {}", args.join(" "))),
    }
}

/// What was caught, counted from the events.
#[derive(Default)]
struct Caught {
    validator: u32,
    inspector: u32,
    red_flags: u32,
    loops: u32,
    over_confident: u32,
}

fn drain(events: &mut broadcast::Receiver<SystemEvent>, caught: &mut Caught) {
    while let Ok(event) = events.try_recv() {
        let SystemEvent::Semantic(found) = &event else {
            continue;
        };
        match &found.finding {
            Finding::Rejected { .. } => caught.validator += 1,
            Finding::Inspected {
                reason: Some(_), ..
            } => caught.inspector += 1,
            Finding::RedFlagged { .. } => caught.red_flags += 1,
            Finding::Loop { .. } => caught.loops += 1,
            Finding::OverConfident { .. } => caught.over_confident += 1,
            _ => {}
        }
        println!("   event: {event}");
    }
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seed = seed();
    // The researcher is asked the same questions again and again by design (retries with the
    // inspector's reasons, ten questions of one kind): "model" gets thresholds of its own.
    let loops = LoopConfig::new(LoopThresholds::default().repeats(3)).target(
        "model",
        LoopThresholds::default()
            .repeats(1000)
            .no_progress(1000, None),
    );
    let semantic = SemanticConfig::new()
        .loops(loops, LoopAction::Fail)?
        .confidence(ConfidenceConfig::default().min_samples(5))?;
    let budget = Budget::builder()
        .process_limits(Limits::new().tokens(100_000))
        .build()?;
    let system = System::builder()
        .ask_timeout(Duration::from_secs(30))
        .budget(budget)
        .semantic(semantic)
        .build()?;
    let model = corrupting_model(seed);
    let researcher = AgentSpec::new("researcher", move || Researcher {
        model: model.clone(),
    })
    .validator(parses_as::<Answer>())
    .confidence(|_: &String| Some(0.97));
    let team = SupervisorSpec::one_for_one("team")
        .child(system.agent(researcher)?)
        .child(system.agent(AgentSpec::new("fact-checker", || FactChecker))?)
        .child(system.agent(AgentSpec::new("looper", || Looper))?);
    let mut events = system.subscribe();
    system.start(team).await?;
    let researcher = system.agent_ref::<Researcher>("researcher")?;
    let checker = system.agent_ref::<FactChecker>("fact-checker")?;
    let looper = system.agent_ref::<Looper>("looper")?;
    let mut caught = Caught::default();
    println!("seed {seed}");

    println!(
        "== validator and inspector: 10 questions, a rejected answer asked again with its reason"
    );
    for n in 1..=10 {
        let question = Question {
            text: format!("q{n}: what is the answer?"),
            feedback: None,
        };
        match researcher.ask_inspected(question.clone(), &checker).await {
            Ok(answer) => println!("q{n}: answered {answer}"),
            Err(AskError::Failed {
                error: AgentError::InvalidOutput(reason),
                ..
            }) => {
                println!("q{n}: refused: {reason}");
                let retry = Question {
                    feedback: Some(reason),
                    ..question
                };
                let answer = researcher.ask_inspected(retry, &checker).await?;
                println!("q{n}: asked again with the reason: answered {answer}");
            }
            Err(other) => return Err(other.into()),
        }
        drain(&mut events, &mut caught);
    }

    println!("== vote: first-to-ahead-by-3 within 15 samples, over 40 characters red-flagged");
    // Of the samples that vote (not malformed, not over-long), 20 in 75 are wrong.
    let p = 20.0 / 75.0;
    println!(
        "theory: at p = {p:.3} per sample, first-to-ahead-by-3 errs {:.2} % of the time",
        100.0 * first_to_ahead_error(p, 3)?
    );
    let spec = VoteSpec::new(VoteRule::first_to_ahead_by(3, 15))?
        .key(AnswerKey::JsonPointer("/answer".into()))
        .red_flags(RedFlagRules::new().max_chars(40));
    let question = Question {
        text: "the critical step: what is the answer?".into(),
        feedback: None,
    };
    let voted = researcher.ask_voting(question, &spec).await?;
    drain(&mut events, &mut caught);
    println!(
        "vote: {} by {} after {} samples ({} red-flagged or failed)",
        voted.winner, voted.margin, voted.samples_used, voted.red_flags
    );

    println!("== loop detector: three identical searches in a row");
    match looper.ask(()).await {
        Err(AskError::Failed { error, .. }) => println!("looper stopped: {error}"),
        other => println!("looper was not stopped: {other:?}"),
    }
    drain(&mut events, &mut caught);

    if let Some((calibration, flag)) = researcher.calibration("research") {
        println!(
            "confidence: the researcher claimed 0.97 on {} judged outputs, {} of them wrong{}",
            calibration.high_outputs,
            calibration.high_wrong,
            if flag.is_some() {
                ": flagged over-confident"
            } else {
                ""
            }
        );
    }
    println!("== caught");
    println!("validator rejections: {}", caught.validator);
    println!("inspector rejections: {}", caught.inspector);
    println!("vote red flags: {}", caught.red_flags);
    println!("vote winner: {}", voted.winner);
    println!("loops: {}", caught.loops);
    println!("over-confidence flags: {}", caught.over_confident);
    system.shutdown(Duration::from_secs(5)).await?;
    Ok(())
}
