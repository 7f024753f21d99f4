//! Test support: start the real binary on a loopback port with a fresh root,
//! speak FTP to it, and run external clients with a time limit.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_minftpd");
/// Every socket read and every wait in the tests is bounded by this.
pub const TIMEOUT: Duration = Duration::from_secs(20);
/// How long a peer may take to close a connection it must close: short, so
/// that a server that keeps it open fails fast instead of after `TIMEOUT`.
pub const CLOSE_DEADLINE: Duration = Duration::from_secs(5);

static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub fn is_root() -> bool {
    // /proc/self/status "Uid: real effective ..."
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

/// A fresh directory under the system temp dir, removed on drop. When the
/// tests run as root the server drops to an unprivileged account, so the tree
/// is made writable for it.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!("minftpd-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        open_up(&path, 0o777);
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes a file (and its parent directories) below the directory.
    pub fn write(&self, rel: &str, data: &[u8]) -> PathBuf {
        let path = self.0.join(rel);
        if let Some(parent) = path.parent() {
            self.mkdir_all(parent);
        }
        std::fs::write(&path, data).unwrap();
        open_up(&path, 0o666);
        path
    }

    pub fn mkdir(&self, rel: &str) -> PathBuf {
        let path = self.0.join(rel);
        self.mkdir_all(&path);
        path
    }

    fn mkdir_all(&self, path: &Path) {
        std::fs::create_dir_all(path).unwrap();
        let mut p = path;
        while p.starts_with(&self.0) && p != self.0 {
            open_up(p, 0o777);
            p = p.parent().unwrap();
        }
    }

    pub fn read(&self, rel: &str) -> Vec<u8> {
        std::fs::read(self.0.join(rel)).unwrap()
    }

    /// Names in a directory below this one, sorted.
    pub fn names(&self, rel: &str) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.0.join(rel))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn open_up(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A running minftpd.
///
/// Every server is checked when the test is done with it (`finish()` or its
/// `Drop`): it must still be running, unless the test saw it exit through
/// `wait_exit()`, and its log must hold no `panicked` (a session panic is
/// caught by the worker and only logged, so nothing else would notice it).
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    pub root: TempDir,
    log: Arc<Mutex<Vec<String>>>,
    reader: Option<JoinHandle<()>>,
    /// The test saw the process exit (`wait_exit`): that is not a crash.
    exited: bool,
    checked: bool,
}

impl Server {
    /// Anonymous, read-only, on 127.0.0.1:0 with an empty root.
    pub fn anonymous() -> Server {
        Server::start(TempDir::new("root"), &["--anonymous"])
    }

    /// Starts the binary serving `root` with extra arguments.
    pub fn start(root: TempDir, args: &[&str]) -> Server {
        Server::launch(BIN, &["--listen", "127.0.0.1:0"], root, args)
    }

    /// Like `start`, through `wrapper` (a program and its arguments that runs
    /// the rest of its command line: a shell that hands the server an extra
    /// fd, `prlimit`, `strace`); no wrapper at all when it is empty.
    pub fn start_via(wrapper: &[&str], root: TempDir, args: &[&str]) -> Server {
        let Some((program, wrapper_args)) = wrapper.split_first() else {
            return Server::start(root, args);
        };
        let mut listen = wrapper_args.to_vec();
        listen.extend([BIN, "--listen", "127.0.0.1:0"]);
        Server::launch(program, &listen, root, args)
    }

    /// Starts `program` (this build's binary, or another build of it such as
    /// the static one) with `listen` arguments, serving `root`. `addr` is
    /// the first address it says it listens on; `listen_addrs` has them all.
    pub fn launch(
        program: impl AsRef<std::ffi::OsStr>,
        listen: &[&str],
        root: TempDir,
        args: &[&str],
    ) -> Server {
        let mut command = Command::new(program);
        command
            .args(listen)
            .arg("--root")
            .arg(root.path())
            .args(["-c", "/dev/null", "-o", "login_fail_delay=0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .env_remove("RUST_LOG");
        // A process group of its own, killed whole when the test is done: a
        // wrapper such as strace may die and leave the server it runs alive.
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut child = command.spawn().expect("start minftpd");
        let stderr = child.stderr.take().unwrap();
        // Reads the log until the process ends, so it never blocks on a full
        // pipe, and hands over the first "listening on" address.
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let sink = Arc::clone(&log);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_string());
                }
                sink.lock().unwrap().push(line);
            }
        });
        // TIMEOUT: under strace on a busy machine start-up takes a while.
        let addr = match rx.recv_timeout(TIMEOUT) {
            Ok(addr) => addr.parse().expect("listening address"),
            Err(_) => {
                kill_group(&mut child);
                panic!("minftpd did not start: {:?}", log.lock().unwrap());
            }
        };
        Server {
            child,
            addr,
            root,
            log,
            reader: Some(reader),
            exited: false,
            checked: false,
        }
    }

    /// Asserts that the server is still running and logged no panic, then
    /// stops it. `Drop` does the same; call this to check at a chosen point.
    pub fn finish(mut self) {
        if let Err(e) = self.stop_and_check() {
            panic!("{e}");
        }
    }

    /// Still running (unless the test saw it exit), then killed; its whole
    /// log read (the reader ends at end of file) and free of `panicked`.
    fn stop_and_check(&mut self) -> Result<(), String> {
        self.checked = true;
        let early = match self.child.try_wait() {
            Ok(None) => None,
            Ok(Some(status)) if !self.exited => Some(format!("{status}")),
            Ok(Some(_)) => None,
            Err(e) => Some(format!("try_wait: {e}")),
        };
        kill_group(&mut self.child);
        // The log ends when the last process holding its pipe is gone.
        let mut lingers = false;
        if let Some(reader) = self.reader.take() {
            let deadline = Instant::now() + CLOSE_DEADLINE;
            while !reader.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            lingers = !reader.is_finished();
            if !lingers {
                let _ = reader.join();
            }
        }
        let log = self.log();
        if lingers {
            return Err(format!(
                "a process of minftpd's group outlived the kill (its log did not end); log:\n{log}"
            ));
        }
        if let Some(status) = early {
            return Err(format!(
                "minftpd died during the test ({status}); log:\n{log}"
            ));
        }
        if log.contains("panicked") {
            return Err(format!("minftpd logged a panic; log:\n{log}"));
        }
        Ok(())
    }

    /// Asserts the process is running now (without stopping it).
    pub fn assert_running(&mut self) {
        let status = self.child.try_wait().expect("try_wait");
        assert!(status.is_none(), "minftpd died: {status:?}\n{}", self.log());
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn url(&self, path: &str) -> String {
        format!("ftp://{}/{}", self.addr, path.trim_start_matches('/'))
    }

    pub fn user_url(&self, user: &str, pass: &str, path: &str) -> String {
        format!(
            "ftp://{user}:{pass}@{}/{}",
            self.addr,
            path.trim_start_matches('/')
        )
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Waits until the log holds `needle`; false after `TIMEOUT`.
    pub fn wait_for_log(&self, needle: &str) -> bool {
        let deadline = Instant::now() + TIMEOUT;
        while Instant::now() < deadline {
            if self.log().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    pub fn connect(&self) -> Ftp {
        Ftp::connect(self.addr)
    }

    /// A logged-in anonymous session.
    pub fn anon(&self) -> Ftp {
        let mut ftp = self.connect();
        ftp.login("anonymous", "test@");
        ftp
    }

    /// Sends a signal to the server process.
    pub fn signal(&self, signal: &str) {
        send_signal(self.pid(), signal);
    }

    /// Waits for the process to exit by itself; its status, or None after `TIMEOUT`.
    pub fn wait_exit(&mut self) -> Option<std::process::ExitStatus> {
        let status = wait_exit(&mut self.child);
        self.exited = status.is_some();
        status
    }

    /// Every address of a "listening on ADDR" line in the log so far.
    pub fn listen_addrs(&self) -> Vec<SocketAddr> {
        listening_on(&self.log())
    }

    /// Threads of the server process, from /proc.
    pub fn threads(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/task", self.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// A `Key:` line of /proc/PID/status.
    pub fn status_field(&self, key: &str) -> String {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find(|l| l.starts_with(&format!("{key}:")))
            .map(|l| l[key.len() + 1..].trim().to_string())
            .unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.checked {
            return;
        }
        let result = self.stop_and_check();
        // A test that already fails must not double-panic (that aborts the
        // whole run); its own message is the one to read.
        if let Err(e) = result {
            if std::thread::panicking() {
                eprintln!("{e}");
            } else {
                panic!("{e}");
            }
        }
    }
}

/// A reply: code and full text (all lines).
#[derive(Debug, Clone)]
pub struct Reply {
    pub code: u16,
    pub text: String,
}

/// A small FTP client that returns exact replies.
pub struct Ftp {
    pub ctl: TcpStream,
    reader: BufReader<TcpStream>,
    pub greeting: Reply,
}

impl Ftp {
    pub fn connect(addr: SocketAddr) -> Ftp {
        Ftp::over(TcpStream::connect_timeout(&addr, TIMEOUT).expect("connect"))
    }

    /// A client over a connection made already (from a chosen source
    /// address, or after a PROXY header); reads the greeting.
    pub fn over(ctl: TcpStream) -> Ftp {
        ctl.set_read_timeout(Some(TIMEOUT)).unwrap();
        ctl.set_write_timeout(Some(TIMEOUT)).unwrap();
        let reader = BufReader::new(ctl.try_clone().unwrap());
        let mut ftp = Ftp {
            ctl,
            reader,
            greeting: Reply {
                code: 0,
                text: String::new(),
            },
        };
        ftp.greeting = ftp.reply();
        ftp
    }

    /// Reads one (possibly multi-line) reply.
    pub fn reply(&mut self) -> Reply {
        self.try_reply().expect("reply")
    }

    pub fn try_reply(&mut self) -> Option<Reply> {
        let mut first = String::new();
        if self.reader.read_line(&mut first).ok()? == 0 {
            return None;
        }
        let code: u16 = first.get(..3)?.parse().ok()?;
        let mut text = first.clone();
        if first.as_bytes().get(3) == Some(&b'-') {
            let end = format!("{code} ");
            for _ in 0..100_000 {
                let mut line = String::new();
                if self.reader.read_line(&mut line).ok()? == 0 {
                    return None;
                }
                text.push_str(&line);
                if line.starts_with(&end) {
                    break;
                }
            }
        }
        Some(Reply { code, text })
    }

    /// Asserts that the server closes the control connection: end of stream
    /// (or a reset) within `CLOSE_DEADLINE`, with no further reply before it.
    /// `try_reply().is_none()` cannot tell a close from a read timeout.
    pub fn expect_closed(&mut self) {
        self.ctl.set_read_timeout(Some(CLOSE_DEADLINE)).unwrap();
        let mut rest = String::new();
        let got = self.reader.read_line(&mut rest);
        if let Err(e) = closed(got) {
            panic!("the control connection was not closed: {e}; read {rest:?}");
        }
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.ctl.write_all(bytes).unwrap();
    }

    pub fn cmd(&mut self, line: &str) -> Reply {
        self.send_raw(format!("{line}\r\n").as_bytes());
        self.reply()
    }

    /// Sends a command and asserts its reply code.
    pub fn ok(&mut self, line: &str, code: u16) -> Reply {
        let reply = self.cmd(line);
        assert_eq!(reply.code, code, "{line}: {}", reply.text);
        reply
    }

    pub fn login(&mut self, user: &str, pass: &str) {
        self.ok(&format!("USER {user}"), 331);
        self.ok(&format!("PASS {pass}"), 230);
    }

    /// EPSV, then a data connection to the announced port.
    pub fn epsv(&mut self) -> TcpStream {
        let port = self.epsv_port();
        let addr = SocketAddr::new(self.ctl.peer_addr().unwrap().ip(), port);
        let data = TcpStream::connect_timeout(&addr, TIMEOUT).unwrap();
        data.set_read_timeout(Some(TIMEOUT)).unwrap();
        data
    }

    /// EPSV without connecting: the announced port.
    pub fn epsv_port(&mut self) -> u16 {
        let reply = self.ok("EPSV", 229);
        reply.text.split('|').nth(3).unwrap().parse().unwrap()
    }

    /// PASV: the announced address.
    pub fn pasv_addr(&mut self) -> SocketAddr {
        let reply = self.ok("PASV", 227);
        let inside = reply
            .text
            .split('(')
            .nth(1)
            .unwrap()
            .split(')')
            .next()
            .unwrap();
        let n: Vec<u16> = inside
            .split(',')
            .map(|x| x.trim().parse().unwrap())
            .collect();
        SocketAddr::from((
            [n[0] as u8, n[1] as u8, n[2] as u8, n[3] as u8],
            n[4] * 256 + n[5],
        ))
    }

    /// Runs a command that sends data to us, returning the bytes and the final reply.
    pub fn download(&mut self, line: &str) -> (Vec<u8>, Reply) {
        let data = self.epsv();
        self.download_on(data, line)
    }

    /// `download` over a data connection prepared earlier.
    pub fn download_on(&mut self, mut data: TcpStream, line: &str) -> (Vec<u8>, Reply) {
        let opening = self.cmd(line);
        if opening.code != 150 {
            return (Vec::new(), opening);
        }
        let mut out = Vec::new();
        data.read_to_end(&mut out).unwrap();
        drop(data);
        (out, self.reply())
    }

    pub fn retr(&mut self, path: &str) -> Vec<u8> {
        self.ok("TYPE I", 200);
        let (bytes, reply) = self.download(&format!("RETR {path}"));
        assert_eq!(reply.code, 226, "RETR {path}: {}", reply.text);
        bytes
    }

    pub fn list(&mut self, line: &str) -> String {
        let (bytes, reply) = self.download(line);
        assert_eq!(reply.code, 226, "{line}: {}", reply.text);
        String::from_utf8(bytes).unwrap()
    }

    /// Runs an upload command; the final reply.
    pub fn upload(&mut self, line: &str, bytes: &[u8]) -> Reply {
        let mut data = self.epsv();
        let opening = self.cmd(line);
        if opening.code != 150 {
            return opening;
        }
        data.write_all(bytes).unwrap();
        drop(data);
        self.reply()
    }

    pub fn stor(&mut self, path: &str, bytes: &[u8]) {
        self.ok("TYPE I", 200);
        let reply = self.upload(&format!("STOR {path}"), bytes);
        assert_eq!(reply.code, 226, "STOR {path}: {}", reply.text);
    }
}

/// Asserts that the peer closes `stream`: end of stream (or a reset)
/// within `CLOSE_DEADLINE`, and no bytes before it.
pub fn expect_eof(stream: &mut TcpStream) {
    stream.set_read_timeout(Some(CLOSE_DEADLINE)).unwrap();
    let mut buf = [0u8; 64];
    if let Err(e) = closed(stream.read(&mut buf)) {
        panic!("the connection was not closed: {e}");
    }
}

/// Ok when a read result means the peer closed: 0 bytes or a reset.
fn closed(read: std::io::Result<usize>) -> Result<(), String> {
    match read {
        Ok(0) => Ok(()),
        Ok(n) => Err(format!("{n} more bytes arrived")),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Ok(()),
        Err(e) => Err(format!("still open after {CLOSE_DEADLINE:?} ({e})")),
    }
}

impl Ftp {
    /// Sends `line`, which must be refused with `code` before any data
    /// connection is used, on a prepared EPSV connection; then asserts what
    /// minftpd does today: the prepared connection stays pending (not
    /// closed, nothing sent on it) and the next transfer command uses it.
    pub fn refused_keeps_data(&mut self, line: &str, code: u16) {
        let data = self.epsv();
        let reply = self.cmd(line);
        assert_eq!(reply.code, code, "{line}: {}", reply.text);
        let (_, done) = self.download_on(data, "NLST /");
        assert_eq!(done.code, 226, "NLST on the kept connection: {}", done.text);
    }
}

/// Whether an external tool is there; when it is not, the test is skipped
/// (see `skip`).
pub fn have(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !found {
        skip(&format!("{tool} is not installed"));
    }
    found
}

/// The one way a test gives up on a precondition this machine lacks (not
/// root, no tmpfs mount, no [::1], a missing tool). libtest shows a test
/// that returns early as `ok`, so every skip is said on stderr and appended
/// to the file named by MINFTPD_SKIP_LOG (`make test` prints it at the end);
/// with MINFTPD_NO_SKIPS=1 (CI) a skip is a failure. The caller returns
/// right after: `return skip("needs root");`.
pub fn skip(reason: &str) {
    let name = std::thread::current()
        .name()
        .unwrap_or("unnamed test")
        .to_string();
    assert!(
        std::env::var("MINFTPD_NO_SKIPS").as_deref() != Ok("1"),
        "{name} would be skipped ({reason}), and MINFTPD_NO_SKIPS=1 makes that a failure"
    );
    eprintln!("SKIPPED: {name}: {reason}");
    if let Ok(path) = std::env::var("MINFTPD_SKIP_LOG") {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path);
        // One write per line: O_APPEND keeps concurrent tests' lines whole.
        let written = file.and_then(|mut f| f.write_all(format!("{name}: {reason}\n").as_bytes()));
        if let Err(e) = written {
            panic!("cannot record the skip in {path}: {e}");
        }
    }
}

/// Runs a program with a time limit; kills it when the limit passes.
pub fn run(program: &str, args: &[&str]) -> Output {
    run_in(program, args, None)
}

pub fn run_in(program: &str, args: &[&str], dir: Option<&Path>) -> Output {
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    // A group of its own, so that a timeout kills what the client started
    // too (lftp's helpers, make's cargo), not only the top process.
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let child = command.spawn().unwrap_or_else(|e| panic!("{program}: {e}"));
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(120)) {
        Ok(output) => output.unwrap(),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .status();
            panic!("{program} {args:?} did not finish within 120 s");
        }
    }
}

/// Runs a Python script (ftplib) and returns its stdout; fails on a non-zero exit.
pub fn python(script: &str) -> String {
    let output = run("python3", &["-c", script]);
    assert!(
        output.status.success(),
        "python failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Bytes that are not all the same, so that offsets and order matter.
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// A users file with `openssl passwd -6` hashes: (name, password, home, access).
pub fn users_file(dir: &TempDir, users: &[(&str, &str, &str, &str)]) -> PathBuf {
    let mut text = String::from("# test accounts\n");
    for (name, pass, home, access) in users {
        let out = run("openssl", &["passwd", "-6", pass]);
        let hash = String::from_utf8(out.stdout).unwrap();
        text.push_str(&format!("{name}:{}:{home}:{access}\n", hash.trim()));
    }
    let path = dir.path().join("users");
    std::fs::write(&path, text).unwrap();
    path
}

/// Waits (bounded by `TIMEOUT`) for a child to exit by itself; its status,
/// or None when it is still running.
pub fn wait_exit(child: &mut Child) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + TIMEOUT;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// The addresses of the "listening on ADDR" lines in a log.
pub fn listening_on(log: &str) -> Vec<SocketAddr> {
    log.split("listening on ")
        .skip(1)
        .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
        .collect()
}

/// A helper process (inetd, systemd-socket-activate, a thief), killed and
/// reaped when dropped, also when the test fails before its end.
pub struct Kill(pub Child);

impl Kill {
    pub fn spawn(command: &mut Command) -> Kill {
        Kill(
            command
                .spawn()
                .unwrap_or_else(|e| panic!("{command:?}: {e}")),
        )
    }
}

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The kernel's ephemeral port range (ports it hands out for port 0 and for
/// outgoing connections).
fn ephemeral_range() -> (u16, u16) {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .unwrap_or_else(|_| "32768 60999".into());
    let mut it = text.split_whitespace().filter_map(|p| p.parse().ok());
    (it.next().unwrap_or(32768), it.next().unwrap_or(60999))
}

static NEXT_PORT: AtomicUsize = AtomicUsize::new(0);

/// `len` consecutive loopback ports, free now, below the ephemeral range.
/// For what must be told a port before it binds (systemd-socket-activate,
/// inetd, a passive port range): a port taken by binding port 0 and
/// dropping may be handed to any socket before it is reused, a port outside
/// the ephemeral range only to a program that names it. Each call in this
/// process gets other ports; the pid spreads parallel runs apart.
pub fn free_ports(len: u16) -> std::ops::RangeInclusive<u16> {
    let (low, _) = ephemeral_range();
    let top = low.saturating_sub(1).max(12_000);
    let span = 10_000usize;
    let base = top as usize - span;
    let spread = std::process::id() as usize * 211;
    for _ in 0..span / len as usize {
        let n = NEXT_PORT.fetch_add(len as usize, Ordering::SeqCst);
        let first = (base + (spread + n) % (span - len as usize)) as u16;
        let range = first..=first + len - 1;
        let free = range
            .clone()
            .all(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok());
        if free {
            return range;
        }
    }
    panic!("no {len} free ports below {low}");
}

/// One free port below the ephemeral range (see `free_ports`).
pub fn free_port() -> u16 {
    *free_ports(1).start()
}

/// A server with anonymous read-only access and a named user `rw` (password
/// `pass`) who may write the whole root; the TempDir holds the users file.
pub fn rw_server(root: TempDir, pass: &str, extra: &[&str]) -> (Server, TempDir) {
    rw_server_via(&[], root, pass, extra)
}

/// `rw_server` started through `wrapper` (see `Server::start_via`).
pub fn rw_server_via(
    wrapper: &[&str],
    root: TempDir,
    pass: &str,
    extra: &[&str],
) -> (Server, TempDir) {
    let etc = TempDir::new("rw-etc");
    let users = users_file(&etc, &[("rw", pass, "/", "rw")]);
    let mut args = vec!["-A", "-w", "-U", users.to_str().unwrap()];
    args.extend_from_slice(extra);
    (Server::start_via(wrapper, root, &args), etc)
}

/// Asserts that no upload left a temporary (dot) file in `dir` of the root.
pub fn assert_no_temp_files(root: &TempDir, dir: &str) {
    let leftovers: Vec<String> = root
        .names(dir)
        .into_iter()
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

/// A passive-mode thief: a Python process on 127.0.0.2 that connects to
/// `port` before the client does, runs `then` (Python with the socket `s`,
/// printing one line) and exits.
pub struct Thief {
    child: Kill,
    out: BufReader<std::process::ChildStdout>,
}

impl Thief {
    /// Returns once the thief is connected (it is in the accept queue first).
    pub fn connect(port: u16, then: &str) -> Thief {
        let script = format!(
            "import socket\ns = socket.socket()\ns.settimeout(15)\ns.bind(('127.0.0.2', 0))\n\
             s.connect(('127.0.0.1', {port}))\nprint('connected', flush=True)\n{then}\n"
        );
        let mut child = Kill::spawn(
            Command::new("python3")
                .args(["-c", &script])
                .stdout(Stdio::piped()),
        );
        let out = BufReader::new(child.0.stdout.take().unwrap());
        let mut thief = Thief { child, out };
        assert_eq!(thief.line(), "connected");
        thief
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.out.read_line(&mut line).unwrap();
        line.trim().to_string()
    }

    /// The line the thief printed at the end; asserts it exited cleanly.
    pub fn report(mut self) -> String {
        let line = self.line();
        let status = wait_exit(&mut self.child.0).expect("the thief exits");
        assert!(status.success(), "thief: {status:?}");
        line
    }
}

/// curl with a time limit, showing errors.
pub fn curl(args: &[&str]) -> Output {
    let mut all = vec!["-s", "-S", "--max-time", "60"];
    all.extend_from_slice(args);
    run("curl", &all)
}

/// curl that must succeed; its output.
pub fn curl_ok(args: &[&str]) -> Vec<u8> {
    let out = curl(args);
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A `kB` figure of /proc/PID/status (`VmHWM`, `VmRSS`) of the server.
pub fn status_kb(server: &Server, key: &str) -> u64 {
    server
        .status_field(key)
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{key} in /proc/PID/status"))
}

/// A TCP connection to `to` from the loopback address `from` (port chosen by
/// the kernel): a second or third client machine, as a balancer sees it.
pub fn connect_from(from: std::net::IpAddr, to: SocketAddr) -> TcpStream {
    let stream = minftpd::sys::connect_from(SocketAddr::new(from, 0), to, TIMEOUT)
        .unwrap_or_else(|e| panic!("connect from {from} to {to}: {e}"));
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(TIMEOUT)).unwrap();
    stream
}

/// Kills the process group `child` leads (a wrapper and the server it runs,
/// or the server alone) and reaps `child`. The group is killed before the
/// reap, while the unreaped leader keeps its id from being reused.
fn kill_group(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .stderr(Stdio::null())
        .status();
    let _ = child.kill();
    let _ = child.wait();
}

impl Server {
    /// A session logged in as `user`.
    pub fn login(&self, user: &str, pass: &str) -> Ftp {
        let mut ftp = self.connect();
        ftp.login(user, pass);
        ftp
    }
}

/// Permission bits (with setuid, setgid, sticky) of a file.
pub fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// Modification time of a file, in seconds since the epoch.
pub fn mtime_secs(path: &Path) -> u64 {
    std::fs::metadata(path)
        .unwrap()
        .modified()
        .unwrap()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Sends `signal` (a name such as `HUP`) to a process.
pub fn send_signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal} {pid}");
}

/// Starts `minftpd --inetd` on a fresh connection, as inetd does (the socket
/// on standard input, output and error); returns the process and our end,
/// the greeting read.
pub fn inetd(root: &TempDir, args: &[&str]) -> (Kill, Ftp) {
    use std::os::fd::OwnedFd;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let client = std::thread::spawn(move || Ftp::connect(addr));
    let (conn, _) = listener.accept().unwrap();
    let fd = |s: &TcpStream| Stdio::from(OwnedFd::from(s.try_clone().unwrap()));
    let child = Kill::spawn(
        Command::new(BIN)
            .args(["--inetd", "-c", "/dev/null", "-o", "login_fail_delay=0"])
            .arg("-r")
            .arg(root.path())
            .args(args)
            .stdin(fd(&conn))
            .stdout(fd(&conn))
            .stderr(fd(&conn))
            .env_remove("RUST_LOG"),
    );
    drop(conn);
    (child, client.join().unwrap())
}

impl TempDir {
    /// The directory's own name (its last path component).
    pub fn name(&self) -> &str {
        self.0.file_name().unwrap().to_str().unwrap()
    }
}

/// Runs the binary with `args`, for a start-up that must fail: its exit
/// status (-1 when killed by a signal) and standard error.
pub fn start_error(args: &[&str]) -> (i32, String) {
    let out = run(BIN, args);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `minftpd --check-config` without a config file, serving `root`, with
/// `extra` arguments: the configuration it prints (it must succeed).
pub fn check_config(root: &Path, extra: &[&str]) -> String {
    let mut args = vec!["-c", "/dev/null", "--check-config", "-r"];
    args.push(root.to_str().unwrap());
    args.extend_from_slice(extra);
    let out = run(BIN, &args);
    assert!(
        out.status.success(),
        "--check-config: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs `body` (Python) after an ftplib session `f` has connected to
/// `server` and logged in as `user` (a name and a password); the modules
/// the tests use are imported. Its stdout; fails on a non-zero exit.
pub fn ftplib_session(server: &Server, user: (&str, &str), body: &str) -> String {
    let (name, pass) = user;
    let port = server.port();
    python(&format!(
        "import ftplib, hashlib, io, socket, struct\n\
         f = ftplib.FTP()\n\
         f.connect('127.0.0.1', {port}, timeout=20)\n\
         f.login('{name}', '{pass}')\n{body}"
    ))
}

/// Waits (bounded by `TIMEOUT`) until something accepts connections on
/// 127.0.0.1:`port`, while `process` (the one that should bind it) runs.
pub fn wait_listening(process: &mut Kill, port: u16) -> Result<(), String> {
    let deadline = Instant::now() + TIMEOUT;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = process.0.try_wait() {
            return Err(format!(
                "it exited ({status}) instead of listening on {port}"
            ));
        }
        if Instant::now() > deadline {
            return Err(format!("nothing listens on {port} after {TIMEOUT:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// The first anonymous session the server greets with 220 within `TIMEOUT`,
/// logged in: for tests where a worker or an address slot must come free.
pub fn anon_when_served(server: &Server) -> Ftp {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let mut ftp = server.connect();
        if ftp.greeting.code == 220 {
            ftp.login("anonymous", "x");
            return ftp;
        }
        assert!(
            Instant::now() < deadline,
            "server never served a fresh client: {}",
            ftp.greeting.text
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// minftpd started by systemd-socket-activate on 127.0.0.1:`port` with the
/// activator's `extra` arguments (`-a`, `--inetd`, `--fdname=...`), serving
/// `root` anonymously with `minftpd_args` added; killed when dropped.
pub fn socket_activate(port: u16, extra: &[&str], minftpd_args: &[&str], root: &TempDir) -> Kill {
    let listen = format!("127.0.0.1:{port}");
    let mut args = vec!["-l", listen.as_str()];
    args.extend_from_slice(extra);
    args.push(BIN);
    args.extend_from_slice(&["-c", "/dev/null", "-A", "-r", root.path().to_str().unwrap()]);
    args.extend_from_slice(minftpd_args);
    let mut guard = Kill::spawn(
        std::process::Command::new("systemd-socket-activate")
            .args(&args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null()),
    );
    wait_listening(&mut guard, port).unwrap();
    guard
}

/// Runs this build's binary (or `program`) for a start-up that must fail,
/// bounded: one that starts serving instead is killed after `TIMEOUT` and
/// reported as `None`. Its exit status and standard error.
pub fn start_bounded(program: &str, args: &[&str]) -> (Option<i32>, String) {
    let mut child = Kill::spawn(
        Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .env_remove("RUST_LOG"),
    );
    let status = wait_exit(&mut child.0);
    let mut err = String::new();
    if status.is_some() {
        let _ = child.0.stderr.take().unwrap().read_to_string(&mut err);
    }
    (status.and_then(|s| s.code()), err)
}

/// The arguments of a start-up with no config file, on a port of its own,
/// serving `root` with the accounts of `users`.
pub fn users_start_args<'a>(root: &'a Path, users: &'a Path) -> [&'a str; 8] {
    [
        "-c",
        "/dev/null",
        "-l",
        "127.0.0.1:0",
        "-r",
        root.to_str().unwrap(),
        "-U",
        users.to_str().unwrap(),
    ]
}
