//! The systems under test, each behind the same small interface ([`Contender`]), each in its
//! own module. The scenarios drive them only through [`Subject`].

use std::any::Any;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::measure::{fail, Outcome};

pub(crate) mod kameo;
pub(crate) mod overseer;
pub(crate) mod ractor_supervisor;
pub(crate) mod raw_ractor;

/// The message of the panic every crash injects. The harness's panic hook stays silent for it
/// (thousands of restarts would otherwise print thousands of backtraces) and prints any other.
pub(crate) const INJECTED_PANIC: &str = "overseer-peers: injected panic";

/// The message of the error every injected failure returns.
pub(crate) const INJECTED_ERROR: &str = "overseer-peers: injected error";

/// How a child is made to fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Fault {
    /// The child panics while handling a "crash" message.
    Panic,
    /// The child's handler returns an error (for an Overseer agent: `AgentError::Fatal`; for
    /// kameo: an `Err` reply to a `tell`, which kameo treats as a panic).
    Error,
}

impl Fault {
    /// Its name in tables.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Panic => "panic",
            Self::Error => "error",
        }
    }
}

/// A count of child starts, shared by every child of one run. Each incarnation takes the next
/// number when it starts and answers every ping with it, so a ping answered with a number above
/// a mark taken before a crash proves that a new incarnation answered. It also counts how many
/// children have started.
#[derive(Debug, Clone, Default)]
pub(crate) struct Starts(Arc<AtomicU64>);

impl Starts {
    /// Takes the next incarnation number (the first is 1).
    pub(crate) fn next(&self) -> u64 {
        self.0.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// How many starts so far (the last number taken).
    pub(crate) fn count(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }
}

/// Checks that a ping after a crash was answered by a new incarnation.
pub(crate) fn check_new(incarnation: u64, mark: u64, system: &str) -> Outcome<()> {
    if incarnation > mark {
        Ok(())
    } else {
        Err(fail(format!(
            "{system}: answered by incarnation {incarnation}, which started before the crash (mark {mark})"
        )))
    }
}

/// N children started and kept alive, and how long starting them took.
pub(crate) struct Started {
    /// From the first start call until every child has run its start hook and its supervisor
    /// has answered a request (building the specs or declarations is not included).
    pub(crate) elapsed: Duration,
    /// Whatever keeps the children alive until the memory is read.
    pub(crate) keep_alive: Box<dyn Any + Send>,
}

impl std::fmt::Debug for Started {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Started")
            .field("elapsed", &self.elapsed)
            .finish_non_exhaustive()
    }
}

/// What every system offers the scenarios. Each method builds its own world (supervisor,
/// children), measures, and tears it down. A system that has nothing to offer for a scenario
/// keeps the default, which fails with "not offered".
pub(crate) trait Contender: Sized + Send + 'static {
    /// Scenario 1: `cycles` times, make the only child of a `one_for_one` supervisor fail with
    /// `fault` and measure until a new incarnation has answered a ping.
    fn restart_latency(
        self,
        fault: Fault,
        cycles: usize,
    ) -> impl Future<Output = Outcome<Vec<Duration>>> + Send {
        let _ = (fault, cycles);
        async { Err(fail("not offered")) }
    }

    /// Scenario 2: `storms` times, make one of `children` children of a `one_for_all`
    /// supervisor panic and measure until every child has been restarted and has answered a
    /// ping from its new incarnation.
    fn restart_storm(
        self,
        children: usize,
        storms: usize,
    ) -> impl Future<Output = Outcome<Vec<Duration>>> + Send {
        let _ = (children, storms);
        async { Err(fail("not offered")) }
    }

    /// Scenario 3: the time per ask of each of `batches` batches of `per_batch` asks to one
    /// child that answers at once.
    fn ask_round_trip(
        self,
        batches: usize,
        per_batch: usize,
    ) -> impl Future<Output = Outcome<Vec<Duration>>> + Send {
        let _ = (batches, per_batch);
        async { Err(fail("not offered")) }
    }

    /// Scenario 4: start `children` children (under one supervisor, if the system supervises)
    /// and keep them alive.
    fn spawn_children(self, children: usize) -> impl Future<Output = Outcome<Started>> + Send {
        let _ = children;
        async { Err(fail("not offered")) }
    }

    /// Scenario 6: start `children` children under one supervisor (for Overseer agents: a
    /// system with a budget), then stop everything and measure until every child has stopped.
    fn stop_all(self, children: usize) -> impl Future<Output = Outcome<Duration>> + Send {
        let _ = children;
        async { Err(fail("not offered")) }
    }
}

/// Whether a subject is one of the three peers, Overseer, or a baseline that is neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Role {
    /// raw ractor, ractor-supervisor or kameo: the fastest of them is the reference.
    Peer,
    /// Overseer: compared with the fastest peer.
    Overseer,
    /// A reference point (an unsupervised actor), not a peer.
    Baseline,
}

/// One system, configured one way: what the scenarios run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Subject {
    /// Raw ractor actors, not supervised (the memory baseline).
    RactorBare,
    /// Raw ractor with a minimal hand-rolled supervisor.
    Ractor,
    /// ractor-supervisor's `Supervisor` over ractor actors.
    RactorSupervisor,
    /// kameo actors supervised by a kameo actor.
    Kameo,
    /// Overseer's `SupervisionTree` over ractor actors (`ChildSpec::actor`), default shutdown.
    OverseerTree,
    /// The same with `Shutdown::BrutalKill` children (peers kill their children in a group
    /// restart; Overseer's default asks each to stop, as OTP does).
    OverseerTreeBrutalKill,
    /// Overseer's `System` of `Agent`s, asked through `AgentRef`.
    OverseerAgents,
    /// The same with a circuit breaker and a budget (the governed call path).
    OverseerAgentsGoverned,
}

impl Subject {
    /// Every subject, for parsing.
    pub(crate) const ALL: [Subject; 8] = [
        Self::RactorBare,
        Self::Ractor,
        Self::RactorSupervisor,
        Self::Kameo,
        Self::OverseerTree,
        Self::OverseerTreeBrutalKill,
        Self::OverseerAgents,
        Self::OverseerAgentsGoverned,
    ];

    /// The name printed in tables.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::RactorBare => "ractor, unsupervised actor",
            Self::Ractor => "ractor + hand-rolled supervisor",
            Self::RactorSupervisor => "ractor-supervisor 0.2",
            Self::Kameo => "kameo 0.22",
            Self::OverseerTree => "overseer tree (ractor worker)",
            Self::OverseerTreeBrutalKill => "overseer tree, brutal_kill",
            Self::OverseerAgents => "overseer agents (System)",
            Self::OverseerAgentsGoverned => "overseer agents, breaker + budget",
        }
    }

    /// A stable key, for the hidden subcommand and the JSON report.
    pub(crate) fn key(self) -> &'static str {
        match self {
            Self::RactorBare => "ractor_bare",
            Self::Ractor => "ractor",
            Self::RactorSupervisor => "ractor_supervisor",
            Self::Kameo => "kameo",
            Self::OverseerTree => "overseer_tree",
            Self::OverseerTreeBrutalKill => "overseer_tree_brutal_kill",
            Self::OverseerAgents => "overseer_agents",
            Self::OverseerAgentsGoverned => "overseer_agents_governed",
        }
    }

    /// The subject with this key.
    pub(crate) fn from_key(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|subject| subject.key() == key)
    }

    /// Peer, Overseer or baseline.
    pub(crate) fn role(self) -> Role {
        match self {
            Self::RactorBare => Role::Baseline,
            Self::Ractor | Self::RactorSupervisor | Self::Kameo => Role::Peer,
            Self::OverseerTree
            | Self::OverseerTreeBrutalKill
            | Self::OverseerAgents
            | Self::OverseerAgentsGoverned => Role::Overseer,
        }
    }
}

/// Calls one [`Contender`] method on the system a [`Subject`] names.
macro_rules! dispatch {
    ($subject:expr, $method:ident($($arg:expr),*)) => {
        match $subject {
            Subject::RactorBare => raw_ractor::RawRactor::UNSUPERVISED.$method($($arg),*).await,
            Subject::Ractor => raw_ractor::RawRactor::SUPERVISED.$method($($arg),*).await,
            Subject::RactorSupervisor => ractor_supervisor::RactorSupervisor.$method($($arg),*).await,
            Subject::Kameo => kameo::Kameo.$method($($arg),*).await,
            Subject::OverseerTree => overseer::OverseerTree::DEFAULT.$method($($arg),*).await,
            Subject::OverseerTreeBrutalKill => overseer::OverseerTree::BRUTAL_KILL.$method($($arg),*).await,
            Subject::OverseerAgents => overseer::OverseerAgents.$method($($arg),*).await,
            Subject::OverseerAgentsGoverned => overseer::OverseerAgentsGoverned.$method($($arg),*).await,
        }
    };
}

impl Subject {
    /// [`Contender::restart_latency`] of this subject.
    pub(crate) async fn restart_latency(
        self,
        fault: Fault,
        cycles: usize,
    ) -> Outcome<Vec<Duration>> {
        dispatch!(self, restart_latency(fault, cycles))
    }

    /// [`Contender::restart_storm`] of this subject.
    pub(crate) async fn restart_storm(
        self,
        children: usize,
        storms: usize,
    ) -> Outcome<Vec<Duration>> {
        dispatch!(self, restart_storm(children, storms))
    }

    /// [`Contender::ask_round_trip`] of this subject.
    pub(crate) async fn ask_round_trip(
        self,
        batches: usize,
        per_batch: usize,
    ) -> Outcome<Vec<Duration>> {
        dispatch!(self, ask_round_trip(batches, per_batch))
    }

    /// [`Contender::spawn_children`] of this subject.
    pub(crate) async fn spawn_children(self, children: usize) -> Outcome<Started> {
        dispatch!(self, spawn_children(children))
    }

    /// [`Contender::stop_all`] of this subject.
    pub(crate) async fn stop_all(self, children: usize) -> Outcome<Duration> {
        dispatch!(self, stop_all(children))
    }
}
