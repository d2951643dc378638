//! One model call of a handler, as its ask's event reports it, and the call's tracing span with
//! the OpenTelemetry GenAI attributes.

use std::borrow::Cow;

use overseer_retry::{Classify, ErrorClass};
use serde::{Deserialize, Serialize};

use crate::model::{FinishReason, ModelError, ModelResponse};
use crate::name::AgentName;
use crate::usage::Usage;

/// One call of a model made through [`AgentContext::model`](crate::AgentContext::model), in
/// its ask's event ([`AskEvent::model_calls`](crate::AskEvent::model_calls)): the metrics
/// `overseer_model_calls_total` and `overseer_model_tokens_total` count these. A call replayed
/// from the journal made no call, and is not listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ModelCall {
    /// The model asked for ([`ModelClient::model_name`](crate::ModelClient::model_name)), else
    /// the one the provider said answered; empty when neither is known.
    pub model: String,
    /// `ok`, or the failure's class ([`class_label`]: `transient`, `rate_limited`,
    /// `permanent`, `replay_unsafe`, ...).
    pub outcome: Cow<'static, str>,
    /// Why the model stopped, when it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<FinishReason>,
    /// What the call cost: the answer's usage, or what a replay-unsafe failure is taken to
    /// have spent.
    pub usage: Usage,
}

impl ModelCall {
    /// A call of `model` that ended with `outcome` (`ok` or a [`class_label`]) and cost
    /// `usage`, with no finish reason: calls are recorded by the context; this is for testing
    /// what consumes them.
    pub fn new(
        model: impl Into<String>,
        outcome: impl Into<Cow<'static, str>>,
        usage: Usage,
    ) -> Self {
        Self {
            model: model.into(),
            outcome: outcome.into(),
            finish_reason: None,
            usage,
        }
    }

    /// With this finish reason.
    pub fn with_finish_reason(mut self, reason: FinishReason) -> Self {
        self.finish_reason = Some(reason);
        self
    }
}

/// A short, stable name of an error class, for metric labels and `error.type`:
///
/// | class | label |
/// |---|---|
/// | transient | `transient` |
/// | rate-limited | `rate_limited` |
/// | invalid output | `invalid_output` |
/// | permanent | `permanent` |
/// | replay-unsafe | `replay_unsafe` |
/// | cancelled | `cancelled` |
/// | budget exhausted | `budget_exhausted` |
pub fn class_label(class: ErrorClass) -> &'static str {
    match class {
        ErrorClass::Transient => "transient",
        ErrorClass::RateLimited { .. } => "rate_limited",
        ErrorClass::InvalidOutput => "invalid_output",
        ErrorClass::Permanent => "permanent",
        ErrorClass::ReplayUnsafe => "replay_unsafe",
        ErrorClass::Cancelled => "cancelled",
        ErrorClass::BudgetExhausted => "budget_exhausted",
        _ => "other",
    }
}

/// The span of one model call, named `chat` (`otel.name` = `chat {model}`), with the GenAI
/// semantic conventions' attributes; the response's are recorded by [`record_outcome`].
pub(crate) fn span(agent: &AgentName, requested: Option<&str>) -> tracing::Span {
    let span = tracing::info_span!(
        "chat",
        otel.name = tracing::field::Empty,
        agent = %agent,
        gen_ai.operation.name = "chat",
        gen_ai.request.model = tracing::field::Empty,
        gen_ai.response.model = tracing::field::Empty,
        gen_ai.response.finish_reasons = tracing::field::Empty,
        gen_ai.usage.input_tokens = tracing::field::Empty,
        gen_ai.usage.output_tokens = tracing::field::Empty,
        gen_ai.usage.cache_read.input_tokens = tracing::field::Empty,
        "error.type" = tracing::field::Empty,
    );
    if !span.is_disabled() {
        if let Some(model) = requested {
            span.record("gen_ai.request.model", model);
            span.record("otel.name", format!("chat {model}"));
        } else {
            span.record("otel.name", "chat");
        }
    }
    span
}

/// Records a call's outcome on its span, and makes its [`ModelCall`].
pub(crate) fn record_outcome(
    span: &tracing::Span,
    requested: Option<&str>,
    outcome: &Result<ModelResponse, ModelError>,
) -> ModelCall {
    let (answered, usage, outcome_label, finish) = match outcome {
        Ok(response) => (
            response.model.as_str(),
            response.usage,
            "ok",
            Some(&response.finish_reason),
        ),
        Err(error) => ("", error.spent(), class_label(error.class()), None),
    };
    if !span.is_disabled() {
        if !answered.is_empty() {
            span.record("gen_ai.response.model", answered);
        }
        if let Some(reason) = finish {
            span.record("gen_ai.response.finish_reasons", reason.as_wire());
        }
        span.record("gen_ai.usage.input_tokens", usage.input_tokens);
        span.record("gen_ai.usage.output_tokens", usage.output_tokens);
        span.record(
            "gen_ai.usage.cache_read.input_tokens",
            usage.cached_input_tokens,
        );
        if outcome_label != "ok" {
            span.record("error.type", outcome_label);
        }
    }
    let model = requested
        .filter(|name| !name.is_empty())
        .unwrap_or(answered);
    ModelCall {
        model: model.to_string(),
        outcome: Cow::Borrowed(outcome_label),
        finish_reason: finish.cloned(),
        usage,
    }
}
