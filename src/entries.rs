//! Which entries of a directory a listing shows, and in which order: by name
//! in byte order, as `ls` in the C locale. A client chooses the directory
//! (and, with upload rights, how many names it holds): the names are read
//! into one buffer that costs the name bytes plus 5 bytes an entry, freed
//! when the listing ends; past `SORT_LIMIT` bytes the directory is listed
//! in directory order instead, streamed as it is read, so that no listing
//! holds more than that.

use crate::glob;
use crate::listing::{listable, write_entry, Access, Format};
use crate::sys::{self, Dir, FileStat};
use std::io::{self, Write};

/// The most bytes (names, a length byte and a 4-byte index each) a listing
/// sorts: about 450,000 names of 30 bytes. vsftpd sorts without a bound;
/// a bound keeps a worker's memory known whatever a directory holds, and a
/// bigger directory is still listed whole, only unsorted.
pub const SORT_LIMIT: usize = 16 << 20;

/// The names of a directory in one buffer, each a length byte followed by
/// the name (Linux names are at most 255 bytes), and where each starts, in
/// name order: two allocations a listing, none per entry.
pub struct Names {
    bytes: Vec<u8>,
    starts: Vec<u32>,
}

impl Names {
    /// Reads the names `keep` accepts and sorts them; `None` when they take
    /// more than `limit` bytes.
    pub fn read(
        dir: &mut Dir,
        limit: usize,
        keep: impl Fn(&[u8]) -> bool,
    ) -> io::Result<Option<Names>> {
        let mut names = Names {
            bytes: Vec::new(),
            starts: Vec::new(),
        };
        let mut name = Vec::with_capacity(256);
        while let Some(next) = dir.next_name(&mut name) {
            next?;
            if !keep(&name) {
                continue;
            }
            let Ok(len) = u8::try_from(name.len()) else {
                return Ok(None);
            };
            let cost = names.bytes.len() + 1 + name.len() + 4 * (names.starts.len() + 1);
            if cost > limit || u32::try_from(names.bytes.len()).is_err() {
                return Ok(None);
            }
            names.starts.push(names.bytes.len() as u32);
            names.bytes.push(len);
            names.bytes.extend_from_slice(&name);
        }
        let bytes = &names.bytes;
        names
            .starts
            .sort_unstable_by(|&a, &b| name_at(bytes, a).cmp(name_at(bytes, b)));
        Ok(Some(names))
    }

    /// The names in byte order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.starts.iter().map(|&at| name_at(&self.bytes, at))
    }
}

fn name_at(bytes: &[u8], at: u32) -> &[u8] {
    let at = at as usize;
    &bytes[at + 1..at + 1 + usize::from(bytes[at])]
}

/// Which entries a listing writes, and how.
#[derive(Clone, Copy)]
pub struct Shape<'a> {
    pub format: Format,
    pub access: Access,
    pub now: i64,
    /// Only names that match this wildcard pattern (glob.rs).
    pub pattern: Option<&'a [u8]>,
    /// Written before each name of NLST: the directory as the client wrote it.
    pub prefix: &'a [u8],
}

/// Writes a whole directory in `shape`, sorted by name. `dir_stat` is the
/// directory's own stat, for MLSD's `cdir` line. `follow` stats a symlinked
/// entry's target (confined to the user's root): MLSD describes what a name
/// leads to, and a link that leads nowhere inside the root is left out.
pub fn write_dir(
    out: &mut impl Write,
    dir: &mut Dir,
    shape: Shape,
    dir_stat: &FileStat,
    follow: impl Fn(&[u8]) -> Option<FileStat>,
) -> io::Result<()> {
    if shape.format == Format::Facts {
        crate::listing::write_facts(out, dir_stat, "cdir", shape.access)?;
        out.write_all(b".\r\n")?;
    }
    write_entries(out, dir, shape, SORT_LIMIT, &follow)
}

/// The entries of `dir`: sorted when their names take at most `limit`
/// bytes, else in the order readdir gives them.
fn write_entries(
    out: &mut impl Write,
    dir: &mut Dir,
    shape: Shape,
    limit: usize,
    follow: &impl Fn(&[u8]) -> Option<FileStat>,
) -> io::Result<()> {
    // As in the shell, a dot file matches only a pattern that starts with a dot.
    let show_hidden = matches!(shape.format, Format::Long { all: true } | Format::Facts)
        || shape.pattern.is_some_and(|p| p.starts_with(b"."));
    let glob = shape.pattern.map(glob::Glob::new);
    let keep = |name: &[u8]| {
        listable(name)
            && (show_hidden || !name.starts_with(b"."))
            && glob.as_ref().map_or(true, |g| g.matches(name))
    };
    if let Some(names) = Names::read(dir, limit, keep)? {
        for name in names.iter() {
            write_one(out, dir, name, shape, follow)?;
        }
        return Ok(());
    }
    dir.rewind();
    let mut name = Vec::with_capacity(256);
    while let Some(next) = dir.next_name(&mut name) {
        next?;
        if keep(&name) {
            write_one(out, dir, &name, shape, follow)?;
        }
    }
    Ok(())
}

/// One entry's line; an entry that went away since it was read is skipped.
fn write_one(
    out: &mut impl Write,
    dir: &Dir,
    name: &[u8],
    shape: Shape,
    follow: &impl Fn(&[u8]) -> Option<FileStat>,
) -> io::Result<()> {
    let Ok(mut st) = sys::lstatat(dir.fd(), name) else {
        return Ok(());
    };
    let mut link = None;
    if st.is_symlink() {
        if shape.format == Format::Facts {
            let Some(target) = follow(name) else {
                return Ok(());
            };
            st = target;
        } else {
            link = sys::readlinkat(dir.fd(), name).ok();
        }
    }
    if shape.format == Format::Names {
        out.write_all(shape.prefix)?;
    }
    let (format, access) = (shape.format, shape.access);
    write_entry(out, name, &st, link.as_deref(), format, access, shape.now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::OwnedFd;

    fn open(path: &std::path::Path) -> Dir {
        let fd: OwnedFd = std::fs::File::open(path).unwrap().into();
        Dir::from_fd(fd).unwrap()
    }

    fn scratch(tag: &str, names: &[&[u8]]) -> std::path::PathBuf {
        use std::os::unix::ffi::OsStrExt;
        let dir =
            std::env::temp_dir().join(format!("minftpd-entries-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        for name in names {
            std::fs::write(dir.join(std::ffi::OsStr::from_bytes(name)), b"x").unwrap();
        }
        dir
    }

    #[test]
    fn names_come_out_in_byte_order() {
        let made: [&[u8]; 6] = [b"b", b"B", b"\xc3\xa9t\xc3\xa9", b"a", b"ab", b"_"];
        let dir = scratch("order", &made);
        let names = Names::read(&mut open(&dir), SORT_LIMIT, |_| true)
            .unwrap()
            .unwrap();
        let got: Vec<&[u8]> = names.iter().collect();
        let mut want = made.to_vec();
        want.sort();
        assert_eq!(got, want);
        assert_eq!(got[0], b"B", "uppercase sorts before lowercase (C locale)");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn past_the_limit_the_directory_is_streamed_whole() {
        let made: [&[u8]; 5] = [b"e", b"d", b"c", b"b", b"a"];
        let dir = scratch("limit", &made);
        // Five names of one byte cost 5 x (1 + 1 + 4) = 30 bytes.
        assert!(Names::read(&mut open(&dir), 30, |_| true)
            .unwrap()
            .is_some());
        assert!(Names::read(&mut open(&dir), 29, |_| true)
            .unwrap()
            .is_none());
        let shape = Shape {
            format: Format::Names,
            access: Access {
                create: false,
                modify: false,
                world_readable_only: false,
                facts: 0,
            },
            now: 0,
            pattern: None,
            prefix: b"",
        };
        // Over the limit after three names: the stream starts over and
        // still lists every name.
        let mut out = Vec::new();
        write_entries(&mut out, &mut open(&dir), shape, 18, &|_: &[u8]| None).unwrap();
        let mut lines: Vec<&[u8]> = out
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        lines.sort();
        assert_eq!(lines, [&b"a\r"[..], b"b\r", b"c\r", b"d\r", b"e\r"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
