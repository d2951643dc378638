//! The escalation ladder through the public API.

use std::time::Duration;

use overseer_retry::{
    ClassSet, Conditions, ErrorClass, Ladder, LadderState, Next, RetryPolicy, Rung, RungKind, Skip,
    SkipReason, StopReason,
};

fn seeds_ladder() -> Ladder {
    Ladder::new(vec![
        Rung::same_agent_with_feedback("feedback"),
        Rung::other_agent("sibling", "writer-2", ClassSet::CLIMBABLE),
        Rung::decompose("split"),
        Rung::stronger_model("upgrade"),
    ])
}

fn climb(rung: usize) -> Next {
    Next::Climb {
        rung,
        skipped: vec![],
    }
}

#[test]
fn transient_failures_climb_every_rung_in_order_then_stop_exhausted() {
    let ladder = seeds_ladder();
    let mut state = LadderState::new();
    let failure = Conditions::new(ErrorClass::Transient);
    for rung in 0..4 {
        assert_eq!(ladder.advance(&mut state, &failure), climb(rung));
    }
    assert_eq!(
        ladder.advance(&mut state, &failure),
        Next::Stop {
            reason: StopReason::Exhausted,
            skipped: vec![]
        }
    );
    assert_eq!(state.climbed(), [0, 1, 2, 3]);
}

#[test]
fn the_ladder_stops_at_the_first_success() {
    let ladder = seeds_ladder();
    let mut state = LadderState::new();
    let failure = Conditions::new(ErrorClass::InvalidOutput);
    assert_eq!(ladder.advance(&mut state, &failure), climb(0));
    assert_eq!(ladder.advance(&mut state, &failure), climb(1));
    state.succeed();
    assert!(matches!(
        ladder.advance(&mut state, &failure),
        Next::Stop {
            reason: StopReason::Succeeded,
            ..
        }
    ));
    assert_eq!(state.climbed(), [0, 1], "nothing climbed after the success");
}

#[test]
fn a_permanent_failure_skips_the_same_agent_but_climbs_to_the_others() {
    let ladder = seeds_ladder();
    let mut state = LadderState::new();
    let next = ladder.advance(&mut state, &Conditions::new(ErrorClass::Permanent));
    assert_eq!(
        next,
        Next::Climb {
            rung: 1,
            skipped: vec![Skip {
                rung: 0,
                reason: SkipReason::ClassNotAccepted(ErrorClass::Permanent)
            }]
        }
    );
}

#[test]
fn rungs_behind_an_open_breaker_are_skipped_and_the_skip_is_recorded() {
    let ladder = seeds_ladder();
    let mut state = LadderState::new();
    assert_eq!(
        ladder.advance(&mut state, &Conditions::new(ErrorClass::Transient)),
        climb(0)
    );
    let next = ladder.advance(
        &mut state,
        &Conditions::new(ErrorClass::Transient)
            .breaker_open(1)
            .breaker_open(2),
    );
    let expected_skips = vec![
        Skip {
            rung: 1,
            reason: SkipReason::BreakerOpen,
        },
        Skip {
            rung: 2,
            reason: SkipReason::BreakerOpen,
        },
    ];
    assert_eq!(
        next,
        Next::Climb {
            rung: 3,
            skipped: expected_skips.clone()
        }
    );
    assert_eq!(state.skipped(), expected_skips.as_slice());
}

#[test]
fn the_other_agent_rung_takes_only_the_classes_the_user_names() {
    let ladder = Ladder::new(vec![Rung::other_agent(
        "fallback",
        "backup",
        ClassSet::TRANSIENT | ClassSet::RATE_LIMITED,
    )]);
    let state = LadderState::new();
    let limited = ErrorClass::RateLimited {
        retry_after: Some(Duration::from_secs(1)),
    };
    assert_eq!(ladder.next(&state, &Conditions::new(limited)), climb(0));
    assert!(matches!(
        ladder.next(&state, &Conditions::new(ErrorClass::InvalidOutput)),
        Next::Stop {
            reason: StopReason::Exhausted,
            ..
        }
    ));
    assert_eq!(
        ladder.rung(0).unwrap().kind(),
        &RungKind::OtherAgent {
            target: "backup".into()
        }
    );
}

#[test]
fn the_kill_switch_and_unescalatable_failures_stop_at_once() {
    let ladder = seeds_ladder();
    let state = LadderState::new();
    assert!(matches!(
        ladder.next(
            &state,
            &Conditions::new(ErrorClass::Transient).kill_switch(true)
        ),
        Next::Stop {
            reason: StopReason::KillSwitch,
            ..
        }
    ));
    for class in [
        ErrorClass::ReplayUnsafe,
        ErrorClass::Cancelled,
        ErrorClass::BudgetExhausted,
    ] {
        assert_eq!(
            ladder.next(&state, &Conditions::new(class)),
            Next::Stop {
                reason: StopReason::Unescalatable(class),
                skipped: vec![]
            }
        );
    }
}

#[test]
fn next_is_pure_and_a_journaled_state_resumes_where_it_was() {
    let ladder = seeds_ladder().rungs().to_vec();
    let ladder = Ladder::new(
        ladder
            .into_iter()
            .map(|r| r.with_policy(RetryPolicy::never()))
            .collect(),
    );
    let mut state = LadderState::new();
    let failure = Conditions::new(ErrorClass::Transient);
    ladder.advance(&mut state, &failure);
    ladder.advance(&mut state, &failure);
    // Asking twice without recording gives the same answer.
    assert_eq!(ladder.next(&state, &failure), ladder.next(&state, &failure));
    let journaled = serde_json::to_string(&state).unwrap();
    let restored: LadderState = serde_json::from_str(&journaled).unwrap();
    assert_eq!(restored, state);
    assert_eq!(ladder.next(&restored, &failure), climb(2));
    assert_eq!(
        ladder.rung(2).unwrap().policy(),
        Some(&RetryPolicy::never())
    );
    // The ladder itself is configuration and round-trips too.
    let text = serde_json::to_string(&ladder).unwrap();
    assert_eq!(serde_json::from_str::<Ladder>(&text).unwrap(), ladder);
}

#[test]
fn an_empty_ladder_stops_exhausted() {
    let next = Ladder::default().next(&LadderState::new(), &Conditions::new(ErrorClass::Transient));
    assert!(matches!(
        next,
        Next::Stop {
            reason: StopReason::Exhausted,
            ..
        }
    ));
}
