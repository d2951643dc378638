//! Failover over an ordered list of deployments, with cooldowns and a breaker per
//! (provider, model).

use std::sync::{Mutex, PoisonError};

use overseer_agent::{ModelClient, ModelError, ModelRequest, ModelResponse, Usage};
use overseer_breaker::{BreakerKey, BreakerRegistry, Outcome};
use overseer_retry::{ClassSet, Classify, ErrorClass};
use tokio::time::Instant;

use crate::cooldown::{Cooldown, Health};

/// One place a request can go: a client, named by its provider and model (the key of its
/// breaker, and how events and errors name it).
#[derive(Debug)]
pub struct Deployment<C> {
    provider: String,
    model: String,
    client: C,
}

impl<C> Deployment<C> {
    /// `client`, serving `model` at `provider`.
    pub fn new(provider: impl Into<String>, model: impl Into<String>, client: C) -> Self {
        Self {
            provider: provider.into(),
            model: model.into(),
            client,
        }
    }

    /// `provider/model`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.provider, self.model)
    }
}

/// A [`ModelClient`] over an ordered list of deployments (LiteLLM's router semantics): each
/// request goes to the first deployment that is neither cooling down nor behind an open
/// breaker; when it fails with a class in the failover set (by default transient and
/// rate-limited), the next is tried, all within the request's one
/// [`timeout`](ModelRequest::timeout). A permanent or replay-unsafe error is returned at once
/// (another deployment would be refused the same request, or the provider may have billed
/// it). When every deployment is skipped, the error is `RateLimited` with the wait until the
/// first cooldown ends.
///
/// ```
/// use overseer_agent::{ModelClient, ModelError, ModelRequest, ScriptedModel};
/// use overseer_provider::{Deployment, Router};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let down = ScriptedModel::new().when("", |_| Err(ModelError::Provider("503".into())));
/// let up = ScriptedModel::new().replies(["from the backup"]);
/// let router = Router::new([
///     Deployment::new("primary", "big", down),
///     Deployment::new("backup", "small", up),
/// ]);
/// let answer = router.complete(ModelRequest::new("hi")).await.unwrap();
/// assert_eq!(answer.text, "from the backup");
/// # }
/// ```
#[derive(Debug)]
pub struct Router<C> {
    deployments: Vec<Deployment<C>>,
    health: Mutex<Vec<Health>>,
    failover_on: ClassSet,
    cooldown: Cooldown,
    breakers: Option<BreakerRegistry>,
}

impl<C: ModelClient> Router<C> {
    /// A router over `deployments`, tried in order, failing over on transient and
    /// rate-limited errors, with the default [`Cooldown`] and no breakers.
    pub fn new(deployments: impl IntoIterator<Item = Deployment<C>>) -> Self {
        let deployments: Vec<_> = deployments.into_iter().collect();
        let health = deployments.iter().map(|_| Health::default()).collect();
        Self {
            deployments,
            health: Mutex::new(health),
            failover_on: ClassSet::TRANSIENT | ClassSet::RATE_LIMITED,
            cooldown: Cooldown::default(),
            breakers: None,
        }
    }

    /// Failing over on these classes (add [`ClassSet::PERMANENT`] to try another provider
    /// after a context-length or authentication error).
    pub fn failover_on(mut self, classes: ClassSet) -> Self {
        self.failover_on = classes;
        self
    }

    /// With this cooldown policy.
    pub fn cooldown(mut self, cooldown: Cooldown) -> Self {
        self.cooldown = cooldown;
        self
    }

    /// With a breaker per deployment from `breakers`, keyed by (provider, model).
    pub fn breakers(mut self, breakers: BreakerRegistry) -> Self {
        self.breakers = Some(breakers);
        self
    }

    /// The deployments, in order.
    pub fn deployments(&self) -> &[Deployment<C>] {
        &self.deployments
    }

    /// Until when deployment `index` is skipped, if it is at `now`.
    pub fn cooling_until(&self, index: usize, now: Instant) -> Option<Instant> {
        let health = self.health.lock().unwrap_or_else(PoisonError::into_inner);
        health
            .get(index)
            .and_then(|health| health.cooling_until(now))
    }

    fn record_failure(&self, index: usize, class: &ErrorClass) {
        let retry_after = match class {
            ErrorClass::RateLimited { retry_after } => *retry_after,
            _ => None,
        };
        let mut health = self.health.lock().unwrap_or_else(PoisonError::into_inner);
        health[index].record_failure(&self.cooldown, Instant::now(), retry_after);
    }

    async fn attempt(
        &self,
        index: usize,
        request: ModelRequest,
    ) -> Option<Result<ModelResponse, ModelError>> {
        let deployment = &self.deployments[index];
        let key = BreakerKey::new(deployment.provider.as_str(), deployment.model.as_str());
        let permit = match &self.breakers {
            Some(breakers) => Some(breakers.try_acquire(&key).ok()?),
            None => None,
        };
        let started = Instant::now();
        let result = deployment.client.complete(request).await;
        let class = result.as_ref().err().map(Classify::class);
        if let Some(permit) = permit {
            permit.record(health_outcome(class.as_ref()), started.elapsed());
        }
        if let Some(class) = class.filter(counts_against) {
            self.record_failure(index, &class);
        }
        Some(result)
    }
}

/// Whether an error says something about the deployment's health: transient, rate-limited and
/// replay-unsafe errors do; a permanent one is the request's fault.
fn counts_against(class: &ErrorClass) -> bool {
    matches!(
        class,
        ErrorClass::Transient | ErrorClass::RateLimited { .. } | ErrorClass::ReplayUnsafe
    )
}

fn health_outcome(class: Option<&ErrorClass>) -> Outcome {
    match class {
        None => Outcome::Success,
        Some(class) if counts_against(class) => Outcome::Failure,
        Some(_) => Outcome::Ignored,
    }
}

impl<C: ModelClient> ModelClient for Router<C> {
    async fn complete(&self, request: ModelRequest) -> Result<ModelResponse, ModelError> {
        let deadline = request.timeout.map(|timeout| Instant::now() + timeout);
        let mut last = None;
        for index in 0..self.deployments.len() {
            let now = Instant::now();
            if self.cooling_until(index, now).is_some() {
                continue;
            }
            let mut attempt = request.clone();
            if let Some(deadline) = deadline {
                let left = deadline.saturating_duration_since(now);
                if left.is_zero() {
                    break;
                }
                attempt.timeout = Some(left);
            }
            let Some(result) = self.attempt(index, attempt).await else {
                continue; // its breaker is open
            };
            match result {
                Ok(response) => return Ok(response),
                Err(error) if self.failover_on.contains(&error.class()) => last = Some(error),
                Err(error) => return Err(error),
            }
        }
        Err(last.unwrap_or_else(|| self.all_skipped()))
    }

    fn estimate(&self, request: &ModelRequest) -> Option<Usage> {
        // The dearest deployment's estimate: the reservation must cover wherever it goes.
        self.deployments
            .iter()
            .filter_map(|deployment| deployment.client.estimate(request))
            .max_by_key(|usage| usage.cost_micros)
    }
}

impl<C: ModelClient> Router<C> {
    fn all_skipped(&self) -> ModelError {
        let now = Instant::now();
        let first_back = (0..self.deployments.len())
            .filter_map(|index| self.cooling_until(index, now))
            .min();
        ModelError::RateLimited {
            message: format!(
                "no deployment available of {} (cooling down, breaker open, or no time left)",
                self.deployments.len()
            ),
            retry_after: first_back.map(|at| at.saturating_duration_since(now)),
        }
    }
}
