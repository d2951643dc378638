//! Output validators: checks run on every result, successful ones included.
//!
//! An agent that returns confident garbage has not crashed, so supervision and breakers see
//! nothing. A [`Validator`] turns such an output into a [`Rejection`], a failure of its own
//! kind (a *byzantine* one: the agent answered, wrongly), which the agent layer reports like
//! a crash: the ask fails or is retried with the rejection's reason as feedback, and the
//! (agent, task type) breaker counts it. The validators here are pure; running them is the
//! agent layer's job.
//!
//! # Example
//!
//! ```
//! use overseer_semantic::validator::{all_of, from_predicate, parses_as, RejectionKind, Validator};
//!
//! #[derive(serde::Deserialize)]
//! struct Summary { text: String }
//!
//! let summary = all_of()
//!     .and(parses_as::<Summary>())
//!     .and(from_predicate("cites a source", |out: &str| out.contains("http")));
//!
//! assert!(summary.validate(r#"{"text": "see https://example.org"}"#).is_ok());
//! let rejection = summary.validate(r#"{"text": "trust me"}"#).unwrap_err();
//! assert_eq!(rejection.kind, RejectionKind::Predicate);
//! assert_eq!(rejection.reason, "failed: cites a source");
//! ```

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::red_flag::{parse_strict, RedFlag, RedFlagKind};

/// Which check rejected an output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RejectionKind {
    /// Longer than allowed.
    TooLong,
    /// Did not parse as the expected type.
    Parse,
    /// Did not match the JSON Schema.
    Schema,
    /// A user predicate or custom validator said no.
    Predicate,
    /// A reviewing agent (an inspector) said no.
    Inspector,
}

impl fmt::Display for RejectionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::TooLong => "too long",
            Self::Parse => "parse",
            Self::Schema => "schema",
            Self::Predicate => "predicate",
            Self::Inspector => "inspector",
        })
    }
}

/// An output that failed validation: a byzantine failure, which the breaker counts like a
/// crash, with a reason meant to be fed back to the producer on a retry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("output rejected ({kind}): {reason}")]
#[non_exhaustive]
pub struct Rejection {
    /// What was wrong, in words the producer can act on.
    pub reason: String,
    /// Which check said so.
    pub kind: RejectionKind,
}

impl Rejection {
    /// A rejection of `kind`.
    pub fn new(kind: RejectionKind, reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            kind,
        }
    }
}

impl From<RedFlag> for Rejection {
    fn from(flag: RedFlag) -> Self {
        let kind = match flag.kind {
            RedFlagKind::TooLong => RejectionKind::TooLong,
            RedFlagKind::Parse => RejectionKind::Parse,
            RedFlagKind::Schema => RejectionKind::Schema,
            _ => RejectionKind::Predicate,
        };
        Self::new(kind, flag.detail)
    }
}

/// A check on an output of type `T` (use `str` for text outputs).
///
/// ```
/// use overseer_semantic::validator::{Rejection, RejectionKind, Validator};
///
/// /// Rejects summaries longer than their source.
/// struct ShorterThan(usize);
///
/// impl Validator<str> for ShorterThan {
///     fn validate(&self, summary: &str) -> Result<(), Rejection> {
///         if summary.len() < self.0 {
///             Ok(())
///         } else {
///             Err(Rejection::new(
///                 RejectionKind::Predicate,
///                 format!("a summary of {} bytes for a source of {}", summary.len(), self.0),
///             ))
///         }
///     }
/// }
///
/// assert!(ShorterThan(100).validate("short").is_ok());
/// assert_eq!(ShorterThan(3).validate("longer").unwrap_err().reason, "a summary of 6 bytes for a source of 3");
/// ```
pub trait Validator<T: ?Sized> {
    /// Accepts `output` or says why not.
    ///
    /// # Errors
    ///
    /// A [`Rejection`] when `output` is not acceptable.
    fn validate(&self, output: &T) -> Result<(), Rejection>;
}

impl<T: ?Sized, V: Validator<T> + ?Sized> Validator<T> for &V {
    fn validate(&self, output: &T) -> Result<(), Rejection> {
        (**self).validate(output)
    }
}

impl<T: ?Sized, V: Validator<T> + ?Sized> Validator<T> for Box<V> {
    fn validate(&self, output: &T) -> Result<(), Rejection> {
        (**self).validate(output)
    }
}

impl<T: ?Sized, V: Validator<T> + ?Sized> Validator<T> for Arc<V> {
    fn validate(&self, output: &T) -> Result<(), Rejection> {
        (**self).validate(output)
    }
}

/// A validator that accepts only what every one of its validators accepts, asked in the
/// order added; the first rejection is returned and the rest are not asked.
pub struct AllOf<T: ?Sized> {
    validators: Vec<Box<dyn Validator<T> + Send + Sync>>,
}

impl<T: ?Sized> fmt::Debug for AllOf<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AllOf")
            .field("validators", &self.validators.len())
            .finish()
    }
}

/// An [`AllOf`] with no validators yet (it accepts everything).
pub fn all_of<T: ?Sized>() -> AllOf<T> {
    AllOf {
        validators: Vec::new(),
    }
}

impl<T: ?Sized> AllOf<T> {
    /// Adds a validator, asked after the ones before it.
    pub fn and(mut self, validator: impl Validator<T> + Send + Sync + 'static) -> Self {
        self.validators.push(Box::new(validator));
        self
    }

    /// How many validators there are.
    pub fn len(&self) -> usize {
        self.validators.len()
    }

    /// Whether there are none (then everything is accepted).
    pub fn is_empty(&self) -> bool {
        self.validators.is_empty()
    }
}

impl<T: ?Sized> Validator<T> for AllOf<T> {
    fn validate(&self, output: &T) -> Result<(), Rejection> {
        self.validators.iter().try_for_each(|v| v.validate(output))
    }
}

/// A validator from a yes/no function: see [`from_predicate`].
pub struct Predicate<F> {
    name: String,
    reason: String,
    accept: F,
}

impl<F> fmt::Debug for Predicate<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Predicate")
            .field("name", &self.name)
            .finish()
    }
}

/// Accepts outputs for which `accept` returns true; `name` says what it checks and makes the
/// rejection's reason (`"failed: <name>"`, kind [`RejectionKind::Predicate`]).
pub fn from_predicate<T: ?Sized, F: Fn(&T) -> bool>(
    name: impl Into<String>,
    accept: F,
) -> Predicate<F> {
    let name = name.into();
    Predicate {
        reason: format!("failed: {name}"),
        name,
        accept,
    }
}

impl<T: ?Sized, F: Fn(&T) -> bool> Validator<T> for Predicate<F> {
    fn validate(&self, output: &T) -> Result<(), Rejection> {
        if (self.accept)(output) {
            Ok(())
        } else {
            Err(Rejection::new(
                RejectionKind::Predicate,
                self.reason.clone(),
            ))
        }
    }
}

/// A validator from a function that gives its own rejection: see [`from_fn`].
pub struct FromFn<F>(F);

impl<F> fmt::Debug for FromFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FromFn").finish_non_exhaustive()
    }
}

/// A validator that calls `check`, for checks that explain themselves.
pub fn from_fn<T: ?Sized, F: Fn(&T) -> Result<(), Rejection>>(check: F) -> FromFn<F> {
    FromFn(check)
}

impl<T: ?Sized, F: Fn(&T) -> Result<(), Rejection>> Validator<T> for FromFn<F> {
    fn validate(&self, output: &T) -> Result<(), Rejection> {
        (self.0)(output)
    }
}

/// Accepts text that parses strictly as `T`: see [`parses_as`].
pub struct ParsesAs<T>(PhantomData<fn() -> T>);

impl<T> fmt::Debug for ParsesAs<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ParsesAs<{}>", std::any::type_name::<T>())
    }
}

/// Accepts text that [`parse_strict`]s as `T` (one JSON value, nothing around it).
pub fn parses_as<T: DeserializeOwned>() -> ParsesAs<T> {
    ParsesAs(PhantomData)
}

impl<T: DeserializeOwned> Validator<str> for ParsesAs<T> {
    fn validate(&self, output: &str) -> Result<(), Rejection> {
        parse_strict::<T>(output).map(drop).map_err(Into::into)
    }
}

impl<T: DeserializeOwned> Validator<String> for ParsesAs<T> {
    fn validate(&self, output: &String) -> Result<(), Rejection> {
        self.validate(output.as_str())
    }
}

/// Accepts JSON matching a schema (feature `schema`): see [`from_schema`].
#[cfg(feature = "schema")]
#[derive(Debug, Clone)]
pub struct MatchesSchema(crate::schema::Schema);

/// Accepts JSON values, or texts holding JSON, that match `schema`.
///
/// ```
/// use overseer_semantic::schema::Schema;
/// use overseer_semantic::validator::{from_schema, RejectionKind, Validator};
/// use serde_json::json;
///
/// let report = from_schema(Schema::new(&json!({"required": ["sources"]}))?);
/// assert!(report.validate(&json!({"sources": []})).is_ok());
/// assert_eq!(report.validate(&json!({})).unwrap_err().kind, RejectionKind::Schema);
/// # Ok::<(), overseer_semantic::schema::SchemaError>(())
/// ```
#[cfg(feature = "schema")]
pub fn from_schema(schema: crate::schema::Schema) -> MatchesSchema {
    MatchesSchema(schema)
}

#[cfg(feature = "schema")]
impl Validator<serde_json::Value> for MatchesSchema {
    fn validate(&self, output: &serde_json::Value) -> Result<(), Rejection> {
        self.0.check_value(output).map_err(Into::into)
    }
}

#[cfg(feature = "schema")]
impl Validator<str> for MatchesSchema {
    fn validate(&self, output: &str) -> Result<(), Rejection> {
        self.0.check_text(output).map_err(Into::into)
    }
}

#[cfg(feature = "schema")]
impl Validator<String> for MatchesSchema {
    fn validate(&self, output: &String) -> Result<(), Rejection> {
        self.0.check_text(output).map_err(Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn all_of_stops_at_the_first_rejection() {
        let asked = Arc::new(AtomicU32::new(0));
        let counter = Arc::clone(&asked);
        let v = all_of::<u32>()
            .and(from_predicate("even", |n: &u32| n.is_multiple_of(2)))
            .and(from_fn(move |_: &u32| {
                counter.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }));
        assert_eq!(v.validate(&3).unwrap_err().reason, "failed: even");
        assert_eq!(asked.load(Ordering::Relaxed), 0);
        assert!(v.validate(&4).is_ok());
        assert_eq!(asked.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn an_empty_all_of_accepts() {
        assert!(all_of::<str>().validate("anything").is_ok());
        assert!(all_of::<str>().is_empty());
    }

    #[test]
    fn parse_failures_are_parse_rejections() {
        let v = parses_as::<Vec<u8>>();
        assert!(v.validate("[1, 2]").is_ok());
        assert!(Validator::<String>::validate(&v, &"[1, 2]".to_owned()).is_ok());
        assert_eq!(
            v.validate("[1, 300]").unwrap_err().kind,
            RejectionKind::Parse
        );
    }

    #[test]
    fn red_flags_become_rejections_of_the_same_kind() {
        let r: Rejection = RedFlag::new(RedFlagKind::TooLong, "9 tokens, limit 2").into();
        assert_eq!(r.kind, RejectionKind::TooLong);
        assert_eq!(
            r.to_string(),
            "output rejected (too long): 9 tokens, limit 2"
        );
    }

    #[test]
    fn validators_work_through_references_boxes_and_arcs() {
        let v = from_predicate("short", |s: &str| s.len() < 3);
        let boxed: Box<dyn Validator<str>> =
            Box::new(from_predicate("short", |s: &str| s.len() < 3));
        let shared = Arc::new(from_predicate("short", |s: &str| s.len() < 3));
        for check in [&v as &dyn Validator<str>, &boxed, &shared] {
            assert!(check.validate("ab").is_ok());
            assert!(check.validate("abc").is_err());
        }
    }
}
