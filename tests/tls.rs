//! FTPS (the cargo feature `tls`) with real clients: curl, lftp, Python's ftplib and openssl
//! s_client, explicit and implicit, `tls = required`, session reuse, hostile handshakes, SIGHUP.

mod data;
mod files;
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
