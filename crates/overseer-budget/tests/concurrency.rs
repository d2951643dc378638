//! No overshoot under concurrency, and exact accounting.
//!
//! Eight threads run 10 000 reserve/commit/release cycles each, with sizes from a seeded
//! RNG, against limits the run is sized to hit near its end. Every thread checks the
//! invariant after every operation, an observer thread checks it continuously, and at the
//! end the ledgers must hold exactly the sum of what the threads committed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

use overseer_budget::{Budget, Dimension, Ledger, Limits, Refusal, Scope, Spend};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const THREADS: u64 = 8;
const CYCLES: u64 = 10_000;
const SEED: u64 = 0x5eed_b0d9;

/// Committed + reserved ≤ limit in every limited dimension, read through `status()`.
fn assert_within_limits(ledger: &Ledger) {
    let status = ledger.status();
    for dimension in Dimension::ALL {
        let d = status.dimension(dimension);
        if let Some(limit) = d.limit {
            assert!(
                d.committed + d.reserved <= limit,
                "{} {dimension}: {} committed + {} reserved > {limit}",
                status.scope,
                d.committed,
                d.reserved
            );
        }
    }
}

#[derive(Default, Clone, Copy)]
struct Tally {
    tokens: u64,
    cost: u64,
    steps: u64,
    refused: u64,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.tokens += other.tokens;
        self.cost += other.cost;
        self.steps += other.steps;
        self.refused += other.refused;
    }
}

/// One random call: an estimate, and then commit (within the estimate), release, or drop.
fn random_call(rng: &mut StdRng) -> (Spend, u8, Spend) {
    let estimate = Spend::new(rng.random_range(1..=500), rng.random_range(0..=2_000));
    let ending = rng.random_range(0..6u8);
    let actual = Spend::new(
        rng.random_range(0..=estimate.tokens),
        rng.random_range(0..=estimate.cost_micros),
    );
    (estimate, ending, actual)
}

fn spawn_observer(ledgers: Vec<Ledger>, done: Arc<AtomicBool>) -> thread::JoinHandle<u64> {
    thread::spawn(move || {
        let mut observations = 0;
        while !done.load(Ordering::Acquire) {
            for ledger in &ledgers {
                assert_within_limits(ledger);
            }
            observations += 1;
        }
        observations
    })
}

#[test]
fn a_shared_ledger_never_overshoots_and_accounts_exactly() {
    // Expected spend is about 84 tokens, 335 micro-units and 0.67 steps a cycle, 80 000
    // cycles in all: every limit is reached in the last quarter of the run.
    let limits = Limits::new()
        .tokens(5_000_000)
        .cost_micros(20_000_000)
        .steps(50_000);
    let ledger = Ledger::new(Scope::Process, limits).unwrap();
    let barrier = Arc::new(Barrier::new(THREADS as usize));
    let done = Arc::new(AtomicBool::new(false));
    let observer = spawn_observer(vec![ledger.clone()], done.clone());

    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (ledger, barrier) = (ledger.clone(), barrier.clone());
            thread::spawn(move || {
                let mut rng = StdRng::seed_from_u64(SEED + t);
                let mut tally = Tally::default();
                barrier.wait();
                for _ in 0..CYCLES {
                    let (estimate, ending, actual) = random_call(&mut rng);
                    let reserved = ledger.reserve(estimate);
                    assert_within_limits(&ledger);
                    let call = match reserved {
                        Ok(call) => call,
                        Err(Refusal::LimitExceeded { .. }) => {
                            tally.refused += 1;
                            continue;
                        }
                        Err(other) => panic!("unexpected refusal {other}"),
                    };
                    match ending {
                        0 => call.release(),
                        1 => drop(call),
                        _ => {
                            call.commit(actual);
                            tally.tokens += actual.tokens;
                            tally.cost += actual.cost_micros;
                            tally.steps += 1;
                        }
                    }
                    assert_within_limits(&ledger);
                }
                tally
            })
        })
        .collect();
    let mut total = Tally::default();
    for w in workers {
        total.add(w.join().unwrap());
    }
    done.store(true, Ordering::Release);
    let observations = observer.join().unwrap();

    assert_eq!(ledger.committed(Dimension::Tokens), total.tokens);
    assert_eq!(ledger.committed(Dimension::Cost), total.cost);
    assert_eq!(ledger.committed(Dimension::Steps), total.steps);
    for dimension in Dimension::ALL {
        assert_eq!(ledger.reserved(dimension), 0, "{dimension} still reserved");
    }
    assert_eq!(
        ledger.remaining().steps,
        Some(50_000 - total.steps),
        "released budget fully returned"
    );
    assert!(total.refused > 0, "the run must reach a limit to test it");
    assert!(observations > 0);
}

#[test]
fn agents_sharing_a_process_budget_never_overshoot_either_scope() {
    const AGENTS: u64 = 4;
    let budget = Budget::builder()
        .process_limits(
            Limits::new()
                .tokens(5_000_000)
                .cost_micros(20_000_000)
                .steps(50_000),
        )
        .default_agent_limits(Limits::new().tokens(1_500_000).steps(14_000))
        .build()
        .unwrap();
    let agent_names: Vec<String> = (0..AGENTS).map(|a| format!("agent-{a}")).collect();
    for name in &agent_names {
        // Create the agent ledgers up front so the observer can watch them.
        budget.admit(name, Spend::ZERO).unwrap().release();
    }
    let mut watched = vec![budget.process().clone()];
    watched.extend(agent_names.iter().map(|n| budget.agent(n).unwrap()));
    let done = Arc::new(AtomicBool::new(false));
    let observer = spawn_observer(watched.clone(), done.clone());
    let barrier = Arc::new(Barrier::new(THREADS as usize));

    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (budget, barrier) = (budget.clone(), barrier.clone());
            let agent = agent_names[(t % AGENTS) as usize].clone();
            thread::spawn(move || {
                let mut rng = StdRng::seed_from_u64(SEED ^ (t << 8));
                let mut tally = Tally::default();
                let mut seen_tripped = false;
                barrier.wait();
                for _ in 0..CYCLES {
                    let (estimate, ending, actual) = random_call(&mut rng);
                    seen_tripped |= budget.is_tripped();
                    let call = match budget.admit(&agent, estimate) {
                        Ok(call) => call,
                        Err(_) => {
                            tally.refused += 1;
                            continue;
                        }
                    };
                    assert!(!seen_tripped, "admitted after the trip was seen");
                    match ending {
                        0 => call.release(),
                        1 => drop(call),
                        _ => {
                            call.commit(actual);
                            tally.tokens += actual.tokens;
                            tally.cost += actual.cost_micros;
                            tally.steps += 1;
                        }
                    }
                }
                tally
            })
        })
        .collect();
    let mut total = Tally::default();
    for w in workers {
        total.add(w.join().unwrap());
    }
    done.store(true, Ordering::Release);
    observer.join().unwrap();

    let process = budget.process();
    assert_eq!(process.committed(Dimension::Tokens), total.tokens);
    assert_eq!(process.committed(Dimension::Cost), total.cost);
    assert_eq!(process.committed(Dimension::Steps), total.steps);
    for dimension in Dimension::ALL {
        let agents_sum: u64 = watched[1..].iter().map(|l| l.committed(dimension)).sum();
        assert_eq!(agents_sum, process.committed(dimension), "{dimension}");
        for ledger in &watched {
            assert_eq!(ledger.reserved(dimension), 0);
        }
    }
    for ledger in &watched {
        assert_within_limits(ledger);
    }
    assert!(total.refused > 0, "the run must reach a limit to test it");
}
