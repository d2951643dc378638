//! Drawn faults are deterministic for a seed, and as frequent as their probabilities say.
//! Through a real `System`, paused clock.

mod common;

use std::time::Duration;

use common::*;
use overseer_agent::{AskOutcome, Usage};
use overseer_chaos::rand::Rng;
use overseer_chaos::{Fault, FaultInjector, FaultKind, FaultPlan};
use overseer_supervisor::SupervisorSpec;

/// Everything a reader of the events could tell about one ask.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    outcome: Option<String>,
    injected: Option<String>,
    usage: Usage,
    latency: Duration,
    answer: Option<Reply>,
}

fn chaotic_plan() -> FaultPlan {
    FaultPlan::builder()
        .probability(Fault::Error, 0.15)
        .probability(Fault::Panic, 0.05)
        .probability(Fault::Slow(Duration::from_secs(1)), 0.10)
        .probability(Fault::InflateUsage(4), 0.10)
        .probability(Fault::Corrupt, 0.10)
        .build()
        .unwrap()
}

fn injector(seed: u64) -> FaultInjector<Worker> {
    FaultInjector::with_corruptor(chaotic_plan(), seed, |reply: Reply, rng| Reply {
        text: format!("answer-{}", rng.random_range(0..1_000_000u32)),
        ..reply
    })
}

/// Runs 200 tasks of mixed types through a fresh system with `seed`; what was seen of each.
async fn run(seed: u64) -> (Vec<Seen>, overseer_chaos::ChaosStats) {
    let injector = injector(seed);
    let mut harness = Harness::start_with(
        &injector,
        SupervisorSpec::one_for_one("root").intensity(1_000, Duration::from_secs(1)),
    )
    .await
    .unwrap();
    let mut answers = Vec::new();
    for n in 0..200 {
        let task = if n % 3 == 0 { write("w") } else { search("s") };
        answers.push(harness.worker.ask(task).await.ok());
    }
    let seen = harness
        .asks()
        .into_iter()
        .zip(answers)
        .map(|(ask, answer)| Seen {
            outcome: match ask.outcome {
                AskOutcome::Ok => None,
                AskOutcome::Error { kind, .. } => Some(kind.into_owned()),
            },
            injected: ask.injected.map(String::from),
            usage: ask.usage,
            latency: ask.latency,
            answer,
        })
        .collect();
    (seen, injector.stats())
}

#[tokio::test(start_paused = true)]
async fn the_same_seed_and_tasks_give_the_same_faults() {
    let (first, first_stats) = run(2024).await;
    let (second, second_stats) = run(2024).await;
    assert_eq!(first, second);
    assert_eq!(first_stats, second_stats);
    // And the run was chaotic enough to mean something: every kind showed up.
    for kind in [
        FaultKind::Error,
        FaultKind::Panic,
        FaultKind::Slow,
        FaultKind::InflateUsage,
        FaultKind::Corrupt,
    ] {
        assert!(first_stats.count(kind) > 0, "no {kind} in {first_stats}");
    }
    assert!(first.iter().any(|seen| seen.injected.is_none()));
}

#[tokio::test(start_paused = true)]
async fn different_seeds_give_different_faults() {
    let (first, _) = run(1).await;
    let (second, _) = run(2).await;
    let marks = |seen: &[Seen]| -> Vec<Option<String>> {
        seen.iter().map(|seen| seen.injected.clone()).collect()
    };
    assert_ne!(marks(&first), marks(&second));
}

#[tokio::test(start_paused = true)]
async fn every_event_of_an_injected_fault_is_marked_and_no_other_is() {
    let (seen, stats) = run(99).await;
    let marked = seen.iter().filter(|seen| seen.injected.is_some()).count() as u64;
    assert_eq!(marked, stats.total_injected());
    for seen in &seen {
        match seen.injected.as_deref() {
            None => {
                assert_eq!(seen.outcome, None, "the worker never fails by itself");
                assert_eq!(seen.usage, USAGE);
            }
            Some("error") => assert_eq!(seen.outcome.as_deref(), Some("failed")),
            Some("panic") => assert_eq!(seen.outcome.as_deref(), Some("crashed")),
            Some("slow") => assert_eq!(seen.latency, Duration::from_secs(1)),
            Some("inflate_usage") => assert_eq!(seen.usage, Usage::new(400, 80, 200)),
            Some("corrupt") => {
                let text = &seen.answer.as_ref().expect("answered").text;
                assert!(text.starts_with("answer-"), "{text}");
            }
            Some(other) => panic!("unexpected fault {other}"),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_fault_drawn_with_probability_p_hits_about_p_of_the_calls() {
    let plan = FaultPlan::builder()
        .probability(Fault::Error, 0.05)
        .build()
        .unwrap();
    let injector = FaultInjector::new(plan, 5).unwrap();
    let mut harness = Harness::start(&injector).await;
    let mut failed = 0;
    for _ in 0..10_000 {
        if harness.worker.ask(search("q")).await.is_err() {
            failed += 1;
        }
        harness.drain();
    }
    // 5% of 10,000 is 500, with a standard deviation of about 22: ±1% is ±100.
    assert!((400..=600).contains(&failed), "{failed} of 10,000 failed");
    assert_eq!(injector.stats().count(FaultKind::Error), failed);
    assert_eq!(injector.stats().calls, 10_000);
}
