//! The sessions that have not logged in yet. A client chooses how many it
//! opens (bounded by `max_per_ip`) and how long each waits (bounded by
//! `login_timeout`); at most half the pool waits at once, and when that half
//! is full the session that has waited longest, if it has waited long enough
//! (`min_age`), is closed to make room: idle connections cannot keep a new
//! client out.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A session that has waited this long (or half its login_timeout, if that is
/// shorter) may be closed to make room for a new one. Clients log in within a
/// second; a person typing a password in an interactive client takes some.
const MIN_AGE: Duration = Duration::from_secs(10);

/// The waiting sessions, oldest first.
pub struct Waiting {
    cap: usize,
    min_age: Duration,
    entries: Mutex<Vec<Entry>>,
    next_id: AtomicU64,
}

struct Entry {
    id: u64,
    since: Instant,
    evict: Arc<AtomicBool>,
}

/// One session's place among the waiting: give it back with `Waiting::leave`.
pub struct Ticket {
    id: u64,
    /// Set when the session was chosen to make room; it then says 421 and closes.
    pub evict: Arc<AtomicBool>,
}

impl Waiting {
    /// At most half of `max_clients` (rounded up) wait to log in.
    pub fn new(max_clients: usize, login_timeout: Duration) -> Waiting {
        Waiting {
            cap: max_clients.div_ceil(2).max(1),
            min_age: MIN_AGE.min(login_timeout / 2),
            entries: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(0),
        }
    }

    /// A place for a new session: free, or made by closing the longest
    /// waiting session that has waited `min_age`; `None` when every waiting
    /// session is younger than that.
    pub fn admit(&self) -> Option<Ticket> {
        let mut entries = self.lock();
        if entries.len() >= self.cap {
            let oldest = entries
                .first()
                .filter(|e| e.since.elapsed() >= self.min_age)?;
            oldest.evict.store(true, Ordering::SeqCst);
            entries.remove(0);
        }
        Some(self.push(&mut entries))
    }

    /// A place without the cap: inetd's one session, or REIN (the session has
    /// its worker already).
    pub fn admit_uncapped(&self) -> Ticket {
        let mut entries = self.lock();
        self.push(&mut entries)
    }

    /// The session logged in or ended (or was evicted: then nothing is left).
    pub fn leave(&self, ticket: &Ticket) {
        self.lock().retain(|e| e.id != ticket.id);
    }

    /// Sessions waiting now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn push(&self, entries: &mut Vec<Entry>) -> Ticket {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let evict = Arc::new(AtomicBool::new(false));
        entries.push(Entry {
            id,
            since: Instant::now(),
            evict: Arc::clone(&evict),
        });
        Ticket { id, evict }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_the_pool_waits_and_young_sessions_are_not_evicted() {
        let waiting = Waiting::new(4, Duration::from_secs(60));
        let first = waiting.admit().unwrap();
        let _second = waiting.admit().unwrap();
        assert!(
            waiting.admit().is_none(),
            "the cap is full of young sessions"
        );
        waiting.leave(&first);
        assert!(waiting.admit().is_some());
        assert_eq!(waiting.len(), 2);
    }

    #[test]
    fn the_oldest_session_makes_room_once_it_has_waited() {
        let waiting = Waiting::new(2, Duration::from_secs(60));
        let old = waiting.admit().unwrap();
        waiting.lock()[0].since -= MIN_AGE;
        let new = waiting.admit().expect("room made by the oldest");
        assert!(
            old.evict.load(Ordering::SeqCst),
            "the oldest is told to close"
        );
        assert!(!new.evict.load(Ordering::SeqCst));
        assert_eq!(waiting.len(), 1);
        waiting.leave(&old); // leaving after eviction is harmless
        assert_eq!(waiting.len(), 1);
    }
}
