//! Admission check plus outcome record, per operation, against a `Mutex<HashMap>` baseline
//! doing the same work in the same run.
//!
//! One operation = `try_acquire` on an existing key + `record` of a success (the call path's
//! fixed cost; the agent call itself is not included). Two-thread figures are the wall time
//! for each thread to do `iters` operations at the same time, divided by `iters`: the
//! latency one caller sees under contention.
//!
//! After criterion's groups, a "floor" table prints the fastest of many short samples for
//! the one-thread cases. On a shared machine, time stolen by other processes inflates
//! criterion's means; the floor is what the code costs when it is not preempted.
// `criterion_group!` defines an undocumented `pub fn`: a bench has no API to document.
#![allow(missing_docs)]

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::{Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant as StdInstant};

use criterion::{criterion_group, Criterion};
use overseer_breaker::{BreakerConfig, BreakerKey, BreakerRegistry, CircuitBreaker, Outcome};

const LATENCY: Duration = Duration::from_millis(1500);

/// What a straightforward implementation keeps per key: a ring of outcomes, counters, and
/// an open-until time.
struct Naive {
    ring: [bool; 20],
    head: usize,
    len: usize,
    failures: usize,
    consecutive: u32,
    open_until: Option<StdInstant>,
}

impl Naive {
    fn new() -> Self {
        Self {
            ring: [false; 20],
            head: 0,
            len: 0,
            failures: 0,
            consecutive: 0,
            open_until: None,
        }
    }
}

/// The baseline: one global mutex around a map, locked once to admit and once to record.
struct Baseline {
    map: Mutex<HashMap<BreakerKey, Naive>>,
}

impl Baseline {
    fn new(keys: &[BreakerKey]) -> Self {
        let map = keys.iter().map(|k| (k.clone(), Naive::new())).collect();
        Self {
            map: Mutex::new(map),
        }
    }

    fn try_acquire(&self, key: &BreakerKey) -> bool {
        let map = self.map.lock().unwrap();
        let state = map.get(key).unwrap();
        // Reads the clock only when open, like the breaker.
        state
            .open_until
            .is_none_or(|until| StdInstant::now() >= until)
    }

    fn record(&self, key: &BreakerKey, failed: bool) {
        let mut map = self.map.lock().unwrap();
        let s = map.get_mut(key).unwrap();
        if s.len == s.ring.len() {
            s.failures -= usize::from(s.ring[s.head]);
        } else {
            s.len += 1;
        }
        s.ring[s.head] = failed;
        s.failures += usize::from(failed);
        s.head = (s.head + 1) % s.ring.len();
        s.consecutive = if failed { s.consecutive + 1 } else { 0 };
        if s.len >= 5 && s.failures * 2 >= s.len {
            s.open_until = Some(StdInstant::now() + Duration::from_secs(30));
        }
    }
}

fn keys(n: usize) -> Vec<BreakerKey> {
    (0..n)
        .map(|i| BreakerKey::new(format!("agent-{i}"), "summarize"))
        .collect()
}

fn registry(keys: &[BreakerKey]) -> BreakerRegistry {
    let registry = BreakerRegistry::new(BreakerConfig::default().seed(Some(1))).unwrap();
    for key in keys {
        registry.handle(key); // existing keys only: creation is not what is measured
    }
    registry
}

fn one_thread(c: &mut Criterion) {
    let keys = keys(1);
    let key = &keys[0];
    let mut group = c.benchmark_group("acquire+record/1 thread");

    let reg = registry(&keys);
    group.bench_function("registry (lookup by key)", |b| {
        b.iter(|| {
            let permit = reg.try_acquire(black_box(key)).unwrap();
            black_box(reg.record(permit, Outcome::Success, LATENCY))
        })
    });

    let handle = reg.handle(key);
    group.bench_function("kept handle (no lookup)", |b| {
        b.iter(|| {
            let permit = black_box(&handle).try_acquire().unwrap();
            black_box(permit.record(Outcome::Success, LATENCY))
        })
    });

    let mut pure =
        CircuitBreaker::new(key.clone(), BreakerConfig::default().seed(Some(1))).unwrap();
    group.bench_function("pure state machine (&mut, no lock)", |b| {
        b.iter(|| {
            let ticket = pure.try_acquire().unwrap();
            black_box(pure.record(ticket, Outcome::Success, LATENCY))
        })
    });

    let base = Baseline::new(&keys);
    group.bench_function("baseline Mutex<HashMap>", |b| {
        b.iter(|| {
            assert!(base.try_acquire(black_box(key)));
            base.record(key, false);
        })
    });

    // A realistic mix: 1 call in 10 fails, which never trips the defaults.
    let reg_mixed = registry(&keys);
    let mut n = 0u32;
    group.bench_function("registry, 10% failures", |b| {
        b.iter(|| {
            n = n.wrapping_add(1);
            let outcome = if n.is_multiple_of(10) {
                Outcome::Failure
            } else {
                Outcome::Success
            };
            let permit = reg_mixed.try_acquire(black_box(key)).unwrap();
            black_box(reg_mixed.record(permit, outcome, LATENCY))
        })
    });

    group.bench_function("registry, rejected while forced open", |b| {
        let reg = registry(&keys);
        reg.force_open(key);
        b.iter(|| black_box(reg.try_acquire(black_box(key)).unwrap_err()))
    });
    group.finish();
}

/// Runs `op(thread index)` `iters` times on each of 2 threads at once; returns the wall time
/// of the slowest thread.
fn two_threads(iters: u64, op: impl Fn(usize) + Sync) -> Duration {
    let barrier = Barrier::new(2);
    thread::scope(|s| {
        let workers: Vec<_> = (0..2)
            .map(|t| {
                let (barrier, op) = (&barrier, &op);
                s.spawn(move || {
                    barrier.wait();
                    let start = StdInstant::now();
                    for _ in 0..iters {
                        op(t);
                    }
                    start.elapsed()
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap())
            .max()
            .unwrap()
    })
}

fn two_threads_bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("acquire+record/2 threads");
    for (label, distinct) in [("same key", false), ("distinct keys", true)] {
        let keys = keys(2);
        let pick = |t: usize| if distinct { &keys[t] } else { &keys[0] };

        let reg = registry(&keys);
        group.bench_function(format!("registry, {label}"), |b| {
            b.iter_custom(|iters| {
                two_threads(iters, |t| {
                    let key = pick(t);
                    let permit = reg.try_acquire(black_box(key)).unwrap();
                    black_box(reg.record(permit, Outcome::Success, LATENCY));
                })
            })
        });

        let handles = [reg.handle(&keys[0]), reg.handle(&keys[1])];
        group.bench_function(format!("kept handle, {label}"), |b| {
            b.iter_custom(|iters| {
                two_threads(iters, |t| {
                    let handle = &handles[if distinct { t } else { 0 }];
                    let permit = black_box(handle).try_acquire().unwrap();
                    black_box(permit.record(Outcome::Success, LATENCY));
                })
            })
        });

        let base = Baseline::new(&keys);
        group.bench_function(format!("baseline Mutex<HashMap>, {label}"), |b| {
            b.iter_custom(|iters| {
                two_threads(iters, |t| {
                    let key = pick(t);
                    assert!(base.try_acquire(black_box(key)));
                    base.record(key, false);
                })
            })
        });
    }
    group.finish();
}

/// The fastest of `SAMPLES` samples of `OPS` operations, in ns per operation.
fn floor_ns(mut op: impl FnMut()) -> f64 {
    const SAMPLES: usize = 400;
    const OPS: u32 = 2_000;
    (0..SAMPLES)
        .map(|_| {
            let start = StdInstant::now();
            for _ in 0..OPS {
                op();
            }
            start.elapsed().as_secs_f64() * 1e9 / f64::from(OPS)
        })
        .fold(f64::INFINITY, f64::min)
}

fn floor_report() {
    let keys = keys(1);
    let key = &keys[0];
    let reg = registry(&keys);
    let handle = reg.handle(key);
    let mut pure =
        CircuitBreaker::new(key.clone(), BreakerConfig::default().seed(Some(1))).unwrap();
    let base = Baseline::new(&keys);
    let lock = Mutex::new(0u64);
    let rows: [(&str, f64); 5] = [
        (
            "registry (lookup by key)",
            floor_ns(|| {
                let permit = reg.try_acquire(black_box(key)).unwrap();
                black_box(reg.record(permit, Outcome::Success, LATENCY));
            }),
        ),
        (
            "kept handle (no lookup)",
            floor_ns(|| {
                let permit = black_box(&handle).try_acquire().unwrap();
                black_box(permit.record(Outcome::Success, LATENCY));
            }),
        ),
        (
            "pure state machine",
            floor_ns(|| {
                let ticket = pure.try_acquire().unwrap();
                black_box(pure.record(ticket, Outcome::Success, LATENCY));
            }),
        ),
        (
            "baseline Mutex<HashMap>",
            floor_ns(|| {
                assert!(base.try_acquire(black_box(key)));
                base.record(key, false);
            }),
        ),
        (
            "(reference) one uncontended Mutex lock+unlock",
            floor_ns(|| *black_box(&lock).lock().unwrap() += 1),
        ),
    ];
    println!("\nfloor, 1 thread: fastest of 400 samples x 2000 ops (ns per acquire+record)");
    for (name, ns) in rows {
        println!("  {name:<48} {ns:>7.1} ns");
    }
}

criterion_group!(benches, one_thread, two_threads_bench);

fn main() {
    benches();
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--list" || a == "--test") {
        floor_report();
    }
    Criterion::default().configure_from_args().final_summary();
}
