//! Logger set-up (standard error, a file, or syslog's socket, `/dev/log`) and the
//! xferlog(5) transfer log.
//!
//! inetd hands us the client connection as fds 0, 1 and 2, so a log line on
//! standard error could land on the control channel: whenever standard error
//! is a socket, logs go to `log_file`, else syslog, else nowhere.
//!
//! A log that cannot be written never fails or slows a session: a failed write
//! is dropped and counted, and the count leads the next line that gets through.

use crate::listing::civil_from_epoch;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
/// syslog facility `ftp` (11), shifted as RFC 3164 wants it.
const FACILITY_FTP: u8 = 11 << 3;

/// Where log lines go.
pub enum Destination {
    Stderr,
    File(File),
    Syslog(UnixDatagram),
    Nowhere,
}

/// Picks and opens the destination. Must run before the chroot: afterwards
/// neither the log file's directory nor the syslog socket (`syslog_socket`,
/// normally `/dev/log`) can be reached. A syslog socket that cannot be
/// reached means no log, as with a missing syslog daemon.
pub fn open_destination(
    log_file: Option<&Path>,
    syslog_socket: &Path,
    stderr_unusable: bool,
) -> io::Result<Destination> {
    if let Some(path) = log_file {
        let file = open_append(path)?;
        return Ok(Destination::File(file));
    }
    if !stderr_unusable {
        return Ok(Destination::Stderr);
    }
    let socket = UnixDatagram::unbound()?;
    Ok(match socket.connect(syslog_socket) {
        Ok(()) => Destination::Syslog(socket),
        Err(_) => Destination::Nowhere,
    })
}

/// Opens a log file for appending, with a message that names it on failure.
pub fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot open log file {}: {e}", path.display()),
            )
        })
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A writer that never fails: errors are counted and reported in the next
/// line that is written successfully.
struct Lossy<W: Write> {
    inner: W,
    dropped: AtomicU64,
}

impl<W: Write> Lossy<W> {
    fn new(inner: W) -> Lossy<W> {
        Lossy {
            inner,
            dropped: AtomicU64::new(0),
        }
    }

    fn write_line(&mut self, line: &[u8]) {
        let dropped = self.dropped.load(Ordering::Relaxed);
        let result = if dropped > 0 {
            let mut with_note = format!("({dropped} log lines dropped) ").into_bytes();
            with_note.extend_from_slice(line);
            self.inner.write_all(&with_note)
        } else {
            self.inner.write_all(line)
        };
        match result {
            Ok(()) => self.dropped.store(0, Ordering::Relaxed),
            Err(_) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl<W: Write> Write for Lossy<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_line(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        let _ = self.inner.flush();
        Ok(())
    }
}

/// A connected datagram socket as a writer: one datagram per line.
struct Datagrams(UnixDatagram);

impl Write for Datagrams {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.send(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn syslog_severity(level: log::Level) -> u8 {
    match level {
        log::Level::Error => 3,
        log::Level::Warn => 4,
        log::Level::Info => 6,
        log::Level::Debug | log::Level::Trace => 7,
    }
}

/// Installs the global logger. `RUST_LOG`, when set, overrides `level`.
pub fn init(level: log::LevelFilter, destination: Destination) {
    let mut builder = env_logger::Builder::new();
    builder.filter_level(level);
    if let Ok(spec) = std::env::var("RUST_LOG") {
        builder.parse_filters(&spec);
    }
    let pid = std::process::id();
    match destination {
        Destination::Nowhere => {
            log::set_max_level(log::LevelFilter::Off);
            return;
        }
        Destination::Syslog(socket) => {
            builder.format(move |buf, record| {
                let (_, mo, d, h, mi, s) = civil_from_epoch(now());
                let pri = FACILITY_FTP | syslog_severity(record.level());
                // RFC 3164: <PRI>Mmm dd hh:mm:ss TAG[pid]: MSG
                write!(
                    buf,
                    "<{pri}>{} {d:>2} {h:02}:{mi:02}:{s:02} minftpd[{pid}]: {}",
                    MONTHS[mo as usize - 1],
                    record.args()
                )
            });
            builder.target(env_logger::Target::Pipe(Box::new(Lossy::new(Datagrams(
                socket,
            )))));
        }
        Destination::Stderr | Destination::File(_) => {
            builder.format(move |buf, record| {
                let (y, mo, d, h, mi, s) = civil_from_epoch(now());
                writeln!(
                    buf,
                    "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z minftpd[{pid}] {}: {}",
                    record.level(),
                    record.args()
                )
            });
            if let Destination::File(file) = destination {
                builder.target(env_logger::Target::Pipe(Box::new(Lossy::new(file))));
            } else {
                builder.target(env_logger::Target::Pipe(Box::new(Lossy::new(io::stderr()))));
            }
        }
    }
    let _ = builder.try_init();
}

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
    let path: String = String::from_utf8_lossy(t.path)
        .chars()
        .map(|c| if c.is_whitespace() { '_' } else { c })
        .collect();
    let user: String = t
        .user
        .chars()
        .map(|c| if c.is_whitespace() { '_' } else { c })
        .collect();
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

    struct Flaky {
        fail: bool,
        out: Vec<u8>,
    }

    impl Write for Flaky {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.fail {
                return Err(io::Error::from_raw_os_error(libc::ENOSPC));
            }
            self.out.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn failed_log_writes_are_counted_and_reported() {
        let mut log = Lossy::new(Flaky {
            fail: true,
            out: Vec::new(),
        });
        log.write_line(b"one\n");
        log.write_line(b"two\n");
        log.inner.fail = false;
        log.write_line(b"three\n");
        log.write_line(b"four\n");
        assert_eq!(
            String::from_utf8(log.inner.out).unwrap(),
            "(2 log lines dropped) three\nfour\n"
        );
    }
}
