//! The checks an agent's outputs go through before they are returned: validators for every
//! task type and for one, and how an output reports its confidence. Pure: running them is the
//! actor's job (`validation`).

use std::collections::HashMap;
use std::sync::Arc;

use overseer_semantic::validator::{Rejection, Validator};

/// A validator of outputs of type `O`, shared by the spec and the slot.
pub(crate) type SharedValidator<O> = Arc<dyn Validator<O> + Send + Sync>;
/// How an output reports its confidence.
pub(crate) type ConfidenceOf<O> = Arc<dyn Fn(&O) -> Option<f64> + Send + Sync>;

/// An agent's output checks.
pub(crate) struct OutputChecks<O> {
    /// Run on every output, in the order added.
    every: Vec<SharedValidator<O>>,
    /// Run on the outputs of one task type, after those of `every`.
    by_type: HashMap<&'static str, Vec<SharedValidator<O>>>,
    /// The confidence an output reports, if it reports one.
    pub(crate) confidence: Option<ConfidenceOf<O>>,
}

impl<O> Default for OutputChecks<O> {
    fn default() -> Self {
        Self {
            every: Vec::new(),
            by_type: HashMap::new(),
            confidence: None,
        }
    }
}

impl<O> Clone for OutputChecks<O> {
    fn clone(&self) -> Self {
        Self {
            every: self.every.clone(),
            by_type: self.by_type.clone(),
            confidence: self.confidence.clone(),
        }
    }
}

impl<O> OutputChecks<O> {
    /// Adds a validator of every output.
    pub(crate) fn add(&mut self, validator: SharedValidator<O>) {
        self.every.push(validator);
    }

    /// Adds a validator of the outputs of `task_type`.
    pub(crate) fn add_for(&mut self, task_type: &'static str, validator: SharedValidator<O>) {
        self.by_type.entry(task_type).or_default().push(validator);
    }

    /// Whether any validator applies to `task_type`.
    pub(crate) fn validates(&self, task_type: &str) -> bool {
        !self.every.is_empty() || self.by_type.contains_key(task_type)
    }

    /// Runs the validators of a `task_type` output in order: the first rejection is returned
    /// and the rest are not asked.
    pub(crate) fn check(&self, task_type: &str, output: &O) -> Result<(), Rejection> {
        let typed = self.by_type.get(task_type).into_iter().flatten();
        self.every
            .iter()
            .chain(typed)
            .try_for_each(|validator| validator.validate(output))
    }
}

#[cfg(test)]
mod tests {
    use overseer_semantic::validator::from_predicate;

    use super::*;

    fn checks() -> OutputChecks<String> {
        let mut checks = OutputChecks::default();
        checks.add(Arc::new(from_predicate("not empty", |s: &String| {
            !s.is_empty()
        })));
        checks.add_for(
            "cite",
            Arc::new(from_predicate("cites", |s: &String| s.contains("http"))),
        );
        checks
    }

    #[test]
    fn every_output_goes_through_the_common_validators_then_its_types() {
        let checks = checks();
        assert!(checks.check("draft", &"no link".into()).is_ok());
        assert_eq!(
            checks.check("cite", &"no link".into()).unwrap_err().reason,
            "failed: cites"
        );
        assert_eq!(
            checks.check("cite", &String::new()).unwrap_err().reason,
            "failed: not empty"
        );
        assert!(checks.check("cite", &"see http://x".into()).is_ok());
    }

    #[test]
    fn a_task_type_is_validated_only_if_some_validator_applies() {
        let mut typed = OutputChecks::<String>::default();
        typed.add_for("cite", Arc::new(from_predicate("x", |_: &String| true)));
        assert!(typed.validates("cite"));
        assert!(!typed.validates("draft"));
        assert!(checks().validates("draft"));
    }
}
