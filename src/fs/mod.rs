//! The virtual filesystem: path normalisation and every open, stat, rename and
//! unlink confined beneath the user's root directory descriptor.
//!
//! Paths are resolved beneath a directory fd, never as host path strings: on
//! Linux 5.6+ by `openat2(RESOLVE_IN_ROOT)`, elsewhere by a component-by-component
//! `openat(O_NOFOLLOW)` walk that resolves symlinks itself with the same meaning
//! (an absolute link target or `..` never climbs above the root). This holds
//! also when the process runs without chroot.

use crate::sys::{self, Dir, FileStat};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};

/// Longest virtual path we accept; longer ones are a client's attempt to make
/// us allocate or walk without end.
pub const MAX_PATH: usize = 4096;
const MAX_SYMLINKS: usize = 40;

/// Normalises a client path against the virtual cwd: the result starts with `/`,
/// has no `.`, `..` or empty components, and `..` at the root stays at the root.
pub fn normalize(cwd: &[u8], arg: &[u8]) -> Vec<u8> {
    let mut parts: Vec<&[u8]> = Vec::new();
    let start: &[u8] = if arg.starts_with(b"/") { b"" } else { cwd };
    for part in start.split(|&b| b == b'/').chain(arg.split(|&b| b == b'/')) {
        match part {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            name => parts.push(name),
        }
    }
    let mut out = Vec::with_capacity(arg.len() + cwd.len() + 1);
    for part in &parts {
        out.push(b'/');
        out.extend_from_slice(part);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

/// Splits a normalised virtual path into its parent and last name (`None` for `/`).
pub fn split_parent(vpath: &[u8]) -> Option<(&[u8], &[u8])> {
    let slash = vpath.iter().rposition(|&b| b == b'/')?;
    let name = &vpath[slash + 1..];
    if name.is_empty() {
        return None;
    }
    let parent = if slash == 0 {
        &b"/"[..]
    } else {
        &vpath[..slash]
    };
    Some((parent, name))
}

/// The path relative to the root fd, as openat wants it ("." for the root).
fn relative(vpath: &[u8]) -> &[u8] {
    let rel = vpath.strip_prefix(b"/").unwrap_or(vpath);
    if rel.is_empty() {
        b"."
    } else {
        rel
    }
}

fn invalid_name() -> io::Error {
    io::Error::from_raw_os_error(libc::EINVAL)
}

/// Which resolver this kernel supports: 0 unknown, 1 openat2, 2 the walk.
static RESOLVER: AtomicU8 = AtomicU8::new(0);
const OPENAT2: u8 = 1;
const WALK: u8 = 2;

/// How often one lookup retries openat2 after `EAGAIN` before it takes the walk.
const OPENAT2_EAGAIN_RETRIES: usize = 8;
/// How often one walk re-examines an entry that changed type under it (a
/// concurrent rename swapped a symlink and a directory) before it gives up.
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

/// What a caller wants to open: anything else is refused before any I/O.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Want {
    File,
    Dir,
    FileOrDir,
}

/// The error for an object that is neither a regular file nor a directory
/// (FIFO, socket, device): `EACCES`, which the session answers with 550.
fn special_file() -> io::Error {
    io::Error::from_raw_os_error(libc::EACCES)
}

/// Checks what an `O_NONBLOCK` open returned, and makes a regular file
/// blocking again (its reads and writes then behave as usual).
fn checked(fd: OwnedFd, want: Want) -> io::Result<(OwnedFd, FileStat)> {
    let st = sys::fstat(fd.as_fd())?;
    match want {
        Want::File if st.is_dir() => return Err(io::Error::from_raw_os_error(libc::EISDIR)),
        Want::Dir if !st.is_dir() => return Err(io::Error::from_raw_os_error(libc::ENOTDIR)),
        _ if !st.is_file() && !st.is_dir() => return Err(special_file()),
        _ => {}
    }
    if st.is_file() {
        sys::set_nonblocking(fd.as_fd(), false)?;
    }
    Ok((fd, st))
}

/// `ENXIO` is what an `O_WRONLY|O_NONBLOCK` open of a FIFO without a reader,
/// or of a unix socket, returns: a special file, refused like the others.
fn open_error(e: io::Error) -> io::Error {
    if e.raw_os_error() == Some(libc::ENXIO) {
        special_file()
    } else {
        e
    }
}

/// A directory that is `/` for the paths resolved beneath it.
#[derive(Debug)]
pub struct Root {
    dir: OwnedFd,
}

impl Root {
    /// Opens a host directory as a root.
    pub fn open(path: &Path) -> io::Result<Root> {
        let file = File::options()
            .read(true)
            .custom_flags(libc::O_DIRECTORY)
            .open(path)?;
        Ok(Root {
            dir: OwnedFd::from(file),
        })
    }

    /// A directory beneath this root as a root of its own (a user's home).
    pub fn subroot(&self, vpath: &[u8]) -> io::Result<Root> {
        let (dir, _) = self.open_object(vpath, libc::O_RDONLY | libc::O_DIRECTORY, 0, Want::Dir)?;
        Ok(Root { dir })
    }

    /// Every open a client can cause for reading or writing goes through here:
    /// `O_NONBLOCK` so that opening a planted FIFO or device returns at once,
    /// then `fstat` refuses what is not `want` before any read or write.
    fn open_object(
        &self,
        vpath: &[u8],
        flags: i32,
        mode: u32,
        want: Want,
    ) -> io::Result<(OwnedFd, FileStat)> {
        let fd = self
            .open_at(vpath, flags | libc::O_NONBLOCK, mode)
            .map_err(open_error)?;
        checked(fd, want)
    }

    /// Opens `vpath` (normalised) with `flags`, following symlinks inside the root.
    /// The client controls the path (at most `MAX_PATH` bytes, no NUL).
    fn open_at(&self, vpath: &[u8], flags: i32, mode: u32) -> io::Result<OwnedFd> {
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
    /// `O_NOFOLLOW` beneath the current directory, symlinks read and spliced
    /// in, `..` dropping a name but never going above the root. Only the
    /// current directory's fd is held (a deep tree cannot exhaust the fd
    /// table); `..` re-walks the remaining names from the root. An entry that
    /// changes type between its `lstat` and its use (a rename race) is
    /// examined again, at most `MAX_RACES` times.
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
            let current = at.dir()?;
            let stat = match sys::lstatat(current, &name) {
                Err(e)
                    if last
                        && e.kind() == io::ErrorKind::NotFound
                        && flags & libc::O_CREAT != 0 =>
                {
                    return sys::openat(current, &name, flags | libc::O_NOFOLLOW, mode);
                }
                other => other?,
            };
            let result = if stat.is_symlink() {
                sys::readlinkat(current, &name).map(Step::Link)
            } else if last {
                sys::openat(current, &name, flags | libc::O_NOFOLLOW, mode).map(Step::Done)
            } else {
                let dir_flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW;
                sys::openat(current, &name, dir_flags, 0).map(Step::Dir)
            };
            match result {
                Err(e) if races < MAX_RACES && raced(&e, &stat) => {
                    races += 1;
                    pending.push_front(name);
                }
                Err(e) => return Err(e),
                Ok(Step::Done(fd)) => return Ok(fd),
                Ok(Step::Dir(fd)) => at.down(fd, name),
                Ok(Step::Link(target)) => {
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

    /// Opens a regular file for reading; its stat comes along (RETR needs the size).
    /// A FIFO, socket or device at the path is refused (550), never opened blocking.
    pub fn open_file(&self, vpath: &[u8]) -> io::Result<(File, FileStat)> {
        let (fd, st) = self.open_object(vpath, libc::O_RDONLY, 0, Want::File)?;
        Ok((File::from(fd), st))
    }

    /// Opens a file for writing in place (APPE, REST+STOR), creating it if needed.
    /// A FIFO, socket or device at the path is refused (550) without blocking.
    pub fn open_for_update(&self, vpath: &[u8], mode: u32) -> io::Result<File> {
        let flags = libc::O_WRONLY | libc::O_CREAT;
        let (fd, _) = self.open_object(vpath, flags, mode, Want::File)?;
        Ok(File::from(fd))
    }

    /// `stat` of a path, following symlinks inside the root (`O_PATH` never blocks).
    pub fn stat(&self, vpath: &[u8]) -> io::Result<FileStat> {
        sys::fstat(self.open_at(vpath, libc::O_PATH, 0)?.as_fd())
    }

    /// Opens a directory for listing.
    pub fn read_dir(&self, vpath: &[u8]) -> io::Result<Dir> {
        let flags = libc::O_RDONLY | libc::O_DIRECTORY;
        let (fd, _) = self.open_object(vpath, flags, 0, Want::Dir)?;
        Dir::from_fd(fd)
    }

    /// The directory holding `vpath`, and the last name in it. `/` has no parent.
    pub fn parent(&self, vpath: &[u8]) -> io::Result<(OwnedFd, Vec<u8>)> {
        let (parent, name) =
            split_parent(vpath).ok_or_else(|| io::Error::from_raw_os_error(libc::EPERM))?;
        let dir = self.open_at(parent, libc::O_PATH | libc::O_DIRECTORY, 0)?;
        Ok((dir, name.to_vec()))
    }

    pub fn mkdir(&self, vpath: &[u8], mode: u32) -> io::Result<()> {
        let (dir, name) = self.parent(vpath)?;
        sys::mkdirat(dir.as_fd(), &name, mode)
    }

    /// Removes a file or symlink (never follows it).
    pub fn remove_file(&self, vpath: &[u8]) -> io::Result<()> {
        let (dir, name) = self.parent(vpath)?;
        if sys::lstatat(dir.as_fd(), &name)?.is_dir() {
            return Err(io::Error::from_raw_os_error(libc::EISDIR));
        }
        sys::unlinkat(dir.as_fd(), &name, false)
    }

    pub fn remove_dir(&self, vpath: &[u8]) -> io::Result<()> {
        let (dir, name) = self.parent(vpath)?;
        sys::unlinkat(dir.as_fd(), &name, true)
    }

    /// `lstat` of a path's last component (a symlink is reported as itself).
    pub fn lstat(&self, vpath: &[u8]) -> io::Result<FileStat> {
        match self.parent(vpath) {
            Ok((dir, name)) => sys::lstatat(dir.as_fd(), &name),
            Err(_) => self.stat(vpath),
        }
    }

    pub fn rename(&self, from: &[u8], to: &[u8]) -> io::Result<()> {
        let (from_dir, from_name) = self.parent(from)?;
        let (to_dir, to_name) = self.parent(to)?;
        sys::renameat(from_dir.as_fd(), &from_name, to_dir.as_fd(), &to_name)
    }

    /// The parent directory of `vpath` and its last name, which must be a
    /// regular file or a directory: attributes are changed through the parent
    /// (no read permission needed, so `chmod 200` can be undone), and a
    /// symlink is refused (`ELOOP`, 550) rather than followed by name, which
    /// could leave the root.
    fn attribute_target(&self, vpath: &[u8]) -> io::Result<(OwnedFd, Vec<u8>)> {
        let (dir, name) = self.parent(vpath)?;
        let st = sys::lstatat(dir.as_fd(), &name)?;
        if st.is_symlink() {
            return Err(io::Error::from_raw_os_error(libc::ELOOP));
        }
        if !st.is_file() && !st.is_dir() {
            return Err(special_file());
        }
        Ok((dir, name))
    }

    /// SITE CHMOD: the client controls the path and the mode bits (the session
    /// masks them to 0o777). Through `fchmodat2(AT_SYMLINK_NOFOLLOW)`, so an
    /// entry swapped for a symlink after the check is not followed either.
    pub fn chmod(&self, vpath: &[u8], mode: u32) -> io::Result<()> {
        let (dir, name) = self.attribute_target(vpath)?;
        match sys::fchmodat_nofollow(dir.as_fd(), &name, mode) {
            Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {
                // The entry became a symlink after the check.
                Err(io::Error::from_raw_os_error(libc::ELOOP))
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {
                self.chmod_through_open(dir.as_fd(), &name, mode)
            }
            other => other,
        }
    }

    /// Before Linux 6.6: open the entry itself (`O_NOFOLLOW`, read, else write
    /// access) and `fchmod` it. An entry with neither read nor write permission
    /// stays as it is there (550) rather than be changed by a racy name lookup.
    fn chmod_through_open(&self, dir: BorrowedFd, name: &[u8], mode: u32) -> io::Result<()> {
        let base = libc::O_NOFOLLOW | libc::O_NONBLOCK;
        let fd = sys::openat(dir, name, libc::O_RDONLY | base, 0)
            .or_else(|_| sys::openat(dir, name, libc::O_WRONLY | base, 0))
            .map_err(open_error)?;
        let (fd, _) = checked(fd, Want::FileOrDir)?;
        sys::fchmod(fd.as_fd(), mode)
    }

    /// MFMT: the client controls the path and the time. `utimensat` on the
    /// parent with `AT_SYMLINK_NOFOLLOW`: no read permission needed, no symlink followed.
    pub fn set_mtime(&self, vpath: &[u8], mtime: i64) -> io::Result<()> {
        let (dir, name) = self.attribute_target(vpath)?;
        sys::set_mtime_at(dir.as_fd(), &name, mtime)
    }
}

/// What one step of the walk found.
enum Step {
    Done(OwnedFd),
    Dir(OwnedFd),
    Link(Vec<u8>),
}

/// Whether an error from using an entry can only mean that a concurrent
/// rename swapped it after its `lstat` said `before`: `readlinkat` of what
/// was a symlink says it is none (`EINVAL`), an `O_NOFOLLOW` open of what was
/// no symlink meets one (`ELOOP`), or what was a directory is none (`ENOTDIR`).
/// (Comparing a second lstat misses an entry swapped and swapped back.)
fn raced(e: &io::Error, before: &FileStat) -> bool {
    match e.raw_os_error() {
        Some(libc::EINVAL) => before.is_symlink(),
        Some(libc::ELOOP) => !before.is_symlink(),
        Some(libc::ENOTDIR) => before.is_dir(),
        _ => false,
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

/// A new upload: written under a hidden temporary name beside its target and
/// renamed over it only by `commit`, so a failed upload never replaces a good
/// file. Dropped without `commit`, the temporary file is removed.
pub struct Upload {
    pub file: File,
    dir: OwnedFd,
    temp: Vec<u8>,
    target: Vec<u8>,
    exclusive: bool,
    committed: bool,
}

/// Prefix of temporary upload names; listings hide them.
pub const TEMP_PREFIX: &[u8] = b".minftpd-upload.";

impl Upload {
    /// Creates the temporary file beside `vpath`. `exclusive` makes `commit`
    /// refuse to replace an existing target (anonymous uploads, STOU).
    pub fn create(root: &Root, vpath: &[u8], exclusive: bool, mode: u32) -> io::Result<Upload> {
        let (dir, target) = root.parent(vpath)?;
        if let Ok(st) = sys::lstatat(dir.as_fd(), &target) {
            if st.is_dir() {
                return Err(io::Error::from_raw_os_error(libc::EISDIR));
            }
        }
        let mut attempt = 0u32;
        loop {
            let temp = temp_name(attempt);
            // O_EXCL|O_NOFOLLOW: always a new regular file, so O_NONBLOCK is
            // only for uniformity with every other open. O_RDWR: the last
            // fallback of an exclusive commit copies the data out of it.
            let flags = libc::O_RDWR | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW;
            match sys::openat(dir.as_fd(), &temp, flags | libc::O_NONBLOCK, mode) {
                Ok(fd) => {
                    let upload = Upload {
                        file: File::from(checked(fd, Want::File)?.0),
                        dir,
                        temp,
                        target,
                        exclusive,
                        committed: false,
                    };
                    return Ok(upload);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 100 => attempt += 1,
                Err(e) => return Err(e),
            }
        }
    }

    /// Renames the finished temporary file over the target.
    pub fn commit(mut self, fsync: bool) -> io::Result<()> {
        if fsync {
            sys::fsync(self.file.as_fd())?;
        }
        if self.exclusive {
            self.commit_exclusive(fsync)?;
        } else {
            sys::renameat(self.dir.as_fd(), &self.temp, self.dir.as_fd(), &self.target)?;
        }
        self.committed = true;
        Ok(())
    }

    /// Puts the upload at the target only if no file has that name, never
    /// replacing one: link(2) fails with EEXIST, an atomic "create if absent".
    /// Filesystems without hard links (vfat) answer EPERM: then
    /// renameat2(RENAME_NOREPLACE), and where that flag is unsupported too, an
    /// O_CREAT|O_EXCL create of the target and a copy of the data into it.
    fn commit_exclusive(&mut self, fsync: bool) -> io::Result<()> {
        let dir = self.dir.as_fd();
        match sys::linkat(dir, &self.temp, &self.target) {
            Ok(()) => {
                let _ = sys::unlinkat(dir, &self.temp, false);
                return Ok(());
            }
            Err(e)
                if !matches!(
                    e.raw_os_error(),
                    Some(libc::EPERM) | Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS)
                ) =>
            {
                return Err(e)
            }
            Err(_) => {}
        }
        let noreplace = libc::RENAME_NOREPLACE;
        match sys::renameat2(dir, &self.temp, dir, &self.target, noreplace) {
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOSYS)) => {
                self.copy_exclusive(fsync)
            }
            other => other,
        }
    }

    /// The last fallback: the exclusive create keeps "never replace" atomic;
    /// the price is that the target is visible while the copy runs, and a
    /// failed copy removes the target it created.
    fn copy_exclusive(&mut self, fsync: bool) -> io::Result<()> {
        use std::io::{Seek, SeekFrom};
        let dir = self.dir.as_fd();
        let mode = sys::fstat(self.file.as_fd())?.mode & 0o7777;
        let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW;
        let mut out = File::from(sys::openat(dir, &self.target, flags, mode)?);
        let copied = self
            .file
            .seek(SeekFrom::Start(0))
            .and_then(|_| io::copy(&mut self.file, &mut out))
            .and_then(|_| {
                if fsync {
                    sys::fsync(out.as_fd())
                } else {
                    Ok(())
                }
            });
        if let Err(e) = copied {
            let _ = sys::unlinkat(dir, &self.target, false);
            return Err(e);
        }
        let _ = sys::unlinkat(dir, &self.temp, false);
        Ok(())
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if !self.committed {
            let _ = sys::unlinkat(self.dir.as_fd(), &self.temp, false);
        }
    }
}

fn temp_name(attempt: u32) -> Vec<u8> {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let mut name = TEMP_PREFIX.to_vec();
    name.extend_from_slice(format!("{}.{:x}.{}", sys::getpid(), nanos, attempt).as_bytes());
    name
}

fn components(path: &[u8]) -> impl Iterator<Item = Vec<u8>> + '_ {
    path.split(|&b| b == b'/')
        .filter(|p| !p.is_empty() && *p != b".")
        .map(|p| p.to_vec())
}

use std::os::unix::fs::OpenOptionsExt;

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn normalize_folds_dots_and_stays_under_root() {
        assert_eq!(normalize(b"/", b""), b"/");
        assert_eq!(normalize(b"/a/b", b"c"), b"/a/b/c");
        assert_eq!(normalize(b"/a/b", b"../c"), b"/a/c");
        assert_eq!(normalize(b"/a", b"../../../../etc/passwd"), b"/etc/passwd");
        assert_eq!(normalize(b"/a", b"/x/./y//z/"), b"/x/y/z");
        assert_eq!(normalize(b"/a", b".."), b"/");
        assert_eq!(normalize(b"/", b".."), b"/");
        assert_eq!(normalize(b"/", b"a\\..\\b"), b"/a\\..\\b");
    }

    #[test]
    fn split_parent_of_paths() {
        assert_eq!(split_parent(b"/a"), Some((&b"/"[..], &b"a"[..])));
        assert_eq!(split_parent(b"/a/b"), Some((&b"/a"[..], &b"b"[..])));
        assert_eq!(split_parent(b"/"), None);
    }

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("minftpd-fs-{}-{}", name, std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("root/sub")).unwrap();
        std::fs::write(dir.join("secret"), b"outside").unwrap();
        std::fs::write(dir.join("root/sub/inside"), b"inside").unwrap();
        symlink("/", dir.join("root/to-slash")).unwrap();
        symlink("../../secret", dir.join("root/sub/up")).unwrap();
        symlink(dir.join("secret"), dir.join("root/abs-secret")).unwrap();
        symlink("sub/inside", dir.join("root/rel-inside")).unwrap();
        symlink("loop", dir.join("root/loop")).unwrap();
        dir
    }

    fn read(root: &Root, path: &[u8]) -> io::Result<Vec<u8>> {
        use std::io::Read;
        let mut out = Vec::new();
        root.open_file(path)?.0.read_to_end(&mut out)?;
        Ok(out)
    }

    fn symlinks_stay_inside(root: &Root) {
        assert_eq!(read(root, b"/rel-inside").unwrap(), b"inside");
        // An absolute link to "/" means the root itself: /to-slash/sub/inside is inside.
        assert_eq!(read(root, b"/to-slash/sub/inside").unwrap(), b"inside");
        assert!(read(root, b"/to-slash/secret").is_err());
        assert!(read(root, b"/sub/up").is_err());
        assert!(read(root, b"/abs-secret").is_err());
        assert!(read(root, b"/loop").is_err());
        assert!(read(root, b"/to-slash/etc/passwd").is_err());
        assert!(root.stat(b"/sub").unwrap().is_dir());
    }

    #[test]
    fn symlinks_cannot_escape_with_openat2() {
        let dir = scratch("openat2");
        let root = Root::open(&dir.join("root")).unwrap();
        symlinks_stay_inside(&root);
        std::fs::remove_dir_all(dir).unwrap();
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
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn upload_replaces_only_on_commit() {
        use std::io::Write;
        let dir = scratch("upload");
        let root = Root::open(&dir.join("root")).unwrap();
        let mut up = Upload::create(&root, b"/sub/inside", false, 0o644).unwrap();
        up.file.write_all(b"half").unwrap();
        drop(up);
        assert_eq!(
            std::fs::read(dir.join("root/sub/inside")).unwrap(),
            b"inside"
        );
        assert_eq!(std::fs::read_dir(dir.join("root/sub")).unwrap().count(), 2);
        let mut up = Upload::create(&root, b"/sub/inside", false, 0o644).unwrap();
        up.file.write_all(b"whole").unwrap();
        up.commit(true).unwrap();
        let up = Upload::create(&root, b"/sub/inside", true, 0o644).unwrap();
        assert!(
            up.commit(false).is_err(),
            "an exclusive upload must not replace a file"
        );
        assert_eq!(
            std::fs::read(dir.join("root/sub/inside")).unwrap(),
            b"whole"
        );
        assert_eq!(std::fs::read_dir(dir.join("root/sub")).unwrap().count(), 2);
        std::fs::remove_dir_all(dir).unwrap();
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
        std::fs::remove_dir_all(dir).unwrap();
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
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// Runs `f` in a thread; a planted FIFO that blocks it is unblocked by
    /// opening its other end, and the test fails instead of hanging.
    fn without_blocking<T: Send + 'static>(
        fifo: std::path::PathBuf,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(f()));
        match rx.recv_timeout(std::time::Duration::from_secs(20)) {
            Ok(result) => result,
            Err(_) => {
                let _other_end = File::options()
                    .read(true)
                    .write(true)
                    .custom_flags(libc::O_NONBLOCK)
                    .open(&fifo);
                panic!("an open of {} blocked", fifo.display());
            }
        }
    }

    #[test]
    fn special_files_are_refused_without_blocking() {
        use std::sync::Arc;
        let dir = scratch("fifo");
        let fifo = dir.join("root/fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        drop(std::os::unix::net::UnixListener::bind(dir.join("root/sock")).unwrap());
        let root = Arc::new(Root::open(&dir.join("root")).unwrap());
        for name in ["/fifo", "/sock"] {
            let r = Arc::clone(&root);
            let e = without_blocking(fifo.clone(), move || {
                r.open_for_update(name.as_bytes(), 0o644).map(|_| ())
            });
            assert_eq!(
                e.unwrap_err().raw_os_error(),
                Some(libc::EACCES),
                "update {name}"
            );
            let r = Arc::clone(&root);
            let e = without_blocking(fifo.clone(), move || {
                r.open_file(name.as_bytes()).map(|_| ())
            });
            assert_eq!(
                e.unwrap_err().raw_os_error(),
                Some(libc::EACCES),
                "read {name}"
            );
            let e = root.read_dir(name.as_bytes()).map(|_| ()).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::ENOTDIR), "list {name}");
            let e = root.chmod(name.as_bytes(), 0o600).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EACCES), "chmod {name}");
            let e = root.set_mtime(name.as_bytes(), 0).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EACCES), "mtime {name}");
        }
        // A regular file opens as before.
        let (file, _) = root.open_file(b"/sub/inside").unwrap();
        let flags = File::options()
            .read(true)
            .open("/dev/null")
            .map(|_| ())
            .ok();
        assert!(flags.is_some());
        let mut buf = Vec::new();
        io::Read::read_to_end(&mut &file, &mut buf).unwrap();
        assert_eq!(buf, b"inside");
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// The last fallback of an exclusive commit (no link(2), no
    /// RENAME_NOREPLACE): creates the target exclusively and copies.
    #[test]
    fn exclusive_copy_creates_and_never_replaces() {
        use std::io::Write;
        let dir = scratch("copy");
        let root = Root::open(&dir.join("root")).unwrap();
        let mut up = Upload::create(&root, b"/sub/new", true, 0o640).unwrap();
        up.file.write_all(b"copied data").unwrap();
        up.copy_exclusive(true).unwrap();
        up.committed = true;
        drop(up);
        assert_eq!(
            std::fs::read(dir.join("root/sub/new")).unwrap(),
            b"copied data"
        );
        let mut up = Upload::create(&root, b"/sub/new", true, 0o640).unwrap();
        up.file.write_all(b"other").unwrap();
        let e = up.copy_exclusive(false).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        drop(up);
        assert_eq!(
            std::fs::read(dir.join("root/sub/new")).unwrap(),
            b"copied data"
        );
        let mut names: Vec<_> = std::fs::read_dir(dir.join("root/sub"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, ["inside", "new", "up"]);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
