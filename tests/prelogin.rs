//! The places for connections not logged in yet, under attack: clients that
//! time their reconnects, from several addresses, against a newcomer from
//! another (issue 17, item 1). Every loop is bounded in count and time.

use crate::common::*;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn root() -> TempDir {
    let root = TempDir::new("prelogin");
    root.write("inside.txt", b"inside");
    root
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// An attacker at `from`: connects every `pace`, keeps every connection the
/// server greets with 220 (never logging in), until `stop` or `rounds`.
/// Returns how many connections were greeted.
fn attacker(
    from: IpAddr,
    to: SocketAddr,
    pace: Duration,
    rounds: usize,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        let mut held = std::collections::VecDeque::new();
        let mut greeted = 0;
        let until = Instant::now() + Duration::from_secs(60);
        for _ in 0..rounds {
            if stop.load(Ordering::SeqCst) || Instant::now() > until {
                break;
            }
            let ftp = Ftp::over(connect_from(from, to));
            if ftp.greeting.code == 220 {
                greeted += 1;
                held.push_back(ftp);
                // Old ones were closed by the server by now: bound the fds.
                if held.len() > 30 {
                    held.pop_front();
                }
            }
            std::thread::sleep(pace);
        }
        greeted
    })
}

/// A newcomer from a third address tries `tries` times, `pace` apart; how
/// many times it was greeted and logged in.
fn newcomer_logins(from: IpAddr, to: SocketAddr, tries: usize, pace: Duration) -> usize {
    let mut served = 0;
    for _ in 0..tries {
        std::thread::sleep(pace);
        let mut ftp = Ftp::over(connect_from(from, to));
        if ftp.greeting.code != 220 {
            continue;
        }
        ftp.login("anonymous", "x");
        ftp.ok("PWD", 257);
        ftp.ok("QUIT", 221);
        served += 1;
    }
    served
}

/// In round `round` of a test, a newcomer from `from` must be greeted; it
/// logs in and leaves.
pub fn newcomer_served(server: &Server, from: IpAddr, round: usize) {
    let mut ftp = Ftp::over(connect_from(from, server.addr));
    assert_eq!(
        ftp.greeting.code,
        220,
        "round {round}: {}\n{}",
        ftp.greeting.text,
        server.log()
    );
    ftp.login("anonymous", "x");
    ftp.ok("QUIT", 221);
}

/// Two addresses reconnecting 20 times a second take every waiting place
/// the moment it can be taken (first come, first served let them win every
/// freed place: the newcomer got in on about one try in ten). The places
/// are shared between addresses now: an attacker that holds as many as any
/// other address cannot take more by timing, and the newcomer takes one from
/// the busiest address on every try.
#[test]
fn a_newcomer_gets_in_while_two_addresses_reconnect_on_schedule() {
    // Five waiting places; a waiting connection is stale after 2 s.
    let server = Server::start(
        root(),
        &[
            "-A",
            "--max-clients",
            "10",
            "--max-per-ip",
            "20",
            "-o",
            "login_timeout=4",
        ],
    );
    let stop = Arc::new(AtomicBool::new(false));
    let pace = Duration::from_millis(50);
    let attackers: Vec<_> = ["127.0.0.2", "127.0.0.3"]
        .iter()
        .map(|from| attacker(ip(from), server.addr, pace, 400, Arc::clone(&stop)))
        .collect();
    std::thread::sleep(Duration::from_millis(500)); // the places are full
    let served = newcomer_logins(ip("127.0.0.4"), server.addr, 16, Duration::from_millis(400));
    stop.store(true, Ordering::SeqCst);
    let greeted: usize = attackers.into_iter().map(|a| a.join().unwrap()).sum();
    assert!(
        greeted >= 5,
        "the attackers held the places ({greeted} greeted)"
    );
    assert!(
        served >= 15,
        "the newcomer got in on {served} of 16 tries\n{}",
        server.log()
    );
    server.finish();
}

/// A connection from `from` that sends commands and reads none of the
/// replies, until the server has stopped reading them: it is blocked writing
/// a reply. (Bounded: 120 MB at most, half a second per write.)
fn flood_unread(from: IpAddr, to: SocketAddr) -> std::net::TcpStream {
    use std::io::Write;
    let mut stream = connect_from(from, to);
    stream
        .set_write_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let chunk = b"HELP\r\n".repeat(10_000);
    for _ in 0..2000 {
        if stream.write_all(&chunk).is_err() {
            return stream;
        }
    }
    panic!("the server read 120 MB of commands without stalling on its replies");
}

/// Four workers, two waiting places. An address keeps two connections that
/// never read their replies, so the server is blocked writing to them; a
/// newcomer from another address takes a place from it, logs in and leaves,
/// five times over. A session blocked in its reply used to keep its worker
/// until data_timeout (60 s here) after losing its place, so two rounds
/// filled the pool; now it gives the worker back within about a second.
#[test]
fn a_client_that_reads_no_replies_gives_its_worker_back_when_its_place_is_taken() {
    let server = Server::start(
        root(),
        &[
            "-A",
            "--max-clients",
            "4",
            "--max-per-ip",
            "10",
            "-o",
            "login_timeout=60",
            "-o",
            "data_timeout=60",
        ],
    );
    let (attacker, newcomer) = (ip("127.0.0.2"), ip("127.0.0.3"));
    let mut held = vec![flood_unread(attacker, server.addr)];
    for round in 0..5 {
        held.push(flood_unread(attacker, server.addr));
        newcomer_served(&server, newcomer, round);
    }
    drop(held);
    server.finish();
}
