//! An uncontended bulkhead permit: taken and given back (target: under 100 ns).
//!
//! `cargo bench -p overseer-fanout --bench bulkhead`

#![allow(missing_docs)] // criterion_group! makes an undocumented function

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use overseer_fanout::Bulkhead;

fn uncontended(c: &mut Criterion) {
    let bulkhead = Bulkhead::new("model-calls", 16).unwrap();
    c.bench_function("bulkhead/try_acquire_uncontended", |b| {
        b.iter(|| drop(std::hint::black_box(bulkhead.try_acquire())))
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    c.bench_function("bulkhead/acquire_until_uncontended", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let deadline = Some(tokio::time::Instant::now() + Duration::from_secs(60));
                let start = Instant::now();
                for _ in 0..iters {
                    let permit = bulkhead.acquire_until(deadline).await;
                    drop(std::hint::black_box(permit));
                }
                start.elapsed()
            })
        })
    });
}

criterion_group!(benches, uncontended);
criterion_main!(benches);
