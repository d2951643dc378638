//! A handler that never yields (a busy loop with no `.await`) cannot be preempted by a
//! cooperative runtime: its deadline and the hang detector cannot stop it. A shutdown still
//! returns by its deadline (plus a short grace to confirm its kills), reporting what it could
//! not stop. Real clock, multi-threaded runtime: the busy handler holds one worker thread.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use overseer_agent::{Agent, AgentContext, AgentError, AgentSpec, System, SystemError};
use overseer_supervisor::{Shutdown, SupervisorSpec, TreeError};

/// Spins without yielding until `release` is set, or for at most `longest` of wall time.
struct Spinner {
    spinning: Arc<AtomicBool>,
    release: Arc<AtomicBool>,
    longest: Duration,
}

impl Agent for Spinner {
    type Task = ();
    type Output = ();

    async fn handle(&mut self, _: &mut AgentContext, (): ()) -> Result<(), AgentError> {
        self.spinning.store(true, Ordering::SeqCst);
        let started = std::time::Instant::now();
        while !self.release.load(Ordering::SeqCst) && started.elapsed() < self.longest {
            std::hint::spin_loop();
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn a_shutdown_returns_by_its_deadline_and_reports_a_handler_that_never_yields() {
    let spinning = Arc::new(AtomicBool::new(false));
    let release = Arc::new(AtomicBool::new(false));
    let system = System::builder().build().unwrap();
    let (s, r) = (Arc::clone(&spinning), Arc::clone(&release));
    let spec = AgentSpec::new("spinner", move || Spinner {
        spinning: Arc::clone(&s),
        release: Arc::clone(&r),
        // Far longer than the shutdown's deadline: a shutdown that waited for the handler
        // would return only after it, with nothing left running.
        longest: Duration::from_secs(30),
    })
    .shutdown(Shutdown::Timeout(Duration::from_millis(100)));
    system
        .start(SupervisorSpec::one_for_one("root").child(system.agent(spec).unwrap()))
        .await
        .unwrap();
    let spinner = system.agent_ref::<Spinner>("spinner").unwrap();
    spinner.tell(()).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !spinning.load(Ordering::SeqCst) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the handler did not start within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let stopped = system.shutdown(Duration::from_millis(300)).await;
    // Whatever the outcome, let the spinning thread go before asserting.
    let still_spinning = !release.swap(true, Ordering::SeqCst);
    assert!(still_spinning);
    match stopped {
        Err(SystemError::Tree(TreeError::ShutdownIncomplete { running, .. })) => {
            assert!(!running.is_empty(), "it names what it could not stop");
        }
        other => panic!("expected a report of the actor it could not stop, got {other:?}"),
    }
}
