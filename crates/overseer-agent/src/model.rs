//! A small model-client trait and a scripted model for examples and tests (no network).

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::usage::Usage;

/// Who wrote a [`Message`] of a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Role {
    /// Instructions to the model.
    System,
    /// The user (or the calling program).
    User,
    /// The model itself (an earlier answer, maybe with tool calls).
    Assistant,
    /// A tool's result, answering one of the assistant's tool calls.
    Tool,
}

/// One message of a conversation sent to a model.
///
/// ```
/// use overseer_agent::{Message, Role, ToolCall};
/// let call = ToolCall::new("call_1", "weather", r#"{"city":"Paris"}"#);
/// let asked = Message::assistant_tool_calls([call]);
/// let answered = Message::tool("call_1", "sunny");
/// assert_eq!(asked.tool_calls[0].name, "weather");
/// assert_eq!(answered.role, Role::Tool);
/// assert_eq!(answered.tool_call_id.as_deref(), Some("call_1"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct Message {
    /// Who wrote it.
    pub role: Role,
    /// Its text (empty for an assistant message that only calls tools).
    pub content: String,
    /// The tools an assistant message calls.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// The call a tool message answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl Message {
    fn of(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }

    /// Instructions.
    pub fn system(content: impl Into<String>) -> Self {
        Self::of(Role::System, content)
    }

    /// A user's message.
    pub fn user(content: impl Into<String>) -> Self {
        Self::of(Role::User, content)
    }

    /// An earlier answer of the model.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::of(Role::Assistant, content)
    }

    /// An earlier answer of the model that called these tools.
    pub fn assistant_tool_calls(calls: impl IntoIterator<Item = ToolCall>) -> Self {
        Self {
            tool_calls: calls.into_iter().collect(),
            ..Self::of(Role::Assistant, "")
        }
    }

    /// The result of the tool call `tool_call_id`.
    pub fn tool(tool_call_id: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            tool_call_id: Some(tool_call_id.into()),
            ..Self::of(Role::Tool, content)
        }
    }
}

/// A tool the model may call: a function with a name, a description and JSON-schema
/// parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ToolDefinition {
    /// Its name, as the model's calls name it.
    pub name: String,
    /// What it does (the model reads this to choose it).
    pub description: String,
    /// The JSON schema of its arguments (an object schema).
    pub parameters: serde_json::Value,
}

impl ToolDefinition {
    /// The tool `name`, described by `description`, taking arguments of the JSON schema
    /// `parameters`.
    pub fn new(
        name: impl Into<String>,
        description: impl Into<String>,
        parameters: serde_json::Value,
    ) -> Self {
        Self {
            name: name.into(),
            description: description.into(),
            parameters,
        }
    }
}

/// A call of a tool in a model's answer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct ToolCall {
    /// The call's id, which the tool's answer ([`Message::tool`]) names.
    pub id: String,
    /// The tool's name.
    pub name: String,
    /// The arguments, a JSON text as the model wrote it (it may not parse: check it).
    pub arguments: String,
}

impl ToolCall {
    /// The call `id` of tool `name` with the JSON text `arguments`.
    pub fn new(
        id: impl Into<String>,
        name: impl Into<String>,
        arguments: impl Into<String>,
    ) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            arguments: arguments.into(),
        }
    }
}

/// What form the answer must take.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ResponseFormat {
    /// Free text (the default).
    #[default]
    Text,
    /// Any JSON object ("JSON mode").
    JsonObject,
    /// JSON matching a schema ("structured outputs").
    JsonSchema {
        /// The schema's name.
        name: String,
        /// The JSON schema.
        schema: serde_json::Value,
        /// Whether the provider must follow the schema exactly.
        strict: bool,
    },
}

/// A sampling temperature, between 0 and 2 (compared by value, so requests stay `Eq`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Temperature(f32);

impl Temperature {
    /// `value`, clamped to 0..=2; `None` when it is not a number.
    pub fn new(value: f32) -> Option<Self> {
        (!value.is_nan()).then(|| Self(value.clamp(0.0, 2.0)))
    }

    /// Its value.
    pub fn get(self) -> f32 {
        self.0
    }
}

/// Never NaN (see [`Temperature::new`]), so equality is an equivalence.
impl Eq for Temperature {}

/// A request to a language model: instructions ([`system`](Self::system)), the conversation so
/// far ([`messages`](Self::messages)), then the prompt (a last user message, when not empty).
///
/// ```
/// use overseer_agent::{Message, ModelRequest, ResponseFormat, Role};
/// let request = ModelRequest::new("And in Spain?")
///     .system("Answer in one word.")
///     .messages([Message::user("Capital of France?"), Message::assistant("Paris")])
///     .temperature(0.2)
///     .response_format(ResponseFormat::JsonObject);
/// let roles: Vec<Role> = request.conversation().iter().map(|m| m.role).collect();
/// assert_eq!(roles, [Role::System, Role::User, Role::Assistant, Role::User]);
/// assert_eq!(request.last_user_text(), "And in Spain?");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ModelRequest {
    /// Instructions.
    pub system: Option<String>,
    /// The prompt.
    pub prompt: String,
    /// The most tokens the answer may have.
    pub max_tokens: u32,
    /// The conversation before the prompt.
    pub messages: Vec<Message>,
    /// The sampling temperature, if not the provider's default.
    pub temperature: Option<Temperature>,
    /// What form the answer must take.
    pub response_format: ResponseFormat,
    /// The tools the model may call.
    pub tools: Vec<ToolDefinition>,
    /// The longest the call may take (the time left to the caller's deadline, say): a client
    /// gives up after the shorter of this and its own timeout.
    pub timeout: Option<std::time::Duration>,
}

impl ModelRequest {
    /// A request with this prompt and a 1,024-token answer limit.
    pub fn new(prompt: impl Into<String>) -> Self {
        Self {
            prompt: prompt.into(),
            max_tokens: 1024,
            ..Self::default()
        }
    }

    /// A request of this conversation (no separate prompt) and a 1,024-token answer limit.
    pub fn chat(messages: impl IntoIterator<Item = Message>) -> Self {
        Self::new("").messages(messages)
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

    /// With these messages added to the conversation before the prompt.
    pub fn messages(mut self, messages: impl IntoIterator<Item = Message>) -> Self {
        self.messages.extend(messages);
        self
    }

    /// With this sampling temperature (clamped to 0..=2; NaN leaves the provider's default).
    pub fn temperature(mut self, temperature: f32) -> Self {
        self.temperature = Temperature::new(temperature);
        self
    }

    /// With this form of answer.
    pub fn response_format(mut self, format: ResponseFormat) -> Self {
        self.response_format = format;
        self
    }

    /// With this tool added to those the model may call.
    pub fn tool(mut self, tool: ToolDefinition) -> Self {
        self.tools.push(tool);
        self
    }

    /// Giving up after `timeout` at most.
    pub fn timeout(mut self, timeout: std::time::Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The whole conversation as a provider receives it: the instructions, the messages, then
    /// the prompt as a user message when it is not empty.
    pub fn conversation(&self) -> Vec<Message> {
        let system = self.system.iter().map(Message::system);
        let prompt = (!self.prompt.is_empty()).then(|| Message::user(self.prompt.as_str()));
        system
            .chain(self.messages.iter().cloned())
            .chain(prompt)
            .collect()
    }

    /// The prompt, or when it is empty the last user message's text (what
    /// [`ScriptedModel`]'s rules match).
    pub fn last_user_text(&self) -> &str {
        if !self.prompt.is_empty() {
            return &self.prompt;
        }
        self.messages
            .iter()
            .rev()
            .find(|message| message.role == Role::User)
            .map_or("", |message| message.content.as_str())
    }
}

/// Why a model stopped writing its answer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FinishReason {
    /// It finished (or hit a stop sequence).
    #[default]
    Stop,
    /// It reached `max_tokens` (the answer is cut).
    Length,
    /// It called tools (see [`ModelResponse::tool_calls`]).
    ToolCalls,
    /// The provider's content filter cut the answer.
    ContentFilter,
    /// Another reason, as the provider named it.
    Other(String),
}

impl FinishReason {
    /// Its OpenAI wire name (`stop`, `length`, `tool_calls`, `content_filter`, or the
    /// provider's own), as `gen_ai.response.finish_reasons` holds it.
    pub fn as_wire(&self) -> &str {
        match self {
            Self::Stop => "stop",
            Self::Length => "length",
            Self::ToolCalls => "tool_calls",
            Self::ContentFilter => "content_filter",
            Self::Other(name) => name,
        }
    }

    /// The reason of the OpenAI wire name `name` (`stop`, `length`, `tool_calls`,
    /// `content_filter`; the older `function_call` counts as `tool_calls`).
    pub fn from_wire(name: &str) -> Self {
        match name {
            "stop" => Self::Stop,
            "length" => Self::Length,
            "tool_calls" | "function_call" => Self::ToolCalls,
            "content_filter" => Self::ContentFilter,
            other => Self::Other(other.to_string()),
        }
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
    /// The tools the model called.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// Why it stopped.
    #[serde(default)]
    pub finish_reason: FinishReason,
    /// The model that answered, as the provider named it (empty when it did not say).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub model: String,
}

impl ModelResponse {
    /// An answer of `text` that cost `usage` (what a [`ModelClient`] returns).
    pub fn new(text: impl Into<String>, usage: Usage) -> Self {
        Self {
            text: text.into(),
            usage,
            tool_calls: Vec::new(),
            finish_reason: FinishReason::Stop,
            model: String::new(),
        }
    }

    /// With these tool calls.
    pub fn with_tool_calls(mut self, calls: impl IntoIterator<Item = ToolCall>) -> Self {
        self.tool_calls.extend(calls);
        self
    }

    /// With this finish reason.
    pub fn with_finish_reason(mut self, reason: FinishReason) -> Self {
        self.finish_reason = reason;
        self
    }

    /// With the name of the model that answered.
    pub fn with_model(mut self, model: impl Into<String>) -> Self {
        self.model = model.into();
        self
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
    /// The provider processed the request but its answer was lost or unreadable (a malformed
    /// body, a stream cut before its usage): it was probably billed, so a retry pays again.
    /// `spent` is what the call is taken to have cost (the request's estimate when the provider
    /// never said), for the caller to report.
    #[error("model answer lost after the request was processed: {message}")]
    ReplayUnsafe {
        /// What went wrong.
        message: String,
        /// What the call is taken to have cost.
        spent: Usage,
    },
}

impl ModelError {
    /// What the failed call is taken to have cost: `spent` for
    /// [`ReplayUnsafe`](Self::ReplayUnsafe), nothing for the others (the provider refused or
    /// never answered).
    pub fn spent(&self) -> Usage {
        match self {
            Self::ReplayUnsafe { spent, .. } => *spent,
            _ => Usage::default(),
        }
    }
}

/// `Provider` is transient, `RateLimited` rate-limited, `Rejected` permanent, `ReplayUnsafe`
/// replay-unsafe.
impl overseer_retry::Classify for ModelError {
    fn class(&self) -> overseer_retry::ErrorClass {
        use overseer_retry::ErrorClass;
        match self {
            Self::Provider(_) => ErrorClass::Transient,
            Self::RateLimited { retry_after, .. } => ErrorClass::RateLimited {
                retry_after: *retry_after,
            },
            Self::Rejected(_) => ErrorClass::Permanent,
            Self::ReplayUnsafe { .. } => ErrorClass::ReplayUnsafe,
        }
    }
}

/// A model's failure as the handler's, with its class kept: `Provider` is a task failure,
/// `RateLimited`, `Rejected` (permanent) and `ReplayUnsafe` the agent errors of the same class.
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
            ModelError::ReplayUnsafe { .. } => Self::ReplayUnsafe(error.to_string()),
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

    /// What `request` may cost at most, priced, for a budget to reserve before sending it;
    /// `None` (the default) when the client cannot say.
    fn estimate(&self, request: &ModelRequest) -> Option<Usage> {
        let _ = request;
        None
    }

    /// The model this client asks for (`gpt-4o-mini`), when it has one:
    /// [`AgentContext::model`](crate::AgentContext::model) records it as the ask's model and as
    /// `gen_ai.request.model`. `None` (the default) when the client cannot say (a router, which
    /// picks a deployment per call): the name the provider answered with is used instead.
    fn model_name(&self) -> Option<&str> {
        None
    }
}

type Rule = (
    String,
    Arc<dyn Fn(&str) -> Result<String, ModelError> + Send + Sync>,
);

/// A model that answers from rules: the first rule whose keyword the prompt (or, for a
/// [`ModelRequest::chat`], the last user message) contains answers,
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
    model: Option<String>,
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

    /// Named `model` ([`ModelClient::model_name`]), as a real client names the model it asks
    /// for; unnamed by default.
    pub fn model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
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
        let text = self.answer(request.last_user_text())?;
        let words: Vec<&str> = text.split_whitespace().collect();
        let limit = request.max_tokens as usize;
        let cut = words.len() > limit;
        let text = if cut { words[..limit].join(" ") } else { text };
        let input_tokens = request
            .conversation()
            .iter()
            .map(|message| count_tokens(&message.content))
            .sum::<u64>();
        let output_tokens = count_tokens(&text);
        let cost = (input_tokens + output_tokens).saturating_mul(self.price_per_token);
        let finish = if cut {
            FinishReason::Length
        } else {
            FinishReason::Stop
        };
        Ok(
            ModelResponse::new(text, Usage::new(input_tokens, output_tokens, cost))
                .with_finish_reason(finish),
        )
    }

    fn model_name(&self) -> Option<&str> {
        self.model.as_deref()
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
            .field("model", &self.model)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn scripted_rules_match_the_last_user_message_of_a_chat() {
        let model = ScriptedModel::new().when("Spain", |_| Ok("Madrid".to_string()));
        let request = ModelRequest::chat([
            Message::user("Capital of Spain?"),
            Message::assistant("Madrid"),
            Message::user("And of France?"),
        ]);
        assert_eq!(request.last_user_text(), "And of France?");
        let answer = model.complete(request).await.unwrap();
        assert_eq!(answer.text, "ok", "the earlier user message must not match");
        let answer = model
            .complete(ModelRequest::chat([Message::user("Spain, please")]))
            .await
            .unwrap();
        assert_eq!(answer.text, "Madrid");
    }

    #[tokio::test]
    async fn scripted_counts_every_message_and_marks_a_cut_answer() {
        let model = ScriptedModel::new().replies(["one two three"]);
        let request = ModelRequest::new("a b")
            .system("c")
            .messages([Message::user("d e f")])
            .max_tokens(2);
        let answer = model.complete(request).await.unwrap();
        assert_eq!(answer.usage.input_tokens, 6);
        assert_eq!(answer.text, "one two");
        assert_eq!(answer.finish_reason, FinishReason::Length);
    }

    #[test]
    fn a_temperature_is_clamped_and_nan_is_none() {
        assert_eq!(Temperature::new(3.0).map(Temperature::get), Some(2.0));
        assert_eq!(Temperature::new(-1.0).map(Temperature::get), Some(0.0));
        assert_eq!(Temperature::new(f32::NAN), None);
    }

    #[test]
    fn a_replay_unsafe_error_keeps_its_class_and_its_spend() {
        use overseer_retry::{Classify, ErrorClass};
        let error = ModelError::ReplayUnsafe {
            message: "stream cut".into(),
            spent: Usage::new(10, 20, 30),
        };
        assert_eq!(error.class(), ErrorClass::ReplayUnsafe);
        assert_eq!(error.spent(), Usage::new(10, 20, 30));
        assert!(ModelError::Provider("x".into()).spent().is_zero());
        assert_eq!(
            crate::AgentError::from(error).class(),
            ErrorClass::ReplayUnsafe
        );
    }

    #[test]
    fn a_response_journaled_before_these_fields_still_reads() {
        let old = r#"{"text":"hi","usage":{"input_tokens":1,"output_tokens":2,"cost_micros":3}}"#;
        let response: ModelResponse = serde_json::from_str(old).unwrap();
        assert_eq!(response, ModelResponse::new("hi", Usage::new(1, 2, 3)));
    }
}
