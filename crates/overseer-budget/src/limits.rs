//! The caps on a scope's spend: tokens, cost and steps, each optional.

use serde::{Deserialize, Serialize};

use crate::error::BudgetConfigError;
use crate::usage::Dimension;

/// The caps on one scope's spend. Each dimension is optional: `None` means unlimited.
///
/// A limit of **0 is invalid** ([`BudgetConfigError::ZeroLimit`] when a ledger or budget is
/// built): a zero cap admits nothing, every tier of it would be "reached" before the first
/// call and it would trip the kill switch at once, so it is far more likely to be a mistake
/// (an unset field) than a wish. To keep an agent from running, do not admit it.
///
/// ```
/// use overseer_budget::{Dimension, Limits};
///
/// let limits = Limits::new().tokens(200_000).cost_micros(5_000_000).steps(40);
/// assert_eq!(limits.get(Dimension::Tokens), Some(200_000));
/// assert_eq!(Limits::new().get(Dimension::Steps), None); // unlimited
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Limits {
    tokens: Option<u64>,
    cost_micros: Option<u64>,
    steps: Option<u64>,
}

impl Limits {
    /// No limit in any dimension.
    pub const fn new() -> Self {
        Self {
            tokens: None,
            cost_micros: None,
            steps: None,
        }
    }

    /// Caps the total tokens.
    pub const fn tokens(mut self, tokens: u64) -> Self {
        self.tokens = Some(tokens);
        self
    }

    /// Caps the total cost, in integer micro-units.
    pub const fn cost_micros(mut self, cost_micros: u64) -> Self {
        self.cost_micros = Some(cost_micros);
        self
    }

    /// Caps the number of asks.
    pub const fn steps(mut self, steps: u64) -> Self {
        self.steps = Some(steps);
        self
    }

    /// Sets (or with `None`, lifts) the cap of one dimension.
    pub const fn with(mut self, dimension: Dimension, limit: Option<u64>) -> Self {
        match dimension {
            Dimension::Tokens => self.tokens = limit,
            Dimension::Cost => self.cost_micros = limit,
            Dimension::Steps => self.steps = limit,
        }
        self
    }

    /// The cap of one dimension, `None` if unlimited.
    pub const fn get(&self, dimension: Dimension) -> Option<u64> {
        match dimension {
            Dimension::Tokens => self.tokens,
            Dimension::Cost => self.cost_micros,
            Dimension::Steps => self.steps,
        }
    }

    /// Whether no dimension is capped.
    pub const fn is_unlimited(&self) -> bool {
        self.tokens.is_none() && self.cost_micros.is_none() && self.steps.is_none()
    }

    /// Checks the rule above; `target` names the limits in the error.
    pub(crate) fn validate(&self, target: &str) -> Result<(), BudgetConfigError> {
        for dimension in Dimension::ALL {
            if self.get(dimension) == Some(0) {
                return Err(BudgetConfigError::ZeroLimit {
                    target: target.to_owned(),
                    dimension,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zero_limit_is_rejected_with_its_target_and_dimension() {
        let err = Limits::new()
            .tokens(10)
            .steps(0)
            .validate("agent:a")
            .unwrap_err();
        assert_eq!(
            err,
            BudgetConfigError::ZeroLimit {
                target: "agent:a".into(),
                dimension: Dimension::Steps
            }
        );
    }

    #[test]
    fn with_sets_and_lifts_one_dimension() {
        let limits = Limits::new().with(Dimension::Cost, Some(7));
        assert_eq!(limits.get(Dimension::Cost), Some(7));
        assert!(limits.with(Dimension::Cost, None).is_unlimited());
    }
}
