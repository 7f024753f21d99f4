//! The upload loops, and the one place that chooses between them: splice(2)
//! (binary over plain TCP, `splice.rs`) or a copy through a buffer (ASCII,
//! TLS, or a file system that refuses splice). The client chooses what and how
//! much it sends and how fast (bounded by `Watch`: stall timeout, ABOR, rate
//! limit); the limits of what may be written are the caller's.

use super::splice::{self, Spliced};
use super::{nonblocking, would_block, DataStream, Failure, Outcome, Watch, COPY_BUFFER};
use crate::sys;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;

/// Receives into `out` (from its current position) until the client closes
/// the data connection in order. A reset or a stall is a failure: the data
/// may be incomplete. Binary uploads over plain TCP are spliced; whatever
/// cannot be (ASCII, TLS, a refusal by the kernel partway) is copied.
pub fn receive(sock: &mut DataStream, out: &mut File, ascii: bool, watch: &mut Watch) -> Outcome {
    nonblocking(sock)?;
    let moved = match sock {
        DataStream::Plain(tcp) if !ascii => match splice::receive(tcp, out, watch)? {
            Spliced::Done(moved) => return finish(moved, watch),
            Spliced::Refused(moved) => moved,
        },
        _ => 0,
    };
    let moved = copy(sock, out, ascii, watch, moved)?;
    finish(moved, watch)
}

/// A client that closed its control connection (or sent ABOR) before the
/// data ended cannot be told 226: the upload is not complete for it.
fn finish(moved: u64, watch: &mut Watch) -> Outcome {
    watch.check_abort(moved)?;
    Ok(moved)
}

/// Reads the socket into a buffer and writes that to `out`, converting CRLF
/// in ASCII mode; `moved` bytes arrived before (a splice that was refused).
fn copy(
    sock: &mut DataStream,
    out: &mut File,
    ascii: bool,
    watch: &mut Watch,
    mut moved: u64,
) -> Result<u64, (Failure, u64)> {
    let mut buf = vec![0u8; watch.throttle.slice(COPY_BUFFER)];
    let mut converted = Vec::new();
    let mut pending_cr = false;
    loop {
        let n = match sock.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if would_block(&e) => {
                watch.wait(sock.as_fd(), sys::POLLIN, moved)?;
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err((Failure::Network(e), moved)),
        };
        let data = if ascii {
            converted.clear();
            pending_cr = crlf_to_lf(&buf[..n], pending_cr, &mut converted);
            &converted[..]
        } else {
            &buf[..n]
        };
        out.write_all(data).map_err(|e| (Failure::File(e), moved))?;
        moved += n as u64;
        watch.progress(n, moved)?;
    }
    if pending_cr {
        out.write_all(b"\r")
            .map_err(|e| (Failure::File(e), moved))?;
    }
    Ok(moved)
}

/// CRLF to LF, for ASCII uploads. `pending_cr` carries a CR that ended the
/// previous chunk; the return value says whether this chunk ends in one.
pub fn crlf_to_lf(input: &[u8], mut pending_cr: bool, out: &mut Vec<u8>) -> bool {
    for &b in input {
        if pending_cr {
            if b != b'\n' {
                out.push(b'\r');
            }
            pending_cr = false;
        }
        if b == b'\r' {
            pending_cr = true;
        } else {
            out.push(b);
        }
    }
    pending_cr
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crlf_becomes_lf_across_chunks() {
        let mut out = Vec::new();
        let cr = crlf_to_lf(b"a\r\nb\r", false, &mut out);
        assert!(cr);
        let cr = crlf_to_lf(b"\nc\rd", cr, &mut out);
        assert!(!cr);
        assert_eq!(out, b"a\nb\nc\rd");
    }
}
