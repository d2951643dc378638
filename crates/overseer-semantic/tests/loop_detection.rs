//! Loops, ping-pong and stalls are detected at their thresholds and not before, on a paused
//! tokio clock.

use overseer_semantic::loop_detect::{
    Call, CallOutcome, LoopConfig, LoopDetector, LoopRule, LoopThresholds, LoopVerdict,
    StallMeasure, TokenRate,
};
use serde_json::json;
use tokio::time::{advance, Duration, Instant};

fn detector() -> LoopDetector {
    LoopDetector::new(LoopConfig::default()).unwrap()
}

fn rules(verdicts: &[LoopVerdict]) -> Vec<LoopRule> {
    verdicts.iter().map(LoopVerdict::rule).collect()
}

#[tokio::test(start_paused = true)]
async fn the_same_call_is_a_loop_at_the_fifth_time_in_a_row_not_the_fourth() {
    let mut d = detector();
    let call = Call::new("researcher", "web_search", &json!({"q": "rust", "page": 1}));
    // The same arguments with the keys in another order are the same call.
    let reordered = Call::new(
        "researcher",
        "web_search",
        &json!({"page": 1.0, "q": "rust"}),
    );
    for i in 0..4 {
        let c = if i % 2 == 0 { &call } else { &reordered };
        // A new output each time: progress, so only the repeat rule is in play.
        let out = CallOutcome::output(&json!({ "result": i }));
        assert!(
            d.observe_call(Instant::now(), c, out).is_empty(),
            "call {i}"
        );
        advance(Duration::from_secs(1)).await;
    }
    let verdicts = d.observe_call(Instant::now(), &call, CallOutcome::output_text("v"));
    assert_eq!(rules(&verdicts), [LoopRule::RepeatedCall]);
    let text = verdicts[0].to_string();
    assert!(text.contains("5 times in a row (threshold 5)"), "{text}");
}

#[tokio::test(start_paused = true)]
async fn another_call_in_between_breaks_the_streak() {
    let mut d = detector();
    let a = Call::new("r", "search", &json!({"q": "a"}));
    let b = Call::new("r", "search", &json!({"q": "b"}));
    for i in 0..20 {
        let call = if i % 4 == 3 { &b } else { &a };
        let out = CallOutcome::output(&json!(i));
        assert!(d.observe_call(Instant::now(), call, out).is_empty());
    }
}

#[tokio::test(start_paused = true)]
async fn three_identical_failures_trip_before_the_repeat_rule() {
    let mut d = detector();
    let call = Call::new("coder", "run_tests", &json!({"path": "src/"}));
    assert!(d
        .observe_call(Instant::now(), &call, CallOutcome::Failure)
        .is_empty());
    assert!(d
        .observe_call(Instant::now(), &call, CallOutcome::Failure)
        .is_empty());
    let verdicts = d.observe_call(Instant::now(), &call, CallOutcome::Failure);
    assert_eq!(rules(&verdicts), [LoopRule::RepeatedFailure]);
    // A success resets the failure count but not the repeat count.
    let ok = CallOutcome::output_text("passed");
    assert!(d.observe_call(Instant::now(), &call, ok).is_empty());
    let verdicts = d.observe_call(Instant::now(), &call, CallOutcome::output_text("passed"));
    assert_eq!(rules(&verdicts), [LoopRule::RepeatedCall]);
}

#[tokio::test(start_paused = true)]
async fn thresholds_are_per_target() {
    let config = LoopConfig::default().target(
        "poll_status",
        LoopThresholds::default().repeats(30).no_progress(30, None),
    );
    let mut d = LoopDetector::new(config).unwrap();
    let poll = Call::new("watcher", "poll_status", &json!({"job": 7}));
    for _ in 0..29 {
        let out = CallOutcome::output_text("running");
        assert!(d.observe_call(Instant::now(), &poll, out).is_empty());
        advance(Duration::from_secs(5)).await;
    }
    let verdicts = d.observe_call(Instant::now(), &poll, CallOutcome::output_text("running"));
    assert_eq!(rules(&verdicts), [LoopRule::RepeatedCall]);
    // The first "running" was new: the 31st call is the 30th without a new output.
    let verdicts = d.observe_call(Instant::now(), &poll, CallOutcome::output_text("running"));
    assert_eq!(
        rules(&verdicts),
        [LoopRule::RepeatedCall, LoopRule::NoProgress]
    );
    // Other targets keep the defaults.
    let search = Call::new("watcher", "search", &json!({"q": "x"}));
    for _ in 0..4 {
        assert!(
            d.observe_call(Instant::now(), &search, CallOutcome::Failure)
                .len()
                <= 1
        );
    }
    let verdicts = d.observe_call(Instant::now(), &search, CallOutcome::Failure);
    assert!(rules(&verdicts).contains(&LoopRule::RepeatedCall));
}

#[tokio::test(start_paused = true)]
async fn ping_pong_is_detected_at_the_fourth_hand_off_within_the_window() {
    let mut d = detector();
    let hops = [
        ("planner", "critic"),
        ("critic", "planner"),
        ("planner", "critic"),
    ];
    for (from, to) in hops {
        assert_eq!(d.observe_delegation(Instant::now(), from, to, "plan"), None);
        advance(Duration::from_secs(30)).await;
    }
    let verdict = d
        .observe_delegation(Instant::now(), "critic", "planner", "plan")
        .expect("the fourth hand-off");
    match &verdict {
        LoopVerdict::PingPong {
            first,
            second,
            hand_offs,
            threshold,
            within,
            ..
        } => {
            assert_eq!((first.as_str(), second.as_str()), ("planner", "critic"));
            assert_eq!((*hand_offs, *threshold), (4, 4));
            assert_eq!(*within, Duration::from_secs(90));
        }
        other => panic!("not a ping-pong: {other:?}"),
    }
    assert!(verdict.to_string().contains("4 times"), "{verdict}");
}

#[tokio::test(start_paused = true)]
async fn slow_hand_offs_outside_the_window_are_not_ping_pong() {
    let mut d = detector();
    for i in 0..10 {
        let (from, to) = if i % 2 == 0 { ("a", "b") } else { ("b", "a") };
        assert_eq!(
            d.observe_delegation(Instant::now(), from, to, "t"),
            None,
            "hop {i}"
        );
        // Four hand-offs span 3 × 101 s, more than the 5-minute window.
        advance(Duration::from_secs(101)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn delegating_the_same_way_twice_is_not_ping_pong() {
    let mut d = detector();
    for (from, to) in [("a", "b"), ("b", "a"), ("b", "a"), ("a", "b"), ("b", "a")] {
        assert_eq!(d.observe_delegation(Instant::now(), from, to, "t"), None);
    }
    // b→a, a→b, b→a, a→b: four alternations since the repeat.
    assert!(d
        .observe_delegation(Instant::now(), "a", "b", "t")
        .is_some());
}

#[tokio::test(start_paused = true)]
async fn no_new_output_for_8_calls_is_a_stall_not_at_7() {
    let mut d = detector();
    // Different arguments each time (no repeat), the same two pages back.
    for i in 0..9u32 {
        let call = Call::new("reader", "fetch", &json!({"url": format!("https://x/{i}")}));
        let page = CallOutcome::output_text(if i % 2 == 0 { "page A" } else { "page B" });
        let verdicts = d.observe_call(Instant::now(), &call, page);
        // Calls 0 and 1 brought new pages; call i > 1 is the (i − 1)-th without.
        assert!(verdicts.is_empty(), "call {i}: {verdicts:?}");
    }
    let call = Call::new("reader", "fetch", &json!({"url": "https://x/9"}));
    let verdicts = d.observe_call(Instant::now(), &call, CallOutcome::output_text("page A"));
    match verdicts.as_slice() {
        [LoopVerdict::NoProgress {
            calls,
            measure,
            call_threshold,
            ..
        }] => {
            assert_eq!(
                (*calls, *measure, *call_threshold),
                (8, StallMeasure::Calls, 8)
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn ten_minutes_without_a_new_output_is_a_stall() {
    let mut d = detector();
    let first = Call::new("analyst", "query", &json!({"sql": "select 1"}));
    assert!(d
        .observe_call(Instant::now(), &first, CallOutcome::output_text("1"))
        .is_empty());
    advance(Duration::from_secs(599)).await;
    let second = Call::new("analyst", "query", &json!({"sql": "select 1 -- again"}));
    assert!(d
        .observe_call(Instant::now(), &second, CallOutcome::Failure)
        .is_empty());
    advance(Duration::from_secs(1)).await;
    let third = Call::new("analyst", "query", &json!({"sql": "select 1 -- once more"}));
    let verdicts = d.observe_call(Instant::now(), &third, CallOutcome::Failure);
    match verdicts.as_slice() {
        [LoopVerdict::NoProgress {
            calls,
            elapsed,
            measure,
            ..
        }] => {
            assert_eq!(
                (*calls, *elapsed, *measure),
                (2, Duration::from_secs(600), StallMeasure::Time)
            );
        }
        other => panic!("{other:?}"),
    }
    // A new output is progress again.
    let fourth = Call::new("analyst", "query", &json!({"sql": "select 2"}));
    assert!(d
        .observe_call(Instant::now(), &fourth, CallOutcome::output_text("2"))
        .is_empty());
}

#[tokio::test(start_paused = true)]
async fn agents_are_watched_apart_and_can_be_forgotten() {
    let mut d = detector();
    let a = Call::new("a", "search", &json!({}));
    let b = Call::new("b", "search", &json!({}));
    for i in 0..4 {
        assert!(d
            .observe_call(Instant::now(), &a, CallOutcome::output(&json!(i)))
            .is_empty());
        assert!(d
            .observe_call(Instant::now(), &b, CallOutcome::output(&json!(i)))
            .is_empty());
    }
    d.forget_agent("a");
    assert!(d
        .observe_call(Instant::now(), &a, CallOutcome::output(&json!(9)))
        .is_empty());
    assert!(!d
        .observe_call(Instant::now(), &b, CallOutcome::output(&json!(9)))
        .is_empty());
}

#[test]
fn unusable_thresholds_are_typed_errors() {
    for t in [
        LoopThresholds::default().repeats(1),
        LoopThresholds::default().identical_failures(0),
        LoopThresholds::default().ping_pong(1, Duration::from_secs(1)),
        LoopThresholds::default().ping_pong(3, Duration::ZERO),
        LoopThresholds::default().no_progress(0, None),
        LoopThresholds::default().no_progress(3, Some(Duration::ZERO)),
        LoopThresholds::default()
            .no_progress_tokens(Some(TokenRate::new(0, Duration::from_secs(1)))),
        LoopThresholds::default().no_progress_tokens(Some(TokenRate::new(10, Duration::ZERO))),
    ] {
        assert!(LoopDetector::new(LoopConfig::new(t)).is_err(), "{t:?}");
        assert!(LoopDetector::new(LoopConfig::default().target("x", t)).is_err());
    }
}

/// A model call with its own prompt (never a repeated call) that spent `tokens`.
fn model_call(i: u32, tokens: u64) -> Call<'static> {
    Call::new("drafter", "model", &json!({"prompt": i})).spending(tokens)
}

#[tokio::test(start_paused = true)]
async fn tokens_spent_fast_without_a_new_output_are_a_stall_at_the_threshold_not_before() {
    let mut d = detector();
    let same = CallOutcome::output_text("the same draft");
    // The first call brings a new output: its tokens are progress.
    assert!(d
        .observe_call(Instant::now(), &model_call(0, 90_000), same)
        .is_empty());
    // Then 40k + 40k tokens for nothing new: 80k, under the default 100k a minute.
    for i in 1..=2 {
        advance(Duration::from_secs(10)).await;
        let verdicts = d.observe_call(Instant::now(), &model_call(i, 40_000), same);
        assert!(verdicts.is_empty(), "call {i}: {verdicts:?}");
    }
    advance(Duration::from_secs(10)).await;
    let verdicts = d.observe_call(Instant::now(), &model_call(3, 20_000), same);
    match verdicts.as_slice() {
        [LoopVerdict::TokenVelocity {
            tokens,
            calls,
            within,
            threshold,
            ..
        }] => {
            assert_eq!((*tokens, *calls), (100_000, 3));
            assert_eq!(*within, Duration::from_secs(20));
            assert_eq!(*threshold, TokenRate::new(100_000, Duration::from_secs(60)));
        }
        other => panic!("{other:?}"),
    }
    assert!(verdicts[0].to_string().contains("spent 100000 tokens"));
    // A new output clears the count.
    let fresh = CallOutcome::output_text("a new draft");
    assert!(d
        .observe_call(Instant::now(), &model_call(4, 50_000), fresh)
        .is_empty());
    assert!(d
        .observe_call(Instant::now(), &model_call(5, 60_000), fresh)
        .is_empty());
}

#[tokio::test(start_paused = true)]
async fn tokens_older_than_the_window_fall_out_of_the_velocity() {
    let rate = TokenRate::new(1_000, Duration::from_secs(60));
    let thresholds = LoopThresholds::default()
        .no_progress(1_000, None)
        .no_progress_tokens(Some(rate));
    let mut d = LoopDetector::new(LoopConfig::new(thresholds)).unwrap();
    let same = CallOutcome::output_text("same");
    assert!(d
        .observe_call(Instant::now(), &model_call(0, 5_000), same)
        .is_empty());
    // 600 tokens every 61 s: each call's window holds only itself, slow enough forever.
    for i in 1..20 {
        advance(Duration::from_secs(61)).await;
        let verdicts = d.observe_call(Instant::now(), &model_call(i, 600), same);
        assert!(verdicts.is_empty(), "call {i}: {verdicts:?}");
    }
    // Two within the minute: 1,200 ≥ 1,000.
    advance(Duration::from_secs(30)).await;
    let verdicts = d.observe_call(Instant::now(), &model_call(20, 600), same);
    assert_eq!(rules(&verdicts), [LoopRule::TokenVelocity]);
}

#[tokio::test(start_paused = true)]
async fn the_token_rule_can_be_turned_off_per_target() {
    let config =
        LoopConfig::default().target("model", LoopThresholds::default().no_progress_tokens(None));
    let mut d = LoopDetector::new(config).unwrap();
    let same = CallOutcome::output_text("same");
    for i in 0..6 {
        let verdicts = d.observe_call(Instant::now(), &model_call(i, 1_000_000), same);
        assert!(verdicts.is_empty(), "call {i}: {verdicts:?}");
    }
}
