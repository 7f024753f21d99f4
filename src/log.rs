//! Logger set-up: standard error, the systemd journal through standard error,
//! syslog's socket `/dev/log`, or a file (`log_target`). Quoting client bytes
//! is in quote.rs, the xferlog(5) transfer log in xferlog.rs, the summing of
//! refused connections in refusals.rs.
//!
//! inetd hands us the client connection as fds 0, 1 and 2, so a log line on
//! standard error could land on the control channel: whenever standard error
//! is a socket, logs go to `log_file`, else syslog, else nowhere.
//!
//! A log that cannot be written never fails or slows a session: a failed write
//! is dropped and counted, and the count leads the next line that gets through.
//! Nothing a client sends reaches a line unquoted (`Quoted`), and how often
//! it gets refused costs one line per few seconds (`refusals`).

mod quote;
mod refusals;
mod xferlog;

pub use quote::{Quoted, Secs};
pub use refusals::*;
pub use xferlog::*;

use crate::listing::civil_from_epoch;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
/// syslog facility `ftp` (11), shifted as RFC 3164 wants it.
const FACILITY_FTP: u8 = 11 << 3;

/// `log_target`: where the server log goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// `log_file` when set; else standard error, or syslog when standard
    /// error is a socket (inetd, systemd Accept=yes).
    Auto,
    Stderr,
    Syslog,
    File,
}

impl Target {
    pub const NAMES: [(&'static str, Target); 4] = [
        ("auto", Target::Auto),
        ("stderr", Target::Stderr),
        ("syslog", Target::Syslog),
        ("file", Target::File),
    ];

    pub fn parse(value: &str) -> Result<Target, String> {
        Target::NAMES
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(value.trim()))
            .map(|(_, target)| *target)
            .ok_or_else(|| format!("expected auto, stderr, syslog or file, got {value:?}"))
    }

    pub fn name(self) -> &'static str {
        Target::NAMES
            .iter()
            .find(|(_, target)| *target == self)
            .map_or("auto", |(name, _)| name)
    }
}

/// `log_target` and `log_file` must say the same: a file for `file`, none
/// for `stderr` or `syslog` (one of the two would be ignored).
/// An error names the key whose setting is the odd one out.
pub fn check_target(target: Target, has_log_file: bool) -> Result<(), (&'static str, String)> {
    match (target, has_log_file) {
        (Target::File, false) => Err(("log_target", "log_target = file needs a log_file".into())),
        (Target::Stderr | Target::Syslog, true) => Err((
            "log_file",
            format!(
                "log_file is set but log_target = {}: set log_target = file, or empty log_file",
                target.name()
            ),
        )),
        _ => Ok(()),
    }
}

/// Where log lines go.
pub enum Destination {
    Stderr,
    /// Standard error is a stream of the systemd journal: `<N>` priority
    /// prefixes, no timestamp or pid (the journal records both).
    Journal,
    File(File),
    Syslog(UnixDatagram, std::path::PathBuf),
    Nowhere,
}

/// Picks and opens the destination. Must run before the chroot: afterwards
/// neither the log file's directory nor the syslog socket (`syslog_socket`,
/// normally `/dev/log`) can be reached. `stderr_is_client` is true when
/// standard error is a socket: nothing may be written there. A syslog socket
/// that cannot be reached is said once on standard error, which then takes
/// the log (with no usable standard error: no log, as with no syslog daemon).
pub fn open_destination(
    target: Target,
    log_file: Option<&Path>,
    syslog_socket: &Path,
    stderr_is_client: bool,
) -> io::Result<Destination> {
    match (target, log_file) {
        (Target::File | Target::Auto, Some(path)) => return Ok(Destination::File(open_append(path)?)),
        (Target::File, None) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "log_target = file needs log_file",
            ))
        }
        (Target::Stderr, _) if stderr_is_client => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "log_target = stderr, but standard error is the client's connection (inetd or systemd Accept=yes): use syslog or file",
            ))
        }
        (Target::Syslog, _) => {}
        (Target::Auto | Target::Stderr, _) if !stderr_is_client => return Ok(stderr_kind()),
        _ => {}
    }
    match connect_syslog(syslog_socket) {
        Ok(socket) => Ok(Destination::Syslog(socket, syslog_socket.to_path_buf())),
        Err(_) if stderr_is_client => Ok(Destination::Nowhere),
        Err(e) => {
            eprintln!(
                "minftpd: cannot reach syslog at {}: {e}; logging to standard error instead",
                syslog_socket.display()
            );
            Ok(stderr_kind())
        }
    }
}

fn connect_syslog(path: &Path) -> io::Result<UnixDatagram> {
    let socket = UnixDatagram::unbound()?;
    socket.connect(path)?;
    Ok(socket)
}

/// The journal when standard error is its stream, else plain standard error.
fn stderr_kind() -> Destination {
    if stderr_is_journal() {
        Destination::Journal
    } else {
        Destination::Stderr
    }
}

/// Whether standard error is the systemd journal: `JOURNAL_STREAM` (set by
/// systemd for a service whose output goes to the journal) names its device
/// and inode. The journal's stream is a socket, but not the client's: lines
/// may go there even in inetd mode (`StandardError=journal`).
pub fn stderr_is_journal() -> bool {
    std::env::var("JOURNAL_STREAM").is_ok_and(|stream| {
        crate::sys::fstat(crate::sys::borrow_stdio(2))
            .is_ok_and(|st| stream.trim() == format!("{}:{}", st.dev, st.ino))
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

/// A connected datagram socket as a writer: one datagram per line. When a
/// send fails (syslog stopped or restarted) and standard error is not the
/// client's connection, the failure is said there once and the line, and
/// every later one syslog refuses, goes there instead of being lost.
struct Datagrams {
    socket: UnixDatagram,
    path: std::path::PathBuf,
    stderr_usable: bool,
    warned: bool,
}

impl Write for Datagrams {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let e = match self.socket.send(buf) {
            Ok(n) => return Ok(n),
            Err(e) if !self.stderr_usable => return Err(e),
            Err(e) => e,
        };
        let mut stderr = io::stderr().lock();
        if !std::mem::replace(&mut self.warned, true) {
            let _ = writeln!(
                stderr,
                "minftpd: syslog at {} does not take log lines ({e}); they go to standard error",
                self.path.display()
            );
        }
        stderr.write_all(buf)?;
        stderr.write_all(b"\n")?;
        Ok(buf.len())
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
/// `stderr_is_client` as for `open_destination`.
pub fn init(level: log::LevelFilter, destination: Destination, stderr_is_client: bool) {
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
        Destination::Syslog(socket, path) => {
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
            let datagrams = Datagrams {
                socket,
                path,
                stderr_usable: !stderr_is_client,
                warned: false,
            };
            builder.target(env_logger::Target::Pipe(Box::new(Lossy::new(datagrams))));
        }
        Destination::Journal => {
            // sd-daemon(3): the journal reads "<N>" as the priority and adds
            // the time and pid itself; a message holds no newline (Quoted).
            builder.format(|buf, record| {
                writeln!(
                    buf,
                    "<{}>{}",
                    syslog_severity(record.level()),
                    record.args()
                )
            });
            builder.target(env_logger::Target::Pipe(Box::new(Lossy::new(io::stderr()))));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_targets_parse_and_must_agree_with_log_file() {
        for (name, target) in Target::NAMES {
            assert_eq!(Target::parse(&name.to_uppercase()), Ok(target));
            assert_eq!(target.name(), name);
        }
        assert!(Target::parse("journal").is_err());
        assert!(check_target(Target::File, true).is_ok());
        assert!(check_target(Target::Auto, false).is_ok());
        assert_eq!(
            check_target(Target::File, false).unwrap_err().0,
            "log_target"
        );
        assert_eq!(
            check_target(Target::Syslog, true).unwrap_err().0,
            "log_file"
        );
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
