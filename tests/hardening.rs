//! What a client can make the server spend by repeating itself: log lines
//! for refused connections, descriptors, and the time a login takes.

use crate::common::*;
use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------- log floods

/// How long a flood of refused connections lasts, and its most connections.
const FLOOD_TIME: Duration = Duration::from_secs(2);
const FLOOD_MAX: usize = 3000;

/// Connects from `from` until `FLOOD_TIME` or `FLOOD_MAX` is reached; each
/// connection is read to its end. The number of connections made.
fn flood(from: IpAddr, to: SocketAddr) -> usize {
    let start = Instant::now();
    let mut made = 0;
    while made < FLOOD_MAX && start.elapsed() < FLOOD_TIME {
        let mut conn = connect_from(from, to);
        let mut rest = Vec::new();
        let _ = conn.read_to_end(&mut rest);
        made += 1;
    }
    made
}

/// The log lines that hold `needle`.
fn lines_with(server: &Server, needle: &str) -> usize {
    server.log().lines().filter(|l| l.contains(needle)).count()
}

/// The sum of N over the "refused N more connections from WHO" lines.
fn summed(server: &Server, who: &str) -> usize {
    let tail = format!(" more connections from {who} ");
    let tail_one = format!(" more connection from {who} ");
    server
        .log()
        .lines()
        .filter(|l| l.contains(&tail) || l.contains(&tail_one))
        .filter_map(|l| {
            l.split("refused ")
                .nth(1)?
                .split(' ')
                .next()?
                .parse::<usize>()
                .ok()
        })
        .sum::<usize>()
}

/// Waits (bounded) until the summaries for `who` add up to `expected`.
fn wait_for_sum(server: &Server, who: &str, expected: usize) -> bool {
    let deadline = Instant::now() + TIMEOUT;
    while Instant::now() < deadline {
        if summed(server, who) == expected {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// A flood is logged as its first line and a count per five seconds: lines
/// allowed for `elapsed` of it, with one to spare.
fn lines_allowed(elapsed: Duration) -> usize {
    2 + elapsed.as_secs() as usize / 5
}

#[test]
fn a_flood_of_refused_connections_writes_a_bounded_number_of_lines() {
    let server = Server::start(
        TempDir::new("flood"),
        &["--anonymous", "-o", "max_per_ip=1"],
    );
    // The address's one place is taken; every further connection gets 421.
    let _held = server.anon();
    let start = Instant::now();
    let made = flood([127, 0, 0, 1].into(), server.addr);
    let elapsed = start.elapsed();
    assert!(made >= 100, "only {made} connections in {elapsed:?}");
    let full = "refused connection from 127.0.0.1: Too many connections from your address.";
    let lines = lines_with(&server, "refused");
    assert!(
        lines <= lines_allowed(elapsed),
        "{made} refusals wrote {lines} lines in {elapsed:?}"
    );
    assert_eq!(lines_with(&server, full), 1, "{}", server.log());
    // The rest are counted, and the count is written once the flood stops.
    assert!(
        wait_for_sum(&server, "127.0.0.1", made - 1),
        "{made} refusals; log:\n{}",
        server.log()
    );
    server.finish();
}

#[test]
fn a_flood_from_a_peer_not_in_proxy_from_writes_a_bounded_number_of_lines() {
    let server = Server::start(
        TempDir::new("flood"),
        &[
            "--anonymous",
            "-o",
            "proxy_protocol=yes",
            "-o",
            "proxy_from=127.0.0.1",
        ],
    );
    let start = Instant::now();
    let made = flood([127, 0, 0, 2].into(), server.addr);
    let elapsed = start.elapsed();
    assert!(made >= 100, "only {made} connections in {elapsed:?}");
    let lines = lines_with(&server, "127.0.0.2");
    assert!(
        lines <= lines_allowed(elapsed),
        "{made} refusals wrote {lines} lines in {elapsed:?}"
    );
    assert_eq!(lines_with(&server, ": not in proxy_from"), 1);
    assert!(
        wait_for_sum(&server, "127.0.0.2", made - 1),
        "{made} refusals; log:\n{}",
        server.log()
    );
    server.finish();
}

// ---------------------------------------------------------------- descriptors

/// Sessions tried against a server with 64 descriptors and 100 workers.
const LOGINS: usize = 60;

/// Connects and logs in anonymously; the reply code that ended the try (230
/// for a login) and the logged-in session.
fn try_anonymous(addr: SocketAddr) -> (u16, Option<Ftp>) {
    let mut ftp = Ftp::connect(addr);
    if ftp.greeting.code != 220 {
        return (ftp.greeting.code, None);
    }
    if ftp.cmd("USER anonymous").code != 331 {
        return (0, None);
    }
    let code = ftp.cmd("PASS guest@").code;
    (code, (code == 230).then_some(ftp))
}

#[test]
fn out_of_descriptors_is_answered_421_and_not_a_missing_home() {
    let server = Server::start_via(
        &["prlimit", "--nofile=64"],
        TempDir::new("nofile"),
        &[
            "--anonymous",
            "-o",
            "max_clients=100",
            "-o",
            "max_per_ip=100",
        ],
    );
    assert!(
        server.wait_for_log("set LimitNOFILE=617 "),
        "no start-up warning:\n{}",
        server.log()
    );
    let mut held = Vec::new();
    let mut codes = Vec::new();
    for _ in 0..LOGINS {
        let (code, ftp) = try_anonymous(server.addr);
        codes.push(code);
        held.extend(ftp);
    }
    let logged_in = codes.iter().filter(|&&c| c == 230).count();
    assert!(
        codes.iter().all(|&c| c == 230 || c == 421),
        "every try ends in 230 or 421: {codes:?}\n{}",
        server.log()
    );
    // One descriptor a session (its control connection; the root is shared).
    assert!(logged_in >= 40, "{logged_in} logins: {codes:?}");
    assert!(
        logged_in == LOGINS || server.wait_for_log("out of file descriptors"),
        "{codes:?}\n{}",
        server.log()
    );
    // The sessions that got in work.
    for ftp in held.iter_mut().take(3) {
        assert_eq!(ftp.cmd("PWD").code, 257);
    }
    drop(held);
    server.finish();
}

// ---------------------------------------------------------------- the decoy

/// A SHA-512 cost that makes one crypt(3) take about half a second: a
/// login that runs it and one that skips it differ a hundredfold and more.
const SLOW_SETTING: &[u8] = b"$6$rounds=1000000$hardeningsalt$";

/// How long USER `name` with a wrong password takes to be refused.
fn refusal_time(server: &Server, name: &str) -> Duration {
    let mut ftp = server.connect();
    assert_eq!(ftp.cmd(&format!("USER {name}")).code, 331);
    let start = Instant::now();
    assert_eq!(ftp.cmd("PASS wrong").code, 530);
    start.elapsed()
}

#[test]
fn an_unknown_name_costs_the_crypt_of_a_known_one() {
    let etc = TempDir::new("decoy");
    let hash = minftpd::sys::crypt_hash(b"right", SLOW_SETTING).expect("SHA-512 crypt");
    let users = etc.write(
        "users",
        format!("alice:{}:/:rw\n", String::from_utf8(hash).unwrap()).as_bytes(),
    );
    let server = Server::start(TempDir::new("decoy-root"), &["-U", users.to_str().unwrap()]);
    let known = refusal_time(&server, "alice");
    // Both ways a name can be unknown: not in the file, and "anonymous"
    // with anonymous logins off.
    for name in ["mallory", "anonymous"] {
        let unknown = refusal_time(&server, name);
        // Without the decoy an unknown name is refused in about a
        // millisecond; with it, like the known one. A tenth leaves room
        // for any load on the machine.
        assert!(
            unknown * 10 >= known,
            "{name}: {unknown:?} against {known:?} for a known name"
        );
    }
    server.finish();
}
