//! Fault plans: which fault, on which call, or with which probability.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use crate::{Fault, FaultKind, PlanError};

/// Slack for float rounding when probabilities are added up (`0.1` ten times is not exactly 1).
const SUM_TOLERANCE: f64 = 1e-9;

/// When a [`Rule`] fires.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Trigger {
    /// On every call numbered `first..=last`.
    Calls { first: u64, last: u64 },
    /// On a call with this probability.
    Probability(f64),
}

/// One rule of a [`FaultPlan`]: a fault, when it fires, and optionally the one task type it
/// is limited to.
///
/// Calls are numbered from 1, counting every call to the agent's `handle` across all its
/// incarnations. A rule limited to a task type counts only the calls of that type:
///
/// | rule | fires on |
/// |---|---|
/// | `Rule::on_call(3, f)` | the 3rd call |
/// | `Rule::on_calls(3..=5, f)` | the 3rd, 4th and 5th calls |
/// | `Rule::on_call(2, f).for_task_type("search")` | the 2nd `"search"` call |
/// | `Rule::probability(f, 0.05)` | each call, with probability 5% |
/// | `Rule::probability(f, 0.05).for_task_type("search")` | each `"search"` call, with probability 5% |
///
/// ```
/// use overseer_chaos::{Fault, Rule};
/// use std::time::Duration;
///
/// let rule = Rule::on_calls(10..=12, Fault::Slow(Duration::from_secs(5))).for_task_type("search");
/// assert_eq!(rule.fault(), Fault::Slow(Duration::from_secs(5)));
/// assert_eq!(rule.task_type(), Some("search"));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    fault: Fault,
    trigger: Trigger,
    task_type: Option<Cow<'static, str>>,
}

impl Rule {
    /// `fault` on call number `call` (from 1).
    pub fn on_call(call: u64, fault: Fault) -> Self {
        Self::on_calls(call..=call, fault)
    }

    /// `fault` on every call numbered within `calls` (from 1).
    pub fn on_calls(calls: RangeInclusive<u64>, fault: Fault) -> Self {
        let exhausted = calls.is_empty();
        let (first, mut last) = calls.into_inner();
        if exhausted && first <= last {
            // A range already iterated to its end: keep it empty so `build` reports it.
            last = first.saturating_sub(1);
        }
        Self {
            fault,
            trigger: Trigger::Calls { first, last },
            task_type: None,
        }
    }

    /// `fault` on each call, with `probability` (drawn from the injector's seeded generator).
    pub fn probability(fault: Fault, probability: f64) -> Self {
        Self {
            fault,
            trigger: Trigger::Probability(probability),
            task_type: None,
        }
    }

    /// Limits the rule to tasks of this type ([`Agent::task_type`](overseer_agent::Agent::task_type));
    /// call numbers then count the calls of this type only.
    pub fn for_task_type(mut self, task_type: impl Into<Cow<'static, str>>) -> Self {
        self.task_type = Some(task_type.into());
        self
    }

    /// The fault it injects.
    pub fn fault(&self) -> Fault {
        self.fault
    }

    /// The task type it is limited to, if any.
    pub fn task_type(&self) -> Option<&str> {
        self.task_type.as_deref()
    }

    /// Its probability, if it is drawn rather than scheduled.
    fn drawn_probability(&self) -> Option<f64> {
        match self.trigger {
            Trigger::Probability(probability) => Some(probability),
            Trigger::Calls { .. } => None,
        }
    }

    fn is_scheduled(&self) -> bool {
        matches!(self.trigger, Trigger::Calls { .. })
    }

    fn applies_to(&self, task_type: &str) -> bool {
        self.task_type
            .as_deref()
            .is_none_or(|only| only == task_type)
    }

    fn check(&self) -> Result<(), PlanError> {
        let fault = self.fault;
        if self.task_type.as_deref() == Some("") {
            return Err(PlanError::EmptyTaskType { fault });
        }
        if let Fault::InflateUsage(factor) = fault {
            if factor < 2 {
                return Err(PlanError::InflationBelowTwo { factor });
            }
        }
        match self.trigger {
            Trigger::Calls { first: 0, .. } => Err(PlanError::CallZero { fault }),
            Trigger::Calls { first, last } if first > last => {
                Err(PlanError::EmptyCallRange { fault, first, last })
            }
            Trigger::Probability(probability) => check_probability(fault.kind(), probability),
            Trigger::Calls { .. } => Ok(()),
        }
    }
}

fn check_probability(fault: FaultKind, probability: f64) -> Result<(), PlanError> {
    if (0.0..=1.0).contains(&probability) {
        Ok(())
    } else {
        Err(PlanError::ProbabilityOutOfRange { fault, probability })
    }
}

/// One call to `handle`, as a plan sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Call<'a> {
    /// The call's number among all calls (from 1).
    pub(crate) number: u64,
    /// Its number among the calls of its task type (from 1).
    pub(crate) number_of_type: u64,
    /// Its task type.
    pub(crate) task_type: &'a str,
}

/// What to inject into an agent: rules for its calls and for its starts. Build one with
/// [`FaultPlan::builder`]; hand it to a [`FaultInjector`](crate::FaultInjector) with a seed.
///
/// For each call, the first scheduled rule that covers it decides; if none does, one number
/// is drawn in `[0, 1)` and the probability rules that apply share that interval in the order
/// they were declared. Exactly one number is drawn per call, whatever the outcome, so adding a
/// scheduled rule does not shift the faults drawn for other calls.
///
/// Start attempts (an incarnation's `on_start` or `on_restart`) are numbered from 1 and have
/// rules of their own: scheduled attempts always fail, the others fail with the start
/// probability, drawn from a stream separate from the calls'.
///
/// ```
/// use overseer_chaos::{Fault, FaultPlan, PlanError, Rule};
/// use std::time::Duration;
///
/// let plan = FaultPlan::builder()
///     .probability(Fault::Error, 0.05)
///     .probability(Fault::Slow(Duration::from_secs(3)), 0.10)
///     .on_call(7, Fault::Panic)
///     .rule(Rule::on_calls(1..=2, Fault::Hang).for_task_type("search"))
///     .fail_start_on(2)
///     .build()?;
/// assert_eq!(plan.rules().len(), 4);
///
/// let too_likely = FaultPlan::builder()
///     .probability(Fault::Error, 0.7)
///     .probability(Fault::Panic, 0.4)
///     .build();
/// assert!(matches!(too_likely, Err(PlanError::ProbabilitiesAboveOne { .. })));
/// # Ok::<(), PlanError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultPlan {
    rules: Vec<Rule>,
    start_attempts: Vec<(u64, u64)>,
    start_probability: f64,
}

impl FaultPlan {
    /// A plan with no rules yet.
    pub fn builder() -> FaultPlanBuilder {
        FaultPlanBuilder::default()
    }

    /// A plan that injects nothing.
    pub fn none() -> Self {
        Self::default()
    }

    /// Its call rules, in the order they were declared.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Whether it injects nothing at all.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty() && self.start_attempts.is_empty() && self.start_probability == 0.0
    }

    /// Whether some rule injects [`Fault::Corrupt`].
    pub(crate) fn corrupts(&self) -> bool {
        self.rules.iter().any(|rule| rule.fault == Fault::Corrupt)
    }

    /// The fault for `call`, given the number `draw` in `[0, 1)` drawn for it.
    pub(crate) fn fault_for(&self, call: &Call<'_>, draw: f64) -> Option<Fault> {
        let applicable = || {
            self.rules
                .iter()
                .filter(|rule| rule.applies_to(call.task_type))
        };
        let scheduled = applicable().find(|rule| match rule.trigger {
            Trigger::Calls { first, last } => {
                let number = match rule.task_type {
                    Some(_) => call.number_of_type,
                    None => call.number,
                };
                (first..=last).contains(&number)
            }
            Trigger::Probability(_) => false,
        });
        if let Some(rule) = scheduled {
            return Some(rule.fault);
        }
        let mut cumulative = 0.0;
        applicable().find_map(|rule| match rule.trigger {
            Trigger::Probability(probability) => {
                cumulative += probability;
                (draw < cumulative).then_some(rule.fault)
            }
            Trigger::Calls { .. } => None,
        })
    }

    /// Whether start attempt number `attempt` (from 1) fails, given the number `draw` in
    /// `[0, 1)` drawn for it.
    pub(crate) fn start_fails(&self, attempt: u64, draw: f64) -> bool {
        self.start_attempts
            .iter()
            .any(|&(first, last)| (first..=last).contains(&attempt))
            || draw < self.start_probability
    }
}

/// Builds a [`FaultPlan`]; [`build`](Self::build) checks it. Rules are kept in the order they
/// are declared.
#[derive(Debug, Clone, Default)]
pub struct FaultPlanBuilder {
    rules: Vec<Rule>,
    start_attempts: Vec<RangeInclusive<u64>>,
    start_probability: f64,
}

impl FaultPlanBuilder {
    /// Adds a rule (use [`Rule`] for a rule limited to one task type).
    pub fn rule(mut self, rule: Rule) -> Self {
        self.rules.push(rule);
        self
    }

    /// Injects `fault` into each call with `probability`.
    pub fn probability(self, fault: Fault, probability: f64) -> Self {
        self.rule(Rule::probability(fault, probability))
    }

    /// Injects `fault` into call number `call` (from 1).
    pub fn on_call(self, call: u64, fault: Fault) -> Self {
        self.rule(Rule::on_call(call, fault))
    }

    /// Injects `fault` into every call numbered within `calls` (from 1).
    pub fn on_calls(self, calls: RangeInclusive<u64>, fault: Fault) -> Self {
        self.rule(Rule::on_calls(calls, fault))
    }

    /// Fails start attempt number `attempt`: 1 is the first start, 2 the first restart
    /// attempt, and so on (failed attempts count).
    pub fn fail_start_on(self, attempt: u64) -> Self {
        self.fail_start_on_attempts(attempt..=attempt)
    }

    /// Fails every start attempt numbered within `attempts` (from 1).
    pub fn fail_start_on_attempts(mut self, attempts: RangeInclusive<u64>) -> Self {
        self.start_attempts.push(attempts);
        self
    }

    /// Fails each start attempt with `probability` (replacing any probability set before).
    pub fn fail_start_probability(mut self, probability: f64) -> Self {
        self.start_probability = probability;
        self
    }

    /// Checks the plan: probabilities within `[0, 1]` and adding up to at most 1 for any
    /// call, call and attempt numbers from 1, non-empty ranges and task types, inflation
    /// factors of at least 2.
    pub fn build(self) -> Result<FaultPlan, PlanError> {
        for rule in &self.rules {
            rule.check()?;
        }
        check_sums(&self.rules)?;
        check_probability(FaultKind::FailStart, self.start_probability)?;
        let mut start_attempts = Vec::with_capacity(self.start_attempts.len());
        for attempts in self.start_attempts {
            let (first, last) = (*attempts.start(), *attempts.end());
            if first == 0 {
                return Err(PlanError::StartAttemptZero);
            }
            if attempts.is_empty() {
                return Err(PlanError::EmptyStartAttemptRange { first, last });
            }
            start_attempts.push((first, last));
        }
        Ok(FaultPlan {
            rules: self.rules,
            start_attempts,
            start_probability: self.start_probability,
        })
    }
}

/// Checks that the probabilities applying to any one call add up to at most 1: those without
/// a task type, plus those of any one task type.
fn check_sums(rules: &[Rule]) -> Result<(), PlanError> {
    let mut everywhere = 0.0;
    let mut by_type: BTreeMap<&Cow<'static, str>, f64> = BTreeMap::new();
    for rule in rules.iter().filter(|rule| !rule.is_scheduled()) {
        let probability = rule.drawn_probability().unwrap_or_default();
        match &rule.task_type {
            Some(task_type) => *by_type.entry(task_type).or_default() += probability,
            None => everywhere += probability,
        }
    }
    if everywhere > 1.0 + SUM_TOLERANCE {
        return Err(PlanError::ProbabilitiesAboveOne {
            task_type: None,
            sum: everywhere,
        });
    }
    for (task_type, sum) in by_type {
        let sum = everywhere + sum;
        if sum > 1.0 + SUM_TOLERANCE {
            return Err(PlanError::ProbabilitiesAboveOne {
                task_type: Some(task_type.clone()),
                sum,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn call(number: u64) -> Call<'static> {
        Call {
            number,
            number_of_type: number,
            task_type: "default",
        }
    }

    fn typed(number: u64, number_of_type: u64, task_type: &'static str) -> Call<'static> {
        Call {
            number,
            number_of_type,
            task_type,
        }
    }

    #[test]
    fn a_scheduled_rule_fires_on_its_calls_only() {
        let plan = FaultPlan::builder()
            .on_call(2, Fault::Panic)
            .on_calls(4..=5, Fault::Hang)
            .build()
            .unwrap();
        let faults: Vec<_> = (1..=6).map(|n| plan.fault_for(&call(n), 0.0)).collect();
        assert_eq!(
            faults,
            [
                None,
                Some(Fault::Panic),
                None,
                Some(Fault::Hang),
                Some(Fault::Hang),
                None
            ]
        );
    }

    #[test]
    fn a_rule_for_a_task_type_counts_calls_of_that_type() {
        let plan = FaultPlan::builder()
            .rule(Rule::on_call(2, Fault::Error).for_task_type("search"))
            .build()
            .unwrap();
        // The 2nd call overall is not a search; the 2nd search is call 5.
        assert_eq!(plan.fault_for(&typed(2, 1, "search"), 0.0), None);
        assert_eq!(plan.fault_for(&typed(2, 2, "write"), 0.0), None);
        assert_eq!(
            plan.fault_for(&typed(5, 2, "search"), 0.0),
            Some(Fault::Error)
        );
    }

    #[test]
    fn the_first_scheduled_rule_wins_and_schedules_beat_probabilities() {
        let plan = FaultPlan::builder()
            .probability(Fault::Error, 1.0)
            .on_calls(1..=3, Fault::Panic)
            .on_call(2, Fault::Hang)
            .build()
            .unwrap();
        assert_eq!(plan.fault_for(&call(2), 0.0), Some(Fault::Panic));
        assert_eq!(plan.fault_for(&call(4), 0.5), Some(Fault::Error));
    }

    #[test]
    fn probabilities_share_the_unit_interval_in_declaration_order() {
        let plan = FaultPlan::builder()
            .probability(Fault::Error, 0.1)
            .probability(Fault::Panic, 0.2)
            .rule(Rule::probability(Fault::Hang, 0.5).for_task_type("search"))
            .build()
            .unwrap();
        let at = |draw, task_type| plan.fault_for(&typed(1, 1, task_type), draw);
        assert_eq!(at(0.05, "write"), Some(Fault::Error));
        assert_eq!(at(0.25, "write"), Some(Fault::Panic));
        assert_eq!(at(0.35, "write"), None);
        assert_eq!(at(0.35, "search"), Some(Fault::Hang));
        assert_eq!(at(0.85, "search"), None);
    }

    #[test]
    fn scheduled_and_drawn_start_failures() {
        let plan = FaultPlan::builder()
            .fail_start_on(2)
            .fail_start_on_attempts(5..=6)
            .fail_start_probability(0.25)
            .build()
            .unwrap();
        let fails: Vec<_> = (1..=7).map(|n| plan.start_fails(n, 0.9)).collect();
        assert_eq!(fails, [false, true, false, false, true, true, false]);
        assert!(plan.start_fails(1, 0.1));
        assert!(FaultPlan::none().is_empty());
        assert!(!plan.is_empty());
    }

    #[test]
    fn invalid_plans_are_rejected_with_what_was_wrong() {
        let error = |builder: FaultPlanBuilder| builder.build().unwrap_err();
        assert_eq!(
            error(FaultPlan::builder().probability(Fault::Panic, 1.5)),
            PlanError::ProbabilityOutOfRange {
                fault: FaultKind::Panic,
                probability: 1.5
            }
        );
        assert!(matches!(
            error(FaultPlan::builder().probability(Fault::Panic, f64::NAN)),
            PlanError::ProbabilityOutOfRange { .. }
        ));
        assert_eq!(
            error(FaultPlan::builder().probability(Fault::Error, -0.1)),
            PlanError::ProbabilityOutOfRange {
                fault: FaultKind::Error,
                probability: -0.1
            }
        );
        assert_eq!(
            error(
                FaultPlan::builder()
                    .probability(Fault::Error, 0.6)
                    .rule(Rule::probability(Fault::Panic, 0.5).for_task_type("search"))
            ),
            PlanError::ProbabilitiesAboveOne {
                task_type: Some("search".into()),
                sum: 1.1
            }
        );
        assert_eq!(
            error(FaultPlan::builder().on_call(0, Fault::Hang)),
            PlanError::CallZero { fault: Fault::Hang }
        );
        assert_eq!(
            error(FaultPlan::builder().on_calls(0..=3, Fault::Hang)),
            PlanError::CallZero { fault: Fault::Hang }
        );
        #[allow(clippy::reversed_empty_ranges)]
        let backwards = 5..=3;
        assert_eq!(
            error(FaultPlan::builder().on_calls(backwards, Fault::Error)),
            PlanError::EmptyCallRange {
                fault: Fault::Error,
                first: 5,
                last: 3
            }
        );
        assert_eq!(
            error(FaultPlan::builder().fail_start_on(0)),
            PlanError::StartAttemptZero
        );
        #[allow(clippy::reversed_empty_ranges)]
        let backwards = 4..=2;
        assert_eq!(
            error(FaultPlan::builder().fail_start_on_attempts(backwards)),
            PlanError::EmptyStartAttemptRange { first: 4, last: 2 }
        );
        assert_eq!(
            error(FaultPlan::builder().fail_start_probability(2.0)),
            PlanError::ProbabilityOutOfRange {
                fault: FaultKind::FailStart,
                probability: 2.0
            }
        );
        assert_eq!(
            error(FaultPlan::builder().on_call(1, Fault::InflateUsage(1))),
            PlanError::InflationBelowTwo { factor: 1 }
        );
        assert_eq!(
            error(FaultPlan::builder().rule(Rule::on_call(1, Fault::Error).for_task_type(""))),
            PlanError::EmptyTaskType {
                fault: Fault::Error
            }
        );
    }

    #[test]
    fn probabilities_adding_up_to_one_within_rounding_are_accepted() {
        let plan = (0..10).fold(FaultPlan::builder(), |plan, _| {
            plan.probability(Fault::Slow(Duration::from_millis(1)), 0.1)
        });
        assert!(plan.build().is_ok());
    }
}
