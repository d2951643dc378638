//! A supervisor's flags and its ordered children, with validation.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::child_spec::ChildKind;
use crate::{AutoShutdown, ChildId, ChildSpec, Restart, Shutdown, SpecError, StartError, Strategy};

/// The deepest nesting of supervisors a tree may have. Deeper specs are rejected with
/// [`SpecError::TooDeep`].
pub const MAX_TREE_DEPTH: usize = 4096;

/// A hook run at the start of every start of a supervisor, before its children start.
pub(crate) type BeforeStart = Arc<dyn Fn() -> Result<(), StartError> + Send + Sync>;

/// A supervisor: its strategy, restart intensity, automatic shutdown, and its children in start
/// order (or, for a dynamic supervisor, the one template its children are made from).
///
/// Defaults are OTP's: `one_for_one`, at most 1 restart in 5 seconds, `auto_shutdown` never.
///
/// ```
/// use overseer_supervisor::{ChildSpec, Restart, SupervisorSpec};
/// use ractor::{Actor, ActorProcessingErr, ActorRef};
/// use std::time::Duration;
///
/// struct Worker;
/// impl Actor for Worker {
///     type Msg = ();
///     type State = ();
///     type Arguments = ();
///     async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
///         Ok(())
///     }
/// }
///
/// let researchers = SupervisorSpec::one_for_all("researchers")
///     .intensity(3, Duration::from_secs(5))
///     .child(ChildSpec::actor("r1", || (Worker, ())))
///     .child(ChildSpec::actor("r2", || (Worker, ())));
/// let root = SupervisorSpec::one_for_one("root")
///     .child(ChildSpec::actor("lead", || (Worker, ())))
///     .child(ChildSpec::supervisor(researchers).restart(Restart::Permanent));
/// assert!(root.validate().is_ok());
///
/// let duplicate = SupervisorSpec::one_for_one("root")
///     .child(ChildSpec::actor("a", || (Worker, ())))
///     .child(ChildSpec::actor("a", || (Worker, ())));
/// assert!(duplicate.validate().is_err());
/// ```
#[derive(Clone)]
pub struct SupervisorSpec {
    pub(crate) id: ChildId,
    pub(crate) strategy: Strategy,
    pub(crate) intensity: u32,
    pub(crate) period: Duration,
    pub(crate) auto_shutdown: AutoShutdown,
    pub(crate) children: Vec<ChildSpec>,
    pub(crate) templates: Vec<ChildSpec>,
    pub(crate) before_start: Option<BeforeStart>,
}

impl SupervisorSpec {
    /// A supervisor with this id and strategy and OTP's default flags.
    pub fn new(id: impl Into<ChildId>, strategy: Strategy) -> Self {
        Self {
            id: id.into(),
            strategy,
            intensity: 1,
            period: Duration::from_secs(5),
            auto_shutdown: AutoShutdown::Never,
            children: Vec::new(),
            templates: Vec::new(),
            before_start: None,
        }
    }

    /// A `one_for_one` supervisor.
    pub fn one_for_one(id: impl Into<ChildId>) -> Self {
        Self::new(id, Strategy::OneForOne)
    }

    /// A `one_for_all` supervisor.
    pub fn one_for_all(id: impl Into<ChildId>) -> Self {
        Self::new(id, Strategy::OneForAll)
    }

    /// A `rest_for_one` supervisor.
    pub fn rest_for_one(id: impl Into<ChildId>) -> Self {
        Self::new(id, Strategy::RestForOne)
    }

    /// A dynamic supervisor (OTP's `simple_one_for_one`): no children at start; each child is
    /// added at run time with [`SupervisorRef::start_dynamic_child`](crate::SupervisorRef::start_dynamic_child)
    /// and made from `template` (whose own id is ignored).
    pub fn dynamic(id: impl Into<ChildId>, template: ChildSpec) -> Self {
        let mut spec = Self::new(id, Strategy::Dynamic);
        spec.templates.push(template);
        spec
    }

    /// Allows at most `max_restarts` restarts within `period` (a whole number of seconds, at
    /// least one). The restart that would exceed it is not made: the supervisor stops its
    /// children and exits with reason `shutdown`, and its parent decides by its restart type.
    pub fn intensity(mut self, max_restarts: u32, period: Duration) -> Self {
        self.intensity = max_restarts;
        self.period = period;
        self
    }

    /// Sets automatic shutdown on significant children's exits.
    pub fn auto_shutdown(mut self, auto_shutdown: AutoShutdown) -> Self {
        self.auto_shutdown = auto_shutdown;
        self
    }

    /// Appends a child (children start in the order they are added).
    pub fn child(mut self, child: ChildSpec) -> Self {
        self.children.push(child);
        self
    }

    /// Appends several children.
    pub fn children(mut self, children: impl IntoIterator<Item = ChildSpec>) -> Self {
        self.children.extend(children);
        self
    }

    /// Adds a child template (a dynamic supervisor needs exactly one).
    pub fn template(mut self, template: ChildSpec) -> Self {
        self.templates.push(template);
        self
    }

    /// Runs `check` at the start of every start of this supervisor (first start and restarts),
    /// before its children start; an error makes that start attempt fail, like an OTP `init/1`
    /// that returns an error.
    pub fn before_start<F>(mut self, check: F) -> Self
    where
        F: Fn() -> Result<(), StartError> + Send + Sync + 'static,
    {
        self.before_start = Some(Arc::new(check));
        self
    }

    /// The supervisor's id.
    pub fn id(&self) -> &ChildId {
        &self.id
    }

    /// The strategy.
    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    /// The static children, in start order.
    pub fn child_specs(&self) -> &[ChildSpec] {
        &self.children
    }

    /// The template of a dynamic supervisor.
    pub fn template_spec(&self) -> Option<&ChildSpec> {
        self.templates.first()
    }

    /// Checks this spec and every nested one; the first problem found is returned.
    pub fn validate(&self) -> Result<(), SpecError> {
        self.validate_at_depth(0)
    }

    /// Checks this spec as a supervisor nested `depth` levels below a root, so a subtree added
    /// to a running tree cannot take it past [`MAX_TREE_DEPTH`].
    pub(crate) fn validate_at_depth(&self, depth: usize) -> Result<(), SpecError> {
        let mut pending: Vec<(&SupervisorSpec, usize)> = vec![(self, depth)];
        // The children whose ids must be unique in the tree, with their supervisor's id.
        let mut unique: HashMap<&ChildId, &ChildId> = HashMap::new();
        while let Some((spec, depth)) = pending.pop() {
            if depth >= MAX_TREE_DEPTH {
                return Err(SpecError::TooDeep {
                    supervisor: spec.id.clone(),
                    limit: MAX_TREE_DEPTH,
                });
            }
            spec.validate_flags()?;
            for child in spec.children.iter().filter(|child| child.unique_in_tree) {
                if let Some(other) = unique.insert(&child.id, &spec.id) {
                    return Err(SpecError::DuplicateInTree {
                        supervisor: spec.id.clone(),
                        child: child.id.clone(),
                        other: other.clone(),
                    });
                }
            }
            if let Some(template) = spec.templates.iter().find(|child| child.unique_in_tree) {
                return Err(SpecError::UniqueTemplate {
                    supervisor: spec.id.clone(),
                    child: template.id.clone(),
                });
            }
            for child in spec.children.iter().chain(spec.templates.iter()) {
                if let ChildKind::Supervisor(nested) = &child.kind {
                    pending.push((nested, depth + 1));
                }
            }
        }
        Ok(())
    }

    /// Checks this supervisor's own flags and children, not the nested supervisors.
    fn validate_flags(&self) -> Result<(), SpecError> {
        let supervisor = &self.id;
        check_id(supervisor, supervisor)?;
        if self.period.is_zero() {
            return Err(SpecError::ZeroPeriod {
                supervisor: supervisor.clone(),
            });
        }
        if self.period.subsec_nanos() != 0 {
            return Err(SpecError::FractionalPeriod {
                supervisor: supervisor.clone(),
                period_ms: self.period.as_millis(),
            });
        }
        match (self.strategy, self.templates.len(), self.children.len()) {
            (Strategy::Dynamic, 1, 0) => {}
            (Strategy::Dynamic, 1, count) => {
                return Err(SpecError::DynamicWithStaticChildren {
                    supervisor: supervisor.clone(),
                    count,
                })
            }
            (Strategy::Dynamic, count, _) => {
                return Err(SpecError::DynamicTemplateCount {
                    supervisor: supervisor.clone(),
                    count,
                })
            }
            (_, 0, _) => {}
            (_, _, _) => {
                return Err(SpecError::TemplateWithoutDynamic {
                    supervisor: supervisor.clone(),
                })
            }
        }
        let mut seen = HashSet::with_capacity(self.children.len());
        for child in &self.children {
            check_id(supervisor, &child.id)?;
            if !seen.insert(&child.id) {
                return Err(SpecError::DuplicateChildId {
                    supervisor: supervisor.clone(),
                    child: child.id.clone(),
                });
            }
        }
        for child in self.children.iter().chain(self.templates.iter()) {
            self.validate_child_options(child)?;
        }
        Ok(())
    }

    /// Checks the options of one child against this supervisor's flags.
    pub(crate) fn validate_child_options(&self, child: &ChildSpec) -> Result<(), SpecError> {
        if child.significant && child.restart == Restart::Permanent {
            return Err(SpecError::SignificantPermanent {
                supervisor: self.id.clone(),
                child: child.id.clone(),
            });
        }
        if child.significant && self.auto_shutdown == AutoShutdown::Never {
            return Err(SpecError::SignificantWithoutAutoShutdown {
                supervisor: self.id.clone(),
                child: child.id.clone(),
            });
        }
        if child.shutdown == Some(Shutdown::Timeout(Duration::ZERO)) {
            return Err(SpecError::ZeroShutdownTimeout {
                supervisor: self.id.clone(),
                child: child.id.clone(),
            });
        }
        Ok(())
    }
}

/// Checks `id`, of a child of `supervisor` or of `supervisor` itself, with the one rule for
/// ids ([`ChildId::validate`]).
pub(crate) fn check_id(supervisor: &ChildId, id: &ChildId) -> Result<(), SpecError> {
    id.validate().map_err(|error| SpecError::InvalidId {
        supervisor: supervisor.clone(),
        id: id.clone(),
        error,
    })
}

impl fmt::Debug for SupervisorSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SupervisorSpec")
            .field("id", &self.id)
            .field("strategy", &self.strategy)
            .field("intensity", &self.intensity)
            .field("period", &self.period)
            .field("auto_shutdown", &self.auto_shutdown)
            .field("children", &self.children)
            .field("templates", &self.templates)
            .finish()
    }
}

impl Drop for SupervisorSpec {
    /// Drops nested supervisor specs one at a time instead of recursively, so a very deep spec
    /// (even one rejected as too deep) cannot overflow the stack.
    fn drop(&mut self) {
        let mut nested: Vec<Arc<SupervisorSpec>> = Vec::new();
        let collect = |children: Vec<ChildSpec>, nested: &mut Vec<Arc<SupervisorSpec>>| {
            for child in children {
                if let ChildKind::Supervisor(spec) = child.kind {
                    nested.push(spec);
                }
            }
        };
        collect(std::mem::take(&mut self.children), &mut nested);
        collect(std::mem::take(&mut self.templates), &mut nested);
        while let Some(spec) = nested.pop() {
            if let Ok(mut spec) = Arc::try_unwrap(spec) {
                collect(std::mem::take(&mut spec.children), &mut nested);
                collect(std::mem::take(&mut spec.templates), &mut nested);
            }
        }
    }
}
