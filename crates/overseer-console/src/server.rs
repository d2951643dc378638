//! The HTTP server: bound on the address given, serving the probes until shut down.

use std::net::SocketAddr;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use overseer_agent::{System, WeakSystem};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::probes::{health_json, readiness_json};

/// How the console answers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConsoleConfig {
    min_healthy_share: f64,
}

impl Default for ConsoleConfig {
    /// Ready only with every agent healthy.
    fn default() -> Self {
        Self {
            min_healthy_share: 1.0,
        }
    }
}

impl ConsoleConfig {
    /// The share of agents (0 to 1) that must be healthy for `/readyz` to answer 200.
    pub fn min_healthy_share(mut self, share: f64) -> Self {
        self.min_healthy_share = share.clamp(0.0, 1.0);
        self
    }
}

/// Why the console could not be served.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConsoleError {
    /// The address could not be bound (in use, not local, not permitted).
    #[error("the console could not listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

/// A running console: its address, and a handle to stop it.
#[derive(Debug)]
pub struct Console {
    local_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    served: JoinHandle<()>,
}

#[derive(Clone)]
struct Probed {
    system: WeakSystem,
    config: ConsoleConfig,
}

impl Console {
    /// Serves the console of `system` on `addr` (port 0: any free port, see
    /// [`local_addr`](Self::local_addr)), on the current tokio runtime, until
    /// [`shutdown`](Self::shutdown) or the console is dropped.
    ///
    /// # Errors
    ///
    /// [`ConsoleError::Bind`] when the address cannot be bound.
    pub async fn serve(
        system: &System,
        addr: SocketAddr,
        config: ConsoleConfig,
    ) -> Result<Console, ConsoleError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ConsoleError::Bind { addr, source })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| ConsoleError::Bind { addr, source })?;
        let state = Probed {
            system: system.downgrade(),
            config,
        };
        let app = Router::new()
            .route("/readyz", get(readyz))
            .route("/healthz", get(healthz))
            .with_state(state);
        let (stop, stopped) = oneshot::channel::<()>();
        let served = tokio::spawn(async move {
            let graceful = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(error) = graceful.await {
                tracing::warn!(%error, "the console stopped serving");
            }
        });
        tracing::info!(addr = %local_addr, "console serving");
        Ok(Console {
            local_addr,
            stop: Some(stop),
            served,
        })
    }

    /// The address the console listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops serving: requests in progress finish, new connections are refused.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.served).await;
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn readyz(State(probed): State<Probed>) -> (StatusCode, Json<Value>) {
    let Some(system) = probed.system.upgrade() else {
        return gone();
    };
    let (ready, body) = readiness_json(&system.readiness(), probed.config.min_healthy_share);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

async fn healthz(State(probed): State<Probed>) -> (StatusCode, Json<Value>) {
    let Some(system) = probed.system.upgrade() else {
        return gone();
    };
    (StatusCode::OK, Json(health_json(&system.health())))
}

fn gone() -> (StatusCode, Json<Value>) {
    let body = json!({ "ready": false, "error": "the system is gone" });
    (StatusCode::SERVICE_UNAVAILABLE, Json(body))
}
