//! Transfers: TYPE, MODE, STRU, REST, passive and active data connections,
//! ABOR, STOU, ASCII conversion both ways, and the transfer and server logs.

use super::*;
use std::io::{Read, Write};

#[test]
fn types_modes_structures() {
    let server = served();
    let mut ftp = server.anon();
    ftp.ok("TYPE A", 200);
    ftp.ok("TYPE A N", 200);
    ftp.ok("TYPE I", 200);
    ftp.ok("TYPE L 8", 200);
    ftp.ok("TYPE E", 501);
    ftp.ok("MODE S", 200);
    ftp.ok("MODE B", 504);
    ftp.ok("STRU F", 200);
    ftp.ok("STRU R", 504);
    ftp.ok("ALLO 100", 202);
    ftp.ok("ACCT x", 202);
    ftp.ok("FROB", 500);
}

#[test]
fn rest_offsets_for_downloads() {
    let root = TempDir::new("rest");
    let data = pattern(100_000);
    root.write("p.bin", &data);
    let server = Server::start(root, &["-A"]);
    let mut ftp = server.anon();
    ftp.ok("TYPE I", 200);
    ftp.ok("REST 12345", 350);
    let (bytes, reply) = ftp.download("RETR p.bin");
    assert_eq!(reply.code, 226);
    assert_eq!(bytes, &data[12345..]);
    ftp.ok("REST x", 501);
}

#[test]
fn ascii_downloads_convert_line_ends() {
    let root = TempDir::new("ascii");
    root.write("t.txt", b"one\ntwo\r\nthree\n");
    let server = Server::start(root, &["-A"]);
    let mut ftp = server.anon();
    ftp.ok("TYPE A", 200);
    let (bytes, reply) = ftp.download("RETR t.txt");
    assert_eq!(reply.code, 226);
    assert_eq!(bytes, b"one\r\ntwo\r\nthree\r\n");
}

#[test]
fn passive_and_active_modes() {
    let root = TempDir::new("modes");
    root.write("f", b"payload");
    // Outside the ephemeral range: no other socket can be given these.
    let ports = free_ports(11);
    let range = format!("{}-{}", ports.start(), ports.end());
    let server = Server::start(root, &["-A", "--pasv-ports", &range]);
    let mut ftp = server.anon();
    ftp.ok("TYPE I", 200);
    let addr = ftp.pasv_addr();
    assert_eq!(addr.ip().to_string(), "127.0.0.1");
    assert!(ports.contains(&addr.port()), "{addr} not in {range}");
    let mut data = std::net::TcpStream::connect(addr).unwrap();
    ftp.ok("RETR f", 150);
    let mut got = Vec::new();
    data.read_to_end(&mut got).unwrap();
    assert_eq!(ftp.reply().code, 226);
    assert_eq!(got, b"payload");
    // Active: we listen, the server connects to us.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    ftp.ok(&format!("EPRT |1|127.0.0.1|{port}|"), 200);
    ftp.ok("RETR f", 150);
    let (mut conn, _) = listener.accept().unwrap();
    let mut got = Vec::new();
    conn.read_to_end(&mut got).unwrap();
    assert_eq!(ftp.reply().code, 226);
    assert_eq!(got, b"payload");
    ftp.ok("EPSV ALL", 200);
    ftp.ok("PASV", 503);
    ftp.ok(&format!("PORT 127,0,0,1,{},{}", port >> 8, port & 255), 503);
    ftp.ok("EPSV", 229);
}

#[test]
fn no_data_connection_prepared() {
    let server = served();
    let mut ftp = server.anon();
    ftp.ok("RETR a.txt", 425);
    ftp.ok("LIST", 425);
}

#[test]
fn passive_accept_times_out() {
    let root = TempDir::new("acc");
    root.write("f", b"x");
    let server = Server::start(root, &["-A", "-o", "accept_timeout=1"]);
    let mut ftp = server.anon();
    ftp.ok("EPSV", 229);
    // The data connection is never opened: 425 after accept_timeout, and the session goes on.
    ftp.ok("RETR f", 425);
    ftp.ok("NOOP", 200);
}

#[test]
fn abor_during_a_download() {
    let root = TempDir::new("abor");
    root.write("big", &vec![7u8; 64 << 20]);
    let server = Server::start(root, &["-A", "-o", "anon_max_rate=4000000"]);
    let mut ftp = server.anon();
    ftp.ok("TYPE I", 200);
    let mut data = ftp.epsv();
    ftp.ok("RETR big", 150);
    let mut buf = [0u8; 4096];
    data.read_exact(&mut buf).unwrap();
    ftp.send_raw(b"ABOR\r\n");
    assert_eq!(ftp.reply().code, 426);
    assert_eq!(ftp.reply().code, 226);
    drop(data);
    ftp.ok("NOOP", 200);
    ftp.ok("REST 67108000", 350);
    assert_eq!(ftp.retr("/big").len(), (64 << 20) - 67108000);
}

#[test]
fn stou_makes_a_new_name() {
    let root = TempDir::new("stou");
    root.write("up/f", b"old");
    let server = Server::start(root, &["-A", "-w", "-o", "anon_upload_dir=/up"]);
    let mut ftp = server.anon();
    ftp.ok("TYPE I", 200);
    let mut data = ftp.epsv();
    let opening = ftp.cmd("STOU /up/f");
    assert_eq!(opening.code, 150);
    assert!(
        opening.text.starts_with("150 FILE: f.1"),
        "{}",
        opening.text
    );
    data.write_all(b"new").unwrap();
    drop(data);
    assert_eq!(ftp.reply().code, 226);
    assert_eq!(server.root.read("up/f"), b"old");
    assert_eq!(server.root.read("up/f.1"), b"new");
}

#[test]
fn pasv_advertises_the_configured_address() {
    let server = Server::start(TempDir::new("nat"), &["-A", "--pasv-address", "192.0.2.10"]);
    let mut ftp = server.anon();
    let reply = ftp.ok("PASV", 227);
    assert!(reply.text.contains("(192,0,2,10,"), "{}", reply.text);
}

#[test]
fn transfers_are_logged_in_xferlog_format() {
    let etc = TempDir::new("xfer-etc");
    let xferlog = etc.path().join("xferlog");
    let root = TempDir::new("xfer");
    root.write("pub/a file.txt", b"12345");
    let server = Server::start(
        root,
        &["-A", "-o", &format!("xferlog_file={}", xferlog.display())],
    );
    let mut ftp = server.anon();
    assert_eq!(ftp.retr("/pub/a file.txt"), b"12345");
    ftp.ok("QUIT", 221);
    assert!(server.wait_for_log("session closed"));
    let text = std::fs::read_to_string(&xferlog).unwrap();
    let fields: Vec<&str> = text
        .lines()
        .next()
        .expect("one xferlog line")
        .split(' ')
        .filter(|f| !f.is_empty())
        .collect();
    // current-time (5 fields), transfer-time, host, size, name, type, action, direction,
    // access mode, user, service, auth method, auth user, status
    assert_eq!(fields.len(), 18, "{text}");
    assert_eq!(
        &fields[6..],
        [
            "127.0.0.1",
            "5",
            "/pub/a_file.txt",
            "b",
            "_",
            "o",
            "a",
            "anonymous",
            "ftp",
            "0",
            "*",
            "c"
        ]
    );
}

#[test]
fn a_log_file_that_cannot_be_opened_stops_start_up() {
    let root = TempDir::new("badlog");
    let (code, err) = start_error(&[
        "-c",
        "/dev/null",
        "-A",
        "-l",
        "127.0.0.1:0",
        "-r",
        root.path().to_str().unwrap(),
        "-o",
        "log_file=/nonexistent/dir/minftpd.log",
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("cannot open log file /nonexistent/dir/minftpd.log"),
        "{err}"
    );
}

#[test]
fn the_log_file_receives_the_server_log() {
    let etc = TempDir::new("logfile-etc");
    let log = etc.path().join("minftpd.log");
    let root = TempDir::new("logfile");
    // The log, "listening on" included, goes to the file: the port is read there.
    let mut child = Kill::spawn(
        std::process::Command::new(BIN)
            .args(["-c", "/dev/null", "-A", "-l", "127.0.0.1:0", "-o"])
            .arg(format!("log_file={}", log.display()))
            .arg("-r")
            .arg(root.path())
            .stderr(std::process::Stdio::piped()),
    );
    let deadline = std::time::Instant::now() + TIMEOUT;
    let mut logged = String::new();
    let mut logged_in = false;
    while std::time::Instant::now() < deadline {
        logged = std::fs::read_to_string(&log).unwrap_or_default();
        if logged.contains("login: peer=127.0.0.1 user=\"anonymous\"") {
            break;
        }
        if let (Some(addr), false) = (listening_on(&logged).first(), logged_in) {
            let mut ftp = Ftp::connect(*addr);
            ftp.login("anonymous", "x");
            ftp.ok("QUIT", 221);
            logged_in = true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let running = child.0.try_wait().unwrap();
    assert!(running.is_none(), "minftpd exited: {running:?}\n{logged}");
    let _ = child.0.kill();
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.0.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(!logged.contains("panicked"), "{logged}");
    assert!(!listening_on(&logged).is_empty(), "{logged}");
    assert!(
        logged.contains("login: peer=127.0.0.1 user=\"anonymous\""),
        "{logged}"
    );
    assert!(
        !stderr.contains("login:"),
        "the log went to stderr too: {stderr}"
    );
}

#[test]
fn ascii_uploads_convert_crlf_to_lf() {
    let root = TempDir::new("ascii-up");
    root.mkdir("up");
    // anon_umask=022: the upload is read back by anonymous below.
    let server = Server::start(
        root,
        &[
            "-A",
            "-w",
            "-o",
            "anon_upload_dir=/up",
            "-o",
            "anon_umask=022",
        ],
    );
    let mut ftp = server.anon();
    ftp.ok("TYPE A", 200);
    let reply = ftp.upload("STOR /up/t.txt", b"one\r\ntwo\r\nthree\r\n");
    assert_eq!(reply.code, 226, "{}", reply.text);
    assert_eq!(server.root.read("up/t.txt"), b"one\ntwo\nthree\n");
    // And back out as CRLF in ASCII, unchanged in binary.
    let (bytes, reply) = ftp.download("RETR /up/t.txt");
    assert_eq!(reply.code, 226);
    assert_eq!(bytes, b"one\r\ntwo\r\nthree\r\n");
    assert_eq!(ftp.retr("/up/t.txt"), b"one\ntwo\nthree\n");
}

#[test]
fn rest_then_stor_resumes_an_upload() {
    let root = TempDir::new("rest-stor");
    let data = pattern(200_000);
    root.write("part.bin", &data[..70_000]);
    let (server, _etc) = writable(root);
    let mut ftp = server.connect();
    ftp.login("rw", "pw");
    ftp.ok("TYPE I", 200);
    ftp.ok("REST 70000", 350);
    let reply = ftp.upload("STOR part.bin", &data[70_000..]);
    assert_eq!(reply.code, 226, "{}", reply.text);
    assert_eq!(server.root.read("part.bin"), data);
    // APPE adds to the end.
    let reply = ftp.upload("APPE part.bin", b"tail");
    assert_eq!(reply.code, 226, "{}", reply.text);
    assert_eq!(server.root.read("part.bin").len(), 200_004);
    // A plain STOR after all that replaces the file.
    ftp.stor("part.bin", b"short");
    assert_eq!(server.root.read("part.bin"), b"short");
}
