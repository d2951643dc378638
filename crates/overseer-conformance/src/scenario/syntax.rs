//! The scenario as data: the supervision tree to start and the actions to run against it.

use std::fmt;

use crate::term::Term;

/// How many supervisors may be nested inside each other (the root is level 1).
///
/// A deeper tree is rejected with
/// [`ScenarioErrorKind::TreeTooDeep`](crate::ScenarioErrorKind::TreeTooDeep). The parser itself is
/// iterative, but the derived `Clone`, `PartialEq` and `Debug` of [`SupNode`] (and any code that
/// walks the tree recursively) use stack per level: in a debug build they overflow a 2 MiB
/// thread (the default for spawned threads and tests) between 1024 and 2048 levels. 256 keeps
/// a wide margin while being far deeper than any real supervision tree.
pub const MAX_TREE_DEPTH: usize = 256;

/// A parsed `.scn` file: the supervision tree to start and the actions to run against it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scenario {
    /// The root supervisor.
    pub root: SupNode,
    /// The action lines, in order.
    pub actions: Vec<ActionLine>,
}

/// A `sup` line and everything nested under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupNode {
    /// The supervisor's name.
    pub name: String,
    /// Its restart strategy (default [`Strategy::OneForOne`]).
    pub strategy: Strategy,
    /// Maximum restarts within `period_secs` (default 1).
    pub intensity: u32,
    /// The intensity window in seconds (default 5).
    pub period_secs: u64,
    /// When it shuts itself down because significant children exited (default never).
    pub auto_shutdown: AutoShutdown,
    /// This supervisor's own options as a child of its parent (ignored on the root).
    pub opts: ChildOpts,
    /// Static children in start order (empty for `simple_one_for_one`).
    pub children: Vec<Node>,
    /// The child template: `Some` exactly for `simple_one_for_one` (its `name` is empty).
    pub template: Option<WorkerNode>,
    /// 1-based line of the `sup` line.
    pub line: usize,
}

/// A child in a supervisor's start order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A `child` line.
    Worker(WorkerNode),
    /// A nested `sup` line.
    Sup(SupNode),
}

impl Node {
    /// The child's name.
    pub fn name(&self) -> &str {
        match self {
            Node::Worker(worker) => &worker.name,
            Node::Sup(sup) => &sup.name,
        }
    }

    /// The child's options in its supervisor.
    pub fn opts(&self) -> &ChildOpts {
        match self {
            Node::Worker(worker) => &worker.opts,
            Node::Sup(sup) => &sup.opts,
        }
    }

    /// 1-based line the child was declared on.
    pub fn line(&self) -> usize {
        match self {
            Node::Worker(worker) => worker.line,
            Node::Sup(sup) => sup.line,
        }
    }
}

/// A `child` line (or, with an empty name, a `template` line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerNode {
    /// The worker's name (empty for a template).
    pub name: String,
    /// Its child options.
    pub opts: ChildOpts,
    /// Whether it ignores the polite shutdown request and must be killed.
    pub stubborn: bool,
    /// 1-based line of the `child`/`template` line.
    pub line: usize,
}

/// Options of a child spec.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChildOpts {
    /// Restart type (default [`Restart::Permanent`]).
    pub restart: Restart,
    /// Shutdown spec; `None` means the default: 5000 ms for a worker, infinity for a supervisor.
    pub shutdown: Option<ShutdownSpec>,
    /// Whether the child is significant for its supervisor's `auto_shutdown`.
    pub significant: bool,
}

/// A supervisor's restart strategy: which children restart when one exits and is restarted.
///
/// | strategy | restarted with the failed child |
/// |---|---|
/// | [`OneForOne`](Self::OneForOne) | nothing else |
/// | [`OneForAll`](Self::OneForAll) | every other child (terminated in reverse start order first) |
/// | [`RestForOne`](Self::RestForOne) | the children started after it |
/// | [`SimpleOneForOne`](Self::SimpleOneForOne) | nothing else; children come from one template via `add` |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Strategy {
    /// `one_for_one`.
    #[default]
    OneForOne,
    /// `one_for_all`.
    OneForAll,
    /// `rest_for_one`.
    RestForOne,
    /// `simple_one_for_one`.
    SimpleOneForOne,
}

/// When a supervisor shuts itself down because significant children exited by themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AutoShutdown {
    /// `never` (significant children are invalid).
    #[default]
    Never,
    /// `any_significant`: when any significant child exits by itself.
    AnySignificant,
    /// `all_significant`: when the last running significant child exits by itself.
    AllSignificant,
}

/// When a child that exits is restarted:
///
/// | restart type | normal / shutdown exit | abnormal exit |
/// |---|---|---|
/// | [`Permanent`](Self::Permanent) | restarted | restarted |
/// | [`Transient`](Self::Transient) | not restarted | restarted |
/// | [`Temporary`](Self::Temporary) | not restarted | not restarted |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Restart {
    /// `permanent`.
    #[default]
    Permanent,
    /// `transient`.
    Transient,
    /// `temporary`.
    Temporary,
}

/// How a supervisor stops a child.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShutdownSpec {
    /// `brutal_kill`: killed at once.
    BrutalKill,
    /// `MS`: asked to shut down, killed after this many milliseconds.
    Millis(u64),
    /// `infinity`: asked to shut down, waited for forever.
    Infinity,
}

/// One action line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionLine {
    /// What to do.
    pub action: Action,
    /// The line as the trace echoes it after `> `: comment removed, tokens joined by single
    /// spaces (`exit b {shutdown,done}`).
    pub echo: String,
    /// 1-based line number.
    pub line: usize,
}

/// An action from the scenario's action list.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// `crash X`: worker X exits with reason `crash`.
    Crash(String),
    /// `exit X REASON`: worker X exits with `reason`.
    Exit {
        /// The worker.
        name: String,
        /// The exit reason.
        reason: Term,
    },
    /// `kill X`: worker X is killed (reason `killed`).
    Kill(String),
    /// `failstart X N`: the next `times` start attempts of X fail with `start_failed`.
    FailStart {
        /// The worker or supervisor.
        name: String,
        /// How many start attempts fail.
        times: u32,
    },
    /// `advance N`: the clock moves forward N seconds.
    Advance(u64),
    /// `terminate X`: OTP `terminate_child`.
    Terminate(String),
    /// `restart X`: OTP `restart_child`.
    Restart(String),
    /// `delete X`: OTP `delete_child`.
    Delete(String),
    /// `add SUP NAME [RESTART] [shutdown=...] [significant=...] [stubborn]`: OTP `start_child`.
    Add {
        /// The supervisor to add to.
        sup: String,
        /// The new child's name.
        name: String,
        /// Its restart type, if given.
        restart: Option<Restart>,
        /// Its shutdown spec, if given.
        shutdown: Option<ShutdownSpec>,
        /// Whether `significant=true` was given.
        significant: bool,
        /// Whether `stubborn` was given.
        stubborn: bool,
    },
    /// `shutdown`: the root is told to shut down by its parent.
    Shutdown,
}

macro_rules! erlang_words {
    ($ty:ident { $($variant:ident => $word:literal),* $(,)? }) => {
        impl $ty {
            /// The Erlang spelling, as written in scenarios.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $word,)*
                }
            }

            pub(super) fn from_word(word: &str) -> Option<Self> {
                match word {
                    $($word => Some($ty::$variant),)*
                    _ => None,
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

erlang_words!(Strategy {
    OneForOne => "one_for_one",
    OneForAll => "one_for_all",
    RestForOne => "rest_for_one",
    SimpleOneForOne => "simple_one_for_one",
});

erlang_words!(AutoShutdown {
    Never => "never",
    AnySignificant => "any_significant",
    AllSignificant => "all_significant",
});

erlang_words!(Restart {
    Permanent => "permanent",
    Transient => "transient",
    Temporary => "temporary",
});

impl fmt::Display for ShutdownSpec {
    /// `brutal_kill`, the milliseconds, or `infinity`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShutdownSpec::BrutalKill => f.write_str("brutal_kill"),
            ShutdownSpec::Millis(ms) => write!(f, "{ms}"),
            ShutdownSpec::Infinity => f.write_str("infinity"),
        }
    }
}
