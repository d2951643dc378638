//! An agent's name.

/// An agent's name: its child id in the supervision tree.
pub type AgentName = overseer_supervisor::ChildId;
