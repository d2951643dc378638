//! Property tests of supervision: random trees under random fault sequences, run as OTP
//! scenarios (`crates/overseer-conformance/tests/otp/FORMAT.md`) on a paused clock, with invariants checked on the trace.
//!
//! A case is a random tree (up to four supervisors deep; every strategy, intensities 0 to 3,
//! periods 1 to 5 s, every restart type, shutdown specs, stubborn workers, significant
//! children, automatic shutdown) and 4 to 24 random actions on names that exist (`crash`,
//! `exit`, `kill`, `advance`, `terminate`, `restart`, `delete`, `add`, `failstart`,
//! `shutdown`), half the time ending with `shutdown`.
//! [`run_text`] runs it against the real supervisors and returns the trace; [`check`] replays
//! the trace against the scenario and asserts:
//!
//! * **(a) runs:** a valid scenario never fails to run and never panics.
//! * **(b) intensity:** restart *attempts* are counted per supervisor incarnation, each at the
//!   whole second of the action that caused it. An attempt is a maximal run of `restart` /
//!   `start_failed` lines of one supervisor's direct children within one action, ended by a
//!   `start_failed` line or by the `stop` of one of its children (so a group restart counts
//!   once and every failed attempt counts, as OTP counts them); starts that are part of a
//!   supervisor's own start, of `add` or of a manual `restart` count nothing. Then:
//!   (b1) at every attempt, the attempts in `[now - period, now]` are at most the intensity;
//!   (b2) when a supervisor escalates, exactly `intensity` attempts are in that window (the one
//!   refused would have been one more), and its next event is `stop SUP shutdown`;
//!   (b3) a worker's own exit (`crash`/`kill`/`exit`) is followed, within its action, by an
//!   attempt or an escalation of its supervisor if and only if its restart type says it is
//!   restarted; (b4) a failed attempt is followed within its action by another attempt or an
//!   escalation. With (b1) and (b2), (b3) means a supervisor escalates exactly when one more
//!   restart would exceed its intensity.
//! * **(c) containment:** a process starts only while its supervisor is alive, and never
//!   while an ancestor escalates; when a supervisor stops (other than by being killed, which
//!   kills its subtree without events) none of its descendants is alive; the final `alive:`
//!   line is exactly the set of processes the events left alive, and holds no child without
//!   its supervisor. A `crash`/`kill`/`exit` finds its worker running exactly when the events
//!   say it is alive.
//! * **(d) shutdown:** after `shutdown` nothing is alive and nothing starts again.
//! * **(e) fates:** every child (worker or supervisor) not running at the end was last told
//!   `Stopped` or `Removed` (`ChildFate`): no child is left believing it may still come back,
//!   whatever became of the supervisors above it ([`check_fates`]).
//!
//! Time: whole seconds are the sum of the `advance` actions. The runner lets the paused clock
//! creep by a millisecond per action while the tree settles, and by a stubborn worker's
//! shutdown timeout when one is killed. Stubborn timeouts are at most 5 ms, at most six workers
//! are stubborn, and an `advance 1` is inserted after every 5 actions without one, so the creep
//! stays far below a second (the worst measured over 200 random scenarios was 23 ms).
//!
//! The checker itself is tested against every trace recorded from Erlang/OTP 25 in
//! `crates/overseer-conformance/tests/otp` and derived in `tests/otp_derived`, and against doctored traces it must reject.
mod common;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;

use overseer_conformance::runner::{run_text_reporting, Restarts, RunReport};
use overseer_conformance::{
    parse, Action, AutoShutdown, Node, Restart, Scenario, Strategy as Flavor, SupNode,
};
use overseer_supervisor::ChildFate;
use proptest::prelude::*;
use proptest::sample::Index;

/// Cases per property (override with `PROPTEST_CASES`).
const CASES: u32 = 128;
/// The longest shutdown timeout of a stubborn worker, in milliseconds (see the module docs).
const MAX_STUBBORN_MS: u64 = 5;
/// At most this many stubborn workers per scenario (see the module docs).
const MAX_STUBBORN: usize = 6;
/// At most this many actions run at one whole second before an `advance 1` is inserted.
const MAX_BATCH: usize = 5;

/// [`CASES`] cases unless `PROPTEST_CASES` says otherwise.
fn config() -> ProptestConfig {
    common::proptest_config(CASES)
}

// ---------------------------------------------------------------------------------------------
// Generating scenarios
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum Stop {
    Default,
    BrutalKill,
    Millis(u64),
    Infinity,
}

impl Stop {
    fn option(self) -> Option<String> {
        match self {
            Stop::Default => None,
            Stop::BrutalKill => Some("shutdown=brutal_kill".into()),
            Stop::Millis(ms) => Some(format!("shutdown={ms}")),
            Stop::Infinity => Some("shutdown=infinity".into()),
        }
    }
}

#[derive(Debug, Clone)]
struct WorkerGene {
    restart: Restart,
    shutdown: Stop,
    stubborn: bool,
    significant: bool,
}

#[derive(Debug, Clone)]
struct SupGene {
    strategy: Flavor,
    intensity: u32,
    period: u64,
    auto_shutdown: AutoShutdown,
    restart: Restart,
    shutdown: Stop,
    significant: bool,
    template: WorkerGene,
    children: Vec<NodeGene>,
}

#[derive(Debug, Clone)]
enum NodeGene {
    Worker(WorkerGene),
    Sup(SupGene),
}

#[derive(Debug, Clone)]
enum ActGene {
    Crash(Index),
    Exit(Index, &'static str),
    Kill(Index),
    Advance(u64),
    Terminate(Index),
    Restart(Index),
    Delete(Index),
    Add(Index, Option<Restart>, Stop, bool),
    FailStart(Index, u32),
    Shutdown,
}

fn restart_type() -> impl Strategy<Value = Restart> {
    prop_oneof![
        3 => Just(Restart::Permanent),
        2 => Just(Restart::Transient),
        1 => Just(Restart::Temporary),
    ]
}

/// A worker's shutdown spec: a stubborn one is killed, at once or after at most
/// [`MAX_STUBBORN_MS`]; a polite one stops at once whatever its spec says.
fn worker_stop() -> impl Strategy<Value = (bool, Stop)> {
    let stubborn = prop_oneof![
        Just(Stop::BrutalKill),
        (1..=MAX_STUBBORN_MS).prop_map(Stop::Millis)
    ];
    let polite = prop_oneof![
        3 => Just(Stop::Default),
        1 => Just(Stop::BrutalKill),
        1 => (1..=5000u64).prop_map(Stop::Millis),
        1 => Just(Stop::Infinity),
    ];
    (prop::bool::weighted(0.25), stubborn, polite).prop_map(|(is_stubborn, s, p)| {
        if is_stubborn {
            (true, s)
        } else {
            (false, p)
        }
    })
}

fn worker_gene() -> impl Strategy<Value = WorkerGene> {
    (restart_type(), worker_stop(), prop::bool::weighted(0.3)).prop_map(
        |(restart, (stubborn, shutdown), significant)| WorkerGene {
            restart,
            shutdown,
            stubborn,
            significant,
        },
    )
}

/// A supervisor without its children; `simple` weighs `simple_one_for_one` against 2 for each
/// other strategy.
fn sup_gene(simple: u32) -> impl Strategy<Value = SupGene> {
    let strategy = prop_oneof![
        2 => Just(Flavor::OneForOne),
        2 => Just(Flavor::OneForAll),
        2 => Just(Flavor::RestForOne),
        simple => Just(Flavor::SimpleOneForOne),
    ];
    let auto_shutdown = prop_oneof![
        3 => Just(AutoShutdown::Never),
        1 => Just(AutoShutdown::AnySignificant),
        1 => Just(AutoShutdown::AllSignificant),
    ];
    // Intensity 0 makes the first restart fatal: common enough to see, rare enough to let
    // trees live.
    let intensity = prop_oneof![1 => Just(0u32), 6 => 1..=3u32];
    let shutdown = prop_oneof![
        3 => Just(Stop::Default),
        1 => Just(Stop::BrutalKill),
        1 => (1..=20u64).prop_map(Stop::Millis),
        1 => Just(Stop::Infinity),
    ];
    (
        (strategy, intensity, 1..=5u64, auto_shutdown),
        (
            restart_type(),
            shutdown,
            prop::bool::weighted(0.3),
            worker_gene(),
        ),
    )
        .prop_map(
            |(
                (strategy, intensity, period, auto_shutdown),
                (restart, shutdown, significant, template),
            )| SupGene {
                strategy,
                intensity,
                period,
                auto_shutdown,
                restart,
                shutdown,
                significant,
                template,
                children: Vec::new(),
            },
        )
}

/// A child `levels` supervisors deep at most: a worker, or (one time in three) a supervisor
/// with up to three children. Under the root, `levels` is 3: trees are up to four deep.
fn node_gene(levels: u32) -> BoxedStrategy<NodeGene> {
    let worker = worker_gene().prop_map(NodeGene::Worker);
    if levels == 0 {
        return worker.boxed();
    }
    let sup = (
        sup_gene(2),
        prop::collection::vec(node_gene(levels - 1), 0..=3),
    )
        .prop_map(|(mut sup, children)| {
            sup.children = children;
            NodeGene::Sup(sup)
        });
    prop_oneof![2 => worker, 1 => sup].boxed()
}

fn act_gene() -> impl Strategy<Value = ActGene> {
    let reason =
        prop::sample::select(&["normal", "shutdown", "{shutdown,done}", "{error,boom}"][..]);
    prop_oneof![
        6 => any::<Index>().prop_map(ActGene::Crash),
        3 => (any::<Index>(), reason).prop_map(|(i, r)| ActGene::Exit(i, r)),
        3 => any::<Index>().prop_map(ActGene::Kill),
        6 => (1..=6u64).prop_map(ActGene::Advance),
        2 => any::<Index>().prop_map(ActGene::Terminate),
        2 => any::<Index>().prop_map(ActGene::Restart),
        1 => any::<Index>().prop_map(ActGene::Delete),
        2 => (any::<Index>(), prop::option::of(restart_type()), worker_stop())
            .prop_map(|(i, r, (stubborn, stop))| ActGene::Add(i, r, stop, stubborn)),
        1 => (any::<Index>(), 1..=3u32).prop_map(|(i, n)| ActGene::FailStart(i, n)),
        1 => Just(ActGene::Shutdown),
    ]
}

/// A generated scenario, as text.
#[derive(Debug, Clone)]
struct Case {
    text: String,
}

fn case() -> impl Strategy<Value = Case> {
    (
        sup_gene(1),
        prop::collection::vec(node_gene(3), 1..=5),
        prop::collection::vec(act_gene(), 4..=24),
        any::<bool>(),
    )
        .prop_map(|(mut root, children, actions, end_with_shutdown)| {
            root.children = children;
            Case {
                text: render(&root, &actions, end_with_shutdown),
            }
        })
}

/// Names handed out while rendering, by kind.
#[derive(Default)]
struct Names {
    next: usize,
    /// Stubborn workers so far (at most [`MAX_STUBBORN`]; later ones are made polite).
    stubborn: usize,
    workers: Vec<String>,
    sups: Vec<String>,
    children: Vec<String>,
}

impl Names {
    fn fresh(&mut self, prefix: &str) -> String {
        self.next += 1;
        format!("{prefix}{}", self.next)
    }
}

fn significant_option(significant: bool, restart: Restart, parent: AutoShutdown) -> Option<String> {
    (significant && restart != Restart::Permanent && parent != AutoShutdown::Never)
        .then(|| "significant=true".to_string())
}

impl Names {
    /// Whether a worker asked to be stubborn may be (a template counts once).
    fn stubborn(&mut self, wanted: bool) -> bool {
        let allowed = wanted && self.stubborn < MAX_STUBBORN;
        self.stubborn += usize::from(allowed);
        allowed
    }
}

fn worker_options(gene: &WorkerGene, parent: AutoShutdown, names: &mut Names) -> Vec<String> {
    let mut words = vec![gene.restart.as_str().to_string()];
    words.extend(gene.shutdown.option());
    words.extend(significant_option(gene.significant, gene.restart, parent));
    if names.stubborn(gene.stubborn) {
        words.push("stubborn".into());
    }
    words
}

fn render_sup(
    gene: &SupGene,
    name: String,
    depth: usize,
    parent: Option<AutoShutdown>,
    names: &mut Names,
    lines: &mut Vec<String>,
) {
    let mut words = vec![
        format!("{}sup {name} {}", "  ".repeat(depth), gene.strategy),
        format!("intensity={}", gene.intensity),
        format!("period={}", gene.period),
        format!("auto_shutdown={}", gene.auto_shutdown),
    ];
    if let Some(parent) = parent {
        words.push(format!("restart={}", gene.restart));
        words.extend(gene.shutdown.option());
        words.extend(significant_option(gene.significant, gene.restart, parent));
        names.children.push(name.clone());
    }
    names.sups.push(name);
    lines.push(words.join(" "));
    let indent = "  ".repeat(depth + 1);
    if gene.strategy == Flavor::SimpleOneForOne {
        let options = worker_options(&gene.template, gene.auto_shutdown, names);
        lines.push(format!("{indent}template {}", options.join(" ")));
        return;
    }
    for child in &gene.children {
        match child {
            NodeGene::Worker(worker) => {
                let name = names.fresh("w");
                let options = worker_options(worker, gene.auto_shutdown, names);
                lines.push(format!("{indent}child {name} {}", options.join(" ")));
                names.workers.push(name.clone());
                names.children.push(name);
            }
            NodeGene::Sup(sup) => {
                let name = names.fresh("s");
                render_sup(sup, name, depth + 1, Some(gene.auto_shutdown), names, lines);
            }
        }
    }
}

/// The scenario text: the tree, then the actions on existing names (an action whose pool of
/// names is empty is left out), with an `advance 1` after every [`MAX_BATCH`] actions that
/// run at one second.
fn render(root: &SupGene, actions: &[ActGene], end_with_shutdown: bool) -> String {
    let mut names = Names::default();
    let mut lines = Vec::new();
    render_sup(root, "root".into(), 0, None, &mut names, &mut lines);
    let mut adds = 0;
    let mut batch = 0;
    let tail = end_with_shutdown.then_some(ActGene::Shutdown);
    for action in actions.iter().chain(tail.iter()) {
        let pick = |pool: &[String], index: &Index| {
            (!pool.is_empty()).then(|| pool[index.index(pool.len())].clone())
        };
        let line = match action {
            ActGene::Crash(i) => pick(&names.workers, i).map(|w| format!("crash {w}")),
            ActGene::Exit(i, reason) => {
                pick(&names.workers, i).map(|w| format!("exit {w} {reason}"))
            }
            ActGene::Kill(i) => pick(&names.workers, i).map(|w| format!("kill {w}")),
            ActGene::Advance(seconds) => Some(format!("advance {seconds}")),
            ActGene::Terminate(i) => pick(&names.children, i).map(|c| format!("terminate {c}")),
            ActGene::Restart(i) => pick(&names.children, i).map(|c| format!("restart {c}")),
            ActGene::Delete(i) => pick(&names.children, i).map(|c| format!("delete {c}")),
            ActGene::FailStart(i, times) => {
                pick(&names.children, i).map(|c| format!("failstart {c} {times}"))
            }
            ActGene::Add(i, restart, stop, stubborn) => {
                let sup = pick(&names.sups, i).expect("the root is a supervisor");
                adds += 1;
                let name = format!("a{adds}");
                let mut words = vec![format!("add {sup} {name}")];
                words.extend(restart.map(|r| r.as_str().to_string()));
                words.extend(stop.option());
                if names.stubborn(*stubborn) {
                    words.push("stubborn".into());
                }
                names.workers.push(name.clone());
                names.children.push(name);
                Some(words.join(" "))
            }
            ActGene::Shutdown => Some("shutdown".into()),
        };
        let Some(line) = line else { continue };
        if line.starts_with("advance") {
            batch = 0;
        } else if batch == MAX_BATCH {
            lines.push("advance 1".into());
            batch = 1;
        } else {
            batch += 1;
        }
        lines.push(line);
    }
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

// ---------------------------------------------------------------------------------------------
// Checking traces
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct SupInfo {
    intensity: u32,
    period: u64,
    dynamic: bool,
    template_restart: Restart,
    /// Static children in start order.
    children: Vec<String>,
}

/// What the scenario says about every name: its supervisor, its restart type, and for
/// supervisors their flags and static children. Children added by `add` join as they come.
#[derive(Debug, Clone)]
struct Model {
    root: String,
    parent: HashMap<String, String>,
    restart: HashMap<String, Restart>,
    sups: HashMap<String, SupInfo>,
}

impl Model {
    fn new(root: &SupNode) -> Self {
        let mut model = Model {
            root: root.name.clone(),
            parent: HashMap::new(),
            restart: HashMap::new(),
            sups: HashMap::new(),
        };
        model.learn(root);
        model
    }

    fn learn(&mut self, sup: &SupNode) {
        self.sups.insert(
            sup.name.clone(),
            SupInfo {
                intensity: sup.intensity,
                period: sup.period_secs,
                dynamic: sup.strategy == Flavor::SimpleOneForOne,
                template_restart: sup
                    .template
                    .as_ref()
                    .map_or(Restart::Permanent, |t| t.opts.restart),
                children: sup.children.iter().map(|c| c.name().to_string()).collect(),
            },
        );
        for child in &sup.children {
            self.parent
                .insert(child.name().to_string(), sup.name.clone());
            self.restart
                .insert(child.name().to_string(), child.opts().restart);
            if let Node::Sup(nested) = child {
                self.learn(nested);
            }
        }
    }

    /// `add SUP NAME [RESTART]`: a dynamic supervisor's children take the template's type.
    fn add(&mut self, sup: &str, name: &str, restart: Option<Restart>) {
        let Some(info) = self.sups.get(sup) else {
            return;
        };
        if self.parent.contains_key(name) || name == self.root {
            return;
        }
        let restart = if info.dynamic {
            info.template_restart
        } else {
            restart.unwrap_or_default()
        };
        self.parent.insert(name.to_string(), sup.to_string());
        self.restart.insert(name.to_string(), restart);
    }

    fn is_sup(&self, name: &str) -> bool {
        self.sups.contains_key(name)
    }

    fn parent(&self, name: &str) -> Option<&str> {
        self.parent.get(name).map(String::as_str)
    }

    /// Whether `ancestor` is above `name` in the tree.
    fn is_ancestor(&self, ancestor: &str, name: &str) -> bool {
        let mut current = name;
        while let Some(parent) = self.parent(current) {
            if parent == ancestor {
                return true;
            }
            current = parent;
        }
        false
    }
}

#[derive(Debug)]
enum Event<'a> {
    Start(&'a str),
    StartFailed(&'a str),
    Stop(&'a str, &'a str),
    Escalate(&'a str),
    Result,
    NotRunning,
}

fn event(line: &str) -> Result<Event<'_>, String> {
    let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
    Ok(match word {
        "start" | "restart" => Event::Start(rest),
        "start_failed" => Event::StartFailed(rest),
        "stop" => {
            let (name, reason) = rest
                .split_once(' ')
                .ok_or_else(|| "a stop without a reason".to_string())?;
            Event::Stop(name, reason)
        }
        "escalate" => Event::Escalate(rest),
        "result" => Event::Result,
        "error" if rest.starts_with("not_running ") => Event::NotRunning,
        _ => return Err("not a trace line".into()),
    })
}

/// How a start-type line came about.
enum Cause {
    /// Part of a supervisor's own start (its static children), or the root's first start.
    Init,
    /// The start of the target of `add` or of a manual `restart`.
    Manual,
    /// A restart attempt of this supervisor.
    Attempt(String),
}

/// Replays a trace against its scenario; see the module docs for what it asserts.
struct Checker {
    model: Model,
    /// Whole seconds: the sum of the `advance` actions so far.
    now: u64,
    alive: BTreeSet<String>,
    /// Restart attempts of each supervisor's current incarnation, in whole seconds.
    history: HashMap<String, Vec<u64>>,
    /// Supervisors starting their static children: (supervisor, index of the next child).
    init: Vec<(String, usize)>,
    /// Supervisors with an attempt in progress in the current action.
    open: HashSet<String>,
    /// Supervisors whose last attempt failed and must retry or escalate.
    retry_due: HashSet<String>,
    /// Supervisors that escalated and have not stopped yet.
    escalating: HashSet<String>,
    shut_down: bool,
    /// In the current action: supervisors that made an attempt, or escalated.
    attempted: HashSet<String>,
    escalated: HashSet<String>,
    /// In the current action: the name whose start is manual (`add`, `restart`).
    manual: Option<String>,
}

/// Checks `trace` (what running `scenario` printed) against the invariants.
fn check(scenario: &Scenario, trace: &str) -> Result<(), String> {
    let lines: Vec<&str> = trace.lines().collect();
    let (last, body) = lines
        .split_last()
        .ok_or_else(|| "empty trace".to_string())?;
    let alive_line = last
        .strip_prefix("alive:")
        .ok_or_else(|| format!("the last line is not `alive:` but `{last}`"))?;
    let mut blocks: Vec<(Option<&str>, Vec<&str>)> = vec![(None, Vec::new())];
    for line in body {
        match line.strip_prefix("> ") {
            Some(echo) => blocks.push((Some(echo), Vec::new())),
            None => blocks
                .last_mut()
                .expect("there is always a block")
                .1
                .push(line),
        }
    }
    if blocks.len() != scenario.actions.len() + 1 {
        return Err(format!(
            "{} actions echoed, {} in the scenario",
            blocks.len() - 1,
            scenario.actions.len()
        ));
    }
    let mut checker = Checker {
        model: Model::new(&scenario.root),
        now: 0,
        alive: BTreeSet::new(),
        history: HashMap::new(),
        init: Vec::new(),
        open: HashSet::new(),
        retry_due: HashSet::new(),
        escalating: HashSet::new(),
        shut_down: false,
        attempted: HashSet::new(),
        escalated: HashSet::new(),
        manual: None,
    };
    for (index, (echo, lines)) in blocks.iter().enumerate() {
        let action = index.checked_sub(1).map(|i| &scenario.actions[i]);
        if let (Some(echo), Some(action)) = (echo, action) {
            if *echo != action.echo {
                return Err(format!("echo `{echo}` for action `{}`", action.echo));
            }
        }
        let at = echo.map_or_else(|| "the initial start".to_string(), |e| format!("`> {e}`"));
        checker
            .block(action.map(|a| &a.action), lines)
            .map_err(|violation| format!("after {at} (second {}): {violation}", checker.now))?;
    }
    let listed: BTreeSet<String> = alive_line.split_whitespace().map(String::from).collect();
    if listed != checker.alive {
        return Err(format!(
            "`alive:` lists {listed:?} but the events leave {:?} alive",
            checker.alive
        ));
    }
    for name in &listed {
        if let Some(parent) = checker.model.parent(name) {
            if !listed.contains(parent) {
                return Err(format!(
                    "`alive:` lists {name} without its supervisor {parent}"
                ));
            }
        }
    }
    Ok(())
}

impl Checker {
    fn block(&mut self, action: Option<&Action>, lines: &[&str]) -> Result<(), String> {
        self.open.clear();
        self.attempted.clear();
        self.escalated.clear();
        self.manual = None;
        let mut own_exit: Option<(&str, bool)> = None;
        match action {
            Some(Action::Advance(seconds)) => self.now += seconds,
            Some(exit @ (Action::Crash(name) | Action::Kill(name) | Action::Exit { name, .. })) => {
                let (reason, abnormal) = match exit {
                    Action::Exit { reason, .. } => (reason.to_string(), !reason.is_normal_exit()),
                    Action::Kill(_) => ("killed".to_string(), true),
                    _ => ("crash".to_string(), true),
                };
                if !self.alive.contains(name) || self.model.is_sup(name) {
                    let expected = format!("error not_running {name}");
                    return match lines {
                        [only] if *only == expected => Ok(()),
                        _ => Err(format!(
                            "{name} is not alive by the events, so `{expected}` alone was \
                             expected; got {lines:?}"
                        )),
                    };
                }
                let expected = format!("stop {name} {reason}");
                if lines.first() != Some(&expected.as_str()) {
                    return Err(format!(
                        "{name} is alive by the events, so `{expected}` was expected \
                         first; got {lines:?}"
                    ));
                }
                let restarted = match self.model.restart.get(name.as_str()) {
                    Some(Restart::Permanent) => true,
                    Some(Restart::Transient) => abnormal,
                    Some(Restart::Temporary) => false,
                    None => return Err(format!("{name} has no restart type")),
                };
                own_exit = Some((name, restarted));
            }
            Some(Action::Terminate(name) | Action::Restart(name) | Action::Delete(name))
                if self.is_dynamic_child(name) && !self.alive.contains(name) =>
            {
                // OTP takes a dynamic child's pid, and a stopped one has none (FORMAT.md).
                let expected = format!("error not_running {name}");
                return match lines {
                    [only] if *only == expected => Ok(()),
                    _ => Err(format!(
                        "{name} is a dynamic child not alive by the events, so `{expected}` \
                         alone was expected; got {lines:?}"
                    )),
                };
            }
            Some(Action::Restart(name)) => self.manual = Some(name.clone()),
            Some(Action::Add {
                sup, name, restart, ..
            }) => {
                self.model.add(sup, name, *restart);
                self.manual = Some(name.clone());
            }
            _ => {}
        }
        for line in lines {
            self.line(line)
                .map_err(|violation| format!("`{line}`: {violation}"))?;
        }
        if !self.init.is_empty() {
            return Err(format!(
                "supervisors did not finish starting their children: {:?}",
                self.init
            ));
        }
        if !self.retry_due.is_empty() {
            return Err(format!(
                "(b4) a failed restart attempt was neither retried nor escalated by {:?}",
                self.retry_due
            ));
        }
        if !self.escalating.is_empty() {
            return Err(format!(
                "(b2) {:?} escalated but did not stop",
                self.escalating
            ));
        }
        if let Some((name, restarted)) = own_exit {
            let sup = self.model.parent(name).unwrap_or_default();
            let decided = self.attempted.contains(sup) || self.escalated.contains(sup);
            if restarted != decided {
                return Err(format!(
                    "(b3) the exit of {name} ({:?}) is {} but {sup} {}",
                    self.model.restart[name],
                    if restarted {
                        "to be restarted"
                    } else {
                        "not to be restarted"
                    },
                    if decided {
                        "restarted or escalated"
                    } else {
                        "neither restarted nor escalated"
                    },
                ));
            }
        }
        if matches!(action, Some(Action::Shutdown)) {
            if !self.alive.is_empty() {
                return Err(format!(
                    "(d) {:?} still alive after the shutdown",
                    self.alive
                ));
            }
            self.shut_down = true;
        }
        Ok(())
    }

    fn line(&mut self, line: &str) -> Result<(), String> {
        match event(line)? {
            Event::Start(name) => self.started(name),
            Event::StartFailed(name) => self.start_failed(name),
            Event::Stop(name, reason) => self.stopped(name, reason),
            Event::Escalate(sup) => self.escalate(sup),
            Event::Result => Ok(()),
            Event::NotRunning => Err(
                "only an exit action, or an API action on a stopped dynamic child, says this"
                    .into(),
            ),
        }
    }

    /// Whether `name` was added to a `simple_one_for_one` supervisor.
    fn is_dynamic_child(&self, name: &str) -> bool {
        self.model
            .parent(name)
            .and_then(|sup| self.model.sups.get(sup))
            .is_some_and(|info| info.dynamic)
    }

    fn cause(&mut self, name: &str) -> Result<Cause, String> {
        if let Some((sup, next)) = self.init.last_mut() {
            if self.model.sups[sup.as_str()]
                .children
                .get(*next)
                .map(String::as_str)
                == Some(name)
            {
                *next += 1;
                return Ok(Cause::Init);
            }
        }
        match self.model.parent(name) {
            None if name == self.model.root && self.history.is_empty() && !self.shut_down => {
                Ok(Cause::Init)
            }
            None => Err(format!(
                "{name} has no supervisor and is not the root's first start"
            )),
            Some(_) if self.manual.as_deref() == Some(name) => {
                self.manual = None;
                Ok(Cause::Manual)
            }
            Some(sup) => Ok(Cause::Attempt(sup.to_string())),
        }
    }

    fn check_parent_alive(&self, name: &str) -> Result<(), String> {
        if self.shut_down {
            return Err("(d) a start after the shutdown".into());
        }
        if let Some(sup) = self.model.parent(name) {
            if !self.alive.contains(sup) {
                return Err(format!(
                    "(c) started while its supervisor {sup} is not alive"
                ));
            }
        }
        if let Some(sup) = self
            .escalating
            .iter()
            .find(|sup| self.model.is_ancestor(sup, name))
        {
            return Err(format!("(b2) started while {sup} escalates"));
        }
        Ok(())
    }

    fn started(&mut self, name: &str) -> Result<(), String> {
        self.check_parent_alive(name)?;
        if self.alive.contains(name) {
            return Err("started while alive".into());
        }
        if let Cause::Attempt(sup) = self.cause(name)? {
            self.attempt(&sup)?;
        }
        self.alive.insert(name.to_string());
        if let Some(info) = self.model.sups.get(name) {
            // A new incarnation: a fresh restart history.
            self.history.insert(name.to_string(), Vec::new());
            self.open.remove(name);
            self.retry_due.remove(name);
            if !info.children.is_empty() {
                self.init.push((name.to_string(), 0));
            }
        }
        while let Some((sup, next)) = self.init.last() {
            if *next < self.model.sups[sup.as_str()].children.len() {
                break;
            }
            self.init.pop();
        }
        Ok(())
    }

    fn start_failed(&mut self, name: &str) -> Result<(), String> {
        self.check_parent_alive(name)?;
        match self.cause(name)? {
            // The starting supervisors fail with it, up to the one whose start was an attempt.
            Cause::Init => self.init.clear(),
            Cause::Manual => {}
            Cause::Attempt(sup) => {
                self.attempt(&sup)?;
                self.open.remove(&sup);
                self.retry_due.insert(sup);
            }
        }
        Ok(())
    }

    fn stopped(&mut self, name: &str, reason: &str) -> Result<(), String> {
        if !self.alive.remove(name) {
            return Err("stopped while not alive".into());
        }
        if let Some(sup) = self.model.parent(name).map(str::to_string) {
            if reason.starts_with("{shutdown,{failed_to_start_child,") && self.open.contains(&sup) {
                // A nested supervisor failed to start within an attempt: a failed attempt.
                self.retry_due.insert(sup.clone());
            }
            self.open.remove(&sup);
        }
        if self.model.is_sup(name) {
            let below: Vec<String> = self
                .alive
                .iter()
                .filter(|other| self.model.is_ancestor(name, other))
                .cloned()
                .collect();
            if reason == "killed" {
                // Killing a supervisor kills its subtree; nobody is left to report it.
                for other in &below {
                    self.alive.remove(other);
                }
            } else if !below.is_empty() {
                return Err(format!("(c) stopped while {below:?} below it are alive"));
            }
            self.open.remove(name);
            self.retry_due.remove(name);
        }
        if self.escalating.remove(name) && reason != "shutdown" {
            return Err("(b2) an escalating supervisor must stop with `shutdown`".into());
        }
        Ok(())
    }

    fn in_window(&self, sup: &str) -> Result<(usize, &SupInfo), String> {
        let info = self
            .model
            .sups
            .get(sup)
            .ok_or_else(|| format!("{sup} is not a supervisor"))?;
        let count = self.history.get(sup).map_or(0, |history| {
            history
                .iter()
                .filter(|&&at| self.now - at <= info.period)
                .count()
        });
        Ok((count, info))
    }

    fn attempt(&mut self, sup: &str) -> Result<(), String> {
        if self.open.contains(sup) {
            return Ok(()); // the same group restart
        }
        self.open.insert(sup.to_string());
        self.retry_due.remove(sup);
        self.attempted.insert(sup.to_string());
        self.history
            .entry(sup.to_string())
            .or_default()
            .push(self.now);
        let (count, info) = self.in_window(sup)?;
        if count > info.intensity as usize {
            return Err(format!(
                "(b1) {sup} made restart attempt {count} within {} s; its intensity is {}",
                info.period, info.intensity
            ));
        }
        Ok(())
    }

    fn escalate(&mut self, sup: &str) -> Result<(), String> {
        if !self.alive.contains(sup) {
            return Err("escalated while not alive".into());
        }
        let (count, info) = self.in_window(sup)?;
        if count != info.intensity as usize {
            return Err(format!(
                "(b2) escalated after {count} restart attempts within {} s; its intensity is {}",
                info.period, info.intensity
            ));
        }
        self.escalated.insert(sup.to_string());
        self.escalating.insert(sup.to_string());
        self.retry_due.remove(sup);
        self.open.remove(sup);
        Ok(())
    }
}

/// (e): every child not running at the end was last told it stopped or was removed.
fn check_fates(report: &RunReport) -> Result<(), String> {
    for (child, fate) in &report.last_fates {
        let settled = matches!(fate, ChildFate::Stopped | ChildFate::Removed);
        if !report.alive.contains(child) && !settled {
            return Err(format!(
                "(e) {child} is not running at the end, but the last fate it was told is {fate:?}"
            ));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The properties
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_trees_under_random_faults_keep_the_supervision_invariants(case in case()) {
        let scenario = parse(&case.text);
        prop_assert!(scenario.is_ok(), "(a) invalid scenario: {:?}\n{}", scenario, case.text);
        let report = run_text_reporting(&case.text, Restarts::NewActor);
        prop_assert!(report.is_ok(), "(a) the run failed: {:?}\n{}", report.err(), case.text);
        let (scenario, report) = (scenario.unwrap(), report.unwrap());
        let trace = &report.trace;
        let verdict = check(&scenario, trace).and_then(|()| check_fates(&report));
        prop_assert!(
            verdict.is_ok(),
            "{}\n--- scenario\n{}--- trace\n{}",
            verdict.unwrap_err(),
            case.text,
            trace
        );
        // Workers restarted in place (and restarting themselves) tell their fates too.
        let in_place = run_text_reporting(&case.text, Restarts::InPlaceHere);
        prop_assert!(in_place.is_ok(), "(a) the in-place run failed: {:?}", in_place.err());
        let in_place = in_place.unwrap();
        let verdict = check_fates(&in_place);
        prop_assert!(
            verdict.is_ok(),
            "in place: {}\n--- scenario\n{}--- trace\n{}",
            verdict.unwrap_err(),
            case.text,
            in_place.trace
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The checker, checked
// ---------------------------------------------------------------------------------------------

fn recorded(folder: &str) -> Vec<(String, String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(folder);
    let mut found: Vec<_> = std::fs::read_dir(&dir)
        .expect("the recorded scenarios are readable")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "scn"))
        .map(|path| {
            (
                path.display().to_string(),
                std::fs::read_to_string(&path).expect("scenario readable"),
                std::fs::read_to_string(path.with_extension("trace")).expect("trace readable"),
            )
        })
        .collect();
    found.sort();
    found
}

#[test]
fn the_checker_accepts_every_trace_recorded_from_otp_or_derived_from_it() {
    let mut all = recorded("crates/overseer-conformance/tests/otp");
    all.extend(recorded("tests/otp_derived"));
    assert!(all.len() >= 26, "found {} recorded scenarios", all.len());
    for (path, text, trace) in all {
        let scenario = parse(&text).expect("recorded scenarios parse");
        if let Err(violation) = check(&scenario, &trace) {
            panic!("{path}: {violation}");
        }
    }
}

fn doctored(file: &str, edit: impl Fn(&str, &str) -> (String, String)) -> Result<(), String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/overseer-conformance/tests/otp");
    let text = std::fs::read_to_string(dir.join(format!("{file}.scn"))).unwrap();
    let trace = std::fs::read_to_string(dir.join(format!("{file}.trace"))).unwrap();
    let (text, trace) = edit(&text, &trace);
    check(&parse(&text).unwrap(), &trace)
}

#[test]
fn the_checker_rejects_traces_that_break_an_invariant() {
    // A restart beyond the intensity: root allows 3 restarts; claim it allows none.
    let beyond = doctored("01_brief_example", |text, trace| {
        (
            text.replace("intensity=3 period=5", "intensity=0 period=5"),
            trace.into(),
        )
    });
    assert!(beyond.unwrap_err().contains("(b1)"));

    // An escalation too early: the trace escalates root after 3 attempts; claim it allows 4.
    let early = doctored("13_try_again_one_for_one", |text, trace| {
        (text.replace("intensity=3", "intensity=4"), trace.into())
    });
    assert!(early.unwrap_err().contains("(b2)"));

    // A missing decision: the first escalation of `leaf` is dropped.
    let undecided = doctored("07_escalation_two_levels", |text, trace| {
        (text.into(), trace.replacen("escalate leaf\n", "", 1))
    });
    assert!(undecided.unwrap_err().contains("(b3)"));

    // A child outliving its supervisor: `stop b shutdown` is dropped before `stop root`.
    let outlived = doctored("13_try_again_one_for_one", |text, trace| {
        (text.into(), trace.replacen("stop b shutdown\n", "", 1))
    });
    assert!(outlived.unwrap_err().contains("(c)"));

    // An `alive:` line that disagrees with the events.
    let mismatch = doctored("02_one_for_one_basic", |text, trace| {
        let mut lines: Vec<&str> = trace.lines().collect();
        lines.pop();
        (text.into(), format!("{}\nalive: root\n", lines.join("\n")))
    });
    assert!(mismatch.unwrap_err().contains("alive:"));

    // Something alive after a shutdown.
    let survivor = doctored("21_tree_shutdown_order", |text, trace| {
        let last_stop = trace.rfind("stop ").unwrap();
        let end = last_stop + trace[last_stop..].find('\n').unwrap() + 1;
        (
            text.into(),
            format!("{}{}", &trace[..last_stop], &trace[end..]),
        )
    });
    assert!(survivor.is_err());

    // An API action on a dynamic child that has stopped (w1 exited normally, transient) gets
    // `error not_running`, not the supervisor's answer.
    let stopped_dynamic = |printed: &'static str| {
        doctored("19_simple_one_for_one", move |text, trace| {
            let (events, alive) = trace.split_at(trace.rfind("alive:").unwrap());
            (
                format!("{text}terminate w1\n"),
                format!("{events}> terminate w1\n{printed}\n{alive}"),
            )
        })
    };
    assert_eq!(stopped_dynamic("error not_running w1"), Ok(()));
    assert!(stopped_dynamic("result {error,not_found}")
        .unwrap_err()
        .contains("not_running"));
}
