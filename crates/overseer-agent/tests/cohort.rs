//! Cohorts of asks under one fan-in barrier: all / any / quorum decide at the right moment and
//! not before, no cohort waits past its deadline, a crashing member is counted once, partial
//! results name every missing member, degraded results carry their defaults. Paused clock.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::yield_until;
use overseer_agent::fanout::{Missing, Settled};
use overseer_agent::retry::{Jitter, RetryPolicy};
use overseer_agent::{
    Agent, AgentContext, AgentError, AgentRef, AgentSpec, AskError, Cohort, CohortDecision,
    CohortError, CohortStep, OnDeadline, System, SystemEvent, Usage,
};
use overseer_breaker::{BreakerConfig, BreakerKey, BreakerRegistry, State};
use overseer_budget::{Budget, Dimension, Limits};
use overseer_supervisor::SupervisorSpec;
use tokio::sync::broadcast;
use tokio::time::Instant;

/// What a member does.
#[derive(Debug, Clone, Copy)]
enum Job {
    /// Answers `value` after `after`.
    Answer(u32, Duration),
    /// Fails after `after`.
    Fail(Duration),
    /// Reports usage, then panics after `after`.
    Crash(Duration),
    /// Never answers.
    Hang,
}

use Job::*;

/// Reserves 10 tokens per task, reports 5.
struct Worker;

impl Agent for Worker {
    type Task = Job;
    type Output = u32;

    fn task_type(_: &Job) -> &'static str {
        "work"
    }

    fn estimate(_: &Job) -> Usage {
        Usage::new(10, 0, 0)
    }

    async fn handle(&mut self, ctx: &mut AgentContext, job: Job) -> Result<u32, AgentError> {
        ctx.report_usage(Usage::new(5, 0, 0));
        match job {
            Answer(value, after) => {
                tokio::time::sleep(after).await;
                Ok(value)
            }
            Fail(after) => {
                tokio::time::sleep(after).await;
                Err(AgentError::failed("declined"))
            }
            Crash(after) => {
                tokio::time::sleep(after).await;
                panic!("member crashed")
            }
            Hang => std::future::pending().await,
        }
    }
}

/// Another agent type with the same output: a cohort mixes them.
struct Constant;

impl Agent for Constant {
    type Task = u32;
    type Output = u32;

    async fn handle(&mut self, _: &mut AgentContext, n: u32) -> Result<u32, AgentError> {
        Ok(n)
    }
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

struct Fixture {
    system: System,
    budget: Budget,
    workers: Vec<AgentRef<Worker>>,
    events: broadcast::Receiver<SystemEvent>,
}

impl Fixture {
    fn events(&mut self) -> Vec<SystemEvent> {
        std::iter::from_fn(|| self.events.try_recv().ok()).collect()
    }

    fn tokens(&self) -> (u64, u64) {
        let status = self.budget.status();
        let tokens = status.process.dimension(Dimension::Tokens);
        (tokens.committed, tokens.reserved)
    }
}

/// `n` worker agents `w0`.. (one task at a time each, so members of a cohort go to different
/// workers), an agent `constant`, a breaker that opens on the third failure in a row, and a
/// budget of 10,000 tokens.
async fn fixture(n: usize) -> Fixture {
    let breakers =
        BreakerRegistry::new(BreakerConfig::default().consecutive_failures(Some(3))).unwrap();
    let budget = Budget::builder()
        .process_limits(Limits::new().tokens(10_000))
        .build()
        .unwrap();
    let system = System::builder()
        .ask_timeout(Duration::from_secs(60))
        .breakers(breakers)
        .budget(budget.clone())
        .build()
        .unwrap();
    let events = system.subscribe();
    let mut root = SupervisorSpec::one_for_one("root").intensity(100, Duration::from_secs(1));
    for i in 0..n {
        root = root.child(
            system
                .agent(AgentSpec::new(format!("w{i}"), || Worker))
                .unwrap(),
        );
    }
    root = root.child(
        system
            .agent(AgentSpec::new("constant", || Constant))
            .unwrap(),
    );
    system.start(root).await.unwrap();
    let workers = (0..n)
        .map(|i| system.agent_ref::<Worker>(&format!("w{i}")).unwrap())
        .collect();
    Fixture {
        system,
        budget,
        workers,
        events,
    }
}

/// A cohort of `jobs`, member i asked of worker i.
fn cohort(base: Cohort<u32>, fixture: &Fixture, jobs: &[Job]) -> Cohort<u32> {
    jobs.iter()
        .zip(&fixture.workers)
        .fold(base, |cohort, (job, worker)| cohort.member(worker, *job))
}

#[tokio::test(start_paused = true)]
async fn all_decides_on_the_last_answer_and_not_before() {
    let f = fixture(3).await;
    let jobs = [
        Answer(1, secs(2.0)),
        Answer(2, secs(1.0)),
        Answer(3, secs(3.0)),
    ];
    let start = Instant::now();
    let outcome = cohort(Cohort::all(), &f, &jobs)
        .run_within(secs(10.0))
        .await
        .unwrap();
    assert_eq!(start.elapsed(), secs(3.0), "decided on the last answer");
    assert_eq!(outcome.decision, CohortDecision::Complete);
    assert_eq!(
        outcome.outputs().collect::<Vec<_>>(),
        vec![(0, &1), (1, &2), (2, &3)]
    );
    assert!(!outcome.degraded);
    assert!(outcome.missing.is_empty());
}

#[tokio::test(start_paused = true)]
async fn any_decides_on_the_first_answer_and_drops_the_rest() {
    let f = fixture(3).await;
    let jobs = [Answer(1, secs(2.0)), Fail(secs(0.5)), Answer(3, secs(1.0))];
    let start = Instant::now();
    let outcome = cohort(Cohort::any(), &f, &jobs)
        .run_within(secs(10.0))
        .await
        .unwrap();
    assert_eq!(start.elapsed(), secs(1.0), "decided on the first answer");
    assert_eq!(outcome.decision, CohortDecision::Any);
    assert_eq!(outcome.members[2].result, Settled::Ok(3));
    assert!(matches!(
        outcome.members[1].result,
        Settled::Failed(AskError::Failed { .. })
    ));
    assert_eq!(outcome.members[0].result, Settled::NotAnswered);
    assert_eq!(outcome.missing, vec![0, 1]);
}

#[tokio::test(start_paused = true)]
async fn a_quorum_decides_on_its_nth_answer_and_not_before() {
    let f = fixture(5).await;
    let jobs = [
        Fail(secs(0.5)),
        Answer(1, secs(1.0)),
        Answer(2, secs(2.0)),
        Hang,
        Answer(4, secs(3.0)),
    ];
    let start = Instant::now();
    let outcome = cohort(Cohort::quorum(3), &f, &jobs)
        .run_within(secs(10.0))
        .await
        .unwrap();
    assert_eq!(start.elapsed(), secs(3.0), "decided on the third answer");
    assert_eq!(outcome.decision, CohortDecision::Quorum);
    assert_eq!(outcome.answered(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_quorum_that_can_no_longer_be_reached_is_decided_at_once() {
    let f = fixture(4).await;
    let jobs = [Fail(secs(1.0)), Hang, Fail(secs(2.0)), Hang];
    let start = Instant::now();
    let outcome = cohort(Cohort::quorum(3), &f, &jobs)
        .run_within(secs(10.0))
        .await
        .unwrap();
    assert_eq!(start.elapsed(), secs(2.0), "decided on the second failure");
    assert_eq!(outcome.decision, CohortDecision::Impossible);

    let start = Instant::now();
    let failed = cohort(Cohort::quorum(3), &f, &jobs)
        .on_deadline(OnDeadline::Fail)
        .run_within(secs(10.0))
        .await
        .unwrap_err();
    assert_eq!(start.elapsed(), secs(2.0));
    let CohortError::Impossible { missing } = failed else {
        panic!("not impossible: {failed:?}");
    };
    assert_eq!(
        missing.iter().map(|m| m.index).collect::<Vec<_>>(),
        vec![0, 1, 2, 3]
    );
}

#[tokio::test(start_paused = true)]
async fn a_hanging_member_is_not_answered_at_the_deadline_and_the_cohort_never_waits_past_it() {
    let f = fixture(2).await;
    let jobs = [Answer(1, secs(1.0)), Hang];
    let start = Instant::now();
    let outcome = cohort(Cohort::all(), &f, &jobs)
        .run_within(secs(5.0))
        .await
        .unwrap();
    assert_eq!(start.elapsed(), secs(5.0), "returned at the deadline");
    assert_eq!(outcome.decision, CohortDecision::DeadlinePartial);
    assert_eq!(outcome.members[0].result, Settled::Ok(1));
    assert_eq!(outcome.members[1].result, Settled::NotAnswered);

    let start = Instant::now();
    let failed = cohort(
        Cohort::all(),
        &f,
        &[Answer(1, secs(1.0)), Answer(2, secs(1.0))],
    )
    .member(&f.workers[0], Hang)
    .on_deadline(OnDeadline::Fail)
    .run_within(secs(5.0))
    .await
    .unwrap_err();
    assert_eq!(start.elapsed(), secs(5.0));
    let CohortError::DeadlineReached { after, missing } = failed else {
        panic!("not a deadline: {failed:?}");
    };
    assert_eq!(after, secs(5.0));
    assert_eq!(missing.len(), 1);
    assert_eq!(missing[0].index, 2);
    assert_eq!(missing[0].agent.as_str(), "w0");
    assert_eq!(missing[0].error, None, "not answered, not failed");
}

#[tokio::test(start_paused = true)]
async fn partial_results_name_every_missing_member_and_why() {
    let f = fixture(4).await;
    let jobs = [
        Answer(1, secs(1.0)),
        Fail(secs(0.5)),
        Hang,
        Answer(2, secs(2.0)),
    ];
    let outcome = cohort(Cohort::quorum(2), &f, &jobs)
        .run_within(secs(10.0))
        .await
        .unwrap();
    assert_eq!(outcome.decision, CohortDecision::Quorum);
    assert_eq!(outcome.missing, vec![1, 2]);
    let missing = outcome.missing_members();
    assert_eq!(
        missing
            .iter()
            .map(|m| (
                m.index,
                m.agent.as_str(),
                m.error.as_ref().map(AskError::kind)
            ))
            .collect::<Vec<_>>(),
        vec![(1, "w1", Some("failed")), (2, "w2", None)]
    );
}

#[tokio::test(start_paused = true)]
async fn degraded_results_carry_their_defaults_and_say_so() {
    let f = fixture(3).await;
    let start = Instant::now();
    let outcome = Cohort::all()
        .member(&f.workers[0], Answer(1, secs(1.0)))
        .optional(&f.workers[1], Fail(secs(0.5)), 0)
        .optional(&f.workers[2], Answer(3, secs(2.0)), 0)
        .run_within(secs(10.0))
        .await
        .unwrap();
    assert_eq!(start.elapsed(), secs(2.0));
    assert_eq!(outcome.decision, CohortDecision::Complete);
    assert!(outcome.degraded);
    assert!(matches!(
        &outcome.members[1].result,
        Settled::Replaced {
            default: 0,
            why: Missing::Failed(AskError::Failed { .. })
        }
    ));
    assert_eq!(
        outcome.values().collect::<Vec<_>>(),
        vec![Some(&1), Some(&0), Some(&3)]
    );
    let missing = outcome.missing_members();
    assert_eq!(missing.len(), 1);
    assert!(missing[0].replaced);

    // An optional member still silent at the deadline is replaced too, and says so.
    let outcome = Cohort::all()
        .member(&f.workers[0], Answer(1, secs(1.0)))
        .optional(&f.workers[1], Hang, 7)
        .run_within(secs(5.0))
        .await
        .unwrap();
    assert_eq!(outcome.decision, CohortDecision::DeadlinePartial);
    assert!(outcome.degraded);
    assert_eq!(
        outcome.members[1].result,
        Settled::Replaced {
            default: 7,
            why: Missing::NotAnswered
        }
    );

    // A critical member's failure makes an `all` cohort impossible at once.
    let start = Instant::now();
    let outcome = Cohort::all()
        .member(&f.workers[0], Fail(secs(0.5)))
        .optional(&f.workers[1], Answer(2, secs(3.0)), 0)
        .run_within(secs(5.0))
        .await
        .unwrap();
    assert_eq!(start.elapsed(), secs(0.5));
    assert_eq!(outcome.decision, CohortDecision::Impossible);
}

#[tokio::test(start_paused = true)]
async fn a_crashing_member_is_counted_once_by_the_breaker_and_the_budget() {
    let mut f = fixture(2).await;
    let outcome = cohort(Cohort::all(), &f, &[Answer(1, secs(1.0)), Crash(secs(0.5))])
        .run_within(secs(10.0))
        .await
        .unwrap();
    assert_eq!(outcome.decision, CohortDecision::Impossible);
    assert!(matches!(
        outcome.members[1].result,
        Settled::Failed(AskError::Crashed { .. })
    ));
    // The crash is one failure in the breaker of (w1, work), one outcome in its window...
    let breaker = f
        .system
        .breakers()
        .unwrap()
        .get(&BreakerKey::new("w1", "work"))
        .unwrap()
        .snapshot();
    assert_eq!(breaker.state, State::Closed);
    assert_eq!(breaker.consecutive_failures, 1);
    assert_eq!(breaker.calls_in_window, 1);
    // ...and one reservation in the budget, settled once: at the decision (0.5 s) the crash
    // has committed the 5 tokens its handler reported and released its reservation; the
    // member dropped then (w0, whose handler runs on to 1 s) still holds its own 10.
    assert_eq!(f.tokens(), (5, 10));
    // On the paused clock: w0's handler ends at 1 s and settles as a dropped ask does.
    tokio::time::sleep(secs(0.5)).await;
    yield_until("every reservation settled", || f.tokens().1 == 0).await;
    assert_eq!(
        f.tokens(),
        (10, 0),
        "5 tokens reported by each of the two handlers"
    );
    // One ask event for the crashed member, with the id the cohort gave it.
    let asks: Vec<_> = f
        .events()
        .into_iter()
        .filter_map(|event| match event {
            SystemEvent::Ask(ask) if ask.agent.as_str() == "w1" => Some(ask),
            _ => None,
        })
        .collect();
    assert_eq!(asks.len(), 1);
    assert_eq!(asks[0].id, outcome.members[1].ask);
    assert_eq!(asks[0].outcome.kind(), Some("crashed"));
    // The agent restarted as usual and takes the next task.
    assert_eq!(f.workers[1].ask(Answer(9, secs(0.0))).await.unwrap(), 9);
}

#[tokio::test(start_paused = true)]
async fn the_barriers_events_link_to_each_members_ask() {
    let mut f = fixture(2).await;
    let outcome = cohort(
        Cohort::all(),
        &f,
        &[Answer(1, secs(1.0)), Answer(2, secs(2.0))],
    )
    .run_within(secs(10.0))
    .await
    .unwrap();
    let events = f.events();
    let ask_ids: Vec<_> = events
        .iter()
        .filter_map(|event| match event {
            SystemEvent::Ask(ask) => Some(ask.id),
            _ => None,
        })
        .collect();
    let cohort_events: Vec<_> = events
        .iter()
        .filter_map(|event| match event {
            SystemEvent::Cohort(cohort) => Some(cohort.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(cohort_events.len(), 3, "two members and the decision");
    for (member, event) in outcome.members.iter().zip(&cohort_events) {
        assert!(
            ask_ids.contains(&member.ask),
            "the member's ask was published"
        );
        assert_eq!(event.caused_by, Some(member.ask));
        assert_eq!(event.cohort, outcome.cohort);
        assert!(matches!(event.step, CohortStep::Member { index, .. } if index == member.index));
    }
    let decided = &cohort_events[2];
    assert_eq!(decided.id, outcome.cohort);
    assert_eq!(
        decided.caused_by,
        Some(outcome.members[1].ask),
        "the last answer decided it"
    );
    assert_eq!(
        decided.step,
        CohortStep::Decided {
            decision: CohortDecision::Complete,
            members: vec![outcome.members[0].ask, outcome.members[1].ask],
            answered: 2,
            missing: vec![],
        }
    );
}

#[tokio::test(start_paused = true)]
async fn without_cancel_rest_the_rest_is_awaited_up_to_the_deadline() {
    let f = fixture(3).await;
    let jobs = [Answer(1, secs(1.0)), Answer(2, secs(2.0)), Hang];
    let start = Instant::now();
    let outcome = cohort(Cohort::any(), &f, &jobs)
        .cancel_rest(false)
        .run_within(secs(5.0))
        .await
        .unwrap();
    assert_eq!(
        start.elapsed(),
        secs(5.0),
        "the hanging member was awaited to the deadline"
    );
    assert_eq!(outcome.decision, CohortDecision::Any);
    assert_eq!(
        outcome.members[1].result,
        Settled::Ok(2),
        "a later answer is kept"
    );
    assert_eq!(outcome.members[2].result, Settled::NotAnswered);
}

#[tokio::test(start_paused = true)]
async fn members_of_different_agent_types_with_one_output_type_mix() {
    let f = fixture(1).await;
    let constant = f.system.agent_ref::<Constant>("constant").unwrap();
    let outcome = Cohort::all()
        .member(&f.workers[0], Answer(1, secs(1.0)))
        .member(&constant, 2)
        .run_within(secs(5.0))
        .await
        .unwrap();
    assert_eq!(
        outcome.values().collect::<Vec<_>>(),
        vec![Some(&1), Some(&2)]
    );
    assert_eq!(outcome.members[1].agent.as_str(), "constant");
}

#[tokio::test(start_paused = true)]
async fn an_invalid_cohort_is_a_typed_error() {
    let f = fixture(2).await;
    let empty = Cohort::<u32>::all()
        .run_within(secs(1.0))
        .await
        .unwrap_err();
    assert!(matches!(empty, CohortError::Invalid(_)));
    for n in [0, 3] {
        let invalid = cohort(
            Cohort::quorum(n),
            &f,
            &[Answer(1, secs(0.0)), Answer(2, secs(0.0))],
        )
        .run_within(secs(1.0))
        .await
        .unwrap_err();
        assert!(matches!(invalid, CohortError::Invalid(_)), "{invalid}");
    }
}

/// Crashes on its first task, answers every later one.
struct CrashOnce {
    handled: Arc<AtomicU32>,
}

impl Agent for CrashOnce {
    type Task = u32;
    type Output = u32;

    fn task_type(_: &u32) -> &'static str {
        "work"
    }

    async fn handle(&mut self, _: &mut AgentContext, n: u32) -> Result<u32, AgentError> {
        if self.handled.fetch_add(1, Ordering::SeqCst) == 0 {
            panic!("first incarnation crashes");
        }
        Ok(n)
    }
}

#[tokio::test(start_paused = true)]
async fn a_member_whose_agent_crashes_is_retried_by_its_policy_and_answers_once() {
    let breakers =
        BreakerRegistry::new(BreakerConfig::default().consecutive_failures(Some(3))).unwrap();
    let system = System::builder().breakers(breakers).build().unwrap();
    let handled = Arc::new(AtomicU32::new(0));
    let h = Arc::clone(&handled);
    let policy = RetryPolicy::builder().jitter(Jitter::None).build().unwrap();
    let spec = AgentSpec::new("flaky", move || CrashOnce {
        handled: Arc::clone(&h),
    })
    .retry(policy);
    let root = SupervisorSpec::one_for_one("root")
        .intensity(100, Duration::from_secs(1))
        .child(system.agent(spec).unwrap())
        .child(
            system
                .agent(AgentSpec::new("constant", || Constant))
                .unwrap(),
        );
    system.start(root).await.unwrap();
    let mut events = system.subscribe();
    let flaky = system.agent_ref::<CrashOnce>("flaky").unwrap();
    let constant = system.agent_ref::<Constant>("constant").unwrap();
    let outcome = Cohort::all()
        .member(&flaky, 1)
        .member(&constant, 2)
        .run_within(secs(10.0))
        .await
        .unwrap();
    assert_eq!(outcome.decision, CohortDecision::Complete);
    assert_eq!(
        outcome.values().collect::<Vec<_>>(),
        vec![Some(&1), Some(&2)]
    );
    assert_eq!(
        handled.load(Ordering::SeqCst),
        2,
        "the crash, then the retry"
    );
    // The crash is one failure of the breaker, the retry's answer one success.
    let breaker = system
        .breakers()
        .unwrap()
        .get(&BreakerKey::new("flaky", "work"))
        .unwrap()
        .snapshot();
    assert_eq!(
        (breaker.calls_in_window, breaker.failures_in_window),
        (2, 1)
    );
    assert_eq!(breaker.consecutive_failures, 0);
    // The member's ask id names its first attempt's ask event: the cohort's events link to it.
    let flaky_asks: Vec<_> = std::iter::from_fn(|| events.try_recv().ok())
        .filter_map(|event| match event {
            SystemEvent::Ask(ask) if ask.agent.as_str() == "flaky" => Some(ask.id),
            _ => None,
        })
        .collect();
    assert_eq!(flaky_asks.len(), 2, "two attempts: {flaky_asks:?}");
    assert_eq!(flaky_asks[0], outcome.members[0].ask);
}

/// The instant a cohort must decide at, from its members' behaviours: the first end (in time
/// order) after which the goal is reached or impossible, else the deadline; an end at or past
/// the deadline does not count.
fn expected_decision(mode: &str, quorum: usize, jobs: &[Job], deadline: Duration) -> Duration {
    let mut ends: Vec<(Duration, bool)> = jobs
        .iter()
        .filter_map(|job| match *job {
            Answer(_, at) => Some((at, true)),
            Fail(at) | Crash(at) => Some((at, false)),
            Hang => None,
        })
        .filter(|(at, _)| *at < deadline)
        .collect();
    ends.sort_by_key(|(at, _)| *at);
    let n = jobs.len();
    let (mut answered, mut failed) = (0, 0);
    for (at, ok) in ends {
        if ok {
            answered += 1;
        } else {
            failed += 1;
        }
        let settled = match mode {
            "all" => answered == n || failed > 0,
            "any" => answered > 0 || failed == n,
            _ => answered >= quorum || n - failed < quorum,
        };
        if settled {
            return at;
        }
    }
    deadline
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

    #[test]
    fn no_cohort_waits_past_its_deadline_and_each_decides_when_its_rule_says(
        behaviours in proptest::collection::vec((0u8..4, 1u64..30), 1..5),
        mode in 0u8..3,
        quorum_seed in 0usize..5,
        deadline_tenths in 5u64..25,
    ) {
        let jobs: Vec<Job> = behaviours
            .iter()
            .map(|&(kind, tenths)| {
                let at = Duration::from_millis(100 * tenths);
                match kind {
                    0 => Answer(1, at),
                    1 => Fail(at),
                    2 => Crash(at),
                    _ => Hang,
                }
            })
            .collect();
        let quorum = quorum_seed % jobs.len() + 1;
        let deadline = Duration::from_millis(100 * deadline_tenths);
        let (name, base) = match mode {
            0 => ("all", Cohort::all()),
            1 => ("any", Cohort::any()),
            _ => ("quorum", Cohort::quorum(quorum)),
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap();
        let elapsed = runtime.block_on(async {
            let f = fixture(jobs.len()).await;
            let start = Instant::now();
            let outcome = cohort(base, &f, &jobs).run_within(deadline).await;
            let elapsed = start.elapsed();
            assert!(outcome.is_ok(), "{outcome:?}");
            f.system.shutdown(Duration::from_secs(5)).await.unwrap();
            elapsed
        });
        proptest::prop_assert!(elapsed <= deadline, "waited {elapsed:?} past {deadline:?}");
        proptest::prop_assert_eq!(elapsed, expected_decision(name, quorum, &jobs, deadline));
    }
}
