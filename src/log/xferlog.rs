//! The xferlog(5) transfer log, one line a transfer in wu-ftpd's format. A
//! client controls the path and user name in it, escaped (`xferlog_field`)
//! so that a field cannot hold a blank or end the line.

use super::quote::xferlog_field;
use super::{now, open_append, Lossy, MONTHS};
use crate::listing::civil_from_epoch;
use std::fs::File;
use std::io::{self};
use std::path::Path;
use std::sync::Mutex;

const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];

/// One finished or aborted transfer, for the xferlog.
pub struct Transfer<'a> {
    pub seconds: u64,
    pub peer: std::net::IpAddr,
    pub bytes: u64,
    pub path: &'a [u8],
    pub ascii: bool,
    pub incoming: bool,
    pub anonymous: bool,
    pub user: &'a str,
    pub complete: bool,
}

/// The wu-ftpd xferlog(5) file.
pub struct XferLog(Mutex<Lossy<File>>);

impl XferLog {
    pub fn open(path: &Path) -> io::Result<XferLog> {
        Ok(XferLog(Mutex::new(Lossy::new(open_append(path)?))))
    }

    pub fn record(&self, transfer: &Transfer) {
        let line = xferlog_line(now(), transfer);
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .write_line(line.as_bytes());
    }
}

/// `current-time transfer-time remote-host file-size filename transfer-type
/// special-action-flag direction access-mode username service-name
/// authentication-method authenticated-user-id completion-status`.
pub fn xferlog_line(now: i64, t: &Transfer) -> String {
    let (y, mo, d, h, mi, s) = civil_from_epoch(now);
    let weekday = WEEKDAYS[now.div_euclid(86400).rem_euclid(7) as usize];
    // Spaces would split the field; xferlog readers expect them replaced.
    let path = xferlog_field(t.path);
    let user = xferlog_field(t.user.as_bytes());
    format!(
        "{weekday} {} {d:>2} {h:02}:{mi:02}:{s:02} {y} {} {} {} {} {} _ {} {} {} ftp 0 * {}\n",
        MONTHS[mo as usize - 1],
        t.seconds.max(1),
        t.peer.to_canonical(),
        t.bytes,
        path,
        if t.ascii { 'a' } else { 'b' },
        if t.incoming { 'i' } else { 'o' },
        if t.anonymous { 'a' } else { 'r' },
        user,
        if t.complete { 'c' } else { 'i' },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xferlog_lines_follow_the_wu_ftpd_format() {
        let t = Transfer {
            seconds: 0,
            peer: "::ffff:127.0.0.1".parse().unwrap(),
            bytes: 1234,
            path: b"/pub/a file.txt",
            ascii: false,
            incoming: false,
            anonymous: true,
            user: "anonymous",
            complete: true,
        };
        assert_eq!(xferlog_line(1_700_000_000, &t), "Tue Nov 14 22:13:20 2023 1 127.0.0.1 1234 /pub/a_file.txt b _ o a anonymous ftp 0 * c\n");
    }
}
