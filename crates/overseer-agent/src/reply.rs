//! An answer's way back to its asker: a one-shot cell the agent fills and the caller waits
//! on, which the agent's deadline watch ([`deadlines`](crate::deadlines)) marks expired when
//! the ask's deadline passes.
//!
//! A caller does not arm a timer of its own: the watch holds one timer per agent for all the
//! asks in flight, and wakes a caller whose deadline passed through its cell (issue 24: a
//! timer registered and removed per ask was a sixth of a plain ask's instructions). The
//! caller's end is [`ReplyWait`]; the agent's end is [`Reply`]. Dropping either end is seen
//! by the other: a caller that stops waiting closes the cell (the handler is then treated as
//! hung at once, as before), an incarnation killed with the task fails the ask at once.

use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

/// A new cell: the agent's end and the caller's.
pub(crate) fn channel<T: Send>() -> (Reply<T>, ReplyWait<T>) {
    let cell = Arc::new(Cell {
        state: Mutex::new(State {
            answer: None,
            sender_gone: false,
            expired: false,
            caller: None,
            agent: None,
        }),
        settled: AtomicBool::new(false),
        closed: AtomicBool::new(false),
    });
    let reply = Reply {
        cell: Some(Arc::clone(&cell)),
    };
    (
        reply,
        ReplyWait {
            cell,
            heeds_expiry: true,
        },
    )
}

/// What waiting on a reply came to.
pub(crate) enum Waited<T> {
    /// The agent answered.
    Answered(T),
    /// The agent's end was dropped unanswered: its incarnation was killed with the task.
    Dropped,
    /// The deadline watch marked the ask expired.
    Expired,
}

/// The shared cell.
struct Cell<T> {
    state: Mutex<State<T>>,
    /// Set once the caller needs the cell no more (it took the answer, or it left): the
    /// deadline watch drops its entry without locking.
    settled: AtomicBool,
    /// Set when the caller left: read by the agent without locking.
    closed: AtomicBool,
}

struct State<T> {
    answer: Option<T>,
    /// The agent's end was dropped without an answer.
    sender_gone: bool,
    /// The deadline passed.
    expired: bool,
    /// The caller's waker, while it waits.
    caller: Option<Waker>,
    /// The agent's waker, while it waits for the caller to leave.
    agent: Option<Waker>,
}

impl<T> Cell<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // Nothing runs user code under this lock: a poisoned lock holds a consistent state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Stores `waker` in `slot` unless the one there wakes the same task.
fn register(slot: &mut Option<Waker>, waker: &Waker) {
    if !slot.as_ref().is_some_and(|held| held.will_wake(waker)) {
        *slot = Some(waker.clone());
    }
}

/// The agent's end: where the answer goes.
pub(crate) struct Reply<T> {
    /// Taken by `send`, so that the drop after it does nothing.
    cell: Option<Arc<Cell<T>>>,
}

impl<T> Reply<T> {
    /// Sends the answer; `Err` gives it back when the caller has left.
    pub(crate) fn send(mut self, answer: T) -> Result<(), T> {
        let Some(cell) = self.cell.take() else {
            return Err(answer);
        };
        let caller = {
            let mut state = cell.lock();
            if cell.closed.load(Ordering::Acquire) {
                return Err(answer);
            }
            state.answer = Some(answer);
            state.caller.take()
        };
        if let Some(caller) = caller {
            caller.wake();
        }
        Ok(())
    }

    /// Whether the caller has left (stopped waiting, or was cancelled).
    pub(crate) fn is_closed(&self) -> bool {
        self.cell
            .as_ref()
            .is_none_or(|cell| cell.closed.load(Ordering::Acquire))
    }

    /// Waits until the caller leaves.
    ///
    /// # Cancel safety
    /// Cancel safe: nothing is lost by dropping it.
    pub(crate) async fn closed(&mut self) {
        poll_fn(|cx| self.poll_closed(cx)).await;
    }

    fn poll_closed(&self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(cell) = &self.cell else {
            return Poll::Ready(());
        };
        let mut state = cell.lock();
        if cell.closed.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        register(&mut state.agent, cx.waker());
        Poll::Pending
    }
}

impl<T> Drop for Reply<T> {
    fn drop(&mut self) {
        let Some(cell) = self.cell.take() else {
            return;
        };
        let caller = {
            let mut state = cell.lock();
            state.sender_gone = true;
            state.caller.take()
        };
        if let Some(caller) = caller {
            caller.wake();
        }
    }
}

/// The caller's end: waits for the answer, the agent's end dropped, or the deadline.
pub(crate) struct ReplyWait<T> {
    cell: Arc<Cell<T>>,
    /// Whether an expiry ends the wait (not after the caller learnt that the answer is on its
    /// way past the deadline).
    heeds_expiry: bool,
}

impl<T: Send + 'static> ReplyWait<T> {
    /// The cell as the deadline watch holds it.
    pub(crate) fn expiring(&self) -> Arc<dyn Expiring> {
        Arc::clone(&self.cell) as Arc<dyn Expiring>
    }
}

impl<T> ReplyWait<T> {
    /// Waits for what comes first: the expiry (unless [`ignore_expiry`](Self::ignore_expiry)
    /// was called), the answer, the agent's end dropped.
    ///
    /// # Cancel safety
    /// Cancel safe: an answer that came stays in the cell for the next wait.
    pub(crate) async fn wait(&mut self) -> Waited<T> {
        poll_fn(|cx| self.poll_wait(cx)).await
    }

    /// From now on, waits for the answer or the agent's end dropped only.
    pub(crate) fn ignore_expiry(&mut self) {
        self.heeds_expiry = false;
    }

    fn poll_wait(&mut self, cx: &mut Context<'_>) -> Poll<Waited<T>> {
        let mut state = self.cell.lock();
        // The deadline first: an answer that came at the same instant came too late (the
        // caller then settles the ask, or learns that the agent did and takes the answer).
        if state.expired && self.heeds_expiry {
            return Poll::Ready(Waited::Expired);
        }
        if let Some(answer) = state.answer.take() {
            self.cell.settled.store(true, Ordering::Release);
            return Poll::Ready(Waited::Answered(answer));
        }
        if state.sender_gone {
            return Poll::Ready(Waited::Dropped);
        }
        register(&mut state.caller, cx.waker());
        Poll::Pending
    }
}

impl<T> Drop for ReplyWait<T> {
    fn drop(&mut self) {
        if self.cell.settled.load(Ordering::Acquire) {
            // Answered: the agent's end is gone and waits for nothing.
            return;
        }
        let (agent, unread) = {
            let mut state = self.cell.lock();
            self.cell.closed.store(true, Ordering::Release);
            self.cell.settled.store(true, Ordering::Release);
            (state.agent.take(), state.answer.take())
        };
        // An answer nobody read is dropped outside the lock.
        drop(unread);
        if let Some(agent) = agent {
            agent.wake();
        }
    }
}

/// A cell as the deadline watch sees it, whatever its answer's type.
pub(crate) trait Expiring: Send + Sync {
    /// Marks the ask expired and wakes its caller, unless it is settled.
    fn expire(&self);
    /// Whether the caller needs the cell no more.
    fn is_settled(&self) -> bool;
}

impl<T: Send> Expiring for Cell<T> {
    fn expire(&self) {
        let caller = {
            let mut state = self.lock();
            if self.settled.load(Ordering::Acquire) {
                return;
            }
            state.expired = true;
            state.caller.take()
        };
        if let Some(caller) = caller {
            caller.wake();
        }
    }

    fn is_settled(&self) -> bool {
        self.settled.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    #[test]
    fn an_answer_sent_is_received() {
        let (reply, mut wait) = channel();
        assert!(reply.send(7).is_ok());
        match wait.wait().now_or_never() {
            Some(Waited::Answered(7)) => {}
            _ => panic!("the answer sent was not received"),
        }
        assert!(wait.expiring().is_settled());
    }

    #[test]
    fn a_dropped_agent_end_ends_the_wait() {
        let (reply, mut wait) = channel::<u8>();
        drop(reply);
        assert!(matches!(wait.wait().now_or_never(), Some(Waited::Dropped)));
    }

    #[test]
    fn an_expiry_ends_the_wait_until_it_is_ignored() {
        let (reply, mut wait) = channel::<u8>();
        assert!(wait.wait().now_or_never().is_none());
        wait.expiring().expire();
        assert!(matches!(wait.wait().now_or_never(), Some(Waited::Expired)));
        wait.ignore_expiry();
        assert!(wait.wait().now_or_never().is_none());
        assert!(reply.send(3).is_ok());
        assert!(matches!(
            wait.wait().now_or_never(),
            Some(Waited::Answered(3))
        ));
    }

    #[test]
    fn an_expiry_after_the_answer_changes_nothing() {
        let (reply, mut wait) = channel::<u8>();
        let expiring = wait.expiring();
        assert!(reply.send(1).is_ok());
        assert!(matches!(
            wait.wait().now_or_never(),
            Some(Waited::Answered(1))
        ));
        expiring.expire();
        assert!(wait.wait().now_or_never().is_none());
    }

    #[test]
    fn a_caller_that_leaves_closes_the_cell() {
        let (mut reply, wait) = channel::<u8>();
        let expiring = wait.expiring();
        assert!(!reply.is_closed());
        assert!(reply.closed().now_or_never().is_none());
        drop(wait);
        assert!(reply.is_closed());
        assert!(expiring.is_settled());
        assert!(reply.closed().now_or_never().is_some());
        assert_eq!(reply.send(2), Err(2));
    }

    #[tokio::test]
    async fn a_waiting_caller_is_woken_by_the_answer() {
        let (reply, mut wait) = channel::<u8>();
        let answering = tokio::spawn(async move {
            tokio::task::yield_now().await;
            reply.send(9)
        });
        assert!(matches!(wait.wait().await, Waited::Answered(9)));
        assert!(matches!(answering.await, Ok(Ok(()))));
    }

    #[tokio::test]
    async fn a_waiting_agent_is_woken_when_the_caller_leaves() {
        let (mut reply, wait) = channel::<u8>();
        let leaving = tokio::spawn(async move {
            tokio::task::yield_now().await;
            drop(wait);
        });
        reply.closed().await;
        assert!(reply.is_closed());
        assert!(leaving.await.is_ok());
    }
}
