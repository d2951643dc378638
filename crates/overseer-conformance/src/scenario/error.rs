//! What is wrong with a malformed scenario, and on which line.

use super::syntax::Strategy;
use crate::term::TermError;

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
    /// Supervisors nested deeper than [`MAX_TREE_DEPTH`](crate::MAX_TREE_DEPTH).
    #[error("supervision tree nested deeper than {limit} supervisors")]
    TreeTooDeep {
        /// The limit ([`MAX_TREE_DEPTH`](crate::MAX_TREE_DEPTH)).
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
