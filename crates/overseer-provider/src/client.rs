//! The HTTP client: configuration, the request, the answer or a typed error. The decisions
//! (bodies, statuses, events, prices) are the pure functions of `wire`, `error`, `stream` and
//! `price`; this module only moves bytes and keeps time.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use overseer_agent::{ModelClient, ModelError, ModelRequest, ModelResponse, Usage};
use tokio::time::Instant;

use crate::error::{from_status, ProviderError};
use crate::price::{estimate_tokens, PriceTable};
use crate::stream::{Applied, SseDecoder, StreamAnswer};
use crate::wire::{parse_completion, request_body, TokenLimitField};

/// Where [`OpenAiCompatible::from_env`] sends requests when `OPENAI_BASE_URL` is not set.
pub const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";

/// A client of any server of OpenAI's chat completions API (OpenAI, vLLM, llama.cpp's server,
/// Ollama, LiteLLM's proxy, most hosted providers), for one model. Cheap to clone (one
/// connection pool).
///
/// - **Time**: a connect timeout, and a request timeout covering the whole call (sending,
///   waiting, reading the body or the stream), shortened to the request's own
///   [`timeout`](ModelRequest::timeout) (the time left to the caller's deadline).
/// - **Errors**: typed, each with its retry class ([`ProviderError`]).
/// - **Usage**: the provider's, cached prompt tokens apart, priced by the client's
///   [`PriceTable`]; [`estimate`](Self::estimate) prices a request before it is sent, for a
///   budget's reservation, and is what a call that was processed but whose usage was lost is
///   taken to have cost.
///
/// ```no_run
/// use overseer_agent::{ModelClient, ModelRequest};
/// use overseer_provider::{OpenAiCompatible, Price, PriceTable};
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let client = OpenAiCompatible::builder("http://localhost:11434/v1", "llama3.2")
///     .prices(PriceTable::new().fallback(Price::per_million(100_000, 50_000, 400_000)))
///     .build()?;
/// let answer = client.complete(ModelRequest::new("Say hi").max_tokens(16)).await?;
/// println!("{} ({} micro-units)", answer.text, answer.usage.cost_micros);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct OpenAiCompatible {
    http: reqwest::Client,
    config: Arc<Config>,
}

struct Config {
    url: String,
    api_key: Option<String>,
    model: String,
    timeout: Duration,
    prices: PriceTable,
    limit_field: TokenLimitField,
}

/// Configures an [`OpenAiCompatible`] client (see [`OpenAiCompatible::builder`]).
#[derive(Clone)]
#[must_use]
pub struct OpenAiCompatibleBuilder {
    base_url: String,
    api_key: Option<String>,
    model: String,
    connect_timeout: Duration,
    timeout: Duration,
    prices: PriceTable,
    limit_field: TokenLimitField,
}

impl OpenAiCompatibleBuilder {
    /// With this key, sent as `Authorization: Bearer`.
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// The longest a connection may take to open (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The longest a whole call may take (default 600 s, as OpenAI's SDKs).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// With these prices (by default every model is free: set them for a budget to count).
    pub fn prices(mut self, prices: PriceTable) -> Self {
        self.prices = prices;
        self
    }

    /// Sends the answer limit as `max_completion_tokens` (OpenAI's reasoning models need it)
    /// rather than `max_tokens` (what every compatible server reads).
    pub fn max_completion_tokens(mut self) -> Self {
        self.limit_field = TokenLimitField::MaxCompletionTokens;
        self
    }

    /// The client.
    ///
    /// # Errors
    ///
    /// [`ProviderError::Config`] when the base URL is not `http://` or `https://`, or when the
    /// HTTP client cannot be built (an `https://` URL without the `rustls` feature is refused
    /// at the first call, by reqwest).
    pub fn build(self) -> Result<OpenAiCompatible, ProviderError> {
        let base = self.base_url.trim_end_matches('/');
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ProviderError::Config {
                message: format!("base URL {base:?} is not http:// or https://"),
            });
        }
        let http = reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .build()
            .map_err(|error| ProviderError::Config {
                message: format!("HTTP client: {}", chain(&error)),
            })?;
        let config = Config {
            url: format!("{base}/chat/completions"),
            api_key: self.api_key,
            model: self.model,
            timeout: self.timeout,
            prices: self.prices,
            limit_field: self.limit_field,
        };
        Ok(OpenAiCompatible {
            http,
            config: Arc::new(config),
        })
    }
}

impl OpenAiCompatible {
    /// A client of the server at `base_url` (the part before `/chat/completions`, such as
    /// `https://api.openai.com/v1` or `http://localhost:8000/v1`) for `model`.
    pub fn builder(
        base_url: impl Into<String>,
        model: impl Into<String>,
    ) -> OpenAiCompatibleBuilder {
        OpenAiCompatibleBuilder {
            base_url: base_url.into(),
            api_key: None,
            model: model.into(),
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(600),
            prices: PriceTable::new(),
            limit_field: TokenLimitField::MaxTokens,
        }
    }

    /// A builder for `model` configured by convention from `OPENAI_BASE_URL` (default
    /// [`OPENAI_BASE_URL`]) and `OPENAI_API_KEY` (none when unset: local servers need none).
    pub fn from_env(model: impl Into<String>) -> OpenAiCompatibleBuilder {
        Self::from_vars(|name| std::env::var(name).ok(), model)
    }

    /// [`from_env`](Self::from_env) reading variables through `var` (so it can be tested
    /// without touching the process's environment).
    pub fn from_vars(
        var: impl Fn(&str) -> Option<String>,
        model: impl Into<String>,
    ) -> OpenAiCompatibleBuilder {
        let base = var("OPENAI_BASE_URL").filter(|url| !url.is_empty());
        let mut builder = Self::builder(base.as_deref().unwrap_or(OPENAI_BASE_URL), model);
        builder.api_key = var("OPENAI_API_KEY").filter(|key| !key.is_empty());
        builder
    }

    /// The model it asks for.
    pub fn model(&self) -> &str {
        &self.config.model
    }

    /// What `request` may cost at most: [`estimate_tokens`] priced at the model's input and
    /// output prices (no cached tokens assumed). A budget reserves it before the call.
    pub fn estimate(&self, request: &ModelRequest) -> Usage {
        let price = self.config.prices.get(&self.config.model);
        price.priced(estimate_tokens(request))
    }

    /// Completes `request` in one response.
    ///
    /// # Errors
    ///
    /// A [`ProviderError`] of the status, the body, the connection or the time limit.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future closes the connection; the provider may still process (and bill)
    /// the request.
    pub async fn chat(&self, request: &ModelRequest) -> Result<ModelResponse, ProviderError> {
        let limit = self.time_limit(request);
        let estimate = self.estimate(request);
        tokio::time::timeout(limit, self.chat_within(request, estimate))
            .await
            .unwrap_or(Err(ProviderError::Timeout { after: limit }))
    }

    async fn chat_within(
        &self,
        request: &ModelRequest,
        estimate: Usage,
    ) -> Result<ModelResponse, ProviderError> {
        let response = self.send(request, false).await?;
        let malformed = |message: String| ProviderError::Malformed {
            message,
            spent: estimate,
        };
        let body = response
            .bytes()
            .await
            .map_err(|error| malformed(format!("body cut: {}", chain(&error))))?;
        let parsed = parse_completion(&body).map_err(malformed)?;
        let mut response = parsed.response;
        response.usage = if parsed.reported_usage {
            self.priced(&response.model, response.usage)
        } else {
            estimate
        };
        Ok(response)
    }

    /// Completes `request` as a stream of server-sent events (asking for the final usage
    /// chunk with `stream_options.include_usage`), calling `on_text` with each piece of text as
    /// it comes; returns the whole answer. A stream that ends with `[DONE]` but no usage chunk
    /// (a server that ignores `include_usage`) is taken to have cost the estimate.
    ///
    /// # Errors
    ///
    /// As [`chat`](Self::chat) before the first event; once events have come, a stream that
    /// fails, sends an error event, stalls past the time limit or ends before its usage chunk
    /// is [`ProviderError::StreamCut`], replay-unsafe, with the estimate as its spend.
    ///
    /// # Cancel safety
    ///
    /// As [`chat`](Self::chat).
    pub async fn chat_stream(
        &self,
        request: &ModelRequest,
        mut on_text: impl FnMut(&str) + Send,
    ) -> Result<ModelResponse, ProviderError> {
        let limit = self.time_limit(request);
        let deadline = Instant::now() + limit;
        let estimate = self.estimate(request);
        let timeout = ProviderError::Timeout { after: limit };
        let response = tokio::time::timeout_at(deadline, self.send(request, true))
            .await
            .map_err(|_| timeout.clone())??;
        let cut = |message: String| ProviderError::StreamCut {
            message,
            spent: estimate,
        };
        let mut bytes = response.bytes_stream();
        let mut decoder = SseDecoder::new();
        let mut answer = StreamAnswer::new();
        while !answer.is_done() {
            let Ok(next) = tokio::time::timeout_at(deadline, bytes.next()).await else {
                if answer.has_started() {
                    return Err(cut(format!("no end within {limit:?}")));
                }
                return Err(timeout);
            };
            let chunk = match next {
                None => break,
                Some(chunk) => chunk.map_err(|error| cut(chain(&error)))?,
            };
            for data in decoder.push(&chunk) {
                match answer.apply(&data).map_err(cut)? {
                    Applied::Text(text) if !text.is_empty() => on_text(&text),
                    Applied::Done => break,
                    _ => {}
                }
            }
        }
        let usage = match answer.usage() {
            Some(usage) => self.priced(answer.model(), usage),
            None if answer.is_done() => estimate,
            None => return Err(cut("the stream ended before its usage chunk".into())),
        };
        Ok(answer.into_response(usage))
    }

    /// Sends the request; a response with a success status, or the error of its status.
    async fn send(
        &self,
        request: &ModelRequest,
        stream: bool,
    ) -> Result<reqwest::Response, ProviderError> {
        let config = &self.config;
        let body = request_body(request, &config.model, config.limit_field, stream);
        let mut post = self.http.post(&config.url).json(&body);
        if let Some(key) = &config.api_key {
            post = post.bearer_auth(key);
        }
        let response = post.send().await.map_err(|error| sending(&error))?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(response);
        }
        let retry_after = retry_after(response.headers());
        let text = response.text().await.unwrap_or_default();
        Err(from_status(status, &text, retry_after))
    }

    fn time_limit(&self, request: &ModelRequest) -> Duration {
        request.timeout.map_or(self.config.timeout, |timeout| {
            timeout.min(self.config.timeout)
        })
    }

    fn priced(&self, answered_by: &str, usage: Usage) -> Usage {
        let model = if answered_by.is_empty() {
            self.model()
        } else {
            answered_by
        };
        self.config.prices.get(model).priced(usage)
    }
}

/// The error of a request that got no response.
fn sending(error: &reqwest::Error) -> ProviderError {
    ProviderError::Connect {
        message: chain(error),
    }
}

/// An error and its sources, as one line (reqwest's own message names only the outer one).
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

/// The wait a response asked for: `retry-after-ms` (OpenAI's SDKs read it first), else
/// `Retry-After` in seconds or as an HTTP date.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let millis = header("retry-after-ms")
        .and_then(|ms| ms.trim().parse::<f64>().ok())
        .filter(|ms| ms.is_finite() && *ms >= 0.0);
    if let Some(ms) = millis {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    header("retry-after")
        .and_then(|value| overseer_retry::parse_retry_after(value, SystemTime::now()))
}

impl ModelClient for OpenAiCompatible {
    async fn complete(&self, request: ModelRequest) -> Result<ModelResponse, ModelError> {
        self.chat(&request).await.map_err(ModelError::from)
    }

    fn estimate(&self, request: &ModelRequest) -> Option<Usage> {
        Some(OpenAiCompatible::estimate(self, request))
    }

    fn model_name(&self) -> Option<&str> {
        Some(&self.config.model)
    }
}

impl fmt::Debug for OpenAiCompatible {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiCompatible")
            .field("url", &self.config.url)
            .field("model", &self.config.model)
            .field("api_key", &self.config.api_key.as_ref().map(|_| "<set>"))
            .field("timeout", &self.config.timeout)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for OpenAiCompatibleBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiCompatibleBuilder")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<set>"))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_gives_the_base_url_and_the_key() {
        let vars = |name: &str| match name {
            "OPENAI_BASE_URL" => Some("http://127.0.0.1:9/v1/".to_string()),
            "OPENAI_API_KEY" => Some("sk-test".to_string()),
            _ => None,
        };
        let client = OpenAiCompatible::from_vars(vars, "m").build().unwrap();
        assert_eq!(client.config.url, "http://127.0.0.1:9/v1/chat/completions");
        assert_eq!(client.config.api_key.as_deref(), Some("sk-test"));
        assert!(
            !format!("{client:?}").contains("sk-test"),
            "the key is never printed"
        );
        let default = OpenAiCompatible::from_vars(|_| None, "m").build().unwrap();
        assert_eq!(
            default.config.url,
            "https://api.openai.com/v1/chat/completions"
        );
        assert_eq!(default.config.api_key, None);
    }

    #[test]
    fn a_base_url_that_is_not_http_is_a_config_error() {
        let error = OpenAiCompatible::builder("localhost:8000", "m")
            .build()
            .unwrap_err();
        assert!(matches!(error, ProviderError::Config { .. }), "{error}");
    }

    #[test]
    fn the_request_timeout_shortens_the_client_timeout() {
        let client = OpenAiCompatible::builder("http://x", "m")
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let short = ModelRequest::new("p").timeout(Duration::from_secs(2));
        assert_eq!(client.time_limit(&short), Duration::from_secs(2));
        assert_eq!(
            client.time_limit(&ModelRequest::new("p")),
            Duration::from_secs(30)
        );
    }
}
