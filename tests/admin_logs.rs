//! What an administrator reads in the log without -v: writes the host
//! refuses, the journal's priorities, syslog as a target, rotation.

use crate::common::*;
use std::os::unix::fs::PermissionsExt;

/// A directory the server's account cannot write: mode 0555 (as root the
/// server drops to an unprivileged account, so this holds then too).
fn locked_dir(root: &TempDir, rel: &str) {
    root.write(&format!("{rel}/old.txt"), b"old");
    let dir = root.path().join(rel);
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o555)).unwrap();
}

#[test]
fn writes_the_filesystem_refuses_are_logged_at_info_with_user_path_and_reason() {
    let root = TempDir::new("refused");
    locked_dir(&root, "cam");
    let (server, _etc) = rw_server(root, "pw", &[]);
    let mut ftp = server.login("rw", "pw");
    ftp.ok("TYPE I", 200);
    assert_eq!(ftp.upload("STOR /cam/new.jpg", b"frame").code, 550);
    ftp.ok("MKD /cam/sub", 550);
    ftp.ok("DELE /cam/old.txt", 550);
    ftp.ok("RNFR /cam/old.txt", 350);
    ftp.ok("RNTO /cam/renamed.txt", 550);
    ftp.ok("QUIT", 221);
    for (verb, path) in [
        ("STOR", "/cam/new.jpg"),
        ("MKD", "/cam/sub"),
        ("DELE", "/cam/old.txt"),
        ("RNTO", "/cam/renamed.txt"),
    ] {
        let line = format!("\"rw\" {verb} \"{path}\" refused by the filesystem: permission denied");
        assert!(
            server.wait_for_log(&line),
            "no {line:?} in:\n{}",
            server.log()
        );
    }
    // The log names the path as the client knows it, never the host's.
    assert!(
        !server.log().contains(server.root.path().to_str().unwrap()),
        "{}",
        server.log()
    );
    let dir = server.root.path().join("cam");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    server.finish();
}

/// A read-only file system and one without a free inode: the reason in the
/// log line says which.
#[test]
fn a_read_only_or_full_file_system_is_named_in_the_refusal() {
    if !is_root() {
        return skip("needs root to mount a tmpfs");
    }
    let root = TempDir::new("refused-mounts");
    let Some(_ro) = Tmpfs::mount(&root, "ro", "ro,size=64k,mode=0777") else {
        return skip("cannot mount a tmpfs here");
    };
    // One inode, the tmpfs's own root: nothing new fits.
    let Some(_full) = Tmpfs::mount(&root, "full", "size=64k,nr_inodes=1,mode=0777") else {
        return skip("cannot mount a tmpfs here");
    };
    let (server, _etc) = rw_server(root, "pw", &[]);
    let mut ftp = server.login("rw", "pw");
    ftp.ok("TYPE I", 200);
    ftp.ok("MKD /ro/d", 550);
    assert_eq!(ftp.upload("STOR /full/f", b"frame").code, 452);
    ftp.ok("QUIT", 221);
    for line in [
        "\"rw\" MKD \"/ro/d\" refused by the filesystem: read-only file system",
        "\"rw\" STOR \"/full/f\" refused by the filesystem: no space left on device",
    ] {
        assert!(
            server.wait_for_log(line),
            "no {line:?} in:\n{}",
            server.log()
        );
    }
    server.finish();
}

/// Runs the rest of the command line with JOURNAL_STREAM naming the device
/// and inode of its standard error, as systemd does for a service whose
/// standard error is the journal (`StandardError=journal`).
const ON_JOURNAL: [&str; 4] = [
    "sh",
    "-c",
    "JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2) exec \"$@\"",
    "sh",
];

/// Checks that every line of `log` has a journal priority prefix and no
/// time or pid of its own (the journal records both).
fn assert_journal_lines(log: &str) {
    for line in log.lines() {
        let (priority, message) = line
            .strip_prefix('<')
            .and_then(|rest| rest.split_once('>'))
            .unwrap_or_else(|| panic!("no <N> prefix: {line:?}\n{log}"));
        assert!(["3", "4", "6", "7"].contains(&priority), "{line}");
        assert!(
            !message.contains("minftpd["),
            "a second time and pid: {line}"
        );
    }
}

#[test]
fn on_the_journal_each_line_has_a_priority_and_no_timestamp() {
    let server = Server::start_via(&ON_JOURNAL, TempDir::new("journal"), &["-A"]);
    let mut ftp = server.anon();
    ftp.ok("QUIT", 221);
    assert!(
        server.wait_for_log("login: peer=127.0.0.1"),
        "{}",
        server.log()
    );
    assert_journal_lines(&server.log());
    assert!(server
        .log()
        .contains("<6>login: peer=127.0.0.1 user=\"anonymous\""));
    server.finish();
    // Standard error that is not the journal's stream keeps the plain format.
    let wrong = ["sh", "-c", "JOURNAL_STREAM=1:2 exec \"$@\"", "sh"];
    let server = Server::start_via(&wrong, TempDir::new("journal-not"), &["-A"]);
    assert!(!server.log().starts_with('<'), "{}", server.log());
    assert!(server.log().contains("Z minftpd["), "{}", server.log());
    server.finish();
}

/// minftpd-inetd@.service: the connection on standard input and output, the
/// journal's socket on standard error. The log goes to the journal (before,
/// a socket on standard error sent it to /dev/log, or nowhere).
#[test]
fn inetd_mode_with_standard_error_on_the_journal_logs_there() {
    use std::io::{BufRead, BufReader};
    use std::os::fd::OwnedFd;
    let root = TempDir::new("journal-inetd");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let client = std::thread::spawn(move || Ftp::connect(addr));
    let (conn, _) = listener.accept().unwrap();
    let (journal, stderr) = std::os::unix::net::UnixStream::pair().unwrap();
    let fd =
        |s: &std::net::TcpStream| std::process::Stdio::from(OwnedFd::from(s.try_clone().unwrap()));
    let mut args = ON_JOURNAL[1..].to_vec();
    let root_path = root.path().to_str().unwrap();
    args.extend([BIN, "--inetd", "-c", "/dev/null", "-A", "-r", root_path]);
    args.extend(["-o", "syslog_socket=/nonexistent/log"]);
    let _child = Kill::spawn(
        std::process::Command::new(ON_JOURNAL[0])
            .args(&args)
            .stdin(fd(&conn))
            .stdout(fd(&conn))
            .stderr(std::process::Stdio::from(OwnedFd::from(stderr)))
            .env_remove("RUST_LOG"),
    );
    drop(conn);
    let mut ftp = client.join().unwrap();
    assert_eq!(ftp.greeting.code, 220);
    ftp.login("anonymous", "x");
    ftp.ok("QUIT", 221);
    journal.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut log = String::new();
    for line in BufReader::new(journal).lines() {
        let Ok(line) = line else { break };
        log.push_str(&line);
        log.push('\n');
        if line.contains("login: peer=") {
            break;
        }
    }
    assert!(
        log.contains("<6>login: peer=127.0.0.1 user=\"anonymous\""),
        "{log:?}"
    );
    assert_journal_lines(&log);
}

/// A UNIX datagram socket in `dir` standing in for /dev/log.
fn syslog_socket(dir: &TempDir) -> (std::os::unix::net::UnixDatagram, String) {
    let path = dir.path().join("log");
    let socket = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    socket
        .set_read_timeout(Some(std::time::Duration::from_millis(200)))
        .unwrap();
    (socket, format!("syslog_socket={}", path.display()))
}

/// Datagrams from `socket` until one contains `needle` (bounded by TIMEOUT).
fn receive_until(socket: &std::os::unix::net::UnixDatagram, needle: &str) -> Vec<String> {
    let deadline = std::time::Instant::now() + TIMEOUT;
    let mut seen = Vec::new();
    while std::time::Instant::now() < deadline {
        let mut buf = [0u8; 2048];
        if let Ok(n) = socket.recv(&mut buf) {
            seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
            if seen.last().unwrap().contains(needle) {
                return seen;
            }
        }
    }
    panic!("no datagram with {needle:?} in {seen:?}");
}

/// minftpd serving `root` anonymously with `log_target = syslog` and the
/// given `syslog_socket` setting; its standard error piped.
fn spawn_syslog_target(root: &TempDir, setting: &str) -> Kill {
    Kill::spawn(
        std::process::Command::new(BIN)
            .args(["-c", "/dev/null", "-A", "-l", "127.0.0.1:0", "-r"])
            .arg(root.path())
            .args(["-o", "log_target=syslog", "-o", setting])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped()),
    )
}

/// The address of the last "listening on" datagram in `seen`.
fn listening_addr(seen: &[String]) -> std::net::SocketAddr {
    let line = seen.last().unwrap();
    line.split("listening on ")
        .nth(1)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Kills `server` and returns all it wrote on standard error.
fn stop_and_read_stderr(mut server: Kill) -> String {
    use std::io::Read;
    let _ = server.0.kill();
    let _ = server.0.wait();
    let mut stderr = String::new();
    server
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    stderr
}

#[test]
fn log_target_syslog_sends_a_standalone_servers_log_to_syslog() {
    let dir = TempDir::new("syslog-target");
    let (syslog, setting) = syslog_socket(&dir);
    let root = TempDir::new("syslog-target-root");
    let server = spawn_syslog_target(&root, &setting);
    let seen = receive_until(&syslog, "listening on ");
    let addr = listening_addr(&seen);
    assert!(seen.iter().all(|d| d.starts_with('<')), "{seen:?}");
    let mut ftp = Ftp::connect(addr);
    ftp.login("anonymous", "x");
    ftp.ok("QUIT", 221);
    receive_until(&syslog, "login: peer=127.0.0.1 user=\"anonymous\"");
    let stderr = stop_and_read_stderr(server);
    assert!(stderr.is_empty(), "{stderr}");
    // The two keys must agree: a log_file with log_target = syslog is an error.
    let (code, stderr) = start_error(&[
        "-c",
        "/dev/null",
        "--check-config",
        "-r",
        root.path().to_str().unwrap(),
        "-o",
        "log_target=syslog",
        "-o",
        "log_file=/tmp/x.log",
    ]);
    assert_ne!(code, 0);
    assert!(stderr.contains("log_target = syslog"), "{stderr}");
}

#[test]
fn a_syslog_that_cannot_be_reached_is_said_once_and_nothing_is_lost() {
    let dir = TempDir::new("syslog-gone");
    // At start: no socket at the path. Said once; the log goes to stderr.
    let missing = format!("syslog_socket={}", dir.path().join("none").display());
    let server = Server::start(
        TempDir::new("syslog-gone-root"),
        &["-A", "-o", "log_target=syslog", "-o", &missing],
    );
    for _ in 0..3 {
        server.anon().ok("QUIT", 221);
    }
    assert!(
        server.wait_for_log("login: peer=127.0.0.1"),
        "{}",
        server.log()
    );
    assert_eq!(
        server.log().matches("cannot reach syslog at").count(),
        1,
        "{}",
        server.log()
    );
    server.finish();
    // While serving: syslog goes away. Said once; the lines go to stderr.
    let (syslog, setting) = syslog_socket(&dir);
    let root = TempDir::new("syslog-gone-root2");
    let server = spawn_syslog_target(&root, &setting);
    let addr = listening_addr(&receive_until(&syslog, "listening on "));
    drop(syslog);
    for _ in 0..3 {
        let mut ftp = Ftp::connect(addr);
        ftp.login("anonymous", "x");
        ftp.ok("QUIT", 221);
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let stderr = stop_and_read_stderr(server);
    assert_eq!(
        stderr.matches("does not take log lines").count(),
        1,
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("login: peer=127.0.0.1").count(),
        3,
        "{stderr}"
    );
}
