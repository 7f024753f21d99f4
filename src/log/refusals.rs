//! Refused connections, summed: a client controls how often its connections
//! are refused (one connect each), so refusals are counted per address and
//! reason, written once and then as one line per few seconds, in a table of
//! bounded size.

use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long refusals of one kind from one address are summed before their
/// count is written: one line when they start, then one every window while
/// they go on.
pub const REFUSAL_WINDOW: Duration = Duration::from_secs(5);
/// Address and reason pairs tracked one by one. Refusals beyond it (a flood
/// from many addresses at once) are summed together, so the table's memory
/// is bounded whatever the clients do.
const REFUSALS_TRACKED: usize = 1024;

/// Repeated refusals summed since a window began.
struct Tally {
    since: Instant,
    more: u64,
}

/// The refusal throttle: a connection refused before its greeting (pool
/// full, too many from its address, a peer not in `proxy_from`) costs the
/// client one connect, so a client can cause them as fast as it connects.
/// Each line of the log would cost far more than that; here the first
/// refusal of a kind from an address is written in full and the rest are
/// counted, one line per `REFUSAL_WINDOW` while they go on.
pub struct Refusals {
    /// A list, not a map: it is short, and a map's code would cost the
    /// static binary more than its size budget allows.
    tracked: Vec<(IpAddr, String, Tally)>,
    /// Refusals that found the table full.
    untracked: Tally,
}

impl Refusals {
    pub fn new(now: Instant) -> Refusals {
        Refusals {
            tracked: Vec::new(),
            untracked: Tally {
                since: now,
                more: 0,
            },
        }
    }

    /// Counts one refusal. True when it is the first of its kind from its
    /// address in a window and the caller writes its line in full; the
    /// summaries of windows that are over come back in `summaries`.
    pub fn note(
        &mut self,
        ip: IpAddr,
        reason: &str,
        now: Instant,
        summaries: &mut Vec<String>,
    ) -> bool {
        let known = self
            .tracked
            .iter_mut()
            .find(|(i, r, _)| *i == ip && r == reason);
        if let Some((_, _, tally)) = known {
            if now.duration_since(tally.since) >= REFUSAL_WINDOW {
                summaries.extend(summary(&ip.to_string(), reason, tally, now));
                *tally = Tally {
                    since: now,
                    more: 0,
                };
            }
            tally.more += 1;
            return false;
        }
        if self.tracked.len() >= REFUSALS_TRACKED {
            self.flush(now, summaries);
        }
        if self.tracked.len() >= REFUSALS_TRACKED {
            self.untracked.more += 1;
            return false;
        }
        self.tracked.push((
            ip,
            reason.to_string(),
            Tally {
                since: now,
                more: 0,
            },
        ));
        true
    }

    /// The summaries of windows that are over; pairs that went quiet are
    /// forgotten (their next refusal is written in full again).
    pub fn flush(&mut self, now: Instant, summaries: &mut Vec<String>) {
        self.tracked.retain_mut(|(ip, reason, tally)| {
            if now.duration_since(tally.since) < REFUSAL_WINDOW {
                return true;
            }
            summaries.extend(summary(&ip.to_string(), reason, tally, now));
            let active = tally.more > 0;
            *tally = Tally {
                since: now,
                more: 0,
            };
            active
        });
        let untracked = &mut self.untracked;
        if now.duration_since(untracked.since) >= REFUSAL_WINDOW {
            let others = format!("more than {REFUSALS_TRACKED} other addresses");
            summaries.extend(summary(&others, "various reasons", untracked, now));
            *untracked = Tally {
                since: now,
                more: 0,
            };
        }
    }
}

/// "refused N more connection(s) from WHO in the last S s: REASON", or
/// nothing when none came after the first.
fn summary(who: &str, reason: &str, tally: &Tally, now: Instant) -> Option<String> {
    (tally.more > 0).then(|| {
        format!(
            "refused {} more connection{} from {who} in the last {} s: {reason}",
            tally.more,
            if tally.more == 1 { "" } else { "s" },
            now.duration_since(tally.since).as_secs().max(1)
        )
    })
}

static REFUSALS: Mutex<Option<Refusals>> = Mutex::new(None);

/// Runs `f` on the process's refusal throttle and writes the summaries it returns.
fn with_refusals<T>(f: impl FnOnce(&mut Refusals, Instant, &mut Vec<String>) -> T) -> T {
    let now = Instant::now();
    let mut summaries = Vec::new();
    let result = {
        let mut guard = REFUSALS.lock().unwrap_or_else(|e| e.into_inner());
        let refusals = guard.get_or_insert_with(|| Refusals::new(now));
        f(refusals, now, &mut summaries)
    };
    for line in summaries {
        log::warn!("{line}");
    }
    result
}

/// Counts a refused connection; true when the caller should write its line
/// (the first of its kind from `ip` in a window).
pub fn first_refusal(ip: IpAddr, reason: &str) -> bool {
    with_refusals(|r, now, out| r.note(ip, reason, now, out))
}

/// Writes the counts of refusal windows that are over; the main thread calls
/// it a few times a second, so a count is written even when its flood stops.
pub fn flush_refusals() {
    with_refusals(|r, now, out| r.flush(now, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_refusals_are_summed_per_address_and_reason() {
        let start = Instant::now();
        let mut refusals = Refusals::new(start);
        let mut out = Vec::new();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(refusals.note(a, "full", start, &mut out));
        assert!(refusals.note(b, "full", start, &mut out));
        assert!(refusals.note(a, "other", start, &mut out));
        for n in 0..1000 {
            let at = start + Duration::from_millis(n);
            assert!(!refusals.note(a, "full", at, &mut out));
        }
        refusals.flush(start + Duration::from_secs(4), &mut out);
        assert!(out.is_empty(), "{out:?}");
        refusals.flush(start + REFUSAL_WINDOW, &mut out);
        assert_eq!(
            out,
            ["refused 1000 more connections from 192.0.2.1 in the last 5 s: full"]
        );
        // Quiet pairs are forgotten; the flooding one goes on being summed.
        out.clear();
        let later = start + REFUSAL_WINDOW * 2;
        assert!(!refusals.note(a, "full", later, &mut out));
        assert!(refusals.note(b, "full", later, &mut out));
        assert!(out.is_empty(), "{out:?}");
    }

    #[test]
    fn the_refusal_table_is_bounded() {
        let start = Instant::now();
        let mut refusals = Refusals::new(start);
        let mut out = Vec::new();
        let mut written = 0;
        for n in 0..REFUSALS_TRACKED as u32 * 3 {
            let ip = IpAddr::from(std::net::Ipv6Addr::from(n as u128));
            written += usize::from(refusals.note(ip, "full", start, &mut out));
        }
        assert_eq!(written, REFUSALS_TRACKED);
        assert_eq!(refusals.tracked.len(), REFUSALS_TRACKED);
        refusals.flush(start + REFUSAL_WINDOW, &mut out);
        assert_eq!(
            out,
            [format!("refused 2048 more connections from more than {REFUSALS_TRACKED} other addresses in the last 5 s: various reasons")]
        );
        assert!(refusals.tracked.is_empty());
    }
}
