//! FTPS and the time and places of sessions not logged in (issue 17, items 2
//! and 4): a handshake that stalls must give its place and worker back when
//! the place goes to a new client, and AUTH TLS must neither add pre-login
//! time nor cut a logged-in client's handshake short.

use super::{have_all, implicit_addr, tls_server};
use crate::common::*;
use std::collections::VecDeque;
use std::net::{IpAddr, TcpStream};

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// A connection from `from` that stalls in its control handshake: on the
/// implicit listener it never sends a ClientHello; on the explicit port it
/// sends AUTH TLS, reads 234, and sends nothing more. Returns once the
/// server has admitted it.
fn stall(server: &Server, from: IpAddr, implicit: bool) -> TcpStream {
    if implicit {
        // Admitted (its place taken) before the caller goes on: the two
        // listeners' acceptors could otherwise admit in either order.
        let stream = connect_from(from, implicit_addr(server));
        let opened = format!("session opened: {}", stream.local_addr().unwrap());
        assert!(server.wait_for_log(&opened), "{}", server.log());
        return stream;
    }
    let mut ftp = Ftp::over(connect_from(from, server.addr));
    assert_eq!(ftp.greeting.code, 220, "{}", ftp.greeting.text);
    ftp.ok("AUTH TLS", 234);
    ftp.ctl
}

/// Asserts that the server closes `stream` within `CLOSE_DEADLINE` with no
/// bytes first (a read interrupted by a signal is tried again).
fn closed_soon(stream: &mut TcpStream) {
    use std::io::{ErrorKind, Read};
    let until = std::time::Instant::now() + CLOSE_DEADLINE;
    stream.set_read_timeout(Some(CLOSE_DEADLINE)).unwrap();
    let mut buf = [0u8; 64];
    while std::time::Instant::now() < until {
        match stream.read(&mut buf) {
            Ok(0) => return,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Ok(n) => panic!("{n} bytes instead of the close"),
            Err(e) => panic!("the connection was not closed: {e}"),
        }
    }
    panic!("the connection was not closed within {CLOSE_DEADLINE:?}");
}

/// Four workers, two waiting places. An address keeps two connections
/// stalled in their handshakes; a newcomer from another address takes a
/// place from it, logs in and leaves, six times over. A stalled session
/// that lost its place used to keep its worker until login_timeout (60 s
/// here), so two rounds filled the pool; now it is closed within about a
/// second, on the implicit listener and after 234 alike.
#[test]
fn a_handshake_that_stalls_gives_its_worker_back_when_its_place_is_taken() {
    if !have_all(&["openssl"]) {
        return;
    }
    let (server, _etc) = tls_server(
        TempDir::new("tls-stall"),
        &[
            "--max-clients",
            "4",
            "--max-per-ip",
            "10",
            "-o",
            "login_timeout=60",
        ],
    );
    let (attacker, newcomer) = (ip("127.0.0.2"), ip("127.0.0.3"));
    let mut stalled = VecDeque::from([stall(&server, attacker, true)]);
    for round in 0..6 {
        stalled.push_back(stall(&server, attacker, round % 2 == 1));
        crate::prelogin::newcomer_served(&server, newcomer, round);
        // The oldest stalled connection lost its place to the newcomer.
        closed_soon(&mut stalled.pop_front().unwrap());
    }
    assert!(
        server.wait_for_log("closed in its TLS handshake to make room"),
        "{}",
        server.log()
    );
    server.finish();
}

/// AUTH TLS starts the session over, but not its clock: a client that never
/// logs in is closed login_timeout (6 s) after its greeting, not a full
/// login_timeout after the handshake (which made it 10 s here).
#[test]
fn auth_tls_does_not_add_pre_login_time() {
    if !have_all(&["python3", "openssl"]) {
        return;
    }
    let (server, _etc) = tls_server(TempDir::new("tls-login-clock"), &["-o", "login_timeout=6"]);
    let script = format!(
        "import ftplib, ssl, time\n\
         ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE\n\
         f = ftplib.FTP_TLS(context=ctx, timeout=20); f.connect('127.0.0.1', {port})\n\
         start = time.monotonic()\n\
         time.sleep(4)\n\
         f.auth()\n\
         try:\n    line = f.getline()\n\
         except Exception as e:\n    line = repr(e)\n\
         print('%.1f %s' % (time.monotonic() - start, line))\n",
        port = server.port()
    );
    let out = python(&script);
    let (secs, line) = out.trim().split_once(' ').unwrap();
    let secs: f64 = secs.parse().unwrap();
    assert!(line.starts_with("421"), "{out}");
    assert!(line.contains("Login timeout"), "{out}");
    // Due at 6 s after the greeting (a second more for the read's poll).
    assert!(secs < 8.5, "closed {secs} s after the greeting: {out}");
    server.finish();
}

/// A client logged in (anonymous, tls = yes) longer than login_timeout ago
/// may still start TLS: the handshake has its own deadline, and the login
/// deadline bounds it only before login (it failed at once before).
#[test]
fn auth_tls_long_after_login_gets_its_handshake() {
    if !have_all(&["python3", "openssl"]) {
        return;
    }
    let root = TempDir::new("tls-late-auth");
    root.write("f.txt", b"late but protected");
    let (server, _etc) = tls_server(root, &["-o", "login_timeout=2"]);
    let script = format!(
        "import ftplib, ssl, time, io\n\
         ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE\n\
         f = ftplib.FTP_TLS(context=ctx, timeout=20); f.connect('127.0.0.1', {port})\n\
         ftplib.FTP.login(f, 'anonymous', 'x')\n\
         time.sleep(3)\n\
         f.auth()\n\
         f.login('rw', 'secret'); f.prot_p()\n\
         out = io.BytesIO(); f.retrbinary('RETR f.txt', out.write)\n\
         print(out.getvalue().decode())\n",
        port = server.port()
    );
    assert_eq!(python(&script).trim(), "late but protected");
    server.finish();
}
