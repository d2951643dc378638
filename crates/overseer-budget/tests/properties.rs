//! Properties over random sequences of reserve / commit / release / drop.

use overseer_budget::{
    Budget, BudgetWarning, Dimension, Ledger, Limits, Refusal, Reservation, Scope, Spend,
    TripReason,
};
use proptest::prelude::*;

const LIMITS: [u64; 3] = [1_000, 800, 12]; // tokens, cost, steps
/// ⌈limit × 70 %, 85 %, 90 %⌉ (the default tiers) of each limit.
const THRESHOLDS: [[u64; 3]; 3] = [[700, 850, 900], [560, 680, 720], [9, 11, 11]];

#[derive(Clone, Debug)]
enum Op {
    Reserve {
        tokens: u64,
        cost: u64,
    },
    /// Commit outstanding reservation `index % len`, using `percent` % of its estimate
    /// (over 100 is an overrun).
    Commit {
        index: usize,
        percent: u64,
    },
    Release {
        index: usize,
    },
    Drop {
        index: usize,
    },
}

fn op(max_percent: u64) -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..=400u64, 0..=300u64).prop_map(|(tokens, cost)| Op::Reserve { tokens, cost }),
        2 => (any::<usize>(), 0..=max_percent)
            .prop_map(|(index, percent)| Op::Commit { index, percent }),
        1 => any::<usize>().prop_map(|index| Op::Release { index }),
        1 => any::<usize>().prop_map(|index| Op::Drop { index }),
    ]
}

fn limits() -> Limits {
    Limits::new()
        .tokens(LIMITS[0])
        .cost_micros(LIMITS[1])
        .steps(LIMITS[2])
}

fn amounts(usage: Spend, steps: u64) -> [u64; 3] {
    [usage.tokens, usage.cost_micros, steps]
}

/// The ledger, modelled: committed and reserved per dimension, and the tiers: each fires
/// the first time committed + reserved reaches it.
#[derive(Default)]
struct Model {
    committed: [u64; 3],
    reserved: [u64; 3],
    overrun: [u64; 3],
    /// The highest committed + reserved so far.
    peak: [u64; 3],
    /// Tiers fired, per dimension: levels 1 to 3.
    fired: [[bool; 3]; 3],
}

/// (dimension, level, used) of each warning, in the order fired.
fn fired(warnings: &[BudgetWarning]) -> Vec<(Dimension, u8, u64)> {
    warnings
        .iter()
        .map(|w| (w.dimension, w.tier.level, w.used))
        .collect()
}

impl Model {
    fn fits(&self, want: [u64; 3]) -> bool {
        (0..3).all(|i| self.committed[i] + self.reserved[i] + want[i] <= LIMITS[i])
    }

    /// The tiers committed + reserved now reaches for the first time, in dimension order.
    fn reach(&mut self, dimensions: [bool; 3]) -> Vec<(Dimension, u8, u64)> {
        let mut warnings = Vec::new();
        for (i, dimension) in Dimension::ALL.into_iter().enumerate() {
            let claimed = self.committed[i] + self.reserved[i];
            if !dimensions[i] || claimed <= self.peak[i] {
                continue;
            }
            for (level, &threshold) in THRESHOLDS[i].iter().enumerate() {
                if self.peak[i] < threshold && threshold <= claimed {
                    self.fired[i][level] = true;
                    warnings.push((dimension, level as u8 + 1, claimed));
                }
            }
            self.peak[i] = claimed;
        }
        warnings
    }

    /// A refusal names the first dimension that does not fit, with the figures; and any
    /// tier whose headroom (`limit − threshold`) holds the request has already fired.
    fn check_refusal(&self, want: [u64; 3], refusal: &Refusal) -> Result<(), TestCaseError> {
        let i = (0..3)
            .find(|&i| self.committed[i] + self.reserved[i] + want[i] > LIMITS[i])
            .expect("a refused request does not fit somewhere");
        let claimed = self.committed[i] + self.reserved[i];
        prop_assert_eq!(
            refusal,
            &Refusal::LimitExceeded {
                scope: Scope::Process,
                dimension: Dimension::ALL[i],
                requested: want[i],
                remaining: LIMITS[i].saturating_sub(claimed),
                limit: LIMITS[i],
                committed: self.committed[i],
            }
        );
        for (level, &threshold) in THRESHOLDS[i].iter().enumerate() {
            if want[i] <= LIMITS[i] - threshold {
                prop_assert!(
                    self.fired[i][level],
                    "{:?} of {} refused before tier {} warned",
                    want,
                    Dimension::ALL[i],
                    level + 1
                );
            }
        }
        Ok(())
    }

    fn check(&self, ledger: &Ledger) -> Result<(), TestCaseError> {
        for (i, dimension) in Dimension::ALL.into_iter().enumerate() {
            let (committed, reserved) = (ledger.committed(dimension), ledger.reserved(dimension));
            prop_assert_eq!(committed, self.committed[i], "{} committed", dimension);
            prop_assert_eq!(reserved, self.reserved[i], "{} reserved", dimension);
            prop_assert!(
                committed + reserved <= LIMITS[i] + self.overrun[i],
                "{}: {} + {} > {} + overrun {}",
                dimension,
                committed,
                reserved,
                LIMITS[i],
                self.overrun[i]
            );
        }
        let level = self
            .fired
            .iter()
            .map(|tiers| tiers.iter().filter(|&&f| f).count())
            .max()
            .unwrap_or(0);
        prop_assert_eq!(ledger.tier().map_or(0, |t| usize::from(t.level)), level);
        Ok(())
    }
}

/// Runs `ops` against a ledger and the model, checking after every step; returns the model.
fn run(ops: Vec<Op>) -> Result<Model, TestCaseError> {
    let ledger = Ledger::new(Scope::Process, limits()).unwrap();
    let mut model = Model::default();
    let mut held: Vec<Reservation> = Vec::new();
    for op in ops {
        match op {
            Op::Reserve { tokens, cost } => {
                let estimate = Spend::new(tokens, cost);
                let want = amounts(estimate, 1);
                let expected = model.fits(want);
                match ledger.reserve(estimate) {
                    Ok(call) => {
                        prop_assert!(expected, "admitted {:?} past a limit", estimate);
                        (0..3).for_each(|i| model.reserved[i] += want[i]);
                        prop_assert_eq!(fired(call.warnings()), model.reach([true; 3]));
                        held.push(call);
                    }
                    Err(refusal) => {
                        prop_assert!(!expected, "refused {:?} that fits", estimate);
                        model.check_refusal(want, &refusal)?;
                    }
                }
            }
            Op::Commit { index, percent } if !held.is_empty() => {
                let call = held.swap_remove(index % held.len());
                let estimate = call.estimate();
                let actual = Spend::new(
                    estimate.tokens * percent / 100,
                    estimate.cost_micros * percent / 100,
                );
                let report = call.commit(actual);
                let (reserved, spent) = (amounts(estimate, 1), amounts(actual, 1));
                for i in 0..3 {
                    model.reserved[i] -= reserved[i];
                    model.committed[i] += spent[i];
                    model.overrun[i] += spent[i].saturating_sub(reserved[i]);
                }
                // Only an overrun raises committed + reserved, so only it can reach a tier.
                let overran = [0, 1, 2].map(|i| spent[i] > reserved[i]);
                prop_assert_eq!(fired(&report.warnings), model.reach(overran));
                prop_assert_eq!(
                    report.overrun.is_some(),
                    spent[..2] > reserved[..2] || spent[0] > reserved[0] || spent[1] > reserved[1]
                );
            }
            Op::Release { index } | Op::Drop { index } if !held.is_empty() => {
                let call = held.swap_remove(index % held.len());
                let reserved = amounts(call.estimate(), 1);
                if matches!(op, Op::Release { .. }) {
                    call.release();
                } else {
                    drop(call);
                }
                (0..3).for_each(|i| model.reserved[i] -= reserved[i]);
            }
            _ => {}
        }
        model.check(&ledger)?;
    }
    drop(held);
    model.reserved = [0; 3];
    model.check(&ledger)?;
    // Everything released came back: what is left is the limit less what was spent.
    let left = ledger.remaining();
    for (i, dimension) in Dimension::ALL.into_iter().enumerate() {
        prop_assert_eq!(
            left.get(dimension),
            Some(LIMITS[i].saturating_sub(model.committed[i]))
        );
    }
    Ok(model)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Within their estimates, calls never take committed + reserved past a limit, the
    /// ledger admits exactly what fits, and released budget is fully returned.
    #[test]
    fn committed_plus_reserved_never_exceeds_a_limit(
        ops in proptest::collection::vec(op(100), 1..120)
    ) {
        let model = run(ops)?;
        // No overrun, so `check` held committed + reserved ≤ limit at every step.
        prop_assert_eq!(model.overrun, [0; 3]);
    }

    /// With overruns, committed + reserved exceeds a limit by at most the overruns, and
    /// committed is exactly what was spent.
    #[test]
    fn only_overruns_can_take_a_ledger_past_its_limit(
        ops in proptest::collection::vec(op(200), 1..120)
    ) {
        run(ops)?;
    }

    /// Through a budget, two agents and the process all stay within their limits, and the
    /// process holds exactly the sum of the agents.
    #[test]
    fn agent_and_process_ledgers_stay_within_limits_and_agree(
        calls in proptest::collection::vec(
            (0..3usize, 0..=400u64, 0..=300u64, 0..=100u64, any::<bool>()),
            1..80,
        )
    ) {
        let budget = Budget::builder()
            .process_limits(limits())
            .default_agent_limits(Limits::new().tokens(500).steps(6))
            .build()
            .unwrap();
        let agents = ["a", "b", "c"];
        let mut held = Vec::new();
        for (agent, tokens, cost, percent, keep) in calls {
            if let Ok(call) = budget.admit(agents[agent], Spend::new(tokens, cost)) {
                if keep {
                    held.push(call);
                } else {
                    call.commit(Spend::new(tokens * percent / 100, cost * percent / 100));
                }
            }
            let ledgers: Vec<Ledger> = std::iter::once(budget.process().clone())
                .chain(agents.iter().filter_map(|a| budget.agent(a)))
                .collect();
            for ledger in &ledgers {
                let status = ledger.status();
                for dimension in Dimension::ALL {
                    let d = status.dimension(dimension);
                    if let Some(limit) = d.limit {
                        prop_assert!(d.committed + d.reserved <= limit);
                    }
                }
            }
            for dimension in Dimension::ALL {
                let committed: u64 = ledgers[1..].iter().map(|l| l.committed(dimension)).sum();
                let reserved: u64 = ledgers[1..].iter().map(|l| l.reserved(dimension)).sum();
                prop_assert_eq!(committed, budget.process().committed(dimension));
                prop_assert_eq!(reserved, budget.process().reserved(dimension));
            }
        }
        drop(held);
        for dimension in Dimension::ALL {
            prop_assert_eq!(budget.process().reserved(dimension), 0);
        }
    }
}

/// ⌈limit × 90 %⌉ of each process limit: the hard tier of the property below.
const HARD: [u64; 3] = [900, 720, 11];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Through a budget with a hard tier at 90 %: a refused admission never trips the
    /// switch, and the switch has tripped exactly when committed process spend has reached
    /// the hard tier of some limit. Before the trip every refusal is a limit refusal; after
    /// it, every admission is refused as tripped.
    #[test]
    fn a_refusal_never_trips_and_committed_spend_at_the_hard_tier_always_does(
        calls in proptest::collection::vec(
            (0..3usize, 0..=400u64, 0..=300u64, 0..=100u64, 0..3u8),
            1..80,
        )
    ) {
        let budget = Budget::builder()
            .process_limits(limits())
            .default_agent_limits(Limits::new().tokens(500).steps(6))
            .hard_tier(0.9)
            .build()
            .unwrap();
        let agents = ["a", "b", "c"];
        let mut held = Vec::new();
        for (agent, tokens, cost, percent, ending) in calls {
            let was_tripped = budget.is_tripped();
            match budget.admit(agents[agent], Spend::new(tokens, cost)) {
                Ok(call) => {
                    prop_assert!(!was_tripped, "admitted after the trip");
                    match ending {
                        0 => held.push(call),
                        1 => call.release(),
                        _ => {
                            call.commit(Spend::new(tokens * percent / 100, cost * percent / 100));
                        }
                    }
                }
                Err(refusal) => {
                    prop_assert_eq!(refusal.is_tripped(), was_tripped, "{}", refusal);
                    prop_assert_eq!(budget.is_tripped(), was_tripped, "a refusal tripped");
                }
            }
            let process = budget.process();
            let at_hard_tier = Dimension::ALL
                .into_iter()
                .zip(HARD)
                .any(|(dimension, hard)| process.committed(dimension) >= hard);
            prop_assert_eq!(budget.is_tripped(), at_hard_tier);
            if let Some(trip) = budget.trip_report() {
                prop_assert!(
                    matches!(
                        trip.reason,
                        TripReason::HardTierReached { .. } | TripReason::LimitReached { .. }
                    ),
                    "{}",
                    trip.reason
                );
            }
        }
        drop(held);
    }
}
