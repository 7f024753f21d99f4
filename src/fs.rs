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
use std::os::fd::{AsFd, OwnedFd};
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
        let dir = self.open_at(vpath, libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
        Ok(Root { dir })
    }

    /// Opens `vpath` (normalised) with `flags`, following symlinks inside the root.
    fn open_at(&self, vpath: &[u8], flags: i32, mode: u32) -> io::Result<OwnedFd> {
        if vpath.len() > MAX_PATH || vpath.contains(&0) {
            return Err(invalid_name());
        }
        let rel = relative(vpath);
        if RESOLVER.load(Ordering::Relaxed) != 2 {
            match sys::openat2_in_root(self.dir.as_fd(), rel, flags, mode) {
                Err(e)
                    if e.raw_os_error() == Some(libc::ENOSYS)
                        || e.raw_os_error() == Some(libc::EPERM)
                            && RESOLVER.load(Ordering::Relaxed) == 0 =>
                {
                    // ENOSYS: kernel older than 5.6. EPERM on first use: a seccomp
                    // filter (some container runtimes) forbids the new call.
                    RESOLVER.store(2, Ordering::Relaxed);
                }
                result => {
                    RESOLVER.store(1, Ordering::Relaxed);
                    return result;
                }
            }
        }
        self.walk(rel, flags, mode)
    }

    /// The portable resolver: one component at a time, each opened with
    /// `O_NOFOLLOW` beneath the previous one's fd, symlinks read and spliced in,
    /// `..` popping the stack of opened directories but never past the root.
    fn walk(&self, rel: &[u8], flags: i32, mode: u32) -> io::Result<OwnedFd> {
        let mut stack: Vec<OwnedFd> = Vec::new();
        let mut pending: std::collections::VecDeque<Vec<u8>> = components(rel).collect();
        let mut links = 0;
        while let Some(name) = pending.pop_front() {
            if name == b".." {
                stack.pop();
                continue;
            }
            let current = stack
                .last()
                .map(|fd| fd.as_fd())
                .unwrap_or(self.dir.as_fd());
            let last = pending.is_empty();
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
            if stat.is_symlink() {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(io::Error::from_raw_os_error(libc::ELOOP));
                }
                let target = sys::readlinkat(current, &name)?;
                if target.starts_with(b"/") {
                    stack.clear();
                }
                for part in components(&target).collect::<Vec<_>>().into_iter().rev() {
                    pending.push_front(part);
                }
                continue;
            }
            if last {
                return sys::openat(current, &name, flags | libc::O_NOFOLLOW, mode);
            }
            let next = sys::openat(
                current,
                &name,
                libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW,
                0,
            )?;
            stack.push(next);
        }
        let current = stack
            .last()
            .map(|fd| fd.as_fd())
            .unwrap_or(self.dir.as_fd());
        sys::openat(current, b".", flags, mode)
    }

    /// Opens a regular file for reading; its stat comes along (RETR needs the size).
    pub fn open_file(&self, vpath: &[u8]) -> io::Result<(File, FileStat)> {
        let file = File::from(self.open_at(vpath, libc::O_RDONLY | libc::O_NONBLOCK, 0)?);
        let st = sys::fstat(file.as_fd())?;
        if !st.is_file() {
            return Err(io::Error::from_raw_os_error(libc::EISDIR));
        }
        Ok((file, st))
    }

    /// Opens a file for writing in place (APPE, REST+STOR), creating it if needed.
    pub fn open_for_update(&self, vpath: &[u8], mode: u32) -> io::Result<File> {
        let fd = self.open_at(vpath, libc::O_WRONLY | libc::O_CREAT, mode)?;
        let file = File::from(fd);
        if !sys::fstat(file.as_fd())?.is_file() {
            return Err(io::Error::from_raw_os_error(libc::EISDIR));
        }
        Ok(file)
    }

    /// `stat` of a path, following symlinks inside the root.
    pub fn stat(&self, vpath: &[u8]) -> io::Result<FileStat> {
        sys::fstat(self.open_at(vpath, libc::O_PATH, 0)?.as_fd())
    }

    /// Opens a directory for listing.
    pub fn read_dir(&self, vpath: &[u8]) -> io::Result<Dir> {
        Dir::from_fd(self.open_at(vpath, libc::O_RDONLY | libc::O_DIRECTORY, 0)?)
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

    pub fn chmod(&self, vpath: &[u8], mode: u32) -> io::Result<()> {
        sys::fchmod(
            self.open_at(vpath, libc::O_RDONLY | libc::O_NONBLOCK, 0)?
                .as_fd(),
            mode,
        )
    }

    pub fn set_mtime(&self, vpath: &[u8], mtime: i64) -> io::Result<()> {
        sys::set_mtime(
            self.open_at(vpath, libc::O_RDONLY | libc::O_NONBLOCK, 0)?
                .as_fd(),
            mtime,
        )
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
            match sys::openat(
                dir.as_fd(),
                &temp,
                libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW,
                mode,
            ) {
                Ok(fd) => {
                    return Ok(Upload {
                        file: File::from(fd),
                        dir,
                        temp,
                        target,
                        exclusive,
                        committed: false,
                    })
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
            // link(2) fails with EEXIST instead of replacing: an atomic
            // "create if absent" that works on every kernel.
            sys::linkat(self.dir.as_fd(), &self.temp, &self.target)?;
            let _ = sys::unlinkat(self.dir.as_fd(), &self.temp, false);
        } else {
            sys::renameat(self.dir.as_fd(), &self.temp, self.dir.as_fd(), &self.target)?;
        }
        self.committed = true;
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
}
