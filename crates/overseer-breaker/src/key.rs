//! The identity of a breaker: which agent, doing which kind of task.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The key a breaker is registered under: an agent and a task type.
///
/// One agent can be healthy at summarising and failing at code generation (a different
/// model, a different tool), so breakers are kept per `(agent, task type)` pair.
///
/// Both parts are `Arc<str>`, so cloning a key is two reference-count increments and
/// never copies the strings. Build keys once (for example when an agent is spawned)
/// and clone them onto the call path.
///
/// ```
/// use overseer_breaker::BreakerKey;
///
/// let key = BreakerKey::new("researcher", "summarize");
/// assert_eq!(&*key.agent, "researcher");
/// assert_eq!(key.to_string(), "researcher/summarize");
/// ```
#[derive(Clone, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BreakerKey {
    /// The agent's name, as the supervisor knows it.
    pub agent: Arc<str>,
    /// The kind of task sent to the agent (`"summarize"`, `"plan"`, ...).
    pub task_type: Arc<str>,
}

impl BreakerKey {
    /// A key for `agent` doing `task_type`.
    pub fn new(agent: impl Into<Arc<str>>, task_type: impl Into<Arc<str>>) -> Self {
        Self {
            agent: agent.into(),
            task_type: task_type.into(),
        }
    }

    /// A hash of the key's text that is the same in every process and every run
    /// (FNV-1a), used to give each breaker its own jitter sequence from one seed.
    pub(crate) fn stable_hash(&self) -> u64 {
        const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
        const PRIME: u64 = 0x0000_0100_0000_01b3;
        let mut hash = OFFSET;
        let bytes = self
            .agent
            .bytes()
            .chain(std::iter::once(0xff))
            .chain(self.task_type.bytes());
        for byte in bytes {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(PRIME);
        }
        hash
    }
}

impl PartialEq for BreakerKey {
    /// Equal text is equal; clones of one key compare by pointer first, which skips the
    /// string comparison on every registry lookup (`Arc<str>` itself does not do this).
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        same_str(&self.agent, &other.agent) && same_str(&self.task_type, &other.task_type)
    }
}

impl Hash for BreakerKey {
    /// Hashes the text, like the derived impl would, so it agrees with `eq`.
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.agent.hash(state);
        self.task_type.hash(state);
    }
}

#[inline]
fn same_str(a: &Arc<str>, b: &Arc<str>) -> bool {
    Arc::ptr_eq(a, b) || **a == **b
}

impl fmt::Display for BreakerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.agent, self.task_type)
    }
}

impl fmt::Debug for BreakerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BreakerKey({}/{})", self.agent, self.task_type)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_hash_differs_when_the_split_between_agent_and_task_moves() {
        let a = BreakerKey::new("ab", "c");
        let b = BreakerKey::new("a", "bc");
        assert_ne!(a.stable_hash(), b.stable_hash());
    }

    #[test]
    fn stable_hash_is_the_same_for_equal_keys_built_separately() {
        let a = BreakerKey::new("researcher", "summarize");
        let b = BreakerKey::new(String::from("researcher"), "summarize");
        assert_eq!(a.stable_hash(), b.stable_hash());
    }

    #[test]
    fn keys_with_equal_text_are_equal_whether_or_not_they_share_storage() {
        let a = BreakerKey::new("researcher", "summarize");
        assert_eq!(a, a.clone());
        assert_eq!(a, BreakerKey::new("researcher", "summarize"));
        assert_ne!(a, BreakerKey::new("researcher", "plan"));
        assert_ne!(a, BreakerKey::new("coder", "summarize"));
    }

    #[test]
    fn keys_round_trip_through_json() {
        let key = BreakerKey::new("researcher", "summarize");
        let json = serde_json::to_string(&key).unwrap();
        assert_eq!(json, r#"{"agent":"researcher","task_type":"summarize"}"#);
        let back: BreakerKey = serde_json::from_str(&json).unwrap();
        assert_eq!(back, key);
    }
}
