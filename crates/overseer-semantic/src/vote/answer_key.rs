//! How samples are compared: the key a vote counts.

use serde_json::Value;

use crate::canonical::canonical_json;
use crate::red_flag::{RedFlag, RedFlagKind};

/// Turns a sample's text into the key a [`Vote`](super::Vote) counts, so that answers that
/// mean the same are counted together.
///
/// | key | same answer when | a sample fails when |
/// |---|---|---|
/// | [`Exact`](Self::Exact) | the texts are equal | never |
/// | [`Normalised`](Self::Normalised) | equal after trimming, lowercasing and collapsing runs of whitespace to one space | never |
/// | [`JsonPointer`](Self::JsonPointer) | the JSON values at the pointer are equal (object keys in any order) | the text is not JSON or the pointer finds nothing: a [`RedFlag`] of kind [`Parse`](RedFlagKind::Parse) |
///
/// ```
/// use overseer_semantic::vote::AnswerKey;
///
/// let key = AnswerKey::Normalised;
/// assert_eq!(key.key("  Paris\n is  the capital ")?, key.key("paris is the CAPITAL")?);
///
/// let key = AnswerKey::JsonPointer("/move".into());
/// assert_eq!(
///     key.key(r#"{"move": [1, 0, 2], "why": "disk 1 moves"}"#)?,
///     key.key(r#"{"why": "smallest disk", "move": [1,0,2]}"#)?,
/// );
/// assert!(key.key("move disk 1 left").is_err()); // a red flag: discard and re-sample
/// # Ok::<(), overseer_semantic::red_flag::RedFlag>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AnswerKey {
    /// The text itself.
    Exact,
    /// The text trimmed, lowercased, with whitespace runs collapsed to one space.
    Normalised,
    /// The JSON value at this [RFC 6901](https://www.rfc-editor.org/rfc/rfc6901) pointer
    /// (`""` is the whole document), in a canonical form with sorted object keys.
    JsonPointer(String),
}

impl AnswerKey {
    /// The key of one sample.
    ///
    /// # Errors
    ///
    /// For [`JsonPointer`](Self::JsonPointer), a [`RedFlag`] of kind
    /// [`Parse`](RedFlagKind::Parse) when the text is not JSON or has nothing at the pointer.
    pub fn key(&self, sample: &str) -> Result<String, RedFlag> {
        match self {
            Self::Exact => Ok(sample.to_owned()),
            Self::Normalised => Ok(normalise(sample)),
            Self::JsonPointer(pointer) => json_field(sample, pointer),
        }
    }
}

/// Trimmed, lowercased, whitespace runs collapsed to one space.
fn normalise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(word.chars().flat_map(char::to_lowercase));
    }
    out
}

fn json_field(sample: &str, pointer: &str) -> Result<String, RedFlag> {
    let value: Value = serde_json::from_str(sample)
        .map_err(|e| RedFlag::new(RedFlagKind::Parse, format!("not JSON: {e}")))?;
    let field = value.pointer(pointer).ok_or_else(|| {
        RedFlag::new(
            RedFlagKind::Parse,
            format!("nothing at JSON pointer {pointer:?}"),
        )
    })?;
    Ok(canonical_json(field))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_keeps_differences() {
        assert_ne!(
            AnswerKey::Exact.key("Paris").unwrap(),
            AnswerKey::Exact.key("paris").unwrap()
        );
    }

    #[test]
    fn normalised_collapses_case_and_whitespace() {
        assert_eq!(normalise("  A\t\tB \n c  "), "a b c");
        assert_eq!(normalise(""), "");
        assert_eq!(normalise("ÉTÉ"), "été");
    }

    #[test]
    fn json_pointer_compares_values_not_texts() {
        let key = AnswerKey::JsonPointer("/answer".into());
        assert_eq!(
            key.key(r#"{"answer": {"b": 1, "a": 2}}"#).unwrap(),
            key.key(r#"{"answer":{"a":2,"b":1}, "extra": true}"#)
                .unwrap()
        );
        assert_ne!(
            key.key(r#"{"answer": 1}"#).unwrap(),
            key.key(r#"{"answer": "1"}"#).unwrap()
        );
    }

    #[test]
    fn json_pointer_failures_are_parse_red_flags() {
        let key = AnswerKey::JsonPointer("/answer".into());
        for sample in ["{", r#"{"other": 1}"#, "plain text"] {
            assert_eq!(key.key(sample).unwrap_err().kind, RedFlagKind::Parse);
        }
    }
}
