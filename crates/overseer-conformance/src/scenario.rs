//! The `.scn` scenario format: a supervision tree followed by a list of actions.
//!
//! [`parse`] turns the text into a [`Scenario`]; any malformed input gives a
//! [`ScenarioError`] with the 1-based line number and a [`ScenarioErrorKind`]. The parser never
//! panics, and both the tree depth ([`MAX_TREE_DEPTH`]) and exit-reason nesting
//! ([`MAX_TERM_DEPTH`](crate::term::MAX_TERM_DEPTH)) are bounded.
//!
//! # Lexical rules
//!
//! * `#` starts a comment anywhere on a line, even inside a quoted atom; blank lines are ignored.
//!   Lines end with `\n` or `\r\n`.
//! * Tokens are separated by one or more spaces. **Tab characters are an error** anywhere outside
//!   a comment ([`ScenarioErrorKind::Tab`]): the format says spaces only, and a tab's width in
//!   indentation is ambiguous.
//! * Names (of supervisors, workers and in actions) are bare Erlang atoms: a lowercase ASCII
//!   letter followed by ASCII letters, digits, `_` or `@`. Traces print names as atoms, so any
//!   other name could not be matched against OTP's output.
//! * Option values and counts are decimal, non-negative, without sign, and must fit the field
//!   (`u32` for `intensity` and `failstart` counts, `u64` for `period`, `shutdown=` and
//!   `advance`). Zero values are accepted here; whether they are valid is the supervisor
//!   library's decision.
//!
//! # Tree lines
//!
//! ```text
//! sup NAME [STRATEGY] [intensity=N] [period=N] [auto_shutdown=never|any_significant|all_significant]
//!          [restart=permanent|transient|temporary] [shutdown=brutal_kill|MS|infinity] [significant=true|false]
//! child NAME [permanent|transient|temporary] [shutdown=brutal_kill|MS|infinity] [significant=true|false] [stubborn]
//! template [permanent|transient|temporary] [shutdown=brutal_kill|MS|infinity] [significant=true|false] [stubborn]
//! ```
//!
//! * The first non-blank line must be the root `sup`; every other tree line is indented more
//!   than the root. Options may come in any order; giving one twice is an error.
//! * A line's parent is the nearest preceding `sup` line with smaller indentation. A line may not
//!   be indented under a `child`/`template` line, and all children of one supervisor must have
//!   the same indentation.
//! * A `simple_one_for_one` supervisor has exactly one `template` and nothing else; `template`
//!   is allowed nowhere else.
//! * Names are unique across the whole tree; `stubborn` with `shutdown=infinity` is rejected.
//!
//! # Action lines
//!
//! After the first action line, tree lines are an error. Action lines are not indented.
//!
//! | line | arguments |
//! |---|---|
//! | `crash X`, `kill X`, `terminate X`, `restart X`, `delete X` | exactly one name |
//! | `exit X REASON` | a name, then an Erlang [`Term`] that may contain spaces |
//! | `failstart X N` | a name and a `u32` count |
//! | `advance N` | a `u64` number of seconds |
//! | `add SUP NAME [RESTART] [shutdown=...] [significant=...] [stubborn]` | like a `child` line |
//! | `shutdown` | none |
//!
//! Whether the names in actions exist is not checked here: the runner reports
//! `error not_running X` at run time, and `add` introduces new names.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use crate::term::{is_atom_syntax, Term, TermError};

/// How many supervisors may be nested inside each other (the root is level 1).
///
/// A deeper tree is rejected with [`ScenarioErrorKind::TreeTooDeep`]. The parser itself is
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

            fn from_word(word: &str) -> Option<Self> {
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

/// A malformed scenario: where (1-based line) and what.
///
/// ```
/// let err = overseer_conformance::parse("sup root one_for_none\n").unwrap_err();
/// assert_eq!(err.line, 1);
/// assert_eq!(
///     err.to_string(),
///     "line 1: unknown strategy 'one_for_none' \
///      (expected one_for_one, one_for_all, rest_for_one or simple_one_for_one)"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {kind}")]
#[non_exhaustive]
pub struct ScenarioError {
    /// 1-based line number of the offending line (for an input with no lines at all, 1).
    pub line: usize,
    /// What is wrong.
    pub kind: ScenarioErrorKind,
}

/// What is wrong with a scenario line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScenarioErrorKind {
    /// A tab character outside a comment.
    #[error("tab character (indentation and separators must be spaces)")]
    Tab,
    /// The input has no `sup` line before its actions (or no lines at all).
    #[error("no root supervisor (a scenario starts with a 'sup' line)")]
    NoRoot,
    /// A `child`/`template` line that is not inside any supervisor.
    #[error("'{keyword}' line outside any supervisor (it must be indented under a 'sup' line)")]
    OutsideSupervisor {
        /// `child` or `template`.
        keyword: &'static str,
    },
    /// A second `sup` line at the root's indentation (or less).
    #[error("second root supervisor '{name}' (the root is on line {root_line}; indent this line to nest it)")]
    SecondRoot {
        /// The second supervisor's name.
        name: String,
        /// Line of the root `sup`.
        root_line: usize,
    },
    /// A tree line indented under a `child`/`template` line.
    #[error("line is indented under the worker on line {worker_line} (only a 'sup' line can have children)")]
    UnderWorker {
        /// Line of the worker it is indented under.
        worker_line: usize,
    },
    /// Siblings with different indentation.
    #[error("indentation of {found} spaces does not match the {expected} spaces of the other children of '{sup}'")]
    InconsistentIndent {
        /// The supervisor whose children these are.
        sup: String,
        /// Indentation of its first child.
        expected: usize,
        /// Indentation of this line.
        found: usize,
    },
    /// An indented action line.
    #[error("action lines must not be indented")]
    IndentedAction,
    /// A tree line after the first action.
    #[error(
        "tree line after the actions started on line {first_action_line} (tree lines come first)"
    )]
    TreeAfterAction {
        /// Line of the first action.
        first_action_line: usize,
    },
    /// The first word is neither a tree keyword nor an action.
    #[error("unknown command '{word}' (expected sup, child, template, crash, exit, kill, failstart, advance, terminate, restart, delete, add or shutdown)")]
    UnknownCommand {
        /// The word.
        word: String,
    },
    /// `sup`/`child` without a name.
    #[error("'{keyword}' needs a name")]
    MissingName {
        /// `sup` or `child`.
        keyword: &'static str,
    },
    /// A name that is not a bare atom.
    #[error(
        "invalid name '{name}' (a name is a lowercase letter followed by letters, digits, _ or @)"
    )]
    BadName {
        /// The name as written.
        name: String,
    },
    /// A name used twice in the tree.
    #[error("duplicate name '{name}' (first used on line {first_line})")]
    DuplicateName {
        /// The name.
        name: String,
        /// Where it was first declared.
        first_line: usize,
    },
    /// A bare word on a `sup` line that is not a strategy.
    #[error("unknown strategy '{word}' (expected one_for_one, one_for_all, rest_for_one or simple_one_for_one)")]
    UnknownStrategy {
        /// The word.
        word: String,
    },
    /// A `key=value` option whose key is not allowed on this line.
    #[error("unknown option '{key}=' on a '{keyword}' line (expected {expected})")]
    UnknownOption {
        /// The key.
        key: String,
        /// `sup`, `child`, `template` or `add`.
        keyword: &'static str,
        /// The keys allowed there.
        expected: &'static str,
    },
    /// A bare word on a `child`/`template`/`add` line that is not a restart type or `stubborn`.
    #[error("unexpected '{word}' on a '{keyword}' line (expected permanent, transient, temporary, stubborn, shutdown= or significant=)")]
    UnknownWord {
        /// The word.
        word: String,
        /// `child`, `template` or `add`.
        keyword: &'static str,
    },
    /// An option (or the strategy, restart type or `stubborn`) given twice.
    #[error("{option} given twice")]
    DuplicateOption {
        /// `strategy`, `restart`, `stubborn` or the option key.
        option: &'static str,
    },
    /// A number that is negative, not decimal, or too large.
    #[error("invalid {field} '{value}' (expected a non-negative integer no larger than {max})")]
    BadNumber {
        /// What the number is (`intensity`, `period`, `shutdown`, `failstart count`, `advance seconds`).
        field: &'static str,
        /// The text as written.
        value: String,
        /// The largest accepted value.
        max: u64,
    },
    /// An option value outside its allowed set.
    #[error("invalid value '{value}' for {key}= (expected {expected})")]
    BadValue {
        /// The option key.
        key: &'static str,
        /// The value as written.
        value: String,
        /// The accepted values.
        expected: &'static str,
    },
    /// `stubborn` together with `shutdown=infinity`.
    #[error("'stubborn' cannot be combined with shutdown=infinity (the worker would never stop)")]
    StubbornInfinity,
    /// A `template` line under a supervisor that is not `simple_one_for_one`.
    #[error(
        "'template' is only allowed under a simple_one_for_one supervisor ('{sup}' is {strategy})"
    )]
    TemplateOutsideSimple {
        /// The supervisor.
        sup: String,
        /// Its strategy.
        strategy: Strategy,
    },
    /// A second `template` line under one supervisor.
    #[error("second 'template' for '{sup}' (the first is on line {first_line})")]
    DuplicateTemplate {
        /// The supervisor.
        sup: String,
        /// Line of the first template.
        first_line: usize,
    },
    /// A `child`/`sup` line under a `simple_one_for_one` supervisor.
    #[error("simple_one_for_one supervisor '{sup}' cannot have static children (give it one 'template' line and use 'add')")]
    ChildUnderSimple {
        /// The supervisor.
        sup: String,
    },
    /// A `simple_one_for_one` supervisor without a `template` (reported on its `sup` line).
    #[error("simple_one_for_one supervisor '{sup}' has no 'template' line")]
    MissingTemplate {
        /// The supervisor.
        sup: String,
    },
    /// Supervisors nested deeper than [`MAX_TREE_DEPTH`].
    #[error("supervision tree nested deeper than {limit} supervisors")]
    TreeTooDeep {
        /// The limit ([`MAX_TREE_DEPTH`]).
        limit: usize,
    },
    /// An action with the wrong number of arguments.
    #[error("'{action}' takes {expected}, got {found} (usage: {usage})")]
    WrongArity {
        /// The action word.
        action: &'static str,
        /// How many arguments it takes, in words.
        expected: &'static str,
        /// How many were given.
        found: usize,
        /// The action's syntax.
        usage: &'static str,
    },
    /// The reason of an `exit` line is not a valid term.
    #[error("invalid exit reason: {0}")]
    BadTerm(TermError),
}

/// The first words of action lines.
const ACTION_WORDS: &[&str] = &[
    "crash",
    "exit",
    "kill",
    "failstart",
    "advance",
    "terminate",
    "restart",
    "delete",
    "add",
    "shutdown",
];

/// Parses a `.scn` scenario (see the [module docs](self) for the format).
///
/// # Errors
///
/// The first problem found, as a [`ScenarioError`] with its line number. Never panics.
pub fn parse(input: &str) -> Result<Scenario, ScenarioError> {
    let mut tree = TreeBuilder::default();
    let mut actions: Vec<ActionLine> = Vec::new();
    let mut last_line = 0;

    for (index, raw) in input.lines().enumerate() {
        let number = index + 1;
        last_line = number;
        let at = |kind| ScenarioError { line: number, kind };
        let Some(line) = Line::split(raw).map_err(at)? else {
            continue;
        };
        match line.keyword() {
            keyword @ ("sup" | "child" | "template") => {
                if let Some(first) = actions.first() {
                    return Err(at(ScenarioErrorKind::TreeAfterAction {
                        first_action_line: first.line,
                    }));
                }
                tree.add_line(keyword, &line, number)?;
            }
            word => {
                if !ACTION_WORDS.contains(&word) {
                    return Err(at(ScenarioErrorKind::UnknownCommand {
                        word: word.to_owned(),
                    }));
                }
                if !tree.has_root() {
                    return Err(at(ScenarioErrorKind::NoRoot));
                }
                if line.indent > 0 {
                    return Err(at(ScenarioErrorKind::IndentedAction));
                }
                if actions.is_empty() {
                    tree.close_all()?;
                }
                let action = parse_action(&line).map_err(at)?;
                actions.push(ActionLine {
                    action,
                    echo: line.tokens.join(" "),
                    line: number,
                });
            }
        }
    }

    if actions.is_empty() {
        tree.close_all()?;
    }
    match tree.root {
        Some(root) => Ok(Scenario { root, actions }),
        None => Err(ScenarioError {
            line: last_line.max(1),
            kind: ScenarioErrorKind::NoRoot,
        }),
    }
}

impl FromStr for Scenario {
    type Err = ScenarioError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s)
    }
}

/// One non-blank line: indentation and space-separated tokens, comment removed.
struct Line<'a> {
    indent: usize,
    /// The text after the indentation, comment removed, trailing spaces trimmed.
    body: &'a str,
    tokens: Vec<&'a str>,
}

impl<'a> Line<'a> {
    /// `Ok(None)` for a blank or comment-only line.
    fn split(raw: &'a str) -> Result<Option<Line<'a>>, ScenarioErrorKind> {
        let content = raw.split_once('#').map_or(raw, |(before, _)| before);
        if content.contains('\t') {
            return Err(ScenarioErrorKind::Tab);
        }
        // `lines()` strips `\r\n`; a lone `\r` at the very end (a CRLF file without its final
        // newline) is line-ending debris too, not part of the last token.
        let content = content.trim_end_matches([' ', '\r']);
        let body = content.trim_start_matches(' ');
        if body.is_empty() {
            return Ok(None);
        }
        Ok(Some(Line {
            // Only ASCII spaces were trimmed, so bytes == spaces.
            indent: content.len() - body.len(),
            body,
            tokens: body.split(' ').filter(|t| !t.is_empty()).collect(),
        }))
    }

    fn keyword(&self) -> &'a str {
        self.tokens.first().copied().unwrap_or("")
    }

    /// The tokens after the keyword.
    fn args(&self) -> &[&'a str] {
        self.tokens.get(1..).unwrap_or(&[])
    }

    /// The raw text after the first `n` tokens (inner spacing preserved), trimmed.
    fn rest_after(&self, n: usize) -> &'a str {
        let mut rest = self.body;
        for _ in 0..n {
            rest = rest
                .trim_start_matches(' ')
                .split_once(' ')
                .map_or("", |(_, after)| after);
        }
        rest.trim_matches(' ')
    }
}

/// An open tree line on the indentation stack.
enum Frame {
    Sup {
        indent: usize,
        node: SupNode,
        /// Indentation shared by all its children, fixed by the first one.
        child_indent: Option<usize>,
    },
    Worker {
        indent: usize,
        line: usize,
    },
}

impl Frame {
    fn indent(&self) -> usize {
        match self {
            Frame::Sup { indent, .. } | Frame::Worker { indent, .. } => *indent,
        }
    }
}

/// Builds the tree iteratively from indented lines (no recursion, so no depth-driven stack use).
#[derive(Default)]
struct TreeBuilder {
    /// Open lines, outermost first. Only the bottom frame can be the root.
    stack: Vec<Frame>,
    /// Number of `Frame::Sup` on the stack.
    sup_depth: usize,
    /// Root `sup` line number and indentation, once seen.
    root_at: Option<(usize, usize)>,
    /// The finished root.
    root: Option<SupNode>,
    /// Every name in the tree and the line that declared it.
    names: HashMap<String, usize>,
}

impl TreeBuilder {
    fn has_root(&self) -> bool {
        self.root_at.is_some()
    }

    fn add_line(
        &mut self,
        keyword: &str,
        line: &Line<'_>,
        number: usize,
    ) -> Result<(), ScenarioError> {
        let at = |kind| ScenarioError { line: number, kind };
        let keyword: &'static str = match keyword {
            "sup" => "sup",
            "child" => "child",
            _ => "template",
        };

        let Some((root_line, root_indent)) = self.root_at else {
            if keyword != "sup" {
                return Err(at(ScenarioErrorKind::OutsideSupervisor { keyword }));
            }
            let node = parse_sup(line, number).map_err(at)?;
            self.register_name(&node.name, number)?;
            self.root_at = Some((number, line.indent));
            self.push_sup(line.indent, node, number)?;
            return Ok(());
        };

        if line.indent <= root_indent {
            return Err(at(match (keyword, line.args().first()) {
                ("sup", Some(name)) => ScenarioErrorKind::SecondRoot {
                    name: (*name).to_owned(),
                    root_line,
                },
                ("sup", None) => ScenarioErrorKind::MissingName { keyword },
                _ => ScenarioErrorKind::OutsideSupervisor { keyword },
            }));
        }

        // Close every line at this indentation or deeper; the root (smaller indent) stays.
        while self
            .stack
            .last()
            .is_some_and(|top| top.indent() >= line.indent)
        {
            self.close_top()?;
        }
        let (sup_name, strategy) = match self.stack.last_mut() {
            Some(Frame::Sup {
                node, child_indent, ..
            }) => {
                match *child_indent {
                    Some(expected) if expected != line.indent => {
                        return Err(at(ScenarioErrorKind::InconsistentIndent {
                            sup: node.name.clone(),
                            expected,
                            found: line.indent,
                        }));
                    }
                    _ => *child_indent = Some(line.indent),
                }
                (node.name.clone(), node.strategy)
            }
            Some(Frame::Worker {
                line: worker_line, ..
            }) => {
                return Err(at(ScenarioErrorKind::UnderWorker {
                    worker_line: *worker_line,
                }));
            }
            // Unreachable: the root is never closed here. Report it rather than panic.
            None => return Err(at(ScenarioErrorKind::OutsideSupervisor { keyword })),
        };

        let simple = strategy == Strategy::SimpleOneForOne;
        match keyword {
            "template" => {
                if !simple {
                    return Err(at(ScenarioErrorKind::TemplateOutsideSimple {
                        sup: sup_name,
                        strategy,
                    }));
                }
                let worker = parse_worker(line, "template", String::new(), number).map_err(at)?;
                if let Some(Frame::Sup { node, .. }) = self.stack.last_mut() {
                    if let Some(first) = &node.template {
                        return Err(at(ScenarioErrorKind::DuplicateTemplate {
                            sup: sup_name,
                            first_line: first.line,
                        }));
                    }
                    node.template = Some(worker);
                }
                self.stack.push(Frame::Worker {
                    indent: line.indent,
                    line: number,
                });
            }
            _ if simple => {
                return Err(at(ScenarioErrorKind::ChildUnderSimple { sup: sup_name }));
            }
            "child" => {
                let name = parse_name(line.args().first().copied(), "child").map_err(at)?;
                let worker = parse_worker(line, "child", name, number).map_err(at)?;
                self.register_name(&worker.name, number)?;
                if let Some(Frame::Sup { node, .. }) = self.stack.last_mut() {
                    node.children.push(Node::Worker(worker));
                }
                self.stack.push(Frame::Worker {
                    indent: line.indent,
                    line: number,
                });
            }
            _ => {
                let node = parse_sup(line, number).map_err(at)?;
                self.register_name(&node.name, number)?;
                self.push_sup(line.indent, node, number)?;
            }
        }
        Ok(())
    }

    fn register_name(&mut self, name: &str, number: usize) -> Result<(), ScenarioError> {
        if let Some(&first_line) = self.names.get(name) {
            return Err(ScenarioError {
                line: number,
                kind: ScenarioErrorKind::DuplicateName {
                    name: name.to_owned(),
                    first_line,
                },
            });
        }
        self.names.insert(name.to_owned(), number);
        Ok(())
    }

    fn push_sup(
        &mut self,
        indent: usize,
        node: SupNode,
        number: usize,
    ) -> Result<(), ScenarioError> {
        if self.sup_depth >= MAX_TREE_DEPTH {
            return Err(ScenarioError {
                line: number,
                kind: ScenarioErrorKind::TreeTooDeep {
                    limit: MAX_TREE_DEPTH,
                },
            });
        }
        self.sup_depth += 1;
        self.stack.push(Frame::Sup {
            indent,
            node,
            child_indent: None,
        });
        Ok(())
    }

    /// Pops the innermost open line; a finished supervisor joins its parent (or becomes the root).
    fn close_top(&mut self) -> Result<(), ScenarioError> {
        let Some(Frame::Sup { node, .. }) = self.stack.pop() else {
            return Ok(()); // a worker, or nothing
        };
        self.sup_depth = self.sup_depth.saturating_sub(1);
        if node.strategy == Strategy::SimpleOneForOne && node.template.is_none() {
            return Err(ScenarioError {
                line: node.line,
                kind: ScenarioErrorKind::MissingTemplate { sup: node.name },
            });
        }
        match self.stack.last_mut() {
            Some(Frame::Sup { node: parent, .. }) => parent.children.push(Node::Sup(node)),
            // Workers never have children on the stack, so this is the root.
            _ => self.root = Some(node),
        }
        Ok(())
    }

    fn close_all(&mut self) -> Result<(), ScenarioError> {
        while !self.stack.is_empty() {
            self.close_top()?;
        }
        Ok(())
    }
}

fn parse_name(token: Option<&str>, keyword: &'static str) -> Result<String, ScenarioErrorKind> {
    let name = token.ok_or(ScenarioErrorKind::MissingName { keyword })?;
    if !is_atom_syntax(name) {
        return Err(ScenarioErrorKind::BadName {
            name: name.to_owned(),
        });
    }
    Ok(name.to_owned())
}

/// Sets `slot` once; a second value is a duplicate.
fn set_once<T>(
    slot: &mut Option<T>,
    value: T,
    option: &'static str,
) -> Result<(), ScenarioErrorKind> {
    if slot.is_some() {
        return Err(ScenarioErrorKind::DuplicateOption { option });
    }
    *slot = Some(value);
    Ok(())
}

/// A decimal number without sign that fits in `T`.
fn parse_number<T: FromStr + Bounded>(
    field: &'static str,
    value: &str,
) -> Result<T, ScenarioErrorKind> {
    let bad = || ScenarioErrorKind::BadNumber {
        field,
        value: value.to_owned(),
        max: T::MAX_U64,
    };
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    value.parse::<T>().map_err(|_| bad())
}

/// The largest value of a number type, for error messages.
trait Bounded {
    const MAX_U64: u64;
}

impl Bounded for u32 {
    const MAX_U64: u64 = u32::MAX as u64;
}

impl Bounded for u64 {
    const MAX_U64: u64 = u64::MAX;
}

fn parse_restart(value: &str) -> Result<Restart, ScenarioErrorKind> {
    Restart::from_word(value).ok_or_else(|| ScenarioErrorKind::BadValue {
        key: "restart",
        value: value.to_owned(),
        expected: "permanent, transient or temporary",
    })
}

fn parse_shutdown(value: &str) -> Result<ShutdownSpec, ScenarioErrorKind> {
    match value {
        "brutal_kill" => Ok(ShutdownSpec::BrutalKill),
        "infinity" => Ok(ShutdownSpec::Infinity),
        _ if value.bytes().next().is_some_and(|b| b.is_ascii_digit()) => {
            parse_number("shutdown", value).map(ShutdownSpec::Millis)
        }
        _ => Err(ScenarioErrorKind::BadValue {
            key: "shutdown",
            value: value.to_owned(),
            expected: "brutal_kill, infinity or a non-negative number of milliseconds",
        }),
    }
}

fn parse_bool(key: &'static str, value: &str) -> Result<bool, ScenarioErrorKind> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ScenarioErrorKind::BadValue {
            key,
            value: value.to_owned(),
            expected: "true or false",
        }),
    }
}

/// `sup NAME [STRATEGY] [key=value]...`
fn parse_sup(line: &Line<'_>, number: usize) -> Result<SupNode, ScenarioErrorKind> {
    let args = line.args();
    let name = parse_name(args.first().copied(), "sup")?;
    let mut strategy = None;
    let mut intensity = None;
    let mut period = None;
    let mut auto_shutdown = None;
    let mut restart = None;
    let mut shutdown = None;
    let mut significant = None;
    for &token in args.get(1..).unwrap_or(&[]) {
        let Some((key, value)) = token.split_once('=') else {
            let parsed =
                Strategy::from_word(token).ok_or_else(|| ScenarioErrorKind::UnknownStrategy {
                    word: token.to_owned(),
                })?;
            set_once(&mut strategy, parsed, "strategy")?;
            continue;
        };
        match key {
            "intensity" => set_once(
                &mut intensity,
                parse_number("intensity", value)?,
                "intensity",
            )?,
            "period" => set_once(&mut period, parse_number("period", value)?, "period")?,
            "auto_shutdown" => {
                let parsed =
                    AutoShutdown::from_word(value).ok_or_else(|| ScenarioErrorKind::BadValue {
                        key: "auto_shutdown",
                        value: value.to_owned(),
                        expected: "never, any_significant or all_significant",
                    })?;
                set_once(&mut auto_shutdown, parsed, "auto_shutdown")?;
            }
            "restart" => set_once(&mut restart, parse_restart(value)?, "restart")?,
            "shutdown" => set_once(&mut shutdown, parse_shutdown(value)?, "shutdown")?,
            "significant" => set_once(
                &mut significant,
                parse_bool("significant", value)?,
                "significant",
            )?,
            _ => {
                return Err(ScenarioErrorKind::UnknownOption {
                    key: key.to_owned(),
                    keyword: "sup",
                    expected:
                        "intensity=, period=, auto_shutdown=, restart=, shutdown= or significant=",
                })
            }
        }
    }
    Ok(SupNode {
        name,
        strategy: strategy.unwrap_or_default(),
        intensity: intensity.unwrap_or(1),
        period_secs: period.unwrap_or(5),
        auto_shutdown: auto_shutdown.unwrap_or_default(),
        opts: ChildOpts {
            restart: restart.unwrap_or_default(),
            shutdown,
            significant: significant.unwrap_or(false),
        },
        children: Vec::new(),
        template: None,
        line: number,
    })
}

/// The options shared by `child`, `template` and `add` lines.
struct WorkerOpts {
    restart: Option<Restart>,
    shutdown: Option<ShutdownSpec>,
    significant: bool,
    stubborn: bool,
}

/// `[permanent|transient|temporary] [shutdown=...] [significant=...] [stubborn]`, any order.
fn parse_worker_opts(
    tokens: &[&str],
    keyword: &'static str,
) -> Result<WorkerOpts, ScenarioErrorKind> {
    let mut restart = None;
    let mut shutdown = None;
    let mut significant = None;
    let mut stubborn = None;
    for &token in tokens {
        match token.split_once('=') {
            Some(("shutdown", value)) => {
                set_once(&mut shutdown, parse_shutdown(value)?, "shutdown")?
            }
            Some(("significant", value)) => {
                set_once(
                    &mut significant,
                    parse_bool("significant", value)?,
                    "significant",
                )?;
            }
            Some((key, _)) => {
                return Err(ScenarioErrorKind::UnknownOption {
                    key: key.to_owned(),
                    keyword,
                    expected: "shutdown= or significant= (the restart type is a bare word)",
                })
            }
            None if token == "stubborn" => set_once(&mut stubborn, (), "stubborn")?,
            None => {
                let parsed =
                    Restart::from_word(token).ok_or_else(|| ScenarioErrorKind::UnknownWord {
                        word: token.to_owned(),
                        keyword,
                    })?;
                set_once(&mut restart, parsed, "restart")?;
            }
        }
    }
    let stubborn = stubborn.is_some();
    if stubborn && shutdown == Some(ShutdownSpec::Infinity) {
        return Err(ScenarioErrorKind::StubbornInfinity);
    }
    Ok(WorkerOpts {
        restart,
        shutdown,
        significant: significant.unwrap_or(false),
        stubborn,
    })
}

/// `child NAME opts...` or `template opts...` (`name` already parsed, empty for a template).
fn parse_worker(
    line: &Line<'_>,
    keyword: &'static str,
    name: String,
    number: usize,
) -> Result<WorkerNode, ScenarioErrorKind> {
    let skip = if keyword == "child" { 1 } else { 0 };
    let opts = parse_worker_opts(line.args().get(skip..).unwrap_or(&[]), keyword)?;
    Ok(WorkerNode {
        name,
        opts: ChildOpts {
            restart: opts.restart.unwrap_or_default(),
            shutdown: opts.shutdown,
            significant: opts.significant,
        },
        stubborn: opts.stubborn,
        line: number,
    })
}

fn parse_action(line: &Line<'_>) -> Result<Action, ScenarioErrorKind> {
    let args = line.args();
    let wrong_arity = |action, expected, usage| ScenarioErrorKind::WrongArity {
        action,
        expected,
        found: args.len(),
        usage,
    };
    // The single NAME argument of crash/kill/terminate/restart/delete.
    let one_name = |action: &'static str, usage| match args {
        [name] => parse_name(Some(name), action),
        _ => Err(wrong_arity(action, "1 argument", usage)),
    };
    match line.keyword() {
        "crash" => one_name("crash", "crash NAME").map(Action::Crash),
        "kill" => one_name("kill", "kill NAME").map(Action::Kill),
        "terminate" => one_name("terminate", "terminate NAME").map(Action::Terminate),
        "restart" => one_name("restart", "restart NAME").map(Action::Restart),
        "delete" => one_name("delete", "delete NAME").map(Action::Delete),
        "exit" => match args {
            [name, _, ..] => Ok(Action::Exit {
                name: parse_name(Some(name), "exit")?,
                reason: Term::parse(line.rest_after(2)).map_err(ScenarioErrorKind::BadTerm)?,
            }),
            _ => Err(wrong_arity("exit", "2 arguments", "exit NAME REASON")),
        },
        "failstart" => match args {
            [name, times] => Ok(Action::FailStart {
                name: parse_name(Some(name), "failstart")?,
                times: parse_number("failstart count", times)?,
            }),
            _ => Err(wrong_arity("failstart", "2 arguments", "failstart NAME N")),
        },
        "advance" => match args {
            [seconds] => parse_number("advance seconds", seconds).map(Action::Advance),
            _ => Err(wrong_arity("advance", "1 argument", "advance SECONDS")),
        },
        "shutdown" => match args {
            [] => Ok(Action::Shutdown),
            _ => Err(wrong_arity("shutdown", "no arguments", "shutdown")),
        },
        "add" => match args {
            [sup, name, opts @ ..] => {
                let sup = parse_name(Some(sup), "add")?;
                let name = parse_name(Some(name), "add")?;
                let opts = parse_worker_opts(opts, "add")?;
                Ok(Action::Add {
                    sup,
                    name,
                    restart: opts.restart,
                    shutdown: opts.shutdown,
                    significant: opts.significant,
                    stubborn: opts.stubborn,
                })
            }
            _ => Err(wrong_arity(
                "add",
                "at least 2 arguments",
                "add SUP NAME [permanent|transient|temporary] [shutdown=...] [significant=true] [stubborn]",
            )),
        },
        word => Err(ScenarioErrorKind::UnknownCommand {
            word: word.to_owned(),
        }),
    }
}
