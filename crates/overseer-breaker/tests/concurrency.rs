//! Many threads on the registry at once: no count is lost, no extra probe is admitted.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::Duration;

use overseer_breaker::{
    Backoff, BreakerConfig, BreakerKey, BreakerRegistry, Outcome, State, MAX_WINDOW_SIZE,
};
use tokio::time::Instant;

const THREADS: usize = 8;

/// A config that never opens, with a window large enough to hold every call of a test.
fn counting_only() -> BreakerConfig {
    BreakerConfig::default()
        .window_size(MAX_WINDOW_SIZE)
        .minimum_calls(MAX_WINDOW_SIZE)
        .failure_rate_threshold(1.0)
        .consecutive_failures(None)
        .slow_call_threshold(Some(Duration::from_secs(10)))
}

#[test]
fn concurrent_records_on_one_key_never_lose_a_count() {
    const CALLS: usize = 5_000;
    let registry = Arc::new(BreakerRegistry::new(counting_only()).unwrap());
    let key = BreakerKey::new("researcher", "summarize");
    let barrier = Arc::new(Barrier::new(THREADS));
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (registry, key, barrier) = (registry.clone(), key.clone(), barrier.clone());
            thread::spawn(move || {
                barrier.wait();
                for i in 0..CALLS {
                    let permit = registry.try_acquire(&key).expect("never opens");
                    let n = t * CALLS + i;
                    let outcome = match n % 10 {
                        0..=2 => Outcome::Failure,
                        3 => Outcome::Ignored,
                        _ => Outcome::Success,
                    };
                    let latency = if n.is_multiple_of(7) {
                        Duration::from_secs(30)
                    } else {
                        Duration::from_secs(1)
                    };
                    assert!(registry.record(permit, outcome, latency).is_none());
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    // Count what the threads sent, the obvious way.
    let (mut calls, mut failures, mut slow) = (0u32, 0u32, 0u32);
    for n in 0..THREADS * CALLS {
        let is_slow = n % 7 == 0;
        match n % 10 {
            3 => continue,
            0..=2 => failures += 1,
            _ if is_slow => failures += 1,
            _ => {}
        }
        calls += 1;
        slow += u32::from(is_slow);
    }
    let snap = &registry.snapshot()[0];
    assert_eq!(snap.calls_in_window, calls);
    assert_eq!(snap.failures_in_window, failures);
    assert_eq!(snap.slow_calls_in_window, slow);
    assert_eq!(snap.state, State::Closed);
}

#[test]
fn concurrent_records_on_distinct_keys_land_on_their_own_breakers() {
    const CALLS: usize = 3_000;
    let registry = Arc::new(BreakerRegistry::new(counting_only()).unwrap());
    let barrier = Arc::new(Barrier::new(THREADS));
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (registry, barrier) = (registry.clone(), barrier.clone());
            thread::spawn(move || {
                // Every thread uses every key, so creation on first use races too.
                let keys: Vec<_> = (0..4)
                    .map(|k| BreakerKey::new(format!("agent-{k}"), "task"))
                    .collect();
                barrier.wait();
                for i in 0..CALLS {
                    let key = &keys[(t + i) % keys.len()];
                    let permit = registry.try_acquire(key).unwrap();
                    let outcome = if i % 2 == 0 {
                        Outcome::Failure
                    } else {
                        Outcome::Success
                    };
                    registry.record(permit, outcome, Duration::from_secs(1));
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let snaps = registry.snapshot();
    assert_eq!(snaps.len(), 4);
    let total: u32 = snaps.iter().map(|s| s.calls_in_window).sum();
    assert_eq!(total as usize, THREADS * CALLS);
    let failures: u32 = snaps.iter().map(|s| s.failures_in_window).sum();
    assert_eq!(failures as usize, THREADS * CALLS / 2);
}

#[test]
fn racing_callers_in_half_open_get_exactly_the_configured_probes() {
    const PROBES: u32 = 3;
    let config = BreakerConfig::default()
        .half_open_probes(PROBES)
        .open_duration(Backoff::fixed(Duration::from_secs(30)));
    let registry = Arc::new(BreakerRegistry::new(config).unwrap());
    let key = BreakerKey::new("researcher", "summarize");
    let t0 = Instant::now();
    for _ in 0..3 {
        let p = registry.try_acquire_at(&key, t0).unwrap();
        registry.record_at(p, Outcome::Failure, Duration::ZERO, t0);
    }
    let mut now = t0;
    for round in 0..20 {
        now += Duration::from_secs(30);
        let barrier = Arc::new(Barrier::new(THREADS));
        let workers: Vec<_> = (0..THREADS)
            .map(|_| {
                let (registry, key, barrier) = (registry.clone(), key.clone(), barrier.clone());
                thread::spawn(move || {
                    barrier.wait();
                    // Each thread asks several times and keeps what it gets.
                    (0..4)
                        .filter_map(|_| registry.try_acquire_at(&key, now).ok())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let permits: Vec<_> = workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect();
        assert_eq!(permits.len() as u32, PROBES, "round {round}");
        assert!(permits.iter().all(|p| p.is_probe()));
        // Fail the trial so the next round starts from open again.
        for p in permits {
            p.record_at(Outcome::Failure, Duration::ZERO, now);
        }
        assert_eq!(registry.get(&key).unwrap().state(), State::Open);
    }
}

/// Threads hammer one breaker that keeps opening, probing, closing and re-opening. Within one
/// half-open generation, probes holding a slot never exceed the configured number.
#[test]
fn probes_never_exceed_the_configured_number_while_the_breaker_churns() {
    const PROBES: u32 = 2;
    const ITERATIONS: usize = 4_000;
    let config = BreakerConfig::default()
        .window_size(10)
        .minimum_calls(4)
        .consecutive_failures(Some(2))
        .half_open_probes(PROBES)
        .probe_timeout(Duration::from_secs(24 * 3600))
        .open_duration(
            Backoff::exponential(Duration::from_millis(5), 1.5, Duration::from_millis(40))
                .jitter(0.5),
        )
        .seed(Some(3));
    let registry = Arc::new(BreakerRegistry::new(config).unwrap());
    let key = BreakerKey::new("a", "t");
    let t0 = Instant::now();
    let clock_ms = Arc::new(AtomicU64::new(0));
    // generation → (holding now, most ever held)
    let holders: Arc<Mutex<HashMap<u64, (u32, u32)>>> = Arc::default();
    let barrier = Arc::new(Barrier::new(THREADS));
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (registry, key, barrier, clock_ms, holders) = (
                registry.clone(),
                key.clone(),
                barrier.clone(),
                clock_ms.clone(),
                holders.clone(),
            );
            thread::spawn(move || {
                let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ (t as u64);
                barrier.wait();
                for _ in 0..ITERATIONS {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    let now =
                        t0 + Duration::from_millis(clock_ms.fetch_add(1, Ordering::Relaxed) / 4);
                    let Ok(permit) = registry.try_acquire_at(&key, now) else {
                        continue;
                    };
                    let generation = permit.generation();
                    if permit.is_probe() {
                        let mut h = holders.lock().unwrap();
                        let entry = h.entry(generation).or_default();
                        entry.0 += 1;
                        entry.1 = entry.1.max(entry.0);
                    }
                    let outcome = match rng % 8 {
                        0..=2 => Outcome::Failure,
                        3 => Outcome::Ignored,
                        _ => Outcome::Success,
                    };
                    let is_probe = permit.is_probe();
                    // Release the count while still holding the slot, so the count never
                    // overstates how many slots were held at once.
                    if is_probe {
                        holders.lock().unwrap().entry(generation).or_default().0 -= 1;
                    }
                    if rng % 16 == 5 {
                        drop(permit);
                    } else {
                        registry.record_at(permit, outcome, Duration::ZERO, now);
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let holders = holders.lock().unwrap();
    assert!(
        holders.len() > 10,
        "the breaker should have half-opened many times, got {}",
        holders.len()
    );
    let most = holders.values().map(|(_, most)| *most).max().unwrap();
    assert!(most <= PROBES, "{most} probes held slots in one generation");
    let snap = &registry.snapshot()[0];
    assert_eq!(
        snap.probes_in_flight, 0,
        "every permit was recorded or dropped: {snap:?}"
    );
    assert!(snap.calls_in_window <= 10);
}
