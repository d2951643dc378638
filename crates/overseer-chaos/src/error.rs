//! Why a fault plan cannot be used, found before anything runs.

use std::borrow::Cow;

use crate::{Fault, FaultKind};

/// A fault plan that cannot be used, returned by [`FaultPlanBuilder::build`](crate::FaultPlanBuilder::build)
/// and [`FaultInjector::new`](crate::FaultInjector::new).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// A probability outside `[0, 1]` (or not a number).
    #[error("the probability of {fault} is {probability}; it must be within [0, 1]")]
    ProbabilityOutOfRange {
        /// The fault it was given for.
        fault: FaultKind,
        /// The probability given.
        probability: f64,
    },
    /// The probabilities that apply to one call add up to more than 1.
    #[error("the fault probabilities for {} add up to {sum}; at most 1 is possible", match task_type { Some(task_type) => format!("task type '{task_type}'"), None => "every call".to_string() })]
    ProbabilitiesAboveOne {
        /// The task type whose calls they apply to (`None`: the rules without a task type).
        task_type: Option<Cow<'static, str>>,
        /// Their sum.
        sum: f64,
    },
    /// A call number of zero: calls are numbered from 1.
    #[error("a rule for {fault} is scheduled on call 0; calls are numbered from 1")]
    CallZero {
        /// The rule's fault.
        fault: Fault,
    },
    /// A range of calls with no call in it.
    #[error("a rule for {fault} is scheduled on calls {first}..={last}, which is empty")]
    EmptyCallRange {
        /// The rule's fault.
        fault: Fault,
        /// The first call of the range.
        first: u64,
        /// The last call of the range.
        last: u64,
    },
    /// A start attempt number of zero: start attempts are numbered from 1.
    #[error("a start failure is scheduled on attempt 0; start attempts are numbered from 1")]
    StartAttemptZero,
    /// A range of start attempts with no attempt in it.
    #[error("a start failure is scheduled on attempts {first}..={last}, which is empty")]
    EmptyStartAttemptRange {
        /// The first attempt of the range.
        first: u64,
        /// The last attempt of the range.
        last: u64,
    },
    /// A task-type filter that is empty.
    #[error("a rule for {fault} is limited to an empty task type")]
    EmptyTaskType {
        /// The rule's fault.
        fault: Fault,
    },
    /// An [`InflateUsage`](Fault::InflateUsage) factor below 2 (it would not inflate anything).
    #[error("the usage inflation factor is {factor}; it must be at least 2")]
    InflationBelowTwo {
        /// The factor given.
        factor: u32,
    },
    /// The plan injects [`Corrupt`](Fault::Corrupt) but the injector has no corruptor to make
    /// the wrong output.
    #[error("the plan injects corrupt outputs but no corruptor was given (use FaultInjector::with_corruptor)")]
    CorruptWithoutCorruptor,
}
