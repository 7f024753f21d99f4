//! The sessions that have not logged in yet, and their share of the pool. A
//! client chooses how many it opens (bounded by `max_per_ip`), from how many
//! addresses, when, and how long each waits (bounded by `login_timeout`). At
//! most half the pool waits at once, and those places are shared between client
//! addresses (IPv6: /64 prefixes), not handed out first come, first served:
//! when they are full, a newcomer takes a place only from an address that holds
//! at least two more than its own, and an address that already holds as many as
//! any other can only replace its own stale connections. So no timing of
//! arrivals wins a place from another address, and a newcomer from a new
//! address gets in whenever some address holds two places or more.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A session that has waited this long (or half its login_timeout, if that is
/// shorter) may be closed to make room for a newer one from its own address.
/// Clients log in within a second; a person typing a password takes some.
const MIN_AGE: Duration = Duration::from_secs(10);

/// IPv6 clients are told apart by this prefix: one customer usually holds a
/// whole /64, and an address within it costs nothing.
const IPV6_PREFIX: u32 = 64;

/// Whom a waiting place is counted for: a client address (IPv6: its /64), or
/// nobody yet (a connection from a balancer before its PROXY header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Owner {
    Client(IpAddr),
    Pending,
}

/// The client a place is counted for: IPv4 (also mapped into IPv6) per
/// address, IPv6 per /64 prefix.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let mask = u128::MAX << (128 - IPV6_PREFIX);
            IpAddr::V6((u128::from(v6) & mask).into())
        }
        v4 => v4,
    }
}

/// The waiting sessions, oldest first.
pub struct Waiting {
    cap: usize,
    min_age: Duration,
    entries: Mutex<Vec<Entry>>,
    next_id: AtomicU64,
}

struct Entry {
    id: u64,
    owner: Owner,
    /// Admitted by closing another session (for `settle`).
    took: bool,
    since: Instant,
    evict: Arc<AtomicBool>,
}

impl Entry {
    /// Told to close, but its session has not noticed yet: it still holds
    /// its worker (so it is counted) but no longer a place.
    fn evicted(&self) -> bool {
        self.evict.load(Ordering::SeqCst)
    }
}

/// One session's place among the waiting: give it back with `Waiting::leave`.
pub struct Ticket {
    id: u64,
    /// Set when the session was chosen to make room; every pre-login wait
    /// looks at it at least once a second, then says 421 (if it can) and closes.
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

    /// A place for a new session from `ip` (None: behind a balancer, not
    /// known before the PROXY header; see `settle`), or `None` when the
    /// places are full and fairly shared (see `make_room`).
    pub fn admit(&self, ip: Option<IpAddr>) -> Option<Ticket> {
        let owner = ip.map_or(Owner::Pending, |ip| Owner::Client(client_key(ip)));
        let mut entries = self.lock();
        let took = places(&entries) >= self.cap;
        if took {
            let victim = self.make_room(&entries, owner)?;
            entries[victim].evict.store(true, Ordering::SeqCst);
        }
        Some(self.push(&mut entries, owner, took))
    }

    /// Behind a balancer: the PROXY header named the client of a session
    /// admitted as pending. It keeps its place when, had its address been
    /// known, it would have been admitted: the place was free, or its
    /// address holds no more than the busiest other one now, or it replaces
    /// a stale session of its own. False (the place is given back) otherwise.
    pub fn settle(&self, ticket: &Ticket, ip: IpAddr) -> bool {
        let owner = Owner::Client(client_key(ip));
        let mut entries = self.lock();
        let Some(me) = entries.iter().position(|e| e.id == ticket.id) else {
            return false;
        };
        entries[me].owner = owner;
        if !entries[me].took || entries[me].evicted() {
            return true;
        }
        let holds = count(&entries, owner);
        let most_other = busiest(&entries, owner).map_or(0, |(_, n)| n);
        if holds <= most_other {
            return true;
        }
        if let Some(stale) = self.own_stale(&entries, owner, Some(ticket.id)) {
            entries[stale].evict.store(true, Ordering::SeqCst);
            return true;
        }
        entries.remove(me);
        false
    }

    /// Which session closes so that a newcomer from `owner` gets a place,
    /// if any: the oldest of the address holding the most, when that is at
    /// least two more than `owner` holds (taking one leaves it no fewer than
    /// the newcomer's); else `owner`'s own oldest that has waited `min_age`
    /// (an address replaces its own stale connections, at nobody else's
    /// cost). Age does not protect an address above its share: otherwise one
    /// that keeps its connections young could keep a newcomer out.
    fn make_room(&self, entries: &[Entry], owner: Owner) -> Option<usize> {
        let holds = match owner {
            Owner::Client(_) => count(entries, owner),
            Owner::Pending => 0,
        };
        if let Some((busiest, most)) = busiest(entries, owner) {
            if most >= holds + 2 {
                return entries
                    .iter()
                    .position(|e| !e.evicted() && e.owner == busiest);
            }
        }
        self.own_stale(entries, owner, None)
    }

    /// `owner`'s oldest session (not `me`) that has waited `min_age`.
    fn own_stale(&self, entries: &[Entry], owner: Owner, me: Option<u64>) -> Option<usize> {
        if owner == Owner::Pending {
            return None;
        }
        entries.iter().position(|e| {
            !e.evicted()
                && e.owner == owner
                && Some(e.id) != me
                && e.since.elapsed() >= self.min_age
        })
    }

    /// A place without the cap for inetd's one session (it has its process).
    pub fn admit_uncapped(&self) -> Ticket {
        let mut entries = self.lock();
        self.push(&mut entries, Owner::Pending, false)
    }

    /// A place without the cap for REIN: the session has its worker already,
    /// and is counted for its address again.
    pub fn readmit(&self, ip: IpAddr) -> Ticket {
        let mut entries = self.lock();
        self.push(&mut entries, Owner::Client(client_key(ip)), false)
    }

    /// The session logged in or ended (evicted or not): its worker is free.
    pub fn leave(&self, ticket: &Ticket) {
        self.lock().retain(|e| e.id != ticket.id);
    }

    /// Sessions waiting now, with those told to close that have not yet: the
    /// number of workers that sessions not logged in hold.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn push(&self, entries: &mut Vec<Entry>, owner: Owner, took: bool) -> Ticket {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let evict = Arc::new(AtomicBool::new(false));
        entries.push(Entry {
            id,
            owner,
            took,
            since: Instant::now(),
            evict: Arc::clone(&evict),
        });
        Ticket { id, evict }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Places held: sessions not told to close.
fn places(entries: &[Entry]) -> usize {
    entries.iter().filter(|e| !e.evicted()).count()
}

/// Places `owner` holds.
fn count(entries: &[Entry], owner: Owner) -> usize {
    entries
        .iter()
        .filter(|e| !e.evicted() && e.owner == owner)
        .count()
}

/// The address other than `not` holding the most places, and how many; of
/// equals, the one whose oldest session is oldest (first in the list).
/// Pending sessions belong to nobody and are never chosen.
fn busiest(entries: &[Entry], not: Owner) -> Option<(Owner, usize)> {
    let mut best: Option<(Owner, usize)> = None;
    for e in entries.iter().filter(|e| !e.evicted()) {
        if e.owner == not || e.owner == Owner::Pending {
            continue;
        }
        if best.is_some_and(|(owner, _)| owner == e.owner) {
            continue;
        }
        let n = count(entries, e.owner);
        if best.map_or(true, |(_, most)| n > most) {
            best = Some((e.owner, n));
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    fn evicted(ticket: &Ticket) -> bool {
        ticket.evict.load(Ordering::SeqCst)
    }

    /// Makes every waiting session older than `MIN_AGE`.
    fn age(waiting: &Waiting) {
        for e in waiting.lock().iter_mut() {
            e.since -= MIN_AGE;
        }
    }

    #[test]
    fn half_the_pool_waits_and_young_sessions_are_not_evicted() {
        let waiting = Waiting::new(4, Duration::from_secs(60));
        let a = ip("192.0.2.1");
        let first = waiting.admit(a).unwrap();
        let _second = waiting.admit(a).unwrap();
        assert!(
            waiting.admit(a).is_none(),
            "the cap is full of young sessions of the same address"
        );
        waiting.leave(&first);
        assert!(waiting.admit(a).is_some());
        assert_eq!(waiting.len(), 2);
    }

    #[test]
    fn an_address_replaces_its_own_stale_session() {
        let waiting = Waiting::new(2, Duration::from_secs(60));
        let old = waiting.admit(ip("192.0.2.1")).unwrap();
        assert!(waiting.admit(ip("192.0.2.1")).is_none());
        age(&waiting);
        let new = waiting
            .admit(ip("192.0.2.1"))
            .expect("room made by the oldest");
        assert!(evicted(&old), "the oldest is told to close");
        assert!(!evicted(&new));
        assert_eq!(waiting.len(), 2, "counted until its session leaves");
        waiting.leave(&old);
        assert_eq!(waiting.len(), 1);
        waiting.leave(&old); // leaving twice is harmless
        assert_eq!(waiting.len(), 1);
    }

    #[test]
    fn a_newcomer_takes_from_the_address_holding_the_most_however_young() {
        let waiting = Waiting::new(10, Duration::from_secs(60));
        let a: Vec<Ticket> = (0..3)
            .map(|_| waiting.admit(ip("192.0.2.1")).unwrap())
            .collect();
        let b: Vec<Ticket> = (0..2)
            .map(|_| waiting.admit(ip("192.0.2.2")).unwrap())
            .collect();
        // Full: neither attacker can take from the other by timing.
        assert!(waiting.admit(ip("192.0.2.1")).is_none());
        assert!(waiting.admit(ip("192.0.2.2")).is_none());
        let newcomer = waiting.admit(ip("192.0.2.3")).expect("a place");
        assert!(evicted(&a[0]), "the oldest of the busiest address");
        assert!(!a[1..].iter().chain(&b).any(evicted));
        waiting.leave(&a[0]);
        // 2 + 2 + 1: a second newcomer takes from the older of the two.
        let second = waiting.admit(ip("192.0.2.4")).expect("a place");
        assert!(evicted(&a[1]));
        waiting.leave(&a[1]);
        // 1 + 2 + 1 + 1: a third from b; then one each, and nobody takes.
        assert!(waiting.admit(ip("192.0.2.5")).is_some());
        assert!(evicted(&b[0]));
        waiting.leave(&b[0]);
        assert!(waiting.admit(ip("192.0.2.6")).is_none());
        assert!(!evicted(&newcomer) && !evicted(&second));
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64_prefix() {
        assert_eq!(
            client_key("2001:db8:1:2:aaaa::1".parse().unwrap()),
            "2001:db8:1:2::".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            client_key("::ffff:192.0.2.7".parse().unwrap()),
            "192.0.2.7".parse::<IpAddr>().unwrap()
        );
        let waiting = Waiting::new(4, Duration::from_secs(60));
        let _a = waiting.admit(ip("2001:db8:1:2::1")).unwrap();
        let _b = waiting.admit(ip("2001:db8:1:2::2")).unwrap();
        assert!(
            waiting.admit(ip("2001:db8:1:2::3")).is_none(),
            "another address of the same /64 is the same client"
        );
        assert!(waiting.admit(ip("2001:db8:1:3::1")).is_some());
    }

    #[test]
    fn a_pending_session_settles_as_its_client() {
        let waiting = Waiting::new(4, Duration::from_secs(60));
        let a: Vec<Ticket> = (0..2)
            .map(|_| waiting.admit(ip("192.0.2.1")).unwrap())
            .collect();
        // Behind a balancer: admitted as a newcomer, then named.
        let pending = waiting.admit(None).expect("a place");
        assert!(evicted(&a[0]));
        assert!(
            !waiting.settle(&pending, "192.0.2.1".parse().unwrap()),
            "it would take the place its own address lost"
        );
        waiting.leave(&a[0]);
        let pending = waiting.admit(None).unwrap();
        assert!(waiting.settle(&pending, "192.0.2.9".parse().unwrap()));
        assert_eq!(waiting.len(), 2);
    }
}
