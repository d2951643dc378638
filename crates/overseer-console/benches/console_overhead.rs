//! What the web console costs the ask path: the same ask round trip with no console, with a
//! console attached, and with a console and a connected page (a client reading the live
//! stream), in one run on one current-thread runtime. Everything the console does (folding
//! the events, the snapshots, the stream) runs on that same thread, so its whole cost is in
//! the figures.
//!
//! ```text
//! cargo bench -p overseer-console --bench console_overhead
//! ```
// `criterion_group!` defines an undocumented `pub fn`: a bench has no API to document.
#![allow(missing_docs)]

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use overseer_agent::{Agent, AgentContext, AgentError, AgentSpec, System};
use overseer_console::{Console, ConsoleConfig};
use overseer_supervisor::SupervisorSpec;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Echo;

impl Agent for Echo {
    type Task = u64;
    type Output = u64;

    async fn handle(&mut self, _: &mut AgentContext, task: u64) -> Result<u64, AgentError> {
        Ok(task)
    }
}

fn console_overhead(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let system = runtime.block_on(async {
        let system = System::builder().build().unwrap();
        let tree = SupervisorSpec::one_for_one("root")
            .child(system.agent(AgentSpec::new("echo", || Echo)).unwrap());
        system.start(tree).await.expect("started");
        system
    });
    let echo = system.agent_ref::<Echo>("echo").expect("agent");
    let mut group = c.benchmark_group("console_overhead");
    group.bench_function("no_console", |b| {
        b.to_async(&runtime)
            .iter(|| async { echo.ask(7).await.expect("answer") })
    });
    let console = runtime.block_on(async {
        Console::serve(
            &system,
            "127.0.0.1:0".parse().unwrap(),
            ConsoleConfig::default(),
        )
        .await
        .expect("served")
    });
    group.bench_function("console_attached", |b| {
        b.to_async(&runtime)
            .iter(|| async { echo.ask(7).await.expect("answer") })
    });
    // A page: a client reading the live stream (the failures' events, a snapshot every 200 ms).
    let addr = console.local_addr();
    let reader = runtime.spawn(async move {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let request = "GET /api/stream HTTP/1.1\r\nHost: localhost\r\n\r\n";
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut buffer = vec![0u8; 64 * 1024];
        let mut read = 0u64;
        while let Ok(n) = stream.read(&mut buffer).await {
            if n == 0 {
                break;
            }
            read += n as u64;
        }
        read
    });
    runtime.block_on(async { tokio::time::sleep(Duration::from_millis(300)).await });
    group.bench_function("console_and_page", |b| {
        b.to_async(&runtime)
            .iter(|| async { echo.ask(7).await.expect("answer") })
    });
    runtime.block_on(async {
        console.shutdown().await;
        let read = reader.await.unwrap_or(0);
        assert!(read > 0, "the page read the stream");
    });
    // What a console fed by every event would cost at least: a subscriber that only drains
    // the stream (asks build their `AskEvent` only while someone subscribes to it). Last: it
    // leaves its mark on the asks after it (the system checks the stream's receivers once it
    // has had one).
    let mut bare = system.subscribe();
    let drain = runtime.spawn(async move { while bare.recv().await.is_ok() {} });
    group.bench_function("bare_subscriber", |b| {
        b.to_async(&runtime)
            .iter(|| async { echo.ask(7).await.expect("answer") })
    });
    drain.abort();
    group.finish();
    runtime.block_on(async {
        system.shutdown(Duration::from_secs(5)).await.ok();
    });
}

criterion_group!(benches, console_overhead);
criterion_main!(benches);
