//! The page's picture of a system at one moment, as JSON: the tree with each node's figures,
//! the breakers, the budget, the dead letters and the unfinished runs. Read from the system's
//! public API and from the [`Board`]'s fold.

use std::collections::HashMap;
use std::sync::Mutex;

use overseer_agent::{AgentHealth, Health, System};
use overseer_budget::{Dimension, Ledger};
use overseer_supervisor::{ChildOpError, ChildState};
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

/// The tree depth first in start order, one object per supervisor or agent.
async fn tree(system: &System, board: &Mutex<Board>, now: Instant) -> Vec<Value> {
    let Some(root) = system.tree().map(|tree| tree.root().clone()) else {
        return Vec::new();
    };
    let children = root.which_children().await.unwrap_or_default();
    let root_name = children
        .first()
        .and_then(|child| child.path.parent())
        .map_or_else(|| "(root)".to_string(), |parent| parent.to_string());
    let state = if root.is_alive() {
        "running"
    } else {
        "not running"
    };
    let mut rows = vec![supervisor_row(board, 0, &root_name, &root_name, state, now)];
    let queues: HashMap<String, (usize, usize)> = system
        .queue_depths()
        .into_iter()
        .map(|depth| (depth.agent.to_string(), (depth.queued, depth.capacity)))
        .collect();
    let health: HashMap<String, AgentHealth> = system
        .health()
        .into_iter()
        .map(|agent| (agent.agent.to_string(), agent))
        .collect();
    let mut pending: Vec<_> = children.into_iter().rev().map(|c| (1, c)).collect();
    while let Some((depth, child)) = pending.pop() {
        let mut state = match child.state {
            ChildState::Running => "running",
            ChildState::Restarting => "restarting",
            ChildState::NotRunning => "not running",
        };
        let path = child.path.to_string();
        if let Some(supervisor) = child.supervisor() {
            let mut grandchildren = Vec::new();
            match supervisor.which_children().await {
                Ok(found) => grandchildren = found,
                Err(ChildOpError::SupervisorNotRunning) => state = "exited",
                Err(_) => state = "silent",
            }
            rows.push(supervisor_row(
                board,
                depth,
                child.id.as_str(),
                &path,
                state,
                now,
            ));
            pending.extend(grandchildren.into_iter().rev().map(|g| (depth + 1, g)));
            continue;
        }
        let name = child.id.as_str();
        let mut board = lock(board);
        let figures = board.figures(name, now);
        let (health_state, failures, progress, since_beat) = match health.get(name) {
            Some(agent) => (
                match agent.health {
                    Health::Unhealthy { .. } => "unhealthy",
                    Health::Healthy => "healthy",
                    _ => "unchecked",
                },
                match agent.health {
                    Health::Unhealthy { failures } => failures,
                    _ => 0,
                },
                agent.progress.as_ref().map(ToString::to_string),
                agent.since_last_beat.map(|since| since.as_millis() as u64),
            ),
            None => ("unchecked", 0, None, None),
        };
        if state == "running" && health_state == "unhealthy" {
            state = "unhealthy";
        }
        let queue = queues.get(name).copied();
        rows.push(json!({
            "depth": depth,
            "name": name,
            "path": path,
            "supervisor": false,
            "state": state,
            "restarts": board.restarts(&path),
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
            "progress": progress,
            "since_last_beat_ms": since_beat,
        }));
    }
    rows
}

fn supervisor_row(
    board: &Mutex<Board>,
    depth: usize,
    name: &str,
    path: &str,
    state: &str,
    now: Instant,
) -> Value {
    let mut board = lock(board);
    let (recent, escalated) = board.intensity_use(path, now);
    json!({
        "depth": depth,
        "name": name,
        "path": path,
        "supervisor": true,
        "state": state,
        "restarts": board.restarts(path),
        "recent_restarts": recent,
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
