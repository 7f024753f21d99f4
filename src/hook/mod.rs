//! The upload hook, server side: `upload_hook` runs a program for every upload
//! answered with 226. The chrooted server cannot exec outside its root, so a
//! runner process is forked at start-up, before the chroot, the privilege
//! drop, the pool and any sandbox (runner.rs); the server sends it one record
//! per upload over a pipe.
//!
//! A client controls the path bytes (any but NUL; a user name too, for an
//! anonymous login its choice of `anonymous` or `ftp`): they are copied, never
//! interpreted. A record is at most `PIPE_BUF` bytes, so that a write from any
//! worker is atomic; a longer one is dropped and logged. The pipe is the
//! queue: the server's end is non-blocking, so a full pipe (a slow hook)
//! drops the event with a log line and never holds a session.

mod runner;

use crate::config::Config;
use crate::log::Quoted;
use crate::sys;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, RawFd};
use std::time::Duration;

/// Bytes a record may take, its length prefix included: a pipe write of at
/// most `PIPE_BUF` bytes is atomic, so workers need no lock to share the pipe.
const MAX_RECORD: usize = libc::PIPE_BUF;

/// One upload answered with 226.
pub struct Event<'a> {
    /// The file under the served root, from `/`: the runner prefixes the
    /// root's path on the host.
    pub under_root: &'a [u8],
    pub user: &'a [u8],
    /// The real client address (behind a balancer: from its PROXY header).
    pub peer: std::net::IpAddr,
    /// The path as the client saw it.
    pub vpath: &'a [u8],
    /// The file's size after the upload.
    pub size: u64,
}

/// The server's end of the event pipe.
pub struct Hook {
    pipe: File,
}

impl Hook {
    /// Hands `event` to the runner without waiting: a full queue or a record
    /// too long drops the event, with a log line.
    pub fn notify(&self, event: &Event) {
        let peer = event.peer.to_string();
        let fields = [event.under_root, event.user, peer.as_bytes(), event.vpath];
        // A pipe write of at most PIPE_BUF bytes is all or nothing.
        let why = match encode(&fields, event.size) {
            None => "path too long",
            Some(record) => match (&self.pipe).write(&record) {
                Ok(_) => return,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => "queue full, hooks too slow",
                Err(_) => "the runner is gone",
            },
        };
        ::log::warn!("upload hook not run for {}: {why}", Quoted(event.vpath));
    }
}

/// What the runner needs from the configuration.
struct Settings {
    program: std::path::PathBuf,
    timeout: Duration,
    /// The served root on the host, symlinks resolved.
    root: std::path::PathBuf,
    /// The account to become when started as root.
    run_as: Option<crate::privilege::RunAs>,
}

/// Forks the runner when `upload_hook` is set. Must run while the process has
/// one thread and still runs as it was started: before the chroot, the
/// privilege drop and the pool. `sockets` are closed in the runner.
pub fn start(config: &Config, sockets: &[RawFd]) -> Result<Option<Hook>, String> {
    let Some(program) = &config.upload_hook else {
        return Ok(None);
    };
    let root = std::fs::canonicalize(&config.root)
        .map_err(|e| format!("root {}: {e}", config.root.display()))?;
    let run_as = match crate::privilege::is_root() {
        true => Some(crate::privilege::resolve_run_as(&config.run_as)?),
        false => None,
    };
    let settings = Settings {
        program: program.clone(),
        timeout: Duration::from_secs(config.upload_hook_timeout),
        root,
        run_as,
    };
    let fail = |e: io::Error| format!("upload hook runner: {e}");
    let (read, write) = sys::pipe().map_err(fail)?;
    match sys::fork().map_err(fail)? {
        sys::Forked::Child => {
            drop(write);
            let status = runner::run(&settings, read, sockets);
            sys::exit_now(status)
        }
        sys::Forked::Parent(pid) => {
            drop(read);
            sys::set_nonblocking(write.as_fd(), true).map_err(fail)?;
            ::log::info!("upload hook {} (runner pid {pid})", program.display());
            Ok(Some(Hook {
                pipe: File::from(write),
            }))
        }
    }
}

/// A record: its length (u32), then each field as a u16 length and its bytes,
/// then the size (u64); None when it would pass `MAX_RECORD`.
fn encode(fields: &[&[u8]], size: u64) -> Option<Vec<u8>> {
    let len = 4 + fields.iter().map(|f| 2 + f.len()).sum::<usize>() + 8;
    if len > MAX_RECORD {
        return None;
    }
    let mut record = Vec::with_capacity(len);
    record.extend_from_slice(&(len as u32 - 4).to_le_bytes());
    for field in fields {
        record.extend_from_slice(&(field.len() as u16).to_le_bytes());
        record.extend_from_slice(field);
    }
    record.extend_from_slice(&size.to_le_bytes());
    Some(record)
}

/// The fields and size of a record's body (after the length); None when it
/// is malformed.
fn decode(mut body: &[u8]) -> Option<([Vec<u8>; 4], u64)> {
    let mut fields: [Vec<u8>; 4] = Default::default();
    for field in &mut fields {
        let (len, rest) = body.split_first_chunk::<2>()?;
        let len = usize::from(u16::from_le_bytes(*len));
        let value = rest.get(..len)?;
        *field = value.to_vec();
        body = &rest[len..];
    }
    let size = u64::from_le_bytes(body.try_into().ok()?);
    Some((fields, size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_stay_atomic() {
        let fields: [&[u8]; 4] = [b"/in/a b", b"cam", b"::1", b"/a \xff$(x)"];
        let record = encode(&fields, 42).unwrap();
        assert_eq!(
            record.len() - 4,
            u32::from_le_bytes(record[..4].try_into().unwrap()) as usize
        );
        let (got, size) = decode(&record[4..]).unwrap();
        assert_eq!(size, 42);
        assert_eq!(got.iter().map(Vec::as_slice).collect::<Vec<_>>(), fields);
        let long = vec![b'x'; MAX_RECORD];
        assert!(encode(&[&long, b"", b"", b""], 0).is_none());
        assert!(decode(&record[4..record.len() - 1]).is_none());
    }
}
