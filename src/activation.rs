//! Socket handover: inetd's connected socket on fd 0, and systemd's
//! `LISTEN_FDS`/`LISTEN_PID` sockets (listening with Accept=no, connected with
//! Accept=yes), detected without libsystemd.

use crate::sys;
use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsFd, OwnedFd};

/// First descriptor systemd passes (SD_LISTEN_FDS_START).
const LISTEN_FDS_START: i32 = 3;

/// The FileDescriptorName of a systemd socket whose connections are
/// implicit FTPS (the socket order would break when a unit changes).
pub const IMPLICIT_NAME: &str = "ftps";

/// Sockets handed to us by whoever started the process.
pub enum Inherited {
    /// Listening sockets: serve them as a standalone server would; true
    /// marks one systemd names `ftps` (FileDescriptorName=ftps): implicit FTPS.
    Listeners(Vec<(TcpListener, bool)>),
    /// One connected socket: serve exactly one session on it.
    Connection(TcpStream),
}

/// The client connection inetd passes as standard input.
pub fn inetd_connection() -> io::Result<TcpStream> {
    let fd = sys::inherited_fd(0)?;
    if !sys::is_socket(fd.as_fd()) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "--inetd needs a socket on standard input",
        ));
    }
    Ok(TcpStream::from(fd))
}

/// Removes systemd's socket variables so that nothing started later sees
/// them. Call before any thread starts.
pub fn clear_systemd_env() {
    std::env::remove_var("LISTEN_PID");
    std::env::remove_var("LISTEN_FDS");
    std::env::remove_var("LISTEN_FDNAMES");
}

/// Reads and clears `LISTEN_PID`/`LISTEN_FDS`. Call before any thread starts.
pub fn systemd_sockets() -> io::Result<Option<Inherited>> {
    let pid = std::env::var("LISTEN_PID").ok();
    let fds = std::env::var("LISTEN_FDS").ok();
    let names = std::env::var("LISTEN_FDNAMES").unwrap_or_default();
    clear_systemd_env();
    let (Some(pid), Some(fds)) = (pid, fds) else {
        return Ok(None);
    };
    if pid.trim().parse::<i32>().ok() != Some(sys::getpid()) {
        return Ok(None);
    }
    let count: i32 = fds
        .trim()
        .parse()
        .ok()
        .filter(|n| (1..=64).contains(n))
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("LISTEN_FDS={fds:?} is not a count of sockets"),
            )
        })?;
    let mut listeners = Vec::new();
    let mut connections = Vec::new();
    let mut names = names.split(':');
    for fd in LISTEN_FDS_START..LISTEN_FDS_START + count {
        let implicit = names.next() == Some(IMPLICIT_NAME);
        let owned: OwnedFd = sys::inherited_fd(fd).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("LISTEN_FDS={count}: inherited fd {fd} is not open: {e}"),
            )
        })?;
        if !sys::is_socket(owned.as_fd()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("inherited fd {fd} is not a socket"),
            ));
        }
        if sys::is_listening_socket(owned.as_fd())? {
            listeners.push((TcpListener::from(owned), implicit));
        } else {
            connections.push(TcpStream::from(owned));
        }
    }
    match (listeners.is_empty(), connections.len()) {
        (false, 0) => Ok(Some(Inherited::Listeners(listeners))),
        (true, 1) => Ok(Some(Inherited::Connection(connections.remove(0)))),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "inherited sockets mix listening and connected ones",
        )),
    }
}
