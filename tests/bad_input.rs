//! Malformed input, across every public builder and the scenario parser: each case returns a
//! typed error of the expected kind, and nothing panics. One table per API; each row names its
//! case. Synchronous cases run under `catch_unwind`; asynchronous ones run as tokio tasks, whose
//! `JoinError` tells a panic. Inputs that look wrong but are valid (an empty supervisor, a huge
//! intensity) are shown to be accepted at the end.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::time::Duration;

use overseer_agent::{Agent, AgentContext, AgentError, AgentSpec, AskError, System, SystemError};
use overseer_breaker::{
    Backoff, BreakerConfig, BreakerConfigError as BreakerError, BreakerRegistry, MAX_DURATION,
    MAX_WINDOW_SIZE,
};
use overseer_budget::{
    Budget, BudgetConfigError as BudgetError, Dimension, ErrorRateTrigger, Ledger, Limits, Scope,
    Tiers, MAX_TIERS, MAX_WINDOW,
};
use overseer_chaos::{Fault, FaultInjector, FaultKind, FaultPlan, PlanError, Rule};
use overseer_conformance::runner::{run_text, RunError};
use overseer_conformance::{parse, ScenarioError, ScenarioErrorKind};
use overseer_supervisor::{
    AutoShutdown, ChildId, ChildOpError, ChildSpec, EventKind, ExitReason, IdError, Restart,
    Shutdown, SpecError, StartError, Strategy, SupervisionTree, SupervisorSpec, TreeError,
    MAX_TREE_DEPTH,
};
use ractor::{Actor, ActorProcessingErr, ActorRef};

// ---------------------------------------------------------------------------------------------
// The table machinery
// ---------------------------------------------------------------------------------------------

/// Every typed error a case can end with.
#[derive(Debug)]
enum Error {
    Spec(SpecError),
    Tree(TreeError),
    ChildOp(ChildOpError),
    System(SystemError),
    Ask(AskError),
    Breaker(BreakerError),
    Budget(BudgetError),
    Plan(PlanError),
    Scenario(ScenarioError),
    Run(RunError),
}

macro_rules! from {
    ($($variant:ident($ty:ty)),* $(,)?) => {
        $(impl From<$ty> for Error {
            fn from(error: $ty) -> Self {
                Error::$variant(error)
            }
        })*
    };
}

from!(
    Spec(SpecError),
    Tree(TreeError),
    ChildOp(ChildOpError),
    System(SystemError),
    Ask(AskError),
    Breaker(BreakerError),
    Budget(BudgetError),
    Plan(PlanError),
    Scenario(ScenarioError),
    Run(RunError),
);

type Expected = fn(&Error) -> bool;

/// The expected error, as a pattern (with an optional `if` guard).
macro_rules! is {
    ($($pattern:tt)+) => {
        |e: &Error| matches!(e, $($pattern)+)
    };
}

/// A synchronous case: its name, the call, and the error it must give.
struct Case {
    name: &'static str,
    input: Box<dyn Fn() -> Result<(), Error>>,
    expected: Expected,
}

fn case<T, E: Into<Error>>(
    name: &'static str,
    input: impl Fn() -> Result<T, E> + 'static,
    expected: Expected,
) -> Case {
    Case {
        name,
        input: Box::new(move || input().map(drop).map_err(Into::into)),
        expected,
    }
}

type Pending = Pin<Box<dyn Future<Output = Result<(), Error>> + Send>>;

/// An asynchronous case.
struct AsyncCase {
    name: &'static str,
    input: Pending,
    expected: Expected,
}

fn async_case<T, F>(name: &'static str, input: F, expected: Expected) -> AsyncCase
where
    F: Future<Output = Result<T, Error>> + Send + 'static,
{
    AsyncCase {
        name,
        input: Box::pin(async move { input.await.map(drop) }),
        expected,
    }
}

fn verdict(name: &str, outcome: Option<Result<(), Error>>, expected: Expected) -> Option<String> {
    match outcome {
        None => Some(format!("{name}: panicked")),
        Some(Ok(())) => Some(format!("{name}: accepted")),
        Some(Err(error)) if !expected(&error) => Some(format!("{name}: wrong error {error:?}")),
        Some(Err(_)) => None,
    }
}

/// Runs every case; returns how many ran. Fails with every case that panicked, was accepted or
/// gave the wrong error.
fn run_table(table: Vec<Case>) -> usize {
    let failures: Vec<String> = table
        .iter()
        .filter_map(|case| {
            let outcome = catch_unwind(AssertUnwindSafe(|| (case.input)())).ok();
            verdict(case.name, outcome, case.expected)
        })
        .collect();
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    table.len()
}

async fn run_async_table(table: Vec<AsyncCase>) -> usize {
    let count = table.len();
    let mut failures = Vec::new();
    for case in table {
        let outcome = tokio::spawn(case.input).await.ok();
        failures.extend(verdict(case.name, outcome, case.expected));
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    count
}

// ---------------------------------------------------------------------------------------------
// Test actors and agents
// ---------------------------------------------------------------------------------------------

struct Idle;

impl Actor for Idle {
    type Msg = ();
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }
}

fn worker(id: &str) -> ChildSpec {
    ChildSpec::actor(id, || (Idle, ()))
}

/// Supervisors nested `depth` deep, built without recursion.
fn nested(depth: usize) -> SupervisorSpec {
    let mut spec = SupervisorSpec::one_for_one("s0").child(worker("leaf"));
    for level in 1..depth {
        spec = SupervisorSpec::one_for_one(format!("s{level}")).child(ChildSpec::supervisor(spec));
    }
    spec
}

/// A scenario with supervisors nested `depth` deep.
fn nested_scenario(depth: usize) -> String {
    (0..depth)
        .map(|level| format!("{}sup s{level}\n", " ".repeat(level)))
        .collect()
}

struct Echo;

impl Agent for Echo {
    type Task = String;
    type Output = String;

    async fn handle(&mut self, _: &mut AgentContext, task: String) -> Result<String, AgentError> {
        Ok(task)
    }
}

struct Counter;

impl Agent for Counter {
    type Task = u64;
    type Output = u64;

    async fn handle(&mut self, _: &mut AgentContext, n: u64) -> Result<u64, AgentError> {
        Ok(n)
    }
}

const SECOND: Duration = Duration::from_secs(1);

// ---------------------------------------------------------------------------------------------
// Supervisor specs
// ---------------------------------------------------------------------------------------------

#[test]
fn invalid_supervisor_specs_get_typed_errors() {
    let validate = |spec: fn() -> SupervisorSpec| move || spec().validate();
    let table = vec![
        case(
            "duplicate child ids",
            validate(|| {
                SupervisorSpec::one_for_one("root")
                    .child(worker("a"))
                    .child(worker("a"))
            }),
            is!(Error::Spec(SpecError::DuplicateChildId { child, .. }) if child.as_str() == "a"),
        ),
        case(
            "an empty supervisor id",
            validate(|| SupervisorSpec::one_for_one("")),
            is!(Error::Spec(SpecError::InvalidId {
                error: IdError::Empty,
                ..
            })),
        ),
        case(
            "an empty child id",
            validate(|| SupervisorSpec::one_for_one("root").child(worker(""))),
            is!(Error::Spec(SpecError::InvalidId { supervisor, error: IdError::Empty, .. })
                if supervisor.as_str() == "root"),
        ),
        case(
            "a child id with a slash",
            validate(|| SupervisorSpec::one_for_one("root").child(worker("x/y"))),
            is!(Error::Spec(SpecError::InvalidId {
                error: IdError::ForbiddenChar { found: '/', at: 1 },
                ..
            })),
        ),
        case(
            "a root id with a slash",
            validate(|| SupervisorSpec::one_for_one("team/alpha")),
            is!(Error::Spec(SpecError::InvalidId {
                error: IdError::ForbiddenChar { found: '/', .. },
                ..
            })),
        ),
        case(
            "a child id with a newline",
            validate(|| SupervisorSpec::one_for_one("root").child(worker("a\nb"))),
            is!(Error::Spec(SpecError::InvalidId {
                error: IdError::ForbiddenChar { found: '\n', .. },
                ..
            })),
        ),
        case(
            "a child id with a space",
            validate(|| SupervisorSpec::one_for_one("root").child(worker("a b"))),
            is!(Error::Spec(SpecError::InvalidId {
                error: IdError::ForbiddenChar { found: ' ', .. },
                ..
            })),
        ),
        case(
            "a child id with a quote and braces",
            validate(|| SupervisorSpec::one_for_one("root").child(worker("a\"}{"))),
            is!(Error::Spec(SpecError::InvalidId {
                error: IdError::ForbiddenChar { found: '"', .. },
                ..
            })),
        ),
        case(
            "a child id too long",
            validate(|| {
                SupervisorSpec::one_for_one("root").child(worker(&"x".repeat(ChildId::MAX_LEN + 1)))
            }),
            is!(Error::Spec(SpecError::InvalidId {
                error: IdError::TooLong { .. },
                ..
            })),
        ),
        case(
            "a child unique in the tree under two supervisors",
            validate(|| {
                let unique = worker("u").unique_in_tree(true);
                SupervisorSpec::one_for_one("root")
                    .child(unique.clone())
                    .child(ChildSpec::supervisor(
                        SupervisorSpec::one_for_one("team").child(unique),
                    ))
            }),
            is!(Error::Spec(SpecError::DuplicateInTree { child, .. }) if child.as_str() == "u"),
        ),
        case(
            "a child unique in the tree as a template",
            validate(|| SupervisorSpec::dynamic("pool", worker("t").unique_in_tree(true))),
            is!(Error::Spec(SpecError::UniqueTemplate { .. })),
        ),
        case(
            "a zero period",
            validate(|| SupervisorSpec::one_for_one("root").intensity(1, Duration::ZERO)),
            is!(Error::Spec(SpecError::ZeroPeriod { .. })),
        ),
        case(
            "a fractional period",
            validate(|| {
                SupervisorSpec::one_for_one("root").intensity(1, Duration::from_millis(1500))
            }),
            is!(Error::Spec(SpecError::FractionalPeriod {
                period_ms: 1500,
                ..
            })),
        ),
        case(
            "a period under a second",
            validate(|| SupervisorSpec::one_for_one("root").intensity(3, Duration::from_nanos(1))),
            is!(Error::Spec(SpecError::FractionalPeriod {
                period_ms: 0,
                ..
            })),
        ),
        case(
            "a significant permanent child",
            validate(|| {
                SupervisorSpec::one_for_one("root")
                    .auto_shutdown(AutoShutdown::AnySignificant)
                    .child(worker("a").significant(true))
            }),
            is!(Error::Spec(SpecError::SignificantPermanent { .. })),
        ),
        case(
            "a significant child under auto_shutdown never",
            validate(|| {
                SupervisorSpec::one_for_one("root")
                    .child(worker("a").restart(Restart::Transient).significant(true))
            }),
            is!(Error::Spec(
                SpecError::SignificantWithoutAutoShutdown { .. }
            )),
        ),
        case(
            "a zero shutdown timeout",
            validate(|| {
                SupervisorSpec::one_for_one("root")
                    .child(worker("a").shutdown(Shutdown::Timeout(Duration::ZERO)))
            }),
            is!(Error::Spec(SpecError::ZeroShutdownTimeout { .. })),
        ),
        case(
            "a dynamic supervisor without a template",
            validate(|| SupervisorSpec::new("pool", Strategy::Dynamic)),
            is!(Error::Spec(SpecError::DynamicTemplateCount {
                count: 0,
                ..
            })),
        ),
        case(
            "a dynamic supervisor with two templates",
            validate(|| SupervisorSpec::dynamic("pool", worker("t")).template(worker("u"))),
            is!(Error::Spec(SpecError::DynamicTemplateCount {
                count: 2,
                ..
            })),
        ),
        case(
            "a dynamic supervisor with static children",
            validate(|| SupervisorSpec::dynamic("pool", worker("t")).child(worker("a"))),
            is!(Error::Spec(SpecError::DynamicWithStaticChildren {
                count: 1,
                ..
            })),
        ),
        case(
            "a template on a static supervisor",
            validate(|| SupervisorSpec::one_for_all("root").template(worker("t"))),
            is!(Error::Spec(SpecError::TemplateWithoutDynamic { .. })),
        ),
        case(
            "a template with a zero shutdown timeout",
            validate(|| {
                SupervisorSpec::dynamic(
                    "pool",
                    worker("t").shutdown(Shutdown::Timeout(Duration::ZERO)),
                )
            }),
            is!(Error::Spec(SpecError::ZeroShutdownTimeout { .. })),
        ),
        case(
            "an invalid spec nested two levels down",
            validate(|| {
                let inner = SupervisorSpec::rest_for_one("inner")
                    .child(worker("x"))
                    .child(worker("x"));
                let middle =
                    SupervisorSpec::one_for_all("middle").child(ChildSpec::supervisor(inner));
                SupervisorSpec::one_for_one("root").child(ChildSpec::supervisor(middle))
            }),
            is!(Error::Spec(SpecError::DuplicateChildId { supervisor, .. })
                if supervisor.as_str() == "inner"),
        ),
        case(
            "a tree 10,000 deep",
            || nested(10_000).validate(),
            is!(Error::Spec(SpecError::TooDeep {
                limit: MAX_TREE_DEPTH,
                ..
            })),
        ),
    ];
    assert_eq!(run_table(table), 24);
}

// ---------------------------------------------------------------------------------------------
// Trees and supervisor calls
// ---------------------------------------------------------------------------------------------

async fn running(spec: SupervisorSpec) -> Result<SupervisionTree, Error> {
    Ok(SupervisionTree::start(spec).await?)
}

fn two_workers() -> SupervisorSpec {
    SupervisorSpec::one_for_one("root")
        .child(worker("a"))
        .child(worker("b"))
}

#[tokio::test(start_paused = true)]
async fn invalid_trees_and_supervisor_calls_get_typed_errors() {
    let table = vec![
        async_case(
            "starting a tree with a zero period",
            running(SupervisorSpec::one_for_one("root").intensity(1, Duration::ZERO)),
            is!(Error::Tree(TreeError::InvalidSpec(
                SpecError::ZeroPeriod { .. }
            ))),
        ),
        async_case(
            "starting a tree 10,000 deep",
            running(nested(10_000)),
            is!(Error::Tree(TreeError::InvalidSpec(
                SpecError::TooDeep { .. }
            ))),
        ),
        async_case(
            "starting a tree whose child cannot start",
            running(
                SupervisorSpec::one_for_one("root").child(ChildSpec::worker("broken", |_| async {
                    Err::<ractor::ActorCell, _>(StartError::failed("no credentials"))
                })),
            ),
            is!(Error::Tree(TreeError::StartFailed(
                StartError::ChildFailed { .. }
            ))),
        ),
        async_case(
            "start_child with the id of a running child",
            async {
                let tree = running(two_workers()).await?;
                Ok(tree.root().start_child(worker("a")).await?)
            },
            is!(Error::ChildOp(ChildOpError::AlreadyStarted(id)) if id.as_str() == "a"),
        ),
        async_case(
            "start_child with the id of a stopped child",
            async {
                let tree = running(two_workers()).await?;
                tree.root().terminate_child("a").await?;
                Ok(tree.root().start_child(worker("a")).await?)
            },
            is!(Error::ChildOp(ChildOpError::AlreadyPresent(_))),
        ),
        async_case(
            "start_child with an empty id",
            async {
                let tree = running(two_workers()).await?;
                Ok(tree.root().start_child(worker("")).await?)
            },
            is!(Error::ChildOp(ChildOpError::InvalidSpec(
                SpecError::InvalidId {
                    error: IdError::Empty,
                    ..
                }
            ))),
        ),
        async_case(
            "start_child with a tab in the id",
            async {
                let tree = running(two_workers()).await?;
                Ok(tree.root().start_child(worker("c\td")).await?)
            },
            is!(Error::ChildOp(ChildOpError::InvalidSpec(
                SpecError::InvalidId {
                    error: IdError::ForbiddenChar { found: '\t', .. },
                    ..
                }
            ))),
        ),
        async_case(
            "start_dynamic_child with a slash in the id",
            async {
                let tree = running(SupervisorSpec::dynamic("pool", worker("t"))).await?;
                Ok(tree.root().start_dynamic_child("a/b").await?)
            },
            is!(Error::ChildOp(ChildOpError::InvalidSpec(
                SpecError::InvalidId {
                    error: IdError::ForbiddenChar { found: '/', .. },
                    ..
                }
            ))),
        ),
        async_case(
            "start_child of a supervisor holding a child unique in the tree twice",
            async {
                let tree = running(two_workers()).await?;
                let unique = worker("u").unique_in_tree(true);
                let team = SupervisorSpec::one_for_one("team")
                    .child(unique.clone())
                    .child(ChildSpec::supervisor(
                        SupervisorSpec::one_for_one("inner").child(unique),
                    ));
                Ok(tree.root().start_child(ChildSpec::supervisor(team)).await?)
            },
            is!(Error::ChildOp(ChildOpError::InvalidSpec(
                SpecError::DuplicateInTree { .. }
            ))),
        ),
        async_case(
            "starting a tree with a zero call timeout",
            async {
                Ok(SupervisionTree::builder(two_workers())
                    .call_timeout(Duration::ZERO)
                    .start()
                    .await?)
            },
            is!(Error::Tree(TreeError::ZeroCallTimeout)),
        ),
        async_case(
            "start_child of a significant child under auto_shutdown never",
            async {
                let tree = running(two_workers()).await?;
                let child = worker("c").restart(Restart::Temporary).significant(true);
                Ok(tree.root().start_child(child).await?)
            },
            is!(Error::ChildOp(ChildOpError::InvalidSpec(
                SpecError::SignificantWithoutAutoShutdown { .. }
            ))),
        ),
        async_case(
            "start_child of a supervisor 10,000 deep",
            async {
                let tree = running(two_workers()).await?;
                Ok(tree
                    .root()
                    .start_child(ChildSpec::supervisor(nested(10_000)))
                    .await?)
            },
            is!(Error::ChildOp(ChildOpError::InvalidSpec(
                SpecError::TooDeep { .. }
            ))),
        ),
        async_case(
            "start_child on a dynamic supervisor",
            async {
                let tree = running(SupervisorSpec::dynamic("pool", worker("t"))).await?;
                Ok(tree.root().start_child(worker("a")).await?)
            },
            is!(Error::ChildOp(ChildOpError::NotAllowedOnDynamic)),
        ),
        async_case(
            "start_dynamic_child on a static supervisor",
            async {
                let tree = running(two_workers()).await?;
                Ok(tree.root().start_dynamic_child("c").await?)
            },
            is!(Error::ChildOp(ChildOpError::OnlyOnDynamic)),
        ),
        async_case(
            "restart_child on a dynamic supervisor",
            async {
                let tree = running(SupervisorSpec::dynamic("pool", worker("t"))).await?;
                tree.root().start_dynamic_child("w").await?;
                Ok(tree.root().restart_child("w").await?)
            },
            is!(Error::ChildOp(ChildOpError::NotAllowedOnDynamic)),
        ),
        async_case(
            "terminate_child of an unknown id",
            async {
                let tree = running(two_workers()).await?;
                Ok(tree.root().terminate_child("nobody").await?)
            },
            is!(Error::ChildOp(ChildOpError::NotFound(id)) if id.as_str() == "nobody"),
        ),
        async_case(
            "restart_child of a running child",
            async {
                let tree = running(two_workers()).await?;
                Ok(tree.root().restart_child("a").await?)
            },
            is!(Error::ChildOp(ChildOpError::Running(_))),
        ),
        async_case(
            "delete_child of a running child",
            async {
                let tree = running(two_workers()).await?;
                Ok(tree.root().delete_child("b").await?)
            },
            is!(Error::ChildOp(ChildOpError::Running(_))),
        ),
        async_case(
            "which_children after the tree shut down",
            async {
                let tree = running(two_workers()).await?;
                let root = tree.root().clone();
                tree.shutdown(SECOND).await?;
                Ok(root.which_children().await?)
            },
            is!(Error::ChildOp(ChildOpError::SupervisorNotRunning)),
        ),
        async_case(
            "start_child after the tree shut down",
            async {
                let tree = running(two_workers()).await?;
                tree.shutdown(SECOND).await?;
                Ok(tree.root().start_child(worker("c")).await?)
            },
            is!(Error::ChildOp(ChildOpError::SupervisorNotRunning)),
        ),
    ];
    assert_eq!(run_async_table(table).await, 20);
}

// ---------------------------------------------------------------------------------------------
// Agents and asks
// ---------------------------------------------------------------------------------------------

/// A started system with an `echo` agent.
async fn echo_system() -> Result<System, Error> {
    let system = System::builder().build()?;
    let root =
        SupervisorSpec::one_for_one("root").child(system.agent(AgentSpec::new("echo", || Echo))?);
    system.start(root).await?;
    Ok(system)
}

#[tokio::test(start_paused = true)]
async fn invalid_agents_and_asks_get_typed_errors() {
    let table = vec![
        async_case(
            "two agents with one name",
            async {
                let system = System::builder().build()?;
                system.agent(AgentSpec::new("echo", || Echo))?;
                Ok(system.agent(AgentSpec::new("echo", || Echo))?)
            },
            is!(Error::System(SystemError::DuplicateAgent(name)) if name == "echo"),
        ),
        async_case(
            "two agents of different types with one name",
            async {
                let system = System::builder().build()?;
                system.agent(AgentSpec::new("twin", || Echo))?;
                Ok(system.agent(AgentSpec::new("twin", || Counter))?)
            },
            is!(Error::System(SystemError::DuplicateAgent(_))),
        ),
        async_case(
            "an empty agent name",
            async {
                Ok(System::builder()
                    .build()?
                    .agent(AgentSpec::new("", || Echo))?)
            },
            is!(Error::System(SystemError::InvalidAgentName {
                error: IdError::Empty,
                ..
            })),
        ),
        async_case(
            "an empty agent template name",
            async {
                Ok(System::builder()
                    .build()?
                    .agent_template(AgentSpec::new("", || Echo))?)
            },
            is!(Error::System(SystemError::InvalidAgentName {
                error: IdError::Empty,
                ..
            })),
        ),
        async_case(
            "an agent name with a slash",
            async {
                Ok(System::builder()
                    .build()?
                    .agent(AgentSpec::new("team/echo", || Echo))?)
            },
            is!(Error::System(SystemError::InvalidAgentName {
                error: IdError::ForbiddenChar { found: '/', .. },
                ..
            })),
        ),
        async_case(
            "an agent template name with a space",
            async {
                Ok(System::builder()
                    .build()?
                    .agent_template(AgentSpec::new("an echo", || Echo))?)
            },
            is!(Error::System(SystemError::InvalidAgentName {
                error: IdError::ForbiddenChar { found: ' ', .. },
                ..
            })),
        ),
        async_case(
            "a zero default ask timeout",
            async { Ok(System::builder().ask_timeout(Duration::ZERO).build()?) },
            is!(Error::System(SystemError::ZeroDefaultAskTimeout)),
        ),
        async_case(
            "an event capacity of 0",
            async { Ok(System::builder().event_capacity(0).build()?) },
            is!(Error::System(SystemError::EventCapacityOutOfRange {
                capacity: 0,
                ..
            })),
        ),
        async_case(
            "an event capacity too large to allocate",
            async { Ok(System::builder().event_capacity(usize::MAX).build()?) },
            is!(Error::System(SystemError::EventCapacityOutOfRange {
                capacity: usize::MAX,
                max: System::MAX_EVENT_CAPACITY,
            })),
        ),
        async_case(
            "a dynamic child named like a static agent",
            async {
                let system = System::builder().build()?;
                let pool = SupervisorSpec::dynamic(
                    "pool",
                    system.agent_template(AgentSpec::new("member", || Echo))?,
                );
                let root = SupervisorSpec::one_for_one("root")
                    .child(system.agent(AgentSpec::new("echo", || Echo))?)
                    .child(ChildSpec::supervisor(pool));
                system.start(root).await?;
                let pool = system
                    .tree()
                    .expect("started")
                    .root()
                    .which_children()
                    .await?
                    .iter()
                    .find_map(|child| child.supervisor())
                    .expect("the pool");
                Ok(pool.start_dynamic_child("echo").await?)
            },
            is!(Error::ChildOp(ChildOpError::StartFailed(StartError::NameTaken { name, holder: Some(holder) }))
                if name.as_str() == "echo" && holder.as_str() == "root/echo"),
        ),
        async_case(
            "one agent under two supervisors",
            async {
                let system = System::builder().build()?;
                let echo = system.agent(AgentSpec::new("echo", || Echo))?;
                let root = SupervisorSpec::one_for_one("root")
                    .child(echo.clone())
                    .child(ChildSpec::supervisor(
                        SupervisorSpec::one_for_one("team").child(echo),
                    ));
                Ok(system.start(root).await?)
            },
            is!(Error::System(SystemError::Tree(TreeError::InvalidSpec(
                SpecError::DuplicateInTree { child, .. }
            ))) if child.as_str() == "echo"),
        ),
        async_case(
            "one agent added under a second supervisor",
            async {
                let system = echo_system().await?;
                let echo = system.agent(AgentSpec::new("late", || Echo))?;
                let root = system.tree().expect("started").root().clone();
                root.start_child(echo.clone()).await?;
                let team = SupervisorSpec::one_for_one("team").child(echo);
                Ok(root.start_child(ChildSpec::supervisor(team)).await?)
            },
            is!(Error::ChildOp(ChildOpError::StartFailed(StartError::ChildFailed { cause, .. }))
                if matches!(&**cause, StartError::NameTaken { .. })),
        ),
        async_case(
            "a declared agent as a template",
            async {
                let system = System::builder().build()?;
                let pool =
                    SupervisorSpec::dynamic("pool", system.agent(AgentSpec::new("echo", || Echo))?);
                Ok(system.start(pool).await?)
            },
            is!(Error::System(SystemError::Tree(TreeError::InvalidSpec(
                SpecError::UniqueTemplate { .. }
            )))),
        ),
        async_case(
            "a zero ask timeout",
            async {
                let spec = AgentSpec::new("echo", || Echo).ask_timeout(Duration::ZERO);
                Ok(System::builder().build()?.agent(spec)?)
            },
            is!(Error::System(SystemError::ZeroTimeout(name)) if name == "echo"),
        ),
        async_case(
            "an agent and a worker with one id",
            async {
                let system = System::builder().build()?;
                let root = SupervisorSpec::one_for_one("root")
                    .child(system.agent(AgentSpec::new("echo", || Echo))?)
                    .child(worker("echo"));
                Ok(system.start(root).await?)
            },
            is!(Error::System(SystemError::Tree(TreeError::InvalidSpec(
                SpecError::DuplicateChildId { .. }
            )))),
        ),
        async_case(
            "starting a system twice",
            async {
                let system = echo_system().await?;
                Ok(system.start(SupervisorSpec::one_for_one("again")).await?)
            },
            is!(Error::System(SystemError::AlreadyStarted)),
        ),
        async_case(
            "an unknown agent",
            async { Ok(echo_system().await?.agent_ref::<Echo>("nobody")?) },
            is!(Error::Ask(AskError::UnknownAgent { name }) if name == "nobody"),
        ),
        async_case(
            "an agent of another type",
            async { Ok(echo_system().await?.agent_ref::<Counter>("echo")?) },
            is!(Error::Ask(AskError::WrongAgentType { .. })),
        ),
        async_case(
            "a zero per-call timeout",
            async {
                let system = echo_system().await?;
                let echo = system.agent_ref::<Echo>("echo")?;
                Ok(echo.ask_within("hi".into(), Duration::ZERO).await?)
            },
            is!(Error::Ask(AskError::Timeout { after, .. }) if after.is_zero()),
        ),
        async_case(
            "an ask after shutdown",
            async {
                let system = echo_system().await?;
                let echo = system.agent_ref::<Echo>("echo")?;
                system.shutdown(SECOND).await?;
                Ok(echo.ask("hi".into()).await?)
            },
            is!(Error::Ask(AskError::ShutDown)),
        ),
        async_case(
            "a tell after shutdown",
            async {
                let system = echo_system().await?;
                let echo = system.agent_ref::<Echo>("echo")?;
                system.shutdown(SECOND).await?;
                Ok(echo.tell("hi".into())?)
            },
            is!(Error::Ask(AskError::ShutDown)),
        ),
        async_case(
            "a supervisor call after the system shut down",
            async {
                let system = echo_system().await?;
                let root = system.tree().expect("started").root().clone();
                system.shutdown(SECOND).await?;
                Ok(root.terminate_child("echo").await?)
            },
            is!(Error::ChildOp(ChildOpError::SupervisorNotRunning)),
        ),
    ];
    assert_eq!(run_async_table(table).await, 22);
}

// ---------------------------------------------------------------------------------------------
// Breakers
// ---------------------------------------------------------------------------------------------

#[test]
fn invalid_breaker_configs_get_typed_errors() {
    let registry = |config: fn() -> BreakerConfig| move || BreakerRegistry::new(config());
    let d = BreakerConfig::default;
    let table = vec![
        case(
            "a zero window",
            registry(|| BreakerConfig::default().window_size(0).minimum_calls(0)),
            is!(Error::Breaker(BreakerError::ZeroWindow)),
        ),
        case(
            "a window over the limit",
            registry(|| BreakerConfig::default().window_size(MAX_WINDOW_SIZE + 1)),
            is!(Error::Breaker(BreakerError::WindowTooLarge { .. })),
        ),
        case(
            "zero minimum calls",
            registry(|| BreakerConfig::default().minimum_calls(0)),
            is!(Error::Breaker(BreakerError::ZeroMinimumCalls)),
        ),
        case(
            "minimum calls over the window",
            registry(|| BreakerConfig::default().window_size(3).minimum_calls(4)),
            is!(Error::Breaker(
                BreakerError::MinimumCallsExceedWindow { .. }
            )),
        ),
        case(
            "a zero failure-rate threshold",
            registry(|| BreakerConfig::default().failure_rate_threshold(0.0)),
            is!(Error::Breaker(BreakerError::FailureRateThreshold(_))),
        ),
        case(
            "a failure-rate threshold over 1",
            registry(|| BreakerConfig::default().failure_rate_threshold(1.01)),
            is!(Error::Breaker(BreakerError::FailureRateThreshold(_))),
        ),
        case(
            "a NaN failure-rate threshold",
            registry(|| BreakerConfig::default().failure_rate_threshold(f64::NAN)),
            is!(Error::Breaker(BreakerError::FailureRateThreshold(_))),
        ),
        case(
            "zero consecutive failures",
            registry(|| BreakerConfig::default().consecutive_failures(Some(0))),
            is!(Error::Breaker(BreakerError::ZeroConsecutiveFailures)),
        ),
        case(
            "a zero slow-call threshold",
            registry(|| BreakerConfig::default().slow_call_threshold(Some(Duration::ZERO))),
            is!(Error::Breaker(BreakerError::ZeroSlowCallThreshold)),
        ),
        case(
            "a zero open duration",
            registry(|| BreakerConfig::default().open_duration(Backoff::fixed(Duration::ZERO))),
            is!(Error::Breaker(BreakerError::ZeroOpenDuration)),
        ),
        case(
            "an open duration capped below its base",
            registry(|| {
                BreakerConfig::default().open_duration(Backoff::exponential(
                    SECOND * 10,
                    2.0,
                    SECOND,
                ))
            }),
            is!(Error::Breaker(BreakerError::MaxBelowBase { .. })),
        ),
        case(
            "a shrinking backoff",
            registry(|| {
                BreakerConfig::default().open_duration(Backoff::exponential(
                    SECOND,
                    0.5,
                    SECOND * 10,
                ))
            }),
            is!(Error::Breaker(BreakerError::Multiplier(_))),
        ),
        case(
            "an infinite backoff multiplier",
            registry(|| {
                BreakerConfig::default().open_duration(Backoff::exponential(
                    SECOND,
                    f64::INFINITY,
                    SECOND * 10,
                ))
            }),
            is!(Error::Breaker(BreakerError::Multiplier(_))),
        ),
        case(
            "a jitter of 1",
            registry(|| BreakerConfig::default().open_duration(Backoff::fixed(SECOND).jitter(1.0))),
            is!(Error::Breaker(BreakerError::Jitter(_))),
        ),
        case(
            "zero half-open probes",
            registry(|| BreakerConfig::default().half_open_probes(0)),
            is!(Error::Breaker(BreakerError::ZeroHalfOpenProbes)),
        ),
        case(
            "a zero probe timeout",
            registry(|| BreakerConfig::default().probe_timeout(Duration::ZERO)),
            is!(Error::Breaker(BreakerError::ZeroProbeTimeout)),
        ),
        case(
            "a probe timeout over the limit",
            registry(|| BreakerConfig::default().probe_timeout(MAX_DURATION + SECOND)),
            is!(Error::Breaker(BreakerError::DurationTooLong { .. })),
        ),
        case(
            "an invalid per-agent override",
            move || {
                BreakerRegistry::builder()
                    .default_config(d())
                    .agent_config("critic", d().half_open_probes(0))
                    .build()
            },
            is!(Error::Breaker(BreakerError::ForAgent { agent, .. }) if &**agent == "critic"),
        ),
    ];
    assert_eq!(run_table(table), 18);
}

// ---------------------------------------------------------------------------------------------
// Budgets
// ---------------------------------------------------------------------------------------------

#[test]
fn invalid_budget_configs_get_typed_errors() {
    let build = |builder: fn() -> overseer_budget::BudgetBuilder| move || builder().build();
    let table = vec![
        case(
            "a zero process token limit",
            build(|| Budget::builder().process_limits(Limits::new().tokens(0))),
            is!(Error::Budget(BudgetError::ZeroLimit { target, dimension: Dimension::Tokens })
                if target == "process"),
        ),
        case(
            "a zero process cost limit",
            build(|| Budget::builder().process_limits(Limits::new().cost_micros(0))),
            is!(Error::Budget(BudgetError::ZeroLimit {
                dimension: Dimension::Cost,
                ..
            })),
        ),
        case(
            "a zero step limit",
            build(|| Budget::builder().process_limits(Limits::new().steps(0))),
            is!(Error::Budget(BudgetError::ZeroLimit {
                dimension: Dimension::Steps,
                ..
            })),
        ),
        case(
            "a zero agent limit",
            build(|| Budget::builder().agent_limits("critic", Limits::new().tokens(0))),
            is!(Error::Budget(BudgetError::ZeroLimit { target, .. }) if target.contains("critic")),
        ),
        case(
            "a zero default agent limit",
            build(|| Budget::builder().default_agent_limits(Limits::new().steps(0))),
            is!(Error::Budget(BudgetError::ZeroLimit { target, .. }) if target == "default agent"),
        ),
        case(
            "limits given twice for one agent",
            build(|| {
                Budget::builder()
                    .agent_limits("critic", Limits::new().tokens(10))
                    .agent_limits("critic", Limits::new().tokens(20))
            }),
            is!(Error::Budget(BudgetError::AgentAlreadyRegistered { .. })),
        ),
        case(
            "a zero limit on a bare ledger",
            || Ledger::new(Scope::Process, Limits::new().tokens(0)),
            is!(Error::Budget(BudgetError::ZeroLimit { .. })),
        ),
        case(
            "tiers not increasing",
            || Tiers::new(&[0.9, 0.5]),
            is!(Error::Budget(BudgetError::TiersNotIncreasing {
                index: 1,
                ..
            })),
        ),
        case(
            "a tier of 0",
            || Tiers::new(&[0.0]),
            is!(Error::Budget(BudgetError::TierOutOfRange { index: 0, .. })),
        ),
        case(
            "a tier of 1",
            || Tiers::new(&[0.5, 1.0]),
            is!(Error::Budget(BudgetError::TierOutOfRange { index: 1, .. })),
        ),
        case(
            "a NaN tier",
            || Tiers::new(&[f64::NAN]),
            is!(Error::Budget(BudgetError::TierOutOfRange { .. })),
        ),
        case(
            "too many tiers",
            || {
                let fractions: Vec<f64> = (1..=MAX_TIERS + 1).map(|n| n as f64 / 100.0).collect();
                Tiers::new(&fractions)
            },
            is!(Error::Budget(BudgetError::TooManyTiers { .. })),
        ),
        case(
            "an error-rate threshold of 0",
            || ErrorRateTrigger::new(0.0, 20, 10),
            is!(Error::Budget(BudgetError::ErrorThresholdOutOfRange { .. })),
        ),
        case(
            "an error-rate threshold over 1",
            || ErrorRateTrigger::new(1.5, 20, 10),
            is!(Error::Budget(BudgetError::ErrorThresholdOutOfRange { .. })),
        ),
        case(
            "a NaN error-rate threshold",
            || ErrorRateTrigger::new(f64::NAN, 20, 10),
            is!(Error::Budget(BudgetError::ErrorThresholdOutOfRange { .. })),
        ),
        case(
            "an error-rate window of 0",
            || ErrorRateTrigger::new(0.5, 0, 0),
            is!(Error::Budget(BudgetError::WindowOutOfRange {
                window: 0,
                ..
            })),
        ),
        case(
            "an error-rate window over the limit",
            || ErrorRateTrigger::new(0.5, MAX_WINDOW + 1, 1),
            is!(Error::Budget(BudgetError::WindowOutOfRange { .. })),
        ),
        case(
            "error-rate minimum calls over the window",
            || ErrorRateTrigger::new(0.5, 20, 21),
            is!(Error::Budget(BudgetError::MinCallsOutOfRange { .. })),
        ),
        case(
            "a zero time limit",
            build(|| Budget::builder().time_limit(Duration::ZERO)),
            is!(Error::Budget(BudgetError::ZeroTimeLimit)),
        ),
        case(
            "a time limit too long to represent",
            build(|| Budget::builder().time_limit(Duration::MAX)),
            is!(Error::Budget(BudgetError::TimeLimitTooLong { .. })),
        ),
    ];
    assert_eq!(run_table(table), 20);
}

// ---------------------------------------------------------------------------------------------
// Fault plans
// ---------------------------------------------------------------------------------------------

#[test]
fn invalid_fault_plans_get_typed_errors() {
    let build = |plan: fn() -> overseer_chaos::FaultPlanBuilder| move || plan().build();
    #[allow(clippy::reversed_empty_ranges)]
    let table = vec![
        case(
            "a probability over 1",
            build(|| FaultPlan::builder().probability(Fault::Panic, 1.5)),
            is!(Error::Plan(PlanError::ProbabilityOutOfRange {
                fault: FaultKind::Panic,
                ..
            })),
        ),
        case(
            "a negative probability",
            build(|| FaultPlan::builder().probability(Fault::Error, -0.1)),
            is!(Error::Plan(PlanError::ProbabilityOutOfRange { .. })),
        ),
        case(
            "a NaN probability",
            build(|| FaultPlan::builder().probability(Fault::Hang, f64::NAN)),
            is!(Error::Plan(PlanError::ProbabilityOutOfRange { .. })),
        ),
        case(
            "probabilities adding up to more than 1",
            build(|| {
                FaultPlan::builder()
                    .probability(Fault::Panic, 0.6)
                    .probability(Fault::Error, 0.5)
            }),
            is!(Error::Plan(PlanError::ProbabilitiesAboveOne {
                task_type: None,
                ..
            })),
        ),
        case(
            "probabilities of one task type adding up to more than 1",
            build(|| {
                FaultPlan::builder()
                    .probability(Fault::Panic, 0.6)
                    .rule(Rule::probability(Fault::Error, 0.5).for_task_type("search"))
            }),
            is!(Error::Plan(PlanError::ProbabilitiesAboveOne {
                task_type: Some(_),
                ..
            })),
        ),
        case(
            "a fault on call 0",
            build(|| FaultPlan::builder().on_call(0, Fault::Panic)),
            is!(Error::Plan(PlanError::CallZero { .. })),
        ),
        case(
            "an empty range of calls",
            build(|| FaultPlan::builder().on_calls(5..=3, Fault::Error)),
            is!(Error::Plan(PlanError::EmptyCallRange {
                first: 5,
                last: 3,
                ..
            })),
        ),
        case(
            "a start failure on attempt 0",
            build(|| FaultPlan::builder().fail_start_on(0)),
            is!(Error::Plan(PlanError::StartAttemptZero)),
        ),
        case(
            "an empty range of start attempts",
            build(|| FaultPlan::builder().fail_start_on_attempts(4..=2)),
            is!(Error::Plan(PlanError::EmptyStartAttemptRange { .. })),
        ),
        case(
            "a start-failure probability over 1",
            build(|| FaultPlan::builder().fail_start_probability(2.0)),
            is!(Error::Plan(PlanError::ProbabilityOutOfRange {
                fault: FaultKind::FailStart,
                ..
            })),
        ),
        case(
            "a usage inflation factor of 1",
            build(|| FaultPlan::builder().on_call(1, Fault::InflateUsage(1))),
            is!(Error::Plan(PlanError::InflationBelowTwo { factor: 1 })),
        ),
        case(
            "a rule for an empty task type",
            build(|| FaultPlan::builder().rule(Rule::on_call(1, Fault::Error).for_task_type(""))),
            is!(Error::Plan(PlanError::EmptyTaskType { .. })),
        ),
        case(
            "corrupt outputs without a corruptor",
            || {
                let plan = FaultPlan::builder()
                    .probability(Fault::Corrupt, 0.1)
                    .build()?;
                FaultInjector::<Echo>::new(plan, 1)
            },
            is!(Error::Plan(PlanError::CorruptWithoutCorruptor)),
        ),
    ];
    assert_eq!(run_table(table), 13);
}

// ---------------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------------

/// Whether an error is a scenario parse error of this kind.
macro_rules! parse_error {
    ($kind:pat) => {
        |e: &Error| matches!(e, Error::Scenario(ScenarioError { kind: $kind, .. }))
    };
}

#[test]
fn malformed_scenarios_get_typed_errors() {
    let parsing = |text: &'static str| move || parse(text);
    let running = |text: &'static str| move || run_text(text);
    let table = vec![
        case(
            "an empty text",
            parsing(""),
            parse_error!(ScenarioErrorKind::NoRoot),
        ),
        case(
            "only comments",
            parsing("# nothing\n\n   # here\n"),
            parse_error!(ScenarioErrorKind::NoRoot),
        ),
        case(
            "an action before the tree",
            parsing("crash a\nsup root\n"),
            parse_error!(ScenarioErrorKind::NoRoot),
        ),
        case(
            "a tab",
            parsing("sup root\n\tchild a\n"),
            parse_error!(ScenarioErrorKind::Tab),
        ),
        case(
            "a duplicate name",
            parsing("sup root\n  child a\n  sup a\n"),
            parse_error!(ScenarioErrorKind::DuplicateName { .. }),
        ),
        case(
            "an unknown strategy",
            parsing("sup root one_for_some\n"),
            parse_error!(ScenarioErrorKind::UnknownStrategy { .. }),
        ),
        case(
            "an intensity over u32",
            parsing("sup root intensity=4294967296\n"),
            parse_error!(ScenarioErrorKind::BadNumber {
                field: "intensity",
                ..
            }),
        ),
        case(
            "a negative period",
            parsing("sup root period=-1\n"),
            parse_error!(ScenarioErrorKind::BadNumber {
                field: "period",
                ..
            }),
        ),
        case(
            "a fractional period",
            parsing("sup root period=1.5\n"),
            parse_error!(ScenarioErrorKind::BadNumber {
                field: "period",
                ..
            }),
        ),
        case(
            "an uppercase name",
            parsing("sup Root\n"),
            parse_error!(ScenarioErrorKind::BadName { .. }),
        ),
        case(
            "a stubborn worker waited for forever",
            parsing("sup root\n  child a shutdown=infinity stubborn\n"),
            parse_error!(ScenarioErrorKind::StubbornInfinity),
        ),
        case(
            "a template on a static supervisor",
            parsing("sup root\n  template\n"),
            parse_error!(ScenarioErrorKind::TemplateOutsideSimple { .. }),
        ),
        case(
            "simple_one_for_one without a template",
            parsing("sup root simple_one_for_one\n"),
            parse_error!(ScenarioErrorKind::MissingTemplate { .. }),
        ),
        case(
            "simple_one_for_one with a static child",
            parsing("sup root simple_one_for_one\n  template\n  child a\n"),
            parse_error!(ScenarioErrorKind::ChildUnderSimple { .. }),
        ),
        case(
            "a second root",
            parsing("sup root\nsup other\n"),
            parse_error!(ScenarioErrorKind::SecondRoot { .. }),
        ),
        case(
            "a tree line after the actions",
            parsing("sup root\ncrash a\n  child a\n"),
            parse_error!(ScenarioErrorKind::TreeAfterAction { .. }),
        ),
        case(
            "an unknown command",
            parsing("sup root\nexplode a\n"),
            parse_error!(ScenarioErrorKind::UnknownCommand { .. }),
        ),
        case(
            "crash without a name",
            parsing("sup root\n  child a\ncrash\n"),
            parse_error!(ScenarioErrorKind::WrongArity {
                action: "crash",
                ..
            }),
        ),
        case(
            "an unfinished exit reason",
            parsing("sup root\n  child a\nexit a {error,\n"),
            parse_error!(ScenarioErrorKind::BadTerm(_)),
        ),
        case(
            "a scenario 10,000 supervisors deep",
            || parse(&nested_scenario(10_000)),
            parse_error!(ScenarioErrorKind::TreeTooDeep { .. }),
        ),
        case(
            "running a scenario 10,000 deep",
            || run_text(&nested_scenario(10_000)),
            is!(Error::Run(RunError::Parse(ScenarioError {
                kind: ScenarioErrorKind::TreeTooDeep { .. },
                ..
            }))),
        ),
        case(
            "running a zero period",
            running("sup root period=0\n  child a\n"),
            is!(Error::Run(RunError::Tree(TreeError::InvalidSpec(
                SpecError::ZeroPeriod { .. }
            )))),
        ),
        case(
            "running a zero shutdown timeout",
            running("sup root\n  child a shutdown=0\n"),
            is!(Error::Run(RunError::Tree(TreeError::InvalidSpec(
                SpecError::ZeroShutdownTimeout { .. }
            )))),
        ),
        case(
            "running a significant child under auto_shutdown never",
            running("sup root\n  child a transient significant=true\n"),
            is!(Error::Run(RunError::Tree(TreeError::InvalidSpec(
                SpecError::SignificantWithoutAutoShutdown { .. }
            )))),
        ),
        case(
            "running a significant permanent child",
            running("sup root auto_shutdown=any_significant\n  child a significant=true\n"),
            is!(Error::Run(RunError::Tree(TreeError::InvalidSpec(
                SpecError::SignificantPermanent { .. }
            )))),
        ),
    ];
    assert_eq!(run_table(table), 25);
}

// ---------------------------------------------------------------------------------------------
// Inputs that look wrong but are valid
// ---------------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn inputs_that_look_wrong_but_are_valid_are_accepted() {
    // An empty supervisor is valid, as in OTP: it starts and supervises nothing.
    let tree = SupervisionTree::start(SupervisorSpec::rest_for_one("empty"))
        .await
        .expect("an empty supervisor starts");
    assert_eq!(tree.root().count_children().await.unwrap().specs, 0);
    tree.shutdown(SECOND).await.unwrap();

    // A huge intensity and period are just generous.
    let generous = SupervisorSpec::one_for_one("root")
        .intensity(u32::MAX, Duration::from_secs(u64::from(u32::MAX)))
        .child(worker("a"));
    assert_eq!(generous.validate(), Ok(()));
    let tree = SupervisionTree::start(generous).await.expect("starts");
    tree.shutdown(SECOND).await.unwrap();

    // Intensity 0 is valid: the first restart escalates.
    assert_eq!(
        SupervisorSpec::one_for_all("root")
            .intensity(0, SECOND)
            .validate(),
        Ok(())
    );

    // As deep as the limit is valid.
    assert_eq!(nested(MAX_TREE_DEPTH).validate(), Ok(()));

    // Edge values of the other builders.
    assert!(BreakerRegistry::new(
        BreakerConfig::default()
            .window_size(MAX_WINDOW_SIZE)
            .minimum_calls(1)
            .failure_rate_threshold(1.0)
            .half_open_probes(u32::MAX)
    )
    .is_ok());
    assert!(Budget::builder()
        .process_limits(Limits::new().tokens(u64::MAX).steps(1))
        .tiers(Tiers::none())
        .build()
        .is_ok());
    assert!(FaultPlan::builder()
        .probability(Fault::Panic, 1.0)
        .on_call(u64::MAX, Fault::Hang)
        .build()
        .is_ok());
}

/// Takes as long as its task says.
struct Sleeper;

impl Agent for Sleeper {
    type Task = Duration;
    type Output = &'static str;

    async fn handle(
        &mut self,
        _: &mut AgentContext,
        nap: Duration,
    ) -> Result<&'static str, AgentError> {
        tokio::time::sleep(nap).await;
        Ok("slept")
    }
}

/// `Duration::MAX` wherever a duration becomes a deadline is a deadline that never comes: no
/// `Instant + Duration` overflows inside the library. Each case runs as a task of its own, so a
/// panic in one is reported with its name and the others still run.
#[tokio::test(start_paused = true)]
async fn durations_too_long_for_the_clock_are_deadlines_that_never_come() {
    let mut failures = Vec::new();
    type Accepted = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;
    let cases: Vec<(&str, Accepted)> = vec![
        (
            "ask_within(_, Duration::MAX)",
            Box::pin(async {
                let system = echo_system().await.map_err(|e| format!("{e:?}"))?;
                let echo = system
                    .agent_ref::<Echo>("echo")
                    .map_err(|e| e.to_string())?;
                let answer = echo.ask_within("hi".into(), Duration::MAX).await;
                system.shutdown(SECOND).await.map_err(|e| e.to_string())?;
                (answer.as_deref() == Ok("hi"))
                    .then_some(())
                    .ok_or(format!("{answer:?}"))
            }),
        ),
        (
            "System::builder().ask_timeout(Duration::MAX)",
            Box::pin(async {
                let system = System::builder()
                    .ask_timeout(Duration::MAX)
                    .build()
                    .unwrap();
                let echo = system
                    .agent(AgentSpec::new("echo", || Echo))
                    .map_err(|e| e.to_string())?;
                system
                    .start(SupervisorSpec::one_for_one("root").child(echo))
                    .await
                    .map_err(|e| e.to_string())?;
                let echo = system
                    .agent_ref::<Echo>("echo")
                    .map_err(|e| e.to_string())?;
                echo.tell("told".into()).map_err(|e| e.to_string())?;
                let answer = echo.ask("hi".into()).await;
                system.shutdown(SECOND).await.map_err(|e| e.to_string())?;
                (answer.as_deref() == Ok("hi"))
                    .then_some(())
                    .ok_or(format!("{answer:?}"))
            }),
        ),
        (
            "Shutdown::Timeout(Duration::MAX)",
            Box::pin(async {
                let patient = |id: &str| worker(id).shutdown(Shutdown::Timeout(Duration::MAX));
                let spec = SupervisorSpec::one_for_one("root")
                    .child(patient("w"))
                    .child(ChildSpec::supervisor(SupervisorSpec::dynamic(
                        "pool",
                        patient("template"),
                    )));
                let tree = SupervisionTree::start(spec)
                    .await
                    .map_err(|e| e.to_string())?;
                let pool = tree
                    .root()
                    .which_children()
                    .await
                    .map_err(|e| e.to_string())?
                    .iter()
                    .find_map(|child| child.supervisor())
                    .ok_or("no pool")?;
                pool.start_dynamic_child("d")
                    .await
                    .map_err(|e| e.to_string())?;
                let mut events = tree.subscribe();
                tree.shutdown(SECOND).await.map_err(|e| e.to_string())?;
                let stopped: Vec<(String, EventKind)> =
                    std::iter::from_fn(|| events.try_recv().ok())
                        .map(|event| (event.path.to_string(), event.kind))
                        .collect();
                let shutdown = || EventKind::Stopped {
                    reason: ExitReason::Shutdown,
                };
                let expected = ["root/pool/d", "root/pool", "root/w", "root"]
                    .map(|path| (path.to_string(), shutdown()));
                (stopped == expected)
                    .then_some(())
                    .ok_or(format!("{stopped:?}"))
            }),
        ),
        (
            "InFlightPolicy::CancelAfter(Duration::MAX)",
            Box::pin(async {
                let budget = Budget::builder()
                    .in_flight(overseer_budget::InFlightPolicy::CancelAfter(Duration::MAX))
                    .build()
                    .map_err(|e| e.to_string())?;
                let system = System::builder().budget(budget.clone()).build().unwrap();
                let sleeper = system
                    .agent(AgentSpec::new("sleeper", || Sleeper))
                    .map_err(|e| e.to_string())?;
                system
                    .start(SupervisorSpec::one_for_one("root").child(sleeper))
                    .await
                    .map_err(|e| e.to_string())?;
                let sleeper = system
                    .agent_ref::<Sleeper>("sleeper")
                    .map_err(|e| e.to_string())?;
                let nap = tokio::spawn(async move { sleeper.ask(SECOND * 3).await });
                tokio::time::sleep(SECOND).await;
                budget.trip(overseer_budget::TripReason::manual("stop"));
                let answer = nap.await.map_err(|e| e.to_string())?;
                (answer == Ok("slept"))
                    .then_some(())
                    .ok_or(format!("{answer:?}"))
            }),
        ),
    ];
    for (name, case) in cases {
        match tokio::spawn(case).await {
            Ok(Ok(())) => {}
            Ok(Err(wrong)) => failures.push(format!("{name}: {wrong}")),
            Err(panic) => failures.push(format!("{name}: panicked: {panic}")),
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn scenarios_that_look_wrong_but_are_valid_run() {
    // An empty supervisor, a huge intensity and period, intensity 0.
    let trace = run_text(
        "sup root intensity=4294967295 period=18446744073709551615\n  sup empty intensity=0\n",
    )
    .expect("runs");
    assert_eq!(trace, "start root\nstart empty\nalive: empty root\n");
}

// ---------------------------------------------------------------------------------------------
// Known gaps
// ---------------------------------------------------------------------------------------------

/// `MAX_TREE_DEPTH` holds for a running tree too: a supervisor added with `start_child` is
/// counted from where it is inserted, not from its own root. (Found by this suite.)
#[tokio::test(start_paused = true)]
async fn start_child_cannot_nest_supervisors_deeper_than_the_limit() {
    let tree = SupervisionTree::start(nested(MAX_TREE_DEPTH))
        .await
        .expect("a tree exactly as deep as the limit starts");
    let mut deepest = tree.root().clone();
    while let Some(nested) = deepest
        .which_children()
        .await
        .expect("running")
        .iter()
        .find_map(|child| child.supervisor())
    {
        deepest = nested;
    }
    let one_more = SupervisorSpec::one_for_one("one_more").child(worker("w"));
    let added = deepest.start_child(ChildSpec::supervisor(one_more)).await;
    assert!(
        matches!(
            added,
            Err(ChildOpError::InvalidSpec(SpecError::TooDeep { .. }))
        ),
        "a supervisor at depth {} was accepted: {added:?}",
        MAX_TREE_DEPTH + 1
    );
    tree.shutdown(SECOND).await.expect("stops");
}
