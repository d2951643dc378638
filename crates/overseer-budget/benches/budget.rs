//! Cost of the budget on the call path: reserve + commit, and the kill-switch check.
//!
//! Run: `cargo bench -p overseer-budget --bench budget -- --warm-up-time 1 --measurement-time 3`
//!
//! The `2_threads` cases run two threads doing the same loop at once on the same ledger(s);
//! the figure is wall time per operation per thread (both threads together complete two
//! operations in that time).
// `criterion_group!` defines an undocumented `pub fn`: a bench has no API to document.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use overseer_budget::{Budget, KillSwitch, KillSwitchConfig, Ledger, Limits, Scope, Spend};

/// Limited in every dimension, so every reservation goes through the compare-and-swap
/// against a limit, but far enough that no run reaches a tier or the limit.
fn big_limits() -> Limits {
    let big = u64::MAX / 4;
    Limits::new().tokens(big).cost_micros(big).steps(big)
}

const ESTIMATE: Spend = Spend::new(1_000, 3_000);
const ACTUAL: Spend = Spend::new(800, 2_400);

/// Runs `op` `iters` times on each of two threads started together; returns the wall time
/// of the slower thread.
fn two_threads(iters: u64, op: impl Fn(usize) + Sync) -> Duration {
    let barrier = Barrier::new(2);
    thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|t| {
                let barrier = &barrier;
                let op = &op;
                s.spawn(move || {
                    barrier.wait();
                    let start = Instant::now();
                    for _ in 0..iters {
                        op(t);
                    }
                    start.elapsed()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .max()
            .unwrap_or_default()
    })
}

fn reserve_commit(c: &mut Criterion) {
    let mut group = c.benchmark_group("reserve_commit");

    let ledger = Ledger::new(Scope::Process, big_limits()).expect("valid limits");
    group.bench_function("ledger/1_thread", |b| {
        b.iter(|| {
            let call = ledger.reserve(black_box(ESTIMATE)).expect("admitted");
            black_box(call.commit(black_box(ACTUAL)));
        })
    });
    group.bench_function("ledger/2_threads", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, |_| {
                let call = ledger.reserve(black_box(ESTIMATE)).expect("admitted");
                black_box(call.commit(black_box(ACTUAL)));
            })
        })
    });

    let budget = Budget::builder()
        .process_limits(big_limits())
        .default_agent_limits(big_limits())
        .build()
        .expect("valid limits");
    let agents = ["agent-0", "agent-1"];
    group.bench_function("budget_admit/1_thread", |b| {
        b.iter(|| {
            let call = budget
                .admit(agents[0], black_box(ESTIMATE))
                .expect("admitted");
            black_box(call.commit(black_box(ACTUAL)));
        })
    });
    group.bench_function("budget_admit/2_threads", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, |t| {
                let call = budget
                    .admit(agents[t], black_box(ESTIMATE))
                    .expect("admitted");
                black_box(call.commit(black_box(ACTUAL)));
            })
        })
    });
    group.finish();
}

fn kill_switch(c: &mut Criterion) {
    let switch = KillSwitch::new(KillSwitchConfig::new()).expect("valid config");
    c.bench_function("kill_switch/is_tripped", |b| {
        b.iter(|| black_box(&switch).is_tripped())
    });
}

criterion_group!(benches, reserve_commit, kill_switch);
criterion_main!(benches);
