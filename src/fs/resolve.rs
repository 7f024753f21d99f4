//! Path resolution beneath a root fd: `openat2(RESOLVE_IN_ROOT)` with its
//! `EAGAIN` retry, the choice of resolver (logged once), and the portable
//! component-by-component `openat(O_NOFOLLOW)` walk with its rename-race retries,
//! for kernels before 5.6 or seccomp filters that refuse openat2. Both give a
//! symlink the same meaning: an absolute target or `..` never climbs above the root.
//!
//! A hostile client controls the path (at most `MAX_PATH` bytes, no NUL) and,
//! with write access, the symlinks it plants: at most `MAX_SYMLINKS` per lookup.
//! A walk makes at most `MAX_WALK_STEPS` syscalls, holds one directory fd
//! however deep the tree, reads a symlink through the fd of the very entry it
//! examined (a concurrent rename cannot swap it in between), and retries a last
//! name swapped between its open and its examination at most `MAX_RACES` times.

use super::{relative, Root, MAX_PATH};
use crate::sys;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU8, Ordering};

const MAX_SYMLINKS: usize = 40;

fn invalid_name() -> io::Error {
    io::Error::from_raw_os_error(libc::EINVAL)
}

/// Which resolver this kernel supports: 0 unknown, 1 openat2, 2 the walk.
static RESOLVER: AtomicU8 = AtomicU8::new(0);
const OPENAT2: u8 = 1;
const WALK: u8 = 2;

/// How often one lookup retries openat2 after `EAGAIN` before it takes the walk.
const OPENAT2_EAGAIN_RETRIES: usize = 8;
/// How often one walk opens its last name again after that name changed
/// between the open with the caller's flags and its examination (a concurrent
/// rename swapped a symlink and a file) before it gives up.
const MAX_RACES: usize = 8;
/// Syscalls one walk may make. Client paths arrive normalised (no `..`), but
/// planted symlink targets can hold up to 40 × PATH_MAX bytes of `..`, and each
/// `..` costs a re-walk from the root: this caps the work a planted tree can cause.
const MAX_WALK_STEPS: usize = 16 * MAX_PATH;

/// Records the resolver chosen, logging it the first time (tests read this line).
fn choose_resolver(kind: u8, why: Option<&io::Error>) {
    if RESOLVER.swap(kind, Ordering::Relaxed) != kind {
        match why {
            Some(e) => ::log::info!("path resolver: openat walk (openat2 unavailable: {e})"),
            None => ::log::info!("path resolver: openat2"),
        }
    }
}

impl Root {
    /// Opens `vpath` (normalised) with `flags`, following symlinks inside the root.
    /// The client controls the path (at most `MAX_PATH` bytes, no NUL).
    pub(super) fn open_at(&self, vpath: &[u8], flags: i32, mode: u32) -> io::Result<OwnedFd> {
        if vpath.len() > MAX_PATH || vpath.contains(&0) {
            return Err(invalid_name());
        }
        let rel = relative(vpath);
        if RESOLVER.load(Ordering::Relaxed) != WALK {
            match self.openat2_retrying(rel, flags, mode) {
                Err(e)
                    if e.raw_os_error() == Some(libc::ENOSYS)
                        || e.raw_os_error() == Some(libc::EPERM)
                            && RESOLVER.load(Ordering::Relaxed) == 0 =>
                {
                    // ENOSYS: kernel older than 5.6. EPERM on first use: a seccomp
                    // filter (some container runtimes) forbids the new call.
                    choose_resolver(WALK, Some(&e));
                }
                // Still EAGAIN after the retries: renames elsewhere on the host
                // keep interrupting the lookup; the walk does not care.
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => {}
                result => {
                    choose_resolver(OPENAT2, None);
                    return result;
                }
            }
        }
        self.walk(rel, flags, mode)
    }

    /// openat2 returns `EAGAIN` when a rename anywhere on the host raced the
    /// lookup (RESOLVE_IN_ROOT); a valid path deserves a few more tries.
    fn openat2_retrying(&self, rel: &[u8], flags: i32, mode: u32) -> io::Result<OwnedFd> {
        let mut tries = 0;
        loop {
            match sys::openat2_in_root(self.dir.as_fd(), rel, flags, mode) {
                Err(e)
                    if e.raw_os_error() == Some(libc::EAGAIN) && tries < OPENAT2_EAGAIN_RETRIES =>
                {
                    tries += 1
                }
                result => return result,
            }
        }
    }

    /// The portable resolver: one component at a time, each opened with
    /// `O_NOFOLLOW` beneath the current directory (see `step`), symlinks read
    /// and spliced in, `..` dropping a name but never going above the root.
    /// Only the current directory's fd is held (a deep tree cannot exhaust the
    /// fd table); `..` re-walks the remaining names from the root.
    fn walk(&self, rel: &[u8], flags: i32, mode: u32) -> io::Result<OwnedFd> {
        let mut at = Walk {
            root: self.dir.as_fd(),
            fd: None,
            names: Vec::new(),
            stale: false,
            steps: 0,
        };
        let mut pending: std::collections::VecDeque<Vec<u8>> = components(rel).collect();
        let mut links = 0;
        let mut races = 0;
        while let Some(name) = pending.pop_front() {
            if name == b".." {
                at.up();
                continue;
            }
            let last = pending.is_empty();
            at.step()?;
            match step(at.dir()?, &name, last, flags, mode)? {
                Step::Raced(_) if races < MAX_RACES => {
                    races += 1;
                    pending.push_front(name);
                }
                Step::Raced(e) => return Err(e),
                Step::Done(fd) => return Ok(fd),
                Step::Dir(fd) => at.down(fd, name),
                Step::Link(target) => {
                    links += 1;
                    if links > MAX_SYMLINKS {
                        return Err(io::Error::from_raw_os_error(libc::ELOOP));
                    }
                    if target.starts_with(b"/") {
                        at.restart_at_root();
                    }
                    for part in components(&target).collect::<Vec<_>>().into_iter().rev() {
                        pending.push_front(part);
                    }
                }
            }
        }
        sys::openat(at.dir()?, b".", flags, mode)
    }
}

/// What one step of the walk found.
enum Step {
    Done(OwnedFd),
    Dir(OwnedFd),
    Link(Vec<u8>),
    /// The last name was swapped between its open and its examination; the
    /// error is the open's, returned if the retries run out.
    Raced(io::Error),
}

/// Looks at `name` beneath `current` without a gap a concurrent rename could
/// use: the entry is opened as whatever it is (`O_PATH|O_NOFOLLOW`) and
/// examined through that fd, and a symlink is read from it, not by name
/// again. (An lstat then an open by name let a spinning RENAME_EXCHANGE of a
/// symlink and a directory win nine times running, failing a valid lookup.)
/// The last name for a real open is opened with the caller's flags first: a
/// symlink there answers `ELOOP` (`ENOTDIR` with `O_DIRECTORY`) and is then
/// examined the same way; an `O_PATH` fd cannot be reopened without /proc.
fn step(current: BorrowedFd, name: &[u8], last: bool, flags: i32, mode: u32) -> io::Result<Step> {
    let mut refused = None;
    if last && flags & libc::O_PATH == 0 {
        match sys::openat(current, name, flags | libc::O_NOFOLLOW, mode) {
            Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP) | Some(libc::ENOTDIR)) => {
                refused = Some(e)
            }
            other => return other.map(Step::Done),
        }
    }
    let fd = sys::openat(current, name, libc::O_PATH | libc::O_NOFOLLOW, 0)?;
    let st = sys::fstat(fd.as_fd())?;
    if st.is_symlink() {
        return sys::readlinkat(fd.as_fd(), b"").map(Step::Link);
    }
    match refused {
        // ELOOP but no symlink now, or ENOTDIR but a directory now: swapped.
        Some(e) if e.raw_os_error() == Some(libc::ELOOP) || st.is_dir() => Ok(Step::Raced(e)),
        Some(e) => Err(e),
        None if st.is_dir() && !last => Ok(Step::Dir(fd)),
        None if last && (st.is_dir() || flags & libc::O_DIRECTORY == 0) => Ok(Step::Done(fd)),
        None => Err(io::Error::from_raw_os_error(libc::ENOTDIR)),
    }
}

/// Where the walk is: the names from the root and, unless `stale`, the one
/// fd of the directory they lead to (`None` with no names: the root).
struct Walk<'a> {
    root: BorrowedFd<'a>,
    fd: Option<OwnedFd>,
    names: Vec<Vec<u8>>,
    stale: bool,
    steps: usize,
}

impl Walk<'_> {
    /// Counts one syscall against `MAX_WALK_STEPS`.
    fn step(&mut self) -> io::Result<()> {
        self.steps += 1;
        if self.steps > MAX_WALK_STEPS {
            return Err(io::Error::from_raw_os_error(libc::ELOOP));
        }
        Ok(())
    }

    /// The current directory, re-walked from the root after `..`.
    fn dir(&mut self) -> io::Result<BorrowedFd<'_>> {
        if self.stale {
            self.fd = None;
            let mut fd: Option<OwnedFd> = None;
            for i in 0..self.names.len() {
                self.step()?;
                let parent = fd.as_ref().map(|f| f.as_fd()).unwrap_or(self.root);
                let flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW;
                fd = Some(sys::openat(parent, &self.names[i], flags, 0)?);
            }
            self.fd = fd;
            self.stale = false;
        }
        Ok(self.fd.as_ref().map(|f| f.as_fd()).unwrap_or(self.root))
    }

    fn down(&mut self, fd: OwnedFd, name: Vec<u8>) {
        self.fd = Some(fd);
        self.names.push(name);
    }

    /// `..`: drops the last name (none at the root) and the fd with it.
    fn up(&mut self) {
        if self.names.pop().is_some() {
            self.fd = None;
            self.stale = true;
        }
    }

    fn restart_at_root(&mut self) {
        self.names.clear();
        self.fd = None;
        self.stale = false;
    }
}

fn components(path: &[u8]) -> impl Iterator<Item = Vec<u8>> + '_ {
    path.split(|&b| b == b'/')
        .filter(|p| !p.is_empty() && *p != b".")
        .map(|p| p.to_vec())
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{scratch, skip, symlinks_stay_inside};
    use super::*;
    use std::fs::File;
    use std::os::unix::fs::symlink;

    /// Through `open_at`, which must choose openat2 where the kernel has it;
    /// elsewhere the checks would pass through the walk, so the test says so.
    #[test]
    fn symlinks_cannot_escape_with_openat2() {
        let dir = scratch("openat2");
        let root = Root::open(&dir.join("root")).unwrap();
        if let Err(e) = sys::openat2_in_root(root.dir.as_fd(), b".", libc::O_PATH, 0) {
            return skip(&format!(
                "openat2 unavailable ({e}): the lookups would take the walk"
            ));
        }
        // Forget an earlier choice: the lookups below must make it again.
        RESOLVER.store(0, Ordering::Relaxed);
        symlinks_stay_inside(&root);
        let resolver = match RESOLVER.load(Ordering::Relaxed) {
            OPENAT2 => "openat2",
            WALK => "the openat walk",
            _ => "none",
        };
        assert_eq!(resolver, "openat2", "the kernel has openat2");
    }

    #[test]
    fn symlinks_cannot_escape_with_the_portable_walk() {
        let dir = scratch("walk");
        let root = Root::open(&dir.join("root")).unwrap();
        // Exercise the walk directly so the test does not race the other
        // test's use of the global resolver choice.
        let open = |p: &[u8]| root.walk(relative(p), libc::O_RDONLY, 0);
        assert!(open(b"/rel-inside").is_ok());
        assert!(open(b"/to-slash/sub/inside").is_ok());
        assert!(open(b"/to-slash/secret").is_err());
        assert!(open(b"/sub/up").is_err());
        assert!(open(b"/abs-secret").is_err());
        assert!(open(b"/loop").is_err());
        assert!(root
            .walk(b"new", libc::O_WRONLY | libc::O_CREAT, 0o600)
            .is_ok());
        assert!(dir.join("root/new").exists());
        // A last name that is a symlink, opened as a directory or O_PATH.
        let kind = |p: &[u8], flags| {
            let fd = root.walk(p, flags, 0)?;
            Ok::<_, io::Error>(sys::fstat(fd.as_fd())?.is_dir())
        };
        let (dir_flags, path_dir) = (
            libc::O_RDONLY | libc::O_DIRECTORY,
            libc::O_PATH | libc::O_DIRECTORY,
        );
        assert!(kind(b"to-slash", dir_flags).unwrap());
        assert!(kind(b"to-slash", path_dir).unwrap());
        assert!(!kind(b"rel-inside", libc::O_PATH).unwrap());
        for flags in [dir_flags, path_dir] {
            let e = kind(b"rel-inside", flags).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::ENOTDIR), "{flags:o}");
        }
        let e = kind(b"loop", libc::O_PATH).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ELOOP));
    }

    /// The fd number the walk returns is the lowest free one, so it tells how
    /// many descriptors the walk still held at its final open: the old walk
    /// held one per level (300 here), this one holds one.
    #[test]
    fn the_walk_holds_one_directory_fd_and_dotdot_rewalks() {
        use std::os::fd::AsRawFd;
        let dir = scratch("deep");
        let deep = vec!["d"; 300].join("/");
        std::fs::create_dir_all(dir.join("root").join(&deep)).unwrap();
        std::fs::write(dir.join("root").join(&deep).join("leaf"), b"leaf").unwrap();
        // Climbs 300 levels and one more (stopped by the root), then down again.
        let up = vec![".."; 301].join("/");
        symlink(
            format!("{up}/sub/inside"),
            dir.join("root").join(&deep).join("up"),
        )
        .unwrap();
        symlink("../../../d/d", dir.join("root/d/d/d/back")).unwrap();
        let root = Root::open(&dir.join("root")).unwrap();
        let base = File::open("/dev/null").unwrap().as_raw_fd();
        let fd = root
            .walk(format!("{deep}/leaf").as_bytes(), libc::O_RDONLY, 0)
            .unwrap();
        // Other tests in this process open files meanwhile: a wide margin.
        assert!(
            fd.as_raw_fd() < base + 100,
            "fd {} base {base}",
            fd.as_raw_fd()
        );
        let read = |p: &str| {
            let fd = root.walk(p.as_bytes(), libc::O_RDONLY, 0)?;
            let mut out = Vec::new();
            io::Read::read_to_end(&mut File::from(fd), &mut out)?;
            Ok::<_, io::Error>(out)
        };
        assert_eq!(read(&format!("{deep}/up")).unwrap(), b"inside");
        assert_eq!(
            read("d/d/d/back/d/d/d/d/d/d/d/d/d/d/leaf")
                .unwrap_err()
                .kind(),
            io::ErrorKind::NotFound
        );
        let via_back = format!("d/d/d/back/{}/leaf", vec!["d"; 298].join("/"));
        assert_eq!(read(&via_back).unwrap(), b"leaf");
    }

    /// A concurrent rename swaps a symlink and a directory under the walk
    /// (RENAME_EXCHANGE): both lead to a `f`, so every lookup must succeed,
    /// whichever it meets; the old walk answered EINVAL (553) or ENOTDIR.
    #[test]
    fn the_walk_retries_an_entry_swapped_under_it() {
        use std::sync::atomic::AtomicBool;
        use std::sync::Arc;
        let dir = scratch("swap");
        std::fs::create_dir_all(dir.join("root/real")).unwrap();
        std::fs::create_dir_all(dir.join("root/plain")).unwrap();
        std::fs::write(dir.join("root/real/f"), b"f").unwrap();
        std::fs::write(dir.join("root/plain/f"), b"f").unwrap();
        symlink("real", dir.join("root/l")).unwrap();
        let root = Arc::new(Root::open(&dir.join("root")).unwrap());
        let stop = Arc::new(AtomicBool::new(false));
        let swapper = {
            let (root, stop) = (Arc::clone(&root), Arc::clone(&stop));
            std::thread::spawn(move || {
                let fd = root.dir.as_fd();
                for _ in 0..5_000_000 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    sys::renameat2(fd, b"l", fd, b"plain", libc::RENAME_EXCHANGE).unwrap();
                }
            })
        };
        let mut failures = Vec::new();
        for _ in 0..20_000 {
            if let Err(e) = root.walk(b"l/f", libc::O_RDONLY, 0) {
                failures.push(e.to_string());
            }
        }
        stop.store(true, Ordering::Relaxed);
        swapper.join().unwrap();
        assert!(
            failures.is_empty(),
            "{} failures, e.g. {:?}",
            failures.len(),
            failures.first()
        );
    }
}
