//! Names of children and their place in the tree.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The name of a child under its supervisor, unique among that supervisor's children.
///
/// Cheap to clone (an `Arc<str>` inside). A restarted child keeps its id.
///
/// ```
/// use overseer_supervisor::ChildId;
/// let id = ChildId::from("researcher-1");
/// assert_eq!(id.as_str(), "researcher-1");
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ChildId(Arc<str>);

impl ChildId {
    /// Makes an id from any string.
    pub fn new(id: impl AsRef<str>) -> Self {
        Self(Arc::from(id.as_ref()))
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for ChildId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl From<&str> for ChildId {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

impl From<String> for ChildId {
    fn from(value: String) -> Self {
        Self(Arc::from(value))
    }
}

impl From<&String> for ChildId {
    fn from(value: &String) -> Self {
        Self::new(value)
    }
}

impl fmt::Display for ChildId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ChildId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

/// Where a supervisor or child sits in the tree: the ids from the root down, joined by `/`
/// (for example `root/researchers/researcher-1`).
///
/// ```
/// use overseer_supervisor::{ChildId, ChildPath};
/// let root = ChildPath::root(&ChildId::from("root"));
/// let leaf = root.join(&ChildId::from("worker"));
/// assert_eq!(leaf.as_str(), "root/worker");
/// assert_eq!(leaf.name(), "worker");
/// assert_eq!(leaf.depth(), 1);
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ChildPath(Arc<str>);

impl ChildPath {
    /// The path of a root supervisor with this id.
    pub fn root(id: &ChildId) -> Self {
        Self(Arc::clone(&id.0))
    }

    /// The path of the child `id` below this one.
    pub fn join(&self, id: &ChildId) -> Self {
        let mut joined = String::with_capacity(self.0.len() + 1 + id.0.len());
        joined.push_str(&self.0);
        joined.push('/');
        joined.push_str(&id.0);
        Self(Arc::from(joined))
    }

    /// The whole path as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last segment: the id of the child this path names.
    pub fn name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// How many supervisors lie above this path's last segment (0 for the root).
    pub fn depth(&self) -> usize {
        self.0.matches('/').count()
    }
}

impl fmt::Display for ChildPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ChildPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}
