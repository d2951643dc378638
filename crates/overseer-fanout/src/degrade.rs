//! Graceful degradation: a cohort that goes on without its optional members.
//!
//! Each member has a [`Criticality`]. [`degrade`] settles the members' results: a critical
//! member that failed (or never answered) makes the whole result failed; an optional one is
//! replaced by its declared default, and the result says it is degraded and which members are
//! missing and why. A default is whatever the user declared (a neutral value, never an
//! invented one): this rule only puts it in place and says so.
//!
//! | criticality | answered | failed or not answered |
//! |---|---|---|
//! | [`Critical`](Criticality::Critical) | [`Settled::Ok`] | [`Settled::Failed`] / [`Settled::NotAnswered`]: the result is [failed](Degraded::is_failed) |
//! | [`Optional`](Criticality::Optional) | [`Settled::Ok`] | [`Settled::Replaced`] by its default: the result is [degraded](Degraded::is_degraded) |

/// Whether a member's failure fails the whole result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Criticality<T> {
    /// Its failure fails the result (the default for a member).
    Critical,
    /// Its failure is replaced by `default`, and the result is marked degraded.
    Optional {
        /// The value that stands in for its answer.
        default: T,
    },
}

/// Why a member has no answer of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing<E> {
    /// It failed with this error.
    Failed(E),
    /// It had not answered when the result was taken.
    NotAnswered,
}

/// What one member's result is once settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled<T, E> {
    /// It answered.
    Ok(T),
    /// A critical member failed.
    Failed(E),
    /// A critical member had not answered.
    NotAnswered,
    /// An optional member without an answer, replaced by its default.
    Replaced {
        /// The declared default that stands in for it.
        default: T,
        /// Why it has no answer of its own.
        why: Missing<E>,
    },
}

impl<T, E> Settled<T, E> {
    /// The member's value: its answer or its default (`None` for a critical member missing).
    pub fn value(&self) -> Option<&T> {
        match self {
            Self::Ok(value) | Self::Replaced { default: value, .. } => Some(value),
            Self::Failed(_) | Self::NotAnswered => None,
        }
    }
}

/// The members' results settled by [`degrade`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Degraded<T, E> {
    /// Each member's settled result, in member order.
    pub members: Vec<Settled<T, E>>,
    critical_missing: Vec<usize>,
    replaced: Vec<usize>,
}

impl<T, E> Degraded<T, E> {
    /// Whether a critical member failed or did not answer.
    pub fn is_failed(&self) -> bool {
        !self.critical_missing.is_empty()
    }

    /// Whether an optional member was replaced by its default.
    pub fn is_degraded(&self) -> bool {
        !self.replaced.is_empty()
    }

    /// The critical members without an answer, by index.
    pub fn critical_missing(&self) -> &[usize] {
        &self.critical_missing
    }

    /// The optional members replaced by their defaults, by index.
    pub fn replaced(&self) -> &[usize] {
        &self.replaced
    }
}

/// Settles each member's result (`Ok`, `Err`, or `None` for no answer) by its criticality.
pub fn degrade<T, E>(
    members: impl IntoIterator<Item = (Criticality<T>, Option<Result<T, E>>)>,
) -> Degraded<T, E> {
    let mut settled = Vec::new();
    let mut critical_missing = Vec::new();
    let mut replaced = Vec::new();
    for (index, (criticality, result)) in members.into_iter().enumerate() {
        let missing = match result {
            Some(Ok(value)) => {
                settled.push(Settled::Ok(value));
                continue;
            }
            Some(Err(error)) => Missing::Failed(error),
            None => Missing::NotAnswered,
        };
        match criticality {
            Criticality::Critical => {
                critical_missing.push(index);
                settled.push(match missing {
                    Missing::Failed(error) => Settled::Failed(error),
                    Missing::NotAnswered => Settled::NotAnswered,
                });
            }
            Criticality::Optional { default } => {
                replaced.push(index);
                settled.push(Settled::Replaced {
                    default,
                    why: missing,
                });
            }
        }
    }
    Degraded {
        members: settled,
        critical_missing,
        replaced,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_optional_failure_is_replaced_by_its_default_and_marked_degraded() {
        let result = degrade([
            (Criticality::Critical, Some(Ok::<_, &str>(1))),
            (Criticality::Optional { default: 0 }, Some(Err("down"))),
            (Criticality::Optional { default: 0 }, None),
        ]);
        assert!(!result.is_failed());
        assert!(result.is_degraded());
        assert_eq!(result.replaced(), &[1, 2]);
        assert_eq!(
            result.members,
            vec![
                Settled::Ok(1),
                Settled::Replaced {
                    default: 0,
                    why: Missing::Failed("down")
                },
                Settled::Replaced {
                    default: 0,
                    why: Missing::NotAnswered
                },
            ]
        );
        assert_eq!(result.members[1].value(), Some(&0));
    }

    #[test]
    fn a_critical_failure_fails_the_result() {
        let result = degrade([
            (Criticality::Critical, Some(Err::<u8, _>("crashed"))),
            (Criticality::Critical, None),
            (Criticality::Optional { default: 7 }, Some(Ok(3))),
        ]);
        assert!(result.is_failed());
        assert!(!result.is_degraded());
        assert_eq!(result.critical_missing(), &[0, 1]);
        assert_eq!(result.members[0], Settled::Failed("crashed"));
        assert_eq!(result.members[1], Settled::NotAnswered);
        assert_eq!(result.members[2].value(), Some(&3));
    }
}
