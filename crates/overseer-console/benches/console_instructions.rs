//! Instructions per ask with and without the web console, counted with callgrind: a program
//! that makes `N` asks on one current-thread runtime, where the console's own work (folding
//! the events, the snapshots, the stream to a page) runs too, so that it is all counted.
//!
//! ```text
//! cargo bench -p overseer-console --bench console_instructions --no-run
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null BINARY MODE 0
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null BINARY MODE 20000
//! # per ask = (Collected at 20000 - Collected at 0) / 20000
//! ```
//!
//! With `TIME_ASKS` set, it prints the asks' wall-clock time per ask: alternate runs of two
//! modes (`benches/console_time.sh`) compare them without one mode's marks on the other.
//!
//! `MODE`: `plain` (no console), `held` (a subscriber that never reads: what building and
//! publishing each event costs the ask itself), `bare` (a subscriber that only drains the event stream: the
//! floor of anything fed by it), `console` (a console attached, no page: it reads the stream
//! without answered asks and the agents' ask tallies), `page` (a console and a client reading
//! its live stream), `every` (a console and a page that list every answered ask:
//! `ConsoleConfig::every_ask`). Without arguments (as `cargo bench` runs it) it makes 1,000
//! asks of each mode and exits.

use std::time::Duration;

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

async fn run(mode: &str, asks: u64) {
    let system = System::builder().build().expect("system");
    let tree = SupervisorSpec::one_for_one("root").child(
        system
            .agent(AgentSpec::new("echo", || Echo))
            .expect("agent"),
    );
    system.start(tree).await.expect("started");
    let echo = system.agent_ref::<Echo>("echo").expect("agent");
    let mut console = None;
    let mut drain = None;
    match mode {
        "plain" => {}
        "held" => {
            // Subscribed, never read: what building and publishing the events costs the ask.
            let events = system.subscribe();
            drain = Some(tokio::spawn(async move {
                let _events = events;
                std::future::pending::<()>().await;
            }));
        }
        "bare" => {
            let mut events = system.subscribe();
            drain = Some(tokio::spawn(
                async move { while events.recv().await.is_ok() {} },
            ));
        }
        "console" | "page" | "every" => {
            let config = ConsoleConfig::default().every_ask(mode == "every");
            let served = Console::serve(&system, "127.0.0.1:0".parse().unwrap(), config)
                .await
                .expect("served");
            if mode != "console" {
                let addr = served.local_addr();
                drain = Some(tokio::spawn(async move {
                    let mut stream = TcpStream::connect(addr).await.expect("connect");
                    let request = "GET /api/stream HTTP/1.1\r\nHost: localhost\r\n\r\n";
                    stream.write_all(request.as_bytes()).await.expect("write");
                    let mut buffer = vec![0u8; 64 * 1024];
                    while let Ok(n) = stream.read(&mut buffer).await {
                        if n == 0 {
                            break;
                        }
                    }
                }));
                // The page's first snapshot.
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            console = Some(served);
        }
        other => panic!("unknown mode {other}: plain, held, bare, console, page or every"),
    }
    let started = std::time::Instant::now();
    for n in 0..asks {
        echo.ask(n).await.expect("answer");
    }
    if asks > 0 && std::env::var_os("TIME_ASKS").is_some() {
        let per_ask = started.elapsed().as_nanos() as f64 / asks as f64;
        println!("{mode} {per_ask:.1} ns/ask");
    }
    if let Some(console) = console {
        console.shutdown().await;
    }
    if let Some(drain) = drain {
        drain.abort();
    }
    system
        .shutdown(Duration::from_secs(5))
        .await
        .expect("shut down");
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [mode, asks] => runtime.block_on(run(mode, asks.parse().expect("a number of asks"))),
        _ => {
            for mode in ["plain", "held", "bare", "console", "page", "every"] {
                runtime.block_on(run(mode, 1_000));
            }
        }
    }
}
