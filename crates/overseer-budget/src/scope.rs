//! Who a ledger belongs to: the whole process or one agent.

use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The name of an agent, as the budget knows it.
///
/// Cloning is cheap (a reference-counted string), so reservations, warnings and reports can
/// carry it freely. It serializes as a plain string.
///
/// ```
/// use overseer_budget::AgentId;
///
/// let id = AgentId::from("researcher");
/// assert_eq!(id.as_str(), "researcher");
/// assert_eq!(serde_json::to_string(&id).unwrap(), r#""researcher""#);
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AgentId(Arc<str>);

impl AgentId {
    /// An agent id with this name.
    pub fn new(name: impl AsRef<str>) -> Self {
        Self(Arc::from(name.as_ref()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for AgentId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for AgentId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl From<&str> for AgentId {
    fn from(name: &str) -> Self {
        Self::new(name)
    }
}

impl From<String> for AgentId {
    fn from(name: String) -> Self {
        Self(Arc::from(name))
    }
}

impl fmt::Debug for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("AgentId").field(&&*self.0).finish()
    }
}

impl fmt::Display for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for AgentId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for AgentId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::from)
    }
}

/// Where a limit applies: to the whole process or to one agent.
///
/// An agent's spend always counts against the process as well, so a call admitted for an
/// agent holds budget in both scopes. Serialized as `"process"` or `{"agent": "name"}`;
/// displayed (and written into `tracing` fields) as `process` or `agent:name`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Scope {
    /// The whole process: every agent's spend added up.
    Process,
    /// One agent's own spend.
    Agent(AgentId),
}

impl Scope {
    /// The agent, for an agent scope.
    pub fn agent(&self) -> Option<&AgentId> {
        match self {
            Scope::Process => None,
            Scope::Agent(id) => Some(id),
        }
    }

    /// Whether this is the process scope.
    pub fn is_process(&self) -> bool {
        matches!(self, Scope::Process)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Process => f.write_str("process"),
            Scope::Agent(id) => write!(f, "agent:{id}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_serializes_as_process_or_named_agent() {
        assert_eq!(
            serde_json::to_string(&Scope::Process).unwrap(),
            r#""process""#
        );
        let agent = Scope::Agent(AgentId::from("writer"));
        let json = serde_json::to_string(&agent).unwrap();
        assert_eq!(json, r#"{"agent":"writer"}"#);
        assert_eq!(serde_json::from_str::<Scope>(&json).unwrap(), agent);
    }

    #[test]
    fn scope_displays_as_a_short_label() {
        assert_eq!(Scope::Process.to_string(), "process");
        assert_eq!(Scope::Agent("a1".into()).to_string(), "agent:a1");
    }
}
