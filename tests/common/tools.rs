//! Processes and external tools: is this root, is a tool there (else a
//! skip), running programs with a time limit, curl, signals, and a child
//! killed when dropped.

use super::*;
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

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

/// Sends `signal` (a name such as `HUP`) to a process.
pub fn send_signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal} {pid}");
}
