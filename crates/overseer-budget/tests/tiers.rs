//! Tiered warnings: each tier of each limit fires once, in each scope.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Barrier, Mutex};
use std::thread;

use overseer_budget::{Budget, BudgetWarning, Dimension, Ledger, Limits, Scope, Spend, Tiers};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

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
        let report = call.commit(Spend::from_tokens(5));
        fired.extend(report.warnings.iter().map(|w| (w.tier.level, w.used)));
    }
    assert_eq!(fired, [(1, 70), (2, 85), (3, 90)]);
}

#[test]
fn one_commit_that_jumps_over_several_tiers_fires_each_of_them() {
    let ledger = Ledger::new(Scope::Process, Limits::new().cost_micros(1_000)).unwrap();
    let report = ledger
        .reserve(Spend::from_cost_micros(950))
        .unwrap()
        .commit(Spend::from_cost_micros(950));
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
    let first = ledger
        .reserve(Spend::from_tokens(720))
        .unwrap()
        .commit(Spend::from_tokens(720));
    assert_eq!(levels(&first.warnings), [(Dimension::Tokens, 1)]);
    for _ in 0..10 {
        let report = ledger
            .reserve(Spend::from_tokens(10))
            .unwrap()
            .commit(Spend::from_tokens(10));
        assert!(report.warnings.is_empty());
    }
}

#[test]
fn a_reservation_alone_never_fires_a_tier() {
    let ledger = Ledger::new(Scope::Process, Limits::new().tokens(1_000)).unwrap();
    let held = ledger.reserve(Spend::from_tokens(950)).unwrap();
    assert_eq!(ledger.tier(), None);
    let report = held.commit(Spend::from_tokens(100));
    assert!(report.warnings.is_empty(), "only 10 % was spent");
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
        all.extend(
            ledger
                .reserve(Spend::new(1, 12))
                .unwrap()
                .commit(Spend::new(1, 12))
                .warnings,
        );
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
    let report = budget
        .admit("a", Spend::from_tokens(75))
        .unwrap()
        .commit(Spend::from_tokens(75));
    assert_eq!(report.warnings.len(), 1);
    assert_eq!(report.warnings[0].scope, Scope::Agent("a".into()));

    let report = budget
        .admit("b", Spend::from_tokens(700))
        .unwrap()
        .commit(Spend::from_tokens(700));
    assert_eq!(report.warnings.len(), 1);
    assert_eq!(report.warnings[0].scope, Scope::Process);
    assert_eq!(report.warnings[0].used, 775);
}

#[test]
fn custom_tiers_replace_the_defaults_and_no_tiers_means_no_warnings() {
    let custom = Budget::builder()
        .process_limits(Limits::new().tokens(100))
        .tiers(Tiers::new(&[0.25, 0.5]).unwrap())
        .build()
        .unwrap();
    let report = custom
        .admit("a", Spend::from_tokens(60))
        .unwrap()
        .commit(Spend::from_tokens(60));
    let fractions: Vec<u32> = report
        .warnings
        .iter()
        .map(|w| w.tier.fraction_ppm)
        .collect();
    assert_eq!(fractions, [250_000, 500_000]);

    let silent = Budget::builder()
        .process_limits(Limits::new().tokens(100))
        .tiers(Tiers::none())
        .build()
        .unwrap();
    let report = silent
        .admit("a", Spend::from_tokens(99))
        .unwrap()
        .commit(Spend::from_tokens(99));
    assert!(report.warnings.is_empty());
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

/// Records every `tracing` event's fields.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<BTreeMap<String, String>>>>);

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S: tracing::Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        fields.insert("level".to_owned(), event.metadata().level().to_string());
        event.record(&mut Fields(&mut fields));
        self.0.lock().unwrap().push(fields);
    }
}

#[test]
fn a_warning_is_traced_with_structured_fields() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    tracing::subscriber::with_default(subscriber, || {
        let budget = Budget::builder()
            .process_limits(Limits::new().tokens(1_000))
            .build()
            .unwrap();
        budget
            .admit("a", Spend::from_tokens(860))
            .unwrap()
            .commit(Spend::from_tokens(860));
    });
    let events = capture.0.lock().unwrap();
    let tiers: Vec<_> = events
        .iter()
        .filter(|e| e.get("message").map(String::as_str) == Some("budget tier reached"))
        .collect();
    assert_eq!(tiers.len(), 2, "{events:#?}");
    let second = tiers[1];
    assert_eq!(second["level"], "WARN");
    assert_eq!(second["scope"], "process");
    assert_eq!(second["dimension"], "tokens");
    assert_eq!(second["tier"], "2");
    assert_eq!(second["fraction_ppm"], "850000");
    assert_eq!(second["used"], "860");
    assert_eq!(second["limit"], "1000");
}

#[test]
fn a_trip_is_traced_as_an_error_with_its_reason() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    tracing::subscriber::with_default(subscriber, || {
        let budget = Budget::builder().build().unwrap();
        budget.trip(overseer_budget::TripReason::manual("drill"));
    });
    let events = capture.0.lock().unwrap();
    let trip = events
        .iter()
        .find(|e| e.get("message").map(String::as_str) == Some("kill switch tripped"))
        .expect("a trip event");
    assert_eq!(trip["level"], "ERROR");
    assert_eq!(trip["reason"], "manual trip: drill");
}
