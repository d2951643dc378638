//! OTP's child API, as the supervisor answers it: `start_child`, `terminate_child`,
//! `restart_child`, `delete_child`, `which_children`, `count_children` (the calls are made with
//! [`SupervisorRef`](crate::SupervisorRef)).

use ractor::ActorCell;

use crate::child_spec::ChildKind;
use crate::supervisor::state::{Child, Status, SupervisorState};
use crate::supervisor_spec::check_id;
use crate::{
    ChildCounts, ChildFate, ChildId, ChildInfo, ChildOpError, ChildSpec, ChildState, ChildType,
    Restart, SupervisorStatus,
};

impl SupervisorState {
    /// OTP's `start_child/2` on a static supervisor.
    pub(super) async fn add_static_child(
        &mut self,
        myself: &ActorCell,
        spec: ChildSpec,
    ) -> Result<ActorCell, ChildOpError> {
        if self.is_dynamic() {
            return Err(ChildOpError::NotAllowedOnDynamic);
        }
        self.add_child(myself, spec).await
    }

    /// OTP's `start_child/2` on a `simple_one_for_one` supervisor: a child from the template.
    pub(super) async fn add_dynamic_child(
        &mut self,
        myself: &ActorCell,
        id: ChildId,
    ) -> Result<ActorCell, ChildOpError> {
        let Some(template) = self.spec.templates.first().filter(|_| self.is_dynamic()) else {
            return Err(ChildOpError::OnlyOnDynamic);
        };
        let spec = template.clone().with_id(id);
        self.add_child(myself, spec).await
    }

    /// OTP's `handle_start_child/2`: the new child is checked, then started; its spec is kept
    /// only if the start succeeds.
    async fn add_child(
        &mut self,
        myself: &ActorCell,
        spec: ChildSpec,
    ) -> Result<ActorCell, ChildOpError> {
        self.check_new_child(&spec)?;
        let child = Child::new(spec, &self.path, false);
        child.record_in(&self.watchers);
        self.children.push(child);
        let index = self.children.len() - 1;
        match self.start_at(myself, index).await {
            Ok(()) => Ok(self.children[index]
                .running_cell()
                .cloned()
                .ok_or(ChildOpError::SupervisorNotRunning)?),
            Err(error) => {
                // Whatever of it started (a nested supervisor's children) is gone for good.
                self.tell_fate(index, ChildFate::Removed);
                self.forget(index);
                Err(ChildOpError::StartFailed(error))
            }
        }
    }

    /// Whether `spec` may be added: a valid spec for this supervisor, and an id no child has
    /// (OTP's `already_started`, `already_present`).
    fn check_new_child(&self, spec: &ChildSpec) -> Result<(), ChildOpError> {
        check_id(&self.spec.id, &spec.id)?;
        self.spec.validate_child_options(spec)?;
        if let ChildKind::Supervisor(nested) = &spec.kind {
            nested.validate_at_depth(self.path.depth() + 1)?;
        }
        match self
            .position(&spec.id)
            .map(|index| &self.children[index].status)
        {
            None => Ok(()),
            Some(Status::Running(_)) => Err(ChildOpError::AlreadyStarted(spec.id.clone())),
            Some(_) => Err(ChildOpError::AlreadyPresent(spec.id.clone())),
        }
    }

    /// OTP's `terminate_child/2`: stop it; a temporary or dynamic child is forgotten, any other
    /// keeps its spec. Terminating a stopped child succeeds.
    pub(super) async fn terminate_child(&mut self, id: &ChildId) -> Result<(), ChildOpError> {
        let index = self
            .position(id)
            .ok_or_else(|| ChildOpError::NotFound(id.clone()))?;
        // Also drops a queued restart retry: stop_at leaves the child not running.
        self.stop_at(index).await;
        if self.is_dynamic() || self.children[index].spec.restart == Restart::Temporary {
            self.tell_fate(index, ChildFate::Removed);
            self.forget(index);
        } else {
            self.tell_fate(index, ChildFate::Stopped);
        }
        Ok(())
    }

    /// The index of the stopped static child `id`, or OTP's error for why it is not one.
    fn stopped_static_child(&self, id: &ChildId) -> Result<usize, ChildOpError> {
        if self.is_dynamic() {
            return Err(ChildOpError::NotAllowedOnDynamic);
        }
        let index = self
            .position(id)
            .ok_or_else(|| ChildOpError::NotFound(id.clone()))?;
        match self.children[index].status {
            Status::Running(_) => Err(ChildOpError::Running(id.clone())),
            Status::Restarting => Err(ChildOpError::Restarting(id.clone())),
            Status::NotRunning => Ok(index),
        }
    }

    /// OTP's `restart_child/2`: start a stopped static child again (not counted as a restart).
    pub(super) async fn restart_child(
        &mut self,
        myself: &ActorCell,
        id: &ChildId,
    ) -> Result<ActorCell, ChildOpError> {
        let index = self.stopped_static_child(id)?;
        if let Err(error) = self.start_at(myself, index).await {
            // It stays stopped, and so does whatever of it started.
            self.tell_fate(index, ChildFate::Stopped);
            return Err(ChildOpError::StartFailed(error));
        }
        self.children[index]
            .running_cell()
            .cloned()
            .ok_or(ChildOpError::SupervisorNotRunning)
    }

    /// OTP's `delete_child/2`: forget a stopped static child's spec.
    pub(super) fn delete_child(&mut self, id: &ChildId) -> Result<(), ChildOpError> {
        let index = self.stopped_static_child(id)?;
        self.tell_fate(index, ChildFate::Removed);
        self.forget(index);
        Ok(())
    }

    /// OTP's `which_children/1`.
    pub(super) fn which_children(&self) -> Vec<ChildInfo> {
        self.children
            .iter()
            .map(|child| ChildInfo {
                id: child.spec.id.clone(),
                path: child.path.clone(),
                child_type: child.spec.child_type(),
                restart: child.spec.restart,
                state: match child.status {
                    Status::Running(_) => ChildState::Running,
                    Status::Restarting => ChildState::Restarting,
                    Status::NotRunning => ChildState::NotRunning,
                },
                cell: child.running_cell().cloned(),
                call_timeout: self.tree.call_timeout,
            })
            .collect()
    }

    /// Where this supervisor is, its strategy, and its restart intensity and use.
    pub(super) fn status(&self) -> SupervisorStatus {
        SupervisorStatus {
            path: self.path.clone(),
            strategy: self.spec.strategy,
            max_restarts: self.spec.intensity,
            period: self.spec.period,
            restarts_in_window: self.restarts.in_window(),
        }
    }

    /// OTP's `count_children/1`.
    pub(super) fn count_children(&self) -> ChildCounts {
        let mut counts = ChildCounts::default();
        for child in &self.children {
            counts.specs += 1;
            if child.running_cell().is_some() {
                counts.active += 1;
            }
            match child.spec.child_type() {
                ChildType::Worker => counts.workers += 1,
                ChildType::Supervisor => counts.supervisors += 1,
            }
        }
        counts
    }
}
