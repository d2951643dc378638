//! The chat completions wire format (OpenAI's API reference, which vLLM, llama.cpp's server,
//! Ollama and LiteLLM's proxy serve): request bodies out, response bodies and stream chunks
//! in. Pure: no I/O.

use overseer_agent::{
    FinishReason, Message, ModelRequest, ModelResponse, ResponseFormat, Role, ToolCall, Usage,
};
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// Which request field carries the answer limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TokenLimitField {
    /// `max_tokens`: what every OpenAI-compatible server reads (the default).
    #[default]
    MaxTokens,
    /// `max_completion_tokens`: OpenAI's newer name, which its reasoning models require.
    MaxCompletionTokens,
}

/// The JSON body of a chat completions request for `model`.
pub fn request_body(
    request: &ModelRequest,
    model: &str,
    limit: TokenLimitField,
    stream: bool,
) -> Value {
    let mut body = Map::new();
    body.insert("model".into(), json!(model));
    let messages: Vec<Value> = request.conversation().iter().map(message).collect();
    body.insert("messages".into(), Value::Array(messages));
    let limit_name = match limit {
        TokenLimitField::MaxTokens => "max_tokens",
        TokenLimitField::MaxCompletionTokens => "max_completion_tokens",
    };
    body.insert(limit_name.into(), json!(request.max_tokens));
    if let Some(temperature) = request.temperature {
        body.insert("temperature".into(), json!(temperature.get()));
    }
    if let Some(format) = response_format(&request.response_format) {
        body.insert("response_format".into(), format);
    }
    if !request.tools.is_empty() {
        let tools = request.tools.iter().map(|tool| {
            json!({"type": "function", "function": {
                "name": tool.name, "description": tool.description, "parameters": tool.parameters,
            }})
        });
        body.insert("tools".into(), Value::Array(tools.collect()));
    }
    if stream {
        body.insert("stream".into(), json!(true));
        body.insert("stream_options".into(), json!({"include_usage": true}));
    }
    Value::Object(body)
}

fn message(message: &Message) -> Value {
    let role = match message.role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
        _ => "tool",
    };
    let mut out = Map::new();
    out.insert("role".into(), json!(role));
    let calls_only = message.content.is_empty() && !message.tool_calls.is_empty();
    let content = if calls_only {
        Value::Null
    } else {
        json!(message.content)
    };
    out.insert("content".into(), content);
    if !message.tool_calls.is_empty() {
        let calls = message.tool_calls.iter().map(|call| {
            json!({"id": call.id, "type": "function",
                   "function": {"name": call.name, "arguments": call.arguments}})
        });
        out.insert("tool_calls".into(), Value::Array(calls.collect()));
    }
    if let Some(id) = &message.tool_call_id {
        out.insert("tool_call_id".into(), json!(id));
    }
    Value::Object(out)
}

fn response_format(format: &ResponseFormat) -> Option<Value> {
    match format {
        ResponseFormat::JsonObject => Some(json!({"type": "json_object"})),
        ResponseFormat::JsonSchema {
            name,
            schema,
            strict,
        } => Some(json!({"type": "json_schema",
                         "json_schema": {"name": name, "schema": schema, "strict": strict}})),
        _ => None,
    }
}

/// `usage` as the API reports it.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub(crate) struct WireUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

impl WireUsage {
    /// As [`Usage`], unpriced.
    pub(crate) fn usage(&self) -> Usage {
        let cached = self
            .prompt_tokens_details
            .and_then(|details| details.cached_tokens)
            .unwrap_or(0);
        Usage::new(self.prompt_tokens, self.completion_tokens, 0).with_cached_input_tokens(cached)
    }
}

#[derive(Debug, Deserialize)]
struct Completion {
    #[serde(default)]
    model: String,
    choices: Vec<Choice>,
    usage: Option<WireUsage>,
}

#[derive(Debug, Deserialize)]
struct Choice {
    message: ChoiceMessage,
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ChoiceMessage {
    content: Option<String>,
    #[serde(default)]
    tool_calls: Vec<WireToolCall>,
    /// Some servers send a refusal instead of content.
    refusal: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WireToolCall {
    id: String,
    function: WireFunction,
}

#[derive(Debug, Deserialize)]
struct WireFunction {
    name: String,
    #[serde(default)]
    arguments: String,
}

/// What a non-streaming response says: the answer (unpriced usage) and whether the server
/// reported usage at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Parsed {
    pub(crate) response: ModelResponse,
    pub(crate) reported_usage: bool,
}

/// Parses a chat completion body; an error says what was wrong.
pub(crate) fn parse_completion(body: &[u8]) -> Result<Parsed, String> {
    let completion: Completion =
        serde_json::from_slice(body).map_err(|error| format!("not a chat completion: {error}"))?;
    let choice = completion
        .choices
        .into_iter()
        .next()
        .ok_or("a chat completion with no choices")?;
    let text = choice
        .message
        .content
        .or(choice.message.refusal)
        .unwrap_or_default();
    let calls = choice
        .message
        .tool_calls
        .into_iter()
        .map(|call| ToolCall::new(call.id, call.function.name, call.function.arguments));
    let finish = choice
        .finish_reason
        .as_deref()
        .map_or(FinishReason::Stop, FinishReason::from_wire);
    let usage = completion.usage.map(|usage| usage.usage());
    let response = ModelResponse::new(text, usage.unwrap_or_default())
        .with_tool_calls(calls)
        .with_finish_reason(finish)
        .with_model(completion.model);
    Ok(Parsed {
        response,
        reported_usage: usage.is_some(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use overseer_agent::ToolDefinition;

    #[test]
    fn a_request_body_has_every_field_of_the_reference() {
        let request = ModelRequest::new("Weather in Paris?")
            .system("Be brief.")
            .messages([])
            .max_tokens(64)
            .temperature(0.5)
            .response_format(ResponseFormat::JsonSchema {
                name: "w".into(),
                schema: json!({"type": "object"}),
                strict: true,
            })
            .tool(ToolDefinition::new(
                "weather",
                "Looks it up",
                json!({"type": "object"}),
            ));
        let body = request_body(&request, "m", TokenLimitField::MaxTokens, true);
        assert_eq!(
            body,
            json!({
                "model": "m",
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "Weather in Paris?"},
                ],
                "max_tokens": 64,
                "temperature": 0.5,
                "response_format": {"type": "json_schema",
                    "json_schema": {"name": "w", "schema": {"type": "object"}, "strict": true}},
                "tools": [{"type": "function", "function": {"name": "weather",
                    "description": "Looks it up", "parameters": {"type": "object"}}}],
                "stream": true,
                "stream_options": {"include_usage": true},
            })
        );
    }

    #[test]
    fn tool_messages_carry_their_calls_and_ids() {
        let request = ModelRequest::chat([
            Message::assistant_tool_calls([ToolCall::new("c1", "weather", "{}")]),
            Message::tool("c1", "sunny"),
        ]);
        let body = request_body(&request, "m", TokenLimitField::MaxCompletionTokens, false);
        assert_eq!(
            body["messages"],
            json!([
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "c1", "type": "function",
                     "function": {"name": "weather", "arguments": "{}"}}]},
                {"role": "tool", "content": "sunny", "tool_call_id": "c1"},
            ])
        );
        assert_eq!(body["max_completion_tokens"], 1024);
        assert!(body.get("stream").is_none());
    }

    #[test]
    fn a_completion_reads_text_calls_reason_and_cached_usage() {
        let body = br#"{"id":"x","object":"chat.completion","model":"gpt-4o-2024-08-06",
            "choices":[{"index":0,"message":{"role":"assistant","content":null,
              "tool_calls":[{"id":"c1","type":"function",
                "function":{"name":"weather","arguments":"{\"city\":\"Paris\"}"}}]},
              "finish_reason":"tool_calls"}],
            "usage":{"prompt_tokens":120,"completion_tokens":9,"total_tokens":129,
              "prompt_tokens_details":{"cached_tokens":100}}}"#;
        let parsed = parse_completion(body).unwrap();
        let response = parsed.response;
        assert!(parsed.reported_usage);
        assert_eq!(response.text, "");
        assert_eq!(response.finish_reason, FinishReason::ToolCalls);
        assert_eq!(response.model, "gpt-4o-2024-08-06");
        assert_eq!(
            response.tool_calls,
            [ToolCall::new("c1", "weather", r#"{"city":"Paris"}"#)]
        );
        assert_eq!(
            response.usage,
            Usage::new(120, 9, 0).with_cached_input_tokens(100)
        );
    }

    #[test]
    fn a_body_cut_short_or_without_choices_is_an_error() {
        assert!(parse_completion(br#"{"choices":[{"message":{"content":"hi"#).is_err());
        assert!(parse_completion(br#"{"choices":[]}"#).is_err());
        assert!(parse_completion(b"").is_err());
    }
}
