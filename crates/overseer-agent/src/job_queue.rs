//! A slot's queue of tasks: a deque under a lock, with its length readable without the lock.
//!
//! The serve loop asks "is there work?" twice per wait (before it registers its waker and
//! after), and a caller's enqueue wakes it; with the lock each question was a lock round trip,
//! two atomic read-modify-writes (issue 24). The length is stored by whoever holds the lock,
//! as it lets go ([`QueueGuard`]'s drop), so a reader without the lock sees the length of the
//! last unlocked queue: exact for the question the serve loop asks, because an enqueue stores
//! it before it wakes the loop (the waker's own read-modify-write orders the two).

use std::collections::VecDeque;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// A deque under a lock whose length is mirrored in an atomic.
pub(crate) struct JobQueue<T> {
    deque: Mutex<VecDeque<T>>,
    /// The deque's length as of the last unlock.
    len: AtomicUsize,
}

impl<T> JobQueue<T> {
    /// An empty queue (allocates nothing until the first push).
    pub(crate) fn new() -> Self {
        Self {
            deque: Mutex::new(VecDeque::new()),
            len: AtomicUsize::new(0),
        }
    }

    /// Locks the deque; the length is stored when the guard drops.
    pub(crate) fn lock(&self) -> QueueGuard<'_, T> {
        QueueGuard {
            // Nothing runs user code under this lock: a poisoned lock holds a consistent deque.
            deque: self.deque.lock().unwrap_or_else(PoisonError::into_inner),
            len: &self.len,
        }
    }

    /// The length as of the last unlock, read without the lock.
    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    /// Whether the queue was empty at its last unlock, read without the lock.
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The locked deque; stores its length in the queue's mirror as it unlocks.
pub(crate) struct QueueGuard<'a, T> {
    deque: MutexGuard<'a, VecDeque<T>>,
    len: &'a AtomicUsize,
}

impl<T> Deref for QueueGuard<'_, T> {
    type Target = VecDeque<T>;

    fn deref(&self) -> &VecDeque<T> {
        &self.deque
    }
}

impl<T> DerefMut for QueueGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut VecDeque<T> {
        &mut self.deque
    }
}

impl<T> Drop for QueueGuard<'_, T> {
    fn drop(&mut self) {
        // A plain store: only the lock's holder writes it (the lock is released after this,
        // when the `MutexGuard` field drops).
        self.len.store(self.deque.len(), Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_length_read_without_the_lock_follows_every_unlock() {
        let queue = JobQueue::new();
        assert!(queue.is_empty());
        queue.lock().push_back(1);
        queue.lock().push_back(2);
        assert_eq!(queue.len(), 2);
        {
            let mut locked = queue.lock();
            locked.pop_front();
            // Not stored until the unlock.
            assert_eq!(queue.len(), 2);
        }
        assert_eq!(queue.len(), 1);
        queue.lock().clear();
        assert!(queue.is_empty());
    }
}
