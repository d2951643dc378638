//! The action lines (`crash`, `exit`, `advance`, `add`, ...).

use super::error::ScenarioErrorKind;
use super::line::Line;
use super::options::{parse_name, parse_number, parse_worker_opts};
use super::syntax::Action;
use crate::term::Term;

/// The first words of action lines.
pub(super) const ACTION_WORDS: &[&str] = &[
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

pub(super) fn parse_action(line: &Line<'_>) -> Result<Action, ScenarioErrorKind> {
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
