//! Pipes and splice(2), for uploads that move from the data socket into the
//! file without a copy through user space. A client controls how much it
//! sends and when (each call moves at most the length the caller passes, and
//! the socket is non-blocking); the pipe is the server's own and lives for one
//! transfer.

use super::{check, owned, retry};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

/// A new pipe, close-on-exec: (read end, write end).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: fds is a valid array of two ints for the kernel to fill.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    Ok((owned(fds[0]), owned(fds[1])))
}

/// Asks for a pipe of `size` bytes (`F_SETPIPE_SZ`); returns the size the
/// kernel granted, which may be larger (rounded to pages). Fails with `EPERM`
/// above `/proc/sys/fs/pipe-max-size` or the user's pipe allowance.
pub fn set_pipe_size(pipe: BorrowedFd, size: usize) -> io::Result<usize> {
    let size = size.min(libc::c_int::MAX as usize) as libc::c_int;
    // SAFETY: F_SETPIPE_SZ takes an int argument and touches no memory of ours.
    let granted = check(unsafe { libc::fcntl(pipe.as_raw_fd(), libc::F_SETPIPE_SZ, size) })?;
    Ok(granted as usize)
}

/// `splice(2)` of up to `len` bytes from `from` to `to`, each at its own file
/// position (one of them must be a pipe). `nonblocking` adds
/// `SPLICE_F_NONBLOCK`: with a non-blocking socket on the other side, no data
/// is `WouldBlock` instead of a wait. 0 is the end of the input.
pub fn splice(
    from: BorrowedFd,
    to: BorrowedFd,
    len: usize,
    nonblocking: bool,
) -> io::Result<usize> {
    let mut flags = libc::SPLICE_F_MOVE;
    if nonblocking {
        flags |= libc::SPLICE_F_NONBLOCK;
    }
    let null = std::ptr::null_mut();
    // SAFETY: both descriptors are open for the call; null offsets make the
    // kernel use (and advance) the files' own positions.
    let n = retry(|| unsafe {
        libc::splice(from.as_raw_fd(), null, to.as_raw_fd(), null, len, flags)
    })?;
    Ok(n as usize)
}
