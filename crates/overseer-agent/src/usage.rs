//! Token and cost usage reported by agents.

use std::ops::{Add, AddAssign};

use serde::{Deserialize, Serialize};

/// What one call to a model (or one whole task) consumed. Cost is in integer micro-units of
/// a currency (1 USD = 1,000,000), so budgets never accumulate float error.
///
/// ```
/// use overseer_agent::Usage;
/// let total = Usage::new(100, 20, 150) + Usage::new(10, 5, 15);
/// assert_eq!(total.total_tokens(), 135);
/// assert_eq!(total.cost_micros, 165);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Usage {
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Completion tokens.
    pub output_tokens: u64,
    /// Cost in micro-units.
    pub cost_micros: u64,
    /// Of the prompt tokens, those the provider read from its prompt cache (counted in
    /// `input_tokens` too, and usually priced lower). Budgets count them as input tokens.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cached_input_tokens: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Usage {
    /// Usage of `input_tokens` in, `output_tokens` out, costing `cost_micros`.
    pub const fn new(input_tokens: u64, output_tokens: u64, cost_micros: u64) -> Self {
        Self {
            input_tokens,
            output_tokens,
            cost_micros,
            cached_input_tokens: 0,
        }
    }

    /// With `cached` of the input tokens read from the provider's prompt cache.
    ///
    /// ```
    /// use overseer_agent::Usage;
    /// let usage = Usage::new(1_000, 50, 900).with_cached_input_tokens(800);
    /// assert_eq!(usage.cached_input_tokens, 800);
    /// assert_eq!(usage.total_tokens(), 1_050);
    /// ```
    pub const fn with_cached_input_tokens(mut self, cached: u64) -> Self {
        self.cached_input_tokens = cached;
        self
    }

    /// Input plus output tokens.
    pub const fn total_tokens(&self) -> u64 {
        self.input_tokens.saturating_add(self.output_tokens)
    }

    /// Whether nothing was used.
    pub const fn is_zero(&self) -> bool {
        self.input_tokens == 0
            && self.output_tokens == 0
            && self.cost_micros == 0
            && self.cached_input_tokens == 0
    }
}

impl Add for Usage {
    type Output = Usage;

    fn add(self, other: Usage) -> Usage {
        Usage {
            input_tokens: self.input_tokens.saturating_add(other.input_tokens),
            output_tokens: self.output_tokens.saturating_add(other.output_tokens),
            cost_micros: self.cost_micros.saturating_add(other.cost_micros),
            cached_input_tokens: self
                .cached_input_tokens
                .saturating_add(other.cached_input_tokens),
        }
    }
}

impl AddAssign for Usage {
    fn add_assign(&mut self, other: Usage) {
        *self = *self + other;
    }
}

impl From<Usage> for overseer_budget::Spend {
    /// Budgets count tokens in and out together.
    fn from(usage: Usage) -> Self {
        overseer_budget::Spend::new(usage.total_tokens(), usage.cost_micros)
    }
}

/// Spend as the journal records it with a step.
impl From<Usage> for overseer_journal::Spent {
    fn from(usage: Usage) -> Self {
        Self {
            input_tokens: usage.input_tokens,
            output_tokens: usage.output_tokens,
            cost_micros: usage.cost_micros,
        }
    }
}

/// A step's journaled spend as usage.
impl From<overseer_journal::Spent> for Usage {
    fn from(spent: overseer_journal::Spent) -> Self {
        Usage::new(spent.input_tokens, spent.output_tokens, spent.cost_micros)
    }
}

/// An output and what producing it cost (see [`AgentRef::ask_metered`](crate::AgentRef::ask_metered)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metered<O> {
    /// The output.
    pub output: O,
    /// The usage the handler reported for it (its model calls).
    pub usage: Usage,
}
