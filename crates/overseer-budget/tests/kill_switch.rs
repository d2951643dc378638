//! The kill switch's state machine: armed, then tripped for good.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::Duration;

use overseer_budget::{
    Budget, Dimension, ErrorRateTrigger, InFlightPolicy, KillSwitch, KillSwitchConfig, Limits,
    Refusal, Spend, TripOutcome, TripReason, TripReport,
};
use tokio::time::{advance, Instant};

fn switch() -> KillSwitch {
    KillSwitch::new(KillSwitchConfig::new()).unwrap()
}

#[test]
fn a_new_switch_is_armed() {
    let switch = switch();
    assert!(!switch.is_tripped());
    assert_eq!(switch.report(), None);
    assert_eq!(switch.tripped_at(), None);
}

#[test]
fn a_second_trip_is_harmless_and_keeps_the_first_reason() {
    let switch = switch();
    assert_eq!(
        switch.trip(TripReason::manual("first")),
        TripOutcome::Tripped
    );
    let first = switch.report().cloned();
    let at = switch.tripped_at();
    assert_eq!(
        switch.trip(TripReason::manual("second")),
        TripOutcome::AlreadyTripped
    );
    assert_eq!(switch.report().cloned(), first);
    assert_eq!(switch.tripped_at(), at);
    assert_eq!(switch.reason(), Some(&TripReason::manual("first")));
}

#[test]
fn on_trip_callbacks_run_exactly_once_under_concurrent_trips() {
    const THREADS: usize = 8;
    for round in 0..50 {
        let switch = switch();
        let runs = Arc::new(AtomicUsize::new(0));
        for _ in 0..3 {
            let runs = runs.clone();
            switch.on_trip(move |_| {
                runs.fetch_add(1, Ordering::SeqCst);
            });
        }
        let barrier = Arc::new(Barrier::new(THREADS));
        let outcomes: Vec<TripOutcome> = (0..THREADS)
            .map(|t| {
                let switch = switch.clone();
                let barrier = barrier.clone();
                thread::spawn(move || {
                    barrier.wait();
                    let outcome = switch.trip(TripReason::manual(format!("thread {t}")));
                    assert!(switch.is_tripped(), "tripped once trip returned");
                    outcome
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect();
        let winners = outcomes.iter().filter(|o| o.tripped_now()).count();
        assert_eq!(winners, 1, "round {round}: {outcomes:?}");
        assert_eq!(runs.load(Ordering::SeqCst), 3, "round {round}");
        // The recorded reason is the winner's.
        let winner = outcomes.iter().position(|o| o.tripped_now()).unwrap();
        assert_eq!(
            switch.reason(),
            Some(&TripReason::manual(format!("thread {winner}")))
        );
    }
}

#[test]
fn callbacks_registered_while_others_trip_run_exactly_once_each() {
    for _ in 0..50 {
        let switch = switch();
        let runs = Arc::new(AtomicUsize::new(0));
        let barrier = Arc::new(Barrier::new(3));
        let registrars: Vec<_> = (0..2)
            .map(|_| {
                let (switch, runs, barrier) = (switch.clone(), runs.clone(), barrier.clone());
                thread::spawn(move || {
                    barrier.wait();
                    for _ in 0..100 {
                        let runs = runs.clone();
                        switch.on_trip(move |_| {
                            runs.fetch_add(1, Ordering::SeqCst);
                        });
                    }
                })
            })
            .collect();
        barrier.wait();
        switch.trip(TripReason::manual("race"));
        for r in registrars {
            r.join().unwrap();
        }
        assert_eq!(runs.load(Ordering::SeqCst), 200);
    }
}

#[test]
fn a_callback_registered_after_the_trip_runs_at_once() {
    let switch = switch();
    switch.trip(TripReason::manual("early"));
    let seen = Arc::new(Mutex::new(None));
    let slot = seen.clone();
    switch.on_trip(move |report| *slot.lock().unwrap() = Some(report.reason.clone()));
    assert_eq!(*seen.lock().unwrap(), Some(TripReason::manual("early")));
}

#[test]
fn a_panicking_callback_does_not_stop_the_others() {
    let switch = switch();
    let runs = Arc::new(AtomicUsize::new(0));
    let before = runs.clone();
    switch.on_trip(move |_| {
        before.fetch_add(1, Ordering::SeqCst);
    });
    switch.on_trip(|_| panic!("a faulty callback"));
    let after = runs.clone();
    switch.on_trip(move |_| {
        after.fetch_add(1, Ordering::SeqCst);
    });
    assert_eq!(switch.trip(TripReason::manual("x")), TripOutcome::Tripped);
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    assert!(switch.is_tripped());
}

#[test]
fn no_call_is_admitted_after_the_trip_on_any_thread() {
    let budget = Budget::builder()
        .process_limits(Limits::new().tokens(1_000_000))
        .build()
        .unwrap();
    budget.trip(TripReason::manual("halt"));
    let barrier = Arc::new(Barrier::new(4));
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let (budget, barrier) = (budget.clone(), barrier.clone());
            thread::spawn(move || {
                barrier.wait();
                for _ in 0..1_000 {
                    let refused = budget.admit(&format!("agent-{t}"), Spend::from_tokens(1));
                    assert!(matches!(refused, Err(Refusal::Tripped { .. })));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(budget.process().reserved(Dimension::Steps), 0);
    assert_eq!(budget.process().committed(Dimension::Steps), 0);
}

#[test]
fn admissions_racing_a_trip_stop_for_good_once_a_thread_sees_it() {
    const AFTER_TRIP: usize = 1_000;
    let budget = Budget::builder().build().unwrap();
    let admitted = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(5));
    let admitters: Vec<_> = (0..4)
        .map(|t| {
            let (budget, barrier, admitted) = (budget.clone(), barrier.clone(), admitted.clone());
            thread::spawn(move || {
                barrier.wait();
                let agent = format!("agent-{t}");
                let mut tries_after_trip = 0;
                // Bounded: the main thread trips after the first 100 admissions.
                for _ in 0..1_000_000 {
                    let seen_tripped = budget.is_tripped();
                    match budget.admit(&agent, Spend::from_tokens(1)) {
                        Ok(call) => {
                            assert!(!seen_tripped, "admitted after the trip was seen");
                            admitted.fetch_add(1, Ordering::SeqCst);
                            call.commit(Spend::from_tokens(1));
                        }
                        Err(refusal) => assert!(refusal.is_tripped()),
                    }
                    if seen_tripped {
                        tries_after_trip += 1;
                        if tries_after_trip == AFTER_TRIP {
                            break;
                        }
                    }
                }
                tries_after_trip
            })
        })
        .collect();
    barrier.wait();
    // Let some admissions through first: poll, bounded, never sleep.
    for _ in 0..100_000_000u64 {
        if admitted.load(Ordering::SeqCst) >= 100 {
            break;
        }
        thread::yield_now();
    }
    budget.trip(TripReason::manual("mid-flight"));
    for a in admitters {
        assert_eq!(a.join().unwrap(), AFTER_TRIP);
    }
    assert!(admitted.load(Ordering::SeqCst) >= 100);
    let steps = budget.process().committed(Dimension::Steps);
    assert_eq!(steps, admitted.load(Ordering::SeqCst) as u64);
    assert_eq!(budget.process().reserved(Dimension::Tokens), 0);
}

#[tokio::test(start_paused = true)]
async fn the_trip_report_holds_the_reason_the_figures_the_error_rate_and_the_time() {
    let start = Instant::now();
    let budget = Budget::builder()
        .process_limits(Limits::new().tokens(10_000).cost_micros(90_000).steps(50))
        .error_rate(ErrorRateTrigger::new(0.9, 10, 5).unwrap())
        .in_flight(InFlightPolicy::CancelNow)
        .build()
        .unwrap();
    budget
        .admit("a", Spend::new(2_000, 6_000))
        .unwrap()
        .commit(Spend::new(1_500, 4_500));
    let _in_flight = budget.admit("b", Spend::new(1_000, 3_000)).unwrap();
    budget.record_outcome(true, Instant::now());
    budget.record_outcome(false, Instant::now());

    advance(Duration::from_secs(42)).await;
    let now = Instant::now();
    assert_eq!(
        budget
            .kill_switch()
            .trip_at(TripReason::manual("operator"), now),
        TripOutcome::Tripped
    );

    assert_eq!(budget.kill_switch().tripped_at(), Some(now));
    assert_eq!(budget.kill_switch().started_at(), start);
    let report = budget.trip_report().unwrap();
    assert_eq!(report.reason, TripReason::manual("operator"));
    assert_eq!(report.after, Duration::from_secs(42));
    assert_eq!(report.in_flight, InFlightPolicy::CancelNow);
    let process = report.process.as_ref().unwrap();
    assert_eq!(
        (
            process.tokens.committed,
            process.tokens.reserved,
            process.tokens.limit
        ),
        (1_500, 1_000, Some(10_000))
    );
    assert_eq!(
        (
            process.cost.committed,
            process.cost.reserved,
            process.cost.limit
        ),
        (4_500, 3_000, Some(90_000))
    );
    assert_eq!(
        (
            process.steps.committed,
            process.steps.reserved,
            process.steps.limit
        ),
        (1, 1, Some(50))
    );
    let rate = report.error_rate.unwrap();
    assert_eq!(
        (rate.calls, rate.failures, rate.rate_ppm()),
        (2, 1, 500_000)
    );

    // Figures are frozen at the trip: later spend does not change the report.
    drop(_in_flight);
    assert_eq!(
        budget
            .trip_report()
            .unwrap()
            .process
            .as_ref()
            .unwrap()
            .tokens
            .reserved,
        1_000
    );
    assert_eq!(budget.status().trip.as_ref(), Some(report));
}

#[test]
fn the_trip_report_round_trips_through_json() {
    let budget = Budget::builder()
        .process_limits(Limits::new().tokens(100))
        .build()
        .unwrap();
    budget.trip(TripReason::manual("serialize me"));
    let report = budget.trip_report().unwrap();
    let json = serde_json::to_string(report).unwrap();
    assert_eq!(serde_json::from_str::<TripReport>(&json).unwrap(), *report);
}

#[test]
fn a_standalone_switch_reports_no_ledger_figures() {
    let switch = switch();
    switch.trip(TripReason::manual("no ledger"));
    let report = switch.report().unwrap();
    assert_eq!(report.process, None);
    assert_eq!(report.error_rate, None);
    assert_eq!(report.in_flight, InFlightPolicy::default());
}

#[test]
fn the_in_flight_policy_is_held_for_the_agent_layer() {
    let switch = KillSwitch::new(
        KillSwitchConfig::new().in_flight(InFlightPolicy::CancelAfter(Duration::from_millis(250))),
    )
    .unwrap();
    assert_eq!(
        switch.in_flight_policy().grace(),
        Some(Duration::from_millis(250))
    );
}
