//! Prices per model, turning token counts into the micro-units budgets count.

use std::collections::HashMap;

use overseer_agent::{ModelRequest, Usage};

/// A model's prices, in micro-units of a currency per million tokens (so $2.50 per million
/// input tokens is `2_500_000`). Cached input tokens are priced apart from the rest of the
/// input.
///
/// ```
/// use overseer_agent::Usage;
/// use overseer_provider::Price;
/// // $2.50 / $1.25 / $10.00 per million tokens
/// let price = Price::per_million(2_500_000, 1_250_000, 10_000_000);
/// let usage = Usage::new(1_000, 200, 0).with_cached_input_tokens(800);
/// // 200 x 2.5 + 800 x 1.25 + 200 x 10 = 500 + 1_000 + 2_000
/// assert_eq!(price.cost(&usage), 3_500);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub struct Price {
    /// Per million input tokens not read from the cache.
    pub input_per_million: u64,
    /// Per million input tokens read from the provider's prompt cache.
    pub cached_input_per_million: u64,
    /// Per million output tokens.
    pub output_per_million: u64,
}

impl Price {
    /// Prices of input, cached input and output tokens, per million tokens.
    pub const fn per_million(input: u64, cached_input: u64, output: u64) -> Self {
        Self {
            input_per_million: input,
            cached_input_per_million: cached_input,
            output_per_million: output,
        }
    }

    /// What `usage`'s tokens cost, rounded up to a whole micro-unit (a budget never
    /// undercounts). Cached tokens beyond the input count are taken as the input count.
    pub fn cost(&self, usage: &Usage) -> u64 {
        let cached = usage.cached_input_tokens.min(usage.input_tokens);
        let parts = [
            (usage.input_tokens - cached, self.input_per_million),
            (cached, self.cached_input_per_million),
            (usage.output_tokens, self.output_per_million),
        ];
        let total: u128 = parts
            .iter()
            .map(|&(tokens, price)| u128::from(tokens) * u128::from(price))
            .fold(0, u128::saturating_add);
        u64::try_from(total.div_ceil(1_000_000)).unwrap_or(u64::MAX)
    }

    /// `usage` with its `cost_micros` set to [`cost`](Self::cost).
    pub fn priced(&self, usage: Usage) -> Usage {
        let mut priced = usage;
        priced.cost_micros = self.cost(&usage);
        priced
    }
}

/// Prices by model name, with a fallback for models it does not list.
///
/// ```
/// use overseer_provider::{Price, PriceTable};
/// let table = PriceTable::new()
///     .model("gpt-4o", Price::per_million(2_500_000, 1_250_000, 10_000_000))
///     .fallback(Price::per_million(10_000_000, 10_000_000, 30_000_000));
/// assert_eq!(table.get("gpt-4o").output_per_million, 10_000_000);
/// assert_eq!(table.get("another").output_per_million, 30_000_000);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PriceTable {
    models: HashMap<String, Price>,
    fallback: Price,
}

impl PriceTable {
    /// An empty table: every model is free until priced (set a [`fallback`](Self::fallback)
    /// so that a budget never sees a model as free).
    pub fn new() -> Self {
        Self::default()
    }

    /// With `price` for `model`.
    pub fn model(mut self, model: impl Into<String>, price: Price) -> Self {
        self.models.insert(model.into(), price);
        self
    }

    /// With `price` for the models not listed.
    pub fn fallback(mut self, price: Price) -> Self {
        self.fallback = price;
        self
    }

    /// The price of `model`: its own, else the longest listed name it begins with (so a dated
    /// `gpt-4o-2024-08-06` a provider answers with takes `gpt-4o`'s), else the fallback.
    pub fn get(&self, model: &str) -> Price {
        if let Some(price) = self.models.get(model) {
            return *price;
        }
        self.models
            .iter()
            .filter(|(name, _)| model.starts_with(name.as_str()))
            .max_by_key(|(name, _)| name.len())
            .map_or(self.fallback, |(_, price)| *price)
    }
}

/// The tokens `request` may use at most, unpriced: its text (the messages, tool calls and tool
/// definitions) at one token per four characters, rounded up, plus four per message for the
/// chat format, as input; its `max_tokens` as output. Deliberately simple (no tokenizer): it
/// is a reservation, corrected by the provider's reported usage.
pub fn estimate_tokens(request: &ModelRequest) -> Usage {
    let conversation = request.conversation();
    let message_chars: usize = conversation
        .iter()
        .map(|message| {
            message.content.chars().count()
                + message
                    .tool_calls
                    .iter()
                    .map(|call| call.name.len() + call.arguments.chars().count())
                    .sum::<usize>()
        })
        .sum();
    let tool_chars: usize = request
        .tools
        .iter()
        .map(|tool| {
            tool.name.len() + tool.description.chars().count() + tool.parameters.to_string().len()
        })
        .sum();
    let chars = (message_chars + tool_chars) as u64;
    let input = chars.div_ceil(4) + 4 * conversation.len() as u64;
    Usage::new(input, u64::from(request.max_tokens), 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_rounds_up_and_never_overflows() {
        let price = Price::per_million(1, 0, 0);
        assert_eq!(price.cost(&Usage::new(1, 0, 0)), 1);
        assert_eq!(price.cost(&Usage::new(0, 0, 0)), 0);
        let dear = Price::per_million(u64::MAX, u64::MAX, u64::MAX);
        assert_eq!(dear.cost(&Usage::new(u64::MAX, u64::MAX, 0)), u64::MAX);
    }

    #[test]
    fn cached_tokens_beyond_the_input_are_capped() {
        let price = Price::per_million(1_000_000, 0, 0);
        let usage = Usage::new(10, 0, 0).with_cached_input_tokens(50);
        assert_eq!(price.cost(&usage), 0);
    }

    #[test]
    fn an_estimate_counts_every_message_and_the_answer_limit() {
        let request = ModelRequest::new("12345678").system("1234").max_tokens(100);
        // 12 characters: 3 tokens, and 2 messages: 8
        assert_eq!(estimate_tokens(&request), Usage::new(11, 100, 0));
    }

    #[test]
    fn the_longest_prefix_prices_a_dated_model() {
        let table = PriceTable::new()
            .model("gpt-4o", Price::per_million(1, 1, 1))
            .model("gpt-4o-mini", Price::per_million(2, 2, 2));
        assert_eq!(table.get("gpt-4o-mini-2024-07-18").input_per_million, 2);
        assert_eq!(table.get("gpt-4o-2024-08-06").input_per_million, 1);
        assert_eq!(table.get("llama").input_per_million, 0);
    }
}
