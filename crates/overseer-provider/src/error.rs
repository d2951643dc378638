//! What can go wrong talking to a provider, each failure with its retry class.

use std::time::Duration;

use overseer_agent::{ModelError, Usage};
use overseer_retry::{Classify, ErrorClass};

/// Why a call to an OpenAI-compatible provider failed. Each error has the [`ErrorClass`] a
/// retry policy, a ladder or a [`Router`](crate::Router) acts on:
///
/// | error | from | class |
/// |---|---|---|
/// | [`RateLimited`](Self::RateLimited) | 429 (with `Retry-After` / `retry-after-ms`) | rate-limited |
/// | [`QuotaExceeded`](Self::QuotaExceeded) | 429 with code `insufficient_quota` | permanent |
/// | [`ContextTooLong`](Self::ContextTooLong) | 400 with code `context_length_exceeded` | permanent |
/// | [`Authentication`](Self::Authentication) | 401, 403 | permanent |
/// | [`BadRequest`](Self::BadRequest) | other 4xx | permanent (408, 409, 425: transient) |
/// | [`Server`](Self::Server) | 5xx | transient (501, 505: permanent; 503 with `Retry-After`: rate-limited) |
/// | [`Timeout`](Self::Timeout) | no answer in time | transient |
/// | [`Connect`](Self::Connect) | connection refused, DNS, reset before an answer | transient |
/// | [`Malformed`](Self::Malformed) | a success status whose body is cut or not the API's JSON | replay-unsafe |
/// | [`StreamCut`](Self::StreamCut) | a stream that ended before its usage chunk | replay-unsafe |
/// | [`Config`](Self::Config) | a bad base URL, an unset variable | permanent |
///
/// The replay-unsafe errors carry `spent`: the request was processed and probably billed, so
/// the caller commits the request's estimate rather than nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderError {
    /// The provider asked to slow down.
    #[error("rate limited (429): {message}")]
    RateLimited {
        /// What the provider said.
        message: String,
        /// How long it asked to wait, if it said.
        retry_after: Option<Duration>,
    },
    /// The account is out of credit: waiting does not help.
    #[error("quota exceeded (429): {message}")]
    QuotaExceeded {
        /// What the provider said.
        message: String,
    },
    /// The messages and `max_tokens` exceed the model's context window.
    #[error("context too long (400): {message}")]
    ContextTooLong {
        /// What the provider said.
        message: String,
    },
    /// The key was refused.
    #[error("authentication failed ({status}): {message}")]
    Authentication {
        /// 401 or 403.
        status: u16,
        /// What the provider said.
        message: String,
    },
    /// Another 4xx: the request as it is will not pass.
    #[error("bad request ({status}): {message}")]
    BadRequest {
        /// The status.
        status: u16,
        /// What the provider said.
        message: String,
    },
    /// A 5xx.
    #[error("server error ({status}): {message}")]
    Server {
        /// The status.
        status: u16,
        /// What the provider said.
        message: String,
        /// Its `Retry-After`, if it sent one.
        retry_after: Option<Duration>,
    },
    /// No answer within the time allowed (the client's timeout or the request's).
    #[error("no answer within {after:?}")]
    Timeout {
        /// The time allowed.
        after: Duration,
    },
    /// The request never got an answer: connection refused, reset, DNS.
    #[error("connection failed: {message}")]
    Connect {
        /// What failed.
        message: String,
    },
    /// A success status whose body was cut, or is not the API's JSON.
    #[error("malformed response: {message}")]
    Malformed {
        /// What was wrong.
        message: String,
        /// What the call is taken to have cost (the request's estimate).
        spent: Usage,
    },
    /// A stream that ended (or sent an error) before its usage chunk.
    #[error("stream cut before its usage: {message}")]
    StreamCut {
        /// What happened.
        message: String,
        /// What the call is taken to have cost (the request's estimate).
        spent: Usage,
    },
    /// The client is configured wrongly.
    #[error("provider configuration: {message}")]
    Config {
        /// What is wrong.
        message: String,
    },
}

impl ProviderError {
    /// What the failed call is taken to have cost: the estimate for the replay-unsafe errors,
    /// nothing for the others.
    pub fn spent(&self) -> Usage {
        match self {
            Self::Malformed { spent, .. } | Self::StreamCut { spent, .. } => *spent,
            _ => Usage::default(),
        }
    }
}

impl Classify for ProviderError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::RateLimited { retry_after, .. } => ErrorClass::RateLimited {
                retry_after: *retry_after,
            },
            Self::QuotaExceeded { .. }
            | Self::ContextTooLong { .. }
            | Self::Authentication { .. }
            | Self::Config { .. } => ErrorClass::Permanent,
            Self::BadRequest { status, .. } => http_class(*status, None),
            Self::Server {
                status,
                retry_after,
                ..
            } => http_class(*status, *retry_after),
            Self::Timeout { .. } | Self::Connect { .. } => ErrorClass::Transient,
            Self::Malformed { .. } | Self::StreamCut { .. } => ErrorClass::ReplayUnsafe,
        }
    }
}

fn http_class(status: u16, retry_after: Option<Duration>) -> ErrorClass {
    ErrorClass::from_http(status, retry_after).unwrap_or(ErrorClass::Permanent)
}

/// The agent layer's error of the same class: transient → `Provider`, rate-limited →
/// `RateLimited`, permanent → `Rejected`, replay-unsafe → `ReplayUnsafe` with its spend.
impl From<ProviderError> for ModelError {
    fn from(error: ProviderError) -> Self {
        let message = error.to_string();
        match error.class() {
            ErrorClass::RateLimited { retry_after } => Self::RateLimited {
                message,
                retry_after,
            },
            ErrorClass::Transient => Self::Provider(message),
            ErrorClass::ReplayUnsafe => Self::ReplayUnsafe {
                spent: error.spent(),
                message,
            },
            _ => Self::Rejected(message),
        }
    }
}

/// The error of a response with a failure `status`, its body's text and its already parsed
/// `Retry-After`: the pure mapping the client applies (see [`ProviderError`]'s table).
pub fn from_status(status: u16, body: &str, retry_after: Option<Duration>) -> ProviderError {
    let (message, code) = error_body(body);
    match status {
        429 if code == "insufficient_quota" => ProviderError::QuotaExceeded { message },
        429 => ProviderError::RateLimited {
            message,
            retry_after,
        },
        400 if code == "context_length_exceeded" => ProviderError::ContextTooLong { message },
        401 | 403 => ProviderError::Authentication { status, message },
        500.. => ProviderError::Server {
            status,
            message,
            retry_after,
        },
        _ => ProviderError::BadRequest { status, message },
    }
}

/// The message and code of an OpenAI error body (`{"error": {"message", "code", ...}}`); the
/// body itself (cut short) when it is not one.
fn error_body(body: &str) -> (String, String) {
    let parsed: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let error = parsed.as_ref().and_then(|value| value.get("error"));
    let text = |field: &str| {
        error
            .and_then(|error| error.get(field))
            .and_then(|value| value.as_str())
            .map(str::to_string)
    };
    let message = text("message")
        .or_else(|| error.and_then(|e| e.as_str()).map(str::to_string))
        .unwrap_or_else(|| body.chars().take(500).collect());
    (message, text("code").unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(code: &str) -> String {
        format!(r#"{{"error":{{"message":"m","type":"t","param":null,"code":"{code}"}}}}"#)
    }

    #[test]
    fn statuses_map_to_their_errors_and_classes() {
        let wait = Some(Duration::from_secs(3));
        let cases = [
            (
                429,
                body("rate_limit_exceeded"),
                ErrorClass::RateLimited { retry_after: wait },
            ),
            (429, body("insufficient_quota"), ErrorClass::Permanent),
            (400, body("context_length_exceeded"), ErrorClass::Permanent),
            (401, body("invalid_api_key"), ErrorClass::Permanent),
            (403, body(""), ErrorClass::Permanent),
            (404, body(""), ErrorClass::Permanent),
            (408, body(""), ErrorClass::Transient),
            (500, body(""), ErrorClass::Transient),
            (503, body(""), ErrorClass::RateLimited { retry_after: wait }),
            (501, body(""), ErrorClass::Permanent),
        ];
        for (status, body, class) in cases {
            assert_eq!(
                from_status(status, &body, wait).class(),
                class,
                "{status} {body}"
            );
        }
        assert!(matches!(
            from_status(400, &body("context_length_exceeded"), None),
            ProviderError::ContextTooLong { .. }
        ));
    }

    #[test]
    fn a_body_that_is_not_json_is_the_message() {
        let error = from_status(502, "<html>bad gateway</html>", None);
        assert_eq!(
            error,
            ProviderError::Server {
                status: 502,
                message: "<html>bad gateway</html>".into(),
                retry_after: None
            }
        );
    }

    #[test]
    fn the_model_error_keeps_the_class_and_the_spend() {
        let spent = Usage::new(10, 100, 7);
        let errors = [
            from_status(429, &body(""), Some(Duration::from_secs(1))),
            from_status(401, &body(""), None),
            ProviderError::Timeout {
                after: Duration::from_secs(1),
            },
            ProviderError::StreamCut {
                message: "cut".into(),
                spent,
            },
        ];
        for error in errors {
            let class = error.class();
            let model = ModelError::from(error.clone());
            assert_eq!(model.class(), class, "{error}");
            assert_eq!(model.spent(), error.spent());
        }
    }
}
