//! Idempotency keys derived from (run, step), and fingerprints of payloads.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{RunId, StepId};

/// The version of the key derivation, part of what is hashed: a later derivation gets other
/// keys instead of colliding with these.
const KEY_DERIVATION: &[u8] = b"overseer-idempotency-key/v1";

/// The idempotency key of a step, handed to an external system that applies a request once per
/// key ([`Effect::Keyed`](crate::Effect::Keyed)).
///
/// Derived from the run and the step id alone, never from the attempt, so a retry and a replay
/// after a crash send the same key: 32 hexadecimal digits of SHA-256 over a versioned encoding of
/// (run, path, ask, ordinal). A caller with a business key (an order id) may use its own instead
/// ([`IdempotencyKey::given`]).
///
/// ```
/// use overseer_journal::{IdempotencyKey, RunId, StepId};
///
/// let run = RunId::new("order-7")?;
/// let key = IdempotencyKey::derive(&run, &StepId::new("root/payer", 0, 1));
/// assert_eq!(key, IdempotencyKey::derive(&run, &StepId::new("root/payer", 0, 1)));
/// assert_ne!(key, IdempotencyKey::derive(&run, &StepId::new("root/payer", 0, 2)));
/// assert_eq!(key.as_str().len(), 32);
/// # Ok::<(), overseer_journal::RunIdError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// The key of `step` in `run`.
    pub fn derive(run: &RunId, step: &StepId) -> Self {
        let mut hash = Sha256::new();
        for part in [
            KEY_DERIVATION,
            run.as_str().as_bytes(),
            step.path.as_bytes(),
            &step.ask.to_be_bytes(),
            &step.ordinal.to_be_bytes(),
        ] {
            // Length-prefixed, so that ("ab", "c") and ("a", "bc") differ.
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part);
        }
        Self(hex(&hash.finalize()[..16]))
    }

    /// A key the caller chose (a business key).
    pub fn given(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdempotencyKey({})", self.0)
    }
}

/// What a payload was, in 32 bytes: a second ask with the same run id but another payload is a
/// [conflict](crate::RunAdmission::Conflict), as Stripe answers the same key with other
/// parameters.
///
/// ```
/// use overseer_journal::Fingerprint;
/// assert_eq!(Fingerprint::of(b"{\"q\":1}"), Fingerprint::of(b"{\"q\":1}"));
/// assert_ne!(Fingerprint::of(b"{\"q\":1}"), Fingerprint::of(b"{\"q\":2}"));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Fingerprint(#[serde(with = "hex_bytes")] [u8; 32]);

impl Fingerprint {
    /// The SHA-256 of `payload`.
    pub fn of(payload: &[u8]) -> Self {
        Self(Sha256::digest(payload).into())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({}…)", hex(&self.0[..6]))
    }
}

fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        // Writing to a String cannot fail.
        let _ = write!(text, "{byte:02x}");
    }
    text
}

/// A fingerprint in the journal as 64 hexadecimal digits.
mod hex_bytes {
    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::hex(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let text = String::deserialize(d)?;
        let mut bytes = [0u8; 32];
        if text.len() != 64 || !text.is_ascii() {
            return Err(D::Error::custom("a fingerprint is 64 hexadecimal digits"));
        }
        for (byte, pair) in bytes.iter_mut().zip(text.as_bytes().chunks(2)) {
            let digits = std::str::from_utf8(pair).map_err(D::Error::custom)?;
            *byte = u8::from_str_radix(digits, 16).map_err(D::Error::custom)?;
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_derivation_is_fixed() {
        // Keys leave the process: a change of derivation would make a retry after an upgrade
        // a new request to the external system. This value must never change.
        let run = RunId::new("run-1").unwrap();
        let key = IdempotencyKey::derive(&run, &StepId::new("root/a", 0, 0));
        // Computed apart (Python's hashlib over the same length-prefixed parts).
        assert_eq!(key.as_str(), "b468398b873d7f7ea4d62e1b7f78099d");
    }

    fn key_of(run: &str, path: &str, ask: u32, ordinal: u32) -> String {
        IdempotencyKey::derive(&RunId::new(run).unwrap(), &StepId::new(path, ask, ordinal)).0
    }

    #[test]
    fn parts_do_not_run_into_each_other() {
        assert_ne!(key_of("ab", "c", 0, 0), key_of("a", "bc", 0, 0));
        assert_ne!(key_of("r", "p", 1, 0), key_of("r", "p", 0, 1));
    }

    #[test]
    fn fingerprints_round_trip_and_refuse_garbage() {
        let print = Fingerprint::of(b"payload");
        let text = serde_json::to_string(&print).unwrap();
        assert_eq!(serde_json::from_str::<Fingerprint>(&text).unwrap(), print);
        assert!(serde_json::from_str::<Fingerprint>("\"abc\"").is_err());
        assert!(serde_json::from_str::<Fingerprint>(&format!("\"{}\"", "zz".repeat(32))).is_err());
    }
}
