//! The pure rules for errors that don't crash.
//!
//! The dominant failures of multi-agent LLM systems are semantic: an agent returns confident
//! garbage, valid JSON full of nonsense, or calls the same tool until the budget is gone, and
//! nothing crashes, so supervision, breakers and deadlines never fire. This crate holds the
//! rules that turn such behaviour into signals that machinery can act on. It owns no actor,
//! spawns nothing and reads no clock: each rule is a value fed with observations (and a
//! [`tokio::time::Instant`] where time matters) that answers with a decision.
//!
//! - [`vote`]: a [`Vote`](vote::Vote) over independent samples, by majority or MAKER's
//!   first-to-ahead-by-k, with a bounded worst case for budget reservation, the keys answers
//!   are compared by, and the theory its error rate should meet.
//! - [`red_flag`]: structural checks (length, strict parse, JSON Schema, predicates) that
//!   discard a sample before it can vote.
//! - [`validator`]: checks on every output, whose [`Rejection`](validator::Rejection) is a
//!   byzantine failure for the breaker.
//! - [`confidence`]: whether an agent's reported confidence matches how often it is right.
//! - [`loop_detect`]: repeated calls, repeated failures, delegation ping-pong and stalls.
//! - [`canonical`]: a canonical JSON form and a hash of it that is stable across processes.
//! - `schema` (feature `schema`): compiled JSON Schemas for red flags and validators.
//!
//! The repository's `docs/semantic.md` explains each mechanism, its defaults and the voting
//! theory.
//!
//! # Example
//!
//! A vote whose samples go through red flags first:
//!
//! ```
//! use overseer_semantic::red_flag::RedFlagRules;
//! use overseer_semantic::vote::{AnswerKey, Vote, VoteRule, VoteState};
//!
//! let rules = RedFlagRules::new().max_chars(100);
//! let key = AnswerKey::JsonPointer("/answer".into());
//! let mut vote = Vote::new(VoteRule::first_to_ahead_by(2, 8))?;
//!
//! let samples = [r#"{"answer": 4}"#, "I think the answer is 4", r#"{"answer": 5}"#,
//!                r#"{"answer": 4}"#, r#"{"answer":4}"#];
//! let mut state = VoteState::Continue;
//! for sample in samples {
//!     state = match rules.check(sample).and_then(|()| key.key(sample)) {
//!         Ok(answer) => vote.observe(answer),
//!         Err(flag) => vote.observe_red_flag(flag), // and count a failure for the breaker
//!     };
//!     if state != VoteState::Continue {
//!         break;
//!     }
//! }
//! assert_eq!(state, VoteState::Decided { winner: "4".into(), margin: 2, samples_used: 5 });
//! assert_eq!(vote.red_flags().len(), 1);
//! # Ok::<(), overseer_semantic::vote::VoteError>(())
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod canonical;
pub mod confidence;
pub mod loop_detect;
pub mod red_flag;
#[cfg(feature = "schema")]
#[cfg_attr(docsrs, doc(cfg(feature = "schema")))]
pub mod schema;
pub mod validator;
pub mod vote;
