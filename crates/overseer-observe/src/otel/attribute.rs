//! The names of the attributes the exporter writes.
//!
//! The `gen_ai.*` names and `error.type` are those of the OpenTelemetry semantic conventions
//! for GenAI agent spans ("Invoke agent internal span", status: development). They were
//! written against `opentelemetry-semantic-conventions` 0.33 (schema 1.42.0), which still
//! carries them but marks them deprecated because the GenAI conventions moved to their own
//! repository (`open-telemetry/semantic-conventions-genai`) that has no Rust crate yet; the
//! names themselves did not change, and `tests/otel.rs` checks ours against that crate's.
//! `error.type` is a stable attribute.
//!
//! Everything else Overseer knows goes under `overseer.`: attributes shared by every span,
//! then one namespace per event kind (`overseer.breaker.*`, `overseer.budget.*`,
//! `overseer.kill_switch.*`). Enum values are the snake-case names the event stream uses in
//! JSON (`panicked`, `half_open`, `limit_reached`, ...), so spans and the JSON-lines sink
//! agree.

// GenAI semantic conventions.

/// `gen_ai.operation.name`: always [`INVOKE_AGENT`] on an ask's span.
pub const GEN_AI_OPERATION_NAME: &str = "gen_ai.operation.name";
/// The value of [`GEN_AI_OPERATION_NAME`] for an ask, and the first word of its span's name.
pub const INVOKE_AGENT: &str = "invoke_agent";
/// `gen_ai.agent.name`: the agent asked.
pub const GEN_AI_AGENT_NAME: &str = "gen_ai.agent.name";
/// `gen_ai.provider.name`: the model provider, when set with
/// [`OtelExporter::provider_name`](super::OtelExporter::provider_name) (Overseer cannot know
/// which provider an agent's handler calls).
pub const GEN_AI_PROVIDER_NAME: &str = "gen_ai.provider.name";
/// `gen_ai.request.model`: the ask's model ([`AskEvent::model`](overseer_agent::AskEvent::model):
/// named with [`AgentContext::report_model`](overseer_agent::AgentContext::report_model), or by
/// a model call through [`AgentContext::model`](overseer_agent::AgentContext::model)), when known.
pub const GEN_AI_REQUEST_MODEL: &str = "gen_ai.request.model";
/// `gen_ai.usage.input_tokens` (int): input tokens the handler reported.
pub const GEN_AI_USAGE_INPUT_TOKENS: &str = "gen_ai.usage.input_tokens";
/// `gen_ai.usage.output_tokens` (int): output tokens the handler reported.
pub const GEN_AI_USAGE_OUTPUT_TOKENS: &str = "gen_ai.usage.output_tokens";
/// `gen_ai.usage.cache_read.input_tokens` (int): of the input tokens, those the provider read
/// from its prompt cache; set when there were any.
pub const GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: &str = "gen_ai.usage.cache_read.input_tokens";
/// `error.type`: the class of an error: an ask's error kind (`crashed`, `timeout`, ...), an
/// exit's or a failed start's kind (`panicked`, `failed`, ...), `escalated`, or the kill
/// switch's reason (`limit_reached`, ...).
pub const ERROR_TYPE: &str = "error.type";

// Every span.

/// `overseer.event`: what the span records: `ask`, `started`, `start_failed`, `stopped`,
/// `escalated`, `auto_shutdown`, `breaker`, `budget_warning`, `kill_switch_tripped`.
pub const EVENT: &str = "overseer.event";
/// `overseer.event_id` (int): the event's id, unique within its system.
pub const EVENT_ID: &str = "overseer.event_id";
/// `overseer.caused_by` (int): the id of the event that caused this one, when one did (also
/// when its span could not be linked).
pub const CAUSED_BY: &str = "overseer.caused_by";
/// `overseer.parent` (int), on an ask's span: the id of the ask whose handler made it, when one
/// did ([`AskEvent::parent`](overseer_agent::AskEvent::parent)).
pub const PARENT: &str = "overseer.parent";
/// `overseer.request` (int), on a nested ask's span: the id of its request's first ask
/// ([`AskEvent::request`](overseer_agent::AskEvent::request)).
pub const REQUEST: &str = "overseer.request";
/// `overseer.path`: the path in the tree of the agent or supervisor the event is about.
pub const PATH: &str = "overseer.path";
/// The attribute on a span link telling what the link means; its value is [`CAUSED_BY_LINK`].
pub const LINK: &str = "overseer.link";
/// The value of [`LINK`]: the linked span is the cause of the span holding the link.
pub const CAUSED_BY_LINK: &str = "caused_by";

// Asks.

/// `overseer.task_type`: the task's type (an ask's and a breaker's).
pub const TASK_TYPE: &str = "overseer.task_type";
/// `overseer.outcome`: `ok` or the error kind (`failed`, `crashed`, `timeout`,
/// `breaker_open`, `budget_exceeded`, `kill_switch_tripped`, ...).
pub const OUTCOME: &str = "overseer.outcome";
/// `overseer.cost_micros` (int): the cost the handler reported, in micro-units.
pub const COST_MICROS: &str = "overseer.cost_micros";
/// `overseer.injected_fault`: the fault injected into the ask, only when fault injection
/// caused its outcome.
pub const INJECTED_FAULT: &str = "overseer.injected_fault";

// Lifecycle.

/// `overseer.reason`: why a child stopped (the exit reason's text) or failed to start (the
/// error's text).
pub const REASON: &str = "overseer.reason";
/// `overseer.restart` (bool): on `started`, whether the path had started before.
pub const RESTART: &str = "overseer.restart";
/// `overseer.intensity` (int): on `escalated`, the restart limit that was exceeded.
pub const INTENSITY: &str = "overseer.intensity";
/// `overseer.period_secs` (int): on `escalated`, the window of that limit, in seconds.
pub const PERIOD_SECS: &str = "overseer.period_secs";

// Breakers.

/// `overseer.agent`: the agent whose breaker changed state.
pub const AGENT: &str = "overseer.agent";
/// `overseer.breaker.from`: the state left (`closed`, `open`, `half_open`, `forced_open`,
/// `disabled`).
pub const BREAKER_FROM: &str = "overseer.breaker.from";
/// `overseer.breaker.to`: the state entered.
pub const BREAKER_TO: &str = "overseer.breaker.to";
/// `overseer.breaker.trigger`: why (`failure_rate`, `consecutive_failures`, `open_elapsed`,
/// `probes_succeeded`, `probe_failed`, ...).
pub const BREAKER_TRIGGER: &str = "overseer.breaker.trigger";
/// `overseer.breaker.failure_rate` (double): the failure rate that decided it.
pub const BREAKER_FAILURE_RATE: &str = "overseer.breaker.failure_rate";
/// `overseer.breaker.calls_in_window` (int): outcomes in the window.
pub const BREAKER_CALLS_IN_WINDOW: &str = "overseer.breaker.calls_in_window";
/// `overseer.breaker.consecutive_failures` (int): failures in a row.
pub const BREAKER_CONSECUTIVE_FAILURES: &str = "overseer.breaker.consecutive_failures";
/// `overseer.breaker.open_for_seconds` (double): on an opening, how long it stays open.
pub const BREAKER_OPEN_FOR_SECONDS: &str = "overseer.breaker.open_for_seconds";

// Budget warnings.

/// `overseer.budget.scope`: whose limit: `process` or `agent:<name>`.
pub const BUDGET_SCOPE: &str = "overseer.budget.scope";
/// `overseer.budget.dimension`: which limit: `tokens`, `cost_micros` or `steps` (as the
/// metrics label it).
pub const BUDGET_DIMENSION: &str = "overseer.budget.dimension";
/// `overseer.budget.tier` (int): the tier reached, 1 for the lowest.
pub const BUDGET_TIER: &str = "overseer.budget.tier";
/// `overseer.budget.tier_fraction` (double): the tier's fraction of the limit (0.7 = 70 %).
pub const BUDGET_TIER_FRACTION: &str = "overseer.budget.tier_fraction";
/// `overseer.budget.used` (int): committed spend when the tier was reached.
pub const BUDGET_USED: &str = "overseer.budget.used";
/// `overseer.budget.limit` (int): the limit.
pub const BUDGET_LIMIT: &str = "overseer.budget.limit";

// The kill switch.

/// `overseer.kill_switch.reason`: why it tripped, as text.
pub const KILL_SWITCH_REASON: &str = "overseer.kill_switch.reason";
/// `overseer.kill_switch.after_seconds` (double): time from the switch's start to the trip.
pub const KILL_SWITCH_AFTER_SECONDS: &str = "overseer.kill_switch.after_seconds";
/// `overseer.kill_switch.in_flight`: what happens to calls in flight (`finish`,
/// `cancel_now`, `cancel_after`).
pub const KILL_SWITCH_IN_FLIGHT: &str = "overseer.kill_switch.in_flight";
/// `overseer.kill_switch.tokens_used` (int): committed process tokens at the trip.
pub const KILL_SWITCH_TOKENS_USED: &str = "overseer.kill_switch.tokens_used";
/// `overseer.kill_switch.cost_micros_used` (int): committed process cost at the trip.
pub const KILL_SWITCH_COST_MICROS_USED: &str = "overseer.kill_switch.cost_micros_used";
/// `overseer.kill_switch.steps_used` (int): committed process steps at the trip.
pub const KILL_SWITCH_STEPS_USED: &str = "overseer.kill_switch.steps_used";
