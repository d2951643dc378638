//! What a ledger counts: tokens, cost and steps, and an amount of them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One of the quantities a ledger counts and may limit.
///
/// | dimension | unit | reserved by a call | committed by a call |
/// |---|---|---|---|
/// | [`Tokens`](Self::Tokens) | tokens | the estimate's tokens | the actual tokens |
/// | [`Cost`](Self::Cost) | integer micro-units of money | the estimate's cost | the actual cost |
/// | [`Steps`](Self::Steps) | asks | always 1 | always 1 (0 if released) |
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    /// Tokens, prompt and completion together.
    Tokens,
    /// Cost in integer micro-units (1 000 000 micro-units = 1 unit of money).
    Cost,
    /// The number of asks (billable calls).
    Steps,
}

impl Dimension {
    /// Every dimension, in the order they are reserved.
    pub const ALL: [Dimension; 3] = [Dimension::Tokens, Dimension::Cost, Dimension::Steps];

    pub(crate) const fn index(self) -> usize {
        match self {
            Dimension::Tokens => 0,
            Dimension::Cost => 1,
            Dimension::Steps => 2,
        }
    }

    /// The unit the dimension's figures are in.
    pub const fn unit(self) -> &'static str {
        match self {
            Dimension::Tokens => "tokens",
            Dimension::Cost => "micro-units",
            Dimension::Steps => "steps",
        }
    }
}

impl fmt::Display for Dimension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Dimension::Tokens => "tokens",
            Dimension::Cost => "cost",
            Dimension::Steps => "steps",
        })
    }
}

/// An amount of tokens and cost: what a call estimates before it starts, or what it
/// really used.
///
/// Steps are not part of it: every reservation counts exactly one step.
///
/// ```
/// use overseer_budget::Spend;
///
/// let estimate = Spend::new(4_000, 12_000); // 4k tokens, 0.012 units of money
/// assert_eq!(estimate.tokens, 4_000);
/// assert_eq!(Spend::from_tokens(10), Spend::new(10, 0));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Spend {
    /// Tokens.
    pub tokens: u64,
    /// Cost in integer micro-units.
    pub cost_micros: u64,
}

impl Spend {
    /// No tokens, no cost.
    pub const ZERO: Spend = Spend {
        tokens: 0,
        cost_micros: 0,
    };

    /// An amount of tokens and cost (in micro-units).
    pub const fn new(tokens: u64, cost_micros: u64) -> Self {
        Self {
            tokens,
            cost_micros,
        }
    }

    /// Tokens only.
    pub const fn from_tokens(tokens: u64) -> Self {
        Self::new(tokens, 0)
    }

    /// Cost only, in micro-units.
    pub const fn from_cost_micros(cost_micros: u64) -> Self {
        Self::new(0, cost_micros)
    }

    /// Whether both figures are zero.
    pub const fn is_zero(&self) -> bool {
        self.tokens == 0 && self.cost_micros == 0
    }

    /// What `self` has beyond `other`, per figure (zero where it has less).
    pub const fn excess_over(&self, other: Spend) -> Spend {
        Spend {
            tokens: self.tokens.saturating_sub(other.tokens),
            cost_micros: self.cost_micros.saturating_sub(other.cost_micros),
        }
    }

    /// The per-dimension amounts, with `steps` steps.
    pub(crate) const fn amounts(self, steps: u64) -> Amounts {
        [self.tokens, self.cost_micros, steps]
    }
}

impl fmt::Display for Spend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} tokens, {} micro-units",
            self.tokens, self.cost_micros
        )
    }
}

/// Per-dimension amounts, indexed by [`Dimension::index`].
pub(crate) type Amounts = [u64; 3];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dimension_indices_follow_the_all_order() {
        for (i, d) in Dimension::ALL.iter().enumerate() {
            assert_eq!(d.index(), i);
        }
    }

    #[test]
    fn excess_is_zero_when_within_the_estimate() {
        let estimate = Spend::new(100, 50);
        assert_eq!(Spend::new(80, 50).excess_over(estimate), Spend::ZERO);
        assert_eq!(
            Spend::new(130, 10).excess_over(estimate),
            Spend::from_tokens(30)
        );
    }
}
