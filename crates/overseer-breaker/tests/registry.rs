//! The registry through its public API: creation on first use, overrides, permits, operators.

use std::time::Duration;

use overseer_breaker::{
    Backoff, BreakerConfig, BreakerConfigError, BreakerKey, BreakerRegistry, Outcome, State,
    Trigger,
};
use tokio::time::{advance, Instant};

const LATENCY: Duration = Duration::from_secs(2);

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn exact() -> BreakerConfig {
    BreakerConfig::default()
        .open_duration(Backoff::exponential(secs(30), 2.0, secs(300)))
        .seed(Some(1))
}

fn fail(registry: &BreakerRegistry, key: &BreakerKey, times: usize) {
    for _ in 0..times {
        let permit = registry.try_acquire(key).expect("admitted");
        registry.record(permit, Outcome::Failure, LATENCY);
    }
}

#[test]
fn breakers_are_created_closed_on_first_use_from_the_default_config() {
    let registry = BreakerRegistry::new(exact().window_size(7)).unwrap();
    assert!(registry.is_empty());
    let key = BreakerKey::new("researcher", "summarize");
    assert!(registry.get(&key).is_none());
    let permit = registry.try_acquire(&key).expect("a new breaker is closed");
    assert_eq!(registry.len(), 1);
    let handle = registry.get(&key).expect("created");
    assert!(handle.same_breaker(permit.handle()));
    assert_eq!(handle.state(), State::Closed);
    assert_eq!(registry.config_for("researcher").window_size, 7);
    permit.cancel();
    // Operator actions create breakers too, so an agent can be held open before its first call.
    registry.force_open(&BreakerKey::new("coder", "patch"));
    assert_eq!(registry.len(), 2);
}

#[test]
fn each_task_type_of_an_agent_has_its_own_breaker() {
    let registry = BreakerRegistry::new(exact()).unwrap();
    let search = BreakerKey::new("researcher", "search");
    let summarize = BreakerKey::new("researcher", "summarize");
    fail(&registry, &search, 3);
    assert_eq!(
        registry.try_acquire(&search).unwrap_err().state,
        State::Open
    );
    assert!(registry.try_acquire(&summarize).is_ok());
}

#[test]
fn agent_overrides_apply_to_every_task_type_of_that_agent_only() {
    let registry = BreakerRegistry::builder()
        .default_config(exact().consecutive_failures(Some(5)))
        .agent_config("flaky", exact().consecutive_failures(Some(1)))
        .build()
        .unwrap();
    for task in ["a", "b"] {
        let key = BreakerKey::new("flaky", task);
        fail(&registry, &key, 1);
        assert_eq!(registry.try_acquire(&key).unwrap_err().state, State::Open);
    }
    let steady = BreakerKey::new("steady", "a");
    fail(&registry, &steady, 4);
    assert!(registry.try_acquire(&steady).is_ok());
}

#[test]
fn an_invalid_override_is_refused_and_names_its_agent() {
    let err = BreakerRegistry::builder()
        .agent_config(
            "coder",
            BreakerConfig::default().window_size(0).minimum_calls(0),
        )
        .build()
        .unwrap_err();
    assert_eq!(
        err,
        BreakerConfigError::ForAgent {
            agent: "coder".into(),
            source: Box::new(BreakerConfigError::ZeroWindow)
        }
    );
    assert_eq!(
        err.to_string(),
        "breaker config for agent `coder`: window_size must be at least 1"
    );
    assert_eq!(
        BreakerRegistry::new(BreakerConfig::default().minimum_calls(0)).unwrap_err(),
        BreakerConfigError::ZeroMinimumCalls
    );
}

#[tokio::test(start_paused = true)]
async fn a_full_cycle_runs_on_the_paused_clock_through_the_registry() {
    let registry = BreakerRegistry::new(exact()).unwrap();
    let key = BreakerKey::new("researcher", "summarize");
    fail(&registry, &key, 2);
    let permit = registry.try_acquire(&key).unwrap();
    let opened = registry
        .record(permit, Outcome::Failure, LATENCY)
        .expect("opened");
    assert_eq!(opened.to, State::Open);
    assert_eq!(opened.at, Instant::now());

    advance(secs(29)).await;
    assert_eq!(
        registry.try_acquire(&key).unwrap_err().retry_after,
        Some(secs(1))
    );
    advance(secs(1)).await;
    let mut probe = registry.try_acquire(&key).expect("probe");
    assert!(probe.is_probe());
    assert_eq!(
        probe.take_transition().map(|t| t.trigger),
        Some(Trigger::OpenElapsed)
    );
    assert_eq!(
        registry.try_acquire(&key).unwrap_err().state,
        State::HalfOpen
    );

    advance(secs(3)).await;
    let closed = registry
        .record(probe, Outcome::Success, secs(3))
        .expect("closed");
    assert_eq!(closed.to, State::Closed);
    assert_eq!(closed.at, Instant::now());
    assert!(registry.try_acquire(&key).is_ok());
}

#[test]
fn dropping_an_unrecorded_probe_permit_releases_its_slot() {
    let registry = BreakerRegistry::new(exact()).unwrap();
    let key = BreakerKey::new("researcher", "summarize");
    let t0 = Instant::now();
    for _ in 0..3 {
        let p = registry.try_acquire_at(&key, t0).unwrap();
        registry.record_at(p, Outcome::Failure, LATENCY, t0);
    }
    let later = t0 + secs(30);
    {
        let _probe = registry.try_acquire_at(&key, later).expect("probe");
        assert!(registry.try_acquire_at(&key, later).is_err());
        // The call's future is dropped mid-flight: the permit goes with it.
    }
    assert_eq!(
        registry
            .get(&key)
            .unwrap()
            .snapshot_at(later)
            .probes_in_flight,
        0
    );
    let probe = registry
        .try_acquire_at(&key, later)
        .expect("slot released by drop");
    registry.cancel(probe);
    let probe = registry
        .try_acquire_at(&key, later)
        .expect("slot released by cancel");
    assert_eq!(
        registry
            .record_at(probe, Outcome::Success, LATENCY, later)
            .map(|t| t.to),
        Some(State::Closed)
    );
}

#[test]
fn an_ignored_outcome_counts_nothing() {
    let registry = BreakerRegistry::new(exact()).unwrap();
    let key = BreakerKey::new("a", "t");
    let permit = registry.try_acquire(&key).unwrap();
    assert!(registry.record(permit, Outcome::Ignored, LATENCY).is_none());
    let permit = registry.try_acquire(&key).unwrap();
    drop(permit);
    assert_eq!(registry.get(&key).unwrap().snapshot().calls_in_window, 0);
}

#[test]
fn a_permit_issued_before_a_reset_records_nothing() {
    let registry = BreakerRegistry::new(exact()).unwrap();
    let key = BreakerKey::new("a", "t");
    let before = registry.try_acquire(&key).unwrap();
    fail(&registry, &key, 1);
    registry.reset(&key);
    assert!(registry.record(before, Outcome::Failure, LATENCY).is_none());
    assert_eq!(registry.get(&key).unwrap().snapshot().calls_in_window, 0);
}

#[test]
fn operator_controls_steer_the_breaker_that_calls_use() {
    let registry = BreakerRegistry::new(exact()).unwrap();
    let key = BreakerKey::new("coder", "patch");
    let handle = registry.handle(&key);

    let t = registry.force_open(&key).expect("forced open");
    assert_eq!((t.from, t.to), (State::Closed, State::ForcedOpen));
    let rejected = handle.try_acquire().unwrap_err();
    assert_eq!(
        (rejected.state, rejected.retry_after),
        (State::ForcedOpen, None)
    );

    assert_eq!(registry.disable(&key).map(|t| t.to), Some(State::Disabled));
    fail(&registry, &key, 50);
    assert_eq!(handle.state(), State::Disabled);
    assert_eq!(handle.snapshot().calls_in_window, 0);

    assert_eq!(registry.reset(&key).map(|t| t.to), Some(State::Closed));
    fail(&registry, &key, 3);
    assert_eq!(handle.state(), State::Open);
}

#[test]
fn snapshot_lists_every_breaker_sorted_by_key_with_its_numbers() {
    let registry = BreakerRegistry::new(exact().consecutive_failures(None)).unwrap();
    let now = Instant::now();
    let zeta = BreakerKey::new("zeta", "x");
    let alpha_b = BreakerKey::new("alpha", "b");
    let alpha_a = BreakerKey::new("alpha", "a");
    for (key, outcomes) in [
        (&zeta, vec![Outcome::Success; 3]),
        (&alpha_b, vec![Outcome::Failure, Outcome::Success]),
        (&alpha_a, vec![Outcome::Failure; 5]),
    ] {
        for o in outcomes {
            let p = registry.try_acquire_at(key, now).unwrap();
            registry.record_at(p, o, LATENCY, now);
        }
    }
    let snaps = registry.snapshot_at(now + secs(10));
    let keys: Vec<_> = snaps.iter().map(|s| s.key.to_string()).collect();
    assert_eq!(keys, ["alpha/a", "alpha/b", "zeta/x"]);

    assert_eq!(snaps[0].state, State::Open);
    assert_eq!(snaps[0].failure_rate, 1.0);
    assert_eq!(snaps[0].open_until, Some(now + secs(30)));
    assert_eq!(snaps[0].retry_after, Some(secs(20)));
    assert_eq!(
        (
            snaps[1].state,
            snaps[1].calls_in_window,
            snaps[1].failure_rate
        ),
        (State::Closed, 2, 0.5)
    );
    assert_eq!(
        (snaps[2].calls_in_window, snaps[2].failures_in_window),
        (3, 0)
    );
    assert_eq!(snaps[2].retry_after, None);
}

#[test]
fn a_kept_handle_admits_and_records_without_the_registry() {
    let registry = BreakerRegistry::new(exact()).unwrap();
    let key = BreakerKey::new("a", "t");
    let handle = registry.handle(&key);
    for _ in 0..10 {
        let p = handle.try_acquire().unwrap();
        assert_eq!(p.key(), &key);
        p.record(Outcome::Success, LATENCY);
    }
    assert_eq!(registry.snapshot()[0].calls_in_window, 10);
}

#[test]
fn registry_handles_and_permits_can_cross_threads_and_await_points() {
    fn send_sync<T: Send + Sync + 'static>() {}
    send_sync::<BreakerRegistry>();
    send_sync::<overseer_breaker::BreakerHandle>();
    send_sync::<overseer_breaker::Permit>();
    send_sync::<overseer_breaker::Transition>();
    send_sync::<overseer_breaker::Rejected>();
}
