//! Structural checks a sample must pass before it may vote.
//!
//! MAKER discards a sample, instead of voting on it or repairing it, when it is too long or
//! does not parse strictly: such answers correlate with wrong ones, and correlated errors are
//! what defeats voting. [`RedFlagRules`] is a list of such checks, run cheapest first:
//! length, then strict parsing, then a JSON Schema (feature `schema`), then user predicates.
//! The first that fails gives a [`RedFlag`]; the agent layer discards the sample, counts it
//! as a failure for the breaker and, in a vote, draws another
//! ([`Vote::observe_red_flag`](crate::vote::Vote::observe_red_flag)).
//!
//! # Example
//!
//! ```
//! use overseer_semantic::red_flag::{RedFlagKind, RedFlagRules};
//!
//! #[derive(serde::Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct Move { disk: u8, from: u8, to: u8 }
//!
//! let rules = RedFlagRules::new()
//!     .max_tokens(750)
//!     .parses_as::<Move>()
//!     .predicate("a disk moves to another peg", |text| {
//!         serde_json::from_str::<Move>(text).is_ok_and(|m| m.from != m.to)
//!     });
//!
//! assert!(rules.check(r#"{"disk": 1, "from": 0, "to": 2}"#).is_ok());
//! let flag = rules.check(r#"{"disk": 1, "from": 0, "to": 2, "note": "easy"}"#).unwrap_err();
//! assert_eq!(flag.kind, RedFlagKind::Parse);
//! let flag = rules.check(r#"{"disk": 1, "from": 2, "to": 2}"#).unwrap_err();
//! assert_eq!(flag.kind, RedFlagKind::Predicate);
//! ```

use std::fmt;
use std::sync::Arc;

use serde::de::DeserializeOwned;

/// Why a sample was red-flagged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RedFlagKind {
    /// Longer than the limit, in characters or in estimated tokens.
    TooLong,
    /// Not parsable, strictly, as the expected type or as JSON.
    Parse,
    /// Valid JSON that does not match the JSON Schema.
    Schema,
    /// A user predicate said no.
    Predicate,
}

impl fmt::Display for RedFlagKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::TooLong => "too long",
            Self::Parse => "parse",
            Self::Schema => "schema",
            Self::Predicate => "predicate",
        })
    }
}

/// A sample that failed a structural check: which kind, and the details a person needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("red flag ({kind}): {detail}")]
#[non_exhaustive]
pub struct RedFlag {
    /// Which check failed.
    pub kind: RedFlagKind,
    /// What was wrong, with the numbers (length and limit, parse error, schema path).
    pub detail: String,
}

impl RedFlag {
    /// A red flag of `kind`.
    pub fn new(kind: RedFlagKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
        }
    }
}

/// A rough token count: one token per 4 characters, rounded up (OpenAI's rule of thumb
/// for English text). Good enough for a length flag, whose point is catching answers
/// several times too long; use the provider's reported count when there is one.
pub fn estimate_tokens(text: &str) -> usize {
    text.chars().count().div_ceil(4)
}

/// Red-flags `text` longer than `max_chars` characters.
///
/// # Errors
///
/// A [`RedFlagKind::TooLong`] flag with the length and the limit.
pub fn check_max_chars(text: &str, max_chars: usize) -> Result<(), RedFlag> {
    // Counting stops just past the limit: an answer of a megabyte costs no more than one
    // at the limit.
    let chars = text.chars().take(max_chars + 1).count();
    if chars > max_chars {
        return Err(RedFlag::new(
            RedFlagKind::TooLong,
            format!("more than {max_chars} characters"),
        ));
    }
    Ok(())
}

/// Red-flags `text` whose [`estimate_tokens`] exceeds `max_tokens`.
///
/// # Errors
///
/// A [`RedFlagKind::TooLong`] flag with the estimate and the limit.
pub fn check_max_tokens(text: &str, max_tokens: usize) -> Result<(), RedFlag> {
    let tokens = estimate_tokens(text);
    if tokens > max_tokens {
        return Err(RedFlag::new(
            RedFlagKind::TooLong,
            format!("about {tokens} tokens, limit {max_tokens}"),
        ));
    }
    Ok(())
}

/// Parses `text` strictly as JSON into `T`: the whole text must be one JSON value (no prose
/// around it, no trailing data), and `T`'s own serde rules apply (put
/// `#[serde(deny_unknown_fields)]` on `T` to refuse extra fields). Nothing is repaired.
///
/// # Errors
///
/// A [`RedFlagKind::Parse`] flag with serde's message (line and column).
pub fn parse_strict<T: DeserializeOwned>(text: &str) -> Result<T, RedFlag> {
    serde_json::from_str(text).map_err(|e| {
        RedFlag::new(
            RedFlagKind::Parse,
            format!("not a {}: {e}", std::any::type_name::<T>()),
        )
    })
}

type Check = Arc<dyn Fn(&str) -> Result<(), RedFlag> + Send + Sync>;

/// An ordered list of structural checks (see the [module documentation](self)).
///
/// Cheap to clone (the checks are shared) and `Send + Sync`, so one set of rules can serve
/// every sample of every vote of a task type.
///
/// ```
/// use overseer_semantic::red_flag::{RedFlagKind, RedFlagRules};
///
/// let rules = RedFlagRules::new().max_chars(20).parses_as::<Vec<u32>>();
/// assert!(rules.check("[1, 2, 3]").is_ok());
/// assert_eq!(rules.check("[1, 2, 3] and more text").unwrap_err().kind, RedFlagKind::TooLong);
/// assert_eq!(rules.check("[1, two]").unwrap_err().kind, RedFlagKind::Parse);
/// ```
#[derive(Clone, Default)]
pub struct RedFlagRules {
    max_chars: Option<usize>,
    max_tokens: Option<usize>,
    checks: Vec<(String, Check)>,
}

impl fmt::Debug for RedFlagRules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedFlagRules")
            .field("max_chars", &self.max_chars)
            .field("max_tokens", &self.max_tokens)
            .field(
                "checks",
                &self.checks.iter().map(|(name, _)| name).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl RedFlagRules {
    /// No checks: every sample passes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Red-flag samples longer than `max_chars` characters.
    pub fn max_chars(mut self, max_chars: usize) -> Self {
        self.max_chars = Some(max_chars);
        self
    }

    /// Red-flag samples of more than `max_tokens` estimated tokens ([`estimate_tokens`]).
    pub fn max_tokens(mut self, max_tokens: usize) -> Self {
        self.max_tokens = Some(max_tokens);
        self
    }

    /// Red-flag samples that do not [`parse_strict`] as `T`.
    pub fn parses_as<T: DeserializeOwned + 'static>(self) -> Self {
        let name = format!("parses as {}", std::any::type_name::<T>());
        self.custom(name, |text| parse_strict::<T>(text).map(drop))
    }

    /// Red-flag samples that are not JSON matching `schema`.
    #[cfg(feature = "schema")]
    pub fn schema(self, schema: crate::schema::Schema) -> Self {
        self.custom("matches the JSON Schema", move |text| {
            schema.check_text(text)
        })
    }

    /// Red-flag samples for which `accept` returns false; `name` says what it checks and is
    /// the flag's detail.
    pub fn predicate(
        self,
        name: impl Into<String>,
        accept: impl Fn(&str) -> bool + Send + Sync + 'static,
    ) -> Self {
        let name = name.into();
        let detail = format!("failed: {name}");
        self.custom(name, move |text| {
            if accept(text) {
                Ok(())
            } else {
                Err(RedFlag::new(RedFlagKind::Predicate, detail.clone()))
            }
        })
    }

    /// Adds any check, run after the ones before it.
    pub fn custom(
        mut self,
        name: impl Into<String>,
        check: impl Fn(&str) -> Result<(), RedFlag> + Send + Sync + 'static,
    ) -> Self {
        self.checks.push((name.into(), Arc::new(check)));
        self
    }

    /// Runs the checks on one sample: lengths first, then the others in the order added.
    ///
    /// # Errors
    ///
    /// The first check's [`RedFlag`] that fails.
    pub fn check(&self, sample: &str) -> Result<(), RedFlag> {
        if let Some(max) = self.max_chars {
            check_max_chars(sample, max)?;
        }
        if let Some(max) = self.max_tokens {
            check_max_tokens(sample, max)?;
        }
        self.checks.iter().try_for_each(|(_, check)| check(sample))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_are_checked_at_the_limit_not_before() {
        assert!(check_max_chars("abcd", 4).is_ok());
        assert_eq!(
            check_max_chars("abcde", 4).unwrap_err().kind,
            RedFlagKind::TooLong
        );
        // Characters, not bytes.
        assert!(check_max_chars("éééé", 4).is_ok());
        assert_eq!(estimate_tokens(""), 0);
        assert_eq!(estimate_tokens("abcde"), 2);
        assert!(check_max_tokens(&"x".repeat(8), 2).is_ok());
        let flag = check_max_tokens(&"x".repeat(9), 2).unwrap_err();
        assert_eq!(flag.detail, "about 3 tokens, limit 2");
    }

    #[test]
    fn strict_parse_refuses_trailing_prose() {
        assert_eq!(parse_strict::<u32>(" 7 ").unwrap(), 7);
        assert_eq!(
            parse_strict::<u32>("7, I think").unwrap_err().kind,
            RedFlagKind::Parse
        );
    }

    #[test]
    fn checks_run_cheapest_first() {
        let rules = RedFlagRules::new()
            .predicate("never", |_| false)
            .max_chars(3);
        assert_eq!(rules.check("long").unwrap_err().kind, RedFlagKind::TooLong);
        assert_eq!(rules.check("ok").unwrap_err().kind, RedFlagKind::Predicate);
        assert!(RedFlagRules::new().check("anything").is_ok());
    }

    #[test]
    fn debug_names_the_checks() {
        let rules = RedFlagRules::new().predicate("non-empty", |s| !s.is_empty());
        assert!(format!("{rules:?}").contains("non-empty"));
    }
}
