//! Hostile data connections: bounces, passive theft, clients that vanish, reset
//! or stop reading mid-transfer, a full disk. A client controls where and when
//! its data connection goes; nothing is lost and no worker is kept.

use super::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

#[test]
fn port_and_eprt_bounces_are_refused() {
    let server = Server::start(hostile_root(), &["-A"]);
    let mut ftp = server.anon();
    ftp.ok("PORT 127,0,0,2,200,10", 500);
    ftp.ok("PORT 10,1,2,3,200,10", 500);
    ftp.ok("EPRT |1|127.0.0.2|51210|", 500);
    ftp.ok("EPRT |2|::1|51210|", 500);
    ftp.ok("PORT 127,0,0,1,0,25", 504);
    ftp.ok("EPRT |1|127.0.0.1|22|", 504);
    ftp.ok("PORT 127,0,0,1", 501);
    // No data connection was set up by any of them.
    ftp.ok("RETR inside.txt", 425);
    still_serves(&server);
}

#[test]
fn passive_connection_theft_is_refused_and_the_client_still_gets_its_file() {
    let server = Server::start(hostile_root(), &["-A"]);
    let mut ftp = server.anon();
    ftp.ok("TYPE I", 200);
    let reply = ftp.ok("EPSV", 229);
    let port: u16 = reply.text.split('|').nth(3).unwrap().parse().unwrap();
    let target = SocketAddr::from(([127, 0, 0, 1], port));
    // The thief, from 127.0.0.2, connects first.
    let thief = Thief::connect(port, "print(repr(s.recv(100)))");
    // The server meets the thief first in its accept queue when RETR comes.
    ftp.send_raw(b"RETR inside.txt\r\n");
    let mut data = TcpStream::connect_timeout(&target, TIMEOUT).unwrap();
    data.set_read_timeout(Some(TIMEOUT)).unwrap();
    assert_eq!(ftp.reply().code, 150);
    let mut got = Vec::new();
    data.read_to_end(&mut got).unwrap();
    assert_eq!(ftp.reply().code, 226);
    assert_eq!(got, b"inside");
    assert_eq!(thief.report(), "b''", "the thief got data");
    assert!(server.wait_for_log("refused passive data connection from 127.0.0.2"));
}

#[test]
fn a_client_vanishing_mid_upload_leaves_the_old_file() {
    let root = hostile_root();
    root.write("keep.bin", b"the good old file");
    let (server, _etc) = rw_server(root, "pw", &[]);
    let mut ftp = server.connect();
    ftp.login("rw", "pw");
    ftp.ok("TYPE I", 200);
    let mut data = ftp.epsv();
    ftp.ok("STOR keep.bin", 150);
    data.write_all(&pattern(1 << 20)).unwrap();
    // The client vanishes: control first, then the data connection.
    drop(ftp);
    drop(data);
    assert!(server.wait_for_log("session closed"));
    assert_eq!(server.root.read("keep.bin"), b"the good old file");
    assert_no_temp_files(&server.root, "");
    still_serves(&server);
}

#[test]
fn an_upload_cut_by_a_reset_gets_426_and_changes_nothing() {
    if !have("python3") {
        return;
    }
    let root = hostile_root();
    root.write("keep.bin", b"the good old file");
    let (server, _etc) = rw_server(root, "pw", &[]);
    // std cannot set SO_LINGER; Python can: linger {on, 0} makes close() a RST.
    let out = ftplib_session(
        &server,
        ("rw", "pw"),
        r#"
f.voidcmd('TYPE I')
conn = f.transfercmd('STOR keep.bin')
conn.sendall(b'x' * 300000)
conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
conn.close()
try:
    print(f.getresp())
except ftplib.all_errors as e:
    print(e)
print(f.sendcmd('NOOP'))
"#,
    );
    assert!(out.starts_with("426"), "{out}");
    assert!(out.contains("200 NOOP ok."), "{out}");
    assert_eq!(server.root.read("keep.bin"), b"the good old file");
    assert_no_temp_files(&server.root, "");
}

#[test]
fn a_client_vanishing_mid_download_frees_its_worker() {
    let root = hostile_root();
    root.write("big.bin", &vec![1u8; 32 << 20]);
    let server = Server::start(root, &["-A", "--max-clients", "1", "--max-per-ip", "1"]);
    let mut ftp = server.anon();
    ftp.ok("TYPE I", 200);
    let mut data = ftp.epsv();
    ftp.ok("RETR big.bin", 150);
    let mut buf = [0u8; 1000];
    data.read_exact(&mut buf).unwrap();
    drop(data);
    drop(ftp);
    assert!(server.wait_for_log("session closed"));
    assert_eq!(server.root.read("big.bin").len(), 32 << 20);
    still_serves(&server);
}

#[test]
fn a_client_that_stops_reading_times_out() {
    let root = hostile_root();
    root.write("big.bin", &vec![1u8; 64 << 20]);
    let server = Server::start(
        root,
        &[
            "-A",
            "--max-clients",
            "1",
            "--max-per-ip",
            "1",
            "-o",
            "data_timeout=1",
        ],
    );
    let mut ftp = server.anon();
    ftp.ok("TYPE I", 200);
    let data = ftp.epsv();
    ftp.ok("RETR big.bin", 150);
    // Never read: the server's send buffer fills and the transfer stalls.
    let reply = ftp.reply();
    assert_eq!(reply.code, 426, "{}", reply.text);
    ftp.ok("NOOP", 200);
    drop(data);
    ftp.ok("QUIT", 221);
    still_serves(&server);
}

#[test]
fn a_directory_renamed_during_a_download() {
    let root = hostile_root();
    root.write("dir/file.bin", &pattern(2 << 20));
    let server = Server::start(root, &["-A", "-o", "anon_max_rate=4000000"]);
    let mut ftp = server.anon();
    ftp.ok("TYPE I", 200);
    let mut data = ftp.epsv();
    ftp.ok("RETR dir/file.bin", 150);
    let mut got = vec![0u8; 1000];
    data.read_exact(&mut got).unwrap();
    std::fs::rename(
        server.root.path().join("dir"),
        server.root.path().join("moved"),
    )
    .unwrap();
    data.read_to_end(&mut got).unwrap();
    assert_eq!(ftp.reply().code, 226);
    assert_eq!(got.len(), 1000 + (2 << 20) - 1000);
    assert_eq!(&got[1000..], &pattern(2 << 20)[1000..]);
    ftp.epsv();
    ftp.ok("RETR dir/file.bin", 550);
    assert_eq!(ftp.retr("moved/file.bin"), pattern(2 << 20));
}

#[test]
fn a_full_disk_answers_452_and_keeps_the_old_file() {
    if !is_root() {
        return skip("needs root to mount a small tmpfs");
    }
    let root = hostile_root();
    let Some(_disk) = Tmpfs::mount(&root, "small", "size=256k,mode=0777") else {
        return skip("cannot mount a tmpfs here");
    };
    root.write("small/keep.bin", b"the good old file");
    let (server, _etc) = rw_server(root, "pw", &[]);
    let mut ftp = server.connect();
    ftp.login("rw", "pw");
    ftp.ok("TYPE I", 200);
    let reply = ftp.upload("STOR small/keep.bin", &pattern(1 << 20));
    assert_eq!(reply.code, 452, "{}", reply.text);
    assert_eq!(server.root.read("small/keep.bin"), b"the good old file");
    assert_eq!(
        server.root.names("small"),
        ["keep.bin"],
        "no temporary file left"
    );
    let reply = ftp.upload("APPE small/keep.bin", &pattern(1 << 20));
    assert_eq!(reply.code, 452, "{}", reply.text);
    ftp.ok("NOOP", 200);
    still_serves(&server);
}

#[test]
fn passive_theft_cannot_inject_data_into_an_upload() {
    if !have("python3") {
        return;
    }
    let root = hostile_root();
    root.write("target.bin", b"old");
    let (server, _etc) = rw_server(root, "pw", &[]);
    let mut ftp = server.connect();
    ftp.login("rw", "pw");
    ftp.ok("TYPE I", 200);
    let reply = ftp.ok("EPSV", 229);
    let port: u16 = reply.text.split('|').nth(3).unwrap().parse().unwrap();
    let target = SocketAddr::from(([127, 0, 0, 1], port));
    // The thief connects from 127.0.0.2 first and pushes its own bytes.
    let thief = Thief::connect(
        port,
        "try:\n    s.sendall(b'EVIL' * 1000)\n    print(repr(s.recv(100)))\n\
         except OSError as e:\n    print('closed', type(e).__name__)",
    );
    ftp.send_raw(b"STOR target.bin\r\n");
    let mut data = TcpStream::connect_timeout(&target, TIMEOUT).unwrap();
    let opening = ftp.reply();
    assert_eq!(opening.code, 150, "{}", opening.text);
    let good = pattern(100_000);
    data.write_all(&good).unwrap();
    drop(data);
    let done = ftp.reply();
    assert_eq!(done.code, 226, "{}", done.text);
    assert_eq!(
        server.root.read("target.bin"),
        good,
        "the upload is the client's"
    );
    let line = thief.report();
    assert!(
        line == "b''" || line.starts_with("closed"),
        "the thief's connection was not closed: {line}"
    );
}

#[test]
fn malformed_port_and_eprt_set_up_nothing() {
    let server = Server::start(hostile_root(), &["-A"]);
    let mut ftp = server.anon();
    for line in [
        "PORT 127,0,0,1,300,1",
        "PORT 127,0,0,1,4,-1",
        "PORT 127,0,0,1,4,1,9",
        "PORT 127.0.0.1.4.1",
        "PORT",
        "EPRT |1|127.0.0.1|70000|",
        "EPRT |1|127.0.0.1||",
        "EPRT |3|127.0.0.1|5000|",
        "EPRT 127.0.0.1 5000",
        "EPRT |1|localhost|5000|",
    ] {
        let reply = ftp.cmd(line);
        assert!(
            matches!(reply.code, 500 | 501 | 504 | 522),
            "{line}: {}",
            reply.text
        );
    }
    ftp.ok("RETR inside.txt", 425);
    still_serves(&server);
}

/// A client that asks for a passive transfer and hangs up before connecting
/// frees its worker at once, not after accept_timeout: otherwise EPSV, RETR
/// and a hang-up a second hold every worker with no connection open.
#[test]
fn a_client_gone_before_its_data_connection_frees_the_worker() {
    let server = Server::start(hostile_root(), &["-A", "--max-clients", "1"]);
    let mut ftp = server.anon();
    let _port = ftp.epsv_port();
    ftp.send_raw(b"RETR /inside.txt\r\n");
    drop(ftp); // gone without connecting to the data port
               // Served (and logged in) within TIMEOUT, not after accept_timeout.
    anon_when_served(&server);
}

/// ABOR while the server waits for the passive data connection is answered
/// at once (426, then 226), not after accept_timeout.
#[test]
fn abor_while_waiting_for_the_data_connection() {
    let server = Server::start(hostile_root(), &["-A"]);
    let mut ftp = server.anon();
    let _port = ftp.epsv_port();
    ftp.send_raw(b"RETR /inside.txt\r\n");
    std::thread::sleep(Duration::from_millis(200));
    ftp.send_raw(b"ABOR\r\n");
    assert_eq!(ftp.reply().code, 426);
    assert_eq!(ftp.reply().code, 226);
    assert_eq!(ftp.retr("/inside.txt"), b"inside");
}
