//! Costs a client chooses: connections, the pool, time before login, command
//! lines, password guesses, listings. Each is bounded, and a fresh client is
//! still served after.

use super::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

#[test]
fn a_full_pool_answers_421_and_drains() {
    let server = Server::start(
        hostile_root(),
        &["-A", "--max-clients", "2", "--max-per-ip", "2"],
    );
    // Logged in: at most half the pool may wait to log in.
    let first = server.anon();
    let second = server.anon();
    assert_eq!((first.greeting.code, second.greeting.code), (220, 220));
    let third = server.connect();
    assert_eq!(third.greeting.code, 421, "{}", third.greeting.text);
    drop((first, second, third));
    still_serves(&server);
}

#[test]
fn per_address_limit() {
    let server = Server::start(
        hostile_root(),
        &["-A", "--max-clients", "5", "--max-per-ip", "1"],
    );
    let first = server.connect();
    assert_eq!(first.greeting.code, 220);
    let second = server.connect();
    assert_eq!(second.greeting.code, 421);
    assert!(
        second.greeting.text.contains("your address"),
        "{}",
        second.greeting.text
    );
    drop(first);
    still_serves(&server);
}

#[test]
fn slowloris_control_connections_time_out() {
    let server = Server::start(hostile_root(), &["-A", "-o", "idle_timeout=2"]);
    let mut ftp = server.connect();
    ftp.ctl
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut closed_with_421 = false;
    // One byte every 300 ms never completes a line; bounded to 40 bytes.
    for b in b"USER aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".iter() {
        if ftp.ctl.write_all(&[*b]).is_err() {
            break;
        }
        let mut buf = [0u8; 64];
        if let Ok(n) = ftp.ctl.read(&mut buf) {
            if n > 0 {
                closed_with_421 = buf.starts_with(b"421");
                break;
            }
        }
    }
    assert!(
        closed_with_421,
        "a trickling client must be cut off with 421"
    );
    still_serves(&server);
}

#[test]
fn random_binary_and_10000_commands_before_login() {
    let server = Server::start(hostile_root(), &["-A"]);
    let mut ftp = server.connect();
    let mut junk = Vec::new();
    let mut x: u32 = 12345;
    for _ in 0..100_000 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        junk.push((x >> 16) as u8);
    }
    // The session may answer or close; the server must not care.
    let _ = ftp.ctl.write_all(&junk);
    let _ = ftp.ctl.write_all(b"\r\n");
    drop(ftp);
    let mut ftp = server.connect();
    let mut batch = Vec::new();
    for _ in 0..10_000 {
        batch.extend_from_slice(b"LIST\r\n");
    }
    let mut writer = ftp.ctl.try_clone().unwrap();
    let sender = std::thread::spawn(move || writer.write_all(&batch));
    for _ in 0..10_000 {
        assert_eq!(ftp.reply().code, 530);
    }
    sender.join().unwrap().unwrap();
    ftp.login("anonymous", "x");
    assert_eq!(ftp.retr("inside.txt"), b"inside");
    still_serves(&server);
}

#[test]
fn brute_force_is_slowed_and_cut_off() {
    let etc = TempDir::new("brute-etc");
    let users = users_file(&etc, &[("alice", "right", "/", "ro")]);
    let server = Server::start(
        hostile_root(),
        &[
            "-A",
            "-U",
            users.to_str().unwrap(),
            "-o",
            "login_fail_delay=1",
            "-o",
            "max_login_fails=3",
        ],
    );
    let mut ftp = server.connect();
    let started = Instant::now();
    ftp.ok("USER alice", 331);
    ftp.ok("PASS wrong1", 530);
    // The first failure waits login_fail_delay (1 s) before answering.
    assert!(started.elapsed() >= Duration::from_secs(1));
    ftp.ok("USER nosuchuser", 331);
    ftp.ok("PASS wrong2", 530);
    // The delay grows: 1 s, then 2 s, for known and unknown names alike.
    assert!(started.elapsed() >= Duration::from_secs(3));
    ftp.ok("USER alice", 331);
    ftp.ok("PASS wrong3", 421);
    ftp.expect_closed();
    assert!(server.wait_for_log("login failed: peer=127.0.0.1 user=\"alice\""));
    assert!(server
        .log()
        .contains("login failed: peer=127.0.0.1 user=\"nosuchuser\""));
    let mut ftp = server.connect();
    ftp.login("alice", "right");
}

#[test]
fn five_hundred_silent_connections() {
    let server = Server::start(hostile_root(), &["-A"]);
    let mut silent = Vec::new();
    for _ in 0..500 {
        if let Ok(s) = TcpStream::connect_timeout(&server.addr, TIMEOUT) {
            silent.push(s);
        }
    }
    assert!(
        silent.len() >= 450,
        "only {} connections were accepted",
        silent.len()
    );
    drop(silent);
    still_serves(&server);
}

#[test]
fn sigterm_lets_transfers_finish_and_tells_idle_sessions() {
    let root = hostile_root();
    root.write("slow.bin", &pattern(3_000_000));
    let mut server = Server::start(
        root,
        &[
            "-A",
            "-o",
            "anon_max_rate=2000000",
            "-o",
            "shutdown_grace=20",
        ],
    );
    let mut idle = server.anon();
    let mut busy = server.anon();
    busy.ok("TYPE I", 200);
    let mut data = busy.epsv();
    busy.ok("RETR slow.bin", 150);
    let mut first = vec![0u8; 1000];
    data.read_exact(&mut first).unwrap();
    server.signal("TERM");
    assert_eq!(idle.reply().code, 421, "an idle session is told");
    let mut rest = Vec::new();
    data.read_to_end(&mut rest).unwrap();
    first.extend_from_slice(&rest);
    assert_eq!(first, pattern(3_000_000), "the running transfer finished");
    assert_eq!(busy.reply().code, 226);
    let status = server.wait_exit().expect("server exits after its sessions");
    assert!(status.success(), "{status:?}");
    let listener = TcpListener::bind(server.addr);
    assert!(listener.is_ok(), "the port is free again");
}

/// STAT of a large directory is streamed to the control connection, not
/// built in memory (review finding 5).
#[test]
fn stat_of_a_large_directory_is_streamed() {
    let root = hostile_root();
    let big = root.mkdir("big");
    for n in 0..60_000 {
        std::fs::File::create(big.join(format!("entry-with-a-longish-name-{n:06}"))).unwrap();
    }
    let server = Server::start(root, &["-A"]);
    let mut ftp = server.anon();
    assert_eq!(ftp.cmd("STAT /inside.txt").code, 213);
    let before = status_kb(&server, "VmHWM");
    let reply = ftp.cmd("STAT /big");
    assert_eq!(reply.code, 213);
    assert_eq!(reply.text.lines().count(), 60_000 + 2);
    assert!(
        reply.text.ends_with("213 End of status.\r\n"),
        "{}",
        &reply.text[reply.text.len() - 80..]
    );
    let grown = status_kb(&server, "VmHWM").saturating_sub(before);
    // The listing is about 4.5 MB; building it even once would show. What
    // may grow is the buffer that sorts the names: 60,000 x (32 + 5) bytes.
    assert!(
        grown < 3072,
        "STAT of 60,000 entries grew the peak RSS by {grown} kB"
    );
    still_serves(&server);
}

/// A connection that never logs in is closed after login_timeout, however
/// busy it keeps itself (review finding 10).
#[test]
fn a_connection_that_never_logs_in_is_closed() {
    let server = Server::start(hostile_root(), &["-A", "-o", "login_timeout=1"]);
    let mut idler = server.connect();
    let deadline = Instant::now() + TIMEOUT;
    let last = loop {
        let reply = idler.cmd("NOOP");
        if reply.code != 200 || Instant::now() > deadline {
            break reply;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(last.code, 421, "{}", last.text);
    assert!(last.text.contains("Login timeout"), "{}", last.text);
    still_serves(&server);
}

/// At most half the pool waits to log in: clients that never log in cannot
/// keep out those who do (review finding 10).
#[test]
fn sessions_not_logged_in_get_half_the_pool() {
    let server = Server::start(
        hostile_root(),
        &["-A", "--max-clients", "4", "--max-per-ip", "4"],
    );
    let waiting: Vec<Ftp> = (0..2).map(|_| server.connect()).collect();
    assert!(waiting.iter().all(|f| f.greeting.code == 220));
    let refused = server.connect();
    assert_eq!(refused.greeting.code, 421, "{}", refused.greeting.text);
    assert!(
        refused.greeting.text.contains("waiting to log in"),
        "{}",
        refused.greeting.text
    );
    let mut ftp = waiting.into_iter().next().unwrap();
    ftp.login("anonymous", "x");
    // One place freed by the login: a newcomer is served and logs in.
    still_serves(&server);
    assert_eq!(ftp.retr("/inside.txt"), b"inside");
}

/// A client that saw 221 and connects again at once is never refused for
/// the session it just ended (issue 11, item 5): with max_per_ip clients
/// reconnecting as fast as they can, none ever sees 421.
#[test]
fn quick_reconnects_within_max_per_ip_are_never_refused() {
    let server = Server::start(hostile_root(), &["-A", "--max-per-ip", "4"]);
    let addr = server.addr;
    let clients: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || {
                for round in 0..100 {
                    let mut ftp = Ftp::connect(addr);
                    assert_eq!(
                        ftp.greeting.code, 220,
                        "round {round}: {}",
                        ftp.greeting.text
                    );
                    ftp.login("anonymous", "x");
                    ftp.ok("QUIT", 221);
                }
            })
        })
        .collect();
    for client in clients {
        client.join().expect("a reconnect was refused");
    }
    still_serves(&server);
}

/// A line that passes MAX_LINE without ending gets 500 and the connection is
/// closed at once, instead of holding a worker until the idle timeout
/// (issue 11, item 3). A long line that ends keeps the session.
#[test]
fn an_endless_command_line_is_answered_and_closed() {
    let server = Server::start(hostile_root(), &["-A"]);
    let mut ftp = server.connect();
    let mut long = vec![b'A'; 5000];
    long.extend_from_slice(b"\r\n");
    ftp.send_raw(&long); // one write: the line ends within what is read
    assert_eq!(ftp.reply().code, 500);
    ftp.ok("NOOP", 200);
    let mut flood = server.connect();
    let chunk = [b'x'; 64 * 1024];
    for _ in 0..16 {
        if flood.ctl.write_all(&chunk).is_err() {
            break; // closed by the server mid-flood: what we want
        }
    }
    let reply = flood.try_reply().expect("a 500 before the close");
    assert_eq!(reply.code, 500, "{}", reply.text);
    assert!(reply.text.contains("too long"), "{}", reply.text);
    flood.expect_closed();
    assert!(server.wait_for_log("without an end of line; closing"));
    // A megabyte line with its end of line at the end is cut off the same way.
    let mut mega = server.connect();
    let mut line = vec![b'A'; 1 << 20];
    line.extend_from_slice(b"\r\n");
    let _ = mega.ctl.write_all(&line); // the server may close mid-write
    assert_eq!(mega.try_reply().map(|r| r.code), Some(500));
    mega.expect_closed();
    still_serves(&server);
}

/// Connections that never log in hold at most half the pool, and once that
/// half is full a new client still gets in: the connection that has waited
/// longest (half the login_timeout) is closed to make room (review finding 10).
#[test]
fn idle_connections_make_room_for_a_new_client() {
    let server = Server::start(
        hostile_root(),
        &["-A", "--max-clients", "4", "-o", "login_timeout=10"],
    );
    let mut idlers: Vec<Ftp> = (0..2).map(|_| server.connect()).collect();
    assert!(idlers.iter().all(|f| f.greeting.code == 220));
    let young = server.connect();
    assert_eq!(young.greeting.code, 421, "{}", young.greeting.text);
    std::thread::sleep(Duration::from_millis(5500)); // past half the login_timeout
    let mut newcomer = server.connect();
    assert_eq!(newcomer.greeting.code, 220, "{}", newcomer.greeting.text);
    newcomer.login("anonymous", "x");
    assert_eq!(newcomer.retr("/inside.txt"), b"inside");
    let closed = idlers[0].reply();
    assert_eq!(closed.code, 421, "{}", closed.text);
    assert!(closed.text.contains("waiting to log in"), "{}", closed.text);
    idlers[0].expect_closed();
    idlers[1].ok("NOOP", 200);
}
