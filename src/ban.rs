//! The built-in ban (`ban_after`, `ban_time`), for boxes without fail2ban: an address
//! with `ban_after` failed logins within `ban_time` seconds is refused at connect for
//! `ban_time` seconds. A hostile client controls which addresses fail (a spray of source
//! addresses, or of PROXY-named ones through a trusted balancer): the table holds at most
//! `CAPACITY` addresses, the oldest forgotten first, so a spray cannot grow memory; only
//! an address's own failures count toward its ban.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Addresses remembered at most.
pub const CAPACITY: usize = 4096;

/// When the table is full, it keeps this many of the newest addresses.
const KEEP: u64 = CAPACITY as u64 * 7 / 8;

/// The 421 text a banned address is refused with.
pub const REFUSAL: &str = "Too many failed logins from your address; try again later.";

/// What is known of one address.
struct Entry {
    /// Failures since `since`.
    failures: u64,
    /// The first failure counted; failures older than `ban_time` start anew.
    since: Instant,
    /// Refused until then, when banned.
    until: Option<Instant>,
    /// When it entered the table: the n-th address to enter has stamp n.
    stamp: u64,
}

#[derive(Default)]
struct Table {
    entries: HashMap<IpAddr, Entry>,
    next_stamp: u64,
}

/// The failed-login table every session shares.
pub struct Bans {
    after: u64,
    time: Duration,
    table: Mutex<Table>,
}

impl Bans {
    /// `after` failures within `time` ban for `time`; `after` 0 turns the ban off.
    pub fn new(after: u64, time: Duration) -> Bans {
        Bans {
            after,
            time,
            table: Mutex::default(),
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// True while `ip` is banned. An ended ban is logged and forgotten here.
    pub fn refuses(&self, ip: IpAddr) -> bool {
        self.after != 0 && self.refuses_at(ip.to_canonical(), Instant::now())
    }

    fn refuses_at(&self, ip: IpAddr, now: Instant) -> bool {
        let mut table = self.table();
        let Some(entry) = table.entries.get(&ip) else {
            return false;
        };
        match entry.until {
            Some(until) if now < until => true,
            Some(_) => {
                table.entries.remove(&ip);
                log_end(ip, "ended");
                false
            }
            None => false,
        }
    }

    /// Counts a failed login from `ip`; true when the address is banned now
    /// (by this failure or before it).
    pub fn failed(&self, ip: IpAddr) -> bool {
        self.after != 0 && self.failed_at(ip.to_canonical(), Instant::now())
    }

    fn failed_at(&self, ip: IpAddr, now: Instant) -> bool {
        let mut table = self.table();
        let table = &mut *table;
        // Full: room is made before the lookup, even when `ip` is known
        // (it may then be among the forgotten, as the oldest are).
        if table.entries.len() >= CAPACITY {
            table.forget_oldest(now);
        }
        let stamp = table.next_stamp;
        let entry = table.entries.entry(ip).or_insert(Entry {
            failures: 0,
            since: now,
            until: None,
            stamp,
        });
        if entry.stamp == stamp {
            table.next_stamp += 1;
        }
        if let Some(until) = entry.until {
            if now < until {
                return true;
            }
            log_end(ip, "ended");
            entry.until = None;
            entry.failures = 0;
        }
        if now.saturating_duration_since(entry.since) > self.time {
            entry.failures = 0;
        }
        if entry.failures == 0 {
            entry.since = now;
        }
        entry.failures += 1;
        let banned = entry.failures >= self.after;
        if banned {
            entry.until = Some(now + self.time);
            log::warn!(
                "ban started: peer={ip} failures={} seconds={}",
                entry.failures,
                self.time.as_secs()
            );
        }
        banned
    }

    /// Addresses remembered now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.table().entries.len()
    }
}

impl Table {
    /// Makes room: forgets every address but the `KEEP` newest. Stamps count
    /// up by one per address, so those are the ones stamped in the last
    /// `KEEP`; one pass every `CAPACITY - KEEP` new addresses keeps a spray
    /// cheap. An ended ban is logged as such, a running one as cut short.
    fn forget_oldest(&mut self, now: Instant) {
        let oldest_kept = self.next_stamp.saturating_sub(KEEP);
        self.entries.retain(|ip, entry| {
            if entry.stamp >= oldest_kept {
                return true;
            }
            if let Some(until) = entry.until {
                log_end(
                    *ip,
                    if now < until {
                        "cut short: table full"
                    } else {
                        "ended"
                    },
                );
            }
            false
        });
    }
}

fn log_end(ip: IpAddr, how: &str) {
    log::warn!("ban {how}: peer={ip}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u32) -> IpAddr {
        IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + n))
    }

    #[test]
    fn the_nth_failure_bans_for_ban_time_then_the_ban_ends() {
        let bans = Bans::new(3, Duration::from_secs(60));
        let t = Instant::now();
        assert!(!bans.failed_at(ip(1), t));
        assert!(!bans.failed_at(ip(1), t));
        assert!(!bans.refuses_at(ip(1), t));
        assert!(bans.failed_at(ip(1), t + Duration::from_secs(1)));
        assert!(bans.refuses_at(ip(1), t + Duration::from_secs(60)));
        assert!(!bans.refuses_at(ip(2), t), "only its own failures count");
        assert!(!bans.refuses_at(ip(1), t + Duration::from_secs(62)));
        assert_eq!(bans.len(), 0, "an ended ban is forgotten");
    }

    #[test]
    fn failures_older_than_ban_time_do_not_count() {
        let bans = Bans::new(2, Duration::from_secs(10));
        let t = Instant::now();
        assert!(!bans.failed_at(ip(1), t));
        assert!(!bans.failed_at(ip(1), t + Duration::from_secs(11)));
        assert!(bans.failed_at(ip(1), t + Duration::from_secs(12)));
    }

    #[test]
    fn off_by_default_remembers_nothing() {
        let bans = Bans::new(0, Duration::from_secs(10));
        assert!(!bans.failed(ip(1)));
        assert!(!bans.refuses(ip(1)));
        assert_eq!(bans.len(), 0);
    }

    #[test]
    fn an_ipv4_mapped_address_is_the_ipv4_address() {
        let bans = Bans::new(1, Duration::from_secs(10));
        assert!(bans.failed("::ffff:10.0.0.7".parse().unwrap()));
        assert!(bans.refuses("10.0.0.7".parse().unwrap()));
    }

    #[test]
    fn a_spray_of_100000_addresses_stays_within_capacity() {
        let bans = Bans::new(2, Duration::from_secs(900));
        let t = Instant::now();
        for n in 0..100_000 {
            bans.failed_at(ip(n), t);
            // Some addresses come back, leaving stale places behind.
            if n % 3 == 0 {
                bans.refuses_at(ip(n), t);
            }
        }
        let table = bans.table();
        assert!(table.entries.len() <= CAPACITY);
        assert!(
            table.entries.contains_key(&ip(99_999)),
            "the newest is kept"
        );
        assert!(!table.entries.contains_key(&ip(0)), "the oldest is gone");
    }

    #[test]
    fn the_oldest_bans_are_forgotten_first_when_full() {
        let bans = Bans::new(1, Duration::from_secs(900));
        let t = Instant::now();
        for n in 0..=CAPACITY as u32 {
            assert!(bans.failed_at(ip(n), t));
        }
        // Room was made for the newest by forgetting the oldest eighth.
        let forgotten = (CAPACITY as u64 - KEEP) as u32;
        assert!(!bans.refuses_at(ip(0), t));
        assert!(!bans.refuses_at(ip(forgotten - 1), t));
        assert!(bans.refuses_at(ip(forgotten), t));
        assert!(bans.refuses_at(ip(CAPACITY as u32), t));
        assert_eq!(bans.len(), KEEP as usize + 1);
    }
}
