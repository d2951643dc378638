//! The pure state machine, driven by a paused tokio clock and lists of outcomes.

use std::time::Duration;

use overseer_breaker::{
    Backoff, BreakerConfig, BreakerConfigError, BreakerKey, CircuitBreaker, Outcome, Rejected,
    State, Transition, Trigger,
};
use tokio::time::{advance, Instant};

const LATENCY: Duration = Duration::from_secs(2);

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn key() -> BreakerKey {
    BreakerKey::new("researcher", "summarize")
}

/// Defaults without jitter, so durations are exact.
fn exact() -> BreakerConfig {
    BreakerConfig::default()
        .open_duration(Backoff::exponential(secs(30), 2.0, secs(300)))
        .seed(Some(42))
}

fn breaker(config: BreakerConfig) -> CircuitBreaker {
    CircuitBreaker::new(key(), config).expect("valid config")
}

/// One admitted call with `outcome`; panics if the breaker rejects it.
fn call(b: &mut CircuitBreaker, outcome: Outcome) -> Option<Transition> {
    let ticket = b.try_acquire().expect("call should be admitted");
    b.record(ticket, outcome, LATENCY)
}

fn calls(b: &mut CircuitBreaker, outcomes: &[Outcome]) -> Vec<Option<Transition>> {
    outcomes.iter().map(|o| call(b, *o)).collect()
}

use Outcome::{Failure as F, Ignored as I, Success as S};

/// What a rejection says: the state that rejected the call and when to retry.
fn rejection(rejected: Rejected) -> (State, Option<Duration>) {
    (rejected.state, rejected.retry_after)
}

/// Opens the breaker with consecutive failures (default rule: 3).
fn trip(b: &mut CircuitBreaker) -> Transition {
    let mut last = None;
    while b.state() == State::Closed {
        last = call(b, F);
    }
    last.expect("the failure that opened it")
}

// ---- closed → open ----

#[tokio::test(start_paused = true)]
async fn opens_when_failure_rate_reaches_threshold_after_minimum_calls() {
    let mut b = breaker(
        exact()
            .window_size(10)
            .minimum_calls(5)
            .consecutive_failures(None),
    );
    // 4 calls at 50 %: below the minimum, stays closed.
    assert!(calls(&mut b, &[S, F, S, F]).iter().all(Option::is_none));
    // 5 calls at 40 %: below the threshold.
    assert!(call(&mut b, S).is_none());
    // 6 calls at 50 %: opens.
    let t = call(&mut b, F).expect("opened");
    assert_eq!(
        (t.from, t.to, t.trigger),
        (State::Closed, State::Open, Trigger::FailureRate)
    );
    assert_eq!(t.failure_rate, 0.5);
    assert_eq!(t.calls_in_window, 6);
    assert_eq!(t.consecutive_failures, 1);
    assert_eq!(t.key, key());
    assert_eq!(t.at, Instant::now());
    assert_eq!(b.state(), State::Open);
}

#[tokio::test(start_paused = true)]
async fn does_not_open_below_minimum_calls_even_when_every_call_failed() {
    let mut b = breaker(exact().minimum_calls(5).consecutive_failures(None));
    assert!(calls(&mut b, &[F, F, F, F]).iter().all(Option::is_none));
    assert_eq!(b.state(), State::Closed);
    let t = call(&mut b, F).expect("the fifth failure reaches the minimum");
    assert_eq!(t.trigger, Trigger::FailureRate);
    assert_eq!(t.failure_rate, 1.0);
}

#[tokio::test(start_paused = true)]
async fn opens_after_consecutive_failures_below_minimum_calls() {
    let mut b = breaker(
        exact()
            .window_size(20)
            .minimum_calls(10)
            .consecutive_failures(Some(3)),
    );
    assert!(calls(&mut b, &[F, F]).iter().all(Option::is_none));
    let t = call(&mut b, F).expect("third failure in a row");
    assert_eq!(t.trigger, Trigger::ConsecutiveFailures);
    assert_eq!(t.consecutive_failures, 3);
    assert_eq!(t.calls_in_window, 3);
}

#[tokio::test(start_paused = true)]
async fn a_success_resets_the_consecutive_failure_count() {
    let mut b = breaker(
        exact()
            .window_size(20)
            .minimum_calls(20)
            .consecutive_failures(Some(3)),
    );
    assert!(calls(&mut b, &[F, F, S, F, F]).iter().all(Option::is_none));
    assert_eq!(b.snapshot().consecutive_failures, 2);
    assert!(call(&mut b, F).is_some());
}

#[tokio::test(start_paused = true)]
async fn consecutive_failure_rule_can_be_switched_off() {
    let mut b = breaker(
        exact()
            .window_size(20)
            .minimum_calls(20)
            .consecutive_failures(None),
    );
    assert!(calls(&mut b, &[F; 19]).iter().all(Option::is_none));
    assert_eq!(b.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn slow_successes_count_as_failures_when_a_slow_call_threshold_is_set() {
    let mut b = breaker(
        exact()
            .consecutive_failures(Some(3))
            .slow_call_threshold(Some(secs(60))),
    );
    let record = |b: &mut CircuitBreaker, latency| {
        let ticket = b.try_acquire().unwrap();
        b.record(ticket, S, latency)
    };
    assert!(record(&mut b, secs(59)).is_none());
    assert!(record(&mut b, secs(60)).is_none()); // at the threshold: slow
    assert!(record(&mut b, secs(61)).is_none());
    let snap = b.snapshot();
    assert_eq!(
        (
            snap.calls_in_window,
            snap.failures_in_window,
            snap.slow_calls_in_window
        ),
        (3, 2, 2)
    );
    let t = record(&mut b, secs(120)).expect("third slow call in a row");
    assert_eq!(t.trigger, Trigger::ConsecutiveFailures);
}

#[tokio::test(start_paused = true)]
async fn slow_calls_are_not_failures_without_a_threshold() {
    let mut b = breaker(exact());
    for _ in 0..10 {
        let ticket = b.try_acquire().unwrap();
        assert!(b.record(ticket, S, secs(3600)).is_none());
    }
    let snap = b.snapshot();
    assert_eq!((snap.failures_in_window, snap.slow_calls_in_window), (0, 0));
}

#[tokio::test(start_paused = true)]
async fn ignored_outcomes_are_not_counted_at_all() {
    let mut b = breaker(exact());
    assert!(calls(&mut b, &[F, F, I, I, I]).iter().all(Option::is_none));
    let snap = b.snapshot();
    assert_eq!((snap.calls_in_window, snap.consecutive_failures), (2, 2));
    let ticket = b.try_acquire().unwrap();
    b.cancel(ticket);
    assert_eq!(b.snapshot().calls_in_window, 2);
}

// ---- the window ----

#[tokio::test(start_paused = true)]
async fn window_holds_exactly_window_size_outcomes() {
    let mut b = breaker(
        exact()
            .window_size(4)
            .minimum_calls(4)
            .consecutive_failures(None),
    );
    calls(&mut b, &[S, S, S, S]);
    assert_eq!(b.snapshot().calls_in_window, 4);
    calls(&mut b, &[S, S, S]);
    assert_eq!(b.snapshot().calls_in_window, 4);
}

#[tokio::test(start_paused = true)]
async fn the_oldest_outcome_falls_out_of_the_window_first() {
    let mut b = breaker(
        exact()
            .window_size(4)
            .minimum_calls(4)
            .consecutive_failures(None),
    );
    calls(&mut b, &[F, S, S, S]); // [F S S S] 25 %
    assert_eq!(b.snapshot().failure_rate, 0.25);
    assert!(call(&mut b, F).is_none()); // [S S S F]: the first F fell out, still 25 %
    assert_eq!(b.snapshot().failures_in_window, 1);
    let t = call(&mut b, F).expect("[S S F F] is 50 %");
    assert_eq!((t.failure_rate, t.calls_in_window), (0.5, 4));
}

#[tokio::test(start_paused = true)]
async fn old_failures_age_out_so_a_recovered_agent_stays_closed() {
    let mut b = breaker(
        exact()
            .window_size(5)
            .minimum_calls(5)
            .consecutive_failures(None),
    );
    calls(&mut b, &[F, F, S, S, S]); // 40 %
    calls(&mut b, &[S, S]); // both failures evicted
    assert_eq!(b.snapshot().failure_rate, 0.0);
    assert!(calls(&mut b, &[F, F]).iter().all(Option::is_none)); // 40 % again
    assert_eq!(b.state(), State::Closed);
}

// ---- open ----

#[tokio::test(start_paused = true)]
async fn open_breaker_rejects_and_says_when_the_first_probe_is_allowed() {
    let mut b = breaker(exact());
    let t = trip(&mut b);
    assert_eq!(t.open_for, Some(secs(30)));
    advance(secs(10)).await;
    assert_eq!(
        rejection(b.try_acquire().unwrap_err()),
        (State::Open, Some(secs(20)))
    );
    let snap = b.snapshot();
    assert_eq!(snap.open_until, Some(t.at + secs(30)));
    assert_eq!(snap.retry_after, Some(secs(20)));
    advance(Duration::from_millis(19_999)).await;
    assert_eq!(
        b.try_acquire().unwrap_err().retry_after,
        Some(Duration::from_millis(1))
    );
}

#[tokio::test(start_paused = true)]
async fn time_alone_does_not_change_the_state() {
    let mut b = breaker(exact());
    trip(&mut b);
    advance(secs(3600)).await;
    assert_eq!(b.state(), State::Open);
    assert_eq!(b.snapshot().retry_after, Some(Duration::ZERO));
}

#[tokio::test(start_paused = true)]
async fn open_becomes_half_open_when_a_call_arrives_after_the_open_duration() {
    let mut b = breaker(exact());
    trip(&mut b);
    advance(secs(30)).await;
    let mut probe = b.try_acquire().expect("first probe");
    assert!(probe.is_probe());
    let t = probe.take_transition().expect("open → half-open");
    assert_eq!(
        (t.from, t.to, t.trigger),
        (State::Open, State::HalfOpen, Trigger::OpenElapsed)
    );
    assert_eq!(b.state(), State::HalfOpen);
    // Meanwhile everything else is rejected with a hint.
    let rejected = b.try_acquire().unwrap_err();
    assert_eq!(rejected.state, State::HalfOpen);
    assert_eq!(
        rejected.retry_after,
        Some(secs(30)),
        "capped at the base open duration"
    );
    b.cancel(probe);
}

// ---- half-open ----

#[tokio::test(start_paused = true)]
async fn half_open_closes_when_every_probe_succeeded() {
    let mut b = breaker(exact().half_open_probes(3));
    trip(&mut b);
    advance(secs(30)).await;
    let probes: Vec<_> = (0..3).map(|_| b.try_acquire().expect("probe")).collect();
    assert!(b.try_acquire().is_err(), "a fourth call is not a probe");
    let mut results = Vec::new();
    for p in probes {
        results.push(b.record(p, S, LATENCY));
    }
    assert!(results[0].is_none() && results[1].is_none());
    let t = results[2].clone().expect("third success closes");
    assert_eq!(
        (t.from, t.to, t.trigger),
        (State::HalfOpen, State::Closed, Trigger::ProbesSucceeded)
    );
    assert_eq!(t.failure_rate, 0.0);
    let snap = b.snapshot();
    assert_eq!(
        (
            snap.state,
            snap.calls_in_window,
            snap.consecutive_failures,
            snap.consecutive_opens
        ),
        (State::Closed, 0, 0, 0)
    );
}

#[tokio::test(start_paused = true)]
async fn half_open_reopens_with_a_longer_duration_when_a_probe_fails() {
    let mut b = breaker(exact().half_open_probes(2));
    trip(&mut b);
    advance(secs(30)).await;
    let first = b.try_acquire().unwrap();
    let second = b.try_acquire().unwrap();
    assert!(b.record(first, S, LATENCY).is_none());
    let t = b
        .record(second, F, LATENCY)
        .expect("a failed probe re-opens");
    assert_eq!(
        (t.from, t.to, t.trigger),
        (State::HalfOpen, State::Open, Trigger::ProbeFailed)
    );
    assert_eq!(t.open_for, Some(secs(60)));
    assert_eq!(t.failure_rate, 0.5, "one of the two decided probes failed");
    assert_eq!(b.snapshot().consecutive_opens, 2);
}

#[tokio::test(start_paused = true)]
async fn a_slow_probe_counts_as_a_failed_probe() {
    let mut b = breaker(exact().slow_call_threshold(Some(secs(60))));
    trip(&mut b);
    advance(secs(30)).await;
    let probe = b.try_acquire().unwrap();
    let t = b.record(probe, S, secs(90)).expect("re-opened");
    assert_eq!(t.to, State::Open);
}

#[tokio::test(start_paused = true)]
async fn never_admits_more_probes_than_configured() {
    let mut b = breaker(exact().half_open_probes(2));
    trip(&mut b);
    advance(secs(30)).await;
    let p1 = b.try_acquire().unwrap();
    let p2 = b.try_acquire().unwrap();
    for _ in 0..10 {
        assert_eq!(b.try_acquire().unwrap_err().state, State::HalfOpen);
    }
    assert_eq!(b.snapshot().probes_in_flight, 2);
    // A cancelled probe frees its slot, and so does an ignored one.
    b.cancel(p1);
    let p3 = b.try_acquire().expect("slot freed by cancel");
    assert!(b.try_acquire().is_err());
    assert!(b.record(p2, I, LATENCY).is_none());
    let p4 = b.try_acquire().expect("slot freed by an ignored outcome");
    assert!(b.try_acquire().is_err());
    // A success keeps its slot: the trial needs 2 successes in total.
    assert!(b.record(p3, S, LATENCY).is_none());
    assert!(b.try_acquire().is_err());
    assert_eq!(b.record(p4, S, LATENCY).map(|t| t.to), Some(State::Closed));
}

#[tokio::test(start_paused = true)]
async fn a_probe_that_never_reports_is_reclaimed_after_the_probe_timeout() {
    let mut b = breaker(exact().probe_timeout(secs(120)));
    trip(&mut b);
    advance(secs(30)).await;
    let lost = b.try_acquire().unwrap();
    advance(secs(119)).await;
    assert_eq!(
        rejection(b.try_acquire().unwrap_err()),
        (State::HalfOpen, Some(secs(1)))
    );
    advance(secs(1)).await;
    let fresh = b.try_acquire().expect("lost probe's slot reclaimed");
    assert!(fresh.is_probe());
    assert_ne!(fresh.generation(), lost.generation());
    assert_eq!(
        b.state(),
        State::HalfOpen,
        "reclaiming is not a state change"
    );
    // The lost probe reports at last: too late, ignored.
    assert!(b.record(lost, S, secs(150)).is_none());
    assert_eq!(b.state(), State::HalfOpen);
    assert_eq!(
        b.record(fresh, S, LATENCY).map(|t| t.to),
        Some(State::Closed)
    );
}

#[tokio::test(start_paused = true)]
async fn outcomes_of_calls_admitted_before_a_state_change_are_ignored() {
    let mut b = breaker(exact());
    let early = b.try_acquire().unwrap();
    let late_success = b.try_acquire().unwrap();
    trip(&mut b);
    assert!(b.record(early, F, LATENCY).is_none(), "already open");
    advance(secs(30)).await;
    let probe = b.try_acquire().unwrap();
    // A call admitted while closed cannot close the breaker from half-open.
    assert!(b.record(late_success, S, LATENCY).is_none());
    assert_eq!(b.state(), State::HalfOpen);
    assert_eq!(
        b.record(probe, S, LATENCY).map(|t| t.to),
        Some(State::Closed)
    );
}

// ---- backoff ----

#[tokio::test(start_paused = true)]
async fn open_duration_doubles_on_each_reopen_up_to_the_cap_and_resets_on_close() {
    let mut b = breaker(exact());
    let mut durations = vec![trip(&mut b).open_for.unwrap()];
    for _ in 0..6 {
        advance(*durations.last().unwrap()).await;
        let probe = b.try_acquire().expect("probe after the open duration");
        durations.push(b.record(probe, F, LATENCY).unwrap().open_for.unwrap());
    }
    assert_eq!(
        durations,
        [
            secs(30),
            secs(60),
            secs(120),
            secs(240),
            secs(300),
            secs(300),
            secs(300)
        ]
    );
    advance(secs(300)).await;
    let probe = b.try_acquire().unwrap();
    assert_eq!(
        b.record(probe, S, LATENCY).map(|t| t.to),
        Some(State::Closed)
    );
    assert_eq!(
        trip(&mut b).open_for,
        Some(secs(30)),
        "closing resets the backoff"
    );
}

#[tokio::test(start_paused = true)]
async fn jittered_open_durations_stay_within_bounds_and_are_reproducible_from_the_seed() {
    let backoff = Backoff::exponential(secs(30), 2.0, secs(300)).jitter(0.2);
    let run = |key: BreakerKey| {
        let mut b = CircuitBreaker::new(key, exact().open_duration(backoff).seed(Some(9))).unwrap();
        let t0 = Instant::now();
        let mut now = t0;
        let mut out = Vec::new();
        // Trip by consecutive failures at `now`.
        for _ in 0..3 {
            let t = b.try_acquire_at(now).unwrap();
            if let Some(tr) = b.record_at(t, F, LATENCY, now) {
                out.push(tr.open_for.unwrap());
            }
        }
        for _ in 0..7 {
            now += *out.last().unwrap();
            let probe = b.try_acquire_at(now).unwrap();
            out.push(
                b.record_at(probe, F, LATENCY, now)
                    .unwrap()
                    .open_for
                    .unwrap(),
            );
        }
        out
    };
    let a = run(key());
    for (n, d) in a.iter().enumerate() {
        let (lo, hi) = backoff.bounds(n as u32);
        assert!(
            *d >= lo && *d <= hi,
            "opening {n}: {d:?} not in [{lo:?}, {hi:?}]"
        );
    }
    assert_eq!(a, run(key()), "same key and seed, same durations");
    assert_ne!(
        a,
        run(BreakerKey::new("researcher", "plan")),
        "another key draws its own jitter"
    );
}

// ---- operator controls ----

#[tokio::test(start_paused = true)]
async fn forced_open_rejects_everything_until_reset() {
    let mut b = breaker(exact());
    let t = b.force_open().expect("closed → forced open");
    assert_eq!(
        (t.from, t.to, t.trigger),
        (State::Closed, State::ForcedOpen, Trigger::ForcedOpen)
    );
    assert!(b.force_open().is_none(), "already forced open");
    advance(secs(24 * 3600)).await;
    assert_eq!(
        rejection(b.try_acquire().unwrap_err()),
        (State::ForcedOpen, None)
    );
    assert_eq!(b.snapshot().retry_after, None);
    let t = b.reset().expect("forced open → closed");
    assert_eq!(
        (t.from, t.to, t.trigger),
        (State::ForcedOpen, State::Closed, Trigger::Reset)
    );
    assert!(call(&mut b, S).is_none());
}

#[tokio::test(start_paused = true)]
async fn forcing_open_an_open_breaker_holds_it_past_its_open_duration() {
    let mut b = breaker(exact());
    trip(&mut b);
    assert_eq!(b.force_open().map(|t| t.from), Some(State::Open));
    advance(secs(31)).await;
    assert_eq!(b.try_acquire().unwrap_err().state, State::ForcedOpen);
}

#[tokio::test(start_paused = true)]
async fn disabled_admits_everything_and_never_opens() {
    let mut b = breaker(exact());
    calls(&mut b, &[F, F]);
    let t = b.disable().expect("closed → disabled");
    assert_eq!(
        (t.to, t.trigger, t.consecutive_failures),
        (State::Disabled, Trigger::Disabled, 2)
    );
    assert!(calls(&mut b, &[F; 100]).iter().all(Option::is_none));
    let snap = b.snapshot();
    assert_eq!(
        (snap.state, snap.calls_in_window, snap.consecutive_failures),
        (State::Disabled, 0, 0)
    );
    assert_eq!(b.reset().map(|t| t.to), Some(State::Closed));
    assert_eq!(trip(&mut b).trigger, Trigger::ConsecutiveFailures);
}

#[tokio::test(start_paused = true)]
async fn disabling_an_open_breaker_lets_calls_through_at_once() {
    let mut b = breaker(exact());
    trip(&mut b);
    assert_eq!(b.disable().map(|t| t.from), Some(State::Open));
    assert!(b.try_acquire().is_ok());
}

#[tokio::test(start_paused = true)]
async fn reset_clears_the_window_the_consecutive_failures_and_the_backoff() {
    let mut b = breaker(exact());
    trip(&mut b);
    advance(secs(30)).await;
    let probe = b.try_acquire().unwrap();
    assert_eq!(
        b.record(probe, F, LATENCY).unwrap().open_for,
        Some(secs(60))
    );
    let t = b.reset().expect("open → closed");
    assert_eq!((t.from, t.to), (State::Open, State::Closed));
    let snap = b.snapshot();
    assert_eq!(
        (
            snap.calls_in_window,
            snap.consecutive_failures,
            snap.consecutive_opens
        ),
        (0, 0, 0)
    );
    assert_eq!(trip(&mut b).open_for, Some(secs(30)));
}

#[tokio::test(start_paused = true)]
async fn reset_of_a_closed_breaker_is_no_transition_but_still_clears_the_window() {
    let mut b = breaker(exact());
    let before = b.try_acquire().unwrap();
    calls(&mut b, &[F, F]);
    assert!(b.reset().is_none());
    assert_eq!(b.snapshot().calls_in_window, 0);
    assert!(b.record(before, F, LATENCY).is_none());
    assert_eq!(
        b.snapshot().calls_in_window,
        0,
        "tickets from before the reset are stale"
    );
}

// ---- construction and serialization ----

#[test]
fn invalid_configs_are_refused_with_typed_errors() {
    let err = CircuitBreaker::new(key(), BreakerConfig::default().half_open_probes(0)).unwrap_err();
    assert_eq!(err, BreakerConfigError::ZeroHalfOpenProbes);
    let err = CircuitBreaker::new(key(), BreakerConfig::default().failure_rate_threshold(0.0))
        .unwrap_err();
    assert_eq!(err, BreakerConfigError::FailureRateThreshold(0.0));
    let err = CircuitBreaker::new(
        key(),
        BreakerConfig::default().open_duration(Backoff::exponential(secs(60), 2.0, secs(30))),
    )
    .unwrap_err();
    assert_eq!(
        err,
        BreakerConfigError::MaxBelowBase {
            base: secs(60),
            max: secs(30)
        }
    );
    assert_eq!(
        err.to_string(),
        "the maximum open duration (30s) is below the base open duration (60s)"
    );
}

#[test]
fn transitions_rejections_and_snapshots_serialize_for_an_event_stream() {
    let mut b = breaker(exact());
    let now = Instant::now();
    for _ in 0..3 {
        let t = b.try_acquire_at(now).unwrap();
        b.record_at(t, F, LATENCY, now);
    }
    let snap = serde_json::to_value(b.snapshot_at(now + secs(5))).unwrap();
    assert_eq!(snap["state"], "open");
    assert_eq!(snap["retry_after_ms"], 25_000);
    assert_eq!(snap["key"]["agent"], "researcher");
    assert!(snap.get("open_until").is_none());

    b.reset_at(now);
    let t = b.force_open_at(now).unwrap();
    let json = serde_json::to_value(&t).unwrap();
    assert_eq!(json["from"], "closed");
    assert_eq!(json["to"], "forced_open");
    assert_eq!(json["trigger"], "forced_open");
    assert!(json.get("at").is_none());

    let rejected = b.try_acquire_at(now).unwrap_err();
    let back: Rejected = serde_json::from_str(&serde_json::to_string(&rejected).unwrap()).unwrap();
    assert_eq!(back, rejected);
}
