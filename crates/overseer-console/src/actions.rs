//! What the console may change: trip the kill switch, redrive a dead letter. Off unless
//! [`ConsoleConfig::actions`](crate::ConsoleConfig::actions) enables them, and then only for a
//! caller that [`authorize`] admits.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use axum::http::header::{AUTHORIZATION, HOST, ORIGIN};
use axum::http::{HeaderMap, StatusCode};
use overseer_agent::{Agent, DeadLetterId, System};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

type RedriveFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;
type Redriver = Arc<dyn Fn(System, DeadLetterId) -> RedriveFuture + Send + Sync>;

/// The actions a console offers, and who may take them.
///
/// | configured | a caller on loopback | a caller elsewhere |
/// |---|---|---|
/// | no [`Actions`] (the default) | refused: `actions_disabled` | refused: `actions_disabled` |
/// | [`Actions::new`] | admitted | refused: `not_loopback` |
/// | [`Actions::new`]`.token(t)` | admitted with `Authorization: Bearer t` | admitted with `Authorization: Bearer t` |
///
/// Every refusal is a 403 with a JSON body `{"error": <code>, "message": <text>}`. A request
/// whose `Origin` names another host than its `Host` (a page of another site posting to the
/// console) is refused too (`cross_origin`), token or not.
///
/// ```
/// use overseer_console::{Actions, ConsoleConfig};
/// # use overseer_agent::{Agent, AgentContext, AgentError};
/// # struct Writer;
/// # impl Agent for Writer {
/// #     type Task = String;
/// #     type Output = String;
/// #     async fn handle(&mut self, _: &mut AgentContext, t: String) -> Result<String, AgentError> { Ok(t) }
/// # }
/// let config = ConsoleConfig::default().actions(
///     Actions::new().token("s3cret").redrive::<Writer>("writer"),
/// );
/// # let _ = config;
/// ```
#[derive(Clone, Default)]
pub struct Actions {
    token: Option<Arc<str>>,
    redrivers: HashMap<String, Redriver>,
}

impl fmt::Debug for Actions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Actions")
            .field("token", &self.token.as_ref().map(|_| "(set)"))
            .field("redrive", &self.redrivers.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Actions {
    /// Actions enabled for callers on loopback: tripping the kill switch, and redriving the
    /// dead letters of the agents named with [`redrive`](Self::redrive).
    pub fn new() -> Self {
        Self::default()
    }

    /// Admits any caller that sends `Authorization: Bearer <token>` (and no caller without
    /// it, even on loopback).
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(Arc::from(token.into()));
        self
    }

    /// Lets the console redrive the dead letters of agent `agent`, of type `A`
    /// ([`DeadLetters::redrive`](overseer_agent::DeadLetters::redrive)). A letter's task is
    /// typed: the console can only redrive the agents it was told the type of.
    pub fn redrive<A: Agent>(mut self, agent: &str) -> Self
    where
        A::Task: DeserializeOwned,
    {
        let name = agent.to_string();
        let redriver: Redriver = Arc::new(move |system: System, id: DeadLetterId| {
            let name = name.clone();
            Box::pin(async move {
                let to = system
                    .agent_ref::<A>(&name)
                    .map_err(|error| error.to_string())?;
                system
                    .dead_letters()
                    .redrive(id, &to)
                    .await
                    .map(|_| ())
                    .map_err(|error| error.to_string())
            })
        });
        self.redrivers.insert(agent.to_string(), redriver);
        self
    }

    pub(crate) fn redriver(&self, agent: &str) -> Option<Redriver> {
        self.redrivers.get(agent).cloned()
    }
}

/// Why an action was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ActionError {
    /// The console was served without [`Actions`].
    #[error("actions are disabled on this console")]
    Disabled,
    /// No token is configured and the caller is not on loopback.
    #[error("actions are only taken for callers on loopback, not {peer}")]
    NotLoopback {
        /// The caller's address.
        peer: SocketAddr,
    },
    /// A token is configured and the request did not carry it.
    #[error("the request lacks the console's bearer token")]
    BadToken,
    /// The request's `Origin` is another host than its `Host`.
    #[error("a page of {origin} may not take actions on this console")]
    CrossOrigin {
        /// The `Origin` header.
        origin: String,
    },
    /// The system has no budget, so no kill switch.
    #[error("the system has no budget, so no kill switch")]
    NoBudget,
    /// No dead letter has this id.
    #[error("no dead letter {0}")]
    NoLetter(u64),
    /// The letter's agent was not named with [`Actions::redrive`].
    #[error("the console cannot redrive letters of agent {0} (not named with Actions::redrive)")]
    NoRedriver(String),
    /// The redrive was asked and failed; the letter stays.
    #[error("the redrive failed: {0}")]
    RedriveFailed(String),
    /// The system is gone.
    #[error("the system is gone")]
    Gone,
}

impl ActionError {
    /// The error's code in the JSON body (`actions_disabled`, `not_loopback`, `bad_token`,
    /// `cross_origin`, `no_budget`, `no_letter`, `no_redriver`, `redrive_failed`, `gone`).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Disabled => "actions_disabled",
            Self::NotLoopback { .. } => "not_loopback",
            Self::BadToken => "bad_token",
            Self::CrossOrigin { .. } => "cross_origin",
            Self::NoBudget => "no_budget",
            Self::NoLetter(_) => "no_letter",
            Self::NoRedriver(_) => "no_redriver",
            Self::RedriveFailed(_) => "redrive_failed",
            Self::Gone => "gone",
        }
    }

    /// The HTTP status: 403 for a refusal, 404, 409, 502 or 503 for the rest.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Disabled
            | Self::NotLoopback { .. }
            | Self::BadToken
            | Self::CrossOrigin { .. } => StatusCode::FORBIDDEN,
            Self::NoLetter(_) => StatusCode::NOT_FOUND,
            Self::NoBudget | Self::NoRedriver(_) => StatusCode::CONFLICT,
            Self::RedriveFailed(_) => StatusCode::BAD_GATEWAY,
            Self::Gone => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The JSON body: `{"error": code, "message": text}`.
    pub fn body(&self) -> Value {
        json!({ "error": self.code(), "message": self.to_string() })
    }
}

/// Whether a request from `peer` with `headers` may take an action (see [`Actions`]' table).
///
/// # Errors
///
/// [`ActionError::Disabled`], [`ActionError::CrossOrigin`], [`ActionError::BadToken`] or
/// [`ActionError::NotLoopback`], in that order of checking.
pub fn authorize(
    actions: Option<&Actions>,
    peer: SocketAddr,
    headers: &HeaderMap,
) -> Result<(), ActionError> {
    let actions = actions.ok_or(ActionError::Disabled)?;
    if let Some(origin) = headers.get(ORIGIN) {
        let origin = origin.to_str().unwrap_or("(not text)");
        let origin_host = origin.split_once("://").map_or(origin, |(_, host)| host);
        let host = headers.get(HOST).and_then(|host| host.to_str().ok());
        if host != Some(origin_host) {
            return Err(ActionError::CrossOrigin {
                origin: origin.to_string(),
            });
        }
    }
    match &actions.token {
        Some(token) => {
            let sent = headers
                .get(AUTHORIZATION)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.strip_prefix("Bearer "))
                .unwrap_or("");
            if same(sent.as_bytes(), token.as_bytes()) {
                Ok(())
            } else {
                Err(ActionError::BadToken)
            }
        }
        None if peer.ip().is_loopback() => Ok(()),
        None => Err(ActionError::NotLoopback { peer }),
    }
}

/// Compares in time that does not depend on where the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn loopback() -> SocketAddr {
        "127.0.0.1:40000".parse().unwrap()
    }

    fn elsewhere() -> SocketAddr {
        "192.0.2.7:40000".parse().unwrap()
    }

    #[test]
    fn without_actions_every_caller_is_refused() {
        let headers = HeaderMap::new();
        assert_eq!(
            authorize(None, loopback(), &headers),
            Err(ActionError::Disabled)
        );
    }

    #[test]
    fn without_a_token_only_loopback_is_admitted() {
        let actions = Actions::new();
        let headers = HeaderMap::new();
        assert_eq!(authorize(Some(&actions), loopback(), &headers), Ok(()));
        let refused = authorize(Some(&actions), elsewhere(), &headers).unwrap_err();
        assert_eq!(refused.code(), "not_loopback");
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    }

    #[test]
    fn with_a_token_the_token_is_what_admits() {
        let actions = Actions::new().token("s3cret");
        let mut headers = HeaderMap::new();
        assert_eq!(
            authorize(Some(&actions), loopback(), &headers),
            Err(ActionError::BadToken)
        );
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer s3cre"));
        assert_eq!(
            authorize(Some(&actions), loopback(), &headers),
            Err(ActionError::BadToken)
        );
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer s3cret"));
        assert_eq!(authorize(Some(&actions), elsewhere(), &headers), Ok(()));
    }

    #[test]
    fn a_page_of_another_site_is_refused() {
        let actions = Actions::new();
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_static("127.0.0.1:8080"));
        headers.insert(ORIGIN, HeaderValue::from_static("http://127.0.0.1:8080"));
        assert_eq!(authorize(Some(&actions), loopback(), &headers), Ok(()));
        headers.insert(ORIGIN, HeaderValue::from_static("https://evil.example"));
        assert_eq!(
            authorize(Some(&actions), loopback(), &headers)
                .unwrap_err()
                .code(),
            "cross_origin"
        );
    }
}
