//! A scripted model with a seeded per-sample error rate and a share of malformed and
//! over-long answers, driving red flags, votes, validators and confidence tracking together.

use overseer_semantic::confidence::{ConfidenceConfig, ConfidenceTracker};
use overseer_semantic::red_flag::{RedFlagKind, RedFlagRules};
use overseer_semantic::validator::{all_of, from_predicate, parses_as, RejectionKind, Validator};
use overseer_semantic::vote::{first_to_ahead_error, AnswerKey, Vote, VoteRule, VoteState};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Deserialize;

const RIGHT: u32 = 42;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Answer {
    answer: u32,
}

/// What the scripted model may do, per sample.
#[derive(Debug, Clone, Copy)]
struct Script {
    wrong: f64,
    malformed: f64,
    over_long: f64,
    /// Whether every wrong sample gives the same wrong answer (else one of three).
    correlated: bool,
}

/// One sample's text, and what it was meant to be.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Right,
    Wrong,
    Malformed,
    OverLong,
}

struct ScriptedModel {
    rng: StdRng,
    script: Script,
}

impl ScriptedModel {
    fn new(seed: u64, script: Script) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            script,
        }
    }

    fn sample(&mut self) -> (String, Kind) {
        let s = self.script;
        let roll: f64 = self.rng.random();
        if roll < s.malformed {
            return ("the answer is probably 42".into(), Kind::Malformed);
        }
        if roll < s.malformed + s.over_long {
            let ramble = "let me think again about this step ".repeat(100);
            return (
                format!(r#"{{"answer": 7, "why": "{ramble}"}}"#),
                Kind::OverLong,
            );
        }
        if self.rng.random_bool(s.wrong) {
            // Independent wrong answers spread over 3 values; correlated ones all agree.
            let wrong = if s.correlated {
                13
            } else {
                10 + self.rng.random_range(0..3)
            };
            return (format!(r#"{{"answer": {wrong}}}"#), Kind::Wrong);
        }
        (format!(r#"{{"answer": {RIGHT}}}"#), Kind::Right)
    }
}

fn red_flags() -> RedFlagRules {
    RedFlagRules::new().max_tokens(200).parses_as::<Answer>()
}

/// One vote against the model: its final state, the red flags it drew, and the vote.
fn vote_once(model: &mut ScriptedModel, rule: VoteRule) -> (VoteState<String>, u32, Vote<String>) {
    let rules = red_flags();
    let key = AnswerKey::JsonPointer("/answer".into());
    let mut vote = Vote::new(rule).unwrap();
    let mut flagged = 0;
    loop {
        let (text, kind) = model.sample();
        let state = match rules.check(&text).and_then(|()| key.key(&text)) {
            Ok(answer) => {
                assert!(matches!(kind, Kind::Right | Kind::Wrong));
                vote.observe(answer)
            }
            Err(flag) => {
                assert!(matches!(kind, Kind::Malformed | Kind::OverLong), "{flag}");
                let expected = if kind == Kind::OverLong {
                    RedFlagKind::TooLong
                } else {
                    RedFlagKind::Parse
                };
                assert_eq!(flag.kind, expected);
                flagged += 1;
                vote.observe_red_flag(flag)
            }
        };
        if state != VoteState::Continue {
            return (state, flagged, vote);
        }
    }
}

#[test]
fn red_flagged_samples_are_never_votes_and_the_cap_holds() {
    let script = Script {
        wrong: 0.2,
        malformed: 0.1,
        over_long: 0.1,
        correlated: false,
    };
    let mut model = ScriptedModel::new(11, script);
    let rule = VoteRule::first_to_ahead_by(3, 12);
    let (mut decided, mut exhausted) = (0, 0);
    for _ in 0..2_000 {
        let (state, flagged, vote) = vote_once(&mut model, rule);
        assert_eq!(vote.red_flags().len() as u32, flagged);
        assert_eq!(vote.votes_counted() + flagged, vote.samples_used());
        assert!(vote.samples_used() <= 12);
        match state {
            VoteState::Decided { samples_used, .. } => {
                decided += 1;
                assert_eq!(samples_used, vote.samples_used());
            }
            VoteState::Exhausted { .. } => {
                exhausted += 1;
                assert_eq!(vote.samples_used(), 12);
            }
            _ => unreachable!(),
        }
    }
    assert!(decided > 1_800, "decided {decided}, exhausted {exhausted}");
}

#[test]
fn wrong_answers_that_agree_meet_the_binary_formula_and_spread_ones_beat_it() {
    let rule = VoteRule::first_to_ahead_by(2, 1_000);
    let wrong_rate = |correlated: bool, seed: u64| {
        let script = Script {
            wrong: 0.2,
            malformed: 0.05,
            over_long: 0.05,
            correlated,
        };
        let mut model = ScriptedModel::new(seed, script);
        let trials = 10_000;
        let wrong = (0..trials)
            .filter(|_| match vote_once(&mut model, rule).0 {
                VoteState::Decided { winner, .. } => winner != RIGHT.to_string(),
                _ => true,
            })
            .count();
        wrong as f64 / f64::from(trials)
    };
    let binary = first_to_ahead_error(0.2, 2).unwrap();
    let independent = wrong_rate(false, 12);
    let correlated = wrong_rate(true, 13);
    eprintln!("k=2 p=0.2: spread wrong answers {independent:.4}, all agreeing {correlated:.4}, binary theory {binary:.4}");
    // Spread wrong answers do better than the binary bound; agreeing ones meet it.
    assert!(independent < binary);
    let se = (binary * (1.0 - binary) / 10_000.0).sqrt();
    assert!((correlated - binary).abs() < 4.0 * se);
}

#[test]
fn a_validator_rejects_exactly_the_wrong_outputs() {
    let script = Script {
        wrong: 0.3,
        malformed: 0.1,
        over_long: 0.0,
        correlated: false,
    };
    let mut model = ScriptedModel::new(14, script);
    let validator = all_of::<str>()
        .and(parses_as::<Answer>())
        .and(from_predicate("the answer checks out", |text: &str| {
            serde_json::from_str::<Answer>(text).is_ok_and(|a| a.answer == RIGHT)
        }));
    for _ in 0..1_000 {
        let (text, kind) = model.sample();
        let verdict = validator.validate(&text).map_err(|r| r.kind);
        let expected = match kind {
            Kind::Right => Ok(()),
            Kind::Wrong => Err(RejectionKind::Predicate),
            Kind::Malformed | Kind::OverLong => Err(RejectionKind::Parse),
        };
        assert_eq!(verdict, expected, "{text}");
    }
}

#[test]
fn an_over_confident_agent_is_flagged_and_a_calibrated_one_is_not() {
    let mut tracker = ConfidenceTracker::new(ConfidenceConfig::default()).unwrap();
    let mut rng = StdRng::seed_from_u64(15);
    let mut first_flag = None;
    for i in 0..500 {
        // Both claim 95 %; the bluffer is right 60 % of the time, the honest one 95 %.
        let bluff_right = rng.random_bool(0.6);
        let honest_right = rng.random_bool(0.95);
        if let Some(flag) = tracker.record("bluffer", 0.95, bluff_right).unwrap() {
            first_flag.get_or_insert((i, flag));
        }
        assert_eq!(tracker.record("honest", 0.95, honest_right).unwrap(), None);
    }
    let (at, flag) = first_flag.expect("the bluffer is flagged");
    assert!(at >= 19, "not before 20 outputs (at {at})");
    assert!(flag.wrong_rate > 0.25);
    assert!(tracker.flag(&"bluffer").is_some());
    let calibration = tracker.calibration(&"bluffer").unwrap();
    let accuracy = calibration.buckets[9].accuracy().unwrap();
    assert!((accuracy - 0.6).abs() < 0.07, "{accuracy}");
}
