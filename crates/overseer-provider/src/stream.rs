//! Server-sent events of a streamed chat completion: the byte stream cut into events, and the
//! events' deltas accumulated into one answer. Pure: the client feeds it bytes.

use overseer_agent::{FinishReason, ModelResponse, ToolCall, Usage};
use serde::Deserialize;

use crate::wire::WireUsage;

/// Cuts a byte stream into server-sent events' data, per the HTML living standard's event
/// stream format: `data:` lines (one optional space after the colon) joined by newlines, an
/// empty line ending the event, `:` comments and other fields ignored, `\n`, `\r\n` or `\r`
/// line ends. Bytes may be split anywhere, even inside a UTF-8 character.
#[derive(Debug, Default)]
pub struct SseDecoder {
    line: Vec<u8>,
    data: Option<String>,
    after_cr: bool,
}

impl SseDecoder {
    /// A decoder at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds `bytes`; returns the data of each event they complete, in order.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut events = Vec::new();
        for &byte in bytes {
            let after_cr = std::mem::replace(&mut self.after_cr, byte == b'\r');
            match byte {
                b'\n' if after_cr => {}
                b'\n' | b'\r' => self.end_line(&mut events),
                _ => self.line.push(byte),
            }
        }
        events
    }

    fn end_line(&mut self, events: &mut Vec<String>) {
        let line = String::from_utf8_lossy(&self.line).into_owned();
        self.line.clear();
        if line.is_empty() {
            events.extend(self.data.take());
            return;
        }
        let (field, value) = line.split_once(':').unwrap_or((line.as_str(), ""));
        if field == "data" {
            let value = value.strip_prefix(' ').unwrap_or(value);
            match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            }
        }
    }
}

#[derive(Debug, Deserialize)]
struct Chunk {
    #[serde(default)]
    model: String,
    #[serde(default)]
    choices: Vec<ChunkChoice>,
    usage: Option<WireUsage>,
    error: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct ChunkChoice {
    #[serde(default)]
    delta: Delta,
    finish_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Delta {
    content: Option<String>,
    #[serde(default)]
    tool_calls: Vec<ToolCallDelta>,
}

#[derive(Debug, Deserialize)]
struct ToolCallDelta {
    #[serde(default)]
    index: usize,
    id: Option<String>,
    function: Option<FunctionDelta>,
}

#[derive(Debug, Deserialize)]
struct FunctionDelta {
    name: Option<String>,
    arguments: Option<String>,
}

/// A streamed answer so far: its text, tool calls (their names and argument fragments joined
/// by index), finish reason, model and usage.
#[derive(Debug, Default)]
pub struct StreamAnswer {
    text: String,
    calls: Vec<ToolCall>,
    finish: Option<FinishReason>,
    model: String,
    usage: Option<Usage>,
    done: bool,
}

/// What one event did to a [`StreamAnswer`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Applied {
    /// It added this text (maybe empty: a role, a tool-call fragment, a finish reason).
    Text(String),
    /// It was the usage chunk.
    Usage,
    /// It was `[DONE]`: the stream is over.
    Done,
}

impl StreamAnswer {
    /// An answer with nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies one event's data.
    ///
    /// # Errors
    ///
    /// The event's text when it is not a chunk, or the server's message when it is an error
    /// event.
    pub fn apply(&mut self, data: &str) -> Result<Applied, String> {
        if data.trim() == "[DONE]" {
            self.done = true;
            return Ok(Applied::Done);
        }
        let chunk: Chunk = serde_json::from_str(data)
            .map_err(|error| format!("not a chunk ({error}): {data:.200}"))?;
        if let Some(error) = chunk.error {
            let message = error.get("message").and_then(|m| m.as_str());
            return Err(format!(
                "error event: {}",
                message.unwrap_or("(no message)")
            ));
        }
        if !chunk.model.is_empty() {
            self.model = chunk.model;
        }
        if let Some(usage) = chunk.usage {
            self.usage = Some(usage.usage());
            if chunk.choices.is_empty() {
                return Ok(Applied::Usage);
            }
        }
        let mut added = String::new();
        for choice in chunk.choices {
            if let Some(reason) = choice.finish_reason {
                self.finish = Some(FinishReason::from_wire(&reason));
            }
            if let Some(content) = choice.delta.content {
                added.push_str(&content);
            }
            choice
                .delta
                .tool_calls
                .into_iter()
                .for_each(|call| self.add_call(call));
        }
        self.text.push_str(&added);
        Ok(Applied::Text(added))
    }

    fn add_call(&mut self, delta: ToolCallDelta) {
        if delta.index >= self.calls.len() {
            self.calls
                .resize_with(delta.index + 1, || ToolCall::new("", "", ""));
        }
        let call = &mut self.calls[delta.index];
        if let Some(id) = delta.id {
            call.id = id;
        }
        if let Some(function) = delta.function {
            call.name.push_str(function.name.as_deref().unwrap_or(""));
            call.arguments
                .push_str(function.arguments.as_deref().unwrap_or(""));
        }
    }

    /// Whether `[DONE]` has come.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Whether anything has come (after which a failure is replay-unsafe).
    pub fn has_started(&self) -> bool {
        !self.text.is_empty() || !self.calls.is_empty() || self.finish.is_some() || self.done
    }

    /// The model the stream named (empty when it did not).
    pub fn model(&self) -> &str {
        &self.model
    }

    /// The usage the stream reported, unpriced, if its usage chunk has come.
    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }

    /// The answer, with `usage` (priced by the caller).
    pub fn into_response(self, usage: Usage) -> ModelResponse {
        ModelResponse::new(self.text, usage)
            .with_tool_calls(self.calls)
            .with_finish_reason(self.finish.unwrap_or_default())
            .with_model(self.model)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_survive_any_split_and_any_line_end() {
        let stream = b"data: {\"a\":1}\r\n\r\n: keep-alive\n\nevent: x\ndata: one\ndata:two\n\ndata: [DONE]\r\r";
        let whole = SseDecoder::new().push(stream);
        assert_eq!(whole, ["{\"a\":1}", "one\ntwo", "[DONE]"]);
        for cut in 0..stream.len() {
            let mut decoder = SseDecoder::new();
            let mut events = decoder.push(&stream[..cut]);
            events.extend(decoder.push(&stream[cut..]));
            assert_eq!(events, whole, "cut at {cut}");
        }
    }

    #[test]
    fn an_event_without_its_empty_line_is_not_dispatched() {
        assert!(SseDecoder::new().push(b"data: {\"partial\"").is_empty());
    }

    #[test]
    fn deltas_accumulate_text_tool_calls_reason_and_usage() {
        let mut answer = StreamAnswer::new();
        let events = [
            r#"{"model":"m1","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}],"usage":null}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"Hel"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"lo","tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"wea","arguments":"{\"ci"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"name":"ther","arguments":"ty\":1}"}}]},"finish_reason":"tool_calls"}]}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":3,"prompt_tokens_details":{"cached_tokens":2}}}"#,
            "[DONE]",
        ];
        let applied: Vec<Applied> = events.iter().map(|e| answer.apply(e).unwrap()).collect();
        assert_eq!(applied[1], Applied::Text("Hel".into()));
        assert_eq!(applied[4], Applied::Usage);
        assert_eq!(applied[5], Applied::Done);
        let usage = answer.usage().unwrap();
        assert_eq!(usage, Usage::new(5, 3, 0).with_cached_input_tokens(2));
        let response = answer.into_response(usage);
        assert_eq!(response.text, "Hello");
        assert_eq!(response.model, "m1");
        assert_eq!(response.finish_reason, FinishReason::ToolCalls);
        assert_eq!(
            response.tool_calls,
            [ToolCall::new("c1", "weather", "{\"city\":1}")]
        );
    }

    #[test]
    fn an_error_event_or_garbage_is_an_error() {
        let mut answer = StreamAnswer::new();
        let error = answer
            .apply(r#"{"error":{"message":"overloaded"}}"#)
            .unwrap_err();
        assert!(error.contains("overloaded"), "{error}");
        assert!(answer.apply("{not json").is_err());
    }
}
