//! Every malformed scenario gives a typed error on the right line.

use overseer_conformance::{
    parse, ScenarioErrorKind, ScenarioErrorKind::*, Strategy, TermError, MAX_TERM_DEPTH,
    MAX_TREE_DEPTH,
};

const SUP_KEYS: &str = "intensity=, period=, auto_shutdown=, restart=, shutdown= or significant=";
const WORKER_KEYS: &str = "shutdown= or significant= (the restart type is a bare word)";
const TERM_START: &str = "an atom, an integer, '{' or '['";

fn bad_number(field: &'static str, value: &str, max: u64) -> ScenarioErrorKind {
    BadNumber {
        field,
        value: value.into(),
        max,
    }
}

fn bad_value(key: &'static str, value: &str, expected: &'static str) -> ScenarioErrorKind {
    BadValue {
        key,
        value: value.into(),
        expected,
    }
}

fn arity(
    action: &'static str,
    expected: &'static str,
    found: usize,
    usage: &'static str,
) -> ScenarioErrorKind {
    WrongArity {
        action,
        expected,
        found,
        usage,
    }
}

/// A nested chain of `depth` supervisors, each indented one space more than its parent.
fn nested_sups(depth: usize) -> String {
    let mut text = String::new();
    for level in 0..depth {
        text.push_str(&" ".repeat(level));
        text.push_str(&format!("sup s{level}\n"));
    }
    text
}

#[test]
fn malformed_inputs_give_typed_errors_with_line_numbers() {
    const U32: u64 = u32::MAX as u64;
    const SHUTDOWN_VALUES: &str = "brutal_kill, infinity or a non-negative number of milliseconds";
    const BOOL: &str = "true or false";
    let deep_term = format!(
        "sup root\n  child a\nexit a {}{}\n",
        "{".repeat(1000),
        "}".repeat(1000)
    );
    let deep_tree = nested_sups(10_000);

    let cases: Vec<(&str, &str, usize, ScenarioErrorKind)> = vec![
        // -- root and structure
        ("empty input", "", 1, NoRoot),
        ("only comments", "# nothing\n\n   # here\n", 3, NoRoot),
        ("actions without a tree", "crash a\n", 1, NoRoot),
        ("child before sup", "child a\nsup root\n", 1, OutsideSupervisor { keyword: "child" }),
        ("template before sup", "template\n", 1, OutsideSupervisor { keyword: "template" }),
        ("two roots", "sup root\n  child a\nsup other\n", 3, SecondRoot { name: "other".into(), root_line: 1 }),
        ("second root without a name", "sup root\nsup\n", 2, MissingName { keyword: "sup" }),
        ("child at the root's indentation", "  sup root\n  child a\n", 2, OutsideSupervisor { keyword: "child" }),
        ("siblings with different indentation", "sup root\n    child a\n  child b\n", 3,
            InconsistentIndent { sup: "root".into(), expected: 4, found: 2 }),
        ("dedent to no known level", "sup root\n  sup inner\n      child c\n    child d\n", 4,
            InconsistentIndent { sup: "inner".into(), expected: 6, found: 4 }),
        ("child under a worker", "sup root\n  child a\n    child b\n", 3, UnderWorker { worker_line: 2 }),
        ("sup under a template", "sup root simple_one_for_one\n  template\n    sup x\n", 3, UnderWorker { worker_line: 2 }),
        ("tab indentation", "sup root\n\tchild a\n", 2, Tab),
        ("tab separator", "sup root\n  child a\ncrash\ta\n", 3, Tab),
        ("tree 10,000 deep", &deep_tree, MAX_TREE_DEPTH + 1, TreeTooDeep { limit: MAX_TREE_DEPTH }),
        // -- names
        ("duplicate worker names", "sup root\n  child a\n  child a\n", 3, DuplicateName { name: "a".into(), first_line: 2 }),
        ("worker named like a supervisor", "sup root\n  sup inner\n    child root\n", 3,
            DuplicateName { name: "root".into(), first_line: 1 }),
        ("sup without a name", "sup\n", 1, MissingName { keyword: "sup" }),
        ("child without a name", "sup root\n  child\n", 2, MissingName { keyword: "child" }),
        ("uppercase name", "# c\n\nsup root\n\n  child A\n", 5, BadName { name: "A".into() }),
        ("name with a dash", "sup my-root\n", 1, BadName { name: "my-root".into() }),
        // -- sup options
        ("unknown strategy", "sup root one_for_none\n", 1, UnknownStrategy { word: "one_for_none".into() }),
        ("two strategies", "sup root one_for_one one_for_all\n", 1, DuplicateOption { option: "strategy" }),
        ("negative intensity", "sup root intensity=-1\n", 1, bad_number("intensity", "-1", U32)),
        ("signed intensity", "sup root intensity=+1\n", 1, bad_number("intensity", "+1", U32)),
        ("overflowing intensity", "sup root intensity=4294967296\n", 1, bad_number("intensity", "4294967296", U32)),
        ("empty intensity", "sup root intensity=\n", 1, bad_number("intensity", "", U32)),
        ("non-numeric period", "sup root period=five\n", 1, bad_number("period", "five", u64::MAX)),
        ("duplicate option", "sup root intensity=1 period=2 intensity=3\n", 1, DuplicateOption { option: "intensity" }),
        ("unknown sup option", "sup root max_restarts=3\n", 1,
            UnknownOption { key: "max_restarts".into(), keyword: "sup", expected: SUP_KEYS }),
        ("bad auto_shutdown", "sup root auto_shutdown=sometimes\n", 1,
            bad_value("auto_shutdown", "sometimes", "never, any_significant or all_significant")),
        ("bad sup restart", "sup root\n  sup s restart=always\n", 2,
            bad_value("restart", "always", "permanent, transient or temporary")),
        ("stubborn on a sup line", "sup root stubborn\n", 1, UnknownStrategy { word: "stubborn".into() }),
        // -- child and template options
        ("unknown child word", "sup root\n  child a forever\n", 2, UnknownWord { word: "forever".into(), keyword: "child" }),
        ("two restart types", "sup root\n  child a permanent transient\n", 2, DuplicateOption { option: "restart" }),
        ("stubborn twice", "sup root\n  child a stubborn stubborn\n", 2, DuplicateOption { option: "stubborn" }),
        ("restart= on a child", "sup root\n  child a restart=transient\n", 2,
            UnknownOption { key: "restart".into(), keyword: "child", expected: WORKER_KEYS }),
        ("bad shutdown word", "sup root\n  child a shutdown=soon\n", 2, bad_value("shutdown", "soon", SHUTDOWN_VALUES)),
        ("negative shutdown", "sup root\n  child a shutdown=-5\n", 2, bad_value("shutdown", "-5", SHUTDOWN_VALUES)),
        ("overflowing shutdown", "sup root\n  child a shutdown=18446744073709551616\n", 2,
            bad_number("shutdown", "18446744073709551616", u64::MAX)),
        ("shutdown with a unit", "sup root\n  child a shutdown=200ms\n", 2, bad_number("shutdown", "200ms", u64::MAX)),
        ("bad significant", "sup root\n  child a significant=yes\n", 2, bad_value("significant", "yes", BOOL)),
        ("stubborn with infinity", "sup root\n  child a stubborn shutdown=infinity\n", 2, StubbornInfinity),
        ("named template", "sup root simple_one_for_one\n  template w\n", 2, UnknownWord { word: "w".into(), keyword: "template" }),
        // -- simple_one_for_one
        ("template outside simple_one_for_one", "sup root rest_for_one\n  child a\n  template\n", 3,
            TemplateOutsideSimple { sup: "root".into(), strategy: Strategy::RestForOne }),
        ("two templates", "sup root simple_one_for_one\n  template\n  template transient\n", 3,
            DuplicateTemplate { sup: "root".into(), first_line: 2 }),
        ("simple_one_for_one with a child", "sup root simple_one_for_one\n  template\n  child a\n", 3,
            ChildUnderSimple { sup: "root".into() }),
        ("simple_one_for_one with a sup", "sup root simple_one_for_one\n  sup a\n", 2,
            ChildUnderSimple { sup: "root".into() }),
        ("nested simple_one_for_one without template", "sup root\n  sup pool simple_one_for_one\n  child a\n", 2,
            MissingTemplate { sup: "pool".into() }),
        ("root simple_one_for_one without template", "sup pool simple_one_for_one\n", 1,
            MissingTemplate { sup: "pool".into() }),
        ("template missing before the actions", "sup root\n  sup pool simple_one_for_one\nadd pool w\n", 2,
            MissingTemplate { sup: "pool".into() }),
        // -- actions
        ("tree line after an action", "sup root\n  child a\ncrash a\n  child b\n", 4, TreeAfterAction { first_action_line: 3 }),
        ("sup after an action", "sup root\n  child a\ncrash a\nadvance 1\nsup x\n", 5, TreeAfterAction { first_action_line: 3 }),
        ("unknown action", "sup root\n  child a\nexplode a\n", 3, UnknownCommand { word: "explode".into() }),
        ("unknown first word", "spawn root\n", 1, UnknownCommand { word: "spawn".into() }),
        ("indented action", "sup root\n  child a\n  crash a\n", 3, IndentedAction),
        ("crash without a name", "sup root\n  child a\ncrash\n", 3, arity("crash", "1 argument", 0, "crash NAME")),
        ("crash with two names", "sup root\n  child a\ncrash a b\n", 3, arity("crash", "1 argument", 2, "crash NAME")),
        ("kill without a name", "sup root\nkill\n", 2, arity("kill", "1 argument", 0, "kill NAME")),
        ("delete with two names", "sup root\ndelete a b\n", 2, arity("delete", "1 argument", 2, "delete NAME")),
        ("exit without a reason", "sup root\n  child a\nexit a\n", 3, arity("exit", "2 arguments", 1, "exit NAME REASON")),
        ("failstart without a count", "sup root\nfailstart a\n", 2, arity("failstart", "2 arguments", 1, "failstart NAME N")),
        ("negative failstart count", "sup root\nfailstart a -1\n", 2, bad_number("failstart count", "-1", U32)),
        ("advance without seconds", "sup root\nadvance\n", 2, arity("advance", "1 argument", 0, "advance SECONDS")),
        ("non-numeric advance", "sup root\nadvance soon\n", 2, bad_number("advance seconds", "soon", u64::MAX)),
        ("shutdown with an argument", "sup root\nshutdown now\n", 2, arity("shutdown", "no arguments", 1, "shutdown")),
        ("add without a child name", "sup root\nadd root\n", 2, arity("add", "at least 2 arguments", 1,
            "add SUP NAME [permanent|transient|temporary] [shutdown=...] [significant=true] [stubborn]")),
        ("add stubborn with infinity", "sup root\nadd root w stubborn shutdown=infinity\n", 2, StubbornInfinity),
        ("add with restart=", "sup root\nadd root w restart=transient\n", 2,
            UnknownOption { key: "restart".into(), keyword: "add", expected: WORKER_KEYS }),
        ("action naming a bad name", "sup root\ncrash Worker\n", 2, BadName { name: "Worker".into() }),
        // -- exit reasons
        ("unfinished term", "sup root\n  child a\nexit a {a,\n", 3, BadTerm(TermError::UnexpectedEnd { expected: TERM_START })),
        ("term with trailing input", "sup root\nexit a {a} b\n", 2, BadTerm(TermError::TrailingInput { found: 'b', column: 5 })),
        ("variable as a term", "sup root\nexit a Reason\n", 2,
            BadTerm(TermError::Unexpected { found: 'R', column: 1, expected: TERM_START })),
        ("comment cuts the term", "sup root\nexit a {a,#b}\n", 2, BadTerm(TermError::UnexpectedEnd { expected: TERM_START })),
        ("term nested 1000 deep", &deep_term, 3, BadTerm(TermError::TooDeep { limit: MAX_TERM_DEPTH })),
    ];

    assert!(cases.len() >= 30);
    let mut failures = Vec::new();
    for (what, input, line, kind) in cases {
        match parse(input) {
            Err(actual) if (actual.line, &actual.kind) == (line, &kind) => {}
            other => failures.push(format!(
                "{what}: expected Err(line {line}: {kind}), got {other:?}"
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn error_messages_name_the_line_and_the_problem() {
    let message = |input: &str| parse(input).unwrap_err().to_string();
    assert_eq!(
        message("sup root\n  sup inner one_for_none\n"),
        "line 2: unknown strategy 'one_for_none' \
         (expected one_for_one, one_for_all, rest_for_one or simple_one_for_one)"
    );
    assert_eq!(
        message("sup root intensity=-1\n"),
        "line 1: invalid intensity '-1' (expected a non-negative integer no larger than 4294967295)"
    );
    assert_eq!(
        message("sup root\n  child a stubborn shutdown=infinity\n"),
        "line 2: 'stubborn' cannot be combined with shutdown=infinity (the worker would never stop)"
    );
    assert_eq!(
        message("sup root\ncrash\n"),
        "line 2: 'crash' takes 1 argument, got 0 (usage: crash NAME)"
    );
    assert_eq!(
        message("sup root\nexit a {a,\n"),
        "line 2: invalid exit reason: unexpected end of term (expected an atom, an integer, '{' or '[')"
    );
    assert_eq!(
        message("sup root\n  template\n"),
        "line 2: 'template' is only allowed under a simple_one_for_one supervisor ('root' is one_for_one)"
    );
    assert_eq!(
        message("sup root\n  child a\n  child a\n"),
        "line 3: duplicate name 'a' (first used on line 2)"
    );
}

#[test]
fn a_tree_exactly_as_deep_as_the_limit_parses() {
    let scenario = parse(&nested_sups(MAX_TREE_DEPTH)).unwrap();
    let mut depth = 1;
    let mut sup = &scenario.root;
    while let Some(overseer_conformance::Node::Sup(child)) = sup.children.first() {
        depth += 1;
        sup = child;
    }
    assert_eq!(depth, MAX_TREE_DEPTH);
    // The derived, recursive impls cope with the deepest tree on a test thread's stack.
    let copy = scenario.clone();
    assert_eq!(copy, scenario);
    assert!(!format!("{scenario:?}").is_empty());
}

#[test]
fn crlf_line_endings_and_trailing_spaces_are_accepted() {
    let lf = parse("sup root   \n  child a  # c\ncrash a   \n").unwrap();
    let crlf = parse("sup root\r\n  child a\r\ncrash a\r").unwrap();
    assert_eq!(lf, crlf);
    assert_eq!(crlf.actions[0].echo, "crash a");
}

#[test]
fn zero_values_are_left_for_the_supervisor_library_to_judge() {
    let scenario =
        parse("sup root intensity=0 period=0\n  child a shutdown=0\nadvance 0\nfailstart a 0\n")
            .unwrap();
    assert_eq!((scenario.root.intensity, scenario.root.period_secs), (0, 0));
    assert_eq!(
        scenario.root.children[0].opts().shutdown,
        Some(overseer_conformance::ShutdownSpec::Millis(0))
    );
    assert_eq!(scenario.actions.len(), 2);
}

#[test]
fn semantic_rules_of_the_supervisor_library_are_not_enforced_here() {
    // OTP rejects significant=true on a permanent child and with auto_shutdown=never; that is
    // the supervisor library's typed error to give, not the parser's.
    let scenario = parse("sup root\n  child a permanent significant=true\n").unwrap();
    assert!(scenario.root.children[0].opts().significant);
}
