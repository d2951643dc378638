//! The retry budget's cost on the call path: one `withdraw` plus one `deposit`, uncontended.
//!
//! - `withdraw_deposit`: the plain methods, each reading the tokio clock (no runtime here, so
//!   `tokio::time::Instant::now()` is the OS monotonic clock).
//! - `withdraw_deposit_at`: the `_at` methods with an instant the caller already has (the
//!   agent layer reads the clock for latency anyway), so the budget's own work alone.
//! - `mutex_baseline`: the same arithmetic behind a `Mutex`, tower's shape, for comparison.
//!
//! The budget has a floor large enough that withdrawals keep succeeding, so the measured path
//! is the granted one; slots close every 100 ms of wall time, so the slow path is in the mean
//! at its real frequency.
// `criterion_group!` defines an undocumented `pub fn`: a bench has no API to document.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Mutex;
use std::time::Duration;

use criterion::{criterion_group, Criterion};
use overseer_retry::RetryBudget;
use tokio::time::Instant;

fn budget() -> RetryBudget {
    // ratio 1.0: each deposit pays for the next withdrawal; the floor covers the first.
    RetryBudget::new(Duration::from_secs(1), 1_000, 1.0).expect("valid settings")
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("retry_budget");

    let b = budget();
    group.bench_function("withdraw_deposit", |bench| {
        bench.iter(|| {
            let granted = b.withdraw().is_ok();
            b.deposit();
            black_box(granted)
        })
    });

    let b = budget();
    group.bench_function("withdraw_deposit_at", |bench| {
        let now = Instant::now();
        bench.iter(|| {
            let granted = b.withdraw_at(black_box(now)).is_ok();
            b.deposit_at(black_box(now));
            black_box(granted)
        })
    });

    let baseline = Mutex::new(1_000_000i64);
    group.bench_function("mutex_baseline", |bench| {
        bench.iter(|| {
            let now = Instant::now();
            let granted = {
                let mut balance = baseline.lock().unwrap();
                let ok = *balance >= 1000;
                if ok {
                    *balance -= 1000;
                }
                ok
            };
            let _ = black_box(now);
            *baseline.lock().unwrap() += 1000;
            black_box((granted, Instant::now()))
        })
    });
    group.bench_function("clock_read", |bench| {
        bench.iter(|| black_box(Instant::now()))
    });
    group.finish();
}

/// The fastest of many short samples, in nanoseconds per operation: on a shared machine,
/// time stolen by other processes inflates criterion's means; the floor is what the code
/// costs when it is not preempted.
fn floor(mut op: impl FnMut()) -> f64 {
    const SAMPLES: usize = 300;
    const ITERS: u32 = 20_000;
    (0..SAMPLES)
        .map(|_| {
            let start = std::time::Instant::now();
            for _ in 0..ITERS {
                op();
            }
            start.elapsed().as_nanos() as f64 / f64::from(ITERS)
        })
        .fold(f64::INFINITY, f64::min)
}

fn floors() {
    let b = budget();
    let plain = floor(|| {
        black_box(b.withdraw().is_ok());
        b.deposit();
    });
    let b = budget();
    let now = Instant::now();
    let at = floor(|| {
        black_box(b.withdraw_at(black_box(now)).is_ok());
        b.deposit_at(black_box(now));
    });
    let b = budget();
    let deposit = floor(|| b.deposit());
    let clock = floor(|| {
        black_box(Instant::now());
    });
    println!("floor (fastest of 300 samples of 20,000 operations, ns per operation):");
    println!("  withdraw + deposit          {plain:6.1}");
    println!("  withdraw_at + deposit_at    {at:6.1}");
    println!("  deposit alone (success path){deposit:6.1}");
    println!("  one tokio Instant::now()    {clock:6.1}");
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    floors();
}
