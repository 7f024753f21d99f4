//! Starting the server: standalone on a loopback port, through a wrapper,
//! from inetd or systemd-socket-activate; free ports below the ephemeral
//! range; its log, memory and exit; start-ups that must fail.

use super::*;
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

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

/// The addresses of the "listening on ADDR" lines in a log.
pub fn listening_on(log: &str) -> Vec<SocketAddr> {
    log.split("listening on ")
        .skip(1)
        .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
        .collect()
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

/// A `kB` figure of /proc/PID/status (`VmHWM`, `VmRSS`) of the server.
pub fn status_kb(server: &Server, key: &str) -> u64 {
    server
        .status_field(key)
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{key} in /proc/PID/status"))
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
