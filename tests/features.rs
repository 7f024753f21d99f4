//! Features that had no test of their own (issue 10 item 5): rate limits,
//! syslog, the active-mode connect timeout, xferlog lines for uploads and
//! aborted transfers, PORT and EPRT |2|, `run_as` and `chroot = no`, bad
//! socket-activation variables, SIGHUP in inetd mode, and the rw user's
//! writes checked on disk.

use crate::common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

// ------------------------------------------------------------------ max_rate

/// Rate and size of the throttled transfers: 1.5 s each at the limit.
const RATE: u64 = 100_000;
const THROTTLED_BYTES: usize = 150_000;

/// The shortest time a throttled transfer may take: 0.8 x bytes / rate
/// (a lower bound only; a slow machine may take longer).
fn min_throttled() -> Duration {
    Duration::from_secs_f64(0.8 * THROTTLED_BYTES as f64 / RATE as f64)
}

/// RETR and STOR for `ftp` (logged in) each take at least `min_throttled()`;
/// the upload goes to `upload_path` and arrives whole.
fn assert_throttled(server: &Server, ftp: &mut Ftp, upload_path: &str) {
    let data = pattern(THROTTLED_BYTES);
    let started = Instant::now();
    assert_eq!(ftp.retr("/big.bin"), data);
    let took = started.elapsed();
    assert!(took >= min_throttled(), "RETR took only {took:?}");
    let started = Instant::now();
    ftp.stor(upload_path, &data);
    let took = started.elapsed();
    assert!(took >= min_throttled(), "STOR took only {took:?}");
    assert_eq!(server.root.read(upload_path.trim_start_matches('/')), data);
}

#[test]
fn anon_max_rate_throttles_anonymous_downloads_and_uploads() {
    let root = TempDir::new("rate-anon");
    root.write("big.bin", &pattern(THROTTLED_BYTES));
    root.mkdir("upload");
    // max_rate stays unlimited: anonymous sessions must use anon_max_rate.
    let rate = format!("anon_max_rate={RATE}");
    let server = Server::start(
        root,
        &["-A", "-w", "-o", "anon_upload_dir=/upload", "-o", &rate],
    );
    let mut ftp = server.anon();
    assert_throttled(&server, &mut ftp, "/upload/up.bin");
}

#[test]
fn max_rate_throttles_named_users_downloads_and_uploads() {
    let root = TempDir::new("rate-named");
    root.write("big.bin", &pattern(THROTTLED_BYTES));
    // anon_max_rate stays unlimited: named users must use max_rate.
    let rate = format!("max_rate={RATE}");
    let (server, _etc) = rw_server(root, "pw", &["-o", &rate]);
    let mut ftp = server.connect();
    ftp.login("rw", "pw");
    assert_throttled(&server, &mut ftp, "/up.bin");
}

// ------------------------------------------------------------------ syslog and inetd mode

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Checks one datagram against RFC 3164, `<PRI>Mmm dd hh:mm:ss minftpd[PID]: MSG`,
/// with facility ftp (11); returns the severity and the message.
fn parse_rfc3164(datagram: &str, pid: u32) -> (u32, String) {
    let rest = datagram.strip_prefix('<').expect(datagram);
    let (pri, rest) = rest.split_once('>').expect(datagram);
    let pri: u32 = pri.parse().expect(datagram);
    assert_eq!(pri >> 3, 11, "facility ftp: {datagram}");
    let (stamp, rest) = rest.split_at(15);
    let month = &stamp[..3];
    assert!(MONTHS.contains(&month), "month: {datagram}");
    let day = stamp[4..6].trim_start().parse::<u32>().expect(datagram);
    assert!((1..=31).contains(&day) && &stamp[3..4] == " ", "{datagram}");
    let time: Vec<&str> = stamp[7..].split(':').collect();
    assert!(
        &stamp[6..7] == " "
            && time.len() == 3
            && time.iter().all(|t| t.len() == 2 && t.parse::<u8>().is_ok()),
        "time: {datagram}"
    );
    let message = rest
        .strip_prefix(&format!(" minftpd[{pid}]: "))
        .unwrap_or_else(|| panic!("tag minftpd[{pid}]: {datagram}"));
    (pri & 7, message.to_string())
}

#[test]
fn syslog_gets_rfc3164_lines_with_facility_ftp() {
    let dir = TempDir::new("syslog");
    let socket_path = dir.path().join("log");
    let syslog = UnixDatagram::bind(&socket_path).unwrap();
    syslog
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let root = TempDir::new("syslog-root");
    let option = format!("syslog_socket={}", socket_path.display());
    // inetd mode: standard error is the client socket, so logs go to syslog.
    let (mut child, mut ftp) = inetd(&root, &["-A", "-o", &option]);
    ftp.login("anonymous", "x");
    let pid = child.0.id();
    let mut seen = Vec::new();
    let mut login = None;
    let deadline = Instant::now() + TIMEOUT;
    while login.is_none() && Instant::now() < deadline {
        let mut buf = [0u8; 2048];
        let Ok(n) = syslog.recv(&mut buf) else {
            continue;
        };
        let datagram = String::from_utf8_lossy(&buf[..n]).into_owned();
        let (severity, message) = parse_rfc3164(&datagram, pid);
        if message == "login: peer=127.0.0.1 user=\"anonymous\"" {
            login = Some((severity, datagram.clone()));
        }
        seen.push(datagram);
    }
    let (severity, datagram) = login.unwrap_or_else(|| panic!("no login line in {seen:?}"));
    assert_eq!(severity, 6, "info: {datagram}");
    assert!(datagram.starts_with("<94>"), "{datagram}");
    ftp.ok("QUIT", 221);
    assert!(wait_exit(&mut child.0).is_some_and(|s| s.success()));
}

#[test]
fn sighup_in_inetd_mode_reloads_and_the_session_continues() {
    let root = TempDir::new("inetd-hup");
    let etc = TempDir::new("inetd-hup-etc");
    let users = users_file(&etc, &[("old", "pw", "/", "ro")]);
    let log = etc.path().join("minftpd.log");
    // Not chrooted: inside a chroot SIGHUP cannot reach the users file and
    // says to restart instead (tests/accounts.rs).
    let (mut child, mut ftp) = inetd(
        &root,
        &[
            "-U",
            users.to_str().unwrap(),
            "-o",
            "chroot=no",
            "-o",
            &format!("log_file={}", log.display()),
        ],
    );
    ftp.login("old", "pw");
    users_file(&etc, &[("old", "pw", "/", "ro"), ("new", "pw2", "/", "ro")]);
    send_signal(child.0.id(), "HUP");
    let deadline = Instant::now() + TIMEOUT;
    let mut logged = String::new();
    while !logged.contains("SIGHUP: reloaded 2 account(s)") {
        assert!(Instant::now() < deadline, "no reload logged: {logged}");
        std::thread::sleep(Duration::from_millis(20));
        logged = std::fs::read_to_string(&log).unwrap_or_default();
    }
    // The same session goes on, and a new login sees the reloaded accounts.
    ftp.ok("NOOP", 200);
    ftp.ok("REIN", 220);
    ftp.login("new", "pw2");
    ftp.ok("QUIT", 221);
    assert!(wait_exit(&mut child.0).is_some_and(|s| s.success()));
}

// ------------------------------------------------------------------ connect_timeout

/// A loopback port whose connects hang: python3 listens with backlog 0 and
/// fills the accept queue without accepting, so Linux drops further SYNs.
/// The process lives until the returned guard is dropped.
fn hanging_port() -> (Kill, u16) {
    let script = "import socket,sys\n\
l=socket.socket(); l.bind(('127.0.0.1',0)); l.listen(0)\n\
fill=[]\n\
for i in range(3):\n    c=socket.socket(); c.setblocking(False); c.connect_ex(l.getsockname()); fill.append(c)\n\
print(l.getsockname()[1], flush=True)\n\
sys.stdin.read()\n";
    let mut child = Kill(
        Command::new("python3")
            .args(["-c", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line.trim().parse().expect("port from python");
    // Prove the hang before relying on it.
    let probe = TcpStream::connect_timeout(
        &SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(500),
    );
    assert!(
        probe.is_err(),
        "a connect to the full listener on {port} did not hang"
    );
    (child, port)
}

#[test]
fn active_connect_times_out_after_connect_timeout() {
    if !have("python3") {
        return;
    }
    let (_hang, port) = hanging_port();
    let root = TempDir::new("conn-timeout");
    root.write("f", b"never sent");
    let server = Server::start(root, &["-A", "-o", "connect_timeout=2"]);
    let mut ftp = server.anon();
    ftp.ok(&format!("PORT 127,0,0,1,{},{}", port >> 8, port & 255), 200);
    let started = Instant::now();
    // The reply arrives within TIMEOUT, or reply() fails.
    let reply = ftp.cmd("RETR f");
    let took = started.elapsed();
    assert_eq!(reply.code, 425, "{}", reply.text);
    assert!(
        took >= Duration::from_secs_f64(0.8 * 2.0),
        "gave up after {took:?}"
    );
    ftp.ok("NOOP", 200);
}

/// While the server waits for an active connect, the control connection is
/// watched: ABOR is answered at once, and a client that hangs up frees the
/// worker instead of holding it for connect_timeout (60 s here).
#[test]
fn an_active_connect_wait_answers_abor_and_notices_a_hang_up() {
    if !have("python3") {
        return;
    }
    let (_hang, port) = hanging_port();
    let root = TempDir::new("conn-watch");
    root.write("f", b"never sent");
    let server = Server::start(root, &["-A", "--max-clients", "1"]);
    let port_cmd = format!("PORT 127,0,0,1,{},{}", port >> 8, port & 255);
    let mut ftp = server.anon();
    ftp.ok(&port_cmd, 200);
    ftp.send_raw(b"RETR f\r\n");
    std::thread::sleep(Duration::from_millis(200));
    ftp.send_raw(b"ABOR\r\n");
    assert_eq!(ftp.reply().code, 426);
    assert_eq!(ftp.reply().code, 226);
    ftp.ok(&port_cmd, 200);
    ftp.send_raw(b"RETR f\r\n");
    drop(ftp);
    // Served (and logged in) within TIMEOUT, not after connect_timeout.
    anon_when_served(&server);
}

// ------------------------------------------------------------------ xferlog

/// The fields of each xferlog line after the 5 of the date: transfer-time,
/// host, size, name, type, action, direction, access, user, service, auth
/// method, auth user, status.
fn xferlog_lines(path: &std::path::Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| l.split_whitespace().skip(5).map(String::from).collect())
        .collect()
}

#[test]
fn xferlog_records_uploads_and_incomplete_transfers() {
    let etc = TempDir::new("xfer-in-etc");
    let xferlog = etc.path().join("xferlog");
    let root = TempDir::new("xfer-in");
    root.write("big", &vec![7u8; 64 << 20]);
    let option = format!("xferlog_file={}", xferlog.display());
    let (server, _etc) = rw_server(root, "pw", &["-o", &option]);
    let mut ftp = server.connect();
    ftp.login("rw", "pw");
    ftp.stor("/up.txt", b"uploaded");
    // A download cut short by ABOR: we stop reading, the server waits.
    let mut data = ftp.epsv();
    ftp.ok("RETR big", 150);
    data.read_exact(&mut [0u8; 4096]).unwrap();
    ftp.send_raw(b"ABOR\r\n");
    assert_eq!(ftp.reply().code, 426);
    assert_eq!(ftp.reply().code, 226);
    drop(data);
    // An upload cut short by ABOR while the server waits for more data.
    let mut data = ftp.epsv();
    ftp.ok("STOR part.txt", 150);
    data.write_all(b"partial").unwrap();
    ftp.send_raw(b"ABOR\r\n");
    assert_eq!(ftp.reply().code, 426);
    assert_eq!(ftp.reply().code, 226);
    drop(data);
    let lines = xferlog_lines(&xferlog);
    assert_eq!(lines.len(), 3, "{lines:?}");
    let fields = |line: &[String], from: usize| line[from..].join(" ");
    // Complete upload: size, name, binary, direction i, real user, complete.
    assert_eq!(
        fields(&lines[0], 1),
        "127.0.0.1 8 /up.txt b _ i r rw ftp 0 * c"
    );
    // Aborted download: direction o, incomplete, fewer bytes than the file.
    assert_eq!(fields(&lines[1], 3), "/big b _ o r rw ftp 0 * i");
    let sent: u64 = lines[1][2].parse().unwrap();
    assert!(sent < 64 << 20, "{sent}");
    // Aborted upload: direction i, incomplete.
    assert_eq!(fields(&lines[2], 3), "/part.txt b _ i r rw ftp 0 * i");
}

// ------------------------------------------------------------------ active mode

/// The inode of the TCP socket from local port `local` to remote port
/// `remote` on 127.0.0.1, from /proc/net/tcp.
fn tcp_inode(local: u16, remote: u16) -> Option<String> {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let port = |addr: &str| u16::from_str_radix(addr.rsplit(':').next()?, 16).ok();
        (port(f[1]) == Some(local) && port(f[2]) == Some(remote)).then(|| f[9].to_string())
    })
}

/// Whether process `pid` holds the socket with `inode` open.
fn holds_socket(pid: u32, inode: &str) -> bool {
    let want = format!("socket:[{inode}]");
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .any(|link| link.to_str() == Some(want.as_str()))
}

/// Accepts one connection, failing after `TIMEOUT` instead of waiting forever.
fn accept_within(listener: &TcpListener) -> (TcpStream, SocketAddr) {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + TIMEOUT;
    loop {
        match listener.accept() {
            Ok((conn, from)) => {
                conn.set_nonblocking(false).unwrap();
                conn.set_read_timeout(Some(TIMEOUT)).unwrap();
                return (conn, from);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(Instant::now() < deadline, "no data connection arrived");
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}

#[test]
fn port_sends_the_file_over_a_connection_from_the_server() {
    let root = TempDir::new("port");
    // Big enough that the server is still sending while we look at it.
    let data = pattern(16 << 20);
    root.write("f.bin", &data);
    let server = Server::start(root, &["-A"]);
    let mut ftp = server.anon();
    ftp.ok("TYPE I", 200);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    ftp.ok(&format!("PORT 127,0,0,1,{},{}", port >> 8, port & 255), 200);
    ftp.ok("RETR f.bin", 150);
    let (mut conn, from) = accept_within(&listener);
    assert_eq!(from.ip().to_string(), "127.0.0.1");
    let inode = tcp_inode(from.port(), port).expect("the data connection in /proc/net/tcp");
    assert!(
        holds_socket(server.pid(), &inode),
        "the data connection from {from} is not the server's"
    );
    let mut got = Vec::new();
    conn.read_to_end(&mut got).unwrap();
    assert_eq!(ftp.reply().code, 226);
    assert!(got == data, "{} bytes differ from the file", got.len());
}

#[test]
fn eprt_2_does_active_mode_over_ipv6() {
    let Ok(listener) = TcpListener::bind("[::1]:0") else {
        skip("no IPv6 loopback [::1]");
        return;
    };
    let root = TempDir::new("eprt6");
    root.write("f", b"over ipv6");
    let server = Server::launch(BIN, &["--listen", "[::1]:0"], root, &["-A"]);
    let mut ftp = server.anon();
    ftp.ok("TYPE I", 200);
    let port = listener.local_addr().unwrap().port();
    ftp.ok(&format!("EPRT |2|::1|{port}|"), 200);
    ftp.ok("RETR f", 150);
    let (mut conn, from) = accept_within(&listener);
    assert_eq!(from.ip().to_string(), "::1");
    let mut got = Vec::new();
    conn.read_to_end(&mut got).unwrap();
    assert_eq!(ftp.reply().code, 226);
    assert_eq!(got, b"over ipv6");
}

// ------------------------------------------------------------------ identity

/// uid and gid of an account in /etc/passwd.
fn account(name: &str) -> Option<(String, String)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() > 3 && f[0] == name).then(|| (f[2].to_string(), f[3].to_string()))
    })
}

#[test]
fn as_root_run_as_and_chroot_no_are_obeyed() {
    if !is_root() {
        skip("needs root");
        return;
    }
    // Not the default account (ftp, else nobody), so that run_as must be read.
    let name = if account("ftp").is_some() {
        "nobody"
    } else {
        "daemon"
    };
    let (uid, gid) = account(name).expect("the run-as account in /etc/passwd");
    let run_as = format!("run_as={name}");
    for chroot in ["no", "yes"] {
        let root = TempDir::new("runas");
        root.write("f", b"x");
        let option = format!("chroot={chroot}");
        let server = Server::start(root, &["-A", "-o", &run_as, "-o", &option]);
        let ids = |key| {
            let field = server.status_field(key);
            field
                .split_whitespace()
                .map(String::from)
                .collect::<Vec<_>>()
        };
        assert_eq!(ids("Uid"), vec![uid.clone(); 4], "chroot={chroot}");
        assert_eq!(ids("Gid"), vec![gid.clone(); 4], "chroot={chroot}");
        let proc_root = std::fs::read_link(format!("/proc/{}/root", server.pid())).unwrap();
        let expected = if chroot == "no" {
            std::path::Path::new("/")
        } else {
            server.root.path()
        };
        assert_eq!(proc_root, expected, "chroot={chroot}");
        assert_eq!(server.anon().retr("f"), b"x");
    }
}

// ------------------------------------------------------------------ socket activation

/// Runs minftpd through `sh` so that `LISTEN_PID` can be the server's own
/// pid (`exec` keeps it); `setup` runs first (e.g. to open fd 3). Returns
/// the output, or fails when it does not exit within TIMEOUT.
fn activated(listen_fds: &str, listen_pid: &str, setup: &str) -> Output {
    let root = TempDir::new("activation");
    let script = format!("{setup}\nexport LISTEN_PID={listen_pid}\nexec \"$0\" \"$@\"");
    let mut child = Kill(
        Command::new("sh")
            .args(["-c", &script, BIN, "-c", "/dev/null", "-A", "-r"])
            .arg(root.path())
            .env("LISTEN_FDS", listen_fds)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let status = wait_exit(&mut child.0).expect("minftpd did not exit");
    let mut stderr = Vec::new();
    child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_end(&mut stderr)
        .unwrap();
    Output {
        status,
        stdout: Vec::new(),
        stderr,
    }
}

#[test]
fn bad_listen_fds_stop_start_up_with_a_clear_error() {
    // LISTEN_PID is ours, so LISTEN_FDS must be right: exit status 1
    // (start-up failed, minftpd(8) EXIT STATUS) and a message that says why.
    for (fds, setup, message) in [
        ("many", "", "LISTEN_FDS=\"many\" is not a count of sockets"),
        ("0", "", "LISTEN_FDS=\"0\" is not a count of sockets"),
        (
            "99999999999",
            "",
            "LISTEN_FDS=\"99999999999\" is not a count of sockets",
        ),
        ("65", "", "LISTEN_FDS=\"65\" is not a count of sockets"),
        ("1", "exec 3</dev/null", "inherited fd 3 is not a socket"),
        ("2", "exec 3</dev/null", "inherited fd 3 is not a socket"),
        ("1", "exec 3<&-", "LISTEN_FDS=1: inherited fd 3 is not open"),
    ] {
        let out = activated(fds, "$$", setup);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "LISTEN_FDS={fds}: {stderr}");
        assert!(stderr.contains(message), "LISTEN_FDS={fds}: {stderr}");
        assert!(!stderr.contains("listening on"), "{stderr}");
    }
}

#[test]
fn listen_fds_meant_for_another_process_are_ignored() {
    // systemd's rule (sd_listen_fds): LISTEN_PID names the process the
    // sockets are for; any other value, or one that is not a pid, means the
    // variables are not ours, so minftpd binds its own listener.
    for pid in ["1", "not-a-pid"] {
        let root = TempDir::new("other-pid");
        root.write("f", b"own listener");
        let listen_pid = format!("LISTEN_PID={pid}");
        let env = ["env", &listen_pid, "LISTEN_FDS=1"];
        let server = Server::start_via(&env, root, &["-A"]);
        assert_eq!(server.anon().retr("f"), b"own listener");
        // Still serving: finish() fails on a server that exited.
        server.finish();
    }
}

// ------------------------------------------------------------------ the rw user's writes

#[test]
fn rw_user_writes_are_checked_on_disk() {
    let root = TempDir::new("rw-disk");
    let (server, _etc) = rw_server(root, "pw", &[]);
    let on_disk = |rel: &str| server.root.path().join(rel);
    let mut ftp = server.connect();
    ftp.login("rw", "pw");
    // MKD makes the directory, with the default umask 022.
    ftp.ok("MKD made", 257);
    assert!(on_disk("made").is_dir());
    assert_eq!(mode_of(&on_disk("made")), 0o755);
    ftp.ok("SITE CHMOD 711 made", 200);
    assert_eq!(mode_of(&on_disk("made")), 0o711);
    ftp.ok("RMD made", 250);
    assert!(!on_disk("made").exists());
    // SITE CHMOD and MFMT on a file the server wrote (so it owns it as root too).
    ftp.stor("f.txt", b"abc");
    ftp.ok("SITE CHMOD 604 f.txt", 200);
    assert_eq!(mode_of(&on_disk("f.txt")), 0o604);
    ftp.ok("MFMT 20010203040506 f.txt", 213);
    assert_eq!(mtime_secs(&on_disk("f.txt")), 981_173_106);
    // APPE adds to the end of an existing file and creates a missing one.
    ftp.ok("TYPE I", 200);
    assert_eq!(ftp.upload("APPE f.txt", b"def").code, 226);
    assert_eq!(server.root.read("f.txt"), b"abcdef");
    assert_eq!(mode_of(&on_disk("f.txt")), 0o604, "APPE keeps the mode");
    assert_eq!(ftp.upload("APPE new.txt", b"xyz").code, 226);
    assert_eq!(server.root.read("new.txt"), b"xyz");
}
