//! The virtual filesystem's API: path normalisation, and every open, stat,
//! mkdir, rename, remove, chmod and mtime confined beneath a user's root
//! directory descriptor (`Root`); paths are resolved in resolve.rs, uploads
//! written in upload.rs. This holds also when the process runs without chroot.
//!
//! A hostile client controls the virtual paths (normalised here, so `..` stops
//! at `/`; at most `MAX_PATH` bytes, no NUL), the SITE CHMOD mode bits and the
//! MFMT time. A planted FIFO, socket or device is opened `O_NONBLOCK` and
//! refused (550) before any read or write; a planted symlink is followed only
//! inside the root, and never by an attribute change.

#[cfg(test)]
mod fixture;
mod resolve;
mod shared;
mod upload;

pub use upload::{Upload, TEMP_PREFIX};

use crate::sys::{self, Dir, FileStat};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Longest virtual path we accept; longer ones are a client's attempt to make
/// us allocate or walk without end.
pub const MAX_PATH: usize = 4096;

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
    /// Roots opened beneath this one that sessions share (shared.rs).
    shared: shared::Shared,
}

/// The sandbox grants rights beneath a root's directory.
impl std::os::fd::AsFd for Root {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.dir.as_fd()
    }
}

impl From<Root> for OwnedFd {
    fn from(root: Root) -> OwnedFd {
        root.dir
    }
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
            shared: Default::default(),
        })
    }

    /// A directory beneath this root as a root of its own (a user's home).
    pub fn subroot(&self, vpath: &[u8]) -> io::Result<Root> {
        let (dir, _) = self.open_object(vpath, libc::O_RDONLY | libc::O_DIRECTORY, 0, Want::Dir)?;
        Ok(Root {
            dir,
            shared: Default::default(),
        })
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

#[cfg(test)]
mod tests {
    use super::fixture::scratch;
    use super::*;

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
    }
}
