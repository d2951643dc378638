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
//! | `exit X REASON` | a name, then an Erlang [`Term`](crate::Term) that may contain spaces |
//! | `failstart X N` | a name and a `u32` count |
//! | `advance N` | a `u64` number of seconds |
//! | `add SUP NAME [RESTART] [shutdown=...] [significant=...] [stubborn]` | like a `child` line |
//! | `shutdown` | none |
//!
//! Whether the names in actions exist is not checked here: the runner reports
//! `error not_running X` at run time, and `add` introduces new names.

use std::str::FromStr;

// The scenario as data, and its parser by kind of text: a line's tokens, the values in them,
// the tree lines, the action lines, and what can be wrong with any of them.
mod action;
mod error;
mod line;
mod options;
mod syntax;
mod tree;

pub use error::{ScenarioError, ScenarioErrorKind};
pub use syntax::{
    Action, ActionLine, AutoShutdown, ChildOpts, Node, Restart, Scenario, ShutdownSpec, Strategy,
    SupNode, WorkerNode, MAX_TREE_DEPTH,
};

use action::{parse_action, ACTION_WORDS};
use line::Line;
use tree::TreeBuilder;

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
