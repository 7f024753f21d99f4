//! Certificates and keys: what start-up, --check-config and SIGHUP say about
//! missing, DER, encrypted, swapped or mismatched files, and vsftpd's combined
//! PEM; clients that offer only TLS 1.1.

use super::*;

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
