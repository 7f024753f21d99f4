//! The data channel: its stream type and what the transfer loops (send.rs, receive.rs,
//! splice.rs) wait with; opening it (listeners, connects, the TLS handshake) is in open.rs.
//! The client names active targets (its own address, ports of 1024 up), races for passive ports
//! (other peers are dropped) and sets the pace: rate limit, stall timeout, ABOR polled meanwhile.

mod open;
mod receive;
mod send;
mod splice;

pub use open::*;
pub use receive::receive;
pub use send::{send_ascii, send_binary};

use crate::sys;
use std::io;
use std::net::TcpStream;
use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

/// Binary downloads go out in slices of this size; between slices the control
/// connection is checked for ABOR.
const SENDFILE_SLICE: usize = 1 << 20;
/// Upload and ASCII buffer. Large reads cut syscalls per byte; 256 KiB moved
/// uploads at the speed of the disk in measurements, and the buffer only exists
/// while a transfer runs.
const COPY_BUFFER: usize = 256 * 1024;
/// How many uploaded bytes pass between two checks of the control connection.
const ABORT_CHECK_BYTES: u64 = 4 << 20;

/// Read, Write and AsFd for a stream enum, each call passed on to the
/// transport under the variant. The control and the data stream share it, so
/// a new transport (TLS) adds its arms here once.
macro_rules! stream_io {
    ($stream:ty) => {
        impl std::io::Read for $stream {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                match self {
                    Self::Plain(tcp) => std::io::Read::read(tcp, buf),
                    #[cfg(feature = "tls")]
                    Self::Tls(tls) => std::io::Read::read(&mut **tls, buf),
                }
            }
        }

        impl std::io::Write for $stream {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                match self {
                    Self::Plain(tcp) => std::io::Write::write(tcp, buf),
                    #[cfg(feature = "tls")]
                    Self::Tls(tls) => std::io::Write::write(&mut **tls, buf),
                }
            }

            fn flush(&mut self) -> std::io::Result<()> {
                match self {
                    Self::Plain(tcp) => std::io::Write::flush(tcp),
                    #[cfg(feature = "tls")]
                    Self::Tls(tls) => std::io::Write::flush(&mut **tls),
                }
            }
        }

        /// The descriptor a transfer polls.
        impl std::os::fd::AsFd for $stream {
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                match self {
                    Self::Plain(tcp) => std::os::fd::AsFd::as_fd(tcp),
                    #[cfg(feature = "tls")]
                    Self::Tls(tls) => std::os::fd::AsFd::as_fd(&**tls),
                }
            }
        }
    };
}
pub(crate) use stream_io;

/// An open data connection: plain TCP or (PROT P) TLS, so the transfer loops
/// are written once. Binary downloads pick sendfile(2) for plain TCP, the one
/// variant it serves, in one place, `send_binary`.
pub enum DataStream {
    Plain(TcpStream),
    #[cfg(feature = "tls")]
    Tls(Box<crate::tls::TlsStream>),
}

impl DataStream {
    fn tcp(&self) -> &TcpStream {
        match self {
            DataStream::Plain(tcp) => tcp,
            #[cfg(feature = "tls")]
            DataStream::Tls(tls) => tls.tcp(),
        }
    }

    /// Non-blocking during a transfer: `Watch::wait` polls it with the control
    /// connection, so ABOR is heard and a stall times out.
    fn set_nonblocking(&self) -> io::Result<()> {
        self.tcp().set_nonblocking(true)
    }

    /// Applies the data timeout to both directions (listings write blocking).
    pub fn set_timeouts(&self, timeout: Duration) -> io::Result<()> {
        self.tcp().set_read_timeout(Some(timeout))?;
        self.tcp().set_write_timeout(Some(timeout))
    }
}

stream_io!(DataStream);

/// Keeps a transfer at or below `rate` bytes per second (0: unlimited) by
/// sleeping whenever it runs ahead of schedule.
pub struct Throttle {
    rate: u64,
    start: Instant,
}

impl Throttle {
    pub fn new(rate: u64) -> Throttle {
        Throttle {
            rate,
            start: Instant::now(),
        }
    }

    /// Sleeps until `moved` bytes are due.
    fn pace(&self, moved: u64) {
        if self.rate == 0 {
            return;
        }
        let due = Duration::from_secs_f64(moved as f64 / self.rate as f64);
        if let Some(ahead) = due.checked_sub(self.start.elapsed()) {
            std::thread::sleep(ahead);
        }
    }

    /// The largest amount to move at once: a tenth of a second's worth, so
    /// the pace stays smooth.
    fn slice(&self, max: usize) -> usize {
        if self.rate == 0 {
            max
        } else {
            (self.rate / 10).clamp(1024, max as u64) as usize
        }
    }
}

/// Why a transfer did not finish.
#[derive(Debug)]
pub enum Failure {
    /// The client sent ABOR.
    Aborted,
    /// The data connection broke, stalled past `data_timeout`, or the control
    /// connection went away.
    Network(io::Error),
    /// Reading or writing the local file failed.
    File(io::Error),
}

/// Bytes moved, or why the transfer stopped and how far it got.
pub type Outcome = Result<u64, (Failure, u64)>;

/// The control connection as a transfer sees it: a descriptor to wait on,
/// and whether the client has sent ABOR (or vanished) meanwhile.
pub trait ControlLink {
    fn fd(&self) -> BorrowedFd<'_>;
    fn abort_requested(&mut self) -> io::Result<bool>;
    /// Control input already read from the socket but not yet looked at
    /// (TLS decrypts whole records): polling the socket would not show it.
    fn buffered(&mut self) -> bool {
        false
    }
}

/// What a transfer watches besides its data socket: the control connection
/// (for ABOR), the stall timeout, and the rate limit. The data socket is
/// non-blocking during a transfer, so a client that stops reading or sending
/// can still abort, and a stall is noticed after `timeout`.
pub struct Watch<'a> {
    pub control: &'a mut dyn ControlLink,
    pub timeout: Duration,
    pub throttle: Throttle,
    since_check: u64,
}

impl<'a> Watch<'a> {
    pub fn new(control: &'a mut dyn ControlLink, timeout: Duration, rate: u64) -> Watch<'a> {
        Watch {
            control,
            timeout,
            throttle: Throttle::new(rate),
            since_check: 0,
        }
    }

    fn check_abort(&mut self, moved: u64) -> Result<(), (Failure, u64)> {
        self.since_check = 0;
        match self.control.abort_requested() {
            Ok(false) => Ok(()),
            Ok(true) => Err((Failure::Aborted, moved)),
            Err(e) => Err((Failure::Network(e), moved)),
        }
    }

    /// Counts progress; paces to the rate limit and, every few megabytes,
    /// looks for ABOR even while the data socket never has to wait.
    fn progress(&mut self, n: usize, moved: u64) -> Result<(), (Failure, u64)> {
        self.since_check += n as u64;
        self.throttle.pace(moved);
        if self.since_check >= ABORT_CHECK_BYTES {
            self.check_abort(moved)?;
        }
        Ok(())
    }

    /// Counts `n` bytes read from a file where no data socket waits (HASH):
    /// paced like a download, and the control connection is looked at every
    /// few megabytes, or after every slice when paced, so that ABOR or a
    /// hang-up is noticed within a fraction of a second.
    pub fn step(&mut self, n: usize, moved: u64) -> Result<(), (Failure, u64)> {
        self.since_check += n as u64;
        self.throttle.pace(moved);
        if self.since_check >= ABORT_CHECK_BYTES || self.throttle.rate != 0 {
            self.check_abort(moved)?;
        }
        Ok(())
    }

    /// The most to read at once: a tenth of a second's worth when paced.
    pub fn slice(&self, max: usize) -> usize {
        self.throttle.slice(max)
    }

    /// Waits until `sock` is ready for `events`, handling control input meanwhile.
    fn wait(&mut self, sock: BorrowedFd, events: i16, moved: u64) -> Result<(), (Failure, u64)> {
        let deadline = Instant::now() + self.timeout;
        if self.control.buffered() {
            self.check_abort(moved)?;
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let stalled = io::Error::new(io::ErrorKind::TimedOut, "data connection stalled");
                return Err((Failure::Network(stalled), moved));
            }
            let ready = sys::poll(
                &[(sock, events), (self.control.fd(), sys::POLLIN)],
                Some(left),
            )
            .map_err(|e| (Failure::Network(e), moved))?;
            if ready[1] != 0 {
                self.check_abort(moved)?;
            }
            if ready[0] != 0 {
                return Ok(());
            }
        }
    }
}

fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

fn nonblocking(sock: &DataStream) -> Result<(), (Failure, u64)> {
    sock.set_nonblocking().map_err(|e| (Failure::Network(e), 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_slices_follow_the_rate() {
        assert_eq!(Throttle::new(0).slice(1 << 20), 1 << 20);
        assert_eq!(Throttle::new(100_000).slice(1 << 20), 10_000);
        assert_eq!(Throttle::new(10).slice(1 << 20), 1024);
    }
}
