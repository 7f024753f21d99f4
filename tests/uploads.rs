//! Uploads on the splice(2) path and the copy it falls back to: what ends on
//! disk is compared with what was sent, for sizes around the pipe's, for
//! REST and APPE, and for uploads cut short (ABOR, a stall) that must keep
//! nothing. strace shows which path ran and that fsync_uploads still syncs
//! what was spliced, and injects the refusals that force the fallback. (A
//! reset and a full disk: security.rs; ASCII: protocol.rs; TLS: tls.rs;
//! throttling: features.rs.)

use crate::common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;

/// The bytes of an upload: 64 KiB blocks of `pattern`, each starting with
/// its index, so that a block lost, repeated or moved shows, and a few
/// hundred MiB never sit in memory at once.
const BLOCK: usize = 64 * 1024;

fn block(base: &mut [u8], index: u64) -> &[u8] {
    base[..8].copy_from_slice(&index.to_le_bytes());
    base
}

fn send(data: &mut TcpStream, len: u64) {
    let mut base = pattern(BLOCK);
    let mut sent = 0u64;
    while sent < len {
        let n = (len - sent).min(BLOCK as u64) as usize;
        data.write_all(&block(&mut base, sent / BLOCK as u64)[..n])
            .unwrap();
        sent += n as u64;
    }
}

/// Asserts that `path` holds, from `from` on, exactly the bytes `send` sent.
fn assert_holds(path: &Path, from: u64, len: u64) {
    let mut file = std::fs::File::open(path).unwrap();
    let size = file.metadata().unwrap().len();
    assert_eq!(size, from + len, "{}", path.display());
    std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(from)).unwrap();
    let (mut base, mut got) = (pattern(BLOCK), vec![0u8; BLOCK]);
    let mut at = 0u64;
    while at < len {
        let n = (len - at).min(BLOCK as u64) as usize;
        file.read_exact(&mut got[..n]).unwrap();
        assert!(
            got[..n] == block(&mut base, at / BLOCK as u64)[..n],
            "{}: block at {at} differs",
            path.display()
        );
        at += n as u64;
    }
}

/// Runs `verb path` sending `len` bytes; the final reply's code.
fn upload(ftp: &mut Ftp, line: &str, len: u64) -> u16 {
    let mut data = ftp.epsv();
    ftp.ok(line, 150);
    send(&mut data, len);
    drop(data);
    ftp.reply().code
}

#[test]
fn binary_uploads_of_every_size_land_intact() {
    let (server, _etc) = rw_server(TempDir::new("up-sizes"), "pw", &[]);
    let mut ftp = server.login("rw", "pw");
    ftp.ok("TYPE I", 200);
    // Empty, one byte, one past the pipe's size, a few hundred MiB.
    for len in [0, 1, (1 << 20) + 1, 300 << 20] {
        assert_eq!(upload(&mut ftp, "STOR f.bin", len), 226, "{len} bytes");
        assert_holds(&server.root.path().join("f.bin"), 0, len);
    }
    assert_no_temp_files(&server.root, "");
}

#[test]
fn rest_and_appe_splice_at_their_offsets() {
    let root = TempDir::new("up-offsets");
    let (server, _etc) = rw_server(root, "pw", &[]);
    let path = server.root.path().join("f.bin");
    let mut ftp = server.login("rw", "pw");
    ftp.ok("TYPE I", 200);
    assert_eq!(upload(&mut ftp, "STOR f.bin", 3 << 20), 226);
    // REST+STOR overwrites from the offset and cuts what lay beyond.
    let offset = (1 << 20) + 1;
    ftp.ok(&format!("REST {offset}"), 350);
    assert_eq!(upload(&mut ftp, "STOR f.bin", (1 << 20) + 7), 226);
    assert_holds(&path, offset, (1 << 20) + 7);
    let head = std::fs::read(&path).unwrap();
    let first = block(&mut pattern(BLOCK), 0).to_vec();
    assert!(head[..BLOCK] == first[..], "the part before REST is kept");
    // APPE adds at the end.
    let end = std::fs::metadata(&path).unwrap().len();
    assert_eq!(upload(&mut ftp, "APPE f.bin", (2 << 20) + 3), 226);
    assert_holds(&path, end, (2 << 20) + 3);
}

#[test]
fn abor_mid_upload_keeps_nothing() {
    let root = TempDir::new("up-abor");
    root.write("keep.bin", b"the good old file");
    let (server, _etc) = rw_server(root, "pw", &[]);
    let mut ftp = server.login("rw", "pw");
    ftp.ok("TYPE I", 200);
    for name in ["keep.bin", "new.bin"] {
        let mut data = ftp.epsv();
        ftp.ok(&format!("STOR {name}"), 150);
        send(&mut data, 4 << 20);
        ftp.send_raw(b"ABOR\r\n");
        assert_eq!(ftp.reply().code, 426, "{name}");
        assert_eq!(ftp.reply().code, 226, "{name}");
        drop(data);
    }
    assert_eq!(server.root.read("keep.bin"), b"the good old file");
    assert_eq!(server.root.names(""), ["keep.bin"], "nothing else kept");
    ftp.ok("NOOP", 200);
}

#[test]
fn a_stalled_upload_times_out_and_keeps_nothing() {
    let root = TempDir::new("up-stall");
    root.write("keep.bin", b"the good old file");
    let (server, _etc) = rw_server(root, "pw", &["-o", "data_timeout=1"]);
    let mut ftp = server.login("rw", "pw");
    ftp.ok("TYPE I", 200);
    let mut data = ftp.epsv();
    ftp.ok("STOR keep.bin", 150);
    send(&mut data, 2 << 20);
    // The client sends no more and does not close: the server gives up.
    let reply = ftp.reply();
    assert_eq!(reply.code, 426, "{}", reply.text);
    drop(data);
    assert_eq!(server.root.read("keep.bin"), b"the good old file");
    assert_no_temp_files(&server.root, "");
    ftp.ok("NOOP", 200);
}

/// strace following every thread of the server, tracing splice into `log`,
/// with extra `-e` expressions (fault injection).
fn strace(log: &Path, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = ["strace", "-f", "-qq", "-e", "trace=splice", "-o"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.push(log.to_str().unwrap().into());
    for e in extra {
        args.push("-e".into());
        args.push(e.to_string());
    }
    args
}

fn splices(log: &Path) -> usize {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines().filter(|l| l.contains("splice(")).count()
}

#[test]
fn only_binary_uploads_over_plain_tcp_splice() {
    if !have("strace") {
        return skip("strace is not installed");
    }
    let etc = TempDir::new("up-trace");
    let log = etc.path().join("strace.log");
    let wrapper = strace(&log, &[]);
    let wrapper: Vec<&str> = wrapper.iter().map(|s| s.as_str()).collect();
    let (server, _users) = rw_server_via(&wrapper, TempDir::new("up-path"), "pw", &[]);
    let mut ftp = server.login("rw", "pw");
    ftp.ok("TYPE A", 200);
    let reply = ftp.upload("STOR a.txt", b"one\r\ntwo\r\n");
    assert_eq!(reply.code, 226, "{}", reply.text);
    assert_eq!(server.root.read("a.txt"), b"one\ntwo\n");
    assert_eq!(splices(&log), 0, "ASCII is copied");
    ftp.ok("TYPE I", 200);
    assert_eq!(upload(&mut ftp, "STOR b.bin", 1 << 20), 226);
    assert_holds(&server.root.path().join("b.bin"), 0, 1 << 20);
    assert!(
        splices(&log) >= 2,
        "binary is spliced: socket->pipe, pipe->file"
    );
}

/// An upload through a server whose splice calls strace makes fail with
/// EINVAL from invocation `when` on (per thread): the bytes still land, and
/// the server says at debug level which side refused.
fn upload_with_splice_refused(when: &str, side: &str) {
    let etc = TempDir::new("up-refused");
    let log = etc.path().join("strace.log");
    let inject = format!("inject=splice:error=EINVAL:when={when}");
    let wrapper = strace(&log, &[&inject]);
    let wrapper: Vec<&str> = wrapper.iter().map(|s| s.as_str()).collect();
    let args = ["-o", "log_level=debug"];
    let (server, _users) = rw_server_via(&wrapper, TempDir::new("up-refused"), "pw", &args);
    let mut ftp = server.login("rw", "pw");
    ftp.ok("TYPE I", 200);
    // The first bytes wait in the socket before the server's first splice,
    // so that a first splice allowed to work moves some into the pipe.
    let len = (3 << 20) + 1;
    let mut data = ftp.epsv();
    send(&mut data, BLOCK as u64);
    ftp.ok("STOR f.bin", 150);
    let mut base = pattern(BLOCK);
    for at in (BLOCK as u64..len).step_by(BLOCK) {
        let n = (len - at).min(BLOCK as u64) as usize;
        data.write_all(&block(&mut base, at / BLOCK as u64)[..n])
            .unwrap();
    }
    drop(data);
    assert_eq!(ftp.reply().code, 226, "when={when}");
    assert_holds(&server.root.path().join("f.bin"), 0, len);
    assert!(
        server.wait_for_log(&format!("splice from {side} refused")),
        "when={when}: {}",
        server.log()
    );
    // The next upload on the same session lands too.
    assert_eq!(upload(&mut ftp, "STOR g.bin", 5), 226);
    assert_holds(&server.root.path().join("g.bin"), 0, 5);
    assert_no_temp_files(&server.root, "");
}

#[test]
fn a_refused_splice_falls_back_to_copying() {
    if !have("strace") {
        return skip("strace is not installed");
    }
    // Every splice refused: the first one, from the socket.
    upload_with_splice_refused("1+", "the data socket");
    // The socket's bytes already in the pipe when the file refuses them.
    upload_with_splice_refused("2+", "the pipe into the file");
}

#[test]
fn fsync_uploads_syncs_what_was_spliced_before_the_226() {
    if !have("strace") {
        return skip("strace is not installed");
    }
    let etc = TempDir::new("up-fsync");
    let log = etc.path().join("strace.log");
    let wrapper = strace(&log, &["trace=splice,fsync"]);
    let wrapper: Vec<&str> = wrapper.iter().map(|s| s.as_str()).collect();
    let args = ["-o", "fsync_uploads=yes"];
    let (server, _users) = rw_server_via(&wrapper, TempDir::new("up-fsync"), "pw", &args);
    let mut ftp = server.login("rw", "pw");
    ftp.ok("TYPE I", 200);
    assert_eq!(upload(&mut ftp, "STOR f.bin", (1 << 20) + 1), 226);
    assert_holds(&server.root.path().join("f.bin"), 0, (1 << 20) + 1);
    let trace = std::fs::read_to_string(&log).unwrap();
    let last_splice = trace.rfind("splice(").expect("the upload was spliced");
    assert!(
        trace[last_splice..].contains("fsync("),
        "no fsync after the last splice:\n{trace}"
    );
}
