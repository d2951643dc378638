//! The class of every error an ask can end with (the tables on the `Classify` impls), and that
//! a model's failure keeps its class when a handler passes it on with `?`.

use std::time::Duration;

use overseer_agent::{
    AgentError, AgentName, AskError, Classify, ErrorClass, ModelError, StepError,
};

fn failed(error: AgentError) -> AskError {
    AskError::Failed {
        agent: AgentName::from("agent"),
        error,
    }
}

#[test]
fn agent_errors_are_classified_as_their_table_says() {
    let wait = Some(Duration::from_secs(3));
    let rows = [
        (AgentError::failed("no"), ErrorClass::Transient),
        (AgentError::fatal("down"), ErrorClass::Transient),
        (AgentError::permanent("too long"), ErrorClass::Permanent),
        (
            AgentError::rate_limited("slow down", wait),
            ErrorClass::RateLimited { retry_after: wait },
        ),
        (
            AgentError::InvalidOutput("garbage".into()),
            ErrorClass::InvalidOutput,
        ),
        (
            AgentError::step(StepError::Journal {
                message: "disk".into(),
            }),
            ErrorClass::Transient,
        ),
    ];
    for (error, class) in rows {
        assert_eq!(error.class(), class, "{error}");
        // An ask that failed with it has the same class.
        assert_eq!(failed(error.clone()).class(), class, "{error}");
    }
}

#[test]
fn system_wide_refusals_are_cancelled_and_a_bad_name_is_permanent() {
    assert_eq!(AskError::ShutDown.class(), ErrorClass::Cancelled);
    let unknown = AskError::UnknownAgent { name: "x".into() };
    assert_eq!(unknown.class(), ErrorClass::Permanent);
    assert!(!unknown.class().is_retryable());
}

#[test]
fn a_model_error_keeps_its_class_through_the_handler() {
    let wait = Some(Duration::from_millis(1500));
    let rows = [
        (ModelError::Provider("502".into()), ErrorClass::Transient),
        (
            ModelError::RateLimited {
                message: "429".into(),
                retry_after: wait,
            },
            ErrorClass::RateLimited { retry_after: wait },
        ),
        (
            ModelError::Rejected("context too long".into()),
            ErrorClass::Permanent,
        ),
        (
            ModelError::ReplayUnsafe {
                message: "stream cut".into(),
                spent: Default::default(),
            },
            ErrorClass::ReplayUnsafe,
        ),
    ];
    for (error, class) in rows {
        assert_eq!(error.class(), class, "{error}");
        assert_eq!(AgentError::from(error.clone()).class(), class, "{error}");
    }
}
