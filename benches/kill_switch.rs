//! Time from a kill-switch trip until every agent of the system has stopped, for 1,000 and
//! 10,000 agents.
//!
//! ```text
//! cargo bench --bench kill_switch
//! ```
// `criterion_group!` defines an undocumented `pub fn`: a bench has no API to document.
#![allow(missing_docs)]

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use overseer::budget::{Budget, TripReason};
use overseer::prelude::*;

struct Idle;

impl Agent for Idle {
    type Task = ();
    type Output = ();

    async fn handle(&mut self, _: &mut AgentContext, _: ()) -> Result<(), AgentError> {
        Ok(())
    }
}

async fn system_of(agents: usize, budget: &Budget) -> System {
    let system = System::builder().budget(budget.clone()).build().unwrap();
    let mut root = SupervisorSpec::one_for_one("root");
    for index in 0..agents {
        root = root.child(
            system
                .agent(AgentSpec::new(format!("agent-{index}"), || Idle))
                .expect("declared"),
        );
    }
    system.start(root).await.expect("started");
    system
}

fn trip_to_all_stopped(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("kill_switch_trip_to_all_stopped");
    group.sample_size(10);
    for agents in [1_000usize, 10_000] {
        group.bench_with_input(
            BenchmarkId::from_parameter(agents),
            &agents,
            |b, &agents| {
                b.to_async(&runtime).iter_custom(|iterations| async move {
                    let mut total = Duration::ZERO;
                    for _ in 0..iterations {
                        let budget = Budget::builder().build().expect("budget");
                        let system = system_of(agents, &budget).await;
                        let started = Instant::now();
                        budget.trip(TripReason::manual("benchmark"));
                        let tree = system.tree().expect("started");
                        assert!(tree.wait_for_exit(Duration::from_secs(120)).await);
                        total += started.elapsed();
                    }
                    total
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, trip_to_all_stopped);
criterion_main!(benches);
