//! Run identity: the stable id of one run, given by the caller as an idempotency key or minted.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The longest run id accepted, in bytes (Stripe's limit for idempotency keys).
pub const MAX_RUN_ID_LEN: usize = 255;

/// The stable id of a run: every entry of the run in the journal carries it, and a second ask
/// with the same id is the same run (see [`admit_run`](crate::admit_run)).
///
/// A caller that has a business key (an order id, a ticket number) uses it, so that the same
/// request resubmitted after a crash finds its run; otherwise [`RunId::mint`] makes a random one.
///
/// ```
/// use overseer_journal::RunId;
///
/// let run = RunId::new("order-1234")?;
/// assert_eq!(run.as_str(), "order-1234");
/// assert!(RunId::new("").is_err());
/// assert_ne!(RunId::mint(), RunId::mint());
/// # Ok::<(), overseer_journal::RunIdError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RunId(Arc<str>);

/// Why a string is not a [`RunId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RunIdError {
    /// The id is empty.
    #[error("a run id must not be empty")]
    Empty,
    /// The id is longer than [`MAX_RUN_ID_LEN`] bytes.
    #[error("a run id is at most {MAX_RUN_ID_LEN} bytes; this one has {len}")]
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The id holds a control character (a newline, a NUL...), which would garble logs.
    #[error("a run id must not contain control characters: {id:?}")]
    ControlCharacter {
        /// The id refused.
        id: String,
    },
}

impl RunId {
    /// The run id `id`, checked: not empty, at most [`MAX_RUN_ID_LEN`] bytes, no control
    /// characters.
    ///
    /// # Errors
    ///
    /// [`RunIdError`] says which rule the id breaks.
    pub fn new(id: impl Into<String>) -> Result<Self, RunIdError> {
        let id = id.into();
        if id.is_empty() {
            return Err(RunIdError::Empty);
        }
        if id.len() > MAX_RUN_ID_LEN {
            return Err(RunIdError::TooLong { len: id.len() });
        }
        if id.chars().any(char::is_control) {
            return Err(RunIdError::ControlCharacter { id });
        }
        Ok(Self(id.into()))
    }

    /// A new random run id (128 bits, as 32 hexadecimal digits prefixed with `run-`).
    pub fn mint() -> Self {
        let bits: u128 = rand::random();
        Self(format!("run-{bits:032x}").into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for RunId {
    type Error = RunIdError;

    fn try_from(id: String) -> Result<Self, Self::Error> {
        Self::new(id)
    }
}

impl From<RunId> for String {
    fn from(run: RunId) -> Self {
        run.0.to_string()
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RunId({:?})", &*self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rules_of_an_id() {
        assert_eq!(RunId::new(""), Err(RunIdError::Empty));
        assert_eq!(
            RunId::new("x".repeat(256)),
            Err(RunIdError::TooLong { len: 256 })
        );
        assert!(RunId::new("x".repeat(255)).is_ok());
        assert!(matches!(
            RunId::new("a\nb"),
            Err(RunIdError::ControlCharacter { .. })
        ));
        assert!(RunId::new("ordre-n°7 ✓").is_ok());
    }

    #[test]
    fn minted_ids_are_valid_and_distinct() {
        let minted = RunId::mint();
        assert_eq!(RunId::new(minted.as_str()), Ok(minted.clone()));
        assert_eq!(minted.as_str().len(), 36);
        assert_ne!(minted, RunId::mint());
    }

    #[test]
    fn a_bad_id_in_a_journal_is_refused_when_read() {
        let parsed: Result<RunId, _> = serde_json::from_str("\"\"");
        assert!(parsed.is_err());
        let parsed: RunId = serde_json::from_str("\"r1\"").unwrap();
        assert_eq!(parsed.as_str(), "r1");
    }
}
