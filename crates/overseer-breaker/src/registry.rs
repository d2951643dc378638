//! All breakers of a system, keyed by `(agent, task type)`, created on first use.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use foldhash::fast::RandomState;
use tokio::time::Instant;

use crate::admission::Rejected;
use crate::breaker::CircuitBreaker;
use crate::config::BreakerConfig;
use crate::error::BreakerConfigError;
use crate::handle::BreakerHandle;
use crate::key::BreakerKey;
use crate::outcome::Outcome;
use crate::permit::Permit;
use crate::snapshot::BreakerSnapshot;
use crate::transition::Transition;

/// Every breaker in the system, one per [`BreakerKey`], shared between threads and tasks.
///
/// A breaker is created, closed, the first time its key is used (by a call or by an operator
/// action), from the agent's override config if the builder was given one, else from the
/// default config. Breakers are never removed, and nothing here knows about agent processes:
/// restarting an agent keeps its breakers as they were.
///
/// ```
/// use std::time::Duration;
/// use overseer_breaker::{BreakerConfig, BreakerKey, BreakerRegistry, Outcome, State};
///
/// let registry = BreakerRegistry::builder()
///     .default_config(BreakerConfig::default())
///     .agent_config("flaky-tool-user", BreakerConfig::default().consecutive_failures(Some(2)))
///     .build()?;
///
/// let key = BreakerKey::new("flaky-tool-user", "browse");
/// for _ in 0..2 {
///     let permit = registry.try_acquire(&key).unwrap();
///     registry.record(permit, Outcome::Failure, Duration::from_secs(3));
/// }
/// let rejected = registry.try_acquire(&key).unwrap_err();
/// assert_eq!(rejected.state, State::Open);
///
/// // Operators see and steer every breaker.
/// let snapshot = registry.snapshot();
/// assert_eq!(snapshot.len(), 1);
/// assert_eq!(snapshot[0].state, State::Open);
/// registry.reset(&key);
/// assert!(registry.try_acquire(&key).is_ok());
/// # Ok::<(), overseer_breaker::BreakerConfigError>(())
/// ```
pub struct BreakerRegistry {
    breakers: DashMap<BreakerKey, BreakerHandle, RandomState>,
    default_config: BreakerConfig,
    agent_configs: HashMap<Arc<str>, BreakerConfig>,
}

/// Builds a [`BreakerRegistry`] with a default config and per-agent overrides.
#[derive(Debug, Default)]
pub struct RegistryBuilder {
    default_config: BreakerConfig,
    agent_configs: HashMap<Arc<str>, BreakerConfig>,
}

impl RegistryBuilder {
    /// The config for every agent without an override (default: [`BreakerConfig::default`]).
    pub fn default_config(mut self, config: BreakerConfig) -> Self {
        self.default_config = config;
        self
    }

    /// The config for every task type of `agent`; a second call for the same agent replaces
    /// the first.
    pub fn agent_config(mut self, agent: impl Into<Arc<str>>, config: BreakerConfig) -> Self {
        self.agent_configs.insert(agent.into(), config);
        self
    }

    /// The registry, or the first invalid config (an override's error names its agent).
    pub fn build(self) -> Result<BreakerRegistry, BreakerConfigError> {
        self.default_config.validate()?;
        for (agent, config) in &self.agent_configs {
            config
                .validate()
                .map_err(|source| BreakerConfigError::ForAgent {
                    agent: agent.clone(),
                    source: Box::new(source),
                })?;
        }
        Ok(BreakerRegistry {
            breakers: DashMap::with_hasher(RandomState::default()),
            default_config: self.default_config,
            agent_configs: self.agent_configs,
        })
    }
}

impl Default for BreakerRegistry {
    /// An empty registry using [`BreakerConfig::default`] for every agent.
    fn default() -> Self {
        Self {
            breakers: DashMap::with_hasher(RandomState::default()),
            default_config: BreakerConfig::default(),
            agent_configs: HashMap::new(),
        }
    }
}

impl BreakerRegistry {
    /// An empty registry using `config` for every agent.
    pub fn new(config: BreakerConfig) -> Result<Self, BreakerConfigError> {
        Self::builder().default_config(config).build()
    }

    /// A builder, for per-agent overrides.
    pub fn builder() -> RegistryBuilder {
        RegistryBuilder::default()
    }

    /// The config a new breaker for `agent` gets.
    pub fn config_for(&self, agent: &str) -> &BreakerConfig {
        self.agent_configs
            .get(agent)
            .unwrap_or(&self.default_config)
    }

    /// The handle of `key`'s breaker, created closed if this is the key's first use.
    #[inline]
    pub fn handle(&self, key: &BreakerKey) -> BreakerHandle {
        if let Some(handle) = self.breakers.get(key) {
            return handle.value().clone();
        }
        self.create(key)
    }

    #[cold]
    fn create(&self, key: &BreakerKey) -> BreakerHandle {
        self.breakers
            .entry(key.clone())
            .or_insert_with(|| {
                let config = self.config_for(&key.agent).clone();
                BreakerHandle::new(CircuitBreaker::with_valid_config(key.clone(), config))
            })
            .value()
            .clone()
    }

    /// Asks to send a call to `key` now. Checked before an ask is sent.
    #[inline]
    pub fn try_acquire(&self, key: &BreakerKey) -> Result<Permit, Rejected> {
        self.handle(key).try_acquire()
    }

    /// Asks to send a call to `key` at `now`.
    #[inline]
    pub fn try_acquire_at(&self, key: &BreakerKey, now: Instant) -> Result<Permit, Rejected> {
        self.handle(key).try_acquire_at(now)
    }

    /// Records an admitted call's outcome; same as [`Permit::record`]. Returns the transition
    /// it caused, if any.
    #[inline]
    pub fn record(
        &self,
        permit: Permit,
        outcome: Outcome,
        latency: Duration,
    ) -> Option<Transition> {
        permit.record(outcome, latency)
    }

    /// Records an admitted call's outcome at `now`; same as [`Permit::record_at`].
    #[inline]
    pub fn record_at(
        &self,
        permit: Permit,
        outcome: Outcome,
        latency: Duration,
        now: Instant,
    ) -> Option<Transition> {
        permit.record_at(outcome, latency, now)
    }

    /// Gives back a permit whose call was never sent; same as [`Permit::cancel`].
    pub fn cancel(&self, permit: Permit) {
        permit.cancel();
    }

    /// Holds `key`'s breaker open until [`reset`](Self::reset).
    pub fn force_open(&self, key: &BreakerKey) -> Option<Transition> {
        self.handle(key).force_open()
    }

    /// [`force_open`](Self::force_open) at `now`.
    pub fn force_open_at(&self, key: &BreakerKey, now: Instant) -> Option<Transition> {
        self.handle(key).force_open_at(now)
    }

    /// Lets every call to `key` through, counting nothing, until [`reset`](Self::reset).
    pub fn disable(&self, key: &BreakerKey) -> Option<Transition> {
        self.handle(key).disable()
    }

    /// [`disable`](Self::disable) at `now`.
    pub fn disable_at(&self, key: &BreakerKey, now: Instant) -> Option<Transition> {
        self.handle(key).disable_at(now)
    }

    /// Closes `key`'s breaker with an empty window and its backoff reset.
    pub fn reset(&self, key: &BreakerKey) -> Option<Transition> {
        self.handle(key).reset()
    }

    /// [`reset`](Self::reset) at `now`.
    pub fn reset_at(&self, key: &BreakerKey, now: Instant) -> Option<Transition> {
        self.handle(key).reset_at(now)
    }

    /// Every breaker, sorted by key.
    pub fn snapshot(&self) -> Vec<BreakerSnapshot> {
        self.snapshot_at(Instant::now())
    }

    /// Every breaker at `now`, sorted by key.
    pub fn snapshot_at(&self, now: Instant) -> Vec<BreakerSnapshot> {
        // Collect the handles first so no map shard stays locked while breakers are.
        let handles: Vec<BreakerHandle> = self.breakers.iter().map(|e| e.value().clone()).collect();
        let mut snapshots: Vec<_> = handles.iter().map(|h| h.snapshot_at(now)).collect();
        snapshots.sort_by(|a, b| a.key.cmp(&b.key));
        snapshots
    }

    /// `key`'s breaker, if it exists (does not create it).
    pub fn get(&self, key: &BreakerKey) -> Option<BreakerHandle> {
        self.breakers.get(key).map(|e| e.value().clone())
    }

    /// How many breakers exist.
    pub fn len(&self) -> usize {
        self.breakers.len()
    }

    /// Whether no breaker exists yet.
    pub fn is_empty(&self) -> bool {
        self.breakers.is_empty()
    }
}

impl fmt::Debug for BreakerRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreakerRegistry")
            .field("breakers", &self.breakers.len())
            .field("default_config", &self.default_config)
            .field("agent_configs", &self.agent_configs)
            .finish()
    }
}
