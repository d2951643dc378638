//! What kind of failure an error is, and so whether (and how) to try again.
//!
//! An LLM retry is not a replay: the model may take another path, and every attempt costs
//! money. The first question after a failure is therefore not "how long do I wait" but "who
//! can fix this". Each error is given one [`ErrorClass`]:
//!
//! | class | examples | who fixes it | strategy |
//! |---|---|---|---|
//! | [`Transient`](ErrorClass::Transient) | network reset, timeout, 500/502/503/504/529 | nobody: it passes | retry the same step with backoff and jitter |
//! | [`RateLimited`](ErrorClass::RateLimited) | 429, 503 with `Retry-After` | the provider, after a while | wait at least `retry_after`, then retry; the retry budget keeps retries from multiplying the load |
//! | [`InvalidOutput`](ErrorClass::InvalidOutput) | the answer failed a schema, a parse or a guard | the model, if told what was wrong | no blind retry; climb the ladder: same agent with the failure fed back, another agent, decompose, a stronger model |
//! | [`Permanent`](ErrorClass::Permanent) | 400, 401, 403, 404, 422, context too long | a developer or the user (or another agent / a smaller task) | never retry the same request; the ladder may climb to another agent, decompose or a stronger model |
//! | [`ReplayUnsafe`](ErrorClass::ReplayUnsafe) | a payment call timed out after the request was sent | an operator, or a reconciliation step | never retry, never climb: the effect may have happened; stop and keep the record |
//! | [`Cancelled`](ErrorClass::Cancelled) | the kill switch tripped, the caller went away | whoever stopped it | stop at once |
//! | [`BudgetExhausted`](ErrorClass::BudgetExhausted) | the spend ledger refused the call | an operator raising the budget | stop: every rung would cost money too |
//!
//! The first five rows follow LangGraph's error-handling guide (transient → the system retries;
//! model-recoverable → fed back to the model; user-fixable → a human; unexpected → the
//! developer), with rate limits split from other transient errors because they carry their own
//! delay, and replay-unsafe failures added because a journaled step may have had an effect.
//! `Cancelled` and `BudgetExhausted` are added because OpenAI's Agents SDK (and any system
//! with a kill switch) must never retry an abort, and because a spend refusal would be refused
//! again on every rung of the ladder: classifying them as `Permanent` would make the ladder
//! climb to a stronger, dearer model.
//!
//! Users classify their own errors by implementing [`Classify`]. The crate implements it for
//! [`std::io::Error`] (by [`ErrorKind`](std::io::ErrorKind)) and for tokio's
//! [`Elapsed`](tokio::time::error::Elapsed), and maps HTTP statuses with
//! [`ErrorClass::from_http`].

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

/// What kind of failure an error is; see the [module documentation](self) for the table of
/// classes, who fixes each and the strategy that follows.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use overseer_retry::ErrorClass;
///
/// let class = ErrorClass::from_http(429, Some(Duration::from_secs(7))).unwrap();
/// assert_eq!(class, ErrorClass::RateLimited { retry_after: Some(Duration::from_secs(7)) });
/// assert!(class.is_retryable());
/// assert!(!ErrorClass::Permanent.is_retryable());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ErrorClass {
    /// A failure that passes on its own (network, timeout, 5xx): retry with backoff.
    Transient,
    /// The provider asked to slow down; `retry_after` is how long it asked to wait, if it said.
    RateLimited {
        /// The provider's `Retry-After`, if it sent one.
        retry_after: Option<Duration>,
    },
    /// The agent answered, but its answer failed a check (schema, parse, guard). The same
    /// prompt is likely to fail again; the same agent told what was wrong may not.
    InvalidOutput,
    /// The request itself is wrong (bad request, unauthorized, context too long): a retry of the
    /// same request fails the same way.
    Permanent,
    /// The step's effect may have happened (the request was sent, the answer was lost): a retry
    /// could do it twice.
    ReplayUnsafe,
    /// The work was stopped from outside (kill switch, caller cancelled, shutdown).
    Cancelled,
    /// The spend budget refused the call.
    BudgetExhausted,
}

impl ErrorClass {
    /// Whether a [`RetryPolicy`](crate::RetryPolicy) retries this class at all (before its
    /// attempt count and time bounds are considered): only [`Transient`](Self::Transient) and
    /// [`RateLimited`](Self::RateLimited).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Transient | Self::RateLimited { .. })
    }

    /// Whether this class ends every escalation: [`ReplayUnsafe`](Self::ReplayUnsafe),
    /// [`Cancelled`](Self::Cancelled) and [`BudgetExhausted`](Self::BudgetExhausted).
    pub fn stops_escalation(&self) -> bool {
        matches!(
            self,
            Self::ReplayUnsafe | Self::Cancelled | Self::BudgetExhausted
        )
    }

    /// The class of an HTTP response status, with the response's `Retry-After` already parsed
    /// (see [`parse_retry_after`]). `None` when the status is not an error (below 400) or is not
    /// a status at all (above 599).
    ///
    /// | status | class |
    /// |---|---|
    /// | 408, 409, 425 | transient (timeout, lock conflict, too early: the same request may pass) |
    /// | 429 | rate-limited, with `retry_after` |
    /// | 503 with `Retry-After` | rate-limited (the server said when) |
    /// | 501, 505 | permanent (the server will never support it) |
    /// | other 5xx (500, 502, 503, 504, 529, ...) | transient |
    /// | other 4xx (400, 401, 403, 404, 413, 422, ...) | permanent |
    ///
    /// 408, 409 and 429 and the 5xx are the statuses the official OpenAI and Anthropic SDKs
    /// retry; LangGraph's default retries 5xx only.
    pub fn from_http(status: u16, retry_after: Option<Duration>) -> Option<Self> {
        let class = match status {
            0..=399 | 600.. => return None,
            429 => Self::RateLimited { retry_after },
            503 if retry_after.is_some() => Self::RateLimited { retry_after },
            408 | 409 | 425 => Self::Transient,
            501 | 505 => Self::Permanent,
            500..=599 => Self::Transient,
            400..=499 => Self::Permanent,
        };
        Some(class)
    }
}

/// Parses an HTTP `Retry-After` header value: either delay-seconds (`"120"`) or an HTTP-date
/// (`"Wed, 21 Oct 2015 07:28:00 GMT"`), the latter measured from `now` (a date in the past
/// means "now": zero). `None` for a value that is neither, as RFC 9110 says to ignore it.
///
/// `now` is a parameter so the function stays pure; the plumbing passes `SystemTime::now()`.
/// Some providers also send `retry-after-ms`; pass its value as `Duration::from_millis`.
///
/// ```
/// use std::time::{Duration, SystemTime, UNIX_EPOCH};
/// use overseer_retry::parse_retry_after;
///
/// let now = UNIX_EPOCH + Duration::from_secs(1_445_412_470); // 07:27:50 GMT
/// assert_eq!(parse_retry_after("12", now), Some(Duration::from_secs(12)));
/// assert_eq!(
///     parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
///     Some(Duration::from_secs(10)),
/// );
/// assert_eq!(parse_retry_after("soon", now), None);
/// ```
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Digits only: delay-seconds. An absurd number saturates rather than failing.
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Implemented by errors that know their [`ErrorClass`].
///
/// ```
/// use overseer_retry::{Classify, ErrorClass};
///
/// enum ToolError { Timeout, BadArguments }
///
/// impl Classify for ToolError {
///     fn class(&self) -> ErrorClass {
///         match self {
///             ToolError::Timeout => ErrorClass::Transient,
///             ToolError::BadArguments => ErrorClass::InvalidOutput,
///         }
///     }
/// }
/// assert_eq!(ToolError::Timeout.class(), ErrorClass::Transient);
/// ```
pub trait Classify {
    /// This error's class.
    fn class(&self) -> ErrorClass;
}

impl Classify for ErrorClass {
    fn class(&self) -> ErrorClass {
        *self
    }
}

impl<T: Classify + ?Sized> Classify for &T {
    fn class(&self) -> ErrorClass {
        (**self).class()
    }
}

impl<T: Classify + ?Sized> Classify for Box<T> {
    fn class(&self) -> ErrorClass {
        (**self).class()
    }
}

impl<T: Classify + ?Sized> Classify for std::sync::Arc<T> {
    fn class(&self) -> ErrorClass {
        (**self).class()
    }
}

/// A timeout passes: transient.
impl Classify for tokio::time::error::Elapsed {
    fn class(&self) -> ErrorClass {
        ErrorClass::Transient
    }
}

/// By kind, as if the operation were idempotent: connection and timing failures are
/// transient; not-found, permission, invalid input or data, unsupported and the like are
/// permanent; kinds std does not name (`Other` and future ones) are transient, so that an
/// unknown failure gets the policy's bounded retries rather than none.
///
/// An io error cannot know whether a request left the machine before the connection broke. A
/// step whose effect is not idempotent classifies its own errors, mapping a broken connection
/// after sending to [`ErrorClass::ReplayUnsafe`].
impl Classify for std::io::Error {
    fn class(&self) -> ErrorClass {
        io_kind_class(self.kind())
    }
}

fn io_kind_class(kind: std::io::ErrorKind) -> ErrorClass {
    use std::io::ErrorKind as K;
    match kind {
        K::NotFound
        | K::PermissionDenied
        | K::AlreadyExists
        | K::InvalidInput
        | K::InvalidData
        | K::Unsupported
        | K::OutOfMemory
        | K::IsADirectory
        | K::NotADirectory
        | K::DirectoryNotEmpty
        | K::ReadOnlyFilesystem
        | K::FileTooLarge
        | K::InvalidFilename
        | K::ArgumentListTooLong
        | K::AddrNotAvailable => ErrorClass::Permanent,
        _ => ErrorClass::Transient,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;
    use std::time::UNIX_EPOCH;

    #[test]
    fn http_statuses_map_to_their_classes() {
        let wait = Some(Duration::from_secs(3));
        assert_eq!(ErrorClass::from_http(200, None), None);
        assert_eq!(ErrorClass::from_http(304, None), None);
        assert_eq!(ErrorClass::from_http(600, None), None);
        assert_eq!(
            ErrorClass::from_http(400, None),
            Some(ErrorClass::Permanent)
        );
        assert_eq!(
            ErrorClass::from_http(401, None),
            Some(ErrorClass::Permanent)
        );
        assert_eq!(
            ErrorClass::from_http(422, wait),
            Some(ErrorClass::Permanent)
        );
        assert_eq!(
            ErrorClass::from_http(408, None),
            Some(ErrorClass::Transient)
        );
        assert_eq!(
            ErrorClass::from_http(409, None),
            Some(ErrorClass::Transient)
        );
        assert_eq!(
            ErrorClass::from_http(429, None),
            Some(ErrorClass::RateLimited { retry_after: None })
        );
        assert_eq!(
            ErrorClass::from_http(429, wait),
            Some(ErrorClass::RateLimited { retry_after: wait })
        );
        assert_eq!(
            ErrorClass::from_http(503, None),
            Some(ErrorClass::Transient)
        );
        assert_eq!(
            ErrorClass::from_http(503, wait),
            Some(ErrorClass::RateLimited { retry_after: wait })
        );
        assert_eq!(
            ErrorClass::from_http(529, None),
            Some(ErrorClass::Transient)
        );
        assert_eq!(
            ErrorClass::from_http(501, None),
            Some(ErrorClass::Permanent)
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_dates_and_ignores_garbage() {
        let now = UNIX_EPOCH + Duration::from_secs(1_445_412_470);
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(Duration::from_secs(u64::MAX))
        );
        // A date already past means no wait.
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("-5", now), None);
        assert_eq!(parse_retry_after("1.5", now), None);
        assert_eq!(parse_retry_after("", now), None);
    }

    #[test]
    fn io_errors_are_classified_by_kind() {
        let class = |kind| io::Error::from(kind).class();
        assert_eq!(class(io::ErrorKind::TimedOut), ErrorClass::Transient);
        assert_eq!(class(io::ErrorKind::ConnectionReset), ErrorClass::Transient);
        assert_eq!(class(io::ErrorKind::Other), ErrorClass::Transient);
        assert_eq!(class(io::ErrorKind::NotFound), ErrorClass::Permanent);
        assert_eq!(
            class(io::ErrorKind::PermissionDenied),
            ErrorClass::Permanent
        );
        assert_eq!(class(io::ErrorKind::InvalidData), ErrorClass::Permanent);
    }

    #[tokio::test(start_paused = true)]
    async fn an_elapsed_timeout_is_transient() {
        let elapsed = tokio::time::timeout(Duration::from_millis(1), std::future::pending::<()>())
            .await
            .unwrap_err();
        assert_eq!(elapsed.class(), ErrorClass::Transient);
        assert_eq!(Box::new(&elapsed).class(), ErrorClass::Transient);
    }
}
