//! An agent that sends an email as an unsafe step, and a system of it over a journal: what the
//! durable-run and dead-letter tests both crash and resume.
#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use overseer_agent::{Agent, AgentContext, AgentError, AgentSpec, Reconciled, System};
use overseer_journal::{Effect, Journal};
use overseer_supervisor::SupervisorSpec;

/// Asks a run in doubt: the email's intent is journaled, its result is not.
pub struct Mailer {
    pub sent: Arc<AtomicU32>,
    pub check: Option<bool>,
}

impl Agent for Mailer {
    type Task = String;
    type Output = bool;

    async fn handle(&mut self, ctx: &mut AgentContext, to: String) -> Result<bool, AgentError> {
        let sent = Arc::clone(&self.sent);
        let check = self.check;
        ctx.step_reconciled(
            "email",
            Effect::Unsafe,
            |_| async move {
                sent.fetch_add(1, Ordering::SeqCst);
                Ok(!to.is_empty())
            },
            |_key| async move {
                match check {
                    Some(true) => Reconciled::Happened(true),
                    Some(false) => Reconciled::DidNotHappen,
                    None => Reconciled::Unknown,
                }
            },
        )
        .await
    }
}

pub async fn mailer_system(journal: Journal, sent: &Arc<AtomicU32>, check: Option<bool>) -> System {
    let system = System::builder().journal(journal).build().unwrap();
    let sent = Arc::clone(sent);
    let spec = SupervisorSpec::one_for_one("root").child(
        system
            .agent(AgentSpec::new("mailer", move || Mailer {
                sent: Arc::clone(&sent),
                check,
            }))
            .unwrap(),
    );
    system.start(spec).await.unwrap();
    system
}
