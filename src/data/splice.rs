//! Binary uploads over plain TCP with splice(2): socket -> pipe -> file, no
//! copy through user space. The client chooses how much it sends and when;
//! each splice moves at most a pipe's worth (less under a rate limit), the
//! socket is non-blocking so `Watch` still hears ABOR, a hang-up and a stall,
//! and the pipe lives for one transfer only.

use super::{would_block, Failure, Watch};
use crate::sys;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsFd, OwnedFd};

/// The pipe asked for (`F_SETPIPE_SZ`), and the most one splice moves: the
/// default unprivileged maximum (/proc/sys/fs/pipe-max-size), so that one
/// splice can take what a loopback receive buffer of several MiB holds, as
/// the 1 MiB sendfile slices do the other way. Its pages are the socket's
/// own, lent to the pipe until they are in the file, so it costs no more
/// memory than the socket buffer already holds.
const PIPE_SIZE: usize = 1 << 20;

/// How a spliced upload ended.
pub enum Spliced {
    /// The client closed the data connection: this many bytes arrived.
    Done(u64),
    /// The kernel or the file system refused splice after this many bytes,
    /// all of them in the file: the rest must be copied.
    Refused(u64),
}

/// Moves what the client sends into `out` (at its position) until the client
/// closes the data connection, or until splice is refused.
pub fn receive(tcp: &TcpStream, out: &File, watch: &mut Watch) -> Result<Spliced, (Failure, u64)> {
    let pipe = match Pipe::new() {
        Ok(pipe) => pipe,
        Err(e) => {
            log::debug!("no pipe for a spliced upload ({e}): copying instead");
            return Ok(Spliced::Refused(0));
        }
    };
    let slice = watch.throttle.slice(PIPE_SIZE);
    let mut moved = 0u64;
    loop {
        let n = match sys::splice(tcp.as_fd(), pipe.input.as_fd(), slice, true) {
            Ok(0) => return Ok(Spliced::Done(moved)),
            Ok(n) => n,
            Err(e) if would_block(&e) => {
                watch.wait(tcp.as_fd(), sys::POLLIN, moved)?;
                continue;
            }
            Err(e) if refused(&e) => {
                log_refusal("the data socket", &e);
                return Ok(Spliced::Refused(moved));
            }
            Err(e) => return Err((Failure::Network(e), moved)),
        };
        let emptied = pipe.empty_into(out, n);
        let spliced = emptied.map_err(|e| (Failure::File(e), moved))?;
        moved += n as u64;
        if !spliced {
            return Ok(Spliced::Refused(moved));
        }
        watch.progress(n, moved)?;
    }
}

/// EINVAL: this file system (or socket) has no splice; ENOSYS: a kernel or
/// seccomp filter without the call; EOPNOTSUPP: some file systems say so.
fn refused(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP)
    )
}

/// Once per transfer: after a refusal the rest of the upload is copied.
fn log_refusal(side: &str, e: &io::Error) {
    log::debug!("splice from {side} refused ({e}): copying the rest of this upload");
}

/// One transfer's pipe; closing it gives its pages back.
struct Pipe {
    output: File,
    input: OwnedFd,
}

impl Pipe {
    fn new() -> io::Result<Pipe> {
        let (output, input) = sys::pipe()?;
        // Over the user's pipe allowance (many uploads at once) the kernel
        // refuses; the smaller pipe still works, with more splices.
        if let Err(e) = sys::set_pipe_size(input.as_fd(), PIPE_SIZE) {
            log::debug!("pipe of {PIPE_SIZE} bytes refused ({e}): splicing through a smaller one");
        }
        Ok(Pipe {
            output: File::from(output),
            input,
        })
    }

    /// Moves the `len` bytes the pipe holds into `out`. False when the file
    /// refused splice: the bytes were then copied, and the pipe is empty either way.
    fn empty_into(&self, out: &File, mut len: usize) -> io::Result<bool> {
        while len > 0 {
            match sys::splice(self.output.as_fd(), out.as_fd(), len, false) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => len -= n,
                Err(e) if refused(&e) => {
                    log_refusal("the pipe into the file", &e);
                    self.copy_into(out, len)?;
                    return Ok(false);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Reads the `len` bytes left in the pipe and writes them to `out`.
    fn copy_into(&self, mut out: &File, len: usize) -> io::Result<()> {
        let mut buf = vec![0u8; len];
        (&self.output).read_exact(&mut buf)?;
        out.write_all(&buf)
    }
}
