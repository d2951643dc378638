//! The recorded OTP scenarios (`tests/otp/`, copied from `otp/scenarios/`) parse, into the
//! expected structures.

use std::fs;
use std::path::PathBuf;

use overseer_conformance::{
    parse, Action, AutoShutdown, ChildOpts, Node, Restart, Scenario, ShutdownSpec, Strategy,
    SupNode, Term, WorkerNode,
};

fn scenarios_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/otp")
}

/// `(stem, .scn text, .trace text)` for every recorded scenario, sorted by name.
fn recorded() -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for entry in fs::read_dir(scenarios_dir()).expect("tests/otp exists") {
        let path = entry.expect("readable dir entry").path();
        if path.extension().is_some_and(|ext| ext == "scn") {
            let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
            let scn = fs::read_to_string(&path).unwrap();
            let trace = fs::read_to_string(path.with_extension("trace")).unwrap();
            out.push((stem, scn, trace));
        }
    }
    out.sort();
    out
}

fn load(prefix: &str) -> Scenario {
    let (stem, scn, _) = recorded()
        .into_iter()
        .find(|(stem, _, _)| stem.starts_with(prefix))
        .unwrap_or_else(|| panic!("no scenario {prefix}"));
    parse(&scn).unwrap_or_else(|e| panic!("{stem}: {e}"))
}

fn worker(name: &str, restart: Restart, line: usize) -> Node {
    Node::Worker(WorkerNode {
        name: name.into(),
        opts: ChildOpts {
            restart,
            ..ChildOpts::default()
        },
        stubborn: false,
        line,
    })
}

fn tuple(items: &[&str]) -> Term {
    Term::Tuple(items.iter().map(|a| Term::atom(*a)).collect())
}

#[test]
fn all_fourteen_recorded_scenarios_parse() {
    let all = recorded();
    assert_eq!(all.len(), 14, "expected the 14 recorded scenarios");
    for (stem, scn, _) in &all {
        let scenario = parse(scn).unwrap_or_else(|e| panic!("{stem}: {e}"));
        assert_eq!(scenario.root.name, "root", "{stem}");
        assert!(!scenario.actions.is_empty(), "{stem}");
        // FromStr agrees with parse.
        assert_eq!(scn.parse::<Scenario>().as_ref(), Ok(&scenario), "{stem}");
    }
}

#[test]
fn echoes_equal_the_action_lines_of_the_recorded_traces() {
    for (stem, scn, trace) in recorded() {
        let scenario = parse(&scn).unwrap();
        let echoes: Vec<&str> = scenario.actions.iter().map(|a| a.echo.as_str()).collect();
        let expected: Vec<&str> = trace
            .lines()
            .filter_map(|line| line.strip_prefix("> "))
            .collect();
        assert_eq!(echoes, expected, "{stem}");
    }
}

#[test]
fn exit_reasons_print_as_in_the_recorded_traces() {
    // Every `exit X R` is followed in its trace by `stop X R`, R printed by OTP.
    for (stem, scn, trace) in recorded() {
        for action in parse(&scn).unwrap().actions {
            if let Action::Exit { name, reason } = &action.action {
                let stop = format!("stop {name} {reason}");
                assert!(trace.contains(&stop), "{stem}: no `{stop}` in the trace");
            }
        }
    }
}

#[test]
fn scenario_01_nests_a_rest_for_one_supervisor_and_keeps_comments_out() {
    let scenario = load("01_");
    let inner = SupNode {
        name: "inner".into(),
        strategy: Strategy::RestForOne,
        intensity: 1,
        period_secs: 10,
        auto_shutdown: AutoShutdown::Never,
        opts: ChildOpts::default(),
        children: vec![
            worker("c", Restart::Permanent, 7),
            worker("d", Restart::Temporary, 8),
        ],
        template: None,
        line: 6,
    };
    let root = SupNode {
        name: "root".into(),
        strategy: Strategy::OneForOne,
        intensity: 3,
        period_secs: 5,
        auto_shutdown: AutoShutdown::Never,
        opts: ChildOpts::default(),
        children: vec![
            worker("a", Restart::Permanent, 4),
            worker("b", Restart::Transient, 5),
            Node::Sup(inner),
        ],
        template: None,
        line: 3,
    };
    assert_eq!(scenario.root, root);

    let actions: Vec<(&Action, &str, usize)> = scenario
        .actions
        .iter()
        .map(|a| (&a.action, a.echo.as_str(), a.line))
        .collect();
    assert_eq!(
        actions,
        vec![
            (&Action::Crash("a".into()), "crash a", 9),
            (&Action::Crash("c".into()), "crash c", 10),
            (&Action::Advance(6), "advance 6", 11),
            (&Action::Crash("c".into()), "crash c", 12),
            (&Action::Crash("c".into()), "crash c", 13),
        ]
    );
}

#[test]
fn scenario_16_reads_every_shutdown_spec_and_stubborn_flag() {
    let scenario = load("16_");
    assert_eq!(scenario.root.strategy, Strategy::OneForAll);
    assert_eq!((scenario.root.intensity, scenario.root.period_secs), (5, 5));
    let summary: Vec<(&str, Option<ShutdownSpec>, bool)> = scenario
        .root
        .children
        .iter()
        .map(|node| match node {
            Node::Worker(w) => (w.name.as_str(), w.opts.shutdown, w.stubborn),
            Node::Sup(s) => panic!("unexpected supervisor {}", s.name),
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("k", Some(ShutdownSpec::BrutalKill), true),
            ("s", Some(ShutdownSpec::Millis(200)), true),
            ("n", None, false),
            ("i", Some(ShutdownSpec::Infinity), false),
            ("x", None, false),
        ]
    );
    let actions: Vec<&Action> = scenario.actions.iter().map(|a| &a.action).collect();
    assert_eq!(
        actions,
        vec![
            &Action::Crash("x".into()),
            &Action::Terminate("s".into()),
            &Action::Terminate("k".into()),
        ]
    );
}

#[test]
fn scenario_17_reads_auto_shutdown_significance_and_the_sup_own_restart() {
    let scenario = load("17_");
    let [Node::Worker(a), Node::Sup(work)] = scenario.root.children.as_slice() else {
        panic!("unexpected root children: {:?}", scenario.root.children);
    };
    assert_eq!(a.name, "a");
    assert_eq!(work.name, "work");
    assert_eq!(work.auto_shutdown, AutoShutdown::AnySignificant);
    assert_eq!((work.intensity, work.period_secs), (5, 5));
    assert_eq!(
        work.opts,
        ChildOpts {
            restart: Restart::Transient,
            shutdown: None,
            significant: false,
        }
    );
    let children: Vec<(&str, &ChildOpts)> =
        work.children.iter().map(|n| (n.name(), n.opts())).collect();
    let opts = |restart, significant| ChildOpts {
        restart,
        shutdown: None,
        significant,
    };
    assert_eq!(
        children,
        vec![
            ("w1", &opts(Restart::Transient, true)),
            ("w2", &opts(Restart::Permanent, false)),
            ("w3", &opts(Restart::Temporary, true)),
        ]
    );
    let last = scenario.actions.last().unwrap();
    assert_eq!(
        last.action,
        Action::Exit {
            name: "w1".into(),
            reason: Term::atom("normal"),
        }
    );
    assert_eq!(
        (scenario.actions[2].action.clone(), scenario.actions[2].line),
        (Action::Restart("w1".into()), 14)
    );
}

#[test]
fn scenario_19_has_a_template_and_adds_children_at_run_time() {
    let scenario = load("19_");
    let [Node::Sup(pool)] = scenario.root.children.as_slice() else {
        panic!("unexpected root children: {:?}", scenario.root.children);
    };
    assert_eq!(pool.strategy, Strategy::SimpleOneForOne);
    assert_eq!((pool.intensity, pool.period_secs), (3, 5));
    assert!(pool.children.is_empty());
    assert_eq!(
        pool.template,
        Some(WorkerNode {
            name: String::new(),
            opts: ChildOpts {
                restart: Restart::Transient,
                shutdown: None,
                significant: false,
            },
            stubborn: false,
            line: 5,
        })
    );
    let add = |name: &str| Action::Add {
        sup: "pool".into(),
        name: name.into(),
        restart: None,
        shutdown: None,
        significant: false,
        stubborn: false,
    };
    let actions: Vec<Action> = scenario.actions.into_iter().map(|a| a.action).collect();
    assert_eq!(
        actions,
        vec![
            add("w1"),
            add("w2"),
            add("w3"),
            Action::Crash("w2".into()),
            Action::Exit {
                name: "w1".into(),
                reason: Term::atom("normal"),
            },
            Action::Terminate("w3".into()),
            Action::Restart("w2".into()),
            Action::Delete("w2".into()),
        ]
    );
}

#[test]
fn scenario_02_exit_reasons_are_terms() {
    let scenario = load("02_");
    let reasons: Vec<Term> = scenario
        .actions
        .iter()
        .filter_map(|a| match &a.action {
            Action::Exit { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        reasons,
        vec![
            Term::atom("normal"),
            Term::atom("shutdown"),
            tuple(&["shutdown", "done"]),
        ]
    );
    assert!(reasons.iter().all(Term::is_normal_exit));
}

#[test]
fn scenario_26_uses_the_otp_defaults() {
    let root = load("26_").root;
    assert_eq!(root.strategy, Strategy::OneForOne);
    assert_eq!((root.intensity, root.period_secs), (1, 5));
    assert_eq!(root.auto_shutdown, AutoShutdown::Never);
    assert!(root
        .children
        .iter()
        .all(|c| *c.opts() == ChildOpts::default()));
}

#[test]
fn scenario_21_keeps_start_order_at_every_level() {
    let root = load("21_").root;
    let names = |sup: &SupNode| {
        sup.children
            .iter()
            .map(|c| c.name().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&root), ["a", "inner", "b"]);
    let Node::Sup(inner) = &root.children[1] else {
        panic!()
    };
    assert_eq!(names(inner), ["c", "sub", "d"]);
    let Node::Sup(sub) = &inner.children[1] else {
        panic!()
    };
    assert_eq!(sub.strategy, Strategy::OneForAll);
    assert_eq!(names(sub), ["e", "f"]);
}

#[test]
fn exit_reason_with_spaces_is_joined_and_echoed_with_single_spaces() {
    let scenario = parse("sup root\n  child b\nexit   b  {shutdown,   done}   # why\n").unwrap();
    let line = &scenario.actions[0];
    assert_eq!(line.echo, "exit b {shutdown, done}");
    assert_eq!(
        line.action,
        Action::Exit {
            name: "b".into(),
            reason: tuple(&["shutdown", "done"]),
        }
    );
}

#[test]
fn a_quoted_atom_keeps_its_inner_spacing_while_the_echo_is_normalised() {
    let scenario = parse("sup root\nexit b {error, 'two  spaces'}\n").unwrap();
    let line = &scenario.actions[0];
    assert_eq!(line.echo, "exit b {error, 'two spaces'}");
    let Action::Exit { reason, .. } = &line.action else {
        panic!("not an exit: {line:?}");
    };
    assert_eq!(reason.to_string(), "{error,'two  spaces'}");
}

#[test]
fn options_print_in_their_erlang_spelling() {
    assert_eq!(Strategy::SimpleOneForOne.to_string(), "simple_one_for_one");
    assert_eq!(Strategy::RestForOne.as_str(), "rest_for_one");
    assert_eq!(AutoShutdown::AllSignificant.to_string(), "all_significant");
    assert_eq!(Restart::Temporary.to_string(), "temporary");
    assert_eq!(ShutdownSpec::BrutalKill.to_string(), "brutal_kill");
    assert_eq!(ShutdownSpec::Millis(200).to_string(), "200");
    assert_eq!(ShutdownSpec::Infinity.to_string(), "infinity");
    assert_eq!(Strategy::default(), Strategy::OneForOne);
    assert_eq!(
        ChildOpts::default(),
        ChildOpts {
            restart: Restart::Permanent,
            shutdown: None,
            significant: false,
        }
    );
}

#[test]
fn options_may_come_in_any_order_and_add_keeps_what_was_given() {
    let scenario = parse(
        "sup root period=7 auto_shutdown=all_significant rest_for_one intensity=2\n\
         \x20 sup inner significant=true shutdown=brutal_kill restart=temporary\n\
         \x20   child w stubborn shutdown=10 significant=true transient\n\
         add inner x significant=true temporary shutdown=infinity\n\
         add root y\n",
    )
    .unwrap();
    let root = &scenario.root;
    assert_eq!(
        (
            root.strategy,
            root.intensity,
            root.period_secs,
            root.auto_shutdown
        ),
        (Strategy::RestForOne, 2, 7, AutoShutdown::AllSignificant)
    );
    let [Node::Sup(inner)] = root.children.as_slice() else {
        panic!("{:?}", root.children);
    };
    assert_eq!(
        inner.opts,
        ChildOpts {
            restart: Restart::Temporary,
            shutdown: Some(ShutdownSpec::BrutalKill),
            significant: true,
        }
    );
    assert_eq!(
        inner.children,
        vec![Node::Worker(WorkerNode {
            name: "w".into(),
            opts: ChildOpts {
                restart: Restart::Transient,
                shutdown: Some(ShutdownSpec::Millis(10)),
                significant: true,
            },
            stubborn: true,
            line: 3,
        })]
    );
    let actions: Vec<&Action> = scenario.actions.iter().map(|a| &a.action).collect();
    assert_eq!(
        actions,
        vec![
            &Action::Add {
                sup: "inner".into(),
                name: "x".into(),
                restart: Some(Restart::Temporary),
                shutdown: Some(ShutdownSpec::Infinity),
                significant: true,
                stubborn: false,
            },
            &Action::Add {
                sup: "root".into(),
                name: "y".into(),
                restart: None,
                shutdown: None,
                significant: false,
                stubborn: false,
            },
        ]
    );
}
