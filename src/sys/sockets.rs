//! Sockets: sendfile, poll, socket options, non-blocking connects from a
//! chosen local address, and the descriptors inherited from inetd or systemd.
//! A client controls the addresses and ports it names (checked by data.rs
//! before any connect) and how fast it reads (bounded by the poll timeouts).

use super::files::fstat;
use super::{check, owned, retry};
use std::io;
use std::net::TcpStream;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Duration;

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

/// Makes closing `sock` send a reset instead of a FIN (`SO_LINGER` on with
/// a zero timeout): a client that vanishes mid-transfer, for the soak test.
pub fn reset_on_close(sock: &TcpStream) -> io::Result<()> {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: linger is a valid, initialised struct of the size passed.
    check(unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &linger as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    })?;
    Ok(())
}
