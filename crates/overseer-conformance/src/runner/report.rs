//! What a run left behind, beyond its trace.

use std::collections::{BTreeMap, BTreeSet};

use overseer_supervisor::ChildFate;

/// What a run left behind, beyond its trace.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunReport {
    /// The trace, as [`run_text`](crate::runner::run_text) returns it.
    pub trace: String,
    /// The children running at the end (the trace's `alive:` line).
    pub alive: BTreeSet<String>,
    /// The last [`ChildFate`] each child (worker or supervisor) was told, by child id; a child
    /// never told one is absent.
    pub last_fates: BTreeMap<String, ChildFate>,
}
