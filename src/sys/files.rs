//! Files and directories: opens beneath a directory fd (openat2 and the
//! portable walk's openat), stat, create, remove, rename, link, mode and time
//! changes, directory streams. A client chooses the names (bounded by the
//! path layer above, which never passes `..` or an absolute path here) and
//! may have planted any kind of object under them: opens are non-blocking
//! and callers check the type with `fstat` before use.

use super::{cstring, owned, retry, with_cstr};
use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

/// `openat2(dir, path, {flags, mode, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS})`.
/// Returns `ENOSYS` on kernels older than 5.6.
pub fn openat2_in_root(dir: BorrowedFd, path: &[u8], flags: i32, mode: u32) -> io::Result<OwnedFd> {
    let path = cstring(path)?;
    let mut how: libc::open_how =
        // SAFETY: open_how is a plain C struct for which all-zero is valid.
        unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.mode = if flags & libc::O_CREAT != 0 {
        mode as u64
    } else {
        0
    };
    how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
    let fd = retry(|| {
        // SAFETY: path is NUL-terminated, how is valid for the call's duration.
        unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir.as_raw_fd(),
                path.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        }
    })?;
    Ok(owned(fd as libc::c_int))
}

/// Plain `openat(2)`; the caller adds `O_NOFOLLOW` where a symlink must not be followed.
pub fn openat(dir: BorrowedFd, name: &[u8], flags: i32, mode: u32) -> io::Result<OwnedFd> {
    let name = cstring(name)?;
    // SAFETY: name is NUL-terminated; the kernel validates the descriptor.
    let fd = retry(|| unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_ptr(),
            flags | libc::O_CLOEXEC,
            mode,
        )
    })?;
    Ok(owned(fd))
}

/// What `stat(2)` tells about a file, in the units the listings need.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileStat {
    pub mode: u32,
    pub nlink: u64,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub mtime: i64,
    pub dev: u64,
    pub ino: u64,
}

impl FileStat {
    pub fn is_dir(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFDIR
    }
    pub fn is_file(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFREG
    }
    pub fn is_symlink(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFLNK
    }
}

// The casts matter on other targets, where the field types differ.
#[allow(clippy::unnecessary_cast)]
fn to_filestat(st: &libc::stat) -> FileStat {
    FileStat {
        mode: st.st_mode,
        nlink: st.st_nlink as u64,
        uid: st.st_uid,
        gid: st.st_gid,
        size: st.st_size as u64,
        mtime: st.st_mtime,
        dev: st.st_dev,
        ino: st.st_ino,
    }
}

/// `fstatat(dir, name, AT_SYMLINK_NOFOLLOW)`; an empty name stats `dir` itself.
pub fn lstatat(dir: BorrowedFd, name: &[u8]) -> io::Result<FileStat> {
    let flags = if name.is_empty() {
        libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW
    } else {
        libc::AT_SYMLINK_NOFOLLOW
    };
    // SAFETY: all-zero is a valid `stat`; the kernel fills it in.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    with_cstr(name, |name| {
        // SAFETY: name is NUL-terminated and st is a valid out-pointer.
        retry(|| unsafe { libc::fstatat(dir.as_raw_fd(), name, &mut st, flags) })
    })?;
    Ok(to_filestat(&st))
}

/// `fstat(fd)`.
pub fn fstat(fd: BorrowedFd) -> io::Result<FileStat> {
    lstatat(fd, b"")
}

pub fn mkdirat(dir: BorrowedFd, name: &[u8], mode: u32) -> io::Result<()> {
    let name = cstring(name)?;
    // SAFETY: name is NUL-terminated.
    retry(|| unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), mode as libc::mode_t) })?;
    Ok(())
}

/// `unlinkat(2)`; `dir_entry` removes an empty directory instead of a file.
pub fn unlinkat(dir: BorrowedFd, name: &[u8], dir_entry: bool) -> io::Result<()> {
    let name = cstring(name)?;
    let flags = if dir_entry { libc::AT_REMOVEDIR } else { 0 };
    // SAFETY: name is NUL-terminated.
    retry(|| unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), flags) })?;
    Ok(())
}

pub fn renameat(
    from_dir: BorrowedFd,
    from: &[u8],
    to_dir: BorrowedFd,
    to: &[u8],
) -> io::Result<()> {
    let from = cstring(from)?;
    let to = cstring(to)?;
    // SAFETY: both names are NUL-terminated.
    retry(|| unsafe {
        libc::renameat(
            from_dir.as_raw_fd(),
            from.as_ptr(),
            to_dir.as_raw_fd(),
            to.as_ptr(),
        )
    })?;
    Ok(())
}

/// `linkat(2)` within one directory; fails with `EEXIST` rather than replace `to`.
pub fn linkat(dir: BorrowedFd, from: &[u8], to: &[u8]) -> io::Result<()> {
    let from = cstring(from)?;
    let to = cstring(to)?;
    // SAFETY: both names are NUL-terminated.
    retry(|| unsafe {
        libc::linkat(
            dir.as_raw_fd(),
            from.as_ptr(),
            dir.as_raw_fd(),
            to.as_ptr(),
            0,
        )
    })?;
    Ok(())
}

/// `readlinkat(2)` into a fresh buffer.
pub fn readlinkat(dir: BorrowedFd, name: &[u8]) -> io::Result<Vec<u8>> {
    let name = cstring(name)?;
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: buf is valid for buf.len() bytes.
    let n = retry(|| unsafe {
        libc::readlinkat(
            dir.as_raw_fd(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    })?;
    buf.truncate(n as usize);
    Ok(buf)
}

/// `fchmodat(dir, name, mode)`; follows no symlink on the last component's behalf
/// because the caller resolved it already.
pub fn fchmod(fd: BorrowedFd, mode: u32) -> io::Result<()> {
    // SAFETY: plain integer arguments.
    retry(|| unsafe { libc::fchmod(fd.as_raw_fd(), mode as libc::mode_t) })?;
    Ok(())
}

/// Sets access and modification time of an open file to `mtime` (seconds since the epoch).
pub fn set_mtime(fd: BorrowedFd, mtime: i64) -> io::Result<()> {
    let t = libc::timespec {
        tv_sec: mtime as _,
        tv_nsec: 0,
    };
    let times = [t, t];
    // SAFETY: times points to two valid timespecs; a NULL path means `fd` itself.
    retry(|| unsafe { libc::futimens(fd.as_raw_fd(), times.as_ptr()) })?;
    Ok(())
}

pub fn fsync(fd: BorrowedFd) -> io::Result<()> {
    // SAFETY: plain integer argument.
    retry(|| unsafe { libc::fsync(fd.as_raw_fd()) })?;
    Ok(())
}

/// Sets the process umask, returning the previous one.
pub fn umask(mask: u32) -> u32 {
    // SAFETY: umask cannot fail.
    unsafe { libc::umask(mask as libc::mode_t) as u32 }
}

/// An open directory stream over a descriptor; entries come out as raw names.
pub struct Dir(*mut libc::DIR);

// SAFETY: a DIR stream is only ever used by the one thread that owns the value.
unsafe impl Send for Dir {}

impl Dir {
    /// Takes ownership of `fd`, which must be an open directory.
    pub fn from_fd(fd: OwnedFd) -> io::Result<Dir> {
        use std::os::fd::IntoRawFd;
        let raw = fd.into_raw_fd();
        // SAFETY: raw is an open descriptor we own; fdopendir takes it over on success.
        let dir = unsafe { libc::fdopendir(raw) };
        if dir.is_null() {
            let err = io::Error::last_os_error();
            drop(owned(raw));
            return Err(err);
        }
        Ok(Dir(dir))
    }

    /// The descriptor of the stream, for `*at` calls relative to the directory.
    pub fn fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the stream is open for as long as self lives.
        unsafe { BorrowedFd::borrow_raw(libc::dirfd(self.0)) }
    }

    /// Starts the stream over from the first entry.
    pub fn rewind(&mut self) {
        // SAFETY: self.0 is an open stream; rewinddir cannot fail.
        unsafe { libc::rewinddir(self.0) };
    }

    /// Copies the next entry's name into `name` (reused, so a long listing
    /// allocates nothing per entry), skipping `.` and `..`; `None` at the end.
    pub fn next_name(&mut self, name: &mut Vec<u8>) -> Option<io::Result<()>> {
        loop {
            // readdir signals errors only through errno, so clear it first.
            // SAFETY: __errno_location always returns this thread's errno.
            unsafe { *libc::__errno_location() = 0 };
            // SAFETY: self.0 is an open stream.
            let ent = unsafe { libc::readdir(self.0) };
            if ent.is_null() {
                let err = io::Error::last_os_error();
                return match err.raw_os_error() {
                    Some(0) | None => None,
                    Some(_) => Some(Err(err)),
                };
            }
            // SAFETY: d_name is a NUL-terminated string inside the entry, valid
            // until the next readdir on this stream; we copy it out at once.
            let found = unsafe { CStr::from_ptr((*ent).d_name.as_ptr()) }.to_bytes();
            if found != b"." && found != b".." {
                name.clear();
                name.extend_from_slice(found);
                return Some(Ok(()));
            }
        }
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        // SAFETY: the stream is open and closed exactly once here.
        unsafe { libc::closedir(self.0) };
    }
}

/// Sets or clears `O_NONBLOCK` on an open file. Opens that a client can cause
/// use `O_NONBLOCK` so that a planted FIFO or device cannot block a worker;
/// once the file is known to be regular the flag is cleared again.
pub fn set_nonblocking(fd: BorrowedFd, on: bool) -> io::Result<()> {
    // SAFETY: plain integer arguments.
    let flags = retry(|| unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) })?;
    let flags = if on {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    // SAFETY: plain integer arguments.
    retry(|| unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags) })?;
    Ok(())
}

/// fchmodat2's number: 452 on every architecture minftpd builds for (the
/// syscall table is shared since Linux 5.1), but the libc crate only names it
/// for some (not aarch64 musl), so it is spelled out here.
const SYS_FCHMODAT2: libc::c_long = 452;

/// `fchmodat2(dir, name, mode, AT_SYMLINK_NOFOLLOW)` (Linux 6.6+): changes the
/// mode of the entry itself, never of what a symlink there points to (such an
/// entry fails with `EOPNOTSUPP`). `ENOSYS` on older kernels.
pub fn fchmodat_nofollow(dir: BorrowedFd, name: &[u8], mode: u32) -> io::Result<()> {
    let name = cstring(name)?;
    // SAFETY: name is NUL-terminated; the other arguments are integers.
    retry(|| unsafe {
        libc::syscall(
            SYS_FCHMODAT2,
            dir.as_raw_fd(),
            name.as_ptr(),
            mode as libc::c_uint,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })?;
    Ok(())
}

/// `utimensat(dir, name, {mtime, mtime}, AT_SYMLINK_NOFOLLOW)`: sets access and
/// modification time of the entry itself (a symlink's own times, never its target's).
pub fn set_mtime_at(dir: BorrowedFd, name: &[u8], mtime: i64) -> io::Result<()> {
    let name = cstring(name)?;
    let t = libc::timespec {
        tv_sec: mtime as _,
        tv_nsec: 0,
    };
    let times = [t, t];
    // SAFETY: name is NUL-terminated and times points to two valid timespecs.
    retry(|| unsafe {
        libc::utimensat(
            dir.as_raw_fd(),
            name.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })?;
    Ok(())
}

/// `renameat2(2)` with `flags` (`libc::RENAME_NOREPLACE`, `RENAME_EXCHANGE`).
/// `EINVAL` where the filesystem does not support the flag, `ENOSYS` before Linux 3.15.
pub fn renameat2(
    from_dir: BorrowedFd,
    from: &[u8],
    to_dir: BorrowedFd,
    to: &[u8],
    flags: u32,
) -> io::Result<()> {
    let from = cstring(from)?;
    let to = cstring(to)?;
    // SAFETY: both names are NUL-terminated; the other arguments are integers.
    retry(|| unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            from_dir.as_raw_fd(),
            from.as_ptr(),
            to_dir.as_raw_fd(),
            to.as_ptr(),
            flags as libc::c_uint,
        )
    })?;
    Ok(())
}

/// Syncs the directory `dir` (which may be an `O_PATH` descriptor, as the
/// upload code holds it) so the names created or renamed in it survive a power
/// cut. The directory is reopened read-only by "." (no path lookup outside
/// it). Where the server may not read it (a write-only drop box), or the file
/// system refuses fsync on a directory, `fallback` (a file on the same file
/// system) is synced with syncfs(2) instead: heavier, but just as durable.
pub fn sync_dir(dir: BorrowedFd, fallback: BorrowedFd) -> io::Result<()> {
    use std::os::fd::AsFd as _;
    let synced =
        openat(dir, b".", libc::O_RDONLY | libc::O_DIRECTORY, 0).and_then(|d| fsync(d.as_fd()));
    match synced {
        Err(e) if matches!(e.raw_os_error(), Some(libc::EACCES) | Some(libc::EINVAL)) => {
            syncfs(fallback)
        }
        other => other,
    }
}

/// syncfs(2): writes out everything of the file system that holds `fd`.
pub fn syncfs(fd: BorrowedFd) -> io::Result<()> {
    // SAFETY: plain integer argument.
    retry(|| unsafe { libc::syncfs(fd.as_raw_fd()) })?;
    Ok(())
}
