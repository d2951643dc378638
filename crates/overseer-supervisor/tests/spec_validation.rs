//! Invalid specs are rejected with typed errors before anything starts, never with a panic.

mod common;

use std::time::Duration;

use common::*;
use overseer_supervisor::{
    AutoShutdown, ChildId, ChildSpec, IdError, Restart, Shutdown, SpecError, SupervisionTree,
    SupervisorSpec, TreeError, MAX_TREE_DEPTH,
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
            |e| {
                matches!(e, SpecError::InvalidId { supervisor, error: IdError::Empty, .. }
                    if supervisor.as_str() == "root")
            },
        ),
        (
            "empty supervisor id",
            SupervisorSpec::one_for_one(""),
            |e| {
                matches!(
                    e,
                    SpecError::InvalidId {
                        error: IdError::Empty,
                        ..
                    }
                )
            },
        ),
        (
            "a child id with a slash",
            SupervisorSpec::one_for_one("root").child(worker("x/y")),
            |e| {
                matches!(e, SpecError::InvalidId { id, error: IdError::ForbiddenChar { found: '/', at: 1 }, .. }
                    if id.as_str() == "x/y")
            },
        ),
        (
            "a child unique in the tree placed twice",
            {
                let unique = worker("a").unique_in_tree(true);
                SupervisorSpec::one_for_one("root")
                    .child(ChildSpec::supervisor(
                        SupervisorSpec::one_for_one("left").child(unique.clone()),
                    ))
                    .child(ChildSpec::supervisor(
                        SupervisorSpec::one_for_one("right").child(unique),
                    ))
            },
            |e| matches!(e, SpecError::DuplicateInTree { child, .. } if child.as_str() == "a"),
        ),
        (
            "a child unique in the tree as a template",
            SupervisorSpec::dynamic("pool", worker("t").unique_in_tree(true)),
            |e| matches!(e, SpecError::UniqueTemplate { supervisor, .. } if supervisor.as_str() == "pool"),
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

/// The one rule for ids ([`ChildId::validate`]) holds for supervisors and children alike: no
/// `/` (two children could share a path), no whitespace or control characters, no quotes,
/// backslashes, braces, commas or `=` (they break log lines, traces and metric labels), not
/// empty, at most `ChildId::MAX_LEN` bytes.
#[test]
fn ids_that_would_break_paths_or_labels_are_rejected() {
    let bad = [
        ("team/alpha", '/'),
        ("a b", ' '),
        (" a", ' '),
        ("a\n", '\n'),
        ("tab\there", '\t'),
        ("bell\u{7}", '\u{7}'),
        ("quote\"d", '"'),
        ("it's", '\''),
        ("{brace}", '{'),
        ("back\\slash", '\\'),
        ("comma,", ','),
        ("eq=", '='),
        ("nbsp\u{a0}", '\u{a0}'),
        ("caf\u{e9}", '\u{e9}'),
    ];
    for (id, forbidden) in bad {
        let is_forbidden = |e: &SpecError| {
            matches!(e, SpecError::InvalidId { id: got, error: IdError::ForbiddenChar { found, .. }, .. }
                if got.as_str() == id && *found == forbidden)
        };
        let as_child = rejected(SupervisorSpec::one_for_one("root").child(worker(id)));
        assert!(is_forbidden(&as_child), "child id {id:?}: {as_child:?}");
        let as_supervisor = rejected(SupervisorSpec::one_for_one(id));
        assert!(
            is_forbidden(&as_supervisor),
            "supervisor {id:?}: {as_supervisor:?}"
        );
        let nested = rejected(
            SupervisorSpec::one_for_one("root")
                .child(ChildSpec::supervisor(SupervisorSpec::one_for_one(id))),
        );
        assert!(
            is_forbidden(&nested),
            "nested supervisor {id:?}: {nested:?}"
        );
    }
    let too_long = "x".repeat(ChildId::MAX_LEN + 1);
    assert!(matches!(
        rejected(SupervisorSpec::one_for_one(too_long)),
        SpecError::InvalidId {
            error: IdError::TooLong { .. },
            ..
        }
    ));
    let longest = "x".repeat(ChildId::MAX_LEN);
    let allowed = "Agent-1_v2.0:eu@west";
    SupervisorSpec::one_for_one(longest)
        .child(worker(allowed))
        .validate()
        .expect("valid ids");
}

/// With a `/` in an id, `root/x/y` could name the child `y` of `x`, or the child `x/y` of the
/// root. A path's depth comes from how it was built, so even a root whose id holds a `/` (which
/// a tree refuses) is at depth 0.
#[test]
fn a_path_knows_its_depth_without_reading_its_text() {
    use overseer_supervisor::ChildPath;
    let root = ChildPath::root(&ChildId::from("team/alpha"));
    assert_eq!(root.depth(), 0);
    assert!(root.is_root());
    assert_eq!(root.name(), "team/alpha");
    let child = root.join(&ChildId::from("x"));
    assert_eq!((child.depth(), child.name()), (1, "x"));
    assert_eq!(child.parent(), Some(root));
}

/// Children unique in the tree may share an id with plain children elsewhere, and the same
/// plain child may be placed under two supervisors (their paths differ).
#[test]
fn only_children_marked_unique_must_be_unique_in_the_tree() {
    let plain = worker("a");
    SupervisorSpec::one_for_one("root")
        .child(worker("a").unique_in_tree(true))
        .child(ChildSpec::supervisor(
            SupervisorSpec::one_for_one("left").child(plain.clone()),
        ))
        .child(ChildSpec::supervisor(
            SupervisorSpec::one_for_one("right").child(plain),
        ))
        .validate()
        .expect("valid");
}

#[tokio::test(start_paused = true)]
async fn a_zero_call_timeout_is_refused_before_anything_starts() {
    let error = SupervisionTree::builder(SupervisorSpec::one_for_one("root").child(worker("a")))
        .call_timeout(Duration::ZERO)
        .start()
        .await
        .expect_err("refused");
    assert_eq!(error, TreeError::ZeroCallTimeout);
}
