//! Tiered warnings: fractions of a limit that, once reached, warn exactly once; and the hard
//! tier, the fraction of a process limit whose committed spend trips the kill switch.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::BudgetConfigError;
use crate::scope::Scope;
use crate::usage::Dimension;

/// The default tiers: 70 %, 85 % and 90 % of each limit.
pub const DEFAULT_TIERS: [f64; 3] = [0.70, 0.85, 0.90];

/// The most tiers a [`Tiers`] may hold.
pub const MAX_TIERS: usize = 16;

/// Parts per million: the integer scale fractions are stored in.
pub(crate) const PPM: u64 = 1_000_000;

/// The fractions of each limit at which a warning fires.
///
/// Fractions are given as `f64` and must each be in the open interval (0, 1) and strictly
/// increasing; they are stored as integer parts per million, so the ledger itself never
/// touches a float. For a limit `L` and a fraction `f`, the tier is **reached when
/// committed + reserved spend ≥ ⌈L·f⌉** (at least 1): a reservation that takes the scope
/// there warns before the call runs, so the warning comes before the refusal of any
/// estimate up to `L − ⌈L·f⌉`. Each tier fires once per dimension and scope, the first time
/// the figure reaches it (a released reservation does not make it fire again). Small
/// limits can put two tiers on the same figure; both then fire together.
///
/// Warnings never stop anything; for a hard action at a fraction of a process limit, see
/// [`BudgetBuilder::hard_tier`](crate::BudgetBuilder::hard_tier).
///
/// ```
/// use overseer_budget::Tiers;
///
/// let tiers = Tiers::new(&[0.5, 0.8])?;
/// assert_eq!(tiers.len(), 2);
/// assert!(Tiers::new(&[0.8, 0.5]).is_err()); // not increasing
/// assert_eq!(Tiers::default().len(), 3); // 70 %, 85 %, 90 %
/// # Ok::<(), overseer_budget::BudgetConfigError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Tiers {
    ppm: Vec<u32>,
}

impl Tiers {
    /// Tiers at these fractions of each limit.
    pub fn new(fractions: &[f64]) -> Result<Self, BudgetConfigError> {
        if fractions.len() > MAX_TIERS {
            return Err(BudgetConfigError::TooManyTiers {
                count: fractions.len(),
                max: MAX_TIERS,
            });
        }
        let mut ppm: Vec<u32> = Vec::with_capacity(fractions.len());
        for (index, &fraction) in fractions.iter().enumerate() {
            let parts = fraction_to_ppm(fraction)
                .filter(|&p| p > 0 && u64::from(p) < PPM)
                .ok_or(BudgetConfigError::TierOutOfRange { index, fraction })?;
            if let Some(&previous) = ppm.last() {
                if parts <= previous {
                    return Err(BudgetConfigError::TiersNotIncreasing { index, fraction });
                }
            }
            ppm.push(parts);
        }
        Ok(Self { ppm })
    }

    /// No tiers: no warning ever fires.
    pub const fn none() -> Self {
        Self { ppm: Vec::new() }
    }

    /// How many tiers there are.
    pub fn len(&self) -> usize {
        self.ppm.len()
    }

    /// Whether there are no tiers.
    pub fn is_empty(&self) -> bool {
        self.ppm.is_empty()
    }

    /// The tiers, lowest first.
    pub fn iter(&self) -> impl Iterator<Item = Tier> + '_ {
        self.ppm.iter().enumerate().map(|(i, &fraction_ppm)| Tier {
            // `new` caps the count at MAX_TIERS, so the level fits a u8.
            level: u8::try_from(i + 1).unwrap_or(u8::MAX),
            fraction_ppm,
        })
    }

    /// The committed + reserved figure at which each tier is reached, for a limit (≥ 1).
    pub(crate) fn thresholds(&self, limit: u64) -> Box<[u64]> {
        self.ppm
            .iter()
            .map(|&p| threshold(limit, p))
            .collect::<Vec<_>>()
            .into_boxed_slice()
    }

    /// The tier at a level (1-based), if there is one.
    pub(crate) fn at_level(&self, level: usize) -> Option<Tier> {
        self.iter().nth(level.checked_sub(1)?)
    }
}

impl Default for Tiers {
    fn default() -> Self {
        Self {
            ppm: DEFAULT_TIERS
                .iter()
                .filter_map(|&f| fraction_to_ppm(f))
                .collect(),
        }
    }
}

/// A fraction as parts per million, rounded to the nearest; `None` unless finite and in [0, 1].
pub(crate) fn fraction_to_ppm(fraction: f64) -> Option<u32> {
    if !fraction.is_finite() || !(0.0..=1.0).contains(&fraction) {
        return None;
    }
    // In [0, 1_000_000] after the check above, so the cast is exact.
    Some((fraction * PPM as f64).round() as u32)
}

/// ⌈limit · ppm / 1 000 000⌉, computed without overflow.
pub(crate) fn threshold(limit: u64, ppm: u32) -> u64 {
    let scaled = u128::from(limit) * u128::from(ppm);
    let up = scaled.div_ceil(u128::from(PPM));
    // ppm ≤ 1_000_000, so the result is at most `limit`.
    u64::try_from(up).unwrap_or(limit)
}

/// A hard tier as parts per million: the fraction must be in (0, 1] and at least one part
/// per million.
pub(crate) fn hard_tier_ppm(fraction: f64) -> Result<u32, BudgetConfigError> {
    fraction_to_ppm(fraction)
        .filter(|&p| p > 0)
        .ok_or(BudgetConfigError::HardTierOutOfRange { fraction })
}

/// One tier: its level (1 for the lowest) and its fraction of the limit.
///
/// Tiers order by level, so the highest reached tier is the `max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Tier {
    /// 1 for the lowest tier, counting up.
    pub level: u8,
    /// The fraction of the limit, in parts per million (700 000 = 70 %).
    pub fraction_ppm: u32,
}

impl Tier {
    /// The fraction of the limit, as a float (for display only).
    pub fn fraction(&self) -> f64 {
        f64::from(self.fraction_ppm) / PPM as f64
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tier {} (", self.level)?;
        write_percent(f, self.fraction_ppm)?;
        f.write_str(")")
    }
}

/// Writes parts per million as a percentage without a float: 855 000 → `85.5%`.
pub(crate) fn write_percent(f: &mut fmt::Formatter<'_>, ppm: u32) -> fmt::Result {
    let whole = ppm / 10_000;
    let rest = ppm % 10_000;
    if rest == 0 {
        write!(f, "{whole}%")
    } else {
        let digits = format!("{rest:04}");
        write!(f, "{whole}.{}%", digits.trim_end_matches('0'))
    }
}

/// A tier of a limit was reached: fired **once** per tier, dimension and scope, by the
/// reservation (or the overrun commit) that first took committed + reserved spend to it.
///
/// Held by the [`Reservation`](crate::Reservation) whose admission reached the tier
/// ([`Reservation::warnings`](crate::Reservation::warnings)), or, for a call that spent more
/// than it reserved, returned in [`CommitReport::warnings`](crate::CommitReport::warnings);
/// logged either way as a `tracing` `WARN` event with the fields `scope`, `dimension`,
/// `tier`, `fraction_ppm`, `used` and `limit`.
///
/// ```
/// use overseer_budget::{Dimension, Ledger, Limits, Scope, Spend, Tier};
///
/// let ledger = Ledger::new(Scope::Process, Limits::new().tokens(10_000))?;
/// let call = ledger.reserve(Spend::from_tokens(7_000))?; // 70 % of the limit
/// let warning = &call.warnings()[0];
/// assert_eq!((&warning.scope, warning.dimension), (&Scope::Process, Dimension::Tokens));
/// assert_eq!(warning.tier, Tier { level: 1, fraction_ppm: 700_000 });
/// assert_eq!((warning.used, warning.limit), (7_000, 10_000));
/// assert_eq!(warning.to_string(), "process tokens reached tier 1 (70%): 7000 of 10000 tokens");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BudgetWarning {
    /// Whose limit.
    pub scope: Scope,
    /// Which limit.
    pub dimension: Dimension,
    /// The tier reached.
    pub tier: Tier,
    /// Committed + reserved spend in this scope and dimension right after the reservation
    /// (or overrun commit) that reached the tier.
    pub used: u64,
    /// The limit.
    pub limit: u64,
}

impl BudgetWarning {
    pub(crate) fn trace(&self) {
        tracing::warn!(
            scope = %self.scope,
            dimension = %self.dimension,
            tier = self.tier.level,
            fraction_ppm = self.tier.fraction_ppm,
            used = self.used,
            limit = self.limit,
            "budget tier reached"
        );
    }
}

impl fmt::Display for BudgetWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} reached {}: {} of {} {}",
            self.scope,
            self.dimension,
            self.tier,
            self.used,
            self.limit,
            self.dimension.unit()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_tiers_are_70_85_and_90_percent() {
        let levels: Vec<u32> = Tiers::default().iter().map(|t| t.fraction_ppm).collect();
        assert_eq!(levels, [700_000, 850_000, 900_000]);
    }

    #[test]
    fn thresholds_round_up_so_a_tier_is_never_reached_early() {
        let tiers = Tiers::default();
        assert_eq!(&*tiers.thresholds(100), &[70, 85, 90]);
        assert_eq!(&*tiers.thresholds(10), &[7, 9, 9]);
        assert_eq!(&*tiers.thresholds(1), &[1, 1, 1]);
        // No overflow at the top of the range: ⌈(2⁶⁴ − 1) / 2⌉ = 2⁶³.
        assert_eq!(threshold(u64::MAX, 500_000), 1 << 63);
        assert!(threshold(u64::MAX, 999_999) < u64::MAX);
        assert_eq!(threshold(150, 1_000_000), 150);
        assert_eq!(threshold(150, 900_000), 135);
    }

    #[test]
    fn a_hard_tier_must_be_in_the_half_open_unit_interval() {
        assert_eq!(hard_tier_ppm(0.9), Ok(900_000));
        assert_eq!(hard_tier_ppm(1.0), Ok(1_000_000));
        for bad in [0.0, -0.1, 1.000_001, 1.5, f64::NAN, f64::INFINITY, 1e-9] {
            assert!(
                matches!(
                    hard_tier_ppm(bad),
                    Err(BudgetConfigError::HardTierOutOfRange { .. })
                ),
                "{bad} accepted"
            );
        }
    }

    #[test]
    fn fractions_outside_the_open_unit_interval_are_rejected() {
        for bad in [0.0, 1.0, -0.1, 1.5, f64::NAN, f64::INFINITY, 1e-9] {
            assert!(
                matches!(
                    Tiers::new(&[bad]),
                    Err(BudgetConfigError::TierOutOfRange { index: 0, .. })
                ),
                "{bad} accepted"
            );
        }
    }

    #[test]
    fn fractions_that_do_not_increase_are_rejected_with_their_index() {
        assert!(matches!(
            Tiers::new(&[0.5, 0.7, 0.7]),
            Err(BudgetConfigError::TiersNotIncreasing { index: 2, .. })
        ));
    }

    #[test]
    fn more_than_the_maximum_number_of_tiers_is_rejected() {
        let many: Vec<f64> = (1..=17).map(|i| f64::from(i) / 20.0).collect();
        assert!(matches!(
            Tiers::new(&many),
            Err(BudgetConfigError::TooManyTiers { count: 17, .. })
        ));
        assert!(Tiers::new(&many[..16]).is_ok());
    }

    #[test]
    fn tier_displays_its_level_and_percentage() {
        let tier = Tiers::new(&[0.855]).unwrap().at_level(1).unwrap();
        assert_eq!(tier.to_string(), "tier 1 (85.5%)");
        assert_eq!(Tiers::default().at_level(0), None);
        assert_eq!(Tiers::default().at_level(4), None);
    }
}
