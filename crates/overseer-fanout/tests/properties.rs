//! Property tests of the barrier over random member outcomes and times: it decides at the
//! moment the goal is reached (or becomes impossible, or the deadline passes) and not before,
//! and it never answers `Continue` at or after its deadline.

use overseer_fanout::{Barrier, BarrierSpec, Decision, Mode, Observed, OnDeadline, Reached};
use proptest::prelude::*;
use tokio::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Pending,
    Answered,
    Failed,
    Replaced,
}

/// The rule restated from the states alone: is the goal reached now, or could it still be
/// reached if every pending member answered?
fn reference(
    mode: Mode,
    states: &[State],
    now: Instant,
    deadline: Instant,
    policy: OnDeadline,
) -> Decision {
    let count = |s: State| states.iter().filter(|x| **x == s).count();
    let best_case = count(State::Answered) + count(State::Pending);
    let (reached, possible, goal) = match mode {
        Mode::All => (
            states
                .iter()
                .all(|s| matches!(s, State::Answered | State::Replaced)),
            count(State::Failed) == 0,
            Reached::Complete,
        ),
        Mode::Any => (count(State::Answered) >= 1, best_case >= 1, Reached::Any),
        Mode::Quorum(n) => (count(State::Answered) >= n, best_case >= n, Reached::Quorum),
    };
    if reached {
        Decision::Decided(goal)
    } else if !possible {
        Decision::Impossible
    } else if now >= deadline {
        Decision::DeadlineReached(policy)
    } else {
        Decision::Continue
    }
}

fn observed() -> impl Strategy<Value = Observed> {
    prop_oneof![
        3 => Just(Observed::Answered),
        1 => Just(Observed::Failed { last: false }),
        2 => Just(Observed::Failed { last: true }),
        1 => Just(Observed::Replaced),
    ]
}

fn case() -> impl Strategy<Value = (Mode, usize, OnDeadline, Vec<(usize, u64, Observed)>)> {
    (1usize..8).prop_flat_map(|members| {
        let mode = prop_oneof![
            Just(Mode::All),
            Just(Mode::Any),
            (1..=members).prop_map(Mode::Quorum),
        ];
        let policy = prop_oneof![Just(OnDeadline::Partial), Just(OnDeadline::Fail)];
        // Each event: a member, a time in ms (the deadline is at 1000), what it did.
        let events = prop::collection::vec((0..members, 0u64..1500, observed()), 0..20);
        (mode, Just(members), policy, events)
    })
}

proptest! {
    #[test]
    fn the_barrier_decides_exactly_when_the_rule_says_and_never_continues_past_its_deadline(
        (mode, members, policy, mut events) in case()
    ) {
        let start = Instant::now();
        let deadline = start + Duration::from_millis(1000);
        let mut barrier = Barrier::new(BarrierSpec::new(mode, members, deadline).on_deadline(policy)).unwrap();
        let mut states = vec![State::Pending; members];
        let mut expected: Option<Decision> = None;
        events.sort_by_key(|(_, at, _)| *at);
        let probe = |barrier: &mut Barrier, states: &[State], expected: &mut Option<Decision>, now: Instant| {
            let want = expected.unwrap_or_else(|| reference(mode, states, now, deadline, policy));
            if want.is_final() && expected.is_none() {
                *expected = Some(want);
            }
            let got = barrier.decide(now);
            prop_assert_eq!(got, want, "at {:?}", now - start);
            if now >= deadline {
                prop_assert_ne!(got, Decision::Continue);
            }
            Ok(())
        };
        for (member, at, what) in events {
            let now = start + Duration::from_millis(at);
            // The driver wakes at this instant before it learns what happened.
            probe(&mut barrier, &states, &mut expected, now)?;
            if states[member] != State::Pending {
                prop_assert!(barrier.observe(member, what).is_err());
                continue;
            }
            barrier.observe(member, what).unwrap();
            states[member] = match what {
                Observed::Answered => State::Answered,
                Observed::Failed { last: true } => State::Failed,
                Observed::Failed { last: false } => State::Pending,
                Observed::Replaced => State::Replaced,
            };
            probe(&mut barrier, &states, &mut expected, now)?;
        }
        // With nothing more to come, the deadline decides whatever is still open.
        probe(&mut barrier, &states, &mut expected, deadline)?;
        prop_assert!(barrier.decide(deadline + Duration::from_secs(1)).is_final());
    }
}
