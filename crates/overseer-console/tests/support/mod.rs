//! What the console's tests share: a system with a flaky agent, a fragile subtree that
//! escalates on its first crash, a breaker registry and a budget; HTTP/1.1 on loopback.

#![allow(dead_code)]

use std::time::Duration;

use overseer_agent::{Agent, AgentContext, AgentError, AgentSpec, AskError, System, Usage};
use overseer_breaker::{BreakerRegistry, State};
use overseer_budget::{Budget, Limits};
use overseer_console::{Console, ConsoleConfig};
use overseer_supervisor::{ChildSpec, SupervisorSpec};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `"crash"` panics, `"fail"` returns an error, anything else is answered (10 tokens, 20
/// micro-units).
pub(crate) struct Flaky;

impl Agent for Flaky {
    type Task = String;
    type Output = String;

    fn task_type(_: &String) -> &'static str {
        "work"
    }

    async fn handle(&mut self, ctx: &mut AgentContext, task: String) -> Result<String, AgentError> {
        match task.as_str() {
            "crash" => panic!("injected crash"),
            "fail" => Err(AgentError::Failed("injected failure".into())),
            _ => {
                ctx.report_usage(Usage::new(6, 4, 20));
                Ok(task)
            }
        }
    }
}

/// The system: `root/` with `flaky` and `fragile/` (intensity 0: its first crash escalates)
/// holding `brittle`; a budget of 1,000 tokens and 10,000 micro-units (no test comes near).
pub(crate) async fn system() -> System {
    let system = System::builder()
        .breakers(BreakerRegistry::default())
        .budget(
            Budget::builder()
                .process_limits(Limits::new().tokens(1_000).cost_micros(10_000))
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let fragile = SupervisorSpec::one_for_one("fragile")
        .intensity(0, Duration::from_secs(60))
        .child(system.agent(AgentSpec::new("brittle", || Flaky)).unwrap());
    let root = SupervisorSpec::one_for_one("root")
        .intensity(100, Duration::from_secs(1))
        .child(system.agent(AgentSpec::new("flaky", || Flaky)).unwrap())
        .child(ChildSpec::supervisor(fragile));
    system.start(root).await.unwrap();
    system
}

pub(crate) async fn served(system: &System, config: ConsoleConfig) -> Console {
    Console::serve(system, "127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap()
}

/// Asks `flaky` to fail until its breaker opens (bounded).
pub(crate) async fn open_the_breaker(system: &System) {
    let flaky = system.agent_ref::<Flaky>("flaky").unwrap();
    let open = || {
        system
            .breakers()
            .unwrap()
            .snapshot()
            .iter()
            .any(|breaker| &*breaker.key.agent == "flaky" && breaker.state == State::Open)
    };
    for _ in 0..20 {
        if open() {
            return;
        }
        if let Err(AskError::BreakerOpen { .. }) = flaky.ask("fail".to_string()).await {
            break;
        }
    }
    assert!(open(), "the breaker of flaky/work opened");
}

/// One HTTP/1.1 request on loopback, bounded by a deadline: the status and the body.
pub(crate) async fn request(
    console: &Console,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String) {
    let exchange = async {
        let mut stream = TcpStream::connect(console.local_addr())
            .await
            .expect("connect");
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: 0\r\n",
            console.local_addr()
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut response = String::new();
        stream.read_to_string(&mut response).await.expect("read");
        response
    };
    let response = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .expect("answered within 10 s");
    let status: u16 = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {response:?}"));
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    (status, body)
}

/// [`request`], the body read as JSON.
pub(crate) async fn json(
    console: &Console,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let (status, body) = request(console, method, path, headers).await;
    let json = serde_json::from_str(&body).unwrap_or_else(|error| panic!("{error}: {body:?}"));
    (status, json)
}
