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
