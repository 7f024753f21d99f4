//! Directory listings: the line of one entry in LIST (`ls -l` style), NLST
//! (names) and MLSD/MLST facts (RFC 3659), written without allocating.
//! Which entries, in which order: entries.rs. A client controls nothing here
//! but which entries are shown; a line is built on the stack.

use crate::fs::TEMP_PREFIX;
use crate::sys::FileStat;
use std::io::{self, Write};

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
/// `ls` shows the year instead of the time for entries older than this.
const SIX_MONTHS: i64 = 15_778_476;

/// Which listing a command asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// LIST; `all` shows dot files (`-a`).
    Long { all: bool },
    /// NLST: bare names.
    Names,
    /// MLSD: one RFC 3659 fact line per entry.
    Facts,
}

/// What the session may do with the listed entries (for the MLSx `perm`
/// fact: it names only what this session may do), and which MLSx facts it
/// asked for with `OPTS MLST`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    /// May create files and directories in the directories listed.
    pub create: bool,
    /// May delete, rename, overwrite and append to what is listed.
    pub modify: bool,
    /// Only world-readable files may be read (anonymous sessions).
    pub world_readable_only: bool,
    pub facts: u8,
}

impl Access {
    #[cfg(test)]
    fn read_only(facts: u8) -> Access {
        Access {
            create: false,
            modify: false,
            world_readable_only: false,
            facts,
        }
    }

    /// The RFC 3659 `perm` letters of an entry, in the RFC's order.
    fn perm(&self, st: &FileStat) -> &'static [u8] {
        if st.is_dir() {
            match (self.create, self.modify) {
                (true, true) => b"cdeflmp",
                (true, false) => b"celm",
                (false, true) => b"deflp",
                (false, false) => b"el",
            }
        } else {
            let readable = !self.world_readable_only || st.mode & 0o004 != 0;
            match (readable, self.modify) {
                (true, true) => b"adfrw",
                (false, true) => b"adfw",
                (true, false) => b"r",
                (false, false) => b"",
            }
        }
    }
}

/// The MLSx facts, in the order FEAT lists them; bit n of a fact mask is FACT_NAMES[n].
pub const FACT_NAMES: [&str; 6] = ["type", "size", "modify", "perm", "unix.mode", "unique"];
pub const ALL_FACTS: u8 = 0b11_1111;

/// The mask of an `OPTS MLST` fact list (`type;size;`); unknown names are ignored.
pub fn select_facts(list: &str) -> u8 {
    list.split(';')
        .filter_map(|name| {
            FACT_NAMES
                .iter()
                .position(|f| f.eq_ignore_ascii_case(name.trim()))
        })
        .fold(0, |mask, bit| mask | 1 << bit)
}

/// A fact mask as the list `OPTS MLST` replies with (`type;size;`).
pub fn fact_list(mask: u8) -> String {
    FACT_NAMES
        .iter()
        .enumerate()
        .filter(|(bit, _)| mask & 1 << bit != 0)
        .map(|(_, name)| format!("{name};"))
        .collect()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = month as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month 1-12, day 1-31, hour, minute, second) in UTC of epoch seconds.
pub fn civil_from_epoch(secs: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        month,
        day,
        (rem / 3600) as u32,
        (rem % 3600 / 60) as u32,
        (rem % 60) as u32,
    )
}

/// RFC 3659 time-val: `YYYYMMDDHHMMSS` in UTC.
pub fn timeval(secs: i64) -> String {
    let (y, mo, d, h, mi, s) = civil_from_epoch(secs);
    format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}")
}

fn mode_string(mode: u32) -> [u8; 10] {
    let kind = match mode & libc::S_IFMT {
        libc::S_IFDIR => b'd',
        libc::S_IFLNK => b'l',
        libc::S_IFCHR => b'c',
        libc::S_IFBLK => b'b',
        libc::S_IFIFO => b'p',
        libc::S_IFSOCK => b's',
        _ => b'-',
    };
    let bit = |mask: u32, c: u8| if mode & mask != 0 { c } else { b'-' };
    let exec = |x: u32, special: u32, set: u8, unset: u8| match (mode & x != 0, mode & special != 0)
    {
        (true, true) => set,
        (false, true) => unset,
        (true, false) => b'x',
        (false, false) => b'-',
    };
    [
        kind,
        bit(0o400, b'r'),
        bit(0o200, b'w'),
        exec(0o100, 0o4000, b's', b'S'),
        bit(0o040, b'r'),
        bit(0o020, b'w'),
        exec(0o010, 0o2000, b's', b'S'),
        bit(0o004, b'r'),
        bit(0o002, b'w'),
        exec(0o001, 0o1000, b't', b'T'),
    ]
}

/// A short line assembled on the stack: a listing writes one per entry, and
/// `write!` with padding cost more than the stat of the entry in profiles.
struct Line {
    buf: [u8; 192],
    len: usize,
}

impl Line {
    fn new() -> Line {
        Line {
            buf: [0; 192],
            len: 0,
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    /// A decimal number padded with spaces to `width` (left-aligned if asked).
    fn num(&mut self, n: u64, width: usize, left: bool) {
        let mut digits = [0u8; 24];
        let text = in_radix(n, 10, 1, &mut digits);
        let pad = width.saturating_sub(text.len());
        if !left {
            self.push(&b"                    "[..pad]);
        }
        self.push(text);
        if left {
            self.push(&b"                    "[..pad]);
        }
    }

    /// A number in base 8 or 16, zero-padded to `width` digits.
    fn radix(&mut self, n: u64, base: u64, width: usize) {
        let mut digits = [0u8; 24];
        let text = in_radix(n, base, width, &mut digits);
        self.push(text);
    }

    fn two(&mut self, n: u32, pad: u8) {
        self.push(&[
            if n < 10 { pad } else { b'0' + (n / 10) as u8 },
            b'0' + (n % 10) as u8,
        ]);
    }
}

/// The digits of `n` in `base` (up to 16), at least `width` of them, zero-padded.
fn in_radix(mut n: u64, base: u64, width: usize, digits: &mut [u8; 24]) -> &[u8] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = DIGITS[(n % base) as usize];
        n /= base;
        if n == 0 && digits.len() - i >= width {
            break;
        }
    }
    &digits[i..]
}

/// Writes one `ls -l` line, CRLF-terminated, straight into `out`: no
/// allocation per entry. `link` is a symlink's target.
pub fn write_long_line(
    out: &mut impl Write,
    name: &[u8],
    st: &FileStat,
    link: Option<&[u8]>,
    now: i64,
) -> io::Result<()> {
    let mut line = Line::new();
    line.push(&mode_string(st.mode));
    line.push(b" ");
    line.num(st.nlink, 4, false);
    line.push(b" ");
    line.num(u64::from(st.uid), 8, true);
    line.push(b" ");
    line.num(u64::from(st.gid), 8, true);
    line.push(b" ");
    line.num(st.size, 8, false);
    line.push(b" ");
    let (y, mo, d, h, mi, _) = civil_from_epoch(st.mtime);
    line.push(MONTHS[(mo - 1) as usize].as_bytes());
    line.push(b" ");
    line.two(d, b' ');
    if now - st.mtime > SIX_MONTHS || st.mtime - now > 3600 {
        line.push(b"  ");
        line.num(y.max(0) as u64, 4, false);
    } else {
        line.push(b" ");
        line.two(h, b'0');
        line.push(b":");
        line.two(mi, b'0');
    }
    line.push(b" ");
    out.write_all(&line.buf[..line.len])?;
    out.write_all(name)?;
    if let Some(target) = link {
        out.write_all(b" -> ")?;
        out.write_all(target)?;
    }
    out.write_all(b"\r\n")
}

/// One `ls -l` line as bytes (STAT and tests).
pub fn long_line(name: &[u8], st: &FileStat, link: Option<&[u8]>, now: i64) -> Vec<u8> {
    let mut line = Vec::with_capacity(64 + name.len());
    write_long_line(&mut line, name, st, link, now).expect("writing to a Vec cannot fail");
    line
}

/// Writes the MLSx facts (`type=...;...; `) of an entry, ending in the space
/// that precedes the name.
pub fn write_facts(
    out: &mut impl Write,
    st: &FileStat,
    kind: &str,
    access: Access,
) -> io::Result<()> {
    let perm = access.perm(st);
    let want = |bit: usize| access.facts & 1 << bit != 0;
    let mut line = Line::new();
    if want(0) {
        line.push(b"type=");
        line.push(kind.as_bytes());
        line.push(b";");
    }
    if want(1) && !st.is_dir() {
        line.push(b"size=");
        line.num(st.size, 0, false);
        line.push(b";");
    }
    if want(2) {
        line.push(b"modify=");
        let (y, mo, d, h, mi, sec) = civil_from_epoch(st.mtime);
        line.radix(y.max(0) as u64, 10, 4);
        for part in [mo, d, h, mi, sec] {
            line.two(part, b'0');
        }
        line.push(b";");
    }
    if want(3) {
        line.push(b"perm=");
        line.push(perm);
        line.push(b";");
    }
    if want(4) {
        line.push(b"unix.mode=");
        line.radix(u64::from(st.mode & 0o7777), 8, 4);
        line.push(b";");
    }
    if want(5) {
        line.push(b"unique=");
        line.radix(st.dev, 16, 1);
        line.push(b"g");
        line.radix(st.ino, 16, 1);
        line.push(b";");
    }
    line.push(b" ");
    out.write_all(&line.buf[..line.len])
}

/// The MLSx facts as text (MLST and tests).
pub fn facts(st: &FileStat, kind: &str, access: Access) -> String {
    let mut out = Vec::with_capacity(128);
    write_facts(&mut out, st, kind, access).expect("writing to a Vec cannot fail");
    String::from_utf8_lossy(&out).into_owned()
}

/// The `type` fact of an entry that is neither `.` nor `..`.
pub fn entry_kind(st: &FileStat) -> &'static str {
    if st.is_dir() {
        "dir"
    } else if st.is_file() {
        "file"
    } else {
        "OS.unix=special"
    }
}

/// A name we can put on a listing line: CR or LF would break the protocol's
/// framing, and our own temporary upload files are nobody's business.
pub fn listable(name: &[u8]) -> bool {
    !name.contains(&b'\r') && !name.contains(&b'\n') && !name.starts_with(TEMP_PREFIX)
}

/// Writes one listing line for an entry; `link` is a symlink's target for LIST.
pub fn write_entry(
    out: &mut impl Write,
    name: &[u8],
    st: &FileStat,
    link: Option<&[u8]>,
    format: Format,
    access: Access,
    now: i64,
) -> io::Result<()> {
    match format {
        Format::Long { .. } => write_long_line(out, name, st, link, now),
        Format::Names => {
            out.write_all(name)?;
            out.write_all(b"\r\n")
        }
        Format::Facts => {
            write_facts(out, st, entry_kind(st), access)?;
            out.write_all(name)?;
            out.write_all(b"\r\n")
        }
    }
}

/// Splits LIST/NLST arguments into `ls` options (`-la`) and the path.
pub fn split_options(arg: &[u8]) -> (bool, &[u8]) {
    let mut all = false;
    let mut rest = arg;
    while rest.starts_with(b"-") {
        let end = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
        all |= rest[..end].contains(&b'a') || rest[..end].contains(&b'A');
        rest = if end < rest.len() {
            &rest[end + 1..]
        } else {
            &[]
        };
        while rest.starts_with(b" ") {
            rest = &rest[1..];
        }
    }
    (all, rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(mode: u32, size: u64, mtime: i64) -> FileStat {
        FileStat {
            mode,
            nlink: 1,
            uid: 1000,
            gid: 100,
            size,
            mtime,
            dev: 0x803,
            ino: 0x1a2,
        }
    }

    #[test]
    fn calendar_round_trips() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11017);
        assert_eq!(civil_from_epoch(0), (1970, 1, 1, 0, 0, 0));
        assert_eq!(civil_from_epoch(1_700_000_000), (2023, 11, 14, 22, 13, 20));
        assert_eq!(civil_from_epoch(951_782_400), (2000, 2, 29, 0, 0, 0));
        assert_eq!(timeval(1_577_934_245), "20200102030405");
    }

    #[test]
    fn long_lines_look_like_ls() {
        let now = 1_700_000_000;
        let recent = long_line(
            b"a.txt",
            &stat(libc::S_IFREG | 0o644, 1234, now - 60),
            None,
            now,
        );
        assert_eq!(
            String::from_utf8(recent).unwrap(),
            "-rw-r--r--    1 1000     100          1234 Nov 14 22:12 a.txt\r\n"
        );
        let old = long_line(
            b"old",
            &stat(libc::S_IFDIR | 0o755, 4096, 1_600_000_000),
            None,
            now,
        );
        assert_eq!(
            String::from_utf8(old).unwrap(),
            "drwxr-xr-x    1 1000     100          4096 Sep 13  2020 old\r\n"
        );
        let link = long_line(
            b"l",
            &stat(libc::S_IFLNK | 0o777, 3, now),
            Some(b"abc"),
            now,
        );
        assert!(String::from_utf8(link).unwrap().starts_with("lrwxrwxrwx"));
        assert_eq!(&mode_string(libc::S_IFREG | 0o4755), b"-rwsr-xr-x");
        assert_eq!(&mode_string(libc::S_IFDIR | 0o1777), b"drwxrwxrwt");
    }

    #[test]
    fn mlsx_facts() {
        let f = facts(
            &stat(libc::S_IFREG | 0o640, 42, 1_577_934_245),
            "file",
            Access::read_only(ALL_FACTS),
        );
        assert_eq!(
            f,
            "type=file;size=42;modify=20200102030405;perm=r;unix.mode=0640;unique=803g1a2; "
        );
        let d = facts(
            &stat(libc::S_IFDIR | 0o755, 4096, 0),
            "dir",
            Access {
                create: true,
                modify: true,
                world_readable_only: false,
                facts: ALL_FACTS,
            },
        );
        assert_eq!(
            d,
            "type=dir;modify=19700101000000;perm=cdeflmp;unix.mode=0755;unique=803g1a2; "
        );
    }

    #[test]
    fn perm_names_only_what_the_session_may_do() {
        let drop_box = Access {
            create: true,
            modify: false,
            world_readable_only: true,
            facts: 1 << 3,
        };
        let dir = stat(libc::S_IFDIR | 0o755, 0, 0);
        assert_eq!(facts(&dir, "dir", drop_box), "perm=celm; ");
        let private = stat(libc::S_IFREG | 0o600, 1, 0);
        assert_eq!(facts(&private, "file", drop_box), "perm=; ");
        let public = stat(libc::S_IFREG | 0o644, 1, 0);
        assert_eq!(facts(&public, "file", drop_box), "perm=r; ");
    }

    #[test]
    fn opts_mlst_selects_facts() {
        let mask = select_facts("Type;SIZE;bogus;unique;");
        assert_eq!(fact_list(mask), "type;size;unique;");
        let st = stat(libc::S_IFREG | 0o640, 42, 0);
        assert_eq!(
            facts(&st, "file", Access::read_only(mask)),
            "type=file;size=42;unique=803g1a2; "
        );
        assert_eq!(facts(&st, "file", Access::read_only(0)), " ");
        assert_eq!(select_facts(""), 0);
    }

    #[test]
    fn unlistable_names() {
        assert!(listable(b"ok name"));
        assert!(!listable(b"bad\rname"));
        assert!(!listable(b"bad\nname"));
        assert!(!listable(b".minftpd-upload.1.2.3"));
    }

    #[test]
    fn list_options() {
        assert_eq!(split_options(b"-la"), (true, &b""[..]));
        assert_eq!(split_options(b"-l /pub"), (false, &b"/pub"[..]));
        assert_eq!(split_options(b"-a -l  x y"), (true, &b"x y"[..]));
        assert_eq!(split_options(b"dir"), (false, &b"dir"[..]));
    }
}
