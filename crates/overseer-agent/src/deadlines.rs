//! One timer per agent for the deadlines of all its asks in flight.
//!
//! A caller used to wait under its own `tokio::time::timeout_at`: a timer entry registered in
//! the runtime's wheel on the first poll and removed when the answer came, per ask (about 650
//! instructions of a plain ask's 4,000, `docs/benchmarks.md`). Asks to one agent mostly share
//! a timeout, so their deadlines come in the order they were asked: a list kept in deadline
//! order, with one sleeping watcher task armed for the earliest deadline, serves them all.
//! A caller adds its entry (a lock, a push); the watcher wakes at the earliest deadline,
//! expires what is due (each caller is woken through its [`reply`](crate::reply) cell), drops
//! what was answered, and sleeps again until the next deadline; it ends when the list is
//! empty. An ask with an earlier deadline than the armed one (a shorter per-call timeout)
//! re-arms it. Every caller still wakes at its own deadline.
//!
//! [`DeadlineList`] is the pure part (what is due, what is kept, when to wake next), tested
//! alone; [`Deadlines`] is the list under its lock and the watcher task.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::reply::Expiring;

/// An agent's deadlines and their watcher.
pub(crate) struct Deadlines {
    list: Mutex<DeadlineList<Arc<dyn Expiring>>>,
    /// Wakes the watcher to arm for an earlier deadline.
    rearm: Notify,
}

impl Default for Deadlines {
    fn default() -> Self {
        Self {
            list: Mutex::new(DeadlineList::new()),
            rearm: Notify::new(),
        }
    }
}

impl Deadlines {
    fn lock(&self) -> MutexGuard<'_, DeadlineList<Arc<dyn Expiring>>> {
        // No user code runs under this lock: a poisoned list is consistent.
        self.list.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Watches `cell` until `deadline`: then, unless it is settled, it is expired and its
    /// caller woken. Starts the watcher if none runs.
    ///
    /// # Panics
    /// Outside a Tokio runtime (the watcher is a task), as the timer it replaces did.
    pub(crate) fn watch(self: &Arc<Self>, deadline: Instant, cell: Arc<dyn Expiring>) {
        let armed = self.lock().add(deadline, cell);
        match armed {
            Arming::Armed => {}
            Arming::Earlier => self.rearm.notify_one(),
            Arming::Start => {
                tokio::spawn(Arc::clone(self).run());
            }
        }
    }

    /// The watcher: sleeps until the earliest deadline (or until an earlier one comes),
    /// expires what is due, and ends when nothing is left to watch.
    async fn run(self: Arc<Self>) {
        loop {
            let (due, next) = self.lock().take_due(Instant::now());
            for cell in due {
                cell.expire();
            }
            let Some(next) = next else {
                return;
            };
            tokio::select! {
                biased;
                () = tokio::time::sleep_until(next) => {}
                () = self.rearm.notified() => {}
            }
        }
    }
}

/// What adding a deadline asks of the watcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arming {
    /// Nothing: it is armed for this deadline or an earlier one.
    Armed,
    /// Arm again, for this earlier deadline.
    Earlier,
    /// None runs: start one.
    Start,
}

/// An entry the list can drop once it needs no watching.
pub(crate) trait Watched {
    /// Whether the entry needs no watching any more (its caller was answered, or left).
    fn is_settled(&self) -> bool;
}

impl Watched for Arc<dyn Expiring> {
    fn is_settled(&self) -> bool {
        Expiring::is_settled(&**self)
    }
}

/// Deadlines in order, and what the watcher is armed for: the pure part of [`Deadlines`].
pub(crate) struct DeadlineList<E> {
    entries: VecDeque<(Instant, E)>,
    /// The deadline the watcher sleeps until; `None` when no watcher runs.
    armed: Option<Instant>,
    /// At this length the whole list is swept of settled entries (not only its front).
    sweep_at: usize,
}

/// The least length at which the list is swept.
const SWEEP_FLOOR: usize = 64;

impl<E: Watched> DeadlineList<E> {
    pub(crate) fn new() -> Self {
        Self {
            entries: VecDeque::new(),
            armed: None,
            sweep_at: SWEEP_FLOOR,
        }
    }

    /// Adds `entry`, due at `deadline`, in deadline order (after the entries due at the same
    /// instant), first dropping the settled entries at the front; says what the watcher must
    /// do.
    pub(crate) fn add(&mut self, deadline: Instant, entry: E) -> Arming {
        self.drop_settled();
        let in_order = self
            .entries
            .back()
            .is_none_or(|(last, _)| *last <= deadline);
        if in_order {
            self.entries.push_back((deadline, entry));
        } else {
            let at = self.entries.partition_point(|(due, _)| *due <= deadline);
            self.entries.insert(at, (deadline, entry));
        }
        match self.armed {
            None => {
                self.armed = Some(deadline);
                Arming::Start
            }
            Some(armed) if deadline < armed => {
                self.armed = Some(deadline);
                Arming::Earlier
            }
            Some(_) => Arming::Armed,
        }
    }

    /// Takes the entries due at `now` that are not settled (to be expired), drops the settled
    /// ones in front, and arms for the next deadline: `None` when nothing is left (the watcher
    /// ends; the next entry starts one).
    pub(crate) fn take_due(&mut self, now: Instant) -> (Vec<E>, Option<Instant>) {
        let mut due = Vec::new();
        while let Some((deadline, _)) = self.entries.front() {
            if *deadline > now {
                break;
            }
            if let Some((_, entry)) = self.entries.pop_front() {
                if !entry.is_settled() {
                    due.push(entry);
                }
            }
        }
        self.drop_settled();
        self.armed = self.entries.front().map(|(deadline, _)| *deadline);
        (due, self.armed)
    }

    /// Drops the settled entries in front; past the sweep length, every settled entry (asks
    /// answered out of deadline order would otherwise wait behind an unanswered one).
    fn drop_settled(&mut self) {
        while self
            .entries
            .front()
            .is_some_and(|(_, entry)| entry.is_settled())
        {
            self.entries.pop_front();
        }
        if self.entries.len() >= self.sweep_at {
            self.entries.retain(|(_, entry)| !entry.is_settled());
            self.sweep_at = (self.entries.len() * 2).max(SWEEP_FLOOR);
        }
    }

    /// How many entries are kept.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    #[derive(Clone, Default)]
    struct Entry(Arc<AtomicBool>);

    impl Entry {
        fn settle(&self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    impl Watched for Entry {
        fn is_settled(&self) -> bool {
            self.0.load(Ordering::SeqCst)
        }
    }

    fn at(start: Instant, seconds: u64) -> Instant {
        start + Duration::from_secs(seconds)
    }

    #[test]
    fn the_first_deadline_starts_a_watcher_and_later_ones_ask_nothing() {
        let start = Instant::now();
        let mut list = DeadlineList::new();
        assert_eq!(list.add(at(start, 30), Entry::default()), Arming::Start);
        assert_eq!(list.add(at(start, 31), Entry::default()), Arming::Armed);
        assert_eq!(list.add(at(start, 30), Entry::default()), Arming::Armed);
    }

    #[test]
    fn an_earlier_deadline_rearms_the_watcher() {
        let start = Instant::now();
        let mut list = DeadlineList::new();
        list.add(at(start, 30), Entry::default());
        assert_eq!(list.add(at(start, 5), Entry::default()), Arming::Earlier);
        let (due, next) = list.take_due(at(start, 5));
        assert_eq!(due.len(), 1);
        assert_eq!(next, Some(at(start, 30)));
    }

    #[test]
    fn only_unsettled_entries_due_are_expired() {
        let start = Instant::now();
        let mut list = DeadlineList::new();
        let (answered, waiting, later) = (Entry::default(), Entry::default(), Entry::default());
        list.add(at(start, 1), answered.clone());
        list.add(at(start, 2), waiting.clone());
        list.add(at(start, 9), later.clone());
        answered.settle();
        let (due, next) = list.take_due(at(start, 2));
        assert_eq!(due.len(), 1);
        assert!(Arc::ptr_eq(&due[0].0, &waiting.0));
        assert_eq!(next, Some(at(start, 9)));
    }

    #[test]
    fn nothing_is_due_before_its_deadline() {
        let start = Instant::now();
        let mut list = DeadlineList::new();
        list.add(at(start, 10), Entry::default());
        let (due, next) = list.take_due(at(start, 10) - Duration::from_nanos(1));
        assert!(due.is_empty());
        assert_eq!(next, Some(at(start, 10)));
    }

    #[test]
    fn an_empty_list_ends_the_watcher_and_the_next_entry_starts_one() {
        let start = Instant::now();
        let mut list = DeadlineList::new();
        let entry = Entry::default();
        list.add(at(start, 3), entry.clone());
        entry.settle();
        let (due, next) = list.take_due(at(start, 1));
        assert!(due.is_empty());
        assert_eq!(next, None);
        assert_eq!(list.add(at(start, 4), Entry::default()), Arming::Start);
    }

    #[test]
    fn answered_asks_do_not_pile_up() {
        let start = Instant::now();
        let mut list = DeadlineList::new();
        // One ask left waiting in front (the earliest deadline); thousands answered behind it.
        list.add(at(start, 1), Entry::default());
        for second in 0..10_000 {
            let entry = Entry::default();
            list.add(at(start, 2 + second), entry.clone());
            entry.settle();
        }
        assert!(list.len() <= 2 * SWEEP_FLOOR, "kept {}", list.len());
    }

    #[test]
    fn deadlines_added_out_of_order_come_due_in_order() {
        let start = Instant::now();
        let mut list = DeadlineList::new();
        for second in [5, 1, 4, 2, 3] {
            list.add(at(start, second), Entry::default());
        }
        for second in 1..=5 {
            let (due, _) = list.take_due(at(start, second));
            assert_eq!(due.len(), 1, "at {second} s");
        }
    }
}
