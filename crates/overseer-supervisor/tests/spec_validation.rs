//! Invalid specs are rejected with typed errors before anything starts, never with a panic.

mod common;

use std::time::Duration;

use common::*;
use overseer_supervisor::{
    AutoShutdown, ChildSpec, Restart, Shutdown, SpecError, SupervisionTree, SupervisorSpec,
    TreeError, MAX_TREE_DEPTH,
};

fn rejected(spec: SupervisorSpec) -> SpecError {
    spec.validate().expect_err("the spec is invalid")
}

/// A case: its name, the spec, and the check of the error it must get.
type Case = (&'static str, SupervisorSpec, fn(&SpecError) -> bool);

#[test]
fn each_invalid_spec_gets_its_own_typed_error() {
    let cases: Vec<Case> = vec![
        (
            "duplicate ids",
            SupervisorSpec::one_for_one("root")
                .child(worker("a"))
                .child(worker("a")),
            |e| matches!(e, SpecError::DuplicateChildId { child, .. } if child.as_str() == "a"),
        ),
        (
            "empty child id",
            SupervisorSpec::one_for_one("root").child(worker("")),
            |e| matches!(e, SpecError::EmptyId { .. }),
        ),
        (
            "empty supervisor id",
            SupervisorSpec::one_for_one(""),
            |e| matches!(e, SpecError::EmptyId { .. }),
        ),
        (
            "zero period",
            SupervisorSpec::one_for_one("root").intensity(1, Duration::ZERO),
            |e| matches!(e, SpecError::ZeroPeriod { .. }),
        ),
        (
            "fractional period",
            SupervisorSpec::one_for_one("root").intensity(1, Duration::from_millis(1500)),
            |e| {
                matches!(
                    e,
                    SpecError::FractionalPeriod {
                        period_ms: 1500,
                        ..
                    }
                )
            },
        ),
        (
            "significant and permanent",
            SupervisorSpec::one_for_one("root")
                .auto_shutdown(AutoShutdown::AnySignificant)
                .child(worker("a").significant(true)),
            |e| matches!(e, SpecError::SignificantPermanent { .. }),
        ),
        (
            "significant under auto_shutdown never",
            SupervisorSpec::one_for_one("root")
                .child(worker("a").restart(Restart::Transient).significant(true)),
            |e| matches!(e, SpecError::SignificantWithoutAutoShutdown { .. }),
        ),
        (
            "zero shutdown timeout",
            SupervisorSpec::one_for_one("root")
                .child(worker("a").shutdown(Shutdown::Timeout(Duration::ZERO))),
            |e| matches!(e, SpecError::ZeroShutdownTimeout { .. }),
        ),
        (
            "dynamic without a template",
            SupervisorSpec::new("pool", overseer_supervisor::Strategy::Dynamic),
            |e| matches!(e, SpecError::DynamicTemplateCount { count: 0, .. }),
        ),
        (
            "dynamic with two templates",
            SupervisorSpec::dynamic("pool", worker("t")).template(worker("u")),
            |e| matches!(e, SpecError::DynamicTemplateCount { count: 2, .. }),
        ),
        (
            "dynamic with static children",
            SupervisorSpec::dynamic("pool", worker("t")).child(worker("a")),
            |e| matches!(e, SpecError::DynamicWithStaticChildren { count: 1, .. }),
        ),
        (
            "template on a static supervisor",
            SupervisorSpec::one_for_one("root").template(worker("t")),
            |e| matches!(e, SpecError::TemplateWithoutDynamic { .. }),
        ),
        (
            "an invalid nested supervisor",
            SupervisorSpec::one_for_one("root").child(ChildSpec::supervisor(
                SupervisorSpec::rest_for_one("inner")
                    .child(worker("x"))
                    .child(worker("x")),
            )),
            |e| matches!(e, SpecError::DuplicateChildId { supervisor, .. } if supervisor.as_str() == "inner"),
        ),
    ];
    for (name, spec, expected) in cases {
        let error = rejected(spec);
        assert!(expected(&error), "{name}: got {error:?}");
        assert!(!error.to_string().is_empty());
    }
}

#[test]
fn a_huge_intensity_is_valid() {
    SupervisorSpec::one_for_one("root")
        .intensity(u32::MAX, Duration::from_secs(u64::from(u32::MAX)))
        .child(worker("a"))
        .validate()
        .expect("valid");
}

#[test]
fn a_tree_nested_deeper_than_the_limit_is_rejected() {
    let mut spec = SupervisorSpec::one_for_one("leaf");
    for level in 0..MAX_TREE_DEPTH {
        spec = SupervisorSpec::one_for_one(format!("s{level}")).child(ChildSpec::supervisor(spec));
    }
    assert!(matches!(rejected(spec), SpecError::TooDeep { .. }));
}

#[test]
fn a_spec_ten_thousand_deep_is_rejected_and_dropped_without_overflowing_the_stack() {
    let mut spec = SupervisorSpec::one_for_one("leaf");
    for level in 0..10_000 {
        spec = SupervisorSpec::one_for_one(format!("s{level}")).child(ChildSpec::supervisor(spec));
    }
    // Run on a thread with a small stack: validation and drop must both be iterative.
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || {
            assert!(matches!(spec.validate(), Err(SpecError::TooDeep { .. })));
            drop(spec);
        })
        .expect("thread starts")
        .join()
        .expect("no stack overflow");
}

#[tokio::test(start_paused = true)]
async fn starting_an_invalid_tree_returns_the_spec_error_and_starts_nothing() {
    let error = SupervisionTree::start(
        SupervisorSpec::one_for_one("root")
            .child(worker("a"))
            .child(worker("a")),
    )
    .await
    .expect_err("rejected");
    assert!(matches!(
        error,
        TreeError::InvalidSpec(SpecError::DuplicateChildId { .. })
    ));
}
