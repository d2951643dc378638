//! Properties that hold whatever the sequence of calls, outcomes, clock steps and operator
//! actions.

use std::time::Duration;

use overseer_breaker::{
    Backoff, BreakerConfig, BreakerKey, CircuitBreaker, Outcome, State, Ticket,
};
use proptest::prelude::*;
use tokio::time::Instant;

#[derive(Debug, Clone)]
enum Op {
    Acquire,
    /// Record the `n`-th outstanding ticket (modulo their number).
    Record(usize, Outcome, u64),
    Cancel(usize),
    Advance(u64),
    ForceOpen,
    Disable,
    Reset,
}

fn op() -> impl Strategy<Value = Op> {
    let outcome = prop_oneof![
        Just(Outcome::Success),
        Just(Outcome::Failure),
        Just(Outcome::Ignored)
    ];
    prop_oneof![
        6 => Just(Op::Acquire),
        6 => (any::<usize>(), outcome, 0u64..120).prop_map(|(i, o, l)| Op::Record(i, o, l)),
        1 => any::<usize>().prop_map(Op::Cancel),
        3 => (0u64..400).prop_map(Op::Advance),
        1 => Just(Op::ForceOpen),
        1 => Just(Op::Disable),
        1 => Just(Op::Reset),
    ]
}

fn config() -> impl Strategy<Value = BreakerConfig> {
    (
        1u32..12,
        1u32..12,
        1u32..=10,
        prop::option::of(1u32..5),
        1u32..4,
        0.0f64..0.9,
        any::<u64>(),
    )
        .prop_map(
            |(window, min, rate_tenths, consecutive, probes, jitter, seed)| {
                BreakerConfig::default()
                    .window_size(window)
                    .minimum_calls(min.min(window))
                    .failure_rate_threshold(f64::from(rate_tenths) / 10.0)
                    .consecutive_failures(consecutive)
                    .slow_call_threshold(Some(Duration::from_secs(60)))
                    .half_open_probes(probes)
                    .probe_timeout(Duration::from_secs(200))
                    .open_duration(
                        Backoff::exponential(
                            Duration::from_secs(10),
                            2.0,
                            Duration::from_secs(100),
                        )
                        .jitter(jitter),
                    )
                    .seed(Some(seed))
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn breaker_invariants_hold_for_any_sequence(config in config(), ops in prop::collection::vec(op(), 1..200)) {
        let mut b = CircuitBreaker::new(BreakerKey::new("a", "t"), config.clone()).unwrap();
        let mut now = Instant::now();
        let mut outstanding: Vec<Ticket> = Vec::new();
        for op in ops {
            match op {
                Op::Acquire => match b.try_acquire_at(now) {
                    Ok(ticket) => {
                        prop_assert!(!matches!(b.state(), State::Open | State::ForcedOpen));
                        outstanding.push(ticket);
                    }
                    Err(rejected) => {
                        prop_assert_eq!(rejected.state, b.state());
                        prop_assert!(matches!(rejected.state, State::Open | State::HalfOpen | State::ForcedOpen));
                        prop_assert_eq!(rejected.retry_after.is_none(), rejected.state == State::ForcedOpen);
                        if let Some(after) = rejected.retry_after {
                            prop_assert!(after <= config.open_duration.max);
                            prop_assert!(!after.is_zero());
                        }
                    }
                },
                Op::Record(i, outcome, latency) if !outstanding.is_empty() => {
                    let ticket = outstanding.swap_remove(i % outstanding.len());
                    let before = b.state();
                    if let Some(t) = b.record_at(ticket, outcome, Duration::from_secs(latency), now) {
                        prop_assert_eq!(t.from, before);
                        prop_assert_eq!(t.to, b.state());
                        prop_assert!((0.0..=1.0).contains(&t.failure_rate));
                        if t.to == State::Open {
                            let d = t.open_for.unwrap();
                            prop_assert!(d <= config.open_duration.max && !d.is_zero());
                        }
                    }
                }
                Op::Cancel(i) if !outstanding.is_empty() => {
                    let ticket = outstanding.swap_remove(i % outstanding.len());
                    b.cancel(ticket);
                }
                Op::Record(..) | Op::Cancel(_) => {}
                Op::Advance(s) => now += Duration::from_secs(s),
                Op::ForceOpen => { b.force_open_at(now); }
                Op::Disable => { b.disable_at(now); }
                Op::Reset => {
                    b.reset_at(now);
                    prop_assert_eq!(b.state(), State::Closed);
                }
            }

            let snap = b.snapshot_at(now);
            prop_assert!(snap.calls_in_window <= config.window_size);
            prop_assert!(snap.failures_in_window <= snap.calls_in_window);
            prop_assert!(snap.slow_calls_in_window <= snap.calls_in_window);
            prop_assert!((0.0..=1.0).contains(&snap.failure_rate));
            prop_assert!(snap.probes_in_flight + snap.probes_succeeded <= config.half_open_probes);
            // Live probe tickets (of the current generation) never exceed the configuration.
            let live_probes = outstanding
                .iter()
                .filter(|t| t.is_probe() && t.generation() == b.generation())
                .count() as u32;
            prop_assert!(live_probes <= config.half_open_probes);
            if snap.state == State::HalfOpen {
                prop_assert_eq!(live_probes, snap.probes_in_flight);
            }
            if snap.state == State::Disabled {
                prop_assert_eq!(snap.calls_in_window, 0);
            }
            prop_assert_eq!(snap.open_until.is_some(), snap.state == State::Open);
        }
    }
}
