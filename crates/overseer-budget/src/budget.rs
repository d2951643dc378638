//! The budget of a whole run: the process ledger, one ledger per agent, and the kill switch.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::error::{BudgetConfigError, Refusal};
use crate::error_rate::ErrorRateTrigger;
use crate::fleet::{Fleet, FleetHold, SharedLimit};
use crate::kill_switch::{
    InFlightPolicy, KillSwitch, KillSwitchConfig, TripOutcome, TripReason, TripReport,
};
use crate::ledger::{Ledger, LedgerStatus, Remaining};
use crate::limits::Limits;
use crate::reservation::{CommitReport, Reservation};
use crate::scope::{AgentId, Scope};
use crate::tier::{hard_tier_ppm, Tier, Tiers};
use crate::usage::Spend;

/// The budget of a whole run: a process [`Ledger`], one ledger per agent (created on the
/// agent's first call) and the [`KillSwitch`]. A cheap-to-clone handle; clones share
/// everything.
///
/// [`admit`](Self::admit) is the gate on the call path, in this order:
///
/// 1. the kill switch has tripped, or the deadline has passed → [`Refusal::Tripped`];
/// 2. reserve in the agent's ledger; refused → [`Refusal::LimitExceeded`] for the agent
///    scope;
/// 3. reserve in the process ledger; refused → the agent's hold is rolled back and
///    [`Refusal::LimitExceeded`] for the process scope;
/// 4. the switch tripped meanwhile → both holds rolled back, [`Refusal::Tripped`];
/// 5. admitted: the tiers the reservation took committed + reserved spend to, in either
///    scope, fire now, in [`Reservation::warnings`].
///
/// A refused reservation refuses **that call only**: nothing trips, other agents and
/// smaller estimates go on. The switch trips on spend that really happened: a commit that
/// takes committed process spend to a limit ([`TripReason::LimitReached`]) or to the
/// [hard tier](BudgetBuilder::hard_tier) ([`TripReason::HardTierReached`]); and on the
/// deadline, the error rate, or by hand.
///
/// ```
/// use overseer_budget::{Budget, Limits, Scope, Spend};
///
/// let budget = Budget::builder()
///     .process_limits(Limits::new().tokens(10_000))
///     .agent_limits("scout", Limits::new().tokens(3_000))
///     .build()?;
///
/// let call = budget.admit("scout", Spend::from_tokens(2_000))?;
/// call.commit(Spend::from_tokens(1_500));
///
/// // The scout's own limit refuses it; the process goes on.
/// let refused = budget.admit("scout", Spend::from_tokens(2_000)).unwrap_err();
/// assert_eq!(refused.scope(), Some(&Scope::Agent("scout".into())));
/// assert!(!budget.is_tripped());
/// assert_eq!(budget.remaining("scout").tokens, Some(1_500));
/// assert_eq!(budget.remaining("writer").tokens, Some(8_500));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Budget {
    inner: Arc<BudgetInner>,
}

struct BudgetInner {
    process: Ledger,
    /// Each agent's account (its ledger, with the process ledger and the switch).
    agents: DashMap<AgentId, AgentAccount>,
    default_agent_limits: Limits,
    tiers: Tiers,
    switch: KillSwitch,
    /// The limit shared with other processes, if any.
    fleet: Option<Fleet>,
}

/// Builds a [`Budget`]; every figure is checked by [`build`](Self::build).
///
/// ```
/// use std::time::Duration;
/// use overseer_budget::{Budget, ErrorRateTrigger, InFlightPolicy, Limits, Tiers};
///
/// let budget = Budget::builder()
///     .process_limits(Limits::new().tokens(1_000_000).cost_micros(20_000_000).steps(500))
///     .default_agent_limits(Limits::new().steps(100))
///     .agent_limits("planner", Limits::new().tokens(100_000))
///     .tiers(Tiers::new(&[0.7, 0.85])?)
///     .hard_tier(0.9)
///     .time_limit(Duration::from_secs(30 * 60))
///     .error_rate(ErrorRateTrigger::new(0.5, 40, 10)?)
///     .in_flight(InFlightPolicy::CancelAfter(Duration::from_secs(2)))
///     .build()?;
/// assert!(budget.deadline().is_some());
/// # Ok::<(), overseer_budget::BudgetConfigError>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct BudgetBuilder {
    process: Limits,
    agents: Vec<(AgentId, Limits)>,
    default_agent: Limits,
    tiers: Tiers,
    hard_tier: Option<f64>,
    switch: KillSwitchConfig,
    fleet: Option<Fleet>,
}

impl BudgetBuilder {
    /// The process-wide limits (every agent's spend counts against them).
    pub fn process_limits(mut self, limits: Limits) -> Self {
        self.process = limits;
        self
    }

    /// One agent's own limits.
    pub fn agent_limits(mut self, agent: impl Into<AgentId>, limits: Limits) -> Self {
        self.agents.push((agent.into(), limits));
        self
    }

    /// The limits of every agent not given its own (default: unlimited, so only the
    /// process limits apply).
    pub fn default_agent_limits(mut self, limits: Limits) -> Self {
        self.default_agent = limits;
        self
    }

    /// The warning tiers, for every ledger (default: 70 %, 85 %, 90 %). Warnings never stop
    /// anything; see [`hard_tier`](Self::hard_tier) for that.
    pub fn tiers(mut self, tiers: Tiers) -> Self {
        self.tiers = tiers;
        self
    }

    /// Trips the kill switch ([`TripReason::HardTierReached`]) when a commit takes
    /// **committed** process spend to this fraction of any process limit: ⌈limit ·
    /// fraction⌉ (tokens, cost or steps). Without it the switch trips only when committed
    /// spend reaches a limit itself.
    ///
    /// Measured on committed spend, not on what is reserved: the trip stops every agent
    /// for good, and a reservation is an estimate that may come back, so reserving past the
    /// hard tier does not trip (warnings, which look ahead, are measured on committed +
    /// reserved). Calls in flight at the trip may still commit up to the limit. Agent
    /// limits have no hard tier: they refuse only that agent.
    ///
    /// `fraction` must be in (0, 1]; `1.0` is the same as no hard tier.
    /// [`build`](Self::build) rejects anything else with
    /// [`BudgetConfigError::HardTierOutOfRange`].
    ///
    /// ```
    /// use overseer_budget::{Budget, Limits, Spend, Tiers, TripReason};
    ///
    /// // Warnings at 70 % and 85 %, hard action at 90 %.
    /// let budget = Budget::builder()
    ///     .process_limits(Limits::new().tokens(1_000))
    ///     .tiers(Tiers::new(&[0.70, 0.85])?)
    ///     .hard_tier(0.90)
    ///     .build()?;
    /// budget.admit("a", Spend::from_tokens(950))?.commit(Spend::from_tokens(890));
    /// assert!(!budget.is_tripped(), "95 % reserved, 89 % spent");
    /// let report = budget.admit("a", Spend::from_tokens(50))?.commit(Spend::from_tokens(10));
    /// assert!(report.tripped);
    /// assert!(matches!(
    ///     budget.trip_report().map(|t| &t.reason),
    ///     Some(TripReason::HardTierReached { committed: 900, threshold: 900, .. })
    /// ));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn hard_tier(mut self, fraction: f64) -> Self {
        self.hard_tier = Some(fraction);
        self
    }

    /// A wall-clock deadline this long after the start.
    pub fn time_limit(mut self, time_limit: Duration) -> Self {
        self.switch = self.switch.time_limit(time_limit);
        self
    }

    /// An error-rate trigger over all agents' outcomes.
    pub fn error_rate(mut self, trigger: ErrorRateTrigger) -> Self {
        self.switch = self.switch.error_rate(trigger);
        self
    }

    /// What to do with in-flight calls on a trip.
    pub fn in_flight(mut self, policy: InFlightPolicy) -> Self {
        self.switch = self.switch.in_flight(policy);
        self
    }

    /// A limit on `dimension` shared with other processes (`overseer_postgres::FleetLimit`
    /// keeps one in PostgreSQL): every call holds its estimate there before it runs
    /// ([`Budget::admit_shared`], and the agent layer's asks), commits its spend there, and the
    /// kill switch becomes fleet-wide: it trips when the shared limit does (with
    /// [`TripReason::Fleet`]), and a trip of this process's switch for any other reason is told
    /// to the fleet. Calls admitted synchronously ([`Budget::admit`]) hold nothing there: their
    /// spend is charged to it when they commit.
    pub fn shared_limit(
        mut self,
        dimension: crate::Dimension,
        limit: Arc<dyn SharedLimit>,
    ) -> Self {
        self.fleet = Some(Fleet { limit, dimension });
        self
    }

    /// Every kill-switch setting at once (replaces `time_limit`, `error_rate` and
    /// `in_flight`).
    pub fn kill_switch(mut self, config: KillSwitchConfig) -> Self {
        self.switch = config;
        self
    }

    /// Checks everything and starts the budget now (the deadline counts from here).
    ///
    /// # Errors
    /// The first invalid figure, as a [`BudgetConfigError`].
    pub fn build(self) -> Result<Budget, BudgetConfigError> {
        self.build_at(Instant::now())
    }

    /// Checks everything and starts the budget at `started_at`.
    ///
    /// # Errors
    /// The first invalid figure, as a [`BudgetConfigError`].
    pub fn build_at(self, started_at: Instant) -> Result<Budget, BudgetConfigError> {
        self.default_agent.validate("default agent")?;
        self.process.validate(&Scope::Process.to_string())?;
        let hard_tier = self.hard_tier.map(hard_tier_ppm).transpose()?;
        let process =
            Ledger::unchecked(Scope::Process, self.process, self.tiers.clone(), hard_tier);
        let switch = KillSwitch::with_ledger(self.switch, started_at, Some(process.clone()))?;
        let agents = DashMap::new();
        for (agent, limits) in self.agents {
            let ledger =
                Ledger::with_tiers(Scope::Agent(agent.clone()), limits, self.tiers.clone())?;
            let account = AgentAccount::new(ledger, &process, &switch);
            match agents.entry(agent) {
                Entry::Occupied(entry) => {
                    return Err(BudgetConfigError::AgentAlreadyRegistered {
                        agent: entry.key().clone(),
                    })
                }
                Entry::Vacant(entry) => {
                    entry.insert(account);
                }
            }
        }
        if let Some(fleet) = &self.fleet {
            connect_fleet(fleet, &switch);
        }
        Ok(Budget {
            inner: Arc::new(BudgetInner {
                process,
                agents,
                default_agent_limits: self.default_agent,
                tiers: self.tiers,
                switch,
                fleet: self.fleet,
            }),
        })
    }
}

/// Trips `switch` when the shared limit trips, and tells the shared limit when `switch` trips
/// for a reason of this process. The switch holds the limit weakly: no cycle keeps either alive.
fn connect_fleet(fleet: &Fleet, switch: &KillSwitch) {
    let name: Box<str> = fleet.limit.name().into();
    let local = switch.clone();
    fleet.limit.on_trip(Box::new(move |reason| {
        local.trip(TripReason::Fleet {
            limit: name.clone(),
            reason: reason.into(),
        });
    }));
    let limit = Arc::downgrade(&fleet.limit);
    switch.on_trip(move |report| {
        if matches!(report.reason, TripReason::Fleet { .. }) {
            return;
        }
        if let Some(limit) = limit.upgrade() {
            limit.trip(&report.reason);
        }
    });
}

impl Budget {
    /// A builder with no limits, the default tiers and no kill-switch triggers.
    pub fn builder() -> BudgetBuilder {
        BudgetBuilder::default()
    }

    /// Admits one billable call of `agent`, reserving `estimate` and one step in the
    /// agent's ledger and the process ledger. Reads the clock only if there is a deadline.
    /// The tiers this reservation reached are in [`Reservation::warnings`].
    ///
    /// # Errors
    /// A [`Refusal`]: the call must not reach the agent (and nothing else is stopped). See
    /// the order of checks above.
    pub fn admit(&self, agent: &str, estimate: Spend) -> Result<Reservation, Refusal> {
        // The clock is only needed for the deadline.
        let now = self.deadline().map(|_| Instant::now());
        self.admit_inner(agent, estimate, now)
    }

    /// [`admit`](Self::admit) as of `now`.
    ///
    /// # Errors
    /// A [`Refusal`]: the call must not reach the agent.
    pub fn admit_at(
        &self,
        agent: &str,
        estimate: Spend,
        now: Instant,
    ) -> Result<Reservation, Refusal> {
        self.admit_inner(agent, estimate, Some(now))
    }

    /// Whether the budget has a [shared limit](BudgetBuilder::shared_limit).
    #[inline]
    pub fn has_shared_limit(&self) -> bool {
        self.inner.fleet.is_some()
    }

    /// Holds `estimate` (and one step) in the budget's shared limit, to be
    /// [attached](Reservation::attach_shared) to the call's reservation; `None` without a
    /// shared limit. What [`admit_shared`](Self::admit_shared) does first.
    ///
    /// # Errors
    /// [`Refusal::Tripped`] if the kill switch has tripped (or the shared limit has: then this
    /// process's switch trips too); [`Refusal::FleetLimitExceeded`] when the
    /// fleet's committed and reserved spend leave too little; [`Refusal::SharedLimitUnavailable`]
    /// when the shared limit could not be asked.
    ///
    /// # Cancel safety
    /// Dropping the future before it ends may leave the hold taken in the shared limit (as a
    /// hold of a process that died does), never a hold counted twice.
    pub async fn hold_shared(&self, estimate: Spend) -> Result<Option<FleetHold>, Refusal> {
        let Some(fleet) = &self.inner.fleet else {
            return Ok(None);
        };
        let now = self.deadline().map(|_| Instant::now());
        self.check_open(now)?;
        match fleet.hold(estimate).await {
            Ok(hold) => Ok(Some(hold)),
            Err(Refusal::Tripped { reason }) => {
                self.inner.switch.trip(reason.clone());
                Err(Refusal::Tripped { reason })
            }
            Err(refusal) => Err(refusal),
        }
    }

    /// [`admit`](Self::admit), holding the estimate in the budget's shared limit first (see
    /// [`hold_shared`](Self::hold_shared)): with a shared limit, the way to admit a call so that
    /// the fleet's processes together never reserve past it. Without one, the same as `admit`.
    ///
    /// ```
    /// use overseer_budget::{Budget, Limits, Spend};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build()?.block_on(async {
    /// let budget = Budget::builder().process_limits(Limits::new().tokens(100)).build()?;
    /// let call = budget.admit_shared("scout", Spend::from_tokens(60)).await?;
    /// call.commit(Spend::from_tokens(50));
    /// assert_eq!(budget.remaining("scout").tokens, Some(50));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`hold_shared`](Self::hold_shared), then as [`admit`](Self::admit) (the hold is then
    /// given back).
    ///
    /// # Cancel safety
    /// As [`hold_shared`](Self::hold_shared).
    pub async fn admit_shared(&self, agent: &str, estimate: Spend) -> Result<Reservation, Refusal> {
        let hold = self.hold_shared(estimate).await?;
        let mut reservation = self.admit(agent, estimate)?;
        if let Some(hold) = hold {
            reservation.attach_shared(hold);
        }
        Ok(reservation)
    }

    /// Admits `count` billable calls of `agent` at once, each reserving `estimate` and one step,
    /// as `count` calls of [`admit`](Self::admit) would, but checking the kill switch and the
    /// deadline and finding the agent's ledger once: what a vote reserving its worst case
    /// before its first sample does. All or nothing: if one does not fit, those made are
    /// released and the refusal is returned. Each reservation's tiers are in its
    /// [`Reservation::warnings`].
    ///
    /// # Errors
    /// A [`Refusal`], as [`admit`](Self::admit)'s.
    pub fn admit_many(
        &self,
        agent: &str,
        estimate: Spend,
        count: usize,
    ) -> Result<Vec<Reservation>, Refusal> {
        let now = self.deadline().map(|_| Instant::now());
        self.check_open(now)?;
        let account = self.account(agent);
        // A refusal drops the reservations made so far, which releases them.
        (0..count)
            .map(|_| self.claim(account.clone(), estimate))
            .collect()
    }

    /// `agent`'s account in this budget, found (or opened under the default agent limits)
    /// once: what an agent's call path keeps, so that each admission skips the lookup of the
    /// agent's ledger by name ([`admit_to`](Self::admit_to)). Opening it counts as the agent's
    /// first call for [`register_agent`](Self::register_agent): register limits first.
    ///
    /// ```
    /// use overseer_budget::{Budget, Limits, Spend};
    ///
    /// let budget = Budget::builder().agent_limits("scout", Limits::new().tokens(100)).build()?;
    /// let scout = budget.account("scout");
    /// budget.admit_to(&scout, Spend::from_tokens(60))?.commit(Spend::from_tokens(60));
    /// assert!(budget.admit_to(&scout, Spend::from_tokens(60)).is_err());
    /// assert_eq!(budget.remaining("scout").tokens, Some(40));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn account(&self, agent: &str) -> AgentAccount {
        if let Some(account) = self.inner.agents.get(agent) {
            return account.clone();
        }
        let id = AgentId::from(agent);
        self.inner
            .agents
            .entry(id.clone())
            .or_insert_with(|| self.new_account(id))
            .clone()
    }

    /// [`admit`](Self::admit) for the agent whose `account` this is (from
    /// [`account`](Self::account) of this budget).
    ///
    /// # Errors
    /// A [`Refusal`], as [`admit`](Self::admit)'s.
    #[inline]
    pub fn admit_to(
        &self,
        account: &AgentAccount,
        estimate: Spend,
    ) -> Result<Reservation, Refusal> {
        let now = self.deadline().map(|_| Instant::now());
        self.check_open(now)?;
        self.claim(account.clone(), estimate)
    }

    /// `now: None`: there is no deadline to check.
    fn admit_inner(
        &self,
        agent: &str,
        estimate: Spend,
        now: Option<Instant>,
    ) -> Result<Reservation, Refusal> {
        self.check_open(now)?;
        self.claim(self.account(agent), estimate)
    }

    /// The kill switch's refusal, if it has tripped (or trips now: the deadline passed).
    fn check_open(&self, now: Option<Instant>) -> Result<(), Refusal> {
        if let Some(refusal) = self.tripped_refusal() {
            return Err(refusal);
        }
        if let Some(now) = now {
            if self.inner.switch.check_deadline(now).is_some() {
                if let Some(refusal) = self.tripped_refusal() {
                    return Err(refusal);
                }
            }
        }
        Ok(())
    }

    /// Claims `estimate` and one step in `account`'s ledger and the process ledger: the
    /// reservation, or the refusal of the first that cannot hold it.
    fn claim(&self, account: AgentAccount, estimate: Spend) -> Result<Reservation, Refusal> {
        let agent_ledger = account.ledger();
        let amounts = estimate.amounts(1);
        let agent_claimed = agent_ledger
            .claim(amounts)
            .map_err(|s| s.into_refusal(agent_ledger.scope().clone()))?;
        let process = &self.inner.process;
        // A refusal refuses this call only: it trips nothing (issue 14).
        let process_claimed = match process.claim(amounts) {
            Ok(claimed) => claimed,
            Err(shortfall) => {
                agent_ledger.unclaim(amounts);
                return Err(shortfall.into_refusal(Scope::Process));
            }
        };
        if let Some(refusal) = self.tripped_refusal() {
            process.unclaim(amounts);
            agent_ledger.unclaim(amounts);
            return Err(refusal);
        }
        // Only an admitted reservation reaches a tier: one rolled back fires nothing.
        let mut warnings = Vec::new();
        agent_ledger.reach_tiers(agent_claimed, &mut warnings);
        process.reach_tiers(process_claimed, &mut warnings);
        let reservation = Reservation::in_account(estimate, account, warnings);
        Ok(match &self.inner.fleet {
            None => reservation,
            fleet => reservation.with_fleet(fleet.as_ref()),
        })
    }

    fn tripped_refusal(&self) -> Option<Refusal> {
        if !self.inner.switch.is_tripped() {
            return None;
        }
        // The report is recorded before the flag is set.
        self.inner.switch.reason().map(|reason| Refusal::Tripped {
            reason: reason.clone(),
        })
    }

    /// An account under the default agent limits.
    fn new_account(&self, agent: AgentId) -> AgentAccount {
        // The default agent limits were validated when the budget was built.
        let limits = self.inner.default_agent_limits;
        let ledger = Ledger::unchecked(Scope::Agent(agent), limits, self.inner.tiers.clone(), None);
        AgentAccount::new(ledger, &self.inner.process, &self.inner.switch)
    }

    /// Gives an agent its own limits, before its first call.
    ///
    /// # Errors
    /// [`BudgetConfigError::AgentAlreadyRegistered`] if the agent already has a ledger (limits,
    /// or a call already admitted under the default limits);
    /// [`BudgetConfigError::ZeroLimit`] for a zero limit.
    pub fn register_agent(
        &self,
        agent: impl Into<AgentId>,
        limits: Limits,
    ) -> Result<(), BudgetConfigError> {
        let agent = agent.into();
        let ledger = Ledger::with_tiers(
            Scope::Agent(agent.clone()),
            limits,
            self.inner.tiers.clone(),
        )?;
        match self.inner.agents.entry(agent) {
            Entry::Occupied(entry) => Err(BudgetConfigError::AgentAlreadyRegistered {
                agent: entry.key().clone(),
            }),
            Entry::Vacant(entry) => {
                entry.insert(AgentAccount::new(
                    ledger,
                    &self.inner.process,
                    &self.inner.switch,
                ));
                Ok(())
            }
        }
    }

    /// Commits spend that no reservation holds (a call reported it after its reservation was
    /// settled, for example while it overran its deadline), to `agent`'s ledger and the
    /// process's. It is never refused, since it was spent; like a commit, one that takes the
    /// process's committed spend to a limit trips the kill switch.
    pub fn charge(&self, agent: &str, spend: Spend) -> CommitReport {
        let mut report = CommitReport::empty(Spend::ZERO);
        report.usage = spend;
        let (nothing, spent) = (Spend::ZERO.amounts(0), spend.amounts(0));
        let account = self.account(agent);
        let agent_tier = account.ledger().settle(nothing, spent, &mut report);
        let process_tier = self.inner.process.settle(nothing, spent, &mut report);
        let hard_tier = agent_tier.or(process_tier);
        if let Some(fleet) = &self.inner.fleet {
            fleet.limit.charge(fleet.amount(spend, 0));
        }
        crate::reservation::trip_on_process_limit(&self.inner.switch, &mut report, hard_tier);
        report
    }

    /// The process ledger.
    pub fn process(&self) -> &Ledger {
        &self.inner.process
    }

    /// An agent's ledger, if it has one yet.
    pub fn agent(&self, agent: &str) -> Option<Ledger> {
        self.inner
            .agents
            .get(agent)
            .map(|account| account.ledger().clone())
    }

    /// The kill switch.
    pub fn kill_switch(&self) -> &KillSwitch {
        &self.inner.switch
    }

    /// Whether the kill switch has tripped (one atomic load).
    #[inline]
    pub fn is_tripped(&self) -> bool {
        self.inner.switch.is_tripped()
    }

    /// Trips the kill switch now. See [`KillSwitch::trip`].
    pub fn trip(&self, reason: TripReason) -> TripOutcome {
        self.inner.switch.trip(reason)
    }

    /// The trip's report, once tripped.
    pub fn trip_report(&self) -> Option<&TripReport> {
        self.inner.switch.report()
    }

    /// Records a call's outcome for the error-rate trigger. See
    /// [`KillSwitch::record_outcome`].
    pub fn record_outcome(&self, success: bool, now: Instant) -> Option<TripOutcome> {
        self.inner.switch.record_outcome(success, now)
    }

    /// Trips the switch if the deadline has passed. See [`KillSwitch::check_deadline`].
    pub fn check_deadline(&self, now: Instant) -> Option<TripOutcome> {
        self.inner.switch.check_deadline(now)
    }

    /// The wall-clock deadline, if any.
    pub fn deadline(&self) -> Option<Instant> {
        self.inner.switch.deadline()
    }

    /// What `agent` could still reserve: the tighter of its own remaining budget and the
    /// process's, per dimension (`None` where both are unlimited).
    pub fn remaining(&self, agent: &str) -> Remaining {
        let process = self.inner.process.remaining();
        match self.inner.agents.get(agent) {
            Some(account) => account.ledger().remaining().min(process),
            None => Remaining::unused(self.inner.default_agent_limits).min(process),
        }
    }

    /// The highest tier reached so far by `agent`'s own committed + reserved spend or by the
    /// process's (tiers never go back).
    pub fn tier(&self, agent: &str) -> Option<Tier> {
        let own = self
            .inner
            .agents
            .get(agent)
            .and_then(|account| account.ledger().tier());
        own.max(self.inner.process.tier())
    }

    /// Every ledger and the trip, if any, read now.
    pub fn status(&self) -> BudgetStatus {
        let mut agents: Vec<LedgerStatus> = self
            .inner
            .agents
            .iter()
            .map(|account| account.value().ledger().status())
            .collect();
        agents.sort_by(|a, b| a.scope.cmp(&b.scope));
        BudgetStatus {
            process: self.inner.process.status(),
            agents,
            trip: self.trip_report().cloned(),
        }
    }
}

impl fmt::Debug for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Budget")
            .field("process", &self.inner.process)
            .field("agents", &self.inner.agents.len())
            .field("switch", &self.inner.switch)
            .finish_non_exhaustive()
    }
}

/// A whole budget, read at one moment (each ledger consistent on its own).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BudgetStatus {
    /// The process ledger.
    pub process: LedgerStatus,
    /// Every agent's ledger, sorted by agent.
    pub agents: Vec<LedgerStatus>,
    /// The trip, if the switch has tripped.
    pub trip: Option<TripReport>,
}

/// An agent's ledger in a [`Budget`], found once ([`Budget::account`]): admissions through it
/// ([`Budget::admit_to`]) skip the lookup by name. A cheap-to-clone handle.
///
/// It also holds what each of the agent's reservations settles against besides its ledger
/// (the process ledger, the kill switch), so that a reservation holds one reference, not three.
#[derive(Clone)]
pub struct AgentAccount {
    inner: Arc<AccountInner>,
}

struct AccountInner {
    ledger: Ledger,
    process: Ledger,
    switch: KillSwitch,
}

impl AgentAccount {
    fn new(ledger: Ledger, process: &Ledger, switch: &KillSwitch) -> Self {
        Self {
            inner: Arc::new(AccountInner {
                ledger,
                process: process.clone(),
                switch: switch.clone(),
            }),
        }
    }

    /// The agent's ledger.
    pub fn ledger(&self) -> &Ledger {
        &self.inner.ledger
    }

    /// The process ledger of the budget this account is in.
    pub(crate) fn process(&self) -> &Ledger {
        &self.inner.process
    }

    /// The kill switch of the budget this account is in.
    pub(crate) fn switch(&self) -> &KillSwitch {
        &self.inner.switch
    }
}

impl fmt::Debug for AgentAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentAccount")
            .field("scope", self.ledger().scope())
            .finish()
    }
}
