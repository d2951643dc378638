//! Scenario 5: Overseer's per-ask governance, timed alone: a circuit breaker's admission plus
//! outcome record, and a budget's reservation plus commit, on one and two threads. The peers
//! have neither. The cases are the ones `crates/overseer-breaker/benches/breaker.rs` and
//! `crates/overseer-budget/benches/budget.rs` measure with criterion, timed here with a plain
//! loop.

use std::hint::black_box;
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use overseer::breaker::{BreakerConfig, BreakerKey, BreakerRegistry, Outcome as BreakerOutcome};
use overseer::budget::{Budget, Ledger, Limits, Scope, Spend};

use super::Config;
use crate::measure::{fail, Outcome};
use crate::report::{count, Column, Row, Table, Unit};
use crate::systems::Role;

/// The latency recorded with each breaker outcome.
const LATENCY: Duration = Duration::from_millis(1500);
/// What each reservation holds.
const ESTIMATE: Spend = Spend::new(1_000, 3_000);
/// What each commit reports.
const ACTUAL: Spend = Spend::new(800, 2_400);

/// Limited in every dimension, so every reservation goes through the compare-and-swap against
/// a limit, but so far that no run reaches a tier or the limit.
fn big_limits() -> Limits {
    let big = u64::MAX / 4;
    Limits::new().tokens(big).cost_micros(big).steps(big)
}

fn key(index: usize) -> BreakerKey {
    BreakerKey::new(format!("agent-{index}"), "summarize")
}

fn registry() -> Outcome<BreakerRegistry> {
    let registry = BreakerRegistry::new(BreakerConfig::default().seed(Some(1)))
        .map_err(|error| fail(format!("breaker registry: {error}")))?;
    for index in 0..2 {
        // Existing keys only: creating a breaker is not what is measured.
        registry.handle(&key(index));
    }
    Ok(registry)
}

fn budget() -> Outcome<Budget> {
    Budget::builder()
        .process_limits(big_limits())
        .default_agent_limits(big_limits())
        .build()
        .map_err(|error| fail(format!("budget: {error}")))
}

/// Runs `op(thread index)` `ops` times on each of `threads` threads started together; returns
/// the slowest thread's time per operation.
fn per_op(threads: usize, ops: u64, op: impl Fn(usize) + Sync) -> Duration {
    let barrier = Barrier::new(threads);
    let slowest = thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|index| {
                let (barrier, op) = (&barrier, &op);
                scope.spawn(move || {
                    for _ in 0..ops / 10 {
                        op(index);
                    }
                    barrier.wait();
                    let started = Instant::now();
                    for _ in 0..ops {
                        op(index);
                    }
                    started.elapsed()
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().unwrap_or(Duration::MAX))
            .max()
            .unwrap_or_default()
    });
    slowest / ops as u32
}

/// One case: its name, its thread count, and one repetition's time per operation.
struct Case {
    name: &'static str,
    note: &'static str,
    threads: usize,
    run: fn(usize, u64) -> Outcome<Duration>,
}

const CASES: [Case; 8] = [
    Case {
        name: "breaker: kept handle",
        note: "`try_acquire` + `record(Success)` on the handle an agent caches (the call path)",
        threads: 1,
        run: |threads, ops| {
            let registry = registry()?;
            let handles = [registry.handle(&key(0)), registry.handle(&key(1))];
            Ok(per_op(threads, ops, |t| {
                if let Ok(permit) = black_box(&handles[t]).try_acquire() {
                    black_box(permit.record(BreakerOutcome::Success, LATENCY));
                }
            }))
        },
    },
    Case {
        name: "breaker: kept handle, distinct keys",
        note: "each thread on its own (agent, task type)",
        threads: 2,
        run: |threads, ops| {
            let registry = registry()?;
            let handles = [registry.handle(&key(0)), registry.handle(&key(1))];
            Ok(per_op(threads, ops, |t| {
                if let Ok(permit) = black_box(&handles[t]).try_acquire() {
                    black_box(permit.record(BreakerOutcome::Success, LATENCY));
                }
            }))
        },
    },
    Case {
        name: "breaker: kept handle, same key",
        note: "both threads on one breaker",
        threads: 2,
        run: |threads, ops| {
            let registry = registry()?;
            let handle = registry.handle(&key(0));
            Ok(per_op(threads, ops, |_| {
                if let Ok(permit) = black_box(&handle).try_acquire() {
                    black_box(permit.record(BreakerOutcome::Success, LATENCY));
                }
            }))
        },
    },
    Case {
        name: "breaker: registry lookup by key",
        note: "`BreakerRegistry::try_acquire(&key)` + `record`",
        threads: 1,
        run: |threads, ops| {
            let registry = registry()?;
            let keys = [key(0), key(1)];
            Ok(per_op(threads, ops, |t| {
                if let Ok(permit) = registry.try_acquire(black_box(&keys[t])) {
                    black_box(registry.record(permit, BreakerOutcome::Success, LATENCY));
                }
            }))
        },
    },
    Case {
        name: "budget: ledger reserve + commit",
        note: "`Ledger::reserve` + `Reservation::commit`, one ledger",
        threads: 1,
        run: ledger_case,
    },
    Case {
        name: "budget: ledger reserve + commit",
        note: "both threads on one ledger",
        threads: 2,
        run: ledger_case,
    },
    Case {
        name: "budget: admit + commit",
        note: "`Budget::admit` + `commit`: the agent's and the process's ledgers",
        threads: 1,
        run: budget_case,
    },
    Case {
        name: "budget: admit + commit",
        note: "two agents, one process ledger",
        threads: 2,
        run: budget_case,
    },
];

fn ledger_case(threads: usize, ops: u64) -> Outcome<Duration> {
    let ledger = Ledger::new(Scope::Process, big_limits())
        .map_err(|error| fail(format!("ledger: {error}")))?;
    Ok(per_op(threads, ops, |_| {
        if let Ok(reservation) = ledger.reserve(black_box(ESTIMATE)) {
            black_box(reservation.commit(black_box(ACTUAL)));
        }
    }))
}

fn budget_case(threads: usize, ops: u64) -> Outcome<Duration> {
    let budget = budget()?;
    let agents = ["agent-0", "agent-1"];
    Ok(per_op(threads, ops, |t| {
        if let Ok(reservation) = budget.admit(agents[t], black_box(ESTIMATE)) {
            black_box(reservation.commit(black_box(ACTUAL)));
        }
    }))
}

/// Runs the scenario.
pub(crate) fn run(config: &Config) -> Vec<Table> {
    let mut rows: Vec<Row> = CASES
        .iter()
        .map(|case| {
            let group = if case.threads == 1 {
                "1 thread"
            } else {
                "2 threads"
            };
            Row::named(case.name, None, Role::Overseer, group, case.note)
        })
        .collect();
    let peers = Row::named(
        "raw ractor, ractor-supervisor, kameo",
        None,
        Role::Peer,
        "",
        "none: no circuit breakers, no budgets",
    );
    for repetition in 1..=config.repetitions {
        for (case, row) in CASES.iter().zip(rows.iter_mut()) {
            match (case.run)(case.threads, config.governance_ops) {
                Ok(per_op) => {
                    eprintln!(
                        "[governance] repetition {repetition}/{}: {}, {}: {per_op:?}",
                        config.repetitions, case.name, row.group
                    );
                    row.repetitions.push(vec![per_op.as_nanos() as f64]);
                }
                Err(failure) => row.failure = Some(failure.0),
            }
        }
    }
    rows.push(peers);
    vec![Table {
        scenario: "governance",
        title: "5. Breaker and budget per ask (Overseer only)".to_string(),
        what: format!(
            "Timed alone, without an actor: {} operations per thread per repetition after a \
             tenth as many to warm up; on two threads, the slower thread's time per \
             operation. Median over {} repetitions.",
            count(config.governance_ops),
            config.repetitions
        ),
        columns: vec![Column::plain("per operation", Unit::Nanos)],
        rows,
        notes: vec![
            "Peers: none. raw ractor, ractor-supervisor and kameo have no circuit breakers \
             and no budgets, so there is no ratio. What an application adds by hand instead \
             (e.g. a `Mutex<HashMap>` of counters) is the baseline in \
             `crates/overseer-breaker/BENCHMARKS.md`."
                .to_string(),
        ],
    }
    .finish()]
}
