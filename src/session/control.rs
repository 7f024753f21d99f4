//! The control connection: reading lines, spotting ABOR during a transfer, writing replies.
//! The client controls every byte: a line is bounded by `MAX_LINE` and must arrive whole
//! within the idle (before login: login) deadline; a flood during a transfer ends the session.

use crate::command::{self, Command};
use crate::data;
use crate::reply;
use crate::sys;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Longest control line we take. A longer line that ends within
/// `OVERFLOW` bytes gets `500` and is skipped; once `OVERFLOW` bytes have come
/// without an end of line, `500` and the connection is closed (the stream
/// cannot be resynchronised, and the client is not speaking FTP).
pub const MAX_LINE: usize = 4096;
const OVERFLOW: usize = 2 * MAX_LINE;

/// The control connection's bytes: plain TCP or TLS (after AUTH TLS, or on an
/// implicit listener), so the reader and the handlers are written once (Read,
/// Write and AsFd come from `data::stream_io`, shared with `DataStream`).
pub(super) enum ControlStream {
    Plain(TcpStream),
    #[cfg(feature = "tls")]
    Tls(Box<crate::tls::TlsStream>),
}

impl ControlStream {
    /// Decrypted bytes rustls holds that a poll of the socket cannot show.
    fn has_plaintext(&mut self) -> bool {
        match self {
            ControlStream::Plain(_) => false,
            #[cfg(feature = "tls")]
            ControlStream::Tls(tls) => tls.has_plaintext(),
        }
    }
}

data::stream_io!(ControlStream);

/// Reads CRLF (or LF) terminated lines from the control connection, strips
/// Telnet IAC sequences, and bounds each line at `MAX_LINE` bytes.
pub(super) struct Control {
    pub(super) stream: ControlStream,
    buf: Vec<u8>,
}

/// One thing read from the control connection.
pub(super) enum Input {
    Line(Vec<u8>),
    /// A whole line longer than `MAX_LINE`.
    TooLong,
    /// `OVERFLOW` bytes and no end of line in sight.
    Overflow,
    Closed,
    TimedOut,
    ShuttingDown,
    /// Closed to make room for a new client (see `waiting.rs`).
    Evicted,
}

/// How often an idle session looks at the shutdown flag.
pub(super) const SHUTDOWN_CHECK: Duration = Duration::from_secs(1);

impl Control {
    pub(super) fn new(stream: ControlStream) -> Control {
        Control {
            stream,
            buf: Vec::new(),
        }
    }

    /// Takes one complete line out of the buffer, if there is one. The buffer
    /// never holds more than `OVERFLOW` bytes plus one read without a newline.
    fn take_line(&mut self) -> Option<Input> {
        let Some(end) = self.buf.iter().position(|&b| b == b'\n') else {
            return (self.buf.len() > OVERFLOW).then_some(Input::Overflow);
        };
        let raw: Vec<u8> = self.buf.drain(..=end).collect();
        if raw.len() > MAX_LINE + 2 {
            return Some(Input::TooLong);
        }
        Some(Input::Line(command::clean_line(&raw)))
    }

    /// Blocks (up to the read timeout) for the next line.
    /// A whole line must arrive within `idle`: a client trickling one byte a
    /// minute (slowloris) times out like a silent one. Reads time out every
    /// `SHUTDOWN_CHECK` (set once per session) to notice a shutdown; when a
    /// command is waiting, reading it is one system call.
    /// `evict` is set when the session must make room for a new client.
    pub(super) fn read_line(
        &mut self,
        idle: Duration,
        shutdown: &AtomicBool,
        evict: &AtomicBool,
    ) -> io::Result<Input> {
        let deadline = Instant::now() + idle;
        loop {
            if let Some(input) = self.take_line() {
                return Ok(input);
            }
            if shutdown.load(Ordering::Relaxed) {
                return Ok(Input::ShuttingDown);
            }
            if evict.load(Ordering::Relaxed) {
                return Ok(Input::Evicted);
            }
            if Instant::now() >= deadline {
                return Ok(Input::TimedOut);
            }
            match self.fill() {
                Ok(0) => return Ok(Input::Closed),
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// AUTH TLS: the plain stream, to run the handshake on. Whatever the
    /// client sent after AUTH in clear text is dropped, so that no command
    /// injected before the handshake runs as if it came over TLS.
    #[cfg(feature = "tls")]
    pub(super) fn plain_for_upgrade(&mut self) -> io::Result<TcpStream> {
        self.buf.clear();
        match &self.stream {
            ControlStream::Plain(tcp) => tcp.try_clone(),
            ControlStream::Tls(_) => Err(io::Error::other("already TLS")),
        }
    }

    /// Reads once more from the socket into the buffer.
    fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 1024];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// During a transfer: has the client sent ABOR? Other commands stay queued
    /// for after the transfer. A closed control connection is an error.
    fn abort_requested(&mut self) -> io::Result<bool> {
        if !self.stream.has_plaintext() {
            let ready = sys::poll(&[(self.stream.as_fd(), sys::POLLIN)], Some(Duration::ZERO))?;
            if ready[0] == 0 {
                return Ok(false);
            }
        }
        self.fill_available()?;
        let mut start = 0;
        while let Some(len) = self.buf[start..].iter().position(|&b| b == b'\n') {
            let end = start + len + 1;
            let line = command::clean_line(&self.buf[start..end]);
            if command::parse(&line) == Command::Abor {
                self.buf.drain(start..end);
                return Ok(true);
            }
            start = end;
        }
        if self.buf.len() > MAX_LINE * 4 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "control flood during transfer",
            ));
        }
        Ok(false)
    }

    /// Reads what the socket has, and under TLS every record rustls has
    /// decrypted, so nothing waits unseen once this returns. A TLS record
    /// that has only partly arrived is no error: the rest comes later.
    fn fill_available(&mut self) -> io::Result<()> {
        loop {
            match self.fill() {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        "control connection closed",
                    ))
                }
                Ok(_) if self.buf.len() <= MAX_LINE * 4 && self.stream.has_plaintext() => {}
                Ok(_) => return Ok(()),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(())
                }
                Err(e) => return Err(e),
            }
        }
    }

    pub(super) fn send(&mut self, code: u16, text: &str) -> io::Result<()> {
        self.stream.write_all(&reply::format(code, text))
    }

    /// `send` for a session not logged in: a client that stops reading its
    /// replies cannot keep the worker once its place is taken. Waits for room
    /// in the socket in polls of `SHUTDOWN_CHECK`, watching `evict`, for up to
    /// `stall`; a reply then fits without blocking.
    pub(super) fn send_watching(
        &mut self,
        code: u16,
        text: &str,
        evict: &AtomicBool,
        stall: Duration,
    ) -> io::Result<()> {
        let deadline = Instant::now() + stall;
        loop {
            // Evicted: its 421 still goes out if there is room, but no waiting.
            let evicted = evict.load(Ordering::SeqCst);
            let wait = if evicted {
                Duration::ZERO
            } else {
                SHUTDOWN_CHECK
            };
            let room = sys::poll(&[(self.stream.as_fd(), sys::POLLOUT)], Some(wait))?;
            if room[0] != 0 {
                return self.send(code, text);
            }
            if evicted {
                return Err(io::Error::new(
                    io::ErrorKind::Interrupted,
                    "closed to make room for a new client while replies waited to be read",
                ));
            }
            if Instant::now() >= deadline {
                return Err(io::ErrorKind::TimedOut.into());
            }
        }
    }
}

impl data::ControlLink for Control {
    fn fd(&self) -> BorrowedFd<'_> {
        self.stream.as_fd()
    }

    fn abort_requested(&mut self) -> io::Result<bool> {
        Control::abort_requested(self)
    }

    fn buffered(&mut self) -> bool {
        self.stream.has_plaintext()
    }
}
