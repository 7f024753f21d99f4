//! Which entries of a directory a listing shows, and in which order: by name
//! in byte order, as `ls` in the C locale. A client chooses the directory
//! (and, with upload rights, how many names it holds), and how fast it reads
//! the listing, or whether it reads at all. So the names are sorted in
//! passes through a buffer of at most `SORT_CHUNK` bytes, which is all a
//! listing holds while it waits on a slow reader, and every buffer is taken
//! from one budget of `SORT_BUDGET` bytes for the whole server: a listing
//! that finds no room there is written in directory order, unsorted, and
//! holds no names at all. Buffers are freed when the listing ends.

use crate::glob;
use crate::listing::{listable, write_entry, Access, Format};
use crate::sys::{self, Dir, FileStat};
use std::io::{self, Write};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The most bytes the sort buffers of all listings hold at once: eight
/// listings of big directories, or many of small ones. vsftpd sorts without
/// a bound; this one holds whatever clients ask for and however many of
/// them stop reading.
pub const SORT_BUDGET: usize = 16 << 20;

/// The most one listing holds (names, a length byte and a 4-byte index
/// each): about 60,000 names of 30 bytes or 8,000 of 255 sort in one pass;
/// a bigger directory takes a pass over the directory for each half chunk
/// of names it writes.
pub const SORT_CHUNK: usize = 2 << 20;

/// A listing takes its share of the budget in steps of this, as it needs it:
/// a small directory takes one step, or what is left of the budget.
const STEP: usize = 64 << 10;

/// What one name costs in a buffer besides its bytes: its length byte and
/// its index.
const ENTRY_COST: usize = 5;

/// The bytes that listings' sort buffers may hold together.
pub struct Budget {
    limit: usize,
    held: AtomicUsize,
}

impl Budget {
    pub const fn new(limit: usize) -> Budget {
        Budget {
            limit,
            held: AtomicUsize::new(0),
        }
    }

    /// Takes `bytes` if they fit under the limit.
    fn take(&self, bytes: usize) -> bool {
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                (held + bytes <= self.limit).then_some(held + bytes)
            })
            .is_ok()
    }

    fn give_back(&self, bytes: usize) {
        self.held.fetch_sub(bytes, Ordering::AcqRel);
    }

    /// Bytes held by listings now.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Acquire)
    }
}

/// The budget of every listing of this server.
pub static SERVER_BUDGET: Budget = Budget::new(SORT_BUDGET);

/// How a listing sorts: from which budget, in passes of at most `chunk`.
#[derive(Clone, Copy)]
pub struct Sorting<'a> {
    pub budget: &'a Budget,
    pub chunk: usize,
}

impl Sorting<'static> {
    /// The server's budget and chunk.
    pub fn server() -> Sorting<'static> {
        Sorting {
            budget: &SERVER_BUDGET,
            chunk: SORT_CHUNK,
        }
    }
}

/// A listing's share of a budget, grown in steps up to a chunk and given
/// back whole when the listing ends.
struct Share<'a> {
    sorting: Sorting<'a>,
    bytes: usize,
}

impl<'a> Share<'a> {
    fn new(sorting: Sorting<'a>) -> Share<'a> {
        Share { sorting, bytes: 0 }
    }

    /// Grows the share to cover `need` bytes; false when that would pass
    /// the chunk or the budget.
    fn cover(&mut self, need: usize) -> bool {
        if need <= self.bytes {
            return true;
        }
        let chunk = self.sorting.chunk;
        if need > chunk {
            return false;
        }
        // A step at a time; what is left of the budget if less.
        let step = need.next_multiple_of(STEP).min(chunk);
        for want in [step, need] {
            if self.sorting.budget.take(want - self.bytes) {
                self.bytes = want;
                return true;
            }
        }
        false
    }

    fn is_whole_chunk(&self) -> bool {
        self.bytes == self.sorting.chunk
    }
}

impl Drop for Share<'_> {
    fn drop(&mut self) {
        self.sorting.budget.give_back(self.bytes);
    }
}

/// What one pass over a directory gave.
#[derive(Debug, PartialEq, Eq)]
enum Pass {
    /// Every name left: the listing ends with these.
    Whole,
    /// The smallest names left; the rest are above the last of them.
    Part,
    /// The budget had no room for a chunk: list unsorted.
    NoRoom,
}

/// Names of a directory in one buffer, each a length byte followed by the
/// name (Linux names are at most 255 bytes), and where each starts, in name
/// order once sorted: two allocations a listing, none per entry.
struct Names {
    bytes: Vec<u8>,
    starts: Vec<u32>,
}

impl Names {
    fn new() -> Names {
        Names {
            bytes: Vec::new(),
            starts: Vec::new(),
        }
    }

    /// What the buffer holds, as the budget counts it.
    fn cost(&self) -> usize {
        self.bytes.len() + 4 * self.starts.len()
    }

    fn push(&mut self, name: &[u8]) {
        self.starts.push(self.bytes.len() as u32);
        self.bytes.push(name.len() as u8);
        self.bytes.extend_from_slice(name);
    }

    fn sort(&mut self) {
        let bytes = &self.bytes;
        self.starts
            .sort_unstable_by(|&a, &b| name_at(bytes, a).cmp(name_at(bytes, b)));
    }

    /// Reads the smallest names above `after` that `keep` accepts, as many
    /// as `share` covers, and sorts them. When the share is full at a whole
    /// chunk it keeps the smallest names that take half of it, and from then
    /// on only names below the smallest it dropped: the next pass starts
    /// above the last name this one gives.
    fn read_pass(
        &mut self,
        dir: &mut Dir,
        keep: &impl Fn(&[u8]) -> bool,
        after: Option<&[u8]>,
        share: &mut Share,
    ) -> io::Result<Pass> {
        self.bytes.clear();
        self.starts.clear();
        dir.rewind();
        let mut ceiling: Option<Vec<u8>> = None;
        let mut name = Vec::with_capacity(256);
        while let Some(next) = dir.next_name(&mut name) {
            next?;
            let name = &name[..];
            let wanted = after.map_or(true, |after| name > after)
                && ceiling.as_deref().map_or(true, |ceiling| name < ceiling)
                && keep(name);
            if !wanted {
                continue;
            }
            if name.len() > usize::from(u8::MAX) {
                // No Linux filesystem makes one. If one did, a first pass
                // lists the directory unsorted, with it; one made during
                // later passes is left out, as a name made after it was
                // read would be.
                if after.is_none() {
                    return Ok(Pass::NoRoom);
                }
                continue;
            }
            if !share.cover(self.cost() + ENTRY_COST + name.len()) {
                if !share.is_whole_chunk() {
                    // Only a first pass grows its share: later ones run
                    // with the whole chunk it took.
                    debug_assert!(after.is_none());
                    return Ok(Pass::NoRoom);
                }
                let ceiling = ceiling.get_or_insert_with(|| Vec::with_capacity(256));
                self.keep_smallest(share.sorting.chunk / 2, ceiling);
                if name >= &ceiling[..] {
                    continue;
                }
            }
            self.push(name);
        }
        self.sort();
        Ok(if ceiling.is_some() {
            Pass::Part
        } else {
            Pass::Whole
        })
    }

    /// Keeps the smallest names (at least one) that cost at most `budget`
    /// bytes, moved to the front of the buffer, and puts the smallest name
    /// dropped in `ceiling`.
    fn keep_smallest(&mut self, budget: usize, ceiling: &mut Vec<u8>) {
        self.sort();
        let mut cost = 0;
        let mut kept = 0;
        for &at in &self.starts {
            cost += ENTRY_COST + name_at(&self.bytes, at).len();
            if cost > budget && kept > 0 {
                break;
            }
            kept += 1;
        }
        if let Some(&first_dropped) = self.starts.get(kept) {
            ceiling.clear();
            ceiling.extend_from_slice(name_at(&self.bytes, first_dropped));
        }
        self.starts.truncate(kept);
        // Moving each kept name down in the order of where it lies never
        // overwrites one not moved yet.
        self.starts.sort_unstable();
        let mut end = 0;
        for at in self.starts.iter_mut() {
            let from = *at as usize;
            let len = 1 + usize::from(self.bytes[from]);
            self.bytes.copy_within(from..from + len, end);
            *at = end as u32;
            end += len;
        }
        self.bytes.truncate(end);
    }

    /// The names in byte order.
    fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
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

/// Writes a whole directory in `shape`, sorted by name within the server's
/// budget (see the top of this file). `dir_stat` is the directory's own
/// stat, for MLSD's `cdir` line. `follow` stats a symlinked entry's target
/// (confined to the user's root): MLSD describes what a name leads to, and a
/// link that leads nowhere inside the root is left out.
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
    write_entries(out, dir, shape, Sorting::server(), &follow)
}

/// The entries of `dir`: sorted, in passes, when `sorting` has room for
/// them, else in the order readdir gives them.
fn write_entries(
    out: &mut impl Write,
    dir: &mut Dir,
    shape: Shape,
    sorting: Sorting,
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
    let mut share = Share::new(sorting);
    let mut names = Names::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let pass = names.read_pass(dir, &keep, after.as_deref(), &mut share)?;
        if pass == Pass::NoRoom {
            // Give back what the first pass held before the long write.
            drop(names);
            drop(share);
            return write_unsorted(out, dir, shape, &keep, follow);
        }
        for name in names.iter() {
            write_one(out, dir, name, shape, follow)?;
        }
        let Some(last) = names.iter().last().filter(|_| pass == Pass::Part) else {
            return Ok(());
        };
        let resume = after.get_or_insert_with(|| Vec::with_capacity(256));
        resume.clear();
        resume.extend_from_slice(last);
    }
}

/// The entries of `dir` in the order readdir gives them, holding no names.
fn write_unsorted(
    out: &mut impl Write,
    dir: &mut Dir,
    shape: Shape,
    keep: &impl Fn(&[u8]) -> bool,
    follow: &impl Fn(&[u8]) -> Option<FileStat>,
) -> io::Result<()> {
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

    fn shape(format: Format) -> Shape<'static> {
        Shape {
            format,
            access: Access {
                create: false,
                modify: false,
                world_readable_only: false,
                facts: 0,
            },
            now: 0,
            pattern: None,
            prefix: b"",
        }
    }

    /// NLST of `dir` through `sorting`: the lines, CRLF cut.
    fn listed(dir: &std::path::Path, sorting: Sorting) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let none = |_: &[u8]| None;
        write_entries(
            &mut out,
            &mut open(dir),
            shape(Format::Names),
            sorting,
            &none,
        )
        .unwrap();
        out.split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| l.strip_suffix(b"\r").unwrap().to_vec())
            .collect()
    }

    #[test]
    fn names_come_out_in_byte_order() {
        let made: [&[u8]; 6] = [b"b", b"B", b"\xc3\xa9t\xc3\xa9", b"a", b"ab", b"_"];
        let dir = scratch("order", &made);
        let budget = Budget::new(SORT_BUDGET);
        let got = listed(
            &dir,
            Sorting {
                budget: &budget,
                chunk: SORT_CHUNK,
            },
        );
        let mut want: Vec<Vec<u8>> = made.iter().map(|n| n.to_vec()).collect();
        want.sort();
        assert_eq!(got, want);
        assert_eq!(got[0], b"B", "uppercase sorts before lowercase (C locale)");
        assert_eq!(budget.held(), 0, "the listing gave its share back");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Names of different lengths, made in an order unlike byte order.
    fn mixed_names(count: usize) -> Vec<Vec<u8>> {
        (0..count)
            .map(|n| {
                let n = (n * 7919) % count;
                let mut name = format!("{n:05}").into_bytes();
                name.resize(5 + (n * 31) % 200, b'a' + (n % 26) as u8);
                name
            })
            .collect()
    }

    #[test]
    fn a_directory_bigger_than_a_chunk_is_sorted_in_passes() {
        let made = mixed_names(600);
        let refs: Vec<&[u8]> = made.iter().map(|n| &n[..]).collect();
        let dir = scratch("passes", &refs);
        let mut want = made.clone();
        want.sort();
        // About 65 KB of names through chunks of 4 KiB and of one step:
        // many passes, every name once, in order.
        for chunk in [4 << 10, STEP] {
            let budget = Budget::new(SORT_BUDGET);
            let got = listed(
                &dir,
                Sorting {
                    budget: &budget,
                    chunk,
                },
            );
            assert_eq!(got, want, "chunk {chunk}");
            assert_eq!(budget.held(), 0);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn without_room_in_the_budget_the_directory_is_listed_unsorted() {
        let made = mixed_names(600);
        let refs: Vec<&[u8]> = made.iter().map(|n| &n[..]).collect();
        let dir = scratch("no-room", &refs);
        let mut want = made.clone();
        want.sort();
        // Another listing holds all but half a step: this one cannot take
        // a whole chunk, lists everything unsorted and holds nothing after.
        let budget = Budget::new(2 * STEP);
        assert!(budget.take(STEP + STEP / 2));
        let mut got = listed(
            &dir,
            Sorting {
                budget: &budget,
                chunk: STEP,
            },
        );
        assert_ne!(got, want, "precondition: readdir order is not sorted");
        got.sort();
        assert_eq!(got, want);
        assert_eq!(budget.held(), STEP + STEP / 2);
        // A directory that fits in what is left is still sorted.
        let small = scratch("small", &[b"b", b"c", b"a"]);
        let got = listed(
            &small,
            Sorting {
                budget: &budget,
                chunk: STEP,
            },
        );
        assert_eq!(got, [b"a", b"b", b"c"]);
        budget.give_back(STEP + STEP / 2);
        assert_eq!(budget.held(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::remove_dir_all(&small).unwrap();
    }

    #[test]
    fn keeping_the_smallest_names_leaves_the_rest_above_the_ceiling() {
        let mut names = Names::new();
        for name in [&b"delta"[..], b"alpha", b"echo", b"charlie", b"bravo"] {
            names.push(name);
        }
        let mut ceiling = Vec::new();
        // alpha, bravo: 10 bytes each with their cost; charlie would pass 24.
        names.keep_smallest(24, &mut ceiling);
        assert_eq!(names.iter().collect::<Vec<_>>(), [b"alpha", b"bravo"]);
        assert_eq!(ceiling, b"charlie");
        assert_eq!(names.cost(), 2 * (1 + 5 + 4));
        // At least one name is kept, whatever the budget.
        names.keep_smallest(0, &mut ceiling);
        assert_eq!(names.iter().collect::<Vec<_>>(), [b"alpha"]);
        assert_eq!(ceiling, b"bravo");
    }
}
