//! A vote's overhead beyond its samples' asks (issue 18's target: under 1 µs per sample):
//! `ask_voting` with n unanimous samples (first-to-ahead-by-n, so one round of n concurrent
//! samples) against the same n plain asks to the same agent, joined the same way, on the same
//! current-thread runtime. Per sample: (vote - joined asks) / n.
//!
//! ```text
//! cargo bench --bench voting
//! ```
// `criterion_group!` defines an undocumented `pub fn`: a bench has no API to document.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use overseer::agent::semantic::vote::VoteRule;
use overseer::agent::VoteSpec;
use overseer::prelude::*;

struct Echo;

impl Agent for Echo {
    type Task = u64;
    type Output = String;

    async fn handle(&mut self, _: &mut AgentContext, _: u64) -> Result<String, AgentError> {
        Ok("the same answer".to_owned())
    }
}

fn vote_overhead(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let system = runtime.block_on(async {
        let system = System::builder().build().expect("system");
        let tree = SupervisorSpec::one_for_one("root").child(
            system
                .agent(AgentSpec::new("echo", || Echo))
                .expect("declared"),
        );
        system.start(tree).await.expect("started");
        system
    });
    let echo = system.agent_ref::<Echo>("echo").expect("agent");
    let mut group = c.benchmark_group("vote_overhead");
    for n in [1_u32, 3, 5, 9] {
        let spec = VoteSpec::new(VoteRule::first_to_ahead_by(n, n)).expect("valid rule");
        group.bench_with_input(BenchmarkId::new("ask_voting", n), &n, |b, _| {
            b.to_async(&runtime).iter(|| async {
                let voted = echo.ask_voting(7, &spec).await.expect("decided");
                assert_eq!(voted.samples_used, n);
                voted
            })
        });
        group.bench_with_input(BenchmarkId::new("joined_asks", n), &n, |b, &n| {
            b.to_async(&runtime).iter(|| async {
                let asks = (0..n).map(|_| echo.ask(7));
                futures::future::join_all(asks).await
            })
        });
    }
    group.finish();
}

criterion_group!(benches, vote_overhead);
criterion_main!(benches);
