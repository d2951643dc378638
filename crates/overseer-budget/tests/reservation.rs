//! Reservation arithmetic, through the public API only.

use overseer_budget::{
    Budget, CommitReport, Dimension, Ledger, Limits, Refusal, Scope, Spend, Tiers,
};

fn ledger(limits: Limits) -> Ledger {
    Ledger::with_tiers(Scope::Process, limits, Tiers::none()).unwrap()
}

fn figures(ledger: &Ledger, dimension: Dimension) -> (u64, u64) {
    (ledger.committed(dimension), ledger.reserved(dimension))
}

#[test]
fn reserving_holds_the_estimate_and_one_step() {
    let ledger = ledger(Limits::new().tokens(1_000).cost_micros(500).steps(10));
    let _call = ledger.reserve(Spend::new(300, 200)).unwrap();
    assert_eq!(figures(&ledger, Dimension::Tokens), (0, 300));
    assert_eq!(figures(&ledger, Dimension::Cost), (0, 200));
    assert_eq!(figures(&ledger, Dimension::Steps), (0, 1));
    let left = ledger.remaining();
    assert_eq!(
        (left.tokens, left.cost_micros, left.steps),
        (Some(700), Some(300), Some(9))
    );
}

#[test]
fn committing_less_than_reserved_returns_the_rest() {
    let ledger = ledger(Limits::new().tokens(1_000).cost_micros(500));
    let report = ledger
        .reserve(Spend::new(300, 200))
        .unwrap()
        .commit(Spend::new(120, 50));
    assert_eq!(report.usage, Spend::new(120, 50));
    assert_eq!(report.overrun, None);
    assert_eq!(figures(&ledger, Dimension::Tokens), (120, 0));
    assert_eq!(figures(&ledger, Dimension::Cost), (50, 0));
    assert_eq!(figures(&ledger, Dimension::Steps), (1, 0));
    assert_eq!(ledger.remaining().tokens, Some(880));
}

#[test]
fn committing_more_than_reserved_records_the_truth_and_reports_the_overrun() {
    let ledger = ledger(Limits::new().tokens(1_000));
    let report = ledger
        .reserve(Spend::new(300, 10))
        .unwrap()
        .commit(Spend::new(450, 10));
    assert_eq!(report.overrun, Some(Spend::from_tokens(150)));
    assert_eq!(figures(&ledger, Dimension::Tokens), (450, 0));
    assert_eq!(ledger.remaining().tokens, Some(550));
}

#[test]
fn an_overrun_past_the_limit_refuses_every_later_reservation_in_that_dimension() {
    let ledger = ledger(Limits::new().tokens(1_000));
    let report = ledger
        .reserve(Spend::from_tokens(900))
        .unwrap()
        .commit(Spend::from_tokens(1_200));
    assert_eq!(report.overrun, Some(Spend::from_tokens(300)));
    assert_eq!(report.limits_reached.len(), 1);
    assert_eq!(ledger.committed(Dimension::Tokens), 1_200);
    assert_eq!(ledger.remaining().tokens, Some(0));
    let refused = ledger.reserve(Spend::ZERO).unwrap_err();
    assert_eq!(
        refused,
        Refusal::LimitExceeded {
            scope: Scope::Process,
            dimension: Dimension::Tokens,
            requested: 0,
            remaining: 0,
            limit: 1_000,
            committed: 1_200,
        }
    );
    assert!(
        !refused.may_fit_later(),
        "committed spend alone is over the limit"
    );
}

#[test]
fn an_overrun_blocks_reservations_only_while_committed_plus_reserved_is_over_the_limit() {
    let ledger = ledger(Limits::new().tokens(1_000));
    let held = ledger.reserve(Spend::from_tokens(500)).unwrap();
    let report = ledger
        .reserve(Spend::from_tokens(400))
        .unwrap()
        .commit(Spend::from_tokens(550)); // 150 more than it reserved
    assert_eq!(report.overrun, Some(Spend::from_tokens(150)));
    assert_eq!(figures(&ledger, Dimension::Tokens), (550, 500)); // 1 050 > 1 000
    let refused = ledger.reserve(Spend::ZERO).unwrap_err();
    assert!(
        refused.may_fit_later(),
        "550 committed: the 500 held may come back"
    );
    // The hold that was in flight ends: committed + reserved is under the limit again.
    held.release();
    assert_eq!(ledger.remaining().tokens, Some(450));
    assert!(ledger.reserve(Spend::from_tokens(450)).is_ok());
}

#[test]
fn releasing_returns_the_whole_reservation_including_the_step() {
    let ledger = ledger(Limits::new().tokens(1_000).steps(1));
    ledger.reserve(Spend::from_tokens(600)).unwrap().release();
    assert_eq!(figures(&ledger, Dimension::Tokens), (0, 0));
    assert_eq!(figures(&ledger, Dimension::Steps), (0, 0));
    // The single step is available again.
    let again = ledger.reserve(Spend::from_tokens(1_000)).unwrap();
    assert_eq!(again.estimate(), Spend::from_tokens(1_000));
}

#[test]
fn dropping_a_reservation_releases_it() {
    let ledger = ledger(Limits::new().tokens(1_000).steps(5));
    let calls: Vec<_> = (0..5)
        .map(|_| ledger.reserve(Spend::from_tokens(100)).unwrap())
        .collect();
    assert_eq!(ledger.reserved(Dimension::Tokens), 500);
    assert_eq!(ledger.remaining().steps, Some(0));
    drop(calls);
    assert_eq!(figures(&ledger, Dimension::Tokens), (0, 0));
    assert_eq!(figures(&ledger, Dimension::Steps), (0, 0));
}

#[test]
fn a_failed_call_commits_its_partial_usage_and_the_step() {
    let ledger = ledger(Limits::new().tokens(1_000).cost_micros(1_000).steps(3));
    let call = ledger.reserve(Spend::new(500, 400)).unwrap();
    // The stream broke after 80 tokens: the call reports what it used.
    let report = call.commit(Spend::new(80, 30));
    assert_eq!(report.overrun, None);
    assert_eq!(figures(&ledger, Dimension::Tokens), (80, 0));
    assert_eq!(figures(&ledger, Dimension::Cost), (30, 0));
    assert_eq!(figures(&ledger, Dimension::Steps), (1, 0));
}

#[test]
fn a_refusal_names_the_scope_dimension_requested_and_remaining() {
    let ledger = ledger(Limits::new().tokens(1_000).cost_micros(100));
    let _held = ledger.reserve(Spend::new(100, 60)).unwrap();
    let refused = ledger.reserve(Spend::new(100, 50)).unwrap_err();
    assert_eq!(
        refused,
        Refusal::LimitExceeded {
            scope: Scope::Process,
            dimension: Dimension::Cost,
            requested: 50,
            remaining: 40,
            limit: 100,
            committed: 0,
        }
    );
    // Nothing of the refused call is held, not even the tokens taken before the cost.
    assert_eq!(ledger.reserved(Dimension::Tokens), 100);
    assert_eq!(ledger.reserved(Dimension::Steps), 1);
}

#[test]
fn an_agent_call_counts_against_the_agent_and_the_process() {
    let budget = Budget::builder()
        .process_limits(Limits::new().tokens(10_000))
        .agent_limits("a", Limits::new().tokens(4_000))
        .build()
        .unwrap();
    let call = budget.admit("a", Spend::from_tokens(1_000)).unwrap();
    let scopes: Vec<Scope> = call.scopes().cloned().collect();
    assert_eq!(scopes, [Scope::Agent("a".into()), Scope::Process]);
    let agent = budget.agent("a").unwrap();
    assert_eq!(agent.reserved(Dimension::Tokens), 1_000);
    assert_eq!(budget.process().reserved(Dimension::Tokens), 1_000);

    call.commit(Spend::from_tokens(700));
    assert_eq!(figures(&agent, Dimension::Tokens), (700, 0));
    assert_eq!(figures(budget.process(), Dimension::Tokens), (700, 0));
    assert_eq!(figures(budget.process(), Dimension::Steps), (1, 0));
}

#[test]
fn agents_without_their_own_limits_count_only_against_the_process() {
    let budget = Budget::builder()
        .process_limits(Limits::new().tokens(1_000))
        .build()
        .unwrap();
    budget
        .admit("a", Spend::from_tokens(400))
        .unwrap()
        .commit(Spend::from_tokens(400));
    budget
        .admit("b", Spend::from_tokens(400))
        .unwrap()
        .commit(Spend::from_tokens(400));
    assert_eq!(budget.process().committed(Dimension::Tokens), 800);
    assert_eq!(budget.agent("a").unwrap().committed(Dimension::Tokens), 400);
    assert_eq!(budget.remaining("b").tokens, Some(200));
}

#[test]
fn a_process_refusal_rolls_back_the_agent_hold() {
    let budget = Budget::builder()
        .process_limits(Limits::new().tokens(1_000))
        .agent_limits("a", Limits::new().tokens(5_000))
        .build()
        .unwrap();
    let _held = budget.admit("b", Spend::from_tokens(900)).unwrap();
    let refused = budget.admit("a", Spend::from_tokens(200)).unwrap_err();
    assert_eq!(refused.scope(), Some(&Scope::Process));
    let agent = budget.agent("a").unwrap();
    assert_eq!(figures(&agent, Dimension::Tokens), (0, 0));
    assert_eq!(figures(&agent, Dimension::Steps), (0, 0));
}

#[test]
fn an_agent_refusal_leaves_the_process_untouched() {
    let budget = Budget::builder()
        .process_limits(Limits::new().tokens(10_000))
        .agent_limits("a", Limits::new().tokens(500))
        .build()
        .unwrap();
    let refused = budget.admit("a", Spend::from_tokens(600)).unwrap_err();
    assert_eq!(
        refused,
        Refusal::LimitExceeded {
            scope: Scope::Agent("a".into()),
            dimension: Dimension::Tokens,
            requested: 600,
            remaining: 500,
            limit: 500,
            committed: 0,
        }
    );
    assert_eq!(figures(budget.process(), Dimension::Tokens), (0, 0));
    assert_eq!(figures(budget.process(), Dimension::Steps), (0, 0));
}

#[test]
fn remaining_and_tier_read_the_tighter_of_agent_and_process() {
    let budget = Budget::builder()
        .process_limits(Limits::new().tokens(10_000).steps(100))
        .agent_limits("a", Limits::new().tokens(1_000))
        .build()
        .unwrap();
    budget
        .admit("a", Spend::from_tokens(800))
        .unwrap()
        .commit(Spend::from_tokens(800));
    let left = budget.remaining("a");
    assert_eq!(
        (left.tokens, left.cost_micros, left.steps),
        (Some(200), None, Some(99))
    );
    // 80 % of the agent's own tokens: tier 1 (70 %); the process is at 8 %.
    assert_eq!(budget.tier("a").map(|t| t.level), Some(1));
    assert_eq!(budget.process().tier(), None);
    // An agent not seen yet reads the process figures.
    assert_eq!(budget.remaining("new").tokens, Some(9_200));
    assert_eq!(budget.tier("new"), None);
}

#[test]
fn status_lists_every_agent_sorted_by_name() {
    let budget = Budget::builder()
        .process_limits(Limits::new().tokens(10_000))
        .build()
        .unwrap();
    for agent in ["writer", "critic", "planner"] {
        budget
            .admit(agent, Spend::from_tokens(10))
            .unwrap()
            .commit(Spend::from_tokens(10));
    }
    let status = budget.status();
    let names: Vec<String> = status.agents.iter().map(|s| s.scope.to_string()).collect();
    assert_eq!(names, ["agent:critic", "agent:planner", "agent:writer"]);
    assert_eq!(status.process.tokens.committed, 30);
    assert_eq!(status.trip, None);
}

#[test]
fn a_commit_report_round_trips_through_json() {
    let ledger = Ledger::new(Scope::Process, Limits::new().tokens(100)).unwrap();
    let report = ledger
        .reserve(Spend::from_tokens(50))
        .unwrap()
        .commit(Spend::from_tokens(80));
    assert_eq!(report.warnings.len(), 1);
    let json = serde_json::to_string(&report).unwrap();
    assert_eq!(serde_json::from_str::<CommitReport>(&json).unwrap(), report);
}

#[test]
fn handles_can_be_shared_across_threads_and_tasks() {
    fn send_sync<T: Send + Sync + 'static>() {}
    send_sync::<Budget>();
    send_sync::<Ledger>();
    send_sync::<overseer_budget::KillSwitch>();
    send_sync::<overseer_budget::Reservation>();
    send_sync::<Refusal>();
}

#[test]
fn admitting_many_at_once_holds_each_estimate_or_none_of_them() {
    let budget = Budget::builder()
        .process_limits(Limits::new().tokens(1_000))
        .build()
        .unwrap();
    let held = budget.admit_many("voter", Spend::new(100, 0), 7).unwrap();
    assert_eq!(held.len(), 7);
    assert_eq!(budget.process().reserved(Dimension::Tokens), 700);
    assert_eq!(
        budget.agent("voter").unwrap().reserved(Dimension::Tokens),
        700
    );
    // Four more do not fit beside them (1,100 > 1,000): none is held, the seven stay.
    let refused = budget
        .admit_many("voter", Spend::new(100, 0), 4)
        .unwrap_err();
    assert!(
        matches!(refused, Refusal::LimitExceeded { .. }),
        "{refused:?}"
    );
    assert_eq!(budget.process().reserved(Dimension::Tokens), 700);
    // Released one by one, as single admissions are.
    drop(held);
    assert_eq!(budget.process().reserved(Dimension::Tokens), 0);
    assert!(budget
        .admit_many("voter", Spend::new(100, 0), 0)
        .unwrap()
        .is_empty());
}
