//! The built-in ban (`ban_after`, `ban_time`): failed logins from one address, across
//! connections, get that address refused at connect with 421 until the ban ends, while
//! other addresses are served; behind a balancer the client its PROXY header names is
//! banned, never the balancer. (The bounded table is a unit test in src/ban.rs.)

use crate::common::*;
use crate::proxy::{v2_tcp4, with_header, V2_LOCAL};
use std::net::IpAddr;
use std::time::{Duration, Instant};

const REFUSAL: &str = "421 Too many failed logins from your address; try again later.";

fn banning_server(extra: &[&str]) -> Server {
    let etc = TempDir::new("ban-etc");
    let users = users_file(&etc, &[("alice", "right", "/", "ro")]);
    let mut args = vec![
        "-U",
        users.to_str().unwrap(),
        "-o",
        "ban_after=3",
        "-o",
        "ban_time=2",
        "-o",
        "max_login_fails=10",
    ];
    args.extend_from_slice(extra);
    let server = Server::start(TempDir::new("ban"), &args);
    drop(etc); // the users file is read at start-up
    server
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn fail(ftp: &mut Ftp, code: u16) {
    ftp.ok("USER alice", 331);
    ftp.ok("PASS wrong", code);
}

/// A new connection gets the ban's 421 as its greeting, then end of stream.
fn expect_refused(mut ftp: Ftp) {
    assert_eq!(ftp.greeting.text.trim_end(), REFUSAL);
    ftp.expect_closed();
}

/// Connects from `from` until the greeting is 220 (the ban has ended),
/// within a bounded wait.
fn wait_until_served(connect: impl Fn() -> Ftp) -> Ftp {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let ftp = connect();
        if ftp.greeting.code == 220 {
            return ftp;
        }
        assert!(Instant::now() < deadline, "the ban never ended");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn failures_across_connections_ban_the_address_and_the_ban_ends() {
    let server = banning_server(&[]);
    let mut first = Ftp::over(connect_from(ip("127.0.0.1"), server.addr));
    fail(&mut first, 530);
    fail(&mut first, 530);
    // The third failure, on another connection, starts the ban and ends it.
    let mut second = Ftp::over(connect_from(ip("127.0.0.1"), server.addr));
    fail(&mut second, 421);
    second.expect_closed();
    assert!(server.wait_for_log("ban started: peer=127.0.0.1 failures=3 seconds=2"));
    // The first connection, opened before the ban, tries no more.
    first.ok("USER alice", 331);
    first.ok("PASS right", 421);
    first.expect_closed();

    expect_refused(Ftp::over(connect_from(ip("127.0.0.1"), server.addr)));
    // Another address is served all the while.
    let mut other = Ftp::over(connect_from(ip("127.0.0.2"), server.addr));
    other.login("alice", "right");
    other.ok("QUIT", 221);

    let mut back = wait_until_served(|| Ftp::over(connect_from(ip("127.0.0.1"), server.addr)));
    back.login("alice", "right");
    assert!(server.log().contains("ban ended: peer=127.0.0.1"));
    assert!(!server.log().contains("peer=127.0.0.2 failures"));
}

#[test]
fn failures_below_ban_after_ban_nothing() {
    let server = banning_server(&["-o", "ban_after=0"]);
    let mut ftp = server.connect();
    for _ in 0..5 {
        fail(&mut ftp, 530);
    }
    server.connect().login("alice", "right");
    assert!(!server.log().contains("ban started"));
}

#[test]
fn behind_a_balancer_the_client_is_banned_never_the_balancer() {
    let server = banning_server(&[
        "-o",
        "proxy_protocol=yes",
        "-o",
        "proxy_from=127.0.0.1",
        "-o",
        "accept_timeout=1",
    ]);
    // The balancer's own failed logins (a header naming no client) do not count.
    for _ in 0..3 {
        let mut check = with_header(&server, V2_LOCAL);
        fail(&mut check, 530);
    }
    let mut client = with_header(&server, &v2_tcp4([192, 0, 2, 7], 4000));
    fail(&mut client, 530);
    fail(&mut client, 530);
    fail(&mut client, 421);
    client.expect_closed();
    assert!(server.wait_for_log("ban started: peer=192.0.2.7 failures=3"));
    expect_refused(with_header(&server, &v2_tcp4([192, 0, 2, 7], 4001)));
    // Other clients through the same balancer, and its health checks, are served.
    with_header(&server, &v2_tcp4([192, 0, 2, 8], 4000)).login("alice", "right");
    with_header(&server, V2_LOCAL).login("alice", "right");
    assert!(!server.log().contains("ban started: peer=127.0.0.1"));
    wait_until_served(|| with_header(&server, &v2_tcp4([192, 0, 2, 7], 4002)))
        .login("alice", "right");
}
