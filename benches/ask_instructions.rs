//! Instructions per ask, counted with callgrind: a program that makes `N` asks through the
//! full call path on a current-thread runtime, so that the difference between two counts
//! divided by the difference in asks is the cost of one ask, exactly and repeatably.
//!
//! ```text
//! cargo bench --bench ask_instructions --no-run        # builds target/release/deps/ask_instructions-*
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null BINARY plain 0
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null BINARY plain 20000
//! # per ask = (Collected at 20000 - Collected at 0) / 20000; `governed` has a breaker and a budget
//! ```
//!
//! `validated N` counts plain asks of an agent with one validator that accepts every output
//! (`AgentSpec::validator`): the difference from `plain` is what validation costs.
//!
//! `restart N` counts `N` restart cycles instead: a `tell` whose task fails with a fatal error,
//! the restart of the agent (in place, one_for_one), and the ask that the rebuilt agent answers.
//!
//! Run without arguments (as `cargo bench` does) it makes 1,000 plain asks and exits.

use std::time::Duration;

// Full paths, not the prelude: the same file builds at older commits, to compare counts.
use overseer::breaker::{BreakerConfig, BreakerRegistry};
use overseer::budget::{Budget, Limits};
use overseer::prelude::*;

struct Echo;

/// The task that makes [`Echo`] fail with a fatal error, which restarts it.
const CRASH: u64 = u64::MAX;

impl Agent for Echo {
    type Task = u64;
    type Output = u64;

    async fn handle(&mut self, _: &mut AgentContext, task: u64) -> Result<u64, AgentError> {
        if task == CRASH {
            return Err(AgentError::fatal("crash"));
        }
        Ok(task)
    }
}

/// What one counted iteration does.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Plain,
    Governed,
    Restart,
    Validated,
}

fn system(governed: bool) -> Result<System, Box<dyn std::error::Error>> {
    let mut builder = System::builder().ask_timeout(Duration::from_secs(30));
    if governed {
        builder = builder
            .breakers(BreakerRegistry::new(BreakerConfig::default())?)
            .budget(
                Budget::builder()
                    .process_limits(Limits::new().tokens(u64::MAX / 2))
                    .build()?,
            );
    }
    Ok(builder.build()?)
}

fn echo_spec(mode: Mode) -> AgentSpec<Echo> {
    let spec = AgentSpec::new("echo", || Echo);
    if mode != Mode::Validated {
        return spec;
    }
    spec.validator(overseer::semantic::validator::from_predicate(
        "anything",
        |_: &u64| true,
    ))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1).filter(|arg| arg != "--bench");
    let mode = args.next().unwrap_or_else(|| "plain".to_string());
    let asks: u64 = match args.next() {
        Some(count) => count.parse()?,
        None => 1_000,
    };
    let mode = match mode.as_str() {
        "plain" => Mode::Plain,
        "governed" => Mode::Governed,
        "restart" => Mode::Restart,
        "validated" => Mode::Validated,
        other => {
            return Err(
                format!("unknown mode {other:?}: plain, governed, restart or validated").into(),
            )
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let system = system(mode == Mode::Governed)?;
        // Restarts are counted, not limited: the window must never escalate.
        let spec = SupervisorSpec::one_for_one("root")
            .intensity(u32::MAX, Duration::from_secs(1))
            .child(system.agent(echo_spec(mode))?);
        system.start(spec).await?;
        let echo = system.agent_ref::<Echo>("echo")?;
        // One ask before counting starts: the breaker and the ledger entries exist from here.
        echo.ask(0).await?;
        // The counted asks run in a task of their own, as a user's code does: the runtime's
        // `block_on` then polls only its join handle, so how the compiler inlines the loop into
        // the runtime's own code does not change the count.
        let asking = tokio::spawn(async move {
            for n in 0..asks {
                if mode == Mode::Restart {
                    // Queued ahead of the ask, which the next incarnation answers.
                    echo.tell(CRASH)?;
                }
                std::hint::black_box(echo.ask(n).await?);
            }
            Ok::<(), AskError>(())
        });
        asking.await??;
        system.shutdown(Duration::from_secs(5)).await?;
        Ok(())
    })
}
