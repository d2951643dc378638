//! Invalid configurations are refused with typed errors when built, never later.

use std::time::Duration;

use overseer_budget::{
    Budget, BudgetConfigError, Dimension, ErrorRateTrigger, KillSwitch, KillSwitchConfig, Ledger,
    Limits, Scope, Tiers,
};

#[test]
fn a_zero_process_limit_is_rejected_naming_the_process() {
    let err = Budget::builder()
        .process_limits(Limits::new().cost_micros(0))
        .build()
        .unwrap_err();
    assert_eq!(
        err,
        BudgetConfigError::ZeroLimit {
            target: "process".into(),
            dimension: Dimension::Cost
        }
    );
    assert_eq!(
        err.to_string(),
        "the cost limit of process is 0; leave it unset for no limit"
    );
}

#[test]
fn a_zero_agent_limit_is_rejected_naming_the_agent() {
    let err = Budget::builder()
        .agent_limits("scout", Limits::new().steps(0))
        .build()
        .unwrap_err();
    assert_eq!(
        err,
        BudgetConfigError::ZeroLimit {
            target: "agent:scout".into(),
            dimension: Dimension::Steps
        }
    );
}

#[test]
fn a_zero_default_agent_limit_is_rejected() {
    let err = Budget::builder()
        .default_agent_limits(Limits::new().tokens(0))
        .build()
        .unwrap_err();
    assert!(
        matches!(err, BudgetConfigError::ZeroLimit { ref target, .. } if target == "default agent")
    );
}

#[test]
fn a_zero_limit_is_rejected_by_a_standalone_ledger() {
    assert!(matches!(
        Ledger::new(Scope::Agent("x".into()), Limits::new().tokens(0)),
        Err(BudgetConfigError::ZeroLimit { .. })
    ));
}

#[test]
fn giving_an_agent_limits_twice_is_rejected() {
    let err = Budget::builder()
        .agent_limits("a", Limits::new().tokens(1))
        .agent_limits("a", Limits::new().tokens(2))
        .build()
        .unwrap_err();
    assert_eq!(
        err,
        BudgetConfigError::AgentAlreadyRegistered { agent: "a".into() }
    );

    let budget = Budget::builder().build().unwrap();
    budget.register_agent("b", Limits::new().tokens(5)).unwrap();
    assert!(matches!(
        budget.register_agent("b", Limits::new().tokens(5)),
        Err(BudgetConfigError::AgentAlreadyRegistered { .. })
    ));
}

#[test]
fn registering_an_agent_after_its_first_call_is_rejected() {
    let budget = Budget::builder().build().unwrap();
    budget
        .admit("late", overseer_budget::Spend::ZERO)
        .unwrap()
        .release();
    assert!(matches!(
        budget.register_agent("late", Limits::new().tokens(5)),
        Err(BudgetConfigError::AgentAlreadyRegistered { .. })
    ));
}

#[test]
fn a_registered_agent_gets_its_own_limits() {
    let budget = Budget::builder().build().unwrap();
    budget.register_agent("b", Limits::new().tokens(5)).unwrap();
    assert!(budget
        .admit("b", overseer_budget::Spend::from_tokens(6))
        .is_err());
    assert!(matches!(
        budget.register_agent("c", Limits::new().steps(0)),
        Err(BudgetConfigError::ZeroLimit { .. })
    ));
}

#[test]
fn tier_fractions_must_be_in_the_open_unit_interval_and_increasing() {
    assert!(matches!(
        Tiers::new(&[0.7, 1.0]),
        Err(BudgetConfigError::TierOutOfRange { index: 1, .. })
    ));
    assert!(matches!(
        Tiers::new(&[0.0]),
        Err(BudgetConfigError::TierOutOfRange { index: 0, .. })
    ));
    assert!(matches!(
        Tiers::new(&[0.9, 0.7]),
        Err(BudgetConfigError::TiersNotIncreasing { index: 1, .. })
    ));
    assert!(Tiers::new(&[]).unwrap().is_empty());
}

#[test]
fn a_hard_tier_must_be_in_the_half_open_unit_interval() {
    for bad in [0.0, -0.5, 1.01, f64::NAN, f64::INFINITY] {
        let err = Budget::builder()
            .process_limits(Limits::new().tokens(100))
            .hard_tier(bad)
            .build()
            .unwrap_err();
        assert!(
            matches!(err, BudgetConfigError::HardTierOutOfRange { .. }),
            "{bad}: {err:?}"
        );
    }
    assert_eq!(
        Budget::builder()
            .hard_tier(1.5)
            .build()
            .unwrap_err()
            .to_string(),
        "the hard tier is 1.5; it must be in (0, 1]"
    );
    for good in [0.9, 1.0, 0.000_001] {
        let budget = Budget::builder()
            .process_limits(Limits::new().tokens(100))
            .hard_tier(good)
            .build()
            .unwrap();
        assert!(budget.process().hard_tier_ppm().is_some(), "{good}");
    }
    assert_eq!(
        Budget::builder().build().unwrap().process().hard_tier_ppm(),
        None
    );
}

#[test]
fn error_rate_figures_must_be_sane() {
    assert!(matches!(
        ErrorRateTrigger::new(0.0, 10, 5),
        Err(BudgetConfigError::ErrorThresholdOutOfRange { .. })
    ));
    assert!(matches!(
        ErrorRateTrigger::new(1.5, 10, 5),
        Err(BudgetConfigError::ErrorThresholdOutOfRange { .. })
    ));
    assert!(ErrorRateTrigger::new(1.0, 10, 5).is_ok());
    assert!(matches!(
        ErrorRateTrigger::new(0.5, 0, 0),
        Err(BudgetConfigError::WindowOutOfRange { .. })
    ));
    assert!(matches!(
        ErrorRateTrigger::new(0.5, 10, 20),
        Err(BudgetConfigError::MinCallsOutOfRange { .. })
    ));
}

#[test]
fn a_zero_time_limit_is_rejected() {
    assert_eq!(
        KillSwitch::new(KillSwitchConfig::new().time_limit(Duration::ZERO)).unwrap_err(),
        BudgetConfigError::ZeroTimeLimit
    );
    assert_eq!(
        Budget::builder()
            .time_limit(Duration::ZERO)
            .build()
            .unwrap_err(),
        BudgetConfigError::ZeroTimeLimit
    );
}

#[test]
fn a_time_limit_too_long_to_represent_is_rejected() {
    assert!(matches!(
        KillSwitch::new(KillSwitchConfig::new().time_limit(Duration::MAX)),
        Err(BudgetConfigError::TimeLimitTooLong { .. })
    ));
}
