//! A trip booked as a saga: a flight, a hotel and a car, each from its own booking desk (an
//! agent answering through a scripted model). The flight desk is flaky: it answers 503 twice,
//! and the flight step's retry policy (from `overseer-retry`: 3 attempts, 200 ms doubling, no
//! jitter so the story is the same on every run) waits and tries again until it confirms. The
//! hotel desk keeps answering 503: its step climbs an escalation ladder to the partner hotel's desk,
//! which confirms (the cancellation later goes to the desk that booked). The
//! car desk has no car left, a permanent failure that no retry would fix: the saga gives the
//! trip up and compensates what it had done, last step first, cancelling the hotel and then
//! the flight. The dead-letter queue stays empty: every cancellation succeeded.
//!
//! The clock is paused (tokio's virtual time), so the timestamps are exact.
//!
//! ```text
//! cargo run --example saga_booking
//! ```

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use overseer::agent::{Saga, SagaOutcome, SagaStep};
use overseer::prelude::*;
use overseer::retry::{ClassSet, Jitter, RetryPolicy};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

#[allow(dead_code)] // each example uses part of it
#[path = "support/cli.rs"]
mod cli;

const CLI: cli::Cli = cli::Cli {
    name: "saga_booking",
    about: "a trip booked as a saga: a flaky flight retried, a failing hotel desk escalated to a partner, the car failing for good, the hotel and flight cancelled in reverse order",
    synopsis: "",
    options: &[],
};

/// What a desk is asked.
#[derive(Debug, Clone, Serialize, Deserialize)]
enum Request {
    /// Book this.
    Book(String),
    /// Cancel the booking with this confirmation.
    Cancel(String),
}

/// A booking desk: confirms through its model, after failing `flaky` times with a 503, or
/// never when it has `none_left`.
struct Desk {
    model: ScriptedModel,
    flaky: Arc<AtomicU32>,
    none_left: bool,
}

impl Agent for Desk {
    type Task = Request;
    type Output = String;

    async fn handle(
        &mut self,
        ctx: &mut AgentContext,
        request: Request,
    ) -> Result<String, AgentError> {
        let prompt = match &request {
            Request::Book(what) => {
                if self.none_left {
                    return Err(AgentError::permanent(format!("none left for {what}")));
                }
                let left = self.flaky.load(Ordering::SeqCst);
                if left > 0 {
                    self.flaky.store(left - 1, Ordering::SeqCst);
                    return Err(AgentError::failed("503 Service Unavailable"));
                }
                format!("book {what}")
            }
            Request::Cancel(confirmation) => format!("cancel {confirmation}"),
        };
        let reply = ctx.model(&self.model, ModelRequest::new(prompt)).await?;
        Ok(reply.text)
    }
}

fn desk(
    code: &'static str,
    flaky: u32,
    none_left: bool,
) -> impl Fn() -> Desk + Send + Sync + 'static {
    let model = ScriptedModel::new()
        .when("book", move |_| Ok(format!("{code}-0042")))
        .when("cancel", |_| Ok("cancelled".to_string()));
    let flaky = Arc::new(AtomicU32::new(flaky));
    move || Desk {
        model: model.clone(),
        flaky: Arc::clone(&flaky),
        none_left,
    }
}

/// A booking and the desk that made it (the one to cancel it at).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Booking {
    desk: String,
    confirmation: String,
}

/// The hotel: booked at `desk`, and if that fails, by the ladder's rung to `partner`;
/// cancelled at whichever desk booked it.
fn hotel_step(
    system: &System,
    desk: &str,
    partner: &str,
    start: Instant,
) -> Result<SagaStep, AskError> {
    let hotel = system.agent_ref::<Desk>(desk)?;
    let ladder = Escalation::new().other_agent(
        "partner hotel",
        system.agent_ref::<Desk>(partner)?,
        ClassSet::CLIMBABLE,
    );
    let desks = system.clone();
    Ok(SagaStep::new(
        "hotel",
        move |_| {
            let (hotel, ladder) = (hotel.clone(), ladder.clone());
            async move {
                let answered = hotel
                    .ask_escalating(Request::Book("hotel".into()), &ladder)
                    .await?;
                let by = answered.by.to_string();
                let climbed = if by == hotel.name().as_str() {
                    String::new()
                } else {
                    format!(" (the ladder climbed past {})", hotel.name())
                };
                let confirmation = answered.output;
                println!(
                    "{} hotel: book -> confirmed {confirmation} by {by}{climbed}",
                    stamp(start)
                );
                Ok::<_, AskError>(Booking {
                    desk: by,
                    confirmation,
                })
            }
        },
        move |_, booking: Booking| {
            let desk = desks.agent_ref::<Desk>(&booking.desk);
            async move {
                let said = desk?
                    .ask(Request::Cancel(booking.confirmation.clone()))
                    .await?;
                println!(
                    "{} hotel: cancel {} at {} -> {said}",
                    stamp(start),
                    booking.confirmation,
                    booking.desk
                );
                Ok(())
            }
        },
    ))
}

/// `[  0.600s]`: the time since the trip started, on the paused clock.
fn stamp(start: Instant) -> String {
    format!("[{:>7.3}s]", start.elapsed().as_secs_f64())
}

/// The step `item`: book it at `desk`, cancel it there.
fn step(
    system: &System,
    desk: &str,
    item: &'static str,
    start: Instant,
) -> Result<SagaStep, AskError> {
    let book = system.agent_ref::<Desk>(desk)?;
    let cancel = book.clone();
    Ok(SagaStep::new(
        item,
        move |ctx| {
            let desk = book.clone();
            async move {
                let answer = desk.ask(Request::Book(item.to_string())).await;
                match &answer {
                    Ok(confirmation) => println!(
                        "{} {item}: book (attempt {}) -> confirmed {confirmation}",
                        stamp(start),
                        ctx.attempt
                    ),
                    Err(error) => println!(
                        "{} {item}: book (attempt {}) -> failed, {}: {error}",
                        stamp(start),
                        ctx.attempt,
                        class_of(error)
                    ),
                }
                answer
            }
        },
        move |_, confirmation: String| {
            let desk = cancel.clone();
            async move {
                let answer = desk.ask(Request::Cancel(confirmation.clone())).await;
                match &answer {
                    Ok(said) => {
                        println!("{} {item}: cancel {confirmation} -> {said}", stamp(start))
                    }
                    Err(error) => println!(
                        "{} {item}: cancel {confirmation} -> failed: {error}",
                        stamp(start)
                    ),
                }
                answer.map(drop)
            }
        },
    ))
}

fn class_of(error: &AskError) -> &'static str {
    match error.class() {
        ErrorClass::Transient => "transient",
        ErrorClass::Permanent => "permanent",
        _ => "other",
    }
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    CLI.no_arguments();
    let system = System::builder()
        .ask_timeout(Duration::from_secs(10))
        .build()?;
    let tree = SupervisorSpec::one_for_one("travel")
        .child(system.agent(AgentSpec::new("flight-desk", desk("FL", 2, false)))?)
        .child(system.agent(AgentSpec::new("hotel-desk", desk("HT", u32::MAX, false)))?)
        .child(system.agent(AgentSpec::new("partner-hotel-desk", desk("HP", 0, false)))?)
        .child(system.agent(AgentSpec::new("car-desk", desk("CR", 0, true)))?);
    system.start(tree).await?;

    let start = Instant::now();
    let flaky_provider = RetryPolicy::builder()
        .max_attempts(3)
        .base_delay(Duration::from_millis(200))
        .jitter(Jitter::None)
        .build()?;
    let saga = Saga::builder("book-trip")
        .then(step(&system, "flight-desk", "flight", start)?.retry(flaky_provider))
        .then(hotel_step(
            &system,
            "hotel-desk",
            "partner-hotel-desk",
            start,
        )?)
        .then(step(&system, "car-desk", "car", start)?)
        .build();

    println!("== booking a trip: flight, hotel, car");
    let outcome = saga.run(&system).await?;
    println!("== outcome");
    match &outcome {
        SagaOutcome::Completed { steps } => println!("completed: {}", steps.join(", ")),
        SagaOutcome::Compensated {
            failed_step,
            failure,
            compensated,
        } => {
            let last = failure.last().map_or("", |f| f.message.as_str());
            println!(
                "compensated: {failed_step} failed for good after {} attempt(s) ({last})",
                failure.len()
            );
            println!("undone, last step first: {}", compensated.join(", "));
        }
        SagaOutcome::PartiallyCompensated {
            failed_step,
            compensated,
            dead_lettered,
            ..
        } => {
            println!(
                "partially compensated: {failed_step} failed; undone: {}",
                compensated.join(", ")
            );
            for (step, id) in dead_lettered {
                println!("not undone: {step} ({id})");
            }
        }
        other => println!("{other:?}"),
    }
    println!("dead letters: {}", system.dead_letters().len());
    system.shutdown(Duration::from_secs(5)).await?;
    Ok(())
}
