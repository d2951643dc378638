//! A document pipeline under a `rest_for_one` supervisor: extraction, validation, enrichment
//! and report are four agents started in that order, and each stage is set up against the
//! ones before it. One invoice makes the validation agent panic: the supervisor stops the
//! stages after it (report, then enrichment: reverse start order), restarts validation,
//! enrichment and report in start order, and leaves extraction alone. The pipeline then
//! carries on with the remaining invoices. Every lifecycle event is printed from the system's
//! event stream as it arrives.
//!
//! ```text
//! cargo run --example pipeline_rest_for_one
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use overseer::prelude::*;
use overseer::supervisor::{EventKind, LifecycleEvent};
use tokio::sync::broadcast;

#[allow(dead_code)] // each example uses part of it
#[path = "support/cli.rs"]
mod cli;

const CLI: cli::Cli = cli::Cli {
    name: "pipeline_rest_for_one",
    about:
        "a document pipeline under rest_for_one: a crash restarts its stage and the stages after it",
    synopsis: "",
    options: &[],
};

/// The stages, in start order; each is an agent of that name under the `pipeline` supervisor.
const STAGES: [&str; 4] = ["extraction", "validation", "enrichment", "report"];

/// The invoices to process. The third has an amount the validation agent cannot parse (it
/// panics: the injected crash); the fifth has a currency it refuses (a failed task, no crash).
const INVOICES: [&str; 6] = [
    "INV-1001 | Acme Corp | 1200.00 | EUR",
    "INV-1002 | Globex | 350.50 | USD",
    "INV-1003 | Initech | twelve hundred | EUR",
    "INV-1004 | Umbrella | 99.90 | GBP",
    "INV-1005 | Hooli | 10.00 | XYZ",
    "INV-1006 | Stark Industries | 5000.00 | EUR",
];

/// An invoice split into its fields, not yet checked.
struct Extracted {
    number: String,
    customer: String,
    amount: String,
    currency: String,
}

/// An invoice whose fields are known to be good.
struct Validated {
    number: String,
    customer: String,
    cents: u64,
    currency: &'static str,
}

/// A validated invoice with what the business adds to it.
struct Enriched {
    invoice: Validated,
    tier: &'static str,
    euro_cents: u64,
}

/// Splits a raw invoice line into fields.
struct Extraction;

/// Checks the fields. It has a bug: it assumes every amount is a number and panics otherwise.
struct Validation;

/// Adds the customer's tier and the amount in euros.
struct Enrichment;

/// Writes one report line per invoice.
struct Report;

impl Agent for Extraction {
    type Task = String;
    type Output = Extracted;

    async fn handle(&mut self, _: &mut AgentContext, raw: String) -> Result<Extracted, AgentError> {
        let fields: Vec<&str> = raw.split('|').map(str::trim).collect();
        let [number, customer, amount, currency] = fields[..] else {
            return Err(AgentError::failed(format!(
                "expected 4 fields, found {}",
                fields.len()
            )));
        };
        Ok(Extracted {
            number: number.to_string(),
            customer: customer.to_string(),
            amount: amount.to_string(),
            currency: currency.to_string(),
        })
    }
}

impl Agent for Validation {
    type Task = Extracted;
    type Output = Validated;

    async fn handle(
        &mut self,
        _: &mut AgentContext,
        invoice: Extracted,
    ) -> Result<Validated, AgentError> {
        let currency = match invoice.currency.as_str() {
            "EUR" => "EUR",
            "USD" => "USD",
            "GBP" => "GBP",
            other => {
                return Err(AgentError::failed(format!(
                    "unsupported currency '{other}'"
                )))
            }
        };
        // The bug: an amount that is not a number should be a failed task, not a panic.
        let cents = parse_cents(&invoice.amount)
            .unwrap_or_else(|| panic!("amount {:?} is not a number", invoice.amount));
        Ok(Validated {
            number: invoice.number,
            customer: invoice.customer,
            cents,
            currency,
        })
    }
}

impl Agent for Enrichment {
    type Task = Validated;
    type Output = Enriched;

    async fn handle(
        &mut self,
        _: &mut AgentContext,
        invoice: Validated,
    ) -> Result<Enriched, AgentError> {
        let tier = match invoice.customer.as_str() {
            "Acme Corp" | "Stark Industries" => "gold",
            "Globex" => "silver",
            _ => "standard",
        };
        // Fixed rates, in euro cents per 100 cents.
        let rate = match invoice.currency {
            "USD" => 92,
            "GBP" => 117,
            _ => 100,
        };
        Ok(Enriched {
            euro_cents: invoice.cents * rate / 100,
            tier,
            invoice,
        })
    }
}

impl Agent for Report {
    type Task = Enriched;
    type Output = String;

    async fn handle(&mut self, _: &mut AgentContext, row: Enriched) -> Result<String, AgentError> {
        let invoice = &row.invoice;
        Ok(format!(
            "{} {} ({}): {} {} = {} EUR",
            invoice.number,
            invoice.customer,
            row.tier,
            money(invoice.cents),
            invoice.currency,
            money(row.euro_cents)
        ))
    }
}

/// "1200.00" as 120000 cents; `None` if it is not an amount.
fn parse_cents(amount: &str) -> Option<u64> {
    let (units, cents) = amount.split_once('.').unwrap_or((amount, "00"));
    if cents.len() != 2 {
        return None;
    }
    Some(units.parse::<u64>().ok()? * 100 + cents.parse::<u64>().ok()?)
}

fn money(cents: u64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// The system's lifecycle events, printed as they arrive, with the starts of each stage
/// counted.
struct Timeline {
    events: broadcast::Receiver<SystemEvent>,
    starts: BTreeMap<String, u32>,
}

impl Timeline {
    fn new(events: broadcast::Receiver<SystemEvent>) -> Self {
        Self {
            events,
            starts: BTreeMap::new(),
        }
    }

    /// Prints the events published so far.
    fn print_pending(&mut self) {
        while let Ok(event) = self.events.try_recv() {
            self.print(event);
        }
    }

    /// Prints events until the agent at `path` has started again; false if that did not
    /// happen within 5 s.
    async fn print_until_started(&mut self, path: &str) -> bool {
        let started = async {
            while let Ok(event) = self.events.recv().await {
                let done = matches!(&event, SystemEvent::Lifecycle(e)
                    if e.path.as_str() == path && e.kind == EventKind::Started);
                self.print(event);
                if done {
                    return;
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(5), started)
            .await
            .is_ok()
    }

    fn print(&mut self, event: SystemEvent) {
        // Asks are summed up at the end; only the supervision events are shown here.
        if let SystemEvent::Lifecycle(event) = event {
            println!("   [tree] {}", self.describe(&event));
        }
    }

    fn describe(&mut self, event: &LifecycleEvent) -> String {
        match &event.kind {
            EventKind::Started => {
                let starts = self
                    .starts
                    .entry(event.path.name().to_string())
                    .or_default();
                *starts += 1;
                match *starts {
                    1 => format!("{} started", event.path),
                    _ => format!("{} restarted (restart #{})", event.path, *starts - 1),
                }
            }
            EventKind::Stopped { reason } => format!("{} stopped: {reason}", event.path),
            other => format!("{} {other}", event.path),
        }
    }

    /// How many times the stage was started again after its first start.
    fn restarts(&self, stage: &str) -> u32 {
        self.starts
            .get(stage)
            .map_or(0, |starts| starts.saturating_sub(1))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    CLI.no_arguments();
    // The injected panic is reported below, from the event stream; keep stderr quiet.
    std::panic::set_hook(Box::new(|_| {}));
    let system = System::builder()
        .ask_timeout(Duration::from_secs(5))
        .build()?;
    let pipeline = SupervisorSpec::rest_for_one("pipeline")
        .intensity(3, Duration::from_secs(10))
        .child(system.agent(AgentSpec::new("extraction", || Extraction))?)
        .child(system.agent(AgentSpec::new("validation", || Validation))?)
        .child(system.agent(AgentSpec::new("enrichment", || Enrichment))?)
        .child(system.agent(AgentSpec::new("report", || Report))?);

    let mut timeline = Timeline::new(system.subscribe());
    system.start(pipeline).await?;
    let extraction = system.agent_ref::<Extraction>("extraction")?;
    let validation = system.agent_ref::<Validation>("validation")?;
    let enrichment = system.agent_ref::<Enrichment>("enrichment")?;
    let report = system.agent_ref::<Report>("report")?;
    timeline.print_pending();

    let mut reported = 0;
    let mut rejected = 0;
    let mut lost_to_crashes = 0;
    for raw in INVOICES {
        println!("-> {raw}");
        let outcome = async {
            let extracted = extraction.ask(raw.to_string()).await?;
            let validated = validation.ask(extracted).await?;
            let enriched = enrichment.ask(validated).await?;
            report.ask(enriched).await
        }
        .await;
        match outcome {
            Ok(line) => {
                reported += 1;
                println!("<- report: {line}");
                timeline.print_pending();
            }
            Err(AskError::Failed { agent, error }) => {
                rejected += 1;
                println!("<- rejected by {agent}: {error}");
                timeline.print_pending();
            }
            Err(crash @ AskError::Crashed { .. }) => {
                lost_to_crashes += 1;
                println!("<- lost: {crash}");
                // rest_for_one: the last stage is the last to start again.
                if !timeline.print_until_started("pipeline/report").await {
                    println!("   (the pipeline did not restart within 5 s)");
                }
            }
            Err(other) => return Err(other.into()),
        }
    }

    println!("-> shutting the pipeline down in order");
    system.shutdown(Duration::from_secs(5)).await?;
    timeline.print_pending();

    println!(
        "summary: {} invoices: {reported} reported, {rejected} rejected, {lost_to_crashes} lost to a crash",
        INVOICES.len()
    );
    let restarts: Vec<String> = STAGES
        .iter()
        .map(|stage| format!("{stage} {}", timeline.restarts(stage)))
        .collect();
    println!("restarts per stage: {}", restarts.join(", "));
    Ok(())
}
