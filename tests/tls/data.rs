//! Protected data connections: the data handshake watching the control
//! connection (ABOR, hang-up), garbage on it, curl's uploads under TLS 1.3 and
//! session reuse across uploads and downloads.

use super::*;

/// Active mode under PROT P: the server connects to the client and is still
/// the TLS server on that connection (RFC 4217 section 7). Python's ftplib
/// (lftp too; Debian 12's curl fails active FTPS on its own side).
#[test]
fn active_mode_data_is_protected_too() {
    if !have_all(&["python3", "openssl"]) {
        return;
    }
    let root = TempDir::new("tls-active");
    root.write("f.bin", &pattern(500_000));
    let (server, _etc) = tls_server(root, &["-o", "tls=required"]);
    let script = format!(
        "{}f.set_pasv(False)\n\
         b = io.BytesIO(); f.retrbinary('RETR f.bin', b.write)\n\
         f.storbinary('STOR up.bin', io.BytesIO(b.getvalue()))\n\
         print(len(b.getvalue())); f.quit()\n",
        ftplib_prelude(server.port())
    );
    assert_eq!(python(&script).trim(), "500000");
    assert_eq!(server.root.read("up.bin"), pattern(500_000));
    assert!(
        server.wait_for_log("RETR \"/f.bin\" ok"),
        "{}",
        server.log()
    );
    server.finish();
}

/// ftplib under PROT P up to the 150 of `RETR f.bin`, with the data
/// connection open and no ClientHello on it: the server waits in the data
/// connection's TLS handshake. `data` is the plain data socket.
fn stalled_data_handshake(port: u16) -> String {
    ftplib_prelude(port)
        + "import socket\n\
           host, dport = f.makepasv()\n\
           data = socket.create_connection((host, dport), timeout=20)\n\
           f.putcmd('RETR f.bin'); print(f.getline()[:3], flush=True)\n"
}

/// ABOR while the data connection's handshake waits for a ClientHello is
/// answered at once (426, then ABOR's 226), not after `data_timeout`: 600 s
/// here against the client's 20 s read timeout, and the handshake's own
/// deadline would answer 425, so only a server that hears ABOR passes.
#[test]
fn abor_during_the_data_handshake() {
    if !have_all(&["python3", "openssl"]) {
        return;
    }
    let root = TempDir::new("tls-abor-handshake");
    root.write("f.bin", b"never sent");
    let (server, _etc) = tls_server(root, &["-o", "data_timeout=600"]);
    let script = stalled_data_handshake(server.port())
        + "f.putcmd('ABOR'); print(f.getline()[:3]); print(f.getline()[:3])\n\
           print(f.voidcmd('NOOP')[:3]); data.close()\n";
    assert_eq!(python(&script), "150\n426\n226\n200\n", "{}", server.log());
    server.finish();
}

/// Garbage instead of a ClientHello on the data connection ends that
/// transfer with 425 (after rustls' alert); the session goes on.
#[test]
fn garbage_on_the_data_connection_is_425() {
    if !have_all(&["python3", "openssl"]) {
        return;
    }
    let root = TempDir::new("tls-data-garbage");
    root.write("f.bin", b"never sent");
    let (server, _etc) = tls_server(root, &[]);
    let script = stalled_data_handshake(server.port())
        + "data.sendall(b'G' * 600); print(f.getline()[:3])\n\
           print(f.voidcmd('NOOP')[:3]); data.close()\n";
    assert_eq!(python(&script), "150\n425\n200\n", "{}", server.log());
    server.finish();
}

/// A client that hangs up its control connection while the data handshake
/// waits (the data connection stays open, silent) frees its worker at once:
/// the session ends because the control connection closed, not at
/// `data_timeout` (600 s) nor at the handshake's own deadline.
#[test]
fn a_hang_up_during_the_data_handshake_frees_the_worker() {
    use std::io::BufRead;
    if !have_all(&["python3", "openssl"]) {
        return;
    }
    let root = TempDir::new("tls-hangup-handshake");
    root.write("f.bin", b"never sent");
    let (server, _etc) = tls_server(root, &["-o", "data_timeout=600"]);
    // Closes the control connection, says which it was, and holds the data
    // connection open until the test kills it (60 s at most).
    let script = stalled_data_handshake(server.port())
        + "peer = f.sock.getsockname()[1]; f.close()\n\
           print(peer, flush=True)\n\
           import time; time.sleep(60); data.close()\n";
    let mut child = std::process::Command::new("python3")
        .args(["-c", &script])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let opened = lines.next().and_then(Result::ok);
    let control_port = lines.next().and_then(Result::ok);
    let ended = format!(
        "127.0.0.1:{}: TLS on the data connection failed: control connection closed",
        control_port.as_deref().unwrap_or("?")
    );
    let freed = server.wait_for_log(&ended);
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(opened.as_deref(), Some("150"), "{}", server.log());
    assert!(freed, "wanted {ended:?}; log:\n{}", server.log());
    server.finish();
}

/// curl over TLS 1.3 uploads whole (curl issues 6149 and 13556): the server
/// sends no session tickets on an upload's data connection, which curl
/// would never read, so that its close became a reset that cut the upload
/// short (426 after about 114 KB; half of the uploads on the release build,
/// most of 50 on the debug one). Every upload of 50 must land, byte for byte.
#[test]
fn curl_uploads_over_tls_1_3_land_whole() {
    if !have_all(&["curl", "openssl"]) {
        return;
    }
    let (server, _etc) = tls_server(TempDir::new("tls13-uploads"), &[]);
    let local = TempDir::new("tls13-uploads-local");
    let data = pattern(1 << 20);
    let up = local.write("up.bin", &data);
    let mut failed = Vec::new();
    for i in 0..50 {
        let name = format!("u{i}.bin");
        let url = server.user_url("rw", "secret", &name);
        let args = [
            "--ssl-reqd",
            "--tlsv1.3",
            "-k",
            "-T",
            up.to_str().unwrap(),
            &url,
        ];
        let out = curl(&args);
        if !out.status.success() || server.root.read(&name) != data {
            failed.push(format!(
                "{name}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of 50 uploads failed: {failed:?}",
        failed.len()
    );
    server.finish();
}

/// Session reuse with `tls_require_reuse`: curl resumes the control
/// connection's session on an upload, and on each of several downloads of
/// one session (they pass on the tickets curl uses once each).
#[test]
fn curl_resumes_for_uploads_and_for_several_downloads() {
    if !have_all(&["curl", "openssl"]) {
        return;
    }
    let root = TempDir::new("tls-reuse-curl");
    root.write("a.bin", &pattern(200_000));
    root.write("b.bin", &pattern(300_000));
    let (server, _etc) = tls_server(root, &["-o", "tls_require_reuse=yes"]);
    let local = TempDir::new("tls-reuse-curl-local");
    let up = local.write("up.bin", &pattern(500_000));
    curl_ok(&[
        "--ssl-reqd",
        "-k",
        "-T",
        up.to_str().unwrap(),
        &server.user_url("rw", "secret", "up.bin"),
    ]);
    assert_eq!(server.root.read("up.bin"), pattern(500_000));
    let (a, b) = (local.path().join("a"), local.path().join("b"));
    curl_ok(&[
        "--ssl-reqd",
        "-k",
        &server.user_url("rw", "secret", "a.bin"),
        "-o",
        a.to_str().unwrap(),
        &server.user_url("rw", "secret", "b.bin"),
        "-o",
        b.to_str().unwrap(),
        &server.user_url("rw", "secret", "a.bin"),
        "-o",
        a.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read(&a).unwrap(), pattern(200_000));
    assert_eq!(std::fs::read(&b).unwrap(), pattern(300_000));
    let log = server.log();
    assert!(!log.contains("did not resume"), "{log}");
    assert_eq!(log.matches("session opened").count(), 2, "{log}");
    server.finish();
}
