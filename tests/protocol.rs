//! Exact replies to the command set, spoken through the small test client.

use crate::common::*;
use std::io::{Read, Write};

fn served() -> Server {
    let root = TempDir::new("proto");
    root.write("a.txt", b"alpha\n");
    root.write(".hidden", b"h");
    root.write("dir/inner.txt", b"inner");
    Server::start(root, &["--anonymous"])
}

#[test]
fn greeting_login_and_quit() {
    let server = served();
    let mut ftp = server.connect();
    assert_eq!(ftp.greeting.code, 220);
    ftp.ok("USER anonymous", 331);
    ftp.ok("PASS guest@", 230);
    ftp.ok("QUIT", 221);
    ftp.expect_closed();
}

#[test]
fn commands_before_login() {
    let server = served();
    let mut ftp = server.connect();
    for line in [
        "LIST",
        "RETR a.txt",
        "CWD dir",
        "PASV",
        "PWD",
        "STOR x",
        "FROB",
        "SITE HELP",
    ] {
        assert_eq!(ftp.cmd(line).code, 530, "{line}");
    }
    assert_eq!(ftp.cmd("SYST").text, "215 UNIX Type: L8\r\n");
    ftp.ok("NOOP", 200);
    ftp.ok("OPTS UTF8 ON", 200);
    ftp.ok("FEAT", 211);
    ftp.ok("HELP", 214);
    ftp.ok("HOST localhost", 220);
    ftp.ok("AUTH TLS", 502);
    ftp.ok("PASS x", 503);
}

#[test]
fn feat_lists_the_extensions() {
    let server = served();
    let mut ftp = server.connect();
    let feat = ftp.ok("FEAT", 211).text;
    assert!(
        feat.starts_with("211-") && feat.ends_with("211 End\r\n"),
        "{feat}"
    );
    for f in [
        "EPRT",
        "EPSV",
        "MDTM",
        "MFMT",
        "MLST type*;size*;modify*",
        "PASV",
        "REST STREAM",
        "SIZE",
        "TVFS",
        "UTF8",
    ] {
        assert!(
            feat.contains(&format!("\r\n {f}")),
            "FEAT lacks {f}: {feat}"
        );
    }
}

#[test]
fn directories_and_the_virtual_root() {
    let server = served();
    let mut ftp = server.anon();
    assert_eq!(
        ftp.cmd("PWD").text,
        "257 \"/\" is the current directory.\r\n"
    );
    ftp.ok("CWD dir", 250);
    assert!(ftp.cmd("XPWD").text.starts_with("257 \"/dir\""));
    ftp.ok("CDUP", 250);
    ftp.ok("CDUP", 250);
    ftp.ok("CWD ../../..", 250);
    assert!(ftp.cmd("PWD").text.starts_with("257 \"/\""));
    ftp.ok("CWD nowhere", 550);
    ftp.ok("CWD a.txt", 550);
    ftp.ok("XCWD /dir", 250);
    assert_eq!(ftp.retr("inner.txt"), b"inner");
}

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
fn size_mdtm_mlst() {
    let server = served();
    let mut ftp = server.anon();
    assert_eq!(ftp.cmd("SIZE a.txt").text, "213 6\r\n");
    ftp.ok("SIZE missing", 550);
    ftp.ok("SIZE dir", 550);
    let mdtm = ftp.ok("MDTM a.txt", 213).text;
    assert_eq!(mdtm.trim().len(), "213 YYYYMMDDHHMMSS".len(), "{mdtm}");
    ftp.ok("MDTM missing", 550);
    let mlst = ftp.ok("MLST a.txt", 250).text;
    assert!(mlst.contains(" type=file;size=6;modify="), "{mlst}");
    assert!(mlst.contains(";perm=r;unix.mode=0666;unique="), "{mlst}");
    assert!(mlst.contains("; a.txt\r\n"), "{mlst}");
    ftp.ok("MLST missing", 550);
}

#[test]
fn listings() {
    let server = served();
    let mut ftp = server.anon();
    let list = ftp.list("LIST");
    assert!(
        list.lines()
            .any(|l| l.starts_with("-rw-rw-rw-") && l.ends_with(" a.txt")),
        "{list}"
    );
    assert!(
        list.lines()
            .any(|l| l.starts_with("drwxrwxrwx") && l.ends_with(" dir")),
        "{list}"
    );
    assert!(!list.contains(".hidden"));
    assert!(list.lines().all(|l| !l.is_empty()) && list.ends_with("\r\n"));
    assert!(ftp.list("LIST -la").contains(" .hidden\r\n"));
    assert_eq!(
        ftp.list("LIST -l dir").trim_end().rsplit(' ').next(),
        Some("inner.txt")
    );
    let mut names: Vec<String> = ftp.list("NLST").lines().map(String::from).collect();
    names.sort();
    assert_eq!(names, ["a.txt", "dir"]);
    let mlsd = ftp.list("MLSD");
    assert!(mlsd.contains("type=cdir;"), "{mlsd}");
    assert!(
        mlsd.contains("type=file;size=6;") && mlsd.contains("; a.txt\r\n"),
        "{mlsd}"
    );
    assert!(
        mlsd.contains("type=dir;") && mlsd.contains("; dir\r\n"),
        "{mlsd}"
    );
    assert!(mlsd.contains("; .hidden\r\n"));
    for line in ["LIST nowhere", "NLST nowhere", "MLSD nowhere"] {
        ftp.refused_keeps_data(line, 550);
    }
}

#[test]
fn stat_on_the_control_connection() {
    let server = served();
    let mut ftp = server.anon();
    let stat = ftp.ok("STAT", 211).text;
    assert!(stat.contains("Logged in as anonymous"), "{stat}");
    let listing = ftp.ok("STAT dir", 213).text;
    assert!(
        listing.contains(" inner.txt\r\n") && listing.ends_with("213 End of status.\r\n"),
        "{listing}"
    );
    ftp.ok("STAT missing", 550);
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
fn rein_logs_out() {
    let server = served();
    let mut ftp = server.anon();
    ftp.ok("REIN", 220);
    ftp.ok("PWD", 530);
    ftp.login("ftp", "x");
    ftp.ok("PWD", 257);
}

#[test]
fn over_long_lines_get_500_and_the_session_continues() {
    let server = served();
    let mut ftp = server.anon();
    let mut line = vec![b'A'; 6000];
    line.extend_from_slice(b"\r\n");
    ftp.send_raw(&line);
    assert_eq!(ftp.reply().code, 500);
    ftp.ok("NOOP", 200);
    // A line of exactly 4096 bytes is still a line.
    let long_path = format!("SIZE {}b", "b/".repeat(2045));
    assert_eq!(long_path.len(), 4096);
    assert_eq!(ftp.cmd(&long_path).code, 550);
}

#[test]
fn telnet_interrupt_before_abor_and_bare_lf() {
    let server = served();
    let mut ftp = server.anon();
    ftp.send_raw(b"\xff\xf4\xff\xf2ABOR\r\n");
    assert_eq!(ftp.reply().code, 225);
    ftp.send_raw(b"NOOP\n");
    assert_eq!(ftp.reply().code, 200);
}

#[test]
fn idle_sessions_are_closed_with_421() {
    let server = Server::start(TempDir::new("idle"), &["-A", "-o", "idle_timeout=1"]);
    let mut ftp = server.anon();
    let reply = ftp.reply();
    assert_eq!(reply.code, 421, "{}", reply.text);
    ftp.expect_closed();
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
fn mkdir_quotes_names() {
    let root = TempDir::new("mkd");
    let dir = TempDir::new("mkd-users");
    let users = users_file(&dir, &[("w", "pw", "/", "rw")]);
    let server = Server::start(root, &["-w", "-U", users.to_str().unwrap()]);
    let mut ftp = server.connect();
    ftp.login("w", "pw");
    assert_eq!(ftp.cmd("MKD a\"b").text, "257 \"/a\"\"b\" created.\r\n");
    assert!(server.root.path().join("a\"b").is_dir());
    ftp.ok("MKD a\"b", 550);
    ftp.ok("RMD a\"b", 250);
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
fn opts_mlst_chooses_the_facts() {
    let server = served();
    let mut ftp = server.anon();
    assert_eq!(
        ftp.cmd("OPTS MLST type;size;").text,
        "200 MLST OPTS type;size;\r\n"
    );
    let mlst = ftp.ok("MLST a.txt", 250).text;
    assert!(mlst.contains("\r\n type=file;size=6; a.txt\r\n"), "{mlst}");
    let mlsd = ftp.list("MLSD dir");
    assert_eq!(
        mlsd.lines()
            .filter(|l| l.ends_with(" inner.txt"))
            .collect::<Vec<_>>(),
        ["type=file;size=5; inner.txt"]
    );
    assert_eq!(ftp.cmd("OPTS MLST").text, "200 MLST OPTS \r\n");
    assert!(ftp.ok("MLST a.txt", 250).text.contains("\r\n  a.txt\r\n"));
    ftp.ok("OPTS FROB", 501);
}

/// A server whose whole root a named user `rw` (password `pw`) may write.
fn writable(root: TempDir) -> (Server, TempDir) {
    rw_server(root, "pw", &[])
}

fn set_mtime(path: &std::path::Path, unix_secs: u64) {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix_secs);
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(time)
        .unwrap();
}

#[test]
fn a_missing_path_is_550_for_every_command_that_names_one() {
    let root = TempDir::new("missing");
    root.write("f.txt", b"f");
    root.mkdir("d");
    // A writer, so that 550 cannot come from a missing permission.
    let (server, _etc) = writable(root);
    let mut ftp = server.connect();
    ftp.login("rw", "pw");
    for line in [
        "MLST nope",
        "CWD nope",
        "SIZE nope",
        "MDTM nope",
        "DELE nope",
        "RNFR nope",
        "RMD nope",
        "SITE CHMOD 644 nope",
        "MFMT 20200101000000 nope",
        "SIZE nope/f.txt",
        "DELE d",
        "RMD f.txt",
    ] {
        let reply = ftp.cmd(line);
        assert_eq!(reply.code, 550, "{line}: {}", reply.text);
    }
    ftp.ok("TYPE I", 200);
    for line in ["RETR nope", "RETR d", "LIST nope", "NLST nope", "MLSD nope"] {
        ftp.refused_keeps_data(line, 550);
    }
    // Storing into a directory that does not exist fails too and creates nothing.
    let reply = ftp.upload("STOR nope/new.txt", b"x");
    assert!(matches!(reply.code, 550 | 553), "{}", reply.text);
    assert_eq!(server.root.names(""), ["d", "f.txt"]);
    ftp.ok("RNTO f.txt", 503);
    ftp.ok("NOOP", 200);
}

#[test]
fn mlsd_lines_carry_every_fact() {
    let server = served();
    let mut ftp = server.anon();
    let mlsd = ftp.list("MLSD");
    let lines: Vec<&str> = mlsd.lines().collect();
    assert!(lines.len() >= 4, "{mlsd}");
    for line in &lines {
        let (facts, name) = line.split_once(' ').expect("facts, space, name");
        let facts: std::collections::HashMap<String, String> = facts
            .split(';')
            .filter(|f| !f.is_empty())
            .map(|f| {
                let (k, v) = f.split_once('=').expect("fact=value");
                (k.to_ascii_lowercase(), v.to_string())
            })
            .collect();
        for key in ["type", "modify", "perm", "unix.mode", "unique"] {
            assert!(facts.contains_key(key), "{name}: no {key} in {line}");
        }
        let modify = &facts["modify"];
        assert!(
            modify.len() >= 14 && modify[..14].bytes().all(|b| b.is_ascii_digit()),
            "{line}"
        );
        let mode = &facts["unix.mode"];
        assert!(
            mode.len() == 4 && mode.bytes().all(|b| (b'0'..=b'7').contains(&b)),
            "{line}"
        );
        match name {
            "a.txt" => {
                assert_eq!(facts["type"], "file", "{line}");
                assert_eq!(facts["size"], "6", "{line}");
                assert_eq!(facts["unix.mode"], "0666", "{line}");
                assert!(facts["perm"].contains('r'), "{line}");
            }
            "dir" => {
                assert_eq!(facts["type"], "dir", "{line}");
                assert!(facts["perm"].contains('l'), "{line}");
            }
            _ => {}
        }
    }
    let unique = |name: &str| {
        lines
            .iter()
            .find(|l| l.ends_with(&format!(" {name}")))
            .and_then(|l| l.split(';').find(|f| f.starts_with("unique=")))
            .map(String::from)
    };
    assert!(unique("a.txt").is_some() && unique("a.txt") != unique("dir"));
    // MLST of a directory describes the directory itself.
    let mlst = ftp.ok("MLST dir", 250).text;
    assert!(mlst.contains("type=dir;"), "{mlst}");
    assert!(
        mlst.starts_with("250-") && mlst.lines().last().unwrap().starts_with("250 "),
        "{mlst}"
    );
}

#[test]
fn mdtm_mlst_and_list_show_the_real_time() {
    let root = TempDir::new("time");
    let old = root.write("old.txt", b"old");
    // 2001-02-03 12:00:00 UTC: far older than six months.
    set_mtime(&old, 981_201_600);
    root.write("new.txt", b"new");
    let server = Server::start(root, &["-A"]);
    let mut ftp = server.anon();
    assert_eq!(ftp.cmd("MDTM old.txt").text, "213 20010203120000\r\n");
    let mlst = ftp.ok("MLST old.txt", 250).text;
    assert!(mlst.contains("modify=20010203120000"), "{mlst}");
    let list = ftp.list("LIST");
    let old_line = list
        .lines()
        .find(|l| l.ends_with(" old.txt"))
        .expect("old.txt listed");
    assert!(old_line.contains(" Feb  3  2001 old.txt"), "{old_line}");
    let new_line = list
        .lines()
        .find(|l| l.ends_with(" new.txt"))
        .expect("new.txt listed");
    // A recent entry shows the time of day instead of the year: "Mon dd HH:MM name".
    let fields: Vec<&str> = new_line.split_whitespace().collect();
    let time = fields[fields.len() - 2];
    assert!(time.len() == 5 && time.as_bytes()[2] == b':', "{new_line}");
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

#[test]
fn rename_delete_and_directory_commands() {
    let root = TempDir::new("rename");
    root.write("a.txt", b"A");
    root.write("b.txt", b"B");
    let (server, _etc) = writable(root);
    let mut ftp = server.connect();
    ftp.login("rw", "pw");
    ftp.ok("RNFR a.txt", 350);
    ftp.ok("RNTO c.txt", 250);
    assert_eq!(server.root.read("c.txt"), b"A");
    assert!(!server.root.path().join("a.txt").exists());
    // RNTO needs an RNFR before it, and a rename is used up once done.
    ftp.ok("RNTO d.txt", 503);
    ftp.ok("RNFR c.txt", 350);
    ftp.ok("RNTO a.txt", 250);
    ftp.ok("RNTO c.txt", 503);
    assert_eq!(server.root.read("a.txt"), b"A");
    assert!(ftp.cmd("XMKD sub").text.starts_with("257 \"/sub\""));
    ftp.ok("XCWD sub", 250);
    assert!(ftp
        .cmd("MKD deeper")
        .text
        .starts_with("257 \"/sub/deeper\""));
    ftp.ok("XCUP", 250);
    assert!(server.root.path().join("sub/deeper").is_dir());
    // A directory that is not empty stays.
    ftp.ok("RMD sub", 550);
    ftp.ok("XRMD sub/deeper", 250);
    ftp.ok("RMD sub", 250);
    assert!(!server.root.path().join("sub").exists());
    ftp.ok("DELE b.txt", 250);
    assert_eq!(server.root.names(""), ["a.txt"]);
}

#[test]
fn rnto_must_immediately_follow_rnfr() {
    // RFC 959 4.1.3: RNTO "must be immediately preceded by a rename from command".
    let root = TempDir::new("rnto");
    root.write("a.txt", b"A");
    let (server, _etc) = writable(root);
    let mut ftp = server.connect();
    ftp.login("rw", "pw");
    ftp.ok("RNFR a.txt", 350);
    ftp.ok("NOOP", 200);
    ftp.ok("RNTO b.txt", 503);
    assert_eq!(server.root.names(""), ["a.txt"]);
}

#[test]
fn site_chmod_umask_idle_and_mfmt() {
    let root = TempDir::new("site");
    let (server, _etc) = writable(root);
    let mut ftp = server.connect();
    ftp.login("rw", "pw");
    // The file is the server's own: when the tests run as root the server
    // runs as an unprivileged account, which may only chmod what it owns.
    ftp.stor("f.txt", b"f");
    assert!(ftp.ok("SITE HELP", 214).text.contains("CHMOD"));
    let chmod = ftp.cmd("SITE CHMOD 640 f.txt");
    assert_eq!(mode_of(&server.root.path().join("f.txt")), 0o640);
    ftp.ok("SITE CHMOD 99x f.txt", 501);
    ftp.ok("SITE UMASK 077", 200);
    ftp.stor("private.txt", b"p");
    let mode = mode_of(&server.root.path().join("private.txt"));
    assert_eq!(mode & 0o077, 0, "umask 077 left mode {mode:o}");
    ftp.ok("SITE IDLE 120", 200);
    ftp.ok("SITE FROB", 500);
    let reply = ftp.ok("MFMT 20200101000000 f.txt", 213);
    assert!(reply.text.contains("20200101000000"), "{}", reply.text);
    assert_eq!(mtime_secs(&server.root.path().join("f.txt")), 1_577_836_800);
    assert_eq!(ftp.cmd("MDTM f.txt").text, "213 20200101000000\r\n");
    ftp.ok("MFMT 2020 f.txt", 501);
    // RFC 959 5.4: SITE answers 200 (or 202, 500, 501, 530), as vsftpd does.
    assert_eq!(chmod.code, 200, "SITE CHMOD: {}", chmod.text);
}

#[test]
fn help_is_a_proper_multi_line_reply() {
    let server = served();
    let mut ftp = server.anon();
    let help = ftp.ok("HELP", 214).text;
    let lines: Vec<&str> = help.lines().collect();
    assert!(lines.len() >= 2, "{help}");
    assert!(lines[0].starts_with("214-"), "{help}");
    assert!(lines.last().unwrap().starts_with("214 "), "{help}");
    for command in ["RETR", "STOR", "MLSD", "EPSV", "FEAT"] {
        assert!(help.contains(command), "HELP lacks {command}: {help}");
    }
    ftp.ok("QUIT", 221);
    // QUIT is allowed before login too.
    let mut ftp = server.connect();
    ftp.ok("QUIT", 221);
    ftp.expect_closed();
}

#[test]
fn utf8_names_work_and_names_with_line_breaks_are_not_listed() {
    let root = TempDir::new("names");
    root.write("h\u{e9}llo w\u{f6}rld.txt", b"utf8");
    root.write("bad\nname", b"x");
    root.write("bad\rname2", b"x");
    let server = Server::start(root, &["-A"]);
    let mut ftp = server.anon();
    ftp.ok("OPTS UTF8 ON", 200);
    let names = ftp.list("NLST");
    assert_eq!(names, "h\u{e9}llo w\u{f6}rld.txt\r\n");
    let list = ftp.list("LIST");
    assert_eq!(list.lines().count(), 1, "{list:?}");
    assert!(list.ends_with(" h\u{e9}llo w\u{f6}rld.txt\r\n"), "{list:?}");
    let mlsd = ftp.list("MLSD");
    assert!(!mlsd.contains("bad"), "{mlsd:?}");
    assert_eq!(ftp.retr("h\u{e9}llo w\u{f6}rld.txt"), b"utf8");
    assert_eq!(ftp.cmd("SIZE h\u{e9}llo w\u{f6}rld.txt").text, "213 4\r\n");
}

#[test]
fn anonymous_login_variants() {
    let server = served();
    for (user, pass) in [("anonymous", "a@b"), ("ftp", "x")] {
        let mut ftp = server.connect();
        ftp.ok(&format!("USER {user}"), 331);
        let reply = ftp.cmd(&format!("PASS {pass}"));
        assert_eq!(reply.code, 230, "USER {user}: {}", reply.text);
        assert_eq!(ftp.retr("a.txt"), b"alpha\n");
    }
    // Without --anonymous nobody gets in as anonymous.
    let closed = Server::start(TempDir::new("noanon"), &[]);
    let mut ftp = closed.connect();
    // Refused at USER or at PASS, either way not logged in.
    if ftp.cmd("USER anonymous").code == 331 {
        ftp.ok("PASS x", 530);
    }
    ftp.ok("PWD", 530);
}

#[test]
fn every_other_command_is_530_before_login() {
    let server = served();
    let mut ftp = server.connect();
    // The issue: anything but USER, PASS, QUIT, FEAT, SYST, HELP, NOOP, OPTS,
    // HOST and AUTH answers 530 before login.
    for line in [
        "PORT 127,0,0,1,200,10",
        "EPRT |1|127.0.0.1|51210|",
        "EPSV",
        "TYPE I",
        "MODE S",
        "STRU F",
        "RETR a.txt",
        "STOU",
        "APPE a.txt",
        "ALLO 10",
        "REST 0",
        "RNFR a.txt",
        "RNTO b.txt",
        "ABOR",
        "DELE a.txt",
        "RMD dir",
        "XRMD dir",
        "MKD new",
        "XMKD new",
        "XPWD",
        "XCWD dir",
        "CDUP",
        "XCUP",
        "NLST",
        "MLSD",
        "MLST a.txt",
        "SIZE a.txt",
        "MDTM a.txt",
        "MFMT 20200101000000 a.txt",
        "SITE CHMOD 777 a.txt",
        "STAT a.txt",
    ] {
        let reply = ftp.cmd(line);
        assert_eq!(reply.code, 530, "{line}: {}", reply.text);
    }
    assert!(!server.root.path().join("new").exists());
    assert_eq!(server.root.read("a.txt"), b"alpha\n");
    ftp.login("anonymous", "x");
    ftp.ok("NOOP", 200);
}
