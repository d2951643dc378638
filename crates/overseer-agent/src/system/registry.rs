//! The agents of one system, by name: declared, claimed by a start, told their fate, looked up.

use super::QueueDepth;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};

use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use overseer_supervisor::{ChildFate, ChildPath, StartError, SupervisionTree};

use crate::agent::Agent;
use crate::ask_tally::AskTally;
use crate::error::{AskError, SystemError};
use crate::health::AgentHealth;
use crate::name::AgentName;
use crate::shared::Shared;
use crate::slot::{AnySlot, Slot};
use crate::spec::{AgentConfig, Classifier};

/// What only the system's handles hold: the agents' slots, the tree, the deadline timer.
/// Everything the tree keeps (the event sink, watchers, start functions) refers back to it
/// weakly, so a stopped system is freed once its handles are dropped.
pub(crate) struct Registry {
    pub(super) shared: Arc<Shared>,
    /// Every name in use, with its agent's slot: names are unique in a system.
    slots: DashMap<AgentName, Named>,
    pub(super) tree: OnceLock<SupervisionTree>,
    /// Set by the first start (and cleared if it fails), so that a system starts one tree.
    pub(super) start_claimed: AtomicBool,
    pub(super) deadline_timer: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// One agent name of a system, and what holds it.
struct Named {
    slot: Arc<dyn AnySlot>,
    /// Declared with `System::agent`: the name is that agent's for the system's life. Else
    /// taken by a dynamic child made from a template, and free again once the child is
    /// removed.
    declared: bool,
    /// Where the agent is placed in the tree: set by its first start (a declared agent's, for
    /// good), `None` for a declared agent not started yet. Fates told about other placements
    /// of the name (a start refused because the name was taken) are not the agent's.
    placed_at: Option<ChildPath>,
}

impl Registry {
    /// A registry with no agent and no tree yet.
    pub(super) fn new(shared: Shared) -> Self {
        Self {
            shared: Arc::new(shared),
            slots: DashMap::new(),
            tree: OnceLock::new(),
            start_claimed: AtomicBool::new(false),
            deadline_timer: std::sync::Mutex::new(None),
        }
    }

    /// How many agent names are in use.
    pub(super) fn agents(&self) -> usize {
        self.slots.len()
    }

    /// Runs `each` on every agent's slot.
    pub(super) fn for_each_slot(&self, mut each: impl FnMut(&dyn AnySlot)) {
        for named in self.slots.iter() {
            each(&*named.slot);
        }
    }

    /// Every agent's ask tally, by name.
    pub(super) fn ask_tallies(&self) -> Vec<AskTally> {
        let mut tallies: Vec<AskTally> = self
            .slots
            .iter()
            .map(|named| named.slot.ask_tally())
            .collect();
        tallies.sort_by(|a, b| a.agent.as_str().cmp(b.agent.as_str()));
        tallies
    }

    /// Every agent's queue: its name, the tasks waiting, its capacity; by name.
    pub(super) fn queue_depths(&self) -> Vec<QueueDepth> {
        let mut depths: Vec<QueueDepth> = self
            .slots
            .iter()
            .map(|named| {
                let (queued, capacity) = named.slot.queue_depth();
                QueueDepth {
                    agent: named.key().clone(),
                    queued,
                    capacity,
                }
            })
            .collect();
        depths.sort_by(|a, b| a.agent.as_str().cmp(b.agent.as_str()));
        depths
    }

    /// Every agent's health, by name.
    pub(super) fn health(&self) -> Vec<AgentHealth> {
        let mut health: Vec<AgentHealth> =
            self.slots.iter().map(|named| named.slot.health()).collect();
        health.sort_by(|a, b| a.agent.as_str().cmp(b.agent.as_str()));
        health
    }

    /// A new slot for agent `name`, shared with the system.
    fn new_slot<A: Agent>(
        &self,
        name: &AgentName,
        config: AgentConfig,
        classifier: &Classifier<A>,
    ) -> Arc<Slot<A>> {
        Arc::new(Slot::new(
            name.clone(),
            config,
            classifier.clone(),
            Arc::clone(&self.shared),
        ))
    }

    /// Takes the name `name` for an agent declared with `System::agent` (placed in the tree by
    /// its first start); refused if the name is in use. An agent declared after the tree
    /// started is not in the tree until added to it.
    pub(super) fn declare<A: Agent>(
        &self,
        name: &AgentName,
        config: AgentConfig,
        classifier: &Classifier<A>,
    ) -> Result<(), SystemError> {
        let slot = match self.slots.entry(name.clone()) {
            Entry::Occupied(_) => return Err(SystemError::DuplicateAgent(name.to_string())),
            Entry::Vacant(vacant) => {
                let slot: Arc<dyn AnySlot> = self.new_slot(name, config, classifier);
                vacant.insert(Named {
                    slot: Arc::clone(&slot),
                    declared: true,
                    placed_at: None,
                });
                slot
            }
        };
        if self.tree.get().is_some() {
            slot.tree_started();
        }
        Ok(())
    }

    /// Takes the name `name` for the agent started at `path` and gives its slot (made on the
    /// first start of a dynamic child). `declared`: whether the start comes from the spec of an
    /// agent declared with `System::agent`, else from a template. Refused, with nothing taken
    /// over, when the name is held by another placement, or declared by an agent not in the
    /// tree and asked for by a template.
    pub(super) fn claim<A: Agent>(
        &self,
        name: &AgentName,
        path: &ChildPath,
        declared: bool,
        config: AgentConfig,
        classifier: &Classifier<A>,
    ) -> Result<Arc<Slot<A>>, StartError> {
        let taken = |holder: Option<&ChildPath>| StartError::NameTaken {
            name: name.clone(),
            holder: holder.cloned(),
        };
        let slot = match self.slots.entry(name.clone()) {
            Entry::Occupied(mut occupied) => {
                let named = occupied.get_mut();
                match &named.placed_at {
                    // The same child again (a restart, or added again where it was).
                    Some(at) if at == path => {}
                    Some(at) => return Err(taken(Some(at))),
                    None if !declared => return Err(taken(None)),
                    None => named.placed_at = Some(path.clone()),
                }
                Arc::clone(&named.slot)
            }
            Entry::Vacant(vacant) => {
                let slot: Arc<dyn AnySlot> = self.new_slot(name, config, classifier);
                vacant.insert(Named {
                    slot: Arc::clone(&slot),
                    declared,
                    placed_at: Some(path.clone()),
                });
                slot
            }
        };
        let found = slot.agent_type();
        slot.into_any().downcast::<Slot<A>>().map_err(|_| {
            StartError::Failed(format!(
                "the agent name '{name}' is used by a {found}, not a {}",
                std::any::type_name::<A>()
            ))
        })
    }

    /// A supervisor decided `fate` for the child at `path`: told to the agent placed there. A
    /// dynamic child removed gives its name back; its slot stays stopped for the `AgentRef`s
    /// still holding it.
    pub(super) fn on_fate(&self, path: &ChildPath, fate: ChildFate) {
        let Some((slot, declared)) = self
            .slots
            .get(path.name())
            .filter(|named| named.placed_at.as_ref() == Some(path))
            .map(|named| (Arc::clone(&named.slot), named.declared))
        else {
            return;
        };
        slot.on_fate(fate);
        if fate == ChildFate::Removed && !declared {
            self.slots.remove_if(path.name(), |_, named| {
                !named.declared && named.placed_at.as_ref() == Some(path)
            });
        }
    }

    /// The slot of the agent named `name`, of type `A`.
    pub(super) fn lookup<A: Agent>(&self, name: &str) -> Result<Arc<Slot<A>>, AskError> {
        let slot = self
            .slots
            .get(name)
            .map(|named| Arc::clone(&named.slot))
            .ok_or_else(|| AskError::UnknownAgent {
                name: name.to_string(),
            })?;
        slot.into_any()
            .downcast::<Slot<A>>()
            .map_err(|_| AskError::WrongAgentType {
                name: name.to_string(),
                expected: std::any::type_name::<A>(),
            })
    }
}
