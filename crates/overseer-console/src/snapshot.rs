//! The page's picture of a system at one moment, as JSON: the tree with each node's figures,
//! the breakers, the budget, the dead letters and the unfinished runs. Read from the system's
//! public API and from the [`Board`]'s fold.

use std::sync::Mutex;

use overseer_agent::{AgentHealth, Health, NodeKind, NodeState, System, TreeNode};
use overseer_budget::{Dimension, Ledger};
use overseer_supervisor::SupervisorStatus;
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::board::Board;

/// The snapshot of `system` now. `actions` says whether the page may offer its buttons.
pub(crate) async fn snapshot(system: &System, board: &Mutex<Board>, actions: bool) -> Value {
    let now = Instant::now();
    let tree = tree(system, board, now).await;
    let (window_ms, missed) = {
        let board = lock(board);
        (board.window().as_millis() as u64, board.missed_total())
    };
    json!({
        "shut_down": system.is_shut_down(),
        "window_ms": window_ms,
        "missed_events": missed,
        "tree": tree,
        "breakers": breakers(system),
        "budget": system.budget().map(budget),
        "dead_letters": dead_letters(system),
        "unfinished_runs": system
            .journal()
            .map(|journal| journal.unfinished().iter().map(ToString::to_string).collect::<Vec<_>>()),
        "actions": actions,
    })
}

/// The board, locked.
pub(crate) fn lock(board: &Mutex<Board>) -> std::sync::MutexGuard<'_, Board> {
    // A panic while folding leaves a board as consistent as any other moment's: keep going.
    board
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The tree depth first in start order ([`System::tree_snapshot`]), one object per supervisor
/// or agent, with the board's figures.
async fn tree(system: &System, board: &Mutex<Board>, now: Instant) -> Vec<Value> {
    let nodes = system.tree_snapshot().await;
    let mut board = lock(board);
    nodes
        .iter()
        .map(|node| match &node.kind {
            NodeKind::Supervisor { status } => {
                supervisor_row(&mut board, node, status.as_ref(), now)
            }
            NodeKind::Agent {
                queued,
                capacity,
                health,
            } => agent_row(
                &mut board,
                node,
                Some((*queued, *capacity)),
                health.as_ref(),
                now,
            ),
            _ => agent_row(&mut board, node, None, None, now),
        })
        .collect()
}

/// An agent's (or a plain worker's) row: its queue, its figures over the window, its health.
fn agent_row(
    board: &mut Board,
    node: &TreeNode,
    queue: Option<(usize, usize)>,
    health: Option<&AgentHealth>,
    now: Instant,
) -> Value {
    let path = node.path.as_str();
    let figures = board.figures(&node.name, now);
    let (health_state, failures) = match health.map(|agent| agent.health) {
        Some(Health::Unhealthy { failures }) => ("unhealthy", failures),
        Some(Health::Healthy) => ("healthy", 0),
        _ => ("unchecked", 0),
    };
    let state = match node.state {
        NodeState::Running if health_state == "unhealthy" => "unhealthy",
        state => state.as_str(),
    };
    json!({
        "depth": node.depth,
        "name": node.name,
        "path": path,
        "supervisor": false,
        "state": state,
        "restarts": board.restarts(path),
        "queued": queue.map(|(queued, _)| queued),
        "capacity": queue.map(|(_, capacity)| capacity),
        "asks_per_sec": figures.asks_per_sec,
        "p50_ms": figures.p50_ms,
        "p95_ms": figures.p95_ms,
        "p99_ms": figures.p99_ms,
        "errors": figures.errors,
        "errors_total": figures.errors_total,
        "health": health_state,
        "health_failures": failures,
        "progress": health.and_then(|agent| agent.progress.as_ref()).map(ToString::to_string),
        "since_last_beat_ms": health
            .and_then(|agent| agent.since_last_beat)
            .map(|since| since.as_millis() as u64),
    })
}

/// A supervisor's row: its configured intensity and the restarts that count now (from the
/// supervisor itself, so shown from the start), and the intensity it escalated at, if it did.
fn supervisor_row(
    board: &mut Board,
    node: &TreeNode,
    status: Option<&SupervisorStatus>,
    now: Instant,
) -> Value {
    let path = node.path.as_str();
    let (recent, escalated) = board.intensity_use(path, now);
    json!({
        "depth": node.depth,
        "name": node.name,
        "path": path,
        "supervisor": true,
        "state": node.state.as_str(),
        "restarts": board.restarts(path),
        "recent_restarts": recent,
        "intensity": status.map(|status| json!({
            "strategy": status.strategy,
            "max_restarts": status.max_restarts,
            "period_secs": status.period.as_secs(),
            "restarts_in_window": status.restarts_in_window,
        })),
        "escalated_at": escalated.map(|(intensity, period_secs)| json!({
            "intensity": intensity,
            "period_secs": period_secs,
        })),
    })
}

fn breakers(system: &System) -> Vec<Value> {
    let Some(registry) = system.breakers() else {
        return Vec::new();
    };
    let mut rows: Vec<Value> = registry
        .snapshot()
        .into_iter()
        .map(|breaker| {
            json!({
                "key": breaker.key.to_string(),
                "agent": &*breaker.key.agent,
                "task_type": &*breaker.key.task_type,
                "state": breaker.state.as_str(),
                "failure_rate": breaker.failure_rate,
                "consecutive_failures": breaker.consecutive_failures,
                "half_open_in_ms": breaker.retry_after.map(|wait| wait.as_millis() as u64),
            })
        })
        .collect();
    rows.sort_by(|a, b| a["key"].as_str().cmp(&b["key"].as_str()));
    rows
}

fn budget(budget: &overseer_budget::Budget) -> Value {
    let process = budget.process();
    json!({
        "tripped": budget.is_tripped(),
        "trip": budget.trip_report().map(|report| report.reason.to_string()),
        "dimensions": dimensions(process),
    })
}

fn dimensions(ledger: &Ledger) -> Vec<Value> {
    let status = ledger.status();
    let tiers: Vec<f64> = ledger.tiers().iter().map(|tier| tier.fraction()).collect();
    Dimension::ALL
        .iter()
        .map(|dimension| {
            let figures = status.dimension(*dimension);
            json!({
                "dimension": dimension_name(*dimension),
                "committed": figures.committed,
                "reserved": figures.reserved,
                "limit": figures.limit,
                "tier": figures.tier.map(|tier| tier.level),
                "tiers": tiers,
            })
        })
        .collect()
}

fn dimension_name(dimension: Dimension) -> &'static str {
    match dimension {
        Dimension::Tokens => "tokens",
        Dimension::Cost => "cost (micro-units)",
        _ => "steps",
    }
}

fn dead_letters(system: &System) -> Vec<Value> {
    system
        .dead_letters()
        .list()
        .into_iter()
        .map(|letter| {
            json!({
                "id": letter.id.0,
                "agent": letter.agent,
                "task_type": letter.task_type,
                "attempts": letter.attempts.len(),
                "last_error": letter.last_error().map(|attempt| attempt.message.clone()),
                "run": letter.run.as_ref().map(ToString::to_string),
            })
        })
        .collect()
}
