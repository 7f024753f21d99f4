//! The ways to start: inetd handover on standard input, systemd socket
//! activation (Accept=no and Accept=yes), and a real openbsd-inetd.

use crate::common::*;
use std::net::TcpListener;
use std::process::{Command, Stdio};

fn served_dir() -> TempDir {
    let root = TempDir::new("startup");
    root.write("hello.txt", b"hello from minftpd");
    root
}

fn curl_file(port: u16) -> Vec<u8> {
    curl_ok(&[&format!("ftp://127.0.0.1:{port}/hello.txt")])
}

#[test]
fn inetd_mode_serves_one_session_on_standard_input() {
    let root = served_dir();
    let etc = TempDir::new("inetd-log");
    let log = etc.path().join("minftpd.log");
    let log_file = format!("log_file={}", log.display());
    let (mut child, mut ftp) = inetd(&root, &["-A", "-v", "-o", &log_file]);
    let greeting = ftp.greeting.clone();
    ftp.login("anonymous", "x");
    let bytes = ftp.retr("hello.txt");
    let listing = ftp.list("LIST");
    let quit = ftp.cmd("QUIT");
    assert_eq!(
        greeting.text, "220 minftpd ready.\r\n",
        "no log line before the greeting"
    );
    assert_eq!(bytes, b"hello from minftpd");
    assert!(listing.contains(" hello.txt\r\n"));
    assert_eq!(
        quit.text, "221 Goodbye.\r\n",
        "no log line on the control connection"
    );
    let status = wait_exit(&mut child.0).expect("minftpd --inetd exits after QUIT");
    assert!(status.success(), "{status:?}");
    // The log went to log_file, never to the socket on fd 2.
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("session opened") && logged.contains("RETR \"/hello.txt\" ok 18 bytes"),
        "{logged}"
    );
}

#[test]
fn inetd_mode_ends_an_idle_session_on_sigterm() {
    let root = served_dir();
    let (mut child, mut ftp) = inetd(&root, &["-A"]);
    ftp.login("anonymous", "x");
    send_signal(child.0.id(), "TERM");
    assert_eq!(ftp.reply().code, 421, "an idle inetd session is told");
    let status = wait_exit(&mut child.0).expect("minftpd --inetd exits on SIGTERM");
    assert!(status.success(), "{status:?}");
}

#[test]
fn inetd_mode_refuses_a_terminal_or_file_on_standard_input() {
    let root = served_dir();
    let out = Command::new(BIN)
        .args(["--inetd", "-c", "/dev/null", "-A", "-r"])
        .arg(root.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs a socket on standard input"));
}

#[test]
fn systemd_accept_no_hands_over_the_listener() {
    if !have("systemd-socket-activate") || !have("curl") {
        return;
    }
    let root = served_dir();
    let port = free_port();
    let _activator = socket_activate(port, &[], &[], &root);
    // The first connection starts minftpd with the listening socket; it keeps
    // serving further connections itself.
    for _ in 0..3 {
        assert_eq!(curl_file(port), b"hello from minftpd");
    }
}

#[test]
fn systemd_accept_yes_serves_each_connection() {
    if !have("systemd-socket-activate") || !have("curl") {
        return;
    }
    let root = served_dir();
    // Accept=yes: the connection arrives as fd 3 with LISTEN_FDS=1.
    let port = free_port();
    let _activator = socket_activate(port, &["-a"], &[], &root);
    assert_eq!(curl_file(port), b"hello from minftpd");
    assert_eq!(curl_file(port), b"hello from minftpd");
    // inetd style: the connection on standard input and output.
    let port = free_port();
    let _inetd = socket_activate(port, &["-a", "--inetd"], &["--inetd"], &root);
    assert_eq!(curl_file(port), b"hello from minftpd");
}

#[test]
fn openbsd_inetd_launches_minftpd_per_connection() {
    if !have("curl") {
        return;
    }
    if !std::path::Path::new("/usr/sbin/inetd").exists() {
        return skip("openbsd-inetd is not installed");
    }
    let root = served_dir();
    let etc = TempDir::new("inetd-conf");
    let port = free_port();
    // inetd runs the service as this user: root in CI, yourself otherwise.
    let user = String::from_utf8(run("id", &["-un"]).stdout)
        .unwrap()
        .trim()
        .to_string();
    let line = format!(
        "127.0.0.1:{port} stream tcp nowait {user} {BIN} minftpd --inetd -c /dev/null -A -r {}\n",
        root.path().display()
    );
    let conf = etc.write("inetd.conf", line.as_bytes());
    let mut inetd = Kill::spawn(
        Command::new("/usr/sbin/inetd")
            .arg("-d")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    wait_listening(&mut inetd, port).unwrap();
    assert_eq!(curl_file(port), b"hello from minftpd");
    assert_eq!(curl_file(port), b"hello from minftpd");
    drop(inetd);
}

#[test]
fn listens_on_ipv6_loopback_too() {
    if TcpListener::bind("[::1]:0").is_err() {
        return skip("no IPv6 loopback here");
    }
    let server = Server::launch(
        BIN,
        &["-l", "[::1]:0", "-l", "127.0.0.1:0"],
        served_dir(),
        &["-A"],
    );
    assert!(server.wait_for_log("listening on 127.0.0.1:"));
    let v6 = *server
        .listen_addrs()
        .iter()
        .find(|a| a.is_ipv6())
        .expect("a [::1] listener");
    let mut ftp = Ftp::connect(v6);
    ftp.login("anonymous", "x");
    // EPSV works on IPv6; PASV cannot describe an IPv6 address.
    assert_eq!(ftp.retr("hello.txt"), b"hello from minftpd");
    ftp.ok("PASV", 425);
    ftp.ok("EPSV 1", 522);
}

// ---------------------------------------------------------------- the first hour

/// A config file in a fresh directory, and a served root beside it.
fn conf_and_root(text: &str) -> (TempDir, String, String) {
    let etc = TempDir::new("first-hour");
    let conf = etc.write("m.conf", text.as_bytes());
    let root = etc.mkdir("root");
    let (conf, root) = (conf.display().to_string(), root.display().to_string());
    (etc, conf, root)
}

#[test]
fn every_bad_line_of_a_config_file_is_reported_with_a_hint() {
    let (_etc, conf, root) = conf_and_root(
        "# from vsftpd\nlocal_umask = 022\nmax_clients = 0\nftpd_banner = hello\nmax_client = 5\ndeny_file = {*.mp3}\nmax_per_ip = 3 # per address\n",
    );
    for check in [false, true] {
        let mut args = vec![
            "-c",
            conf.as_str(),
            "-r",
            root.as_str(),
            "-l",
            "127.0.0.1:0",
        ];
        if check {
            args.push("--check-config");
        }
        let (code, err) = start_bounded(BIN, &args);
        assert_eq!(code, Some(2), "{err}");
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(
            lines,
            [
                format!("minftpd: {conf}:2: local_umask: unknown key; this is vsftpd's, minftpd's is umask"),
                format!("minftpd: {conf}:3: max_clients: expected a number above 0, got \"0\""),
                format!("minftpd: {conf}:4: ftpd_banner: unknown key; this is vsftpd's, minftpd's is banner"),
                format!("minftpd: {conf}:5: max_client: unknown key; did you mean max_clients?"),
                format!("minftpd: {conf}:6: deny_file: unknown key; this is vsftpd's, and minftpd has no such key, because access is by directory (homes, anon_root) and file permissions, not by name patterns"),
            ],
            "line 7's trailing comment is a comment"
        );
    }
}

#[test]
fn boolean_words_mean_the_same_for_tls() {
    // `tls = on` was refused as a word while yes/no keys took it; now it is
    // tls = yes, which this build then checks like any other.
    let (_etc, conf, root) = conf_and_root("tls = on\nanonymous_enable = on\n");
    let (code, err) = start_bounded(BIN, &["-c", &conf, "-r", &root, "--check-config"]);
    assert!(!err.contains("expected no, yes or required"), "{err}");
    assert_eq!(code, Some(2), "{err}");
    let want = if cfg!(feature = "tls") {
        "tls_cert_file: must name a PEM file"
    } else {
        "tls: this minftpd was built without TLS"
    };
    assert!(err.contains(want), "{err}");
}

#[test]
fn a_missing_config_file_says_cannot_read_without_a_line_number() {
    let (code, err) = start_bounded(BIN, &["-c", "/nonexistent/minftpd.conf", "--check-config"]);
    assert_eq!(code, Some(2));
    assert_eq!(
        err,
        "minftpd: cannot read /nonexistent/minftpd.conf: No such file or directory\n"
    );
}

#[test]
fn a_start_up_error_is_printed_once() {
    let (etc, _conf, root) = conf_and_root("");
    let users = etc.write("users", b"bad:$6$salt$hash:/:rwx\n");
    let (code, err) = start_bounded(BIN, &users_start_args(root.as_ref(), &users));
    assert_eq!(code, Some(2), "{err}");
    assert_eq!(err.matches("access must be rw or ro").count(), 1, "{err}");
}

#[test]
fn pasv_address_takes_a_host_name_resolved_at_start_up() {
    let server = Server::launch(
        BIN,
        &["-l", "127.0.0.2:0"],
        served_dir(),
        &["-A", "-o", "pasv_address=localhost"],
    );
    assert!(
        server.wait_for_log("pasv_address localhost resolves to 127.0.0.1"),
        "{}",
        server.log()
    );
    let mut ftp = server.anon();
    // The control connection is to 127.0.0.2; the name's address is advertised.
    let reply = ftp.cmd("PASV");
    assert_eq!(reply.code, 227, "{}", reply.text);
    assert!(reply.text.contains("(127,0,0,1,"), "{}", reply.text);
    let root = served_dir();
    let (code, err) = start_bounded(
        BIN,
        &[
            "-c",
            "/dev/null",
            "-l",
            "127.0.0.1:0",
            "-A",
            "-r",
            root.path().to_str().unwrap(),
            "-o",
            "pasv_address=no-such-host.invalid",
        ],
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("pasv_address: cannot resolve no-such-host.invalid"),
        "{err}"
    );
}

#[test]
fn version_names_the_optional_features() {
    let out = run(BIN, &["-V"]);
    let want = if cfg!(feature = "tls") {
        "(tls)"
    } else {
        "(without tls)"
    };
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("minftpd {} {want}\n", env!("CARGO_PKG_VERSION"))
    );
}

/// Set-ups that start but cannot work are warned about, at start-up and by
/// --check-config (which still exits 0).
#[test]
fn set_ups_that_cannot_work_are_warned_about() {
    use std::os::unix::fs::PermissionsExt;
    let (etc, _conf, root) = conf_and_root("");
    let (code, err) = start_bounded(BIN, &["-c", "/dev/null", "-r", &root, "--check-config"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("warning: nobody can log in"), "{err}");

    let tree = TempDir::new("unworkable");
    let locked = tree.mkdir("locked");
    let readonly = tree.mkdir("readonly");
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    std::fs::set_permissions(&readonly, std::fs::Permissions::from_mode(0o555)).unwrap();
    let users = users_file(
        &etc,
        &[
            ("gone", "pw", "/missing", "ro"),
            ("shut", "pw", "/locked", "ro"),
            ("cam", "pw", "/readonly", "rw"),
        ],
    );
    let args = [
        "-U",
        users.to_str().unwrap(),
        "-A",
        "-o",
        "anon_root=/srv/ftp",
    ];
    let mut check = vec![
        "-c",
        "/dev/null",
        "-r",
        tree.path().to_str().unwrap(),
        "--check-config",
    ];
    check.extend(args);
    let (code, err) = start_bounded(BIN, &check);
    assert_eq!(code, Some(0), "{err}");
    let server = Server::start(
        tree,
        &[&args[..], &["-w", "-o", "anon_upload_dir=/up"]].concat(),
    );
    let log = server.log();
    for said in [&err, &log] {
        for want in [
            "user gone: home /missing: ",
            "/missing does not exist",
            "user shut: home /locked: ",
            "/locked is not readable by ",
            "anon_root /srv/ftp: ",
            "vsftpd's anon_root is minftpd's root",
        ] {
            assert!(said.contains(want), "{want:?} in {said}");
        }
    }
    assert!(
        !err.contains("not writable"),
        "no write_enable, no write warning: {err}"
    );
    assert!(
        log.contains("user cam: home /readonly: ")
            && log.contains("is not writable by ")
            && log.contains("(chown "),
        "{log}"
    );
    let (code, err) = start_bounded(
        BIN,
        &[
            "-c",
            "/dev/null",
            "-r",
            &root,
            "-A",
            "-o",
            "anon_upload_dir=/up",
            "--check-config",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("anon_upload_dir = /up has no effect without write_enable = yes"),
        "{err}"
    );
    server.finish();
}

/// A users-file line whose hash this build's crypt(3) cannot check: bcrypt
/// on musl and glibc's libxcrypt builds without it alike would do, but no C
/// library has `$9$`.
const UNCHECKABLE: &str = "cam:$9$secretsalt$secrethash:/:rw\n";

#[test]
fn a_hash_this_build_cannot_check_stops_start_up_and_check_config() {
    let etc = TempDir::new("uncheckable");
    let ok = String::from_utf8(run("openssl", &["passwd", "-6", "pw"]).stdout).unwrap();
    let users = etc.write(
        "users",
        format!("ok:{}:/:ro\n{UNCHECKABLE}", ok.trim()).as_bytes(),
    );
    let root = etc.mkdir("root");
    let want = format!(
        "{}:2: user cam: this build's crypt(3) cannot check $9$ password hashes; make one with minftpd --hash-password",
        users.display()
    );
    let args = users_start_args(&root, &users);
    let (code, err) = start_bounded(BIN, &[&args[..], &["--check-config"]].concat());
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains(&want), "{err}");
    let (code, err) = start_bounded(BIN, &args);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains(&want), "{err}");
    assert!(!err.contains("secret"), "the hash leaked: {err}");
}

#[test]
fn sighup_with_a_hash_this_build_cannot_check_keeps_the_old_accounts() {
    let etc = TempDir::new("hup-uncheckable");
    let users = users_file(&etc, &[("old", "pw", "/", "ro")]);
    let server = Server::start(
        TempDir::new("hup-uncheckable-root"),
        &["--no-chroot", "-U", users.to_str().unwrap()],
    );
    let mut text = std::fs::read_to_string(&users).unwrap();
    text.push_str(UNCHECKABLE);
    std::fs::write(&users, text).unwrap();
    server.signal("HUP");
    assert!(
        server.wait_for_log("SIGHUP: keeping the old accounts"),
        "{}",
        server.log()
    );
    assert!(
        server
            .log()
            .contains("user cam: this build's crypt(3) cannot check $9$"),
        "{}",
        server.log()
    );
    server.connect().login("old", "pw");
    let mut cam = server.connect();
    cam.ok("USER cam", 331);
    cam.ok("PASS secret", 530);
    server.finish();
}
