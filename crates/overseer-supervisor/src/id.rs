//! Names of children and their place in the tree.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The name of a child under its supervisor, unique among that supervisor's children.
///
/// Cheap to clone (an `Arc<str>` inside). A restarted child keeps its id.
///
/// Any string makes a `ChildId`, but a tree runs only valid ones: [`validate`](Self::validate)
/// says which, and every spec, every child added at run time and every agent name is checked
/// with it before anything starts. A valid id is 1 to [`MAX_LEN`](Self::MAX_LEN) bytes of
/// ASCII letters, digits, `-`, `_`, `.`, `:` and `@`. So an id never holds the `/` that joins
/// a [`ChildPath`] (two different children could otherwise have the same path), nor
/// whitespace, control characters, quotes, backslashes, braces, commas or `=`, which would
/// break log lines, OTP-style traces or metric labels.
///
/// ```
/// use overseer_supervisor::{ChildId, IdError};
/// let id = ChildId::from("researcher-1");
/// assert_eq!(id.as_str(), "researcher-1");
/// assert_eq!(id.validate(), Ok(()));
/// assert_eq!(
///     ChildId::from("team/alpha").validate(),
///     Err(IdError::ForbiddenChar { found: '/', at: 4 })
/// );
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ChildId(Arc<str>);

impl ChildId {
    /// The longest valid id, in bytes.
    pub const MAX_LEN: usize = 255;

    /// Makes an id from any string (see [`validate`](Self::validate) for the ones a tree
    /// accepts).
    pub fn new(id: impl AsRef<str>) -> Self {
        Self(Arc::from(id.as_ref()))
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether a tree accepts this id: 1 to [`MAX_LEN`](Self::MAX_LEN) bytes, each an ASCII
    /// letter or digit or one of `-` `_` `.` `:` `@` ([`is_id_char`](Self::is_id_char)). The
    /// one rule every id of a tree, and every agent name, is checked with.
    pub fn validate(&self) -> Result<(), IdError> {
        let id = self.as_str();
        if id.is_empty() {
            return Err(IdError::Empty);
        }
        if let Some((at, found)) = id.char_indices().find(|&(_, c)| !Self::is_id_char(c)) {
            return Err(IdError::ForbiddenChar { found, at });
        }
        if id.len() > Self::MAX_LEN {
            return Err(IdError::TooLong {
                len: id.len(),
                max: Self::MAX_LEN,
            });
        }
        Ok(())
    }

    /// Whether `c` may appear in a valid id.
    pub fn is_id_char(c: char) -> bool {
        c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '@')
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
/// A path knows its depth and where its last id begins from how it was built
/// ([`root`](Self::root), then [`join`](Self::join)), not by reading its text. Since valid ids
/// never hold a `/`, the text of a path in a running tree is unambiguous too; a path read back
/// from text (serde) is split at each `/`.
///
/// ```
/// use overseer_supervisor::{ChildId, ChildPath};
/// let root = ChildPath::root(&ChildId::from("root"));
/// let leaf = root.join(&ChildId::from("worker"));
/// assert_eq!(leaf.as_str(), "root/worker");
/// assert_eq!(leaf.name(), "worker");
/// assert_eq!(leaf.depth(), 1);
/// assert!(root.is_root() && !leaf.is_root());
/// assert_eq!(leaf.parent(), Some(root));
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChildPath {
    text: Arc<str>,
    /// How many supervisors lie above the last id.
    depth: usize,
    /// Where the last id begins in `text`.
    name_at: usize,
}

impl ChildPath {
    /// The path of a root supervisor with this id.
    pub fn root(id: &ChildId) -> Self {
        Self {
            text: Arc::clone(&id.0),
            depth: 0,
            name_at: 0,
        }
    }

    /// The path of the child `id` below this one.
    pub fn join(&self, id: &ChildId) -> Self {
        let mut joined = String::with_capacity(self.text.len() + 1 + id.0.len());
        joined.push_str(&self.text);
        joined.push('/');
        joined.push_str(&id.0);
        Self {
            text: Arc::from(joined),
            depth: self.depth + 1,
            name_at: self.text.len() + 1,
        }
    }

    /// The whole path as a string.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `other` is a clone of this very path (it shares its text): cheaper than `==`,
    /// for a cache that keeps a path and wants to know whether it already holds this one.
    /// Two equal paths built apart are not the same.
    ///
    /// ```
    /// use overseer_supervisor::{ChildId, ChildPath};
    /// let root = ChildPath::root(&ChildId::from("root"));
    /// assert!(root.is_same(&root.clone()));
    /// assert!(!root.is_same(&ChildPath::root(&ChildId::from("root"))));
    /// ```
    pub fn is_same(&self, other: &ChildPath) -> bool {
        Arc::ptr_eq(&self.text, &other.text) && self.name_at == other.name_at
    }

    /// The last segment: the id of the child this path names.
    pub fn name(&self) -> &str {
        &self.text[self.name_at..]
    }

    /// How many supervisors lie above this path's last segment (0 for the root).
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// Whether this is the path of a root supervisor.
    pub fn is_root(&self) -> bool {
        self.depth == 0
    }

    /// The path of the supervisor above, `None` for the root.
    pub fn parent(&self) -> Option<ChildPath> {
        let depth = self.depth.checked_sub(1)?;
        let text = &self.text[..self.name_at.saturating_sub(1)];
        // The root's id is the whole rest, whatever it holds; below it ids hold no `/`.
        let name_at = match depth {
            0 => 0,
            _ => text.rfind('/').map_or(0, |slash| slash + 1),
        };
        Some(Self {
            text: Arc::from(text),
            depth,
            name_at,
        })
    }

    /// A path from its text, split at each `/`.
    fn from_text(text: &str) -> Self {
        Self {
            depth: text.matches('/').count(),
            name_at: text.rfind('/').map_or(0, |slash| slash + 1),
            text: Arc::from(text),
        }
    }
}

impl Serialize for ChildPath {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for ChildPath {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Ok(Self::from_text(&text))
    }
}

impl fmt::Display for ChildPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for ChildPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.text, f)
    }
}

/// Why a string is not a valid [`ChildId`] (see [`ChildId::validate`] for the rule).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    /// The id is empty.
    #[error("an id cannot be empty")]
    Empty,
    /// The id is longer than [`ChildId::MAX_LEN`].
    #[error("an id is at most {max} bytes long; this one is {len}")]
    TooLong {
        /// The id's length, in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The id holds a character other than an ASCII letter or digit, `-`, `_`, `.`, `:` or
    /// `@` (a `/` would make paths ambiguous; whitespace, control characters, quotes and
    /// braces break logs, traces and metric labels).
    #[error("an id holds only ASCII letters, digits, '-', '_', '.', ':' and '@'; found {found:?} at byte {at}")]
    ForbiddenChar {
        /// The first character not allowed.
        found: char,
        /// Where it is, in bytes from the start.
        at: usize,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(ids: &[&str]) -> ChildPath {
        let mut path = ChildPath::root(&ChildId::from(ids[0]));
        for id in &ids[1..] {
            path = path.join(&ChildId::from(*id));
        }
        path
    }

    #[test]
    fn a_path_read_back_from_text_is_the_path_that_was_written() {
        let written = path(&["root", "team", "a"]);
        let json = serde_json::to_string(&written).unwrap();
        assert_eq!(json, "\"root/team/a\"");
        let read: ChildPath = serde_json::from_str(&json).unwrap();
        assert_eq!(read, written);
        assert_eq!((read.depth(), read.name()), (2, "a"));
    }

    #[test]
    fn parents_are_found_by_structure() {
        let leaf = path(&["root", "team", "a"]);
        let team = leaf.parent().unwrap();
        assert_eq!(
            (team.as_str(), team.name(), team.depth()),
            ("root/team", "team", 1)
        );
        assert_eq!(team.parent(), Some(path(&["root"])));
        assert_eq!(path(&["root"]).parent(), None);
        // A root id holding a `/` (a tree refuses it) is still the root.
        let odd = path(&["team/alpha", "x"]);
        let root = odd.parent().unwrap();
        assert_eq!((root.name(), root.depth()), ("team/alpha", 0));
    }

    #[test]
    fn ids_are_checked_by_one_rule() {
        assert_eq!(ChildId::from("").validate(), Err(IdError::Empty));
        assert_eq!(ChildId::from("a-b_c.d:e@f9").validate(), Ok(()));
        assert_eq!(
            ChildId::from("x".repeat(ChildId::MAX_LEN)).validate(),
            Ok(())
        );
        assert_eq!(
            ChildId::from("x".repeat(ChildId::MAX_LEN + 1)).validate(),
            Err(IdError::TooLong {
                len: ChildId::MAX_LEN + 1,
                max: ChildId::MAX_LEN
            })
        );
        for (id, found, at) in [
            ("a/b", '/', 1),
            ("a b", ' ', 1),
            ("\u{7f}", '\u{7f}', 0),
            ("é", 'é', 0),
            ("a\"", '"', 1),
            ("{", '{', 0),
        ] {
            assert_eq!(
                ChildId::from(id).validate(),
                Err(IdError::ForbiddenChar { found, at }),
                "{id:?}"
            );
        }
    }
}
