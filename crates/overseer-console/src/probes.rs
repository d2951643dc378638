//! What the probes answer: a system's readiness and its agents' health as JSON, plain
//! functions of what the system reports.

use overseer_agent::{AgentHealth, Health, Readiness};
use serde_json::{json, Value};

/// The body of `/readyz`, and whether it is ready with `min_healthy_share` of its agents
/// healthy.
///
/// ```
/// use overseer_agent::Readiness;
/// use overseer_console::readiness_json;
///
/// let (ready, body) = readiness_json(&Readiness::new(true, None, 2, 1), 0.5);
/// assert!(ready);
/// assert_eq!(body["healthy_share"], 0.5);
/// ```
pub fn readiness_json(readiness: &Readiness, min_healthy_share: f64) -> (bool, Value) {
    let ready = readiness.is_ready(min_healthy_share);
    let body = json!({
        "ready": ready,
        "running": readiness.running,
        "tripped": readiness.tripped.as_ref().map(ToString::to_string),
        "agents": readiness.agents,
        "healthy": readiness.healthy,
        "healthy_share": readiness.healthy_share(),
        "min_healthy_share": min_healthy_share,
    });
    (ready, body)
}

/// The body of `/healthz`: one object per agent, by name.
pub fn health_json(agents: &[AgentHealth]) -> Value {
    let agents: Vec<Value> = agents
        .iter()
        .map(|agent| {
            let (state, failures) = match agent.health {
                Health::Unhealthy { failures } => ("unhealthy", failures),
                Health::Healthy => ("healthy", 0),
                _ => ("unchecked", 0),
            };
            json!({
                "agent": agent.agent.as_str(),
                "path": agent.path.as_ref().map(ToString::to_string),
                "health": state,
                "failures": failures,
                "progress": agent.progress.as_ref().map(ToString::to_string),
                "since_last_beat_ms": agent.since_last_beat.map(|since| since.as_millis() as u64),
            })
        })
        .collect();
    json!({ "agents": agents })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_system_not_ready_says_why() {
        let (ready, body) = readiness_json(&Readiness::new(false, None, 3, 3), 1.0);
        assert!(!ready);
        assert_eq!(body["running"], false);
        assert_eq!(body["tripped"], Value::Null);
        let (ready, _) = readiness_json(&Readiness::new(true, None, 4, 2), 0.75);
        assert!(!ready, "half healthy, three quarters asked");
    }
}
