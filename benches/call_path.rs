//! The ask round trip through Overseer's full call path, against a raw ractor `call`, in the
//! same run and on the same runtime.
//!
//! ```text
//! cargo bench --bench call_path
//! ```
// `criterion_group!` defines an undocumented `pub fn`: a bench has no API to document.
#![allow(missing_docs)]

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use overseer::prelude::*;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

struct Echo;

impl Agent for Echo {
    type Task = u64;
    type Output = u64;

    async fn handle(&mut self, _: &mut AgentContext, task: u64) -> Result<u64, AgentError> {
        Ok(task)
    }
}

struct RawEcho;

enum RawMsg {
    Echo(u64, RpcReplyPort<u64>),
}

impl Actor for RawEcho {
    type Msg = RawMsg;
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<RawMsg>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }

    async fn handle(
        &self,
        _: ActorRef<RawMsg>,
        RawMsg::Echo(value, reply): RawMsg,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        let _ = reply.send(value);
        Ok(())
    }
}

fn ask_round_trip(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (system, raw) = runtime.block_on(async {
        let system = System::builder().build().unwrap();
        let tree = SupervisorSpec::one_for_one("root").child(
            system
                .agent(AgentSpec::new("echo", || Echo))
                .expect("declared"),
        );
        system.start(tree).await.expect("started");
        let (raw, _) = Actor::spawn(None, RawEcho, ()).await.expect("raw actor");
        (system, raw)
    });
    let echo = system.agent_ref::<Echo>("echo").expect("agent");

    let mut group = c.benchmark_group("ask_round_trip");
    group.bench_function("overseer_ask", |b| {
        b.to_async(&runtime)
            .iter(|| async { echo.ask(7).await.expect("answer") })
    });
    group.bench_function("ractor_call", |b| {
        b.to_async(&runtime)
            .iter(|| async { ractor::call_t!(raw, RawMsg::Echo, 60_000, 7).expect("answer") })
    });
    group.finish();

    runtime.block_on(async {
        system
            .shutdown(Duration::from_secs(5))
            .await
            .expect("shutdown");
        raw.stop(None);
    });
}

criterion_group!(benches, ask_round_trip);
criterion_main!(benches);
