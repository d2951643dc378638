//! The tree as one walk reads it ([`System::tree_snapshot`](crate::System::tree_snapshot)):
//! every supervisor and child depth first in start order, each supervisor with its restart
//! intensity and its use, each agent with its queue and health. What the web console and the
//! terminal view draw.

use std::collections::HashMap;

use overseer_supervisor::{
    ChildId, ChildOpError, ChildPath, ChildState, ChildType, Restart, SupervisorRef,
    SupervisorStatus,
};
use serde::Serialize;

use crate::health::AgentHealth;

/// One supervisor or child of the tree, as [`System::tree_snapshot`](crate::System::tree_snapshot)
/// read it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TreeNode {
    /// 0 for the root, 1 for its children, and so on.
    pub depth: usize,
    /// Its id (the root's: the last segment of its path).
    pub name: String,
    /// Its path in the tree.
    pub path: ChildPath,
    /// Whether it runs, as its supervisor (or, for a supervisor, itself) answered.
    pub state: NodeState,
    /// Its restart type; `None` for the root.
    pub restart: Option<Restart>,
    /// A supervisor, an agent or another worker, with what each reports.
    pub kind: NodeKind,
}

/// Whether a node runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum NodeState {
    /// Running.
    Running,
    /// A restart attempt failed; a retry is queued.
    Restarting,
    /// Stopped, its spec kept.
    NotRunning,
    /// A supervisor that exited while the tree was being read (an escalation, a shutdown).
    Exited,
    /// A supervisor that did not answer within its call timeout.
    Silent,
}

impl NodeState {
    /// Its name, as the views write it: `running`, `restarting`, `not running`, `exited`,
    /// `silent`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Restarting => "restarting",
            Self::NotRunning => "not running",
            Self::Exited => "exited",
            Self::Silent => "silent",
        }
    }
}

impl From<ChildState> for NodeState {
    fn from(state: ChildState) -> Self {
        match state {
            ChildState::Running => Self::Running,
            ChildState::Restarting => Self::Restarting,
            ChildState::NotRunning => Self::NotRunning,
        }
    }
}

/// What kind of node, with what it reports.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum NodeKind {
    /// A supervisor; `status` is `None` when it did not answer (exited, silent, not running).
    Supervisor {
        /// Its strategy and restart intensity, with the restarts that count now.
        status: Option<SupervisorStatus>,
    },
    /// An agent of the system.
    Agent {
        /// Tasks waiting in its queue.
        queued: usize,
        /// The most its queue holds.
        capacity: usize,
        /// What its health checks and heartbeats found.
        health: Option<AgentHealth>,
    },
    /// Another worker (a plain actor).
    Worker,
}

impl TreeNode {
    /// Whether it is a supervisor.
    pub fn is_supervisor(&self) -> bool {
        matches!(self.kind, NodeKind::Supervisor { .. })
    }

    /// Its supervisor status, if it is a supervisor that answered.
    pub fn supervisor_status(&self) -> Option<&SupervisorStatus> {
        match &self.kind {
            NodeKind::Supervisor { status } => status.as_ref(),
            _ => None,
        }
    }
}

/// What the walk knows of the system's agents: queue (queued, capacity) and health by name.
pub(crate) struct AgentFacts {
    pub(crate) queues: HashMap<String, (usize, usize)>,
    pub(crate) health: HashMap<String, AgentHealth>,
}

/// The tree under `root`, depth first in start order. Each supervisor is asked in turn (its
/// status, then its children), so it is a walk, not an atomic picture: a supervisor that exits
/// meanwhile is [`NodeState::Exited`], one that does not answer [`NodeState::Silent`], and
/// neither stops the walk.
pub(crate) async fn walk(root: &SupervisorRef, agents: &AgentFacts) -> Vec<TreeNode> {
    let (state, status) = read_status(root).await;
    let children = root.which_children().await.unwrap_or_default();
    let path = status
        .as_ref()
        .map(|status| status.path.clone())
        .or_else(|| children.first().and_then(|child| child.path.parent()))
        .unwrap_or_else(|| ChildPath::root(&ChildId::new("(root)")));
    // The root has no supervisor to keep its spec: gone is not running.
    let state = match state {
        NodeState::Exited => NodeState::NotRunning,
        state => state,
    };
    let mut nodes = vec![TreeNode {
        depth: 0,
        name: path.name().to_string(),
        path,
        state,
        restart: None,
        kind: NodeKind::Supervisor { status },
    }];
    let mut pending: Vec<_> = children.into_iter().rev().map(|c| (1, c)).collect();
    while let Some((depth, child)) = pending.pop() {
        let name = child.id.as_str().to_string();
        let mut state = NodeState::from(child.state);
        let kind = match (child.child_type, child.supervisor()) {
            (ChildType::Supervisor, None) => NodeKind::Supervisor { status: None },
            (_, Some(supervisor)) => {
                let (answered, status) = read_status(&supervisor).await;
                state = answered;
                if status.is_some() {
                    let grandchildren = supervisor.which_children().await.unwrap_or_default();
                    pending.extend(grandchildren.into_iter().rev().map(|g| (depth + 1, g)));
                }
                NodeKind::Supervisor { status }
            }
            (_, None) => match agents.queues.get(&name) {
                Some(&(queued, capacity)) => NodeKind::Agent {
                    queued,
                    capacity,
                    health: agents.health.get(&name).cloned(),
                },
                None => NodeKind::Worker,
            },
        };
        nodes.push(TreeNode {
            depth,
            name,
            path: child.path,
            state,
            restart: Some(child.restart),
            kind,
        });
    }
    nodes
}

/// A running supervisor's status, or the state its silence says.
async fn read_status(supervisor: &SupervisorRef) -> (NodeState, Option<SupervisorStatus>) {
    match supervisor.status().await {
        Ok(status) => (NodeState::Running, Some(status)),
        Err(ChildOpError::SupervisorNotRunning) => (NodeState::Exited, None),
        Err(_) => (NodeState::Silent, None),
    }
}
