//! The fault a handler marked its latest task with, kept where a caller that answers itself can
//! read it.

use std::sync::{Mutex, PoisonError};

use overseer_supervisor::EventId;

/// The fault a handler marked its latest task with (see
/// [`AgentContext::mark_injected`](crate::AgentContext::mark_injected)), and that task's ask:
/// read by a caller that answers itself (its deadline passed while the handler still ran).
/// One per agent, as an agent runs one task at a time.
#[derive(Debug, Default)]
pub(crate) struct InjectedMark(Mutex<Option<(EventId, &'static str)>>);

impl InjectedMark {
    pub(crate) fn set(&self, ask: EventId, fault: &'static str) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some((ask, fault));
    }

    /// The fault marked on `ask`, if the latest mark is for it.
    pub(crate) fn of(&self, ask: EventId) -> Option<&'static str> {
        match *self.0.lock().unwrap_or_else(PoisonError::into_inner) {
            Some((marked, fault)) if marked == ask => Some(fault),
            _ => None,
        }
    }
}
