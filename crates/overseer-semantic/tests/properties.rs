//! Properties of the vote and the loop detector over arbitrary inputs.

use std::collections::HashMap;

use overseer_semantic::loop_detect::{
    Call, CallOutcome, CanonicalHash, LoopConfig, LoopDetector, LoopRule, LoopThresholds,
    LoopVerdict,
};
use overseer_semantic::red_flag::{RedFlag, RedFlagKind};
use overseer_semantic::vote::{Vote, VoteRule, VoteState};
use proptest::prelude::*;
use tokio::time::{Duration, Instant};

fn rule() -> impl Strategy<Value = VoteRule> {
    prop_oneof![
        (1u32..6, 0u32..20).prop_map(|(k, extra)| VoteRule::first_to_ahead_by(k, k + extra)),
        (1u32..10, 0u32..6).prop_map(|(n, extra)| VoteRule::Majority {
            samples: n,
            max_samples: n + extra
        }),
    ]
}

/// A sample: `None` is a red flag, `Some(answer)` a vote among four answers.
fn samples() -> impl Strategy<Value = Vec<Option<u8>>> {
    prop::collection::vec(prop::option::weighted(0.8, 0u8..4), 0..80)
}

fn max_other(counts: &HashMap<u8, u32>, winner: u8) -> u32 {
    counts
        .iter()
        .filter(|(key, _)| **key != winner)
        .map(|(_, count)| *count)
        .max()
        .unwrap_or(0)
}

proptest! {
    #[test]
    fn a_vote_never_exceeds_its_cap_and_never_counts_red_flags(rule in rule(), samples in samples()) {
        let mut vote = Vote::new(rule).unwrap();
        let mut counts: HashMap<u8, u32> = HashMap::new();
        let mut flags = 0u32;
        let mut state = VoteState::Continue;
        for sample in samples {
            let finished = state != VoteState::Continue;
            state = match sample {
                Some(answer) => {
                    if !finished { *counts.entry(answer).or_default() += 1; }
                    vote.observe(answer)
                }
                None => {
                    flags += u32::from(!finished);
                    vote.observe_red_flag(RedFlag::new(RedFlagKind::Parse, "bad"))
                }
            };
            prop_assert!(vote.samples_used() <= rule.worst_case_samples());
        }
        // Red flags are samples, never votes.
        let counted: u32 = vote.tally().map(|(_, count)| count).sum();
        prop_assert_eq!(counted, counts.values().sum::<u32>());
        prop_assert_eq!(vote.votes_counted(), counted);
        prop_assert_eq!(vote.red_flags().len() as u32, flags);
        prop_assert_eq!(vote.samples_used(), counted + flags);
        for (key, count) in vote.tally() {
            prop_assert_eq!(count, counts[key]);
        }
    }

    #[test]
    fn a_decided_winner_leads_by_k_and_the_vote_stops_as_soon_as_it_does(
        k in 1u32..6, extra in 0u32..30, answers in prop::collection::vec(0u8..3, 0..60)
    ) {
        let mut vote = Vote::new(VoteRule::first_to_ahead_by(k, k + extra)).unwrap();
        let mut counts: HashMap<u8, u32> = HashMap::new();
        for answer in answers {
            *counts.entry(answer).or_default() += 1;
            match vote.observe(answer) {
                VoteState::Continue => {
                    // Nobody leads by k yet.
                    for (&key, &count) in &counts {
                        prop_assert!(count < max_other(&counts, key) + k);
                    }
                }
                VoteState::Decided { winner, margin, samples_used } => {
                    let lead = counts[&winner] - max_other(&counts, winner);
                    prop_assert!(lead >= k);
                    prop_assert_eq!(margin, lead);
                    // It stopped on the first sample that made the lead: one vote earlier
                    // the lead was k - 1.
                    prop_assert_eq!(lead, k);
                    prop_assert_eq!(samples_used, counts.values().sum::<u32>());
                    break;
                }
                VoteState::Exhausted { .. } => {
                    prop_assert_eq!(vote.samples_used(), k + extra);
                    break;
                }
                _ => unreachable!("no other states"),
            }
        }
    }

    #[test]
    fn a_majority_decision_is_the_one_all_samples_would_give(
        n in 1u32..12, answers in prop::collection::vec(0u8..3, 12)
    ) {
        // Drawing all n votes and taking the strict plurality decides the same as the vote
        // that stops early.
        let full: &[u8] = &answers[..n as usize];
        let mut counts: HashMap<u8, u32> = HashMap::new();
        for &a in full { *counts.entry(a).or_default() += 1; }
        let best = counts.values().copied().max().unwrap_or(0);
        let leaders: Vec<u8> = counts.iter().filter(|(_, c)| **c == best).map(|(k, _)| *k).collect();

        let mut vote = Vote::new(VoteRule::majority(n)).unwrap();
        let mut state = VoteState::Continue;
        for &a in full {
            state = vote.observe(a);
            if state != VoteState::Continue { break; }
        }
        match state {
            VoteState::Decided { winner, .. } => {
                prop_assert_eq!(leaders.clone(), vec![winner]);
            }
            VoteState::Exhausted { margin, .. } => {
                prop_assert!(leaders.len() > 1);
                prop_assert_eq!(margin, 0);
            }
            _ => prop_assert!(false, "a majority of n votes ends within n samples"),
        }
    }
}

/// A call from a tiny alphabet, so that repeats are common.
fn calls() -> impl Strategy<Value = Vec<(u8, u8, u8, Option<u8>)>> {
    // (agent, target, args, output or failure)
    prop::collection::vec((0u8..2, 0u8..2, 0u8..2, prop::option::of(0u8..3)), 0..120)
}

proptest! {
    #[test]
    fn the_loop_detector_fires_exactly_when_a_count_reaches_its_threshold(
        repeats in 2u32..6, failures in 2u32..5, stall in 1u32..8, calls in calls()
    ) {
        let thresholds = LoopThresholds::default()
            .repeats(repeats)
            .identical_failures(failures)
            .no_progress(stall, None);
        let mut detector = LoopDetector::new(LoopConfig::new(thresholds)).unwrap();
        let now = Instant::now();
        // A reference model of the three counts.
        let mut last: HashMap<u8, (u8, u8)> = HashMap::new();
        let mut streak: HashMap<u8, (u32, u32)> = HashMap::new();
        let mut seen: HashMap<(u8, u8), (Vec<u8>, u32)> = HashMap::new();
        for (agent, target, args, output) in calls {
            let same = last.insert(agent, (target, args)) == Some((target, args));
            let entry = streak.entry(agent).or_default();
            *entry = if same {
                (entry.0 + 1, if output.is_none() { entry.1 + 1 } else { 0 })
            } else {
                (1, u32::from(output.is_none()))
            };
            let progress = seen.entry((agent, target)).or_default();
            match output {
                Some(o) if !progress.0.contains(&o) => { progress.0.push(o); progress.1 = 0; }
                _ => progress.1 += 1,
            }

            let agent_name = format!("agent{agent}");
            let target_name = format!("tool{target}");
            let call = Call::with_hash(&agent_name, &target_name, CanonicalHash(u64::from(args)));
            let outcome = output.map_or(CallOutcome::Failure, |o| CallOutcome::Output(CanonicalHash(u64::from(o))));
            let verdicts = detector.observe_call(now, &call, outcome);
            let fired = |rule: LoopRule| verdicts.iter().find(|v| v.rule() == rule);

            let (count, fails) = streak[&agent];
            prop_assert_eq!(fired(LoopRule::RepeatedCall).is_some(), count >= repeats);
            prop_assert_eq!(fired(LoopRule::RepeatedFailure).is_some(), fails >= failures);
            prop_assert_eq!(fired(LoopRule::NoProgress).is_some(), progress.1 >= stall);
            if let Some(LoopVerdict::RepeatedCall { count: c, threshold, .. }) = fired(LoopRule::RepeatedCall) {
                prop_assert_eq!((*c, *threshold), (count, repeats));
            }
        }
    }

    #[test]
    fn ping_pong_never_fires_below_its_threshold(
        threshold in 2u32..6, window_secs in 1u64..100,
        hops in prop::collection::vec((0u8..3, 0u8..3, 0u64..40), 0..60)
    ) {
        let thresholds = LoopThresholds::default()
            .ping_pong(threshold, Duration::from_secs(window_secs));
        let mut detector = LoopDetector::new(LoopConfig::new(thresholds)).unwrap();
        let mut now = Instant::now();
        // Per unordered pair: the alternating chain's times, as a model.
        let mut chains: HashMap<(u8, u8), (u8, Vec<Instant>)> = HashMap::new();
        for (from, to, gap) in hops {
            if from == to { continue; }
            now += Duration::from_secs(gap);
            let chain = chains.entry((from.min(to), from.max(to))).or_insert((u8::MAX, Vec::new()));
            if chain.0 == from { chain.1.clear(); }
            chain.0 = from;
            chain.1.push(now);
            chain.1.retain(|t| now - *t <= Duration::from_secs(window_secs));
            let expected = chain.1.len() as u32 >= threshold;
            let verdict = detector.observe_delegation(now, &format!("a{from}"), &format!("a{to}"), "task");
            prop_assert_eq!(verdict.is_some(), expected);
            if let Some(LoopVerdict::PingPong { hand_offs, within, .. }) = verdict {
                prop_assert!(hand_offs >= threshold);
                prop_assert!(within <= Duration::from_secs(window_secs));
            }
        }
    }
}
