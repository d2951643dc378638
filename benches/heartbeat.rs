//! What one heartbeat costs inside a handler: with no heartbeat timeout (nothing watches it) and
//! with one armed. The handler beats `iterations` times in a loop and times the loop itself, so
//! the ask around it is not counted.
//!
//! ```text
//! cargo bench --bench heartbeat
//! ```
// `criterion_group!` defines an undocumented `pub fn`: a bench has no API to document.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use overseer::prelude::*;

/// Beats as many times as its task says, and answers how long the beats took.
struct Beater;

impl Agent for Beater {
    type Task = u64;
    type Output = Duration;

    async fn handle(&mut self, ctx: &mut AgentContext, beats: u64) -> Result<Duration, AgentError> {
        let started = Instant::now();
        for _ in 0..beats {
            black_box(&*ctx).heartbeat();
        }
        Ok(started.elapsed())
    }
}

async fn beater(spec: AgentSpec<Beater>) -> (System, AgentRef<Beater>) {
    let system = System::builder().build().expect("system");
    let root = SupervisorSpec::one_for_one("root").child(system.agent(spec).expect("declared"));
    system.start(root).await.expect("started");
    let beater = system.agent_ref::<Beater>("beater").expect("declared");
    (system, beater)
}

fn heartbeat(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("heartbeat");
    let specs = [
        ("unwatched", AgentSpec::new("beater", || Beater)),
        (
            "armed",
            AgentSpec::new("beater", || Beater).heartbeat_timeout(Duration::from_secs(60)),
        ),
    ];
    for (name, spec) in specs {
        let (system, beater) = runtime.block_on(beater(spec));
        group.bench_function(name, |b| {
            b.to_async(&runtime).iter_custom(|beats| {
                let beater = beater.clone();
                async move { beater.ask(beats).await.expect("answered") }
            })
        });
        runtime
            .block_on(system.shutdown(Duration::from_secs(5)))
            .expect("shut down");
    }
    group.finish();
}

criterion_group!(benches, heartbeat);
criterion_main!(benches);
