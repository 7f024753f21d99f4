//! Logger set-up (standard error, the systemd journal through standard error,
//! syslog's socket `/dev/log`, or a file; `log_target`) and the xferlog(5)
//! transfer log.
//!
//! inetd hands us the client connection as fds 0, 1 and 2, so a log line on
//! standard error could land on the control channel: whenever standard error
//! is a socket, logs go to `log_file`, else syslog, else nowhere.
//!
//! A log that cannot be written never fails or slows a session: a failed write
//! is dropped and counted, and the count leads the next line that gets through.
//! Nothing a client sends reaches a line unquoted (`Quoted`).
//!
//! A client controls how often connections are refused (one connect each):
//! refusals are summed per address and reason, one line per few seconds, in a
//! table of bounded size.

use crate::listing::civil_from_epoch;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::IpAddr;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
/// syslog facility `ftp` (11), shifted as RFC 3164 wants it.
const FACILITY_FTP: u8 = 11 << 3;

/// A duration in seconds with `decimals` digits after the point (0: as few
/// as it needs, none for whole seconds), rounded half up. Integer arithmetic:
/// formatting an `f64` brought the float printing code into the static
/// binary (about 10 KB) for a few log lines.
pub struct Secs(pub std::time::Duration, pub u32);

impl std::fmt::Display for Secs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Secs(duration, decimals) = *self;
        if decimals == 0 {
            let (whole, nanos) = (duration.as_secs(), duration.subsec_nanos());
            let fraction = format!("{nanos:09}");
            let fraction = fraction.trim_end_matches('0');
            return match fraction {
                "" => write!(f, "{whole}"),
                _ => write!(f, "{whole}.{fraction}"),
            };
        }
        let scale = 10u128.pow(decimals);
        let units = (duration.as_nanos() * scale + 500_000_000) / 1_000_000_000;
        let width = decimals as usize;
        write!(f, "{}.{:0width$}", units / scale, units % scale)
    }
}

/// A client-supplied byte string as it may appear in a log line: quoted, with
/// `"` and `\\` escaped, control characters (C0, DEL, C1), line and paragraph
/// separators and bidirectional overrides as `\xNN` or `\u{NNNN}`, and bytes
/// that are not UTF-8 as `\xNN`. A client can put anything into a path or a
/// user name; with this nothing it sends can end a log line early, start a
/// forged one, move a terminal's cursor, or look like text outside the quotes.
pub struct Quoted<'a>(pub &'a [u8]);

impl std::fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"")?;
        write_escaped(f, self.0, false)?;
        f.write_str("\"")
    }
}

/// Writes `bytes` escaped as `Quoted` does; `blank_as_underscore` also turns
/// spaces into `_` (xferlog's space-separated fields).
fn write_escaped(
    out: &mut impl std::fmt::Write,
    bytes: &[u8],
    blank_as_underscore: bool,
) -> std::fmt::Result {
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.write_str("\\\"")?,
                '\\' => out.write_str("\\\\")?,
                ' ' if blank_as_underscore => out.write_char('_')?,
                c if c.is_control() || c.is_whitespace() && c != ' ' => {
                    if (c as u32) < 0x100 {
                        write!(out, "\\x{:02x}", c as u32)?
                    } else {
                        write!(out, "\\u{{{:04x}}}", c as u32)?
                    }
                }
                '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' => {
                    write!(out, "\\u{{{:04x}}}", c as u32)?
                }
                c => out.write_char(c)?,
            }
        }
        for b in chunk.invalid() {
            write!(out, "\\x{b:02x}")?;
        }
    }
    Ok(())
}

/// A client-supplied string for a space-separated xferlog field: escaped like
/// `Quoted`, spaces as `_`, without the quotes.
fn xferlog_field(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    let _ = write_escaped(&mut out, bytes, true);
    out
}

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

    #[test]
    fn client_bytes_in_log_lines_are_quoted_and_escaped() {
        let shown = |b: &[u8]| Quoted(b).to_string();
        assert_eq!(shown(b"/pub/a file.txt"), "\"/pub/a file.txt\"");
        assert_eq!(
            shown(b"x\r\n2026-01-01T00:00:00Z minftpd[1] WARN: login failed: peer=203.0.113.77"),
            "\"x\\x0d\\x0a2026-01-01T00:00:00Z minftpd[1] WARN: login failed: peer=203.0.113.77\""
        );
        assert_eq!(shown(b"\x1b[2J\x07"), "\"\\x1b[2J\\x07\"");
        assert_eq!(shown(b"say \"hi\" \\ bye"), "\"say \\\"hi\\\" \\\\ bye\"");
        assert_eq!(shown(b"caf\xc3\xa9 \xff\xfe"), "\"caf\u{e9} \\xff\\xfe\"");
        assert_eq!(
            shown("a\u{202e}b\u{85}c".as_bytes()),
            "\"a\\u{202e}b\\x85c\""
        );
        assert_eq!(xferlog_field(b"/a b\nc\\"), "/a_b\\x0ac\\\\");
    }

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

    #[test]
    fn seconds_are_written_like_the_float_formats_they_replace() {
        use std::time::Duration;
        let ms = Duration::from_millis;
        assert_eq!(Secs(ms(1234), 1).to_string(), "1.2");
        assert_eq!(Secs(ms(1250), 1).to_string(), "1.3");
        assert_eq!(Secs(ms(99_960), 1).to_string(), "100.0");
        assert_eq!(
            Secs(Duration::from_nanos(1_234_567), 3).to_string(),
            "0.001"
        );
        assert_eq!(Secs(ms(2_000), 3).to_string(), "2.000");
        assert_eq!(Secs(ms(5_000), 0).to_string(), "5");
        assert_eq!(Secs(ms(500), 0).to_string(), "0.5");
    }

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
