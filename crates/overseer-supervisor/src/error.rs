//! Errors: invalid specs, failed starts, and the outcomes of the child API.

use serde::{Deserialize, Serialize};

use crate::{ChildId, ChildPath, IdError};

/// A supervisor or child spec that cannot be run, found before anything starts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// An id (of a supervisor or a child) is not valid (see [`ChildId::validate`]).
    #[error("supervisor {supervisor:?}: invalid id {id:?}: {error}")]
    InvalidId {
        /// The supervisor holding the child, or the supervisor itself if its own id is
        /// invalid.
        supervisor: ChildId,
        /// The invalid id.
        id: ChildId,
        /// What is wrong with it.
        error: IdError,
    },
    /// Two children of one supervisor share an id.
    #[error("supervisor '{supervisor}': duplicate child id '{child}'")]
    DuplicateChildId {
        /// The supervisor.
        supervisor: ChildId,
        /// The repeated id.
        child: ChildId,
    },
    /// The restart period is zero.
    #[error("supervisor '{supervisor}': the restart period must be at least one second")]
    ZeroPeriod {
        /// The supervisor.
        supervisor: ChildId,
    },
    /// The restart period is not a whole number of seconds.
    #[error("supervisor '{supervisor}': the restart period must be a whole number of seconds (restarts are counted in whole seconds, as in OTP); got {period_ms} ms")]
    FractionalPeriod {
        /// The supervisor.
        supervisor: ChildId,
        /// The period given, in milliseconds.
        period_ms: u128,
    },
    /// A child is significant and permanent: it would be restarted, so it could never shut
    /// its supervisor down.
    #[error("supervisor '{supervisor}': child '{child}' is significant and permanent; significant children must be transient or temporary")]
    SignificantPermanent {
        /// The supervisor.
        supervisor: ChildId,
        /// The child.
        child: ChildId,
    },
    /// A child is significant under a supervisor whose `auto_shutdown` is `never`.
    #[error(
        "supervisor '{supervisor}': child '{child}' is significant but auto_shutdown is never"
    )]
    SignificantWithoutAutoShutdown {
        /// The supervisor.
        supervisor: ChildId,
        /// The child.
        child: ChildId,
    },
    /// A shutdown timeout of zero.
    #[error("supervisor '{supervisor}': child '{child}' has a zero shutdown timeout; use Shutdown::BrutalKill to kill at once")]
    ZeroShutdownTimeout {
        /// The supervisor.
        supervisor: ChildId,
        /// The child.
        child: ChildId,
    },
    /// A dynamic supervisor does not have exactly one child template.
    #[error("dynamic supervisor '{supervisor}' needs exactly one child template; it has {count}")]
    DynamicTemplateCount {
        /// The supervisor.
        supervisor: ChildId,
        /// How many templates it was given.
        count: usize,
    },
    /// A dynamic supervisor was given static children.
    #[error("dynamic supervisor '{supervisor}' was given static children ({count}); its children are added at run time from its template")]
    DynamicWithStaticChildren {
        /// The supervisor.
        supervisor: ChildId,
        /// How many static children it was given.
        count: usize,
    },
    /// A static supervisor was given a template.
    #[error("supervisor '{supervisor}' has a child template but is not dynamic; use SupervisorSpec::dynamic")]
    TemplateWithoutDynamic {
        /// The supervisor.
        supervisor: ChildId,
    },
    /// A child that must be unique in the whole tree
    /// ([`ChildSpec::unique_in_tree`](crate::ChildSpec::unique_in_tree), as every agent is) is
    /// in the tree twice, or another such child has its id.
    #[error("supervisor '{supervisor}': child '{child}' must be unique in the tree, but supervisor '{other}' has a child '{child}' too")]
    DuplicateInTree {
        /// The supervisor holding the second one found.
        supervisor: ChildId,
        /// The child's id.
        child: ChildId,
        /// The supervisor holding the first one found.
        other: ChildId,
    },
    /// A child that must be unique in the tree is a dynamic supervisor's template, from which
    /// any number of children are made.
    #[error("dynamic supervisor '{supervisor}': child '{child}' must be unique in the tree and cannot be a template")]
    UniqueTemplate {
        /// The dynamic supervisor.
        supervisor: ChildId,
        /// The template's id.
        child: ChildId,
    },
    /// Supervisors nested deeper than [`MAX_TREE_DEPTH`](crate::MAX_TREE_DEPTH).
    #[error("supervisor '{supervisor}' nests supervisors deeper than {limit} levels")]
    TooDeep {
        /// The supervisor at which the limit was passed.
        supervisor: ChildId,
        /// The limit.
        limit: usize,
    },
}

/// Why a child could not be started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
#[non_exhaustive]
pub enum StartError {
    /// The start function, or the actor's `pre_start`, returned an error.
    #[error("{0}")]
    Failed(String),
    /// The start function, or the actor's `pre_start`, panicked.
    #[error("panicked while starting: {0}")]
    Panicked(String),
    /// A supervisor could not start because one of its children failed to start.
    #[error("child '{child}' failed to start: {cause}")]
    ChildFailed {
        /// The child that failed.
        child: ChildId,
        /// Why.
        cause: Box<StartError>,
    },
    /// The spec is invalid.
    #[error("invalid spec: {0}")]
    InvalidSpec(String),
    /// The supervisor is shutting down and starts nothing new.
    #[error("the supervisor is shutting down")]
    SupervisorStopping,
    /// The child's name is held by another child of the tree, and names must be unique in the
    /// tree (an agent's name is unique in its system): nothing was started and nothing taken
    /// over.
    #[error("the name '{name}' is taken{}", match holder {
        Some(holder) => format!(" by {holder}"),
        None => " by an agent declared elsewhere".to_string(),
    })]
    NameTaken {
        /// The name.
        name: ChildId,
        /// Where the child holding it is placed, if it is in the tree.
        holder: Option<ChildPath>,
    },
}

impl StartError {
    /// A start failure with this message.
    pub fn failed(message: impl Into<String>) -> Self {
        Self::Failed(message.into())
    }
}

/// The outcome of a failed call on a running supervisor ([`SupervisorRef`](crate::SupervisorRef)),
/// mirroring OTP's `{error, _}` replies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChildOpError {
    /// No child has this id (OTP `{error, not_found}`).
    #[error("no child '{0}'")]
    NotFound(ChildId),
    /// The child is running, so it cannot be restarted or deleted (OTP `{error, running}`).
    #[error("child '{0}' is running")]
    Running(ChildId),
    /// The child is waiting for a restart retry (OTP `{error, restarting}`).
    #[error("child '{0}' is being restarted")]
    Restarting(ChildId),
    /// A child with this id is already running (OTP `{error, {already_started, Pid}}`).
    #[error("child '{0}' is already started")]
    AlreadyStarted(ChildId),
    /// A stopped child with this id is already present (OTP `{error, already_present}`).
    #[error("a child '{0}' is already present (stopped); restart or delete it")]
    AlreadyPresent(ChildId),
    /// The operation does not apply to a dynamic supervisor (OTP `{error, simple_one_for_one}`).
    #[error("not allowed on a dynamic supervisor")]
    NotAllowedOnDynamic,
    /// The operation needs a dynamic supervisor.
    #[error("only allowed on a dynamic supervisor")]
    OnlyOnDynamic,
    /// The child spec is invalid.
    #[error(transparent)]
    InvalidSpec(#[from] SpecError),
    /// The child failed to start.
    #[error("child failed to start: {0}")]
    StartFailed(StartError),
    /// The supervisor is not running (it exited or never started).
    #[error("the supervisor is not running")]
    SupervisorNotRunning,
    /// The supervisor did not answer within the call timeout.
    #[error("the supervisor did not answer within {0:?}")]
    Timeout(std::time::Duration),
}

/// Errors from starting or stopping a whole tree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TreeError {
    /// The root spec is invalid.
    #[error(transparent)]
    InvalidSpec(#[from] SpecError),
    /// The root supervisor failed to start.
    #[error("the root supervisor failed to start: {0}")]
    StartFailed(StartError),
    /// The tree's call timeout is zero: every call would time out at once.
    #[error("the call timeout is zero")]
    ZeroCallTimeout,
    /// The tree did not stop within the deadline; it was killed.
    #[error("the tree did not stop within {0:?} and was killed")]
    ShutdownTimedOut(std::time::Duration),
    /// The tree did not stop within the deadline, and some of its actors were still running
    /// after they were killed: their handlers never yield to the runtime (a busy loop with no
    /// `.await`), which a cooperative scheduler cannot preempt. They end when their handlers
    /// yield; run CPU-bound work with `tokio::task::spawn_blocking`.
    #[error("the tree did not stop within {deadline:?}; {} killed actor(s) still run, their handlers never yielding to the runtime", running.len())]
    ShutdownIncomplete {
        /// The deadline that passed.
        deadline: std::time::Duration,
        /// The ids of the actors still running.
        running: Vec<String>,
    },
}
