//! Every way the kill switch trips, and the ways it must not.

use std::time::Duration;

use overseer_budget::{
    Budget, Dimension, ErrorRateTrigger, Limits, Refusal, Scope, Spend, Tiers, TripOutcome,
    TripReason,
};
use tokio::time::{advance, Instant};

fn budget(process: Limits) -> Budget {
    Budget::builder().process_limits(process).build().unwrap()
}

#[test]
fn committed_tokens_reaching_the_process_limit_trips_the_switch() {
    let budget = budget(Limits::new().tokens(1_000));
    let report = budget
        .admit("a", Spend::from_tokens(600))
        .unwrap()
        .commit(Spend::from_tokens(600));
    assert!(!report.tripped);
    assert!(!budget.is_tripped());
    let report = budget
        .admit("a", Spend::from_tokens(400))
        .unwrap()
        .commit(Spend::from_tokens(400));
    assert!(report.tripped);
    assert_eq!(
        budget.kill_switch().reason(),
        Some(&TripReason::LimitReached {
            dimension: Dimension::Tokens,
            committed: 1_000,
            limit: 1_000
        })
    );
}

#[test]
fn committed_cost_passing_the_process_limit_by_an_overrun_trips_the_switch() {
    let budget = budget(Limits::new().cost_micros(10_000));
    let report = budget
        .admit("a", Spend::from_cost_micros(5_000))
        .unwrap()
        .commit(Spend::from_cost_micros(12_000));
    assert!(report.tripped);
    assert_eq!(report.overrun, Some(Spend::from_cost_micros(7_000)));
    assert_eq!(
        budget.kill_switch().reason(),
        Some(&TripReason::LimitReached {
            dimension: Dimension::Cost,
            committed: 12_000,
            limit: 10_000
        })
    );
}

#[test]
fn the_last_allowed_step_trips_the_switch_when_committed() {
    let budget = budget(Limits::new().steps(3));
    for _ in 0..2 {
        budget.admit("a", Spend::ZERO).unwrap().commit(Spend::ZERO);
    }
    assert!(!budget.is_tripped());
    let last = budget.admit("a", Spend::ZERO).unwrap();
    assert!(
        !budget.is_tripped(),
        "reserving the last step is not spending it"
    );
    assert!(last.commit(Spend::ZERO).tripped);
    assert!(matches!(
        budget.kill_switch().reason(),
        Some(TripReason::LimitReached {
            dimension: Dimension::Steps,
            ..
        })
    ));
}

#[test]
fn a_released_last_step_does_not_trip() {
    let budget = budget(Limits::new().steps(1));
    budget.admit("a", Spend::ZERO).unwrap().release();
    assert!(!budget.is_tripped());
    assert_eq!(budget.process().remaining().steps, Some(1));
}

#[test]
fn an_estimate_the_spent_budget_cannot_cover_is_refused_and_trips_nothing() {
    let budget = budget(Limits::new().tokens(1_000));
    budget
        .admit("a", Spend::from_tokens(900))
        .unwrap()
        .commit(Spend::from_tokens(900));
    let refused = budget.admit("b", Spend::from_tokens(200)).unwrap_err();
    assert_eq!(
        refused,
        Refusal::LimitExceeded {
            scope: Scope::Process,
            dimension: Dimension::Tokens,
            requested: 200,
            remaining: 100,
            limit: 1_000,
            committed: 900,
        }
    );
    assert!(!refused.may_fit_later());
    assert!(!budget.is_tripped(), "a refusal refuses that call only");
    assert_eq!(budget.trip_report(), None);
    // What is left still serves an estimate that fits, by any agent.
    assert!(budget.admit("b", Spend::from_tokens(100)).is_ok());
}

/// Issue 14, exactly: a process token limit of 150 and estimates of 70. Two calls spend 42
/// each: 84 committed (56 %), 66 left. The next estimate of 70 does not fit: that call is
/// refused with the figures, nothing trips, others go on, and a warning came first.
#[test]
fn issue_14_a_refused_estimate_at_56_percent_spent_refuses_that_call_only_after_a_warning() {
    let budget = budget(Limits::new().tokens(150));
    let estimate = Spend::from_tokens(70);
    let first = budget.admit("a", estimate).unwrap();
    assert!(first.warnings().is_empty(), "70 of 150: under 70 %");
    first.commit(Spend::from_tokens(42));
    let second = budget.admit("b", estimate).unwrap();
    // 42 committed + 70 reserved = 112 ≥ ⌈0.7 × 150⌉ = 105: the warning, before the call.
    let warned: Vec<_> = second
        .warnings()
        .iter()
        .map(|w| (w.scope.clone(), w.dimension, w.tier.level, w.used, w.limit))
        .collect();
    assert_eq!(warned, [(Scope::Process, Dimension::Tokens, 1, 112, 150)]);
    assert!(second.commit(Spend::from_tokens(42)).warnings.is_empty());
    assert_eq!(budget.process().committed(Dimension::Tokens), 84);

    let refused = budget.admit("a", estimate).unwrap_err();
    assert_eq!(
        refused,
        Refusal::LimitExceeded {
            scope: Scope::Process,
            dimension: Dimension::Tokens,
            requested: 70,
            remaining: 66,
            limit: 150,
            committed: 84,
        }
    );
    assert_eq!(
        refused.to_string(),
        "process tokens limit: requested 70, remaining 66 of 150"
    );
    assert!(!budget.is_tripped(), "the run goes on");
    assert_eq!(
        budget.process().reserved(Dimension::Tokens),
        0,
        "nothing held"
    );
    // Another agent with an estimate that fits is admitted, and so is the refused one
    // with a smaller estimate.
    budget
        .admit("c", Spend::from_tokens(40))
        .unwrap()
        .commit(Spend::from_tokens(40));
    assert!(budget.admit("a", Spend::from_tokens(26)).is_ok());
    assert!(!budget.is_tripped());
}

fn hard_tiered(limits: Limits) -> Budget {
    // The seeds' pattern: warnings at 70 % and 85 %, hard action at 90 %.
    Budget::builder()
        .process_limits(limits)
        .tiers(Tiers::new(&[0.70, 0.85]).unwrap())
        .hard_tier(0.90)
        .build()
        .unwrap()
}

#[test]
fn committed_spend_reaching_the_hard_tier_trips_the_switch() {
    let budget = hard_tiered(Limits::new().tokens(1_000));
    let report = budget
        .admit("a", Spend::from_tokens(850))
        .unwrap()
        .commit(Spend::from_tokens(850));
    assert!(!report.tripped, "85 %: warned, not tripped");
    let report = budget
        .admit("b", Spend::from_tokens(100))
        .unwrap()
        .commit(Spend::from_tokens(50));
    assert!(report.tripped);
    assert!(
        report.limits_reached.is_empty(),
        "900 of 1 000: under the limit"
    );
    assert_eq!(
        budget.kill_switch().reason(),
        Some(&TripReason::HardTierReached {
            dimension: Dimension::Tokens,
            committed: 900,
            threshold: 900,
            limit: 1_000,
            fraction_ppm: 900_000,
        })
    );
    assert_eq!(
        budget.kill_switch().reason().unwrap().to_string(),
        "process tokens hard tier (90%) reached: 900 of 1000 committed"
    );
    assert!(budget.admit("a", Spend::ZERO).unwrap_err().is_tripped());
}

#[test]
fn reserving_past_the_hard_tier_does_not_trip() {
    let budget = hard_tiered(Limits::new().tokens(1_000));
    let held = budget.admit("a", Spend::from_tokens(990)).unwrap();
    assert_eq!(
        held.warnings().len(),
        2,
        "70 % and 85 %, from the reservation"
    );
    assert!(!budget.is_tripped(), "99 % reserved is not spent");
    held.release();
    let report = budget
        .admit("a", Spend::from_tokens(990))
        .unwrap()
        .commit(Spend::from_tokens(899));
    assert!(!report.tripped, "899 committed: under the hard tier");
    assert!(!budget.is_tripped());
}

#[test]
fn the_hard_tier_applies_to_every_process_dimension_and_to_no_agent_limit() {
    let budget = Budget::builder()
        .process_limits(Limits::new().tokens(100_000).steps(10))
        .agent_limits("a", Limits::new().tokens(100))
        .hard_tier(0.9)
        .build()
        .unwrap();
    budget
        .admit("a", Spend::from_tokens(100))
        .unwrap()
        .commit(Spend::from_tokens(100));
    assert!(
        !budget.is_tripped(),
        "the agent's whole limit: only that agent stops"
    );
    for _ in 0..7 {
        budget.admit("b", Spend::ZERO).unwrap().commit(Spend::ZERO);
    }
    assert!(!budget.is_tripped(), "8 of 10 steps");
    assert!(
        budget
            .admit("b", Spend::ZERO)
            .unwrap()
            .commit(Spend::ZERO)
            .tripped
    );
    assert!(matches!(
        budget.kill_switch().reason(),
        Some(TripReason::HardTierReached {
            dimension: Dimension::Steps,
            committed: 9,
            threshold: 9,
            ..
        })
    ));
}

#[test]
fn a_commit_reaching_both_the_limit_and_the_hard_tier_reports_the_limit() {
    let budget = hard_tiered(Limits::new().cost_micros(1_000));
    let report = budget
        .admit("a", Spend::from_cost_micros(500))
        .unwrap()
        .commit(Spend::from_cost_micros(1_100));
    assert!(report.tripped);
    assert!(matches!(
        budget.kill_switch().reason(),
        Some(TripReason::LimitReached {
            dimension: Dimension::Cost,
            committed: 1_100,
            ..
        })
    ));
}

#[test]
fn a_refusal_caused_only_by_calls_in_flight_does_not_trip() {
    let budget = budget(Limits::new().tokens(1_000));
    let in_flight = budget.admit("a", Spend::from_tokens(900)).unwrap();
    let refused = budget.admit("b", Spend::from_tokens(200)).unwrap_err();
    assert_eq!(refused.scope(), Some(&Scope::Process));
    assert!(refused.may_fit_later(), "the 900 held may still come back");
    assert!(!budget.is_tripped());
    in_flight.commit(Spend::from_tokens(300));
    assert!(budget.admit("b", Spend::from_tokens(200)).is_ok());
}

#[test]
fn an_agent_limit_refuses_only_that_agent_and_never_trips() {
    let budget = Budget::builder()
        .process_limits(Limits::new().tokens(10_000))
        .agent_limits("greedy", Limits::new().tokens(1_000).steps(2))
        .build()
        .unwrap();
    let report = budget
        .admit("greedy", Spend::from_tokens(1_000))
        .unwrap()
        .commit(Spend::from_tokens(1_000));
    assert_eq!(report.limits_reached.len(), 1);
    assert_eq!(
        report.limits_reached[0].scope,
        Scope::Agent("greedy".into())
    );
    assert!(!report.tripped);
    let refused = budget.admit("greedy", Spend::from_tokens(1)).unwrap_err();
    assert_eq!(refused.scope(), Some(&Scope::Agent("greedy".into())));
    assert!(!budget.is_tripped());
    assert!(budget.admit("modest", Spend::from_tokens(1_000)).is_ok());
}

#[tokio::test(start_paused = true)]
async fn the_deadline_is_the_start_plus_the_time_limit() {
    let start = Instant::now();
    let budget = Budget::builder()
        .time_limit(Duration::from_secs(60))
        .build()
        .unwrap();
    assert_eq!(budget.deadline(), Some(start + Duration::from_secs(60)));
    assert_eq!(budget_without_deadline().deadline(), None);
}

fn budget_without_deadline() -> Budget {
    Budget::builder().build().unwrap()
}

#[tokio::test(start_paused = true)]
async fn passing_the_deadline_trips_the_switch_when_checked() {
    let budget = Budget::builder()
        .time_limit(Duration::from_secs(60))
        .build()
        .unwrap();
    advance(Duration::from_millis(59_999)).await;
    assert_eq!(budget.check_deadline(Instant::now()), None);
    assert!(!budget.is_tripped());

    advance(Duration::from_millis(1)).await;
    assert_eq!(
        budget.check_deadline(Instant::now()),
        Some(TripOutcome::Tripped)
    );
    let report = budget.trip_report().unwrap();
    assert_eq!(
        report.reason,
        TripReason::DeadlinePassed {
            time_limit: Duration::from_secs(60)
        }
    );
    assert_eq!(report.after, Duration::from_secs(60));
    assert_eq!(
        budget.check_deadline(Instant::now()),
        Some(TripOutcome::AlreadyTripped)
    );
}

#[tokio::test(start_paused = true)]
async fn a_timer_sleeping_until_the_deadline_can_trip_the_switch() {
    let budget = Budget::builder()
        .time_limit(Duration::from_secs(5))
        .build()
        .unwrap();
    let timer = {
        let budget = budget.clone();
        tokio::spawn(async move {
            if let Some(deadline) = budget.deadline() {
                tokio::time::sleep_until(deadline).await;
                budget.check_deadline(Instant::now());
            }
        })
    };
    timer.await.unwrap(); // the paused clock auto-advances to the deadline
    assert!(budget.is_tripped());
    assert_eq!(budget.trip_report().unwrap().after, Duration::from_secs(5));
}

#[tokio::test(start_paused = true)]
async fn an_admission_after_the_deadline_is_refused_and_trips() {
    let budget = Budget::builder()
        .time_limit(Duration::from_secs(10))
        .build()
        .unwrap();
    assert!(budget.admit("a", Spend::ZERO).is_ok());
    advance(Duration::from_secs(10)).await;
    let refused = budget.admit("a", Spend::ZERO).unwrap_err();
    assert!(matches!(
        refused,
        Refusal::Tripped {
            reason: TripReason::DeadlinePassed { .. }
        }
    ));
}

#[tokio::test(start_paused = true)]
async fn the_error_rate_trips_only_once_the_minimum_number_of_calls_is_seen() {
    let budget = Budget::builder()
        .error_rate(ErrorRateTrigger::new(0.5, 10, 4).unwrap())
        .build()
        .unwrap();
    // Three failures in three calls: 100 %, but fewer than four calls.
    for _ in 0..3 {
        assert_eq!(budget.record_outcome(false, Instant::now()), None);
    }
    assert!(!budget.is_tripped());
    advance(Duration::from_secs(2)).await;
    assert_eq!(
        budget.record_outcome(true, Instant::now()),
        Some(TripOutcome::Tripped)
    );
    let report = budget.trip_report().unwrap();
    assert_eq!(
        report.reason,
        TripReason::ErrorRate {
            failures: 3,
            calls: 4,
            threshold_ppm: 500_000
        }
    );
    assert_eq!(report.after, Duration::from_secs(2));
    assert_eq!(report.error_rate.unwrap().rate_ppm(), 750_000);
}

#[tokio::test(start_paused = true)]
async fn an_error_rate_below_the_threshold_never_trips() {
    let budget = Budget::builder()
        .error_rate(ErrorRateTrigger::new(0.5, 10, 4).unwrap())
        .build()
        .unwrap();
    // ok ok ok fail fail, repeated: never more than 40 % in any window.
    for i in 0..100 {
        assert_eq!(budget.record_outcome(i % 5 < 3, Instant::now()), None);
    }
    assert!(!budget.is_tripped());
    let status = budget.kill_switch().error_rate().unwrap();
    assert_eq!((status.calls, status.failures), (10, 4));
}

#[tokio::test(start_paused = true)]
async fn only_recent_calls_count_in_the_error_rate_window() {
    let budget = Budget::builder()
        .error_rate(ErrorRateTrigger::new(0.5, 4, 4).unwrap())
        .build()
        .unwrap();
    for _ in 0..10 {
        assert_eq!(budget.record_outcome(true, Instant::now()), None);
    }
    assert_eq!(budget.record_outcome(false, Instant::now()), None);
    // 2 failures in 12 calls overall, but 2 in the last 4: 50 %.
    assert_eq!(
        budget.record_outcome(false, Instant::now()),
        Some(TripOutcome::Tripped)
    );
    let status = budget.trip_report().unwrap().error_rate.unwrap();
    assert_eq!((status.calls, status.failures), (4, 2));
}

#[test]
fn without_an_error_rate_trigger_outcomes_are_ignored() {
    let budget = budget(Limits::new());
    let now = Instant::now();
    for _ in 0..100 {
        assert_eq!(budget.record_outcome(false, now), None);
    }
    assert!(!budget.is_tripped());
    assert_eq!(budget.kill_switch().error_rate(), None);
}

#[test]
fn a_manual_trip_refuses_every_later_admission() {
    let budget = budget(Limits::new().tokens(1_000));
    assert_eq!(
        budget.trip(TripReason::manual("runaway planner")),
        TripOutcome::Tripped
    );
    for agent in ["a", "b", "c"] {
        assert_eq!(
            budget.admit(agent, Spend::ZERO).unwrap_err(),
            Refusal::Tripped {
                reason: TripReason::manual("runaway planner")
            }
        );
    }
    assert_eq!(budget.process().reserved(Dimension::Steps), 0);
}

#[test]
fn calls_in_flight_at_the_trip_still_commit_their_spend() {
    let budget = budget(Limits::new().tokens(1_000));
    let in_flight = budget.admit("a", Spend::from_tokens(300)).unwrap();
    budget.trip(TripReason::manual("stop"));
    let report = in_flight.commit(Spend::from_tokens(250));
    assert!(!report.tripped);
    assert_eq!(budget.process().committed(Dimension::Tokens), 250);
    assert_eq!(budget.process().reserved(Dimension::Tokens), 0);
}
