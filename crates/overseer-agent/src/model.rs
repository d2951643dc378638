//! A small model-client trait and a scripted model for examples and tests (no network).

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::usage::Usage;

/// A request to a language model.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ModelRequest {
    /// Instructions.
    pub system: Option<String>,
    /// The prompt.
    pub prompt: String,
    /// The most tokens the answer may have.
    pub max_tokens: u32,
}

impl ModelRequest {
    /// A request with this prompt and a 1,024-token answer limit.
    pub fn new(prompt: impl Into<String>) -> Self {
        Self {
            system: None,
            prompt: prompt.into(),
            max_tokens: 1024,
        }
    }

    /// With these instructions.
    pub fn system(mut self, instructions: impl Into<String>) -> Self {
        self.system = Some(instructions.into());
        self
    }

    /// With this limit on the answer's tokens.
    pub fn max_tokens(mut self, max_tokens: u32) -> Self {
        self.max_tokens = max_tokens;
        self
    }
}

/// A model's answer (journaled as the result of a model step: see
/// [`AgentContext::model`](crate::AgentContext::model)).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct ModelResponse {
    /// The text.
    pub text: String,
    /// What it cost.
    pub usage: Usage,
}

impl ModelResponse {
    /// An answer of `text` that cost `usage` (what a [`ModelClient`] returns).
    pub fn new(text: impl Into<String>, usage: Usage) -> Self {
        Self {
            text: text.into(),
            usage,
        }
    }
}

/// Why a model call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// The provider failed the request (a network error, a 5xx): a retry may pass.
    #[error("model error: {0}")]
    Provider(String),
    /// The provider asked to slow down (HTTP 429), for `retry_after` if it said.
    #[error("model rate limited: {message}")]
    RateLimited {
        /// What the provider said.
        message: String,
        /// The provider's `Retry-After`, if it sent one.
        retry_after: Option<std::time::Duration>,
    },
    /// The provider refused the request as it is (a bad request, a context too long, a
    /// refused key): the same request fails the same way.
    #[error("model rejected the request: {0}")]
    Rejected(String),
}

/// `Provider` is transient, `RateLimited` rate-limited, `Rejected` permanent.
impl overseer_retry::Classify for ModelError {
    fn class(&self) -> overseer_retry::ErrorClass {
        use overseer_retry::ErrorClass;
        match self {
            Self::Provider(_) => ErrorClass::Transient,
            Self::RateLimited { retry_after, .. } => ErrorClass::RateLimited {
                retry_after: *retry_after,
            },
            Self::Rejected(_) => ErrorClass::Permanent,
        }
    }
}

/// A model's failure as the handler's, with its class kept: `Provider` is a task failure,
/// `RateLimited` and `Rejected` the agent errors of the same class.
impl From<ModelError> for crate::AgentError {
    fn from(error: ModelError) -> Self {
        match error {
            ModelError::Provider(_) => Self::Failed(error.to_string()),
            ModelError::RateLimited {
                message,
                retry_after,
            } => Self::RateLimited {
                message,
                retry_after,
            },
            ModelError::Rejected(message) => Self::Permanent(message),
        }
    }
}

/// A language model client. Implement it for a real provider; [`ScriptedModel`] implements it
/// from rules, for examples and tests.
pub trait ModelClient: Send + Sync + 'static {
    /// Completes one request.
    fn complete(
        &self,
        request: ModelRequest,
    ) -> impl Future<Output = Result<ModelResponse, ModelError>> + Send;
}

type Rule = (
    String,
    Arc<dyn Fn(&str) -> Result<String, ModelError> + Send + Sync>,
);

/// A model that answers from rules: the first rule whose keyword the prompt contains answers,
/// else the canned replies are used in turn. Tokens are counted as whitespace-separated words;
/// cost is tokens times a price per token in micro-units.
///
/// ```
/// use overseer_agent::{ModelClient, ModelRequest, ScriptedModel};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let model = ScriptedModel::new()
///     .when("capital of France", |_| Ok("Paris".to_string()))
///     .replies(["I am not sure."])
///     .price_per_token(2);
/// let answer = model.complete(ModelRequest::new("What is the capital of France?")).await.unwrap();
/// assert_eq!(answer.text, "Paris");
/// assert_eq!(answer.usage.input_tokens, 6);
/// assert_eq!(answer.usage.cost_micros, 14);
/// # }
/// ```
#[derive(Clone, Default)]
pub struct ScriptedModel {
    rules: Vec<Rule>,
    replies: Vec<String>,
    next_reply: Arc<AtomicUsize>,
    calls: Arc<AtomicUsize>,
    price_per_token: u64,
}

impl ScriptedModel {
    /// A model with no rules that answers "ok".
    pub fn new() -> Self {
        Self::default()
    }

    /// When the prompt contains `keyword`, answer with `reply(prompt)`.
    pub fn when(
        mut self,
        keyword: impl Into<String>,
        reply: impl Fn(&str) -> Result<String, ModelError> + Send + Sync + 'static,
    ) -> Self {
        self.rules.push((keyword.into(), Arc::new(reply)));
        self
    }

    /// Canned replies used in turn when no rule matches.
    pub fn replies<S: Into<String>>(mut self, replies: impl IntoIterator<Item = S>) -> Self {
        self.replies.extend(replies.into_iter().map(Into::into));
        self
    }

    /// How many requests it has completed, over all its clones: what a test counts to see which
    /// model calls a replay made again.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::Relaxed)
    }

    /// The price of one token, in micro-units.
    pub fn price_per_token(mut self, micros: u64) -> Self {
        self.price_per_token = micros;
        self
    }

    fn answer(&self, prompt: &str) -> Result<String, ModelError> {
        if let Some((_, reply)) = self
            .rules
            .iter()
            .find(|(keyword, _)| prompt.contains(keyword))
        {
            return reply(prompt);
        }
        if self.replies.is_empty() {
            return Ok("ok".to_string());
        }
        let turn = self.next_reply.fetch_add(1, Ordering::Relaxed) % self.replies.len();
        Ok(self.replies[turn].clone())
    }
}

fn count_tokens(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

impl ModelClient for ScriptedModel {
    async fn complete(&self, request: ModelRequest) -> Result<ModelResponse, ModelError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let text = self.answer(&request.prompt)?;
        let words: Vec<&str> = text.split_whitespace().collect();
        let limit = request.max_tokens as usize;
        let text = if words.len() > limit {
            words[..limit].join(" ")
        } else {
            text
        };
        let input_tokens =
            count_tokens(&request.prompt) + request.system.as_deref().map_or(0, count_tokens);
        let output_tokens = count_tokens(&text);
        Ok(ModelResponse {
            text,
            usage: Usage::new(
                input_tokens,
                output_tokens,
                (input_tokens + output_tokens).saturating_mul(self.price_per_token),
            ),
        })
    }
}

impl fmt::Debug for ScriptedModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScriptedModel")
            .field(
                "rules",
                &self.rules.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field("replies", &self.replies)
            .field("price_per_token", &self.price_per_token)
            .finish()
    }
}
