//! The measured error rate of voting matches the theory, on seeded simulations.
//!
//! Each sample is independently wrong with probability `p`; all wrong samples give the same
//! wrong answer (the binary case the formulas describe). Over `trials` votes the count of
//! wrong decisions is binomial, so the measured rate must lie within 4 standard errors of
//! the theory: a wrong rule (deciding one sample late or early, counting a red flag) moves it
//! by far more. The seeds are fixed, so the runs are reproducible.

use overseer_semantic::red_flag::{RedFlag, RedFlagKind};
use overseer_semantic::vote::{first_to_ahead_error, majority_error, Vote, VoteRule, VoteState};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const RIGHT: u8 = 0;
const WRONG: u8 = 1;

/// What a run of votes did.
#[derive(Debug, Default)]
struct Tally {
    trials: u64,
    wrong: u64,
    exhausted: u64,
    samples: u64,
}

/// Runs `trials` votes under `rule`; a sample is a red flag with probability `flag_rate`,
/// otherwise wrong with probability `p` (red flags independent of correctness).
fn simulate(rule: VoteRule, p: f64, flag_rate: f64, trials: u64, seed: u64) -> Tally {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut tally = Tally {
        trials,
        ..Tally::default()
    };
    for _ in 0..trials {
        let mut vote = Vote::new(rule).unwrap();
        let state = loop {
            let state = if rng.random_bool(flag_rate) {
                vote.observe_red_flag(RedFlag::new(RedFlagKind::TooLong, "scripted"))
            } else if rng.random_bool(p) {
                vote.observe(WRONG)
            } else {
                vote.observe(RIGHT)
            };
            if state != VoteState::Continue {
                break state;
            }
        };
        tally.samples += u64::from(vote.samples_used());
        match state {
            VoteState::Decided { winner, .. } => tally.wrong += u64::from(winner == WRONG),
            _ => tally.exhausted += 1,
        }
    }
    tally
}

/// Asserts the measured wrong rate is within 4 standard errors of `expected`.
fn assert_matches_theory(name: &str, tally: &Tally, expected: f64) {
    let n = tally.trials as f64;
    let measured = tally.wrong as f64 / n;
    let standard_error = (expected * (1.0 - expected) / n).sqrt();
    let z = (measured - expected) / standard_error;
    eprintln!(
        "{name}: {} votes, {} wrong = {measured:.5} vs theory {expected:.5} (z = {z:+.2}), {:.2} samples per vote, {} exhausted",
        tally.trials,
        tally.wrong,
        tally.samples as f64 / n,
        tally.exhausted
    );
    assert!(
        z.abs() < 4.0,
        "{name}: measured {measured} vs theory {expected}, z = {z}"
    );
}

#[test]
fn first_to_ahead_by_2_at_p_20_percent_errs_as_gamblers_ruin_says() {
    // A cap of 1,000 samples is never reached in practice: the formula has no cap.
    let rule = VoteRule::first_to_ahead_by(2, 1_000);
    let tally = simulate(rule, 0.2, 0.0, 40_000, 1);
    assert_eq!(tally.exhausted, 0);
    assert_matches_theory("k=2 p=0.2", &tally, first_to_ahead_error(0.2, 2).unwrap());
}

#[test]
fn first_to_ahead_by_3_at_p_30_percent_errs_as_gamblers_ruin_says() {
    let rule = VoteRule::first_to_ahead_by(3, 1_000);
    let tally = simulate(rule, 0.3, 0.0, 40_000, 2);
    assert_eq!(tally.exhausted, 0);
    assert_matches_theory("k=3 p=0.3", &tally, first_to_ahead_error(0.3, 3).unwrap());
}

#[test]
fn majority_of_5_at_p_5_percent_errs_about_0_116_percent() {
    let tally = simulate(VoteRule::majority(5), 0.05, 0.0, 200_000, 3);
    assert_eq!(
        tally.exhausted, 0,
        "an odd majority of two answers never ties"
    );
    let expected = majority_error(0.05, 5).unwrap();
    assert!((expected - 0.00116).abs() < 0.00001);
    assert_matches_theory("majority of 5 p=0.05", &tally, expected);
    // Early stopping: fewer than 5 samples on average, same decisions.
    assert!(tally.samples < 5 * tally.trials);
}

#[test]
fn red_flags_cost_samples_but_do_not_change_the_error_rate() {
    // A quarter of the samples are red-flagged and drawn again; only votes count, so the
    // error rate is that of the vote without flags, at 4/3 of the samples.
    let rule = VoteRule::first_to_ahead_by(2, 1_000);
    let clean = simulate(rule, 0.2, 0.0, 40_000, 4);
    let flagged = simulate(rule, 0.2, 0.25, 40_000, 4);
    assert_matches_theory(
        "k=2 p=0.2, 25 % red flags",
        &flagged,
        first_to_ahead_error(0.2, 2).unwrap(),
    );
    let ratio = flagged.samples as f64 / clean.samples as f64;
    assert!((ratio - 4.0 / 3.0).abs() < 0.05, "samples ratio {ratio}");
}

#[test]
fn with_wrong_answers_spread_over_two_keys_the_binary_formula_is_an_upper_bound() {
    // Three answers: right (1 - p), and two wrong ones at p/2 each. The wrong votes split,
    // so a wrong answer leads by k less often than in the binary race.
    let (p, k, trials) = (0.3, 2, 40_000);
    let mut rng = StdRng::seed_from_u64(5);
    let mut wrong = 0u64;
    for _ in 0..trials {
        let mut vote = Vote::new(VoteRule::first_to_ahead_by(k, 1_000)).unwrap();
        let state = loop {
            let sample = if rng.random_bool(p) {
                1 + u8::from(rng.random_bool(0.5))
            } else {
                RIGHT
            };
            let state = vote.observe(sample);
            if state != VoteState::Continue {
                break state;
            }
        };
        if let VoteState::Decided { winner, .. } = state {
            wrong += u64::from(winner != RIGHT);
        }
    }
    let measured = wrong as f64 / f64::from(trials);
    let binary = first_to_ahead_error(p, k).unwrap();
    eprintln!("3 answers k={k} p={p}: measured {measured:.5}, binary formula {binary:.5}");
    let standard_error = (binary * (1.0 - binary) / f64::from(trials)).sqrt();
    assert!(measured < binary - 4.0 * standard_error);
}
