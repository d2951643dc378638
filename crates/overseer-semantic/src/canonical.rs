//! A canonical form of JSON values and a hash of it that is stable across processes.
//!
//! Two tool calls whose arguments differ only in object key order or in how a whole number
//! is written (`2` or `2.0`) are the same call. [`canonical_json`] writes a value with
//! object keys sorted, no whitespace and whole numbers without a fraction;
//! [`canonical_hash`] is the first 64 bits of its SHA-256.
//!
//! **Why SHA-256**: the hash identifies calls in events, in logs and perhaps in a journal, so
//! it must be the same in every process, on every platform and with every Rust release.
//! `std`'s `DefaultHasher` promises none of that (its algorithm may change between
//! releases, and `RandomState` is seeded per process), and a fast seeded hash (foldhash,
//! ahash) is seeded on purpose. SHA-256 is a published standard; `sha2` (RustCrypto) is
//! maintained, has no dependencies outside RustCrypto's own, and was already in the
//! workspace's lock file. Its cost (about 380 ns for a small argument object, canonical
//! writing included) is negligible beside a model or tool call. 64 bits keep a collision between two distinct
//! calls of one agent below one in 10^10 for 10^4 distinct calls.

use std::fmt;

use serde_json::{Number, Value};
use sha2::{Digest, Sha256};

/// The stable hash of a JSON value's canonical form (see the [module documentation](self)).
///
/// ```
/// use overseer_semantic::canonical::canonical_hash;
/// use serde_json::json;
///
/// let a = canonical_hash(&json!({"query": "rust", "limit": 10}));
/// let b = canonical_hash(&json!({"limit": 10.0, "query": "rust"}));
/// assert_eq!(a, b);
/// assert_ne!(a, canonical_hash(&json!({"query": "rust", "limit": 11})));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CanonicalHash(pub u64);

impl CanonicalHash {
    /// The hash of a text output, as the JSON string holding it.
    pub fn of_text(text: &str) -> Self {
        canonical_hash(&Value::String(text.to_owned()))
    }
}

impl fmt::Display for CanonicalHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// The first 64 bits (big-endian) of the SHA-256 of [`canonical_json`]`(value)`.
pub fn canonical_hash(value: &Value) -> CanonicalHash {
    let digest = Sha256::digest(canonical_json(value).as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    CanonicalHash(u64::from_be_bytes(first))
}

/// `value` as compact JSON with object keys sorted (by their UTF-8 bytes) and whole numbers
/// of magnitude below 2^53 written as integers.
///
/// ```
/// use overseer_semantic::canonical::canonical_json;
/// use serde_json::json;
///
/// assert_eq!(canonical_json(&json!({"b": [1.0, 2.5], "a": null})), r#"{"a":null,"b":[1,2.5]}"#);
/// ```
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_value(value, &mut out);
    out
}

fn write_value(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => write_number(n, out),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            // Sorted here: serde_json's map keeps insertion order when a crate in the build
            // turns on its `preserve_order` feature.
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(key, out);
                out.push(':');
                write_value(item, out);
            }
            out.push('}');
        }
    }
}

/// Below 2^53 every whole f64 is exact, so `2.0` and `2` are the same number.
const EXACT_WHOLE: f64 = 9_007_199_254_740_992.0;

fn write_number(n: &Number, out: &mut String) {
    use std::fmt::Write as _;
    let whole = n
        .as_f64()
        .filter(|f| !n.is_i64() && !n.is_u64() && f.fract() == 0.0 && f.abs() < EXACT_WHOLE);
    // Writing into a String cannot fail.
    let _ = match whole {
        #[allow(clippy::cast_possible_truncation)]
        Some(f) => write!(out, "{}", f as i64),
        None => write!(out, "{n}"),
    };
}

fn write_string(s: &str, out: &mut String) {
    // serde_json's own escaping, so the text is valid JSON; a &str always serializes.
    out.push_str(&serde_json::to_string(s).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_order_and_whole_number_spelling_do_not_matter() {
        let a = json!({"x": {"q": [1, 2], "p": "s"}, "n": -0.0});
        let b: Value = serde_json::from_str(r#"{"n":0,"x":{"p":"s","q":[1.0,2]}}"#).unwrap();
        assert_eq!(canonical_json(&a), canonical_json(&b));
        assert_eq!(canonical_hash(&a), canonical_hash(&b));
    }

    #[test]
    fn different_values_differ() {
        let values = [
            json!(null),
            json!(false),
            json!(0),
            json!("0"),
            json!([0]),
            json!({"0": 0}),
            json!(0.5),
            json!(["a", "b"]),
            json!(["ab"]),
        ];
        let hashes: std::collections::HashSet<_> = values.iter().map(canonical_hash).collect();
        assert_eq!(hashes.len(), values.len());
    }

    #[test]
    fn strings_are_escaped() {
        assert_eq!(
            canonical_json(&json!({"a\"b": "c\nd"})),
            r#"{"a\"b":"c\nd"}"#
        );
    }

    #[test]
    fn the_hash_is_the_same_in_every_process() {
        // A fixed value: if this changes, hashes in old events and journals no longer match.
        let value = json!({"tool": "search", "args": {"q": "overseer", "page": 2}});
        assert_eq!(
            canonical_json(&value),
            r#"{"args":{"page":2,"q":"overseer"},"tool":"search"}"#
        );
        let expected = Sha256::digest(canonical_json(&value).as_bytes());
        assert_eq!(
            canonical_hash(&value).0.to_be_bytes(),
            expected[..8],
            "the first 8 bytes of the SHA-256"
        );
        assert_eq!(canonical_hash(&value).to_string(), GOLDEN);
    }

    /// `printf %s '{"args":{"page":2,"q":"overseer"},"tool":"search"}' | sha256sum`, first 16 digits.
    const GOLDEN: &str = "5416eb5ef4ae3ad1";
}
