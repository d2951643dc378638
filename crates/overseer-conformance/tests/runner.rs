//! The runner prints the trace conventions of `otp/FORMAT.md` that no recorded scenario happens
//! to exercise.

use overseer_conformance::runner::{run_text_with, Restarts};

const ALL_RESTARTS: [Restarts; 3] = [Restarts::NewActor, Restarts::InPlace, Restarts::InPlaceHere];

/// Runs `scenario` with every way of restarting workers and checks each trace is `expected`.
fn assert_trace(scenario: &str, expected: &str) {
    for restarts in ALL_RESTARTS {
        match run_text_with(scenario, restarts) {
            Ok(trace) => assert_eq!(trace, expected, "with {restarts:?}"),
            Err(error) => panic!("with {restarts:?}: the run failed: {error}"),
        }
    }
}

/// A dynamic child (under `simple_one_for_one`) has no child id in OTP: the API takes its pid,
/// and a child that is not running has none, so the recording printed "the action named a
/// worker that is not running" (`error not_running X`) instead of a `result` line.
#[test]
fn api_actions_on_a_dynamic_child_that_is_not_running_print_not_running() {
    let scenario = "\
sup root one_for_one intensity=5 period=5
  sup pool simple_one_for_one intensity=3 period=5
    template transient
add pool w1
add pool w2
exit w1 normal
terminate w1
restart w1
delete w1
terminate w2
terminate w2
restart w2
delete w2
";
    let expected = "\
start root
start pool
> add pool w1
start w1
result {ok,w1}
> add pool w2
start w2
result {ok,w2}
> exit w1 normal
stop w1 normal
> terminate w1
error not_running w1
> restart w1
error not_running w1
> delete w1
error not_running w1
> terminate w2
stop w2 shutdown
result ok
> terminate w2
error not_running w2
> restart w2
error not_running w2
> delete w2
error not_running w2
alive: pool root
";
    assert_trace(scenario, expected);
}

/// A temporary dynamic child that crashed is gone too; one that runs still gets the
/// supervisor's answer (`{error,simple_one_for_one}` for restart and delete, as recorded in
/// scenario 19).
#[test]
fn a_running_dynamic_child_still_gets_the_supervisors_answer() {
    let scenario = "\
sup pool simple_one_for_one intensity=3 period=5
  template temporary
add pool w1
add pool w2
crash w1
restart w1
restart w2
delete w2
terminate w1
";
    let expected = "\
start pool
> add pool w1
start w1
result {ok,w1}
> add pool w2
start w2
result {ok,w2}
> crash w1
stop w1 crash
> restart w1
error not_running w1
> restart w2
result {error,simple_one_for_one}
> delete w2
result {error,simple_one_for_one}
> terminate w1
error not_running w1
alive: pool w2
";
    assert_trace(scenario, expected);
}

/// The convention is the dynamic children's: a static child that is not running still gets
/// the supervisor's answer (scenario 10, `tests/otp_derived/b1_child_api_errors`).
#[test]
fn api_actions_on_a_static_child_that_is_not_running_print_the_result() {
    let scenario = "\
sup root one_for_one intensity=5 period=5
  child a transient
  child b temporary
exit a normal
terminate a
restart a
exit b normal
terminate b
restart b
delete b
";
    let expected = "\
start root
start a
start b
> exit a normal
stop a normal
> terminate a
result ok
> restart a
restart a
result {ok,a}
> exit b normal
stop b normal
> terminate b
result {error,not_found}
> restart b
result {error,not_found}
> delete b
result {error,not_found}
alive: a root
";
    assert_trace(scenario, expected);
}

/// A name given to `add` on a dynamic supervisor that is gone never ran: it is a dynamic child
/// that is not running, too.
#[test]
fn a_dynamic_child_that_never_started_is_not_running() {
    let scenario = "\
sup pool simple_one_for_one intensity=3 period=5
  template permanent
shutdown
add pool w1
terminate w1
";
    let expected = "\
start pool
> shutdown
stop pool shutdown
> add pool w1
result {error,noproc}
> terminate w1
error not_running w1
alive:
";
    assert_trace(scenario, expected);
}
