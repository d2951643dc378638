//! Conformance scenarios for Overseer's supervisors: the `.scn` parser.
//!
//! A scenario (see `tests/otp/FORMAT.md` in this crate) describes a supervision tree and a list of actions; the
//! expected `.trace` is what Erlang/OTP 25's `supervisor` printed for it. The [`scenario`]
//! module turns the text into data ([`Scenario`], with exit reasons as [`term::Term`]s); the
//! `runner` module executes it against real supervisors and prints the trace so that it can be
//! diffed against OTP's.
//!
//! ```
//! use overseer_conformance::{Action, Node, Restart, Strategy, Term};
//!
//! let scenario = overseer_conformance::parse(
//!     "sup root one_for_all intensity=3   # a comment\n\
//!      \x20 child a\n\
//!      \x20 child b transient\n\
//!      exit b {shutdown, done}\n",
//! )?;
//! assert_eq!(scenario.root.strategy, Strategy::OneForAll);
//! assert_eq!(scenario.root.intensity, 3);
//! let Node::Worker(b) = &scenario.root.children[1] else { unreachable!() };
//! assert_eq!(b.opts.restart, Restart::Transient);
//!
//! let exit = &scenario.actions[0];
//! assert_eq!(exit.echo, "exit b {shutdown, done}");
//! let Action::Exit { name, reason } = &exit.action else { unreachable!() };
//! assert_eq!((name.as_str(), reason.to_string().as_str()), ("b", "{shutdown,done}"));
//! assert!(reason.is_normal_exit());
//! # let _ = Term::atom("crash");
//! # Ok::<(), overseer_conformance::ScenarioError>(())
//! ```
//!
//! Malformed input never panics; it gives a [`ScenarioError`] naming the line:
//!
//! ```
//! let err = overseer_conformance::parse("sup root\n  child a\n  child a\n").unwrap_err();
//! assert_eq!(err.to_string(), "line 3: duplicate name 'a' (first used on line 2)");
//! ```

pub mod runner;
pub mod scenario;
pub mod term;

pub use scenario::{
    parse, Action, ActionLine, AutoShutdown, ChildOpts, Node, Restart, Scenario, ScenarioError,
    ScenarioErrorKind, ShutdownSpec, Strategy, SupNode, WorkerNode, MAX_TREE_DEPTH,
};
pub use term::{Term, TermError, MAX_TERM_DEPTH};
