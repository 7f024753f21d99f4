//! FTPS (the cargo feature `tls`) with real clients: curl, lftp, Python's ftplib and openssl
//! s_client, explicit and implicit, `tls = required`, session reuse, hostile handshakes, SIGHUP.

mod prelogin;

use crate::common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;

/// A self-signed P-256 certificate for `cn`, written into `dir` as
/// `<name>.crt` and `<name>.key`.
fn make_cert(dir: &TempDir, name: &str, cn: &str) -> (PathBuf, PathBuf) {
    let cert = dir.path().join(format!("{name}.crt"));
    let key = dir.path().join(format!("{name}.key"));
    let out = run(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={cn}"),
            "-keyout",
            key.to_str().unwrap(),
            "-out",
            cert.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "openssl req: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

/// The tools every test here needs; false (after a skip) when one is missing.
fn have_all(tools: &[&str]) -> bool {
    tools.iter().all(|tool| have(tool))
}

/// A TLS server with the user `rw` (password `secret`), anonymous read
/// access, and an implicit listener; `extra` adds arguments. The second
/// TempDir holds the users file and the certificate.
fn tls_server(root: TempDir, extra: &[&str]) -> (Server, TempDir) {
    let etc = TempDir::new("tls-etc");
    let (cert, key) = make_cert(&etc, "server", "minftpd-test-one");
    let users = users_file(&etc, &[("rw", "secret", "/", "rw")]);
    let cert = format!("tls_cert_file={}", cert.display());
    let key = format!("tls_key_file={}", key.display());
    let mut args = vec![
        "-A",
        "-w",
        "-U",
        users.to_str().unwrap(),
        "-o",
        &cert,
        "-o",
        &key,
        "-o",
        "tls_implicit_listen=127.0.0.1:0",
    ];
    if !extra.iter().any(|a| a.starts_with("tls=")) {
        args.extend(["-o", "tls=yes"]);
    }
    args.extend_from_slice(extra);
    (Server::start(root, &args), etc)
}

/// The implicit FTPS listener's address (the second "listening on").
fn implicit_addr(server: &Server) -> std::net::SocketAddr {
    assert!(server.wait_for_log("(implicit FTPS)"), "{}", server.log());
    server.listen_addrs()[1]
}

/// The subject openssl s_client sees after `AUTH TLS` on the control port.
fn served_subject(server: &Server) -> String {
    let out = run(
        "openssl",
        &[
            "s_client",
            "-starttls",
            "ftp",
            "-connect",
            &server.addr.to_string(),
        ],
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.starts_with("subject="))
        .unwrap_or("")
        .to_string()
}

fn ftplib_prelude(port: u16) -> String {
    format!(
        "import ftplib, ssl, io\n\
         ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE\n\
         f = ftplib.FTP_TLS(context=ctx, timeout=20); f.connect('127.0.0.1', {port})\n\
         f.login('rw', 'secret'); f.prot_p()\n"
    )
}

#[test]
fn curl_explicit_and_implicit_download_and_upload() {
    if !have_all(&["curl", "openssl"]) {
        return;
    }
    let root = TempDir::new("tls-curl");
    let data = pattern(3_000_000);
    root.write("big.bin", &data);
    let (server, _etc) = tls_server(root, &[]);
    let local = TempDir::new("tls-curl-local");
    let up = local.write("up.bin", &data);
    let up = up.to_str().unwrap();
    let explicit = server.user_url("rw", "secret", "big.bin");
    assert_eq!(curl_ok(&["--ssl-reqd", "-k", &explicit]), data);
    curl_ok(&[
        "--ssl-reqd",
        "-k",
        "-T",
        up,
        &server.user_url("rw", "secret", "e.bin"),
    ]);
    assert_eq!(server.root.read("e.bin"), data);
    let implicit = format!("ftps://rw:secret@{}/", implicit_addr(&server));
    assert_eq!(curl_ok(&["-k", &format!("{implicit}big.bin")]), data);
    curl_ok(&["-k", "-T", up, &format!("{implicit}i.bin")]);
    assert_eq!(server.root.read("i.bin"), data);
    let listing = String::from_utf8(curl_ok(&["-k", &implicit])).unwrap();
    assert!(listing.contains("big.bin"), "{listing}");
    server.finish();
}

#[test]
fn feat_and_the_rfc_4217_commands() {
    if !have("openssl") {
        return;
    }
    let (server, _etc) = tls_server(TempDir::new("tls-feat"), &[]);
    let mut ftp = server.connect();
    let feat = ftp.ok("FEAT", 211).text;
    for line in ["AUTH TLS", "PBSZ", "PROT"] {
        assert!(feat.contains(line), "{feat}");
    }
    ftp.ok("PBSZ 0", 503);
    ftp.ok("PROT P", 503);
    ftp.ok("AUTH GSSAPI", 504);
    ftp.ok("CCC", 533);
    ftp.ok("AUTH TLS", 234);
    // The rest of this session is TLS; s_client covers the handshake below.
    drop(ftp);
    assert!(
        served_subject(&server).contains("minftpd-test-one"),
        "openssl s_client -starttls ftp must see the certificate"
    );
    server.finish();
}

#[test]
fn lftp_forces_tls_on_control_and_data() {
    if !have_all(&["lftp", "openssl"]) {
        return;
    }
    let root = TempDir::new("tls-lftp");
    let data = pattern(1_000_000);
    root.write("big.bin", &data);
    // tls = required: only TLS gets the named user in and the data through.
    let (server, _etc) = tls_server(root, &["-o", "tls=required"]);
    let local = TempDir::new("tls-lftp-local");
    let up = local.write("up.bin", &data);
    let script = format!(
        "set xfer:clobber yes; set net:max-retries 1; set ssl:verify-certificate no; \
         set ftp:ssl-force yes; set ftp:ssl-protect-data yes; \
         open -u rw,secret {}; get big.bin -o {}/got.bin; put {} -o up.bin; ls",
        server.addr,
        local.path().display(),
        up.display()
    );
    let out = run("lftp", &["-c", &script]);
    assert!(
        out.status.success(),
        "lftp: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(local.read("got.bin"), data);
    assert_eq!(server.root.read("up.bin"), data);
    server.finish();
}

#[test]
fn ftplib_prot_p_and_session_reuse() {
    if !have_all(&["python3", "openssl", "curl", "lftp"]) {
        return;
    }
    let root = TempDir::new("tls-ftplib");
    root.write("f.bin", &pattern(300_000));
    let transfer =
        "b = io.BytesIO(); f.retrbinary('RETR f.bin', b.write); print(len(b.getvalue()))\n\
                    f.storbinary('STOR u.bin', io.BytesIO(b'x' * 70000)); print(f.nlst())\n";
    let (server, _etc) = tls_server(root, &[]);
    let out = python(&(ftplib_prelude(server.port()) + transfer));
    assert!(out.starts_with("300000\n"), "{out}");
    assert!(out.contains("u.bin"), "{out}");
    server.finish();

    // tls_require_reuse: ftplib opens each data connection with a new session.
    let root = TempDir::new("tls-reuse");
    root.write("f.bin", &pattern(300_000));
    let (server, _etc) = tls_server(root, &["-o", "tls_require_reuse=yes"]);
    let refused = "try:\n    f.retrbinary('RETR f.bin', print)\nexcept ftplib.error_temp as e:\n    print(e)\n";
    let out = python(&(ftplib_prelude(server.port()) + refused));
    assert!(out.starts_with("425 "), "ftplib must be refused: {out}");
    // curl and lftp (under TLS 1.2, see README) resume, and pass.
    let url = server.user_url("rw", "secret", "f.bin");
    assert_eq!(curl_ok(&["--ssl-reqd", "-k", &url]), pattern(300_000));
    let local = TempDir::new("tls-reuse-local");
    let script = format!(
        "set xfer:clobber yes; set net:max-retries 1; set ssl:verify-certificate no; \
         set ssl:priority NORMAL:-VERS-TLS1.3; set ftp:ssl-force yes; set ftp:ssl-protect-data yes; \
         open -u rw,secret {}; get f.bin -o {}/f.bin; ls",
        server.addr,
        local.path().display()
    );
    let out = run("lftp", &["-c", &script]);
    assert!(
        out.status.success(),
        "lftp: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(local.read("f.bin"), pattern(300_000));
    server.finish();
}

#[test]
fn tls_required_refuses_plain_logins_and_plain_data() {
    if !have_all(&["curl", "openssl"]) {
        return;
    }
    let root = TempDir::new("tls-required");
    root.write("f.txt", b"protected");
    let (server, _etc) = tls_server(root, &["-o", "tls=required"]);
    let mut ftp = server.connect();
    let reply = ftp.ok("USER rw", 530);
    assert!(reply.text.contains("TLS is required"), "{}", reply.text);
    drop(ftp);
    // Anonymous may stay plain (tls_anon_required = no).
    assert_eq!(curl_ok(&[&server.url("f.txt")]), b"protected");
    // TLS on the control connection only (curl's --ftp-ssl-control): PROT C data.
    let url = server.user_url("rw", "secret", "f.txt");
    let plain_data = curl(&["--ftp-ssl-control", "-k", &url]);
    assert!(!plain_data.status.success(), "plain data must be refused");
    assert!(
        String::from_utf8_lossy(&plain_data.stderr).contains("521")
            || server.log().contains("PROT C"),
        "{}",
        String::from_utf8_lossy(&plain_data.stderr)
    );
    assert_eq!(curl_ok(&["--ssl-reqd", "-k", &url]), b"protected");
    server.finish();
}

#[test]
fn hostile_handshakes_end_their_session_only() {
    if !have_all(&["curl", "openssl"]) {
        return;
    }
    let root = TempDir::new("tls-hostile");
    root.write("f.txt", b"still served");
    let (server, _etc) = tls_server(root, &["-o", "login_timeout=3"]);
    let implicit = implicit_addr(&server);
    // Garbage instead of a ClientHello: cut off at once.
    let mut garbage = TcpStream::connect(implicit).unwrap();
    garbage
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    garbage.write_all(&[0x47u8; 600]).unwrap();
    // A client that stops half-way: a ClientHello's first bytes, then silence.
    let mut stalled = TcpStream::connect(implicit).unwrap();
    stalled
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    stalled
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .unwrap();
    // Clear text after AUTH TLS on the explicit port.
    let mut ftp = server.connect();
    ftp.ok("AUTH TLS", 234);
    ftp.send_raw(b"USER rw\r\n");
    let mut after_auth = ftp.ctl.try_clone().unwrap();
    after_auth
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    // Others are served meanwhile.
    let url = format!("ftps://rw:secret@{implicit}/f.txt");
    assert_eq!(curl_ok(&["-k", &url]), b"still served");
    assert_eq!(
        curl_ok(&[
            "--ssl-reqd",
            "-k",
            &server.user_url("rw", "secret", "f.txt")
        ]),
        b"still served"
    );
    for stream in [&mut garbage, &mut stalled, &mut after_auth] {
        let mut buf = [0u8; 4096];
        // An alert at most, then the close (the stalled one at login_timeout);
        // a read that times out means the server still holds it.
        for _ in 0..100 {
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => panic!("handshake connection not closed: {e}"),
            }
        }
    }
    assert!(
        server.wait_for_log("TLS handshake failed"),
        "{}",
        server.log()
    );
    server.finish();
}

#[test]
fn abor_mid_transfer_over_a_tls_control_connection() {
    if !have_all(&["python3", "openssl"]) {
        return;
    }
    let root = TempDir::new("tls-abor");
    let big = std::fs::File::create(root.path().join("big.bin")).unwrap();
    big.set_len(256 << 20).unwrap();
    let (server, _etc) = tls_server(root, &[]);
    let script = ftplib_prelude(server.port())
        + "conn = f.transfercmd('RETR big.bin'); conn.recv(65536)\n\
           f.putcmd('ABOR'); print(f.getline()[:3]); print(f.getline()[:3])\n\
           conn.close(); print(f.voidcmd('NOOP')[:3])\n";
    let out = python(&script);
    assert_eq!(out, "426\n226\n200\n", "{}", server.log());
    server.finish();
}

#[test]
fn sighup_reads_a_renewed_certificate() {
    if !have("openssl") {
        return;
    }
    let (server, etc) = tls_server(TempDir::new("tls-sighup"), &["--no-chroot"]);
    assert!(served_subject(&server).contains("minftpd-test-one"));
    // The renewed pair replaces the files in place, as certbot's deploy hooks do.
    let (cert, key) = make_cert(&etc, "renewed", "minftpd-test-two");
    std::fs::copy(&cert, etc.path().join("server.crt")).unwrap();
    std::fs::copy(&key, etc.path().join("server.key")).unwrap();
    // After the privilege drop (tests as root) the run_as account reads them.
    for file in ["server.crt", "server.key"] {
        use std::os::unix::fs::PermissionsExt;
        let perms = std::fs::Permissions::from_mode(0o644);
        std::fs::set_permissions(etc.path().join(file), perms).unwrap();
    }
    server.signal("HUP");
    assert!(
        server.wait_for_log("reloaded the TLS certificate"),
        "{}",
        server.log()
    );
    assert!(served_subject(&server).contains("minftpd-test-two"));
    // A bad certificate is logged, and the one in use stays.
    etc.write("server.crt", b"not a certificate");
    server.signal("HUP");
    assert!(server.wait_for_log("keeping the old TLS certificate"));
    assert!(served_subject(&server).contains("minftpd-test-two"));
    server.finish();
}

#[test]
fn bad_certificates_stop_start_up_naming_the_file() {
    if !have("openssl") {
        return;
    }
    let etc = TempDir::new("tls-bad");
    let (cert, key) = make_cert(&etc, "a", "one");
    let (_, other_key) = make_cert(&etc, "b", "two");
    let missing = etc.path().join("missing.pem");
    let empty = etc.write("empty.pem", b"");
    let cases = [
        (&missing, &key, "missing.pem"),
        (&empty, &key, "empty.pem"),
        (&cert, &empty, "empty.pem"),
        (&cert, &other_key, "b.key"),
    ];
    for (cert, key, named) in cases {
        let out = run(
            BIN,
            &[
                "-c",
                "/dev/null",
                "-l",
                "127.0.0.1:0",
                "-r",
                etc.path().to_str().unwrap(),
                "-o",
                "tls=yes",
                "-o",
                &format!("tls_cert_file={}", cert.display()),
                "-o",
                &format!("tls_key_file={}", key.display()),
            ],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(named), "must name {named}: {stderr}");
    }
}

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

/// Implicit FTPS from each way systemd and inetd start minftpd: Accept=no
/// with a socket named `ftps`, Accept=yes and inetd style with
/// `--implicit-tls`.
#[test]
fn implicit_ftps_from_socket_activation_and_inetd() {
    if !have_all(&["curl", "openssl", "systemd-socket-activate"]) {
        return;
    }
    let root = TempDir::new("tls-activated");
    root.write("f.txt", b"implicit");
    let etc = TempDir::new("tls-activated-etc");
    let (cert, key) = make_cert(&etc, "server", "minftpd-activated");
    let cert = format!("tls_cert_file={}", cert.display());
    let key = format!("tls_key_file={}", key.display());
    let tls_args = ["-o", "tls=yes", "-o", &cert, "-o", &key];
    for (activator, implicit) in [
        (&["--fdname=ftps"][..], &[][..]),
        (&["-a"][..], &["--implicit-tls"][..]),
        (&["-a", "--inetd"][..], &["--inetd", "--implicit-tls"][..]),
    ] {
        let port = free_port();
        let minftpd: Vec<&str> = tls_args.iter().chain(implicit).copied().collect();
        let _guard = socket_activate(port, activator, &minftpd, &root);
        let url = format!("ftps://127.0.0.1:{port}/f.txt");
        assert_eq!(
            curl_ok(&["-k", &url]),
            b"implicit",
            "{activator:?} {minftpd:?}"
        );
    }
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

/// `openssl` run for a test's set-up; panics with its error output on failure.
fn openssl(args: &[&str]) {
    let out = run("openssl", args);
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `--check-config` with TLS on and `files` as the certificate and (when
/// given) the key: its exit status and standard error.
fn check_tls_files(root: &TempDir, cert: &std::path::Path, key: Option<&PathBuf>) -> (i32, String) {
    let cert = format!("tls_cert_file={}", cert.display());
    let mut args = vec!["-c", "/dev/null", "--check-config", "-r"];
    args.push(root.path().to_str().unwrap());
    args.extend(["-o", "tls=yes", "-o", &cert]);
    let key = key.map(|k| format!("tls_key_file={}", k.display()));
    if let Some(key) = &key {
        args.extend(["-o", key]);
    }
    start_error(&args)
}

/// Issue 18 item 2: each broken certificate or key that start-up refuses
/// is refused by --check-config too, with what is wrong and what to do.
#[test]
fn check_config_reads_and_pairs_the_tls_files() {
    if !have("openssl") {
        return;
    }
    let etc = TempDir::new("tls-check");
    let (cert, key) = make_cert(&etc, "a", "one");
    let (_, other_key) = make_cert(&etc, "b", "two");
    let der = etc.path().join("a.der");
    let s = |p: &PathBuf| p.to_str().unwrap().to_string();
    openssl(&[
        "x509",
        "-in",
        &s(&cert),
        "-outform",
        "der",
        "-out",
        &s(&der),
    ]);
    let locked = etc.path().join("locked.key");
    openssl(&[
        "pkey",
        "-in",
        &s(&key),
        "-aes256",
        "-passout",
        "pass:x",
        "-out",
        &s(&locked),
    ]);
    let missing = etc.path().join("missing.pem");
    let cases: [(&PathBuf, &PathBuf, &str); 5] = [
        (&missing, &key, "missing.pem: cannot read it"),
        (&der, &key, "a.der: a DER (binary) file"),
        (&cert, &locked, "encrypted keys are not supported"),
        (
            &cert,
            &other_key,
            "is not the one the certificate was made for",
        ),
        (&key, &cert, "are tls_cert_file and tls_key_file swapped?"),
    ];
    for (cert, key, says) in cases {
        let (code, stderr) = check_tls_files(&etc, cert, Some(key));
        assert_ne!(code, 0, "--check-config passed {cert:?} and {key:?}");
        assert!(stderr.contains(says), "must say {says:?}: {stderr}");
    }
    // A certificate alone, with no key anywhere, says where the key goes.
    let (code, stderr) = check_tls_files(&etc, &cert, None);
    assert_ne!(code, 0);
    assert!(stderr.contains("tls_key_file"), "{stderr}");
    // The good pair passes.
    let (code, stderr) = check_tls_files(&etc, &cert, Some(&key));
    assert_eq!(code, 0, "{stderr}");
}

/// Issue 18 item 2: vsftpd's usual combined PEM (certificate and key in one
/// file, `rsa_cert_file` alone) serves with `tls_key_file` unset.
#[test]
fn a_combined_pem_serves_without_tls_key_file() {
    if !have_all(&["openssl", "curl"]) {
        return;
    }
    let etc = TempDir::new("tls-combined");
    let (cert, key) = make_cert(&etc, "a", "combined-pem");
    let mut both = std::fs::read(&cert).unwrap();
    both.extend(std::fs::read(&key).unwrap());
    let combined = etc.write("both.pem", &both);
    let root = TempDir::new("tls-combined-root");
    root.write("f.txt", b"over tls");
    assert_eq!(check_tls_files(&root, &combined, None).0, 0);
    let setting = format!("tls_cert_file={}", combined.display());
    let server = Server::start(root, &["-A", "-o", "tls=yes", "-o", &setting]);
    assert_eq!(
        curl_ok(&["--ssl-reqd", "-k", &server.url("f.txt")]),
        b"over tls"
    );
    assert!(served_subject(&server).contains("combined-pem"));
    server.finish();
}

/// A TLS 1.1 ClientHello (record and body version 3.2) as an old embedded
/// client sends it: without extensions, or (`sig_algs`) with a TLS 1.2
/// signature_algorithms extension. openssl in current distributions no
/// longer sends one by default.
fn tls11_client_hello(sig_algs: bool) -> Vec<u8> {
    let mut body = vec![0x03, 0x02];
    body.extend([0x5a; 32]); // random
    body.push(0); // no session id
    body.extend([0x00, 0x04, 0xc0, 0x13, 0x00, 0x2f]); // ECDHE-RSA-AES128-SHA, AES128-SHA
    body.extend([0x01, 0x00]); // null compression
    if sig_algs {
        // extensions: signature_algorithms (13) with ecdsa_secp256r1_sha256
        body.extend([0x00, 0x08, 0x00, 0x0d, 0x00, 0x04, 0x00, 0x02, 0x04, 0x03]);
    }
    let mut handshake = vec![0x01, 0, (body.len() >> 8) as u8, body.len() as u8];
    handshake.extend(body);
    let mut record = vec![
        0x16,
        0x03,
        0x01,
        (handshake.len() >> 8) as u8,
        handshake.len() as u8,
    ];
    record.extend(handshake);
    record
}

/// Issue 18 item 2: a client that offers only TLS 1.1 or older is logged
/// as such, not with rustls' internal name for what its hello lacks.
#[test]
fn a_tls_1_1_client_is_logged_as_too_old() {
    if !have("openssl") {
        return;
    }
    let (server, _etc) = tls_server(TempDir::new("tls-old"), &[]);
    for sig_algs in [false, true] {
        let mut tcp = TcpStream::connect(implicit_addr(&server)).unwrap();
        tcp.set_read_timeout(Some(TIMEOUT)).unwrap();
        tcp.write_all(&tls11_client_hello(sig_algs)).unwrap();
        let mut alert = Vec::new();
        let _ = tcp.read_to_end(&mut alert);
        // A fatal alert record: handshake_failure or protocol_version.
        assert!(
            alert.starts_with(&[21, 3]) && alert.get(5) == Some(&2),
            "{alert:?}"
        );
    }
    // And openssl itself, where its build still speaks TLS 1.1 (without the
    // distribution's configuration and at security level 0).
    let connect = implicit_addr(&server).to_string();
    let out = std::process::Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &connect,
            "-tls1_1",
            "-cipher",
            "DEFAULT@SECLEVEL=0",
        ])
        .env("OPENSSL_CONF", "/dev/null")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let openssl_sent = !String::from_utf8_lossy(&out.stderr).contains("no protocols available");
    let expected = if openssl_sent { 3 } else { 2 };
    let line = "TLS handshake failed: client offers only TLS 1.1 or older";
    let deadline = std::time::Instant::now() + TIMEOUT;
    while server.log().matches(line).count() < expected && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        server.log().matches(line).count(),
        expected,
        "{}",
        server.log()
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

/// contrib/minftpd-ftps.socket: the name it gives its socket is the one
/// minftpd serves as implicit FTPS, with Accept=no (one minftpd for all).
#[test]
fn the_ftps_socket_unit_names_its_socket_for_implicit_ftps() {
    if !have_all(&["curl", "openssl", "systemd-socket-activate"]) {
        return;
    }
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/contrib/minftpd-ftps.socket"
    ))
    .unwrap();
    let setting = |key: &str| {
        unit.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("no {key}= in {unit}"))
            .to_string()
    };
    assert_eq!(setting("Accept"), "no");
    assert_eq!(setting("Service"), "minftpd.service");
    let fdname = format!("--fdname={}", setting("FileDescriptorName"));
    let root = TempDir::new("tls-ftps-socket");
    root.write("f.txt", b"implicit");
    let etc = TempDir::new("tls-ftps-socket-etc");
    let (cert, key) = make_cert(&etc, "server", "minftpd-ftps-socket");
    let cert = format!("tls_cert_file={}", cert.display());
    let key = format!("tls_key_file={}", key.display());
    let port = free_port();
    let _guard = socket_activate(
        port,
        &[&fdname],
        &["-o", "tls=yes", "-o", &cert, "-o", &key],
        &root,
    );
    let url = format!("ftps://127.0.0.1:{port}/f.txt");
    assert_eq!(curl_ok(&["-k", &url]), b"implicit");
}
