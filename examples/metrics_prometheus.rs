//! Exports an Overseer system's metrics to Prometheus: a small research team runs with a
//! budget and circuit breakers, some of its tasks fail and one agent crashes and is restarted;
//! `overseer_observe::MetricsConfig` turns the event stream into metrics (labelled
//! `system="team"`), served on loopback.
//!
//! ```text
//! cargo run --example metrics_prometheus                         # prints one scrape and exits
//! cargo run --example metrics_prometheus -- --port 9000 --serve-for-secs 60
//! curl http://127.0.0.1:9000/metrics
//! ```

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use overseer::breaker::{Backoff, BreakerConfig, BreakerRegistry};
use overseer::budget::{Budget, Limits};
use overseer::prelude::*;
use overseer_observe::{names, MetricsConfig};

#[allow(dead_code)] // each example uses part of it
#[path = "support/cli.rs"]
mod cli;
#[path = "support/scrape.rs"]
mod scrape;

const CLI: cli::Cli = cli::Cli {
    name: "metrics_prometheus",
    about: "a small team's metrics served to Prometheus on loopback, and one scrape printed",
    synopsis: "[--port N] [--serve-for-secs N]",
    options: &[
        (
            "--port N",
            "the loopback port to serve on (default: a free one)",
        ),
        (
            "--serve-for-secs N",
            "keep serving for N seconds after the run (default: exit after one scrape)",
        ),
    ],
};

/// Searches and cites; the citation service is down for the third and fourth claims, which
/// opens the `cite` breaker (two failures in a row): the fifth claim is rejected by it.
struct Researcher {
    claims: u32,
}

enum Research {
    Search(&'static str),
    Cite(&'static str),
}

impl Agent for Researcher {
    type Task = Research;
    type Output = String;

    fn task_type(task: &Research) -> &'static str {
        match task {
            Research::Search(_) => "search",
            Research::Cite(_) => "cite",
        }
    }

    async fn handle(
        &mut self,
        ctx: &mut AgentContext,
        task: Research,
    ) -> Result<String, AgentError> {
        match task {
            Research::Search(topic) => {
                ctx.report_usage(Usage::new(120, 40, 16));
                Ok(format!("three papers on {topic}"))
            }
            Research::Cite(claim) => {
                self.claims += 1;
                if self.claims == 3 || self.claims == 4 {
                    return Err(AgentError::failed("citation service unavailable"));
                }
                ctx.report_usage(Usage::new(30, 10, 4));
                Ok(format!("[{}] a source for '{claim}'", self.claims))
            }
        }
    }
}

/// Writes a paragraph; panics on an empty outline.
struct Writer;

impl Agent for Writer {
    type Task = String;
    type Output = String;

    fn task_type(_: &String) -> &'static str {
        "draft"
    }

    async fn handle(
        &mut self,
        ctx: &mut AgentContext,
        outline: String,
    ) -> Result<String, AgentError> {
        assert!(!outline.is_empty(), "cannot write from an empty outline");
        ctx.report_usage(Usage::new(200, 300, 50));
        Ok(format!("a paragraph about {outline}"))
    }
}

struct Options {
    port: u16,
    serve_for: Option<Duration>,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        port: 0,
        serve_for: None,
    };
    let mut args = CLI.args().into_iter();
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or(format!("{flag} needs a number"))
        };
        match flag.as_str() {
            "--port" => options.port = u16::try_from(value()?).map_err(|_| "--port: not a port")?,
            "--serve-for-secs" => options.serve_for = Some(Duration::from_secs(value()?)),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(options)
}

/// Runs the team to completion: asks, failures, a crash and its restart, then shutdown.
async fn run_team() -> Result<(), Box<dyn std::error::Error>> {
    let breakers = BreakerRegistry::new(
        BreakerConfig::default()
            .consecutive_failures(Some(2))
            .open_duration(Backoff::fixed(Duration::from_secs(60))),
    )?;
    let budget = Budget::builder()
        .process_limits(Limits::new().tokens(50_000).cost_micros(5_000))
        .build()?;
    let system = System::builder()
        .ask_timeout(Duration::from_secs(5))
        .breakers(breakers)
        .budget(budget)
        .build()?;
    // Every series is labelled `system="team"`: a second system in this process, with a
    // name of its own, would keep to series of its own.
    let recorder = MetricsConfig::new().system("team").spawn(&system);
    let mut events = system.subscribe();
    system
        .start(
            SupervisorSpec::one_for_one("team")
                .intensity(5, Duration::from_secs(10))
                .child(system.agent(AgentSpec::new("researcher", || Researcher { claims: 0 }))?)
                .child(system.agent(AgentSpec::new("writer", || Writer))?),
        )
        .await?;
    let researcher = system.agent_ref::<Researcher>("researcher")?;
    let writer = system.agent_ref::<Writer>("writer")?;

    for topic in ["supervision", "circuit breakers", "budgets"] {
        let found = researcher.ask(Research::Search(topic)).await?;
        for claim in ["restarts heal", "breakers shed load"] {
            match researcher.ask(Research::Cite(claim)).await {
                Ok(citation) => println!("cite: {citation}"),
                Err(error) => println!("cite failed: {error}"),
            }
        }
        println!("draft: {}", writer.ask(found).await?);
    }
    match writer.ask(String::new()).await {
        Ok(_) => println!("the empty outline was written?"),
        Err(error) => println!("writer: {error}"),
    }
    // Wait (at most 5 s) for the writer's restart before shutting down.
    let restarted = async {
        while let Ok(event) = events.recv().await {
            if let SystemEvent::Lifecycle(event) = &event {
                if event.path.as_str() == "team/writer" && event.kind == EventKind::Started {
                    if let Ok(draft) = writer.ask("recovery".into()).await {
                        println!("draft after restart: {draft}");
                        return;
                    }
                }
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), restarted).await;

    system.shutdown(Duration::from_secs(5)).await?;
    recorder.await?; // every event recorded
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let options = options().unwrap_or_else(|error| CLI.fail(error));
    let port = match options.port {
        // Find a free loopback port, then let the exporter bind it.
        0 => scrape::free_loopback_port()?,
        port => port,
    };
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    // Installed before the runtime exists, the exporter serves from its own thread.
    PrometheusBuilder::new()
        .with_http_listener(address)
        .set_buckets_for_metric(
            Matcher::Full(names::ASK_LATENCY.to_string()),
            &[0.000_1, 0.001, 0.01, 0.1, 1.0],
        )?
        .install()?;
    println!("scrape URL: http://{address}/metrics");

    std::panic::set_hook(Box::new(|_| {})); // the writer's crash is reported as an ask error
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(run_team())?;

    if let Some(serve_for) = options.serve_for {
        println!("serving for {serve_for:?}");
        std::thread::sleep(serve_for);
        return Ok(());
    }
    // The listener may still be binding: retry until it answers, for at most 10 s.
    let text = scrape::scrape_once_up(address, Duration::from_secs(10))?;
    println!("--- one scrape of http://{address}/metrics ---\n{text}");
    Ok(())
}
