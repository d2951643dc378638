//! A cohort's overhead beyond its members' asks (issue 19's target: within 1.2x): an `all`
//! cohort of n members against the same n plain asks to the same agent, joined with
//! `futures::future::join_all`, on the same current-thread runtime.
//!
//! ```text
//! cargo bench --bench cohort
//! ```
// `criterion_group!` defines an undocumented `pub fn`: a bench has no API to document.
#![allow(missing_docs)]

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use overseer::prelude::*;

struct Echo;

impl Agent for Echo {
    type Task = u64;
    type Output = u64;

    async fn handle(&mut self, _: &mut AgentContext, n: u64) -> Result<u64, AgentError> {
        Ok(n)
    }
}

fn cohort_overhead(c: &mut Criterion) {
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
    let mut group = c.benchmark_group("cohort_overhead");
    for n in [10_u64, 100] {
        group.bench_with_input(BenchmarkId::new("cohort_all", n), &n, |b, &n| {
            b.to_async(&runtime).iter(|| async {
                let cohort = (0..n).fold(Cohort::all(), |cohort, i| cohort.member(&echo, i));
                let outcome = cohort
                    .run_within(Duration::from_secs(60))
                    .await
                    .expect("decided");
                assert_eq!(outcome.answered() as u64, n);
                outcome
            })
        });
        group.bench_with_input(BenchmarkId::new("joined_asks", n), &n, |b, &n| {
            b.to_async(&runtime).iter(|| async {
                let asks = (0..n).map(|i| echo.ask_within(i, Duration::from_secs(60)));
                futures::future::join_all(asks).await
            })
        });
    }
    group.finish();
    runtime
        .block_on(system.shutdown(Duration::from_secs(5)))
        .expect("shut down");
}

criterion_group!(benches, cohort_overhead);
criterion_main!(benches);
