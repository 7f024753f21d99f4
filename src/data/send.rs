//! The download loops: binary through sendfile(2) (plain TCP) or a buffer
//! (TLS), and ASCII with LF turned into CRLF. The client sets the pace it
//! reads at (bounded by `Watch`: stall timeout, ABOR, rate limit); the server
//! chooses what is sent and how much.

use super::{nonblocking, would_block, DataStream, Failure, Outcome, Watch};
use super::{COPY_BUFFER, SENDFILE_SLICE};
use crate::sys;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsFd;

/// Sends `len` bytes of a file (its size when opened, less `offset`) in binary
/// mode. The one place that chooses sendfile(2): plain TCP only, as TLS must
/// encrypt in user space.
pub fn send_binary(
    sock: &mut DataStream,
    file: &File,
    offset: u64,
    len: u64,
    watch: &mut Watch,
) -> Outcome {
    nonblocking(sock)?;
    match sock {
        DataStream::Plain(tcp) => sendfile(tcp, file, offset, len, watch),
        #[cfg(feature = "tls")]
        DataStream::Tls(_) => send_buffered(sock, file, offset, len, watch),
    }
}

/// Binary download through user space (TLS): the file is read in 256 KiB
/// pieces, which rustls cuts into full-size records.
#[cfg(feature = "tls")]
fn send_buffered(
    sock: &mut DataStream,
    file: &File,
    offset: u64,
    len: u64,
    watch: &mut Watch,
) -> Outcome {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; watch.throttle.slice(COPY_BUFFER)];
    let mut moved = 0u64;
    while moved < len {
        let want = buf.len().min((len - moved) as usize);
        let n = match file.read_at(&mut buf[..want], offset + moved) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err((Failure::File(e), moved)),
        };
        write_all(sock, &buf[..n], watch, moved)?;
        moved += n as u64;
        watch.progress(n, moved)?;
    }
    flush(sock, watch, moved)?;
    Ok(moved)
}

/// Waits until what the stream buffers (TLS records) has gone out: a
/// transfer is complete only then. Plain TCP buffers nothing.
fn flush(sock: &mut DataStream, watch: &mut Watch, moved: u64) -> Result<(), (Failure, u64)> {
    loop {
        match sock.flush() {
            Ok(()) => return Ok(()),
            Err(e) if would_block(&e) => watch.wait(sock.as_fd(), sys::POLLOUT, moved)?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err((Failure::Network(e), moved)),
        }
    }
}

/// Binary download with sendfile(2): no copy through user space. A file that
/// shrinks meanwhile ends the transfer early.
fn sendfile(sock: &TcpStream, file: &File, offset: u64, len: u64, watch: &mut Watch) -> Outcome {
    let mut pos = offset as i64;
    let mut moved = 0u64;
    let slice = watch.throttle.slice(SENDFILE_SLICE) as u64;
    while moved < len {
        let count = slice.min(len - moved) as usize;
        match sys::sendfile(sock.as_fd(), file.as_fd(), &mut pos, count) {
            Ok(0) => return Ok(moved),
            Ok(n) => {
                moved += n as u64;
                watch.progress(n, moved)?;
            }
            Err(e) if would_block(&e) => watch.wait(sock.as_fd(), sys::POLLOUT, moved)?,
            Err(e) => return Err((Failure::Network(e), moved)),
        }
    }
    Ok(moved)
}

/// Writes all of `buf` to the non-blocking `sock`, waiting through `watch`.
fn write_all(
    sock: &mut DataStream,
    mut buf: &[u8],
    watch: &mut Watch,
    moved: u64,
) -> Result<(), (Failure, u64)> {
    while !buf.is_empty() {
        match sock.write(buf) {
            Ok(0) => return Err((Failure::Network(io::ErrorKind::WriteZero.into()), moved)),
            Ok(n) => buf = &buf[n..],
            Err(e) if would_block(&e) => watch.wait(sock.as_fd(), sys::POLLOUT, moved)?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err((Failure::Network(e), moved)),
        }
    }
    Ok(())
}

/// Sends a file in ASCII mode: LF becomes CRLF on the wire. `offset` counts
/// bytes of the file, as REST does for both modes here.
pub fn send_ascii(
    sock: &mut DataStream,
    file: &mut File,
    offset: u64,
    watch: &mut Watch,
) -> Outcome {
    use std::io::Seek;
    nonblocking(sock)?;
    file.seek(io::SeekFrom::Start(offset))
        .map_err(|e| (Failure::File(e), 0))?;
    let mut inbuf = vec![0u8; watch.throttle.slice(COPY_BUFFER / 2)];
    let mut outbuf = Vec::with_capacity(inbuf.len() * 2);
    let mut moved = 0u64;
    loop {
        let n = match file.read(&mut inbuf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err((Failure::File(e), moved)),
        };
        outbuf.clear();
        lf_to_crlf(&inbuf[..n], &mut outbuf);
        write_all(sock, &outbuf, watch, moved)?;
        moved += outbuf.len() as u64;
        watch.progress(outbuf.len(), moved)?;
    }
    flush(sock, watch, moved)?;
    Ok(moved)
}

/// LF to CRLF, for ASCII downloads. A CR already before the LF is kept as it is.
pub fn lf_to_crlf(input: &[u8], out: &mut Vec<u8>) {
    let mut prev = 0u8;
    for &b in input {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lf_becomes_crlf() {
        let mut out = Vec::new();
        lf_to_crlf(b"a\nb\r\nc", &mut out);
        assert_eq!(out, b"a\r\nb\r\nc");
    }
}
