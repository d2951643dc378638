//! The error rates voting should reach when sample errors are independent.

use super::VoteError;

/// The probability that first-to-ahead-by-`k` decides for the wrong answer, with two possible
/// answers (right and wrong), independent samples each wrong with probability `p`, and no cap
/// on samples: `r / (1 + r)` with `r = (p / (1 − p))^k` (gambler's ruin: a walk from 0 that
/// stops at +k or −k).
///
/// With more than two answers and the wrong samples spread over several of them, the wrong
/// answers split their votes and the race is a different walk: the error is then *at most*
/// this value (the binary case is the worst case, all wrong samples agreeing). A sample cap
/// adds a third outcome, exhaustion, that this formula ignores.
///
/// ```
/// use overseer_semantic::vote::first_to_ahead_error;
///
/// // MAKER's numbers: at p = 5 %, k = 3 errs about 1.5 in 10,000.
/// let error = first_to_ahead_error(0.05, 3)?;
/// assert!((error - 1.458e-4).abs() < 1e-6);
/// # Ok::<(), overseer_semantic::vote::VoteError>(())
/// ```
///
/// # Errors
///
/// [`VoteError::InvalidProbability`] when `p` is not in `[0, 1]` (NaN included).
pub fn first_to_ahead_error(p: f64, k: u32) -> Result<f64, VoteError> {
    check_probability(p)?;
    if p >= 1.0 {
        return Ok(1.0);
    }
    let r = (p / (1.0 - p)).powi(saturating_i32(k));
    Ok(r / (1.0 + r))
}

/// The probability that a majority of `n` independent samples, each wrong with probability
/// `p`, is wrong: the binomial tail `P(X > n / 2)`, `X ~ Bin(n, p)`, with two possible answers
/// and wrong samples all agreeing. For an even `n` a tie is neither right nor wrong (a
/// [`Majority`](super::VoteRule::Majority) vote is exhausted on a tie) and is not counted.
///
/// ```
/// use overseer_semantic::vote::majority_error;
///
/// // The Six Sigma Agent's example: 5 samples at 5 % err about 0.116 % of the time.
/// let error = majority_error(0.05, 5)?;
/// assert!((error - 0.001158).abs() < 1e-6);
/// # Ok::<(), overseer_semantic::vote::VoteError>(())
/// ```
///
/// # Errors
///
/// [`VoteError::InvalidProbability`] when `p` is not in `[0, 1]` (NaN included).
pub fn majority_error(p: f64, n: u32) -> Result<f64, VoteError> {
    check_probability(p)?;
    let wrong_needed = n / 2 + 1;
    Ok((wrong_needed..=n).map(|w| binomial_pmf(n, w, p)).sum())
}

fn check_probability(p: f64) -> Result<(), VoteError> {
    if (0.0..=1.0).contains(&p) {
        Ok(())
    } else {
        Err(VoteError::InvalidProbability(p))
    }
}

/// `C(n, w) p^w (1 − p)^(n − w)`, the binomial coefficient computed as a running product in
/// floating point (exact enough for the n of a vote).
fn binomial_pmf(n: u32, w: u32, p: f64) -> f64 {
    let choose = (0..w).fold(1.0, |acc, i| acc * f64::from(n - i) / f64::from(i + 1));
    choose * p.powi(saturating_i32(w)) * (1.0 - p).powi(saturating_i32(n - w))
}

fn saturating_i32(x: u32) -> i32 {
    i32::try_from(x).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_to_ahead_matches_hand_computed_values() {
        // r = (0.2 / 0.8)^2 = 1/16, error = 1/17.
        let e = first_to_ahead_error(0.2, 2).unwrap();
        assert!((e - 1.0 / 17.0).abs() < 1e-12);
        assert_eq!(first_to_ahead_error(0.0, 3).unwrap(), 0.0);
        assert_eq!(first_to_ahead_error(1.0, 3).unwrap(), 1.0);
        // A fair coin is a fair race.
        assert!((first_to_ahead_error(0.5, 4).unwrap() - 0.5).abs() < 1e-12);
    }

    #[test]
    fn majority_matches_hand_computed_values() {
        // n = 3: 3 p^2 q + p^3.
        let p: f64 = 0.1;
        let expected = 3.0 * p * p * (1.0 - p) + p.powi(3);
        assert!((majority_error(p, 3).unwrap() - expected).abs() < 1e-15);
        assert_eq!(majority_error(0.3, 1).unwrap(), 0.3);
        // Majority of 13 at 5 %: about 1.03 per million (the Six Sigma line is 3.4).
        let e13 = majority_error(0.05, 13).unwrap();
        assert!((e13 - 1.03e-6).abs() < 0.01e-6, "{e13}");
    }

    #[test]
    fn probabilities_outside_zero_one_are_errors() {
        for p in [-0.1, 1.5, f64::NAN] {
            assert!(first_to_ahead_error(p, 2).is_err());
            assert!(majority_error(p, 5).is_err());
        }
    }
}
