//! JSON Schema checks (feature `schema`), shared by red flags and validators.
//!
//! Built on the `jsonschema` crate without its default features: a schema's `$ref`s are
//! resolved within the schema only, never fetched over the network or from files, so
//! checking a sample does no I/O.

use std::fmt;
use std::sync::Arc;

use serde_json::Value;

use crate::red_flag::{RedFlag, RedFlagKind};

/// A compiled JSON Schema (draft detected from `$schema`, 2020-12 by default).
///
/// Cheap to clone: the compiled validator is shared.
///
/// ```
/// use overseer_semantic::schema::Schema;
/// use overseer_semantic::red_flag::RedFlagKind;
/// use serde_json::json;
///
/// let schema = Schema::new(&json!({
///     "type": "object",
///     "properties": {"answer": {"type": "integer", "minimum": 0}},
///     "required": ["answer"]
/// }))?;
/// assert!(schema.check_text(r#"{"answer": 42}"#).is_ok());
/// assert_eq!(schema.check_text(r#"{"answer": -1}"#).unwrap_err().kind, RedFlagKind::Schema);
/// assert_eq!(schema.check_text("forty-two").unwrap_err().kind, RedFlagKind::Parse);
/// # Ok::<(), overseer_semantic::schema::SchemaError>(())
/// ```
#[derive(Clone)]
pub struct Schema {
    validator: Arc<jsonschema::Validator>,
}

impl fmt::Debug for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Schema").finish_non_exhaustive()
    }
}

/// A schema that could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid JSON Schema: {0}")]
#[non_exhaustive]
pub struct SchemaError(pub String);

impl Schema {
    /// Compiles `schema`.
    ///
    /// # Errors
    ///
    /// [`SchemaError`] when `schema` is not a valid JSON Schema.
    pub fn new(schema: &Value) -> Result<Self, SchemaError> {
        let validator =
            jsonschema::validator_for(schema).map_err(|e| SchemaError(e.to_string()))?;
        Ok(Self {
            validator: Arc::new(validator),
        })
    }

    /// Whether `value` matches.
    ///
    /// # Errors
    ///
    /// A [`RedFlagKind::Schema`] flag naming the first mismatch and where it is.
    pub fn check_value(&self, value: &Value) -> Result<(), RedFlag> {
        self.validator.validate(value).map_err(|e| {
            RedFlag::new(
                RedFlagKind::Schema,
                format!("{e} (at {:?})", e.instance_path().as_str()),
            )
        })
    }

    /// Whether `text` is JSON that matches.
    ///
    /// # Errors
    ///
    /// A [`RedFlagKind::Parse`] flag when `text` is not JSON, a [`RedFlagKind::Schema`] one
    /// when it does not match.
    pub fn check_text(&self, text: &str) -> Result<(), RedFlag> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| RedFlag::new(RedFlagKind::Parse, format!("not JSON: {e}")))?;
        self.check_value(&value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_invalid_schema_is_a_typed_error() {
        assert!(Schema::new(&json!({"type": "no-such-type"})).is_err());
    }

    #[test]
    fn the_mismatch_names_its_place() {
        let schema = Schema::new(&json!({
            "type": "object",
            "properties": {"items": {"type": "array", "items": {"type": "string"}}}
        }))
        .unwrap();
        let flag = schema.check_value(&json!({"items": ["a", 2]})).unwrap_err();
        assert!(flag.detail.contains("/items/1"), "{}", flag.detail);
    }

    #[test]
    fn remote_references_are_not_fetched() {
        let schema = Schema::new(&json!({"$ref": "https://example.com/schema.json"}));
        assert!(schema.is_err());
    }
}
