//! The loop detector's cost per observed call, canonical hashing included.
//!
//! `cargo bench -p overseer-semantic --bench loop_detect`
#![allow(missing_docs)]

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use overseer_semantic::loop_detect::{
    canonical_hash, Call, CallOutcome, CanonicalHash, LoopConfig, LoopDetector,
};
use serde_json::json;
use tokio::time::Instant;

fn bench(c: &mut Criterion) {
    let args = json!({"query": "supervision trees in rust", "limit": 10, "filters": {"lang": "en", "year": 2025}});
    c.bench_function("canonical_hash_small_object", |b| {
        b.iter(|| canonical_hash(black_box(&args)))
    });
    let mut detector = LoopDetector::new(LoopConfig::default()).unwrap();
    let now = Instant::now();
    let mut i = 0u64;
    c.bench_function("observe_call_prehashed", |b| {
        b.iter(|| {
            i += 1;
            // Alternating arguments and outputs: no rule fires.
            let call = Call::with_hash("researcher", "web_search", CanonicalHash(i % 2));
            detector.observe_call(
                now,
                black_box(&call),
                CallOutcome::Output(CanonicalHash(i % 4096)),
            )
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
