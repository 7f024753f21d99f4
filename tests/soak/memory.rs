//! What the soak measures of the server's memory: PSS and RSS from
//! /proc/PID/smaps_rollup, the bound it must come back under after the load,
//! and the largest mappings when it does not.

use super::*;
use std::time::Duration;

/// The server's memory in KiB: resident (VmRSS) and proportional (Pss of
/// smaps_rollup). A figure that cannot be read fails the test rather than
/// reading as 0.
#[derive(Clone, Copy, Default, Debug)]
pub(super) struct Memory {
    pub(super) rss: u64,
    pub(super) pss: u64,
}

impl Memory {
    pub(super) fn of(server: &Server) -> Memory {
        let rss = server.status_field("VmRSS");
        let rollup = std::fs::read_to_string(format!("/proc/{}/smaps_rollup", server.pid()))
            .unwrap_or_else(|e| panic!("cannot read smaps_rollup: {e}"));
        let pss = rollup
            .lines()
            .find_map(|l| l.strip_prefix("Pss:"))
            .unwrap_or_else(|| panic!("no Pss in smaps_rollup: {rollup}"));
        Memory {
            rss: kib(&rss),
            pss: kib(pss),
        }
    }

    pub(super) fn max(self, other: Memory) -> Memory {
        Memory {
            rss: self.rss.max(other.rss),
            pss: self.pss.max(other.pss),
        }
    }
}

/// The server's mappings that hold the most memory (Pss), largest first, as
/// "KiB range name" lines: where memory that did not come back lives.
pub(super) fn largest_mappings(server: &Server, count: usize) -> String {
    let smaps = std::fs::read_to_string(format!("/proc/{}/smaps", server.pid()))
        .unwrap_or_else(|e| format!("cannot read smaps: {e}"));
    let mut mappings: Vec<(u64, String)> = Vec::new();
    let mut header = String::new();
    for line in smaps.lines() {
        if let Some(pss) = line.strip_prefix("Pss:") {
            mappings.push((kib(pss), header.clone()));
        } else if line
            .split_whitespace()
            .next()
            .is_some_and(|f| f.contains('-'))
        {
            header = line.to_string();
        }
    }
    mappings.sort_by_key(|m| std::cmp::Reverse(m.0));
    mappings
        .iter()
        .take(count)
        .map(|(pss, header)| format!("{pss:>8} KiB  {header}"))
        .collect::<Vec<_>>()
        .join("\n")
}

pub(super) fn kib(field: &str) -> u64 {
    field
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("cannot read a memory figure: {field:?}"))
}

/// Worker threads of the soak's server (`--max-clients`).
pub(super) const WORKERS: u64 = 400;
/// How long after the load memory is measured again.
pub(super) const AFTER_LOAD: Duration = Duration::from_secs(10);

/// A box that had a busy minute returns to its idle memory: at most idle x
/// 1.2 plus the stack pages each worker touched (16 KiB a thread).
pub(super) fn memory_bound(idle: u64) -> u64 {
    idle * 6 / 5 + 16 * WORKERS
}
