//! A vote's own overhead per observed sample, beyond the samples' asks.
//!
//! `cargo bench -p overseer-semantic --bench vote`
#![allow(missing_docs)]

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use overseer_semantic::red_flag::{RedFlag, RedFlagKind};
use overseer_semantic::vote::{AnswerKey, Vote, VoteRule, VoteState};

/// Samples of a typical close vote: 3 answers, the right one ahead by 3 after 11 samples.
const KEYS: [u8; 11] = [0, 1, 0, 2, 0, 1, 0, 0, 1, 2, 0];

fn run_vote(keys: &[u8]) -> VoteState<u8> {
    let mut vote = Vote::new(VoteRule::first_to_ahead_by(3, 64)).unwrap();
    let mut state = VoteState::Continue;
    for &key in keys {
        state = vote.observe(key);
    }
    state
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("vote");
    group.throughput(Throughput::Elements(KEYS.len() as u64));
    // A whole vote (creation included) over small keys, per sample reported by throughput.
    group.bench_function("first_to_ahead_by_3_u8_keys", |b| {
        b.iter(|| run_vote(black_box(&KEYS)))
    });
    // String keys, as AnswerKey makes them: the key's hashing and one clone per sample.
    let texts: Vec<String> = KEYS.iter().map(|k| format!("answer number {k}")).collect();
    group.bench_function("first_to_ahead_by_3_string_keys", |b| {
        b.iter_batched(
            || texts.clone(),
            |texts| {
                let mut vote = Vote::new(VoteRule::first_to_ahead_by(3, 64)).unwrap();
                let mut state = VoteState::Continue;
                for text in texts {
                    state = vote.observe(text);
                }
                state
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();

    let mut single = c.benchmark_group("vote_sample");
    single.throughput(Throughput::Elements(1));
    single.bench_function("observe_red_flag", |b| {
        b.iter_batched(
            || Vote::<u8>::new(VoteRule::first_to_ahead_by(3, u32::MAX)).unwrap(),
            |mut vote| vote.observe_red_flag(RedFlag::new(RedFlagKind::Parse, "x")),
            BatchSize::SmallInput,
        )
    });
    let key = AnswerKey::Normalised;
    single.bench_function("answer_key_normalised", |b| {
        b.iter(|| key.key(black_box("  The Answer is   42 ")))
    });
    single.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
