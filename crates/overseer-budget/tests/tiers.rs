//! Tiered warnings: each tier of each limit fires once, in each scope, measured on
//! committed + reserved spend: the reservation that reaches a tier fires it, before its call
//! runs and before any later refusal.

use std::collections::HashMap;
use std::sync::{Arc, Barrier};
use std::thread;

use overseer_budget::{
    Budget, BudgetWarning, Dimension, Ledger, Limits, Refusal, Scope, Spend, Tiers,
};

fn levels(warnings: &[BudgetWarning]) -> Vec<(Dimension, u8)> {
    warnings
        .iter()
        .map(|w| (w.dimension, w.tier.level))
        .collect()
}

#[test]
fn each_tier_fires_once_as_spend_crosses_it() {
    let ledger = Ledger::new(Scope::Process, Limits::new().tokens(100)).unwrap();
    let mut fired = Vec::new();
    for _ in 0..20 {
        let call = ledger.reserve(Spend::from_tokens(5)).unwrap();
        fired.extend(call.warnings().iter().map(|w| (w.tier.level, w.used)));
        let report = call.commit(Spend::from_tokens(5));
        assert!(
            report.warnings.is_empty(),
            "within the estimate: nothing new"
        );
    }
    assert_eq!(fired, [(1, 70), (2, 85), (3, 90)]);
}

#[test]
fn one_reservation_that_jumps_over_several_tiers_fires_each_of_them() {
    let ledger = Ledger::new(Scope::Process, Limits::new().cost_micros(1_000)).unwrap();
    let call = ledger.reserve(Spend::from_cost_micros(950)).unwrap();
    assert_eq!(
        levels(call.warnings()),
        [
            (Dimension::Cost, 1),
            (Dimension::Cost, 2),
            (Dimension::Cost, 3)
        ]
    );
    assert!(call
        .warnings()
        .iter()
        .all(|w| w.used == 950 && w.limit == 1_000));
    assert!(call
        .commit(Spend::from_cost_micros(950))
        .warnings
        .is_empty());
}

#[test]
fn one_overrun_commit_that_jumps_over_several_tiers_fires_each_of_them() {
    let ledger = Ledger::new(Scope::Process, Limits::new().cost_micros(1_000)).unwrap();
    let call = ledger.reserve(Spend::from_cost_micros(100)).unwrap();
    assert!(call.warnings().is_empty());
    let report = call.commit(Spend::from_cost_micros(950));
    assert_eq!(
        levels(&report.warnings),
        [
            (Dimension::Cost, 1),
            (Dimension::Cost, 2),
            (Dimension::Cost, 3)
        ]
    );
    assert!(report
        .warnings
        .iter()
        .all(|w| w.used == 950 && w.limit == 1_000));
}

#[test]
fn a_tier_does_not_fire_again_when_spend_stays_above_it() {
    let ledger = Ledger::new(Scope::Process, Limits::new().tokens(1_000)).unwrap();
    let first = ledger.reserve(Spend::from_tokens(720)).unwrap();
    assert_eq!(levels(first.warnings()), [(Dimension::Tokens, 1)]);
    first.commit(Spend::from_tokens(720));
    for _ in 0..10 {
        let call = ledger.reserve(Spend::from_tokens(10)).unwrap();
        assert!(call.warnings().is_empty());
        assert!(call.commit(Spend::from_tokens(10)).warnings.is_empty());
    }
}

#[test]
fn a_reservation_fires_the_tiers_it_reaches_before_its_call_runs() {
    let ledger = Ledger::new(Scope::Process, Limits::new().tokens(1_000)).unwrap();
    let held = ledger.reserve(Spend::from_tokens(950)).unwrap();
    assert_eq!(
        levels(held.warnings()),
        [
            (Dimension::Tokens, 1),
            (Dimension::Tokens, 2),
            (Dimension::Tokens, 3)
        ]
    );
    assert_eq!(ledger.tier().map(|t| t.level), Some(3));
    let report = held.commit(Spend::from_tokens(100));
    assert!(report.warnings.is_empty());
    assert_eq!(
        ledger.tier().map(|t| t.level),
        Some(3),
        "a tier reached stays reached"
    );
}

#[test]
fn a_tier_reached_by_a_released_reservation_does_not_fire_again() {
    let ledger = Ledger::new(Scope::Process, Limits::new().tokens(1_000)).unwrap();
    let call = ledger.reserve(Spend::from_tokens(750)).unwrap();
    assert_eq!(levels(call.warnings()), [(Dimension::Tokens, 1)]);
    call.release();
    let again = ledger.reserve(Spend::from_tokens(750)).unwrap();
    assert!(again.warnings().is_empty(), "70 % already warned");
    let more = ledger.reserve(Spend::from_tokens(120)).unwrap(); // 870: 85 %
    assert_eq!(levels(more.warnings()), [(Dimension::Tokens, 2)]);
}

/// Issue 14: estimates of 70 against a limit of 150. The first tier's warning comes with
/// the second call's reservation (42 + 70 = 112 ≥ 105), before the third is refused.
#[test]
fn a_warning_comes_before_the_refusal() {
    let budget = Budget::builder()
        .process_limits(Limits::new().tokens(150))
        .build()
        .unwrap();
    let mut log: Vec<String> = Vec::new();
    for agent in ["a", "b", "a", "b"] {
        match budget.admit(agent, Spend::from_tokens(70)) {
            Ok(call) => {
                log.extend(
                    call.warnings()
                        .iter()
                        .map(|w| format!("warn {}", w.tier.level)),
                );
                log.push(format!("{agent} ran"));
                call.commit(Spend::from_tokens(42));
            }
            Err(refusal) => log.push(format!("{agent} refused: {refusal}")),
        }
    }
    assert_eq!(
        log,
        [
            "a ran",
            "warn 1",
            "b ran",
            "a refused: process tokens limit: requested 70, remaining 66 of 150",
            "b refused: process tokens limit: requested 70, remaining 66 of 150",
        ]
    );
    assert!(!budget.is_tripped());
}

/// The rule, in general: a refusal of an estimate of at most `limit − ⌈limit · f⌉` comes
/// after the warning of tier `f` in that scope and dimension, whatever the order of calls
/// (committed + reserved was already past the tier when the refused call asked).
#[test]
fn every_estimate_within_the_headroom_of_a_tier_is_refused_only_after_its_warning() {
    for estimate in 1..=30u64 {
        // 30 = 100 − 70: the headroom above the first tier of a limit of 100.
        let ledger = Ledger::new(Scope::Process, Limits::new().tokens(100)).unwrap();
        let mut warned_first_tier = false;
        let mut refused = false;
        let mut held = Vec::new();
        for round in 0..1_000u64 {
            match ledger.reserve(Spend::from_tokens(estimate)) {
                Ok(call) => {
                    warned_first_tier |= call.warnings().iter().any(|w| w.tier.level == 1);
                    // Commit some, keep some in flight, release some.
                    match round % 3 {
                        0 => drop(call.commit(Spend::from_tokens(estimate / 2))),
                        1 => held.push(call),
                        _ => call.release(),
                    }
                }
                Err(Refusal::LimitExceeded { .. }) => {
                    assert!(
                        warned_first_tier,
                        "estimate {estimate}: refused before a warning"
                    );
                    refused = true;
                    break;
                }
                Err(other) => panic!("{other:?}"),
            }
        }
        assert!(refused, "estimate {estimate}: the run must reach the limit");
    }
}

#[test]
fn every_dimension_warns_on_its_own_limit() {
    let ledger = Ledger::new(
        Scope::Process,
        Limits::new().tokens(100).cost_micros(100).steps(10),
    )
    .unwrap();
    let mut all = Vec::new();
    for _ in 0..7 {
        let call = ledger.reserve(Spend::new(1, 12)).unwrap();
        all.extend_from_slice(call.warnings());
        all.extend(call.commit(Spend::new(1, 12)).warnings);
    }
    // Cost: 84 after 7 calls → tier 1 (70) only; steps: 7 of 10 → tier 1; tokens: 7 %.
    assert_eq!(levels(&all), [(Dimension::Cost, 1), (Dimension::Steps, 1)]);
}

#[test]
fn agent_and_process_tiers_fire_separately() {
    let budget = Budget::builder()
        .process_limits(Limits::new().tokens(1_000))
        .agent_limits("a", Limits::new().tokens(100))
        .build()
        .unwrap();
    let call = budget.admit("a", Spend::from_tokens(75)).unwrap();
    assert_eq!(call.warnings().len(), 1);
    assert_eq!(call.warnings()[0].scope, Scope::Agent("a".into()));
    call.commit(Spend::from_tokens(75));

    let call = budget.admit("b", Spend::from_tokens(700)).unwrap();
    assert_eq!(call.warnings().len(), 1);
    assert_eq!(call.warnings()[0].scope, Scope::Process);
    assert_eq!(call.warnings()[0].used, 775);
}

#[test]
fn custom_tiers_replace_the_defaults_and_no_tiers_means_no_warnings() {
    let custom = Budget::builder()
        .process_limits(Limits::new().tokens(100))
        .tiers(Tiers::new(&[0.25, 0.5]).unwrap())
        .build()
        .unwrap();
    let call = custom.admit("a", Spend::from_tokens(60)).unwrap();
    let fractions: Vec<u32> = call
        .warnings()
        .iter()
        .map(|w| w.tier.fraction_ppm)
        .collect();
    assert_eq!(fractions, [250_000, 500_000]);

    let silent = Budget::builder()
        .process_limits(Limits::new().tokens(100))
        .tiers(Tiers::none())
        .build()
        .unwrap();
    let call = silent.admit("a", Spend::from_tokens(99)).unwrap();
    assert!(call.warnings().is_empty());
    assert!(call.commit(Spend::from_tokens(99)).warnings.is_empty());
    assert_eq!(silent.tier("a"), None);
}

#[test]
fn concurrent_committers_fire_each_tier_exactly_once_per_scope_and_dimension() {
    const THREADS: usize = 8;
    const CALLS: usize = 2_000;
    for round in 0..5 {
        // 8 × 2 000 calls of 1 token and 3 micro-units: the process ends at 16 000 tokens
        // (80 %) and 48 000 micro-units (96 %); each agent at 2 000 of 2 500 tokens (80 %).
        let budget = Budget::builder()
            .process_limits(Limits::new().tokens(20_000).cost_micros(50_000))
            .default_agent_limits(Limits::new().tokens(2_500))
            .build()
            .unwrap();
        let barrier = Arc::new(Barrier::new(THREADS));
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let (budget, barrier) = (budget.clone(), barrier.clone());
                thread::spawn(move || {
                    let agent = format!("agent-{t}");
                    let mut warnings = Vec::new();
                    barrier.wait();
                    for _ in 0..CALLS {
                        let call = budget.admit(&agent, Spend::new(1, 3)).unwrap();
                        warnings.extend_from_slice(call.warnings());
                        warnings.extend(call.commit(Spend::new(1, 3)).warnings);
                    }
                    warnings
                })
            })
            .collect();
        let mut counts: HashMap<(Scope, Dimension, u8), usize> = HashMap::new();
        for h in handles {
            for w in h.join().unwrap() {
                *counts
                    .entry((w.scope, w.dimension, w.tier.level))
                    .or_default() += 1;
            }
        }
        let mut expected: HashMap<(Scope, Dimension, u8), usize> = HashMap::new();
        expected.insert((Scope::Process, Dimension::Tokens, 1), 1);
        for level in 1..=3 {
            expected.insert((Scope::Process, Dimension::Cost, level), 1);
        }
        for t in 0..THREADS {
            let agent = Scope::Agent(format!("agent-{t}").into());
            expected.insert((agent, Dimension::Tokens, 1), 1); // 80 %: tier 1 only
        }
        assert_eq!(counts, expected, "round {round}");
    }
}

#[test]
fn reservations_racing_around_a_tier_and_released_fire_it_exactly_once() {
    const THREADS: usize = 8;
    for round in 0..20 {
        // Each thread holds 100 of 1 000 tokens at a time and releases it: committed +
        // reserved swings around the tiers (700, 850, 900) without ever being committed.
        let ledger = Ledger::new(Scope::Process, Limits::new().tokens(1_000)).unwrap();
        let barrier = Arc::new(Barrier::new(THREADS));
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                let (ledger, barrier) = (ledger.clone(), barrier.clone());
                thread::spawn(move || {
                    let mut warnings = Vec::new();
                    barrier.wait();
                    for _ in 0..2_000 {
                        let call = ledger.reserve(Spend::from_tokens(100)).unwrap();
                        warnings.extend_from_slice(call.warnings());
                        call.release();
                    }
                    warnings
                })
            })
            .collect();
        let mut levels: Vec<u8> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .map(|w| w.tier.level)
            .collect();
        // Whatever fired in the race fired once; the rest fire now, once.
        let last = ledger.reserve(Spend::from_tokens(950)).unwrap();
        levels.extend(last.warnings().iter().map(|w| w.tier.level));
        levels.sort_unstable();
        assert_eq!(levels, [1, 2, 3], "round {round}");
        assert_eq!(ledger.committed(Dimension::Tokens), 0);
    }
}
