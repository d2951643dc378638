//! Exit reasons, start errors and API results in Erlang form, as OTP's recordings print them.

use overseer_supervisor::{ChildOpError, ExitReason, StartError};

use crate::term::Term;

/// An Erlang exit reason as the worker's exit reason.
pub(super) fn exit_reason(term: &Term) -> ExitReason {
    match term {
        Term::Atom(atom) if atom == "normal" => ExitReason::Normal,
        Term::Atom(atom) if atom == "shutdown" => ExitReason::Shutdown,
        Term::Atom(atom) if atom == "killed" => ExitReason::Killed,
        Term::Tuple(items) if items.len() == 2 && items[0] == Term::atom("shutdown") => {
            ExitReason::ShutdownWith(items[1].to_string())
        }
        other => ExitReason::Abnormal(other.to_string()),
    }
}

/// An exit reason in Erlang form.
pub(super) fn erlang_reason(reason: &ExitReason) -> String {
    match reason {
        ExitReason::Normal => "normal".into(),
        ExitReason::Shutdown => "shutdown".into(),
        ExitReason::ShutdownWith(detail) => format!("{{shutdown,{detail}}}"),
        ExitReason::FailedToStartChild { child, cause } => {
            format!(
                "{{shutdown,{{failed_to_start_child,{child},{}}}}}",
                erlang_start_error(cause)
            )
        }
        ExitReason::Killed => "killed".into(),
        ExitReason::Panicked(text) | ExitReason::Failed(text) | ExitReason::Abnormal(text) => {
            text.clone()
        }
        ExitReason::TimedOut(_) => "timeout".into(),
        other => other.to_string(),
    }
}

/// A start failure in Erlang form.
fn erlang_start_error(error: &StartError) -> String {
    match error {
        StartError::ChildFailed { child, cause } => format!(
            "{{shutdown,{{failed_to_start_child,{child},{}}}}}",
            erlang_start_error(cause)
        ),
        other => other.to_string(),
    }
}

/// The result of a child API call in Erlang form.
pub(super) fn erlang_result<T>(
    result: Result<T, ChildOpError>,
    ok: impl FnOnce(T) -> String,
) -> String {
    let text = match result {
        Ok(value) => return ok(value),
        Err(ChildOpError::NotFound(_)) => "not_found".into(),
        Err(ChildOpError::Running(_)) => "running".into(),
        Err(ChildOpError::Restarting(_)) => "restarting".into(),
        Err(ChildOpError::AlreadyStarted(id)) => format!("{{already_started,{id}}}"),
        Err(ChildOpError::AlreadyPresent(_)) => "already_present".into(),
        Err(ChildOpError::NotAllowedOnDynamic) => "simple_one_for_one".into(),
        Err(ChildOpError::StartFailed(error)) => erlang_start_error(&error),
        Err(ChildOpError::InvalidSpec(error)) => format!("{{invalid_child_spec,\"{error}\"}}"),
        Err(ChildOpError::OnlyOnDynamic) => "not_simple_one_for_one".into(),
        Err(ChildOpError::SupervisorNotRunning) => "noproc".into(),
        Err(ChildOpError::Timeout(_)) => "timeout".into(),
        Err(other) => other.to_string(),
    };
    format!("{{error,{text}}}")
}
