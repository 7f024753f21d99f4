//! Every `unsafe` call of the program, each behind a small safe function that
//! returns `io::Result`. Nothing outside this file may use `unsafe`.

use std::ffi::{CStr, CString, OsStr};
use std::io;
use std::net::TcpStream;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

/// Turns a C return value into `io::Result`, reading `errno` on -1.
fn check<T: Copy + PartialEq + From<i8>>(ret: T) -> io::Result<T> {
    if ret == T::from(-1) {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Like `check`, but retries while the call was interrupted by a signal.
fn retry<T: Copy + PartialEq + From<i8>>(mut call: impl FnMut() -> T) -> io::Result<T> {
    loop {
        match check(call()) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

fn cstring(name: &[u8]) -> io::Result<CString> {
    CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// Calls `f` with `name` as a C string, on the stack when it is short: a
/// listing stats every entry, and an allocation per entry showed in profiles.
fn with_cstr<T>(
    name: &[u8],
    f: impl FnOnce(*const libc::c_char) -> io::Result<T>,
) -> io::Result<T> {
    const STACK: usize = 256;
    if name.len() < STACK {
        if name.contains(&0) {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let mut buf = [0u8; STACK];
        buf[..name.len()].copy_from_slice(name);
        f(buf.as_ptr().cast())
    } else {
        let name = cstring(name)?;
        f(name.as_ptr())
    }
}

fn owned(fd: libc::c_int) -> OwnedFd {
    // SAFETY: callers pass a descriptor the kernel has just returned to us and
    // that nothing else owns.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

// ---------------------------------------------------------------- files

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

// ---------------------------------------------------------------- sockets

/// `sendfile(2)` of up to `count` bytes from `file` at `*offset` to `sock`.
pub fn sendfile(
    sock: BorrowedFd,
    file: BorrowedFd,
    offset: &mut i64,
    count: usize,
) -> io::Result<usize> {
    let mut off = *offset as libc::off_t;
    // SAFETY: off is a valid in/out pointer for the call.
    let n =
        retry(|| unsafe { libc::sendfile(sock.as_raw_fd(), file.as_raw_fd(), &mut off, count) })?;
    *offset = off as i64;
    Ok(n as usize)
}

/// Waits until one of `fds` is readable (or writable, per `events`). Returns the
/// `revents` of each, or all zero on timeout. `None` waits forever.
pub fn poll(fds: &[(BorrowedFd, i16)], timeout: Option<Duration>) -> io::Result<Vec<i16>> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|(fd, events)| libc::pollfd {
            fd: fd.as_raw_fd(),
            events: *events,
            revents: 0,
        })
        .collect();
    let ms = match timeout {
        None => -1,
        Some(t) => t.as_millis().min(i32::MAX as u128) as libc::c_int,
    };
    // SAFETY: pfds is a valid array of pfds.len() entries.
    retry(|| unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, ms) })?;
    Ok(pfds.iter().map(|p| p.revents).collect())
}

pub const POLLIN: i16 = libc::POLLIN;
pub const POLLOUT: i16 = libc::POLLOUT;

fn setsockopt_int(fd: RawFd, level: i32, name: i32, value: i32) -> io::Result<()> {
    // SAFETY: value lives for the call and its size is passed.
    check(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const i32).cast(),
            std::mem::size_of::<i32>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

fn getsockopt_int(fd: RawFd, level: i32, name: i32) -> io::Result<i32> {
    let mut value: i32 = 0;
    let mut len = std::mem::size_of::<i32>() as libc::socklen_t;
    // SAFETY: value and len are valid out-pointers.
    check(unsafe { libc::getsockopt(fd, level, name, (&mut value as *mut i32).cast(), &mut len) })?;
    Ok(value)
}

/// Urgent data (the `MSG_OOB` byte Python's ftplib sends with `ABOR`) stays in
/// the ordinary stream instead of vanishing from it.
pub fn set_oob_inline(sock: &TcpStream) -> io::Result<()> {
    setsockopt_int(sock.as_raw_fd(), libc::SOL_SOCKET, libc::SO_OOBINLINE, 1)
}

/// Whether `fd` is a listening socket (`SO_ACCEPTCONN`).
pub fn is_listening_socket(fd: BorrowedFd) -> io::Result<bool> {
    Ok(getsockopt_int(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_ACCEPTCONN)? != 0)
}

/// Whether `fd` is a socket of any kind.
pub fn is_socket(fd: BorrowedFd) -> bool {
    fstat(fd)
        .map(|st| st.mode & libc::S_IFMT == libc::S_IFSOCK)
        .unwrap_or(false)
}

/// Creates a TCP socket bound to `local` (with `SO_REUSEADDR`) and connects it to
/// `peer` within `timeout`: active-mode data connections from port 20.
pub fn connect_from(
    local: std::net::SocketAddr,
    peer: std::net::SocketAddr,
    timeout: Duration,
) -> io::Result<TcpStream> {
    let stream = start_connect(Some(local), peer)?;
    if poll(&[(stream_fd(&stream), POLLOUT)], Some(timeout))?[0] == 0 {
        return Err(io::Error::from(io::ErrorKind::TimedOut));
    }
    finish_connect(&stream)?;
    Ok(stream)
}

/// Starts a non-blocking connect to `peer`, from `local` when given (bound
/// with `SO_REUSEADDR`: port 20). Wait for the socket to be writable, then
/// call `finish_connect`.
pub fn start_connect(
    local: Option<std::net::SocketAddr>,
    peer: std::net::SocketAddr,
) -> io::Result<TcpStream> {
    let domain = if peer.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: plain integer arguments.
    let fd = owned(check(unsafe {
        libc::socket(
            domain,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        )
    })?);
    if let Some(local) = local {
        setsockopt_int(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
        let (addr, len) = sockaddr(&local);
        // SAFETY: addr is a valid sockaddr of len bytes.
        check(unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_storage).cast(),
                len,
            )
        })?;
    }
    let (addr, len) = sockaddr(&peer);
    // SAFETY: addr is a valid sockaddr of len bytes.
    let ret = unsafe {
        libc::connect(
            fd.as_raw_fd(),
            (&addr as *const libc::sockaddr_storage).cast(),
            len,
        )
    };
    if ret == -1 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EINPROGRESS) {
            return Err(err);
        }
    }
    Ok(TcpStream::from(fd))
}

/// Ends a connect that `start_connect` began, once its socket polled
/// writable: its error if it failed, else the stream made blocking again.
pub fn finish_connect(stream: &TcpStream) -> io::Result<()> {
    let so_error = getsockopt_int(stream.as_raw_fd(), libc::SOL_SOCKET, libc::SO_ERROR)?;
    if so_error != 0 {
        return Err(io::Error::from_raw_os_error(so_error));
    }
    stream.set_nonblocking(false)
}

fn stream_fd(stream: &TcpStream) -> BorrowedFd<'_> {
    use std::os::fd::AsFd;
    stream.as_fd()
}

fn sockaddr(addr: &std::net::SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        std::net::SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        std::net::SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// Takes over an inherited socket descriptor (inetd's fd 0, systemd's fd 3...).
pub fn inherited_fd(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: fcntl on an arbitrary integer only inspects it.
    check(unsafe { libc::fcntl(fd, libc::F_GETFD) })?;
    // SAFETY: checked open above; the caller hands over ownership of an inherited fd.
    check(unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) })?;
    Ok(owned(fd))
}

/// Closes every descriptor above 2 except those in `keep`, so that nothing a
/// parent leaked (a file under /etc, a socket, a pipe) follows the process
/// into the chroot. Call at start, before the process opens anything else:
/// what it closes must not be owned by any object.
pub fn close_inherited_fds(keep: &[RawFd]) -> io::Result<()> {
    let mut keep: Vec<u32> = keep
        .iter()
        .filter_map(|&fd| u32::try_from(fd).ok())
        .filter(|&fd| fd > 2)
        .collect();
    keep.sort_unstable();
    keep.dedup();
    // The gaps between the kept descriptors: [3, k0), (k0, k1), ..., (kn, MAX].
    let mut gaps = Vec::new();
    let mut from = 3u32;
    for &fd in &keep {
        if fd > from {
            gaps.push((from, fd - 1));
        }
        from = fd + 1;
    }
    gaps.push((from, u32::MAX));
    match gaps.iter().try_for_each(|&(lo, hi)| close_range(lo, hi)) {
        Ok(()) => Ok(()),
        // Before Linux 5.9 (or under a seccomp filter that refuses it).
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSYS | libc::EPERM)) => {
            close_one_by_one(&keep)
        }
        Err(e) => Err(e),
    }
}

fn close_range(lo: u32, hi: u32) -> io::Result<()> {
    // SAFETY: close_range(2) takes plain integers; see close_inherited_fds for
    // why nothing owns the descriptors it closes.
    check(unsafe { libc::syscall(libc::SYS_close_range, lo, hi, 0u32) })?;
    Ok(())
}

/// The fallback: the open descriptors listed in /proc/self/fd, else every
/// number up to the soft descriptor limit.
fn close_one_by_one(keep: &[u32]) -> io::Result<()> {
    let open: Vec<u32> = match std::fs::read_dir("/proc/self/fd") {
        // Collected before closing, so the directory's own descriptor is gone.
        Ok(dir) => dir
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect(),
        Err(_) => {
            let mut limit = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: limit is a valid rlimit to fill.
            check(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) })?;
            let top = u32::try_from(limit.rlim_cur).unwrap_or(65536).min(1 << 20);
            (3..top).collect()
        }
    };
    for fd in open.into_iter().filter(|fd| *fd > 2 && !keep.contains(fd)) {
        // SAFETY: as for close_range; EBADF for a number not open is harmless.
        unsafe { libc::close(fd as libc::c_int) };
    }
    Ok(())
}

/// Borrows a raw descriptor for a call; the caller guarantees it stays open.
pub fn borrow_stdio(fd: RawFd) -> BorrowedFd<'static> {
    debug_assert!((0..=2).contains(&fd));
    // SAFETY: stdin/stdout/stderr stay open for the life of the process.
    unsafe { BorrowedFd::borrow_raw(fd) }
}

// ---------------------------------------------------------------- identity

pub fn geteuid() -> u32 {
    // SAFETY: cannot fail.
    unsafe { libc::geteuid() }
}

pub fn getpid() -> i32 {
    // SAFETY: cannot fail.
    unsafe { libc::getpid() }
}

pub fn chroot(dir: &OsStr) -> io::Result<()> {
    let dir = cstring(dir.as_bytes())?;
    // SAFETY: dir is NUL-terminated.
    check(unsafe { libc::chroot(dir.as_ptr()) })?;
    Ok(())
}

/// Drops supplementary groups, then sets gid and uid (in that order: after
/// setuid we could no longer change groups).
pub fn drop_identity(uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: a zero-length list needs no pointer.
    check(unsafe { libc::setgroups(0, std::ptr::null()) })?;
    // SAFETY: plain integer arguments.
    check(unsafe { libc::setresgid(gid, gid, gid) })?;
    // SAFETY: plain integer arguments.
    check(unsafe { libc::setresuid(uid, uid, uid) })?;
    Ok(())
}

/// True when the process can become root again (which must never be the case
/// after `drop_identity`).
pub fn can_regain_root() -> bool {
    // SAFETY: plain integer argument; success would be the bug we look for.
    unsafe { libc::setuid(0) == 0 }
}

/// Keeps permitted capabilities across the coming setuid (`PR_SET_KEEPCAPS`).
pub fn keep_caps_across_setuid() -> io::Result<()> {
    // SAFETY: plain integer arguments.
    check(unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) })?;
    Ok(())
}

const CAP_NET_BIND_SERVICE: u32 = 10;
const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Reduces the process (all threads that exist now: call before starting any) to
/// exactly `CAP_NET_BIND_SERVICE`, effective and permitted.
pub fn keep_only_net_bind_service() -> io::Result<()> {
    let header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    data[0].effective = 1 << CAP_NET_BIND_SERVICE;
    data[0].permitted = 1 << CAP_NET_BIND_SERVICE;
    // SAFETY: header and data are valid for the layout capset(2) documents.
    check(unsafe { libc::syscall(libc::SYS_capset, &header as *const CapHeader, data.as_ptr()) })?;
    Ok(())
}

// ---------------------------------------------------------------- passwords

#[cfg_attr(target_env = "gnu", link(name = "crypt"))]
extern "C" {
    fn crypt_r(
        key: *const libc::c_char,
        setting: *const libc::c_char,
        data: *mut libc::c_void,
    ) -> *mut libc::c_char;
}

/// Bytes of `struct crypt_data`: libxcrypt (the libcrypt of glibc systems)
/// fixes it at exactly 32768; musl's is 260 bytes, so this covers both.
const CRYPT_DATA_SIZE: usize = 32768;

/// `crypt(3)` of `password` with the settings (algorithm and salt) of `setting`.
/// `None` when the C library does not know the algorithm.
///
/// Uses `crypt_r` with a buffer of its own per call, so logins hash in parallel:
/// a global lock around `crypt` let one slow hash (bcrypt, chosen by whoever
/// guesses at that account) stall every other login.
pub fn crypt_hash(password: &[u8], setting: &[u8]) -> Option<Vec<u8>> {
    let key = CString::new(password).ok()?;
    let setting = CString::new(setting).ok()?;
    // Zeroed as both libraries ask before first use; on the heap because 32 KiB
    // is much for a worker's stack. u64 words give it any alignment it needs.
    let mut data = vec![0u64; CRYPT_DATA_SIZE / 8];
    // SAFETY: both strings are NUL-terminated; `data` is a zeroed area at least
    // as large as `struct crypt_data` and lives until the result is copied out
    // (the result points into it).
    let out = unsafe {
        crypt_r(
            key.as_ptr(),
            setting.as_ptr(),
            data.as_mut_ptr().cast::<libc::c_void>(),
        )
    };
    if out.is_null() {
        return None;
    }
    // SAFETY: a non-NULL result is a NUL-terminated string inside `data`.
    let out = unsafe { CStr::from_ptr(out) }.to_bytes().to_vec();
    // The buffer held the password; clear it before it goes back to the allocator.
    data.iter_mut().for_each(|w| *w = 0);
    std::hint::black_box(&data);
    // glibc and musl signal failure with a string starting with '*'.
    if out.is_empty() || out[0] == b'*' {
        None
    } else {
        Some(out)
    }
}

/// Turns terminal echo off (when `fd` is a terminal) and returns the previous
/// settings for `restore_echo`.
pub fn disable_echo(fd: BorrowedFd) -> Option<libc::termios> {
    // SAFETY: all-zero termios is valid storage for tcgetattr to fill.
    let mut term: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: term is a valid out-pointer.
    if unsafe { libc::tcgetattr(fd.as_raw_fd(), &mut term) } != 0 {
        return None;
    }
    let saved = term;
    term.c_lflag &= !libc::ECHO;
    // SAFETY: term is a valid termios.
    unsafe { libc::tcsetattr(fd.as_raw_fd(), libc::TCSANOW, &term) };
    Some(saved)
}

pub fn restore_echo(fd: BorrowedFd, saved: &libc::termios) {
    // SAFETY: saved came from tcgetattr.
    unsafe { libc::tcsetattr(fd.as_raw_fd(), libc::TCSANOW, saved) };
}

// ---------------------------------------------------------------- signals

use std::sync::atomic::{AtomicBool, Ordering};

static TERMINATE: AtomicBool = AtomicBool::new(false);
static RELOAD: AtomicBool = AtomicBool::new(false);

extern "C" fn on_terminate(_: libc::c_int) {
    TERMINATE.store(true, Ordering::SeqCst);
}

extern "C" fn on_reload(_: libc::c_int) {
    RELOAD.store(true, Ordering::SeqCst);
}

fn set_handler(signal: libc::c_int, handler: extern "C" fn(libc::c_int)) -> io::Result<()> {
    // SAFETY: all-zero sigaction is valid; we set the handler and leave the mask empty.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = handler as usize;
    // SA_RESTART: no worker's blocking call fails with EINTR; the main thread
    // polls the flags instead of relying on an interrupted call.
    action.sa_flags = libc::SA_RESTART;
    // SAFETY: action is fully initialised; the handler only stores to an atomic.
    check(unsafe { libc::sigaction(signal, &action, std::ptr::null_mut()) })?;
    Ok(())
}

/// Installs handlers that only set flags: SIGTERM/SIGINT ask to stop, SIGHUP to
/// reload. SIGPIPE is ignored so a vanished peer is an error, not a death.
pub fn install_signal_handlers() -> io::Result<()> {
    set_handler(libc::SIGTERM, on_terminate)?;
    set_handler(libc::SIGINT, on_terminate)?;
    set_handler(libc::SIGHUP, on_reload)?;
    // SAFETY: SIG_IGN is a valid disposition.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    Ok(())
}

pub fn termination_requested() -> bool {
    TERMINATE.load(Ordering::SeqCst)
}

/// True once per SIGHUP received.
pub fn take_reload_request() -> bool {
    RELOAD.swap(false, Ordering::SeqCst)
}

// ---------------------------------------------------------------- hardening (issue 9)

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

/// Raises the soft `RLIMIT_NOFILE` to the hard limit, so that many sessions
/// (each with a control socket, a data socket, a file and a directory fd) fit
/// in the descriptor table; the new soft limit.
pub fn raise_nofile_limit() -> io::Result<u64> {
    // SAFETY: all-zero is a valid rlimit; the kernel fills it in.
    let mut limit: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: limit is a valid out-pointer.
    check(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) })?;
    if limit.rlim_cur < limit.rlim_max {
        limit.rlim_cur = limit.rlim_max;
        // SAFETY: limit is a valid, initialised rlimit.
        check(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) })?;
    }
    Ok(limit.rlim_cur as u64)
}

/// glibc's malloc, left to itself, gives each busy thread an arena of its own
/// (sized by reading /sys and /proc, which a chrooted process cannot), raises
/// its mmap threshold after the first large free so transfer buffers land in
/// those arenas, and keeps what they held after a busy minute. One arena, a
/// fixed mmap threshold below the transfer buffers (they are mmapped and
/// unmapped whole) and a low trim threshold give the memory back. Called
/// before any thread starts; musl's allocator returns memory by itself.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn tune_malloc() {
    // SAFETY: mallopt only sets allocator parameters; no thread runs yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 64 * 1024);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 128 * 1024);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn tune_malloc() {}

/// The lowest address of the calling thread's stack, for
/// `release_stack_below`.
pub fn stack_low_end() -> io::Result<usize> {
    // SAFETY: all-zero is a valid pthread_attr_t to be filled in.
    let mut attr: libc::pthread_attr_t = unsafe { std::mem::zeroed() };
    // SAFETY: attr is a valid out-pointer; the thread is the calling one.
    let ret = unsafe { libc::pthread_getattr_np(libc::pthread_self(), &mut attr) };
    if ret != 0 {
        return Err(io::Error::from_raw_os_error(ret));
    }
    let mut addr: *mut libc::c_void = std::ptr::null_mut();
    let mut size: libc::size_t = 0;
    // SAFETY: attr was initialised above; addr and size are valid out-pointers.
    let ret = unsafe { libc::pthread_attr_getstack(&attr, &mut addr, &mut size) };
    // SAFETY: attr was initialised by pthread_getattr_np and is not used again.
    unsafe { libc::pthread_attr_destroy(&mut attr) };
    if ret != 0 {
        return Err(io::Error::from_raw_os_error(ret));
    }
    Ok(addr as usize)
}

/// Stack kept below the caller's frame for the frames of this call (sysconf,
/// madvise). Nothing below the stack pointer is live: the kernel writes no
/// user stack during a system call, and a signal frame pushed afterwards
/// lands on zero pages like any new frame.
const STACK_MARGIN: usize = 4 * 1024;

/// Gives back to the kernel the calling thread's stack pages from `low` up to
/// a margin below the caller's frame: pages that a finished session touched
/// in deep calls and that a waiting worker does not need. They come back as
/// zero pages when touched again.
pub fn release_stack_below(low: usize) {
    let here = 0u8;
    let frame = std::hint::black_box(&here) as *const u8 as usize;
    // SAFETY: sysconf has no preconditions.
    let page = match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        n if n > 0 => n as usize,
        _ => return,
    };
    let start = low.div_ceil(page) * page;
    let end = frame.saturating_sub(STACK_MARGIN) / page * page;
    if end > start {
        // SAFETY: [start, end) lies in this thread's own stack, below every
        // live frame by STACK_MARGIN: nothing there is in use, and
        // MADV_DONTNEED on anonymous memory only makes it read as zeros.
        unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
    }
}

// ---------------------------------------------------------------------------
// Durable directory entries (fsync_uploads): a new name is on disk only once
// the directory holding it is synced.
// ---------------------------------------------------------------------------

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
