//! Serialized caching (`Cache(serialize=True)`, `metadata.cache_serializable`): of the calls
//! that share a cache key, one runs while the others wait; when it ends, the key passes to the
//! next waiter, which finds the cache filled (a hit) or, if the holder failed, runs itself.
//!
//! The gate is only the queue of who may go; what a waiter is (a queued action of the
//! backend, a coroutine or thread of local mode) is up to its user.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Who holds a key and who waits for it, per key.
pub struct CacheGate<W> {
    state: Mutex<State<W>>,
}

struct State<W> {
    keys: HashMap<String, Queue<W>>,
    /// The key each holder holds.
    held: HashMap<u64, String>,
}

struct Queue<W> {
    holder: u64,
    waiting: VecDeque<(u64, W)>,
}

/// What a caller of [`CacheGate::enter`] may do.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission {
    /// It holds the key now (or already did): look the cache up, then run.
    Go,
    /// Another caller holds the key; the waiter is woken when the key passes to it.
    Wait,
}

impl<W> Default for CacheGate<W> {
    fn default() -> Self {
        Self {
            state: Mutex::new(State {
                keys: HashMap::new(),
                held: HashMap::new(),
            }),
        }
    }
}

impl<W> CacheGate<W> {
    fn state(&self) -> std::sync::MutexGuard<'_, State<W>> {
        // Every update leaves the maps consistent, so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Asks for `key` on behalf of `who` (an id unique among the key's callers). A caller
    /// that already holds the key (a retry) goes on holding it; one already waiting keeps
    /// its place and its first waiter.
    pub fn enter(&self, key: &str, who: u64, waiter: W) -> Admission {
        let mut state = self.state();
        match state.keys.get_mut(key) {
            None => {
                state.keys.insert(
                    key.to_string(),
                    Queue {
                        holder: who,
                        waiting: VecDeque::new(),
                    },
                );
                state.held.insert(who, key.to_string());
                Admission::Go
            }
            Some(queue) if queue.holder == who => Admission::Go,
            Some(queue) => {
                if !queue.waiting.iter().any(|(id, _)| *id == who) {
                    queue.waiting.push_back((who, waiter));
                }
                Admission::Wait
            }
        }
    }

    /// `who` is done with `key`: a holder passes it to the first waiter (returned, so that
    /// its user can wake it); a waiter leaves the queue.
    pub fn leave(&self, key: &str, who: u64) -> Option<(u64, W)> {
        let mut state = self.state();
        let State { keys, held } = &mut *state;
        let queue = keys.get_mut(key)?;
        if queue.holder != who {
            queue.waiting.retain(|(id, _)| *id != who);
            return None;
        }
        held.remove(&who);
        match queue.waiting.pop_front() {
            Some((next, waiter)) => {
                queue.holder = next;
                held.insert(next, key.to_string());
                Some((next, waiter))
            }
            None => {
                keys.remove(key);
                None
            }
        }
    }

    /// Like [`Self::leave`] for whatever key `who` holds.
    pub fn release(&self, who: u64) -> Option<(u64, W)> {
        let key = self.state().held.get(&who).cloned()?;
        self.leave(&key, who)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_goes_the_others_wait_in_order() {
        let gate = CacheGate::default();
        assert_eq!(gate.enter("k", 1, "a"), Admission::Go);
        assert_eq!(gate.enter("k", 2, "b"), Admission::Wait);
        assert_eq!(gate.enter("k", 3, "c"), Admission::Wait);
        // Another key is independent.
        assert_eq!(gate.enter("other", 9, "z"), Admission::Go);
        // A retry of the holder goes on; asking twice does not queue twice.
        assert_eq!(gate.enter("k", 1, "a"), Admission::Go);
        assert_eq!(gate.enter("k", 2, "b2"), Admission::Wait);
        assert_eq!(gate.leave("k", 1), Some((2, "b")));
        // A waiter that gives up leaves the queue without holding anything.
        assert_eq!(gate.enter("k", 5, "e"), Admission::Wait);
        assert_eq!(gate.leave("k", 5), None);
        // The new holder passes the key on by its id alone.
        assert_eq!(gate.release(2), Some((3, "c")));
        assert_eq!(gate.release(2), None);
        assert_eq!(gate.leave("k", 3), None);
        assert_eq!(gate.enter("k", 4, "d"), Admission::Go);
        assert_eq!(gate.release(9), None);
        assert_eq!(gate.enter("other", 6, "y"), Admission::Go);
    }
}
