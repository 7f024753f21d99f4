//! The runner: a single-threaded process forked at start-up that becomes the
//! run-as account (never root, and proven unable to return to it), reads
//! upload records from the server's pipe and runs the hook for each, by
//! fork+execve with no shell: the file's host path is argv[1] and the rest is
//! in MINFTPD_* variables, byte for byte as the client sent them.
//!
//! Bounds: at most `MAX_RUNNING` hooks at once (records wait in the pipe
//! meanwhile, and the server drops what no longer fits), each killed with its
//! whole process group after `upload_hook_timeout`. The runner ends when the
//! server closes the pipe (it exits, crashes or is killed), once the hooks
//! still running have ended.

use super::{decode, Settings, MAX_RECORD};
use crate::log::Quoted;
use crate::sys;
use std::ffi::CString;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::time::{Duration, Instant};

/// Hooks running at once. Hooks on an ingest box copy, scan or convert a file:
/// I/O-bound work, on boxes with a core or two. Four keeps the cores busy
/// while a hook waits on disk or network, and bounds what a burst of uploads
/// costs (four processes, not one per upload); a hook that hangs holds one of
/// them only until the timeout.
const MAX_RUNNING: usize = 4;

/// How often running hooks are checked for their end and their deadline.
const TICK: Duration = Duration::from_millis(50);

/// The search path the hook starts with: its environment is built here,
/// nothing of the server's is passed on.
const PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

struct Running {
    pid: libc::pid_t,
    deadline: Instant,
    vpath: Vec<u8>,
    killed: bool,
}

/// The runner's life; returns its exit status.
pub(super) fn run(settings: &Settings, pipe: OwnedFd, sockets: &[RawFd]) -> i32 {
    sys::ignore_stop_signals();
    let null = match detach(sockets) {
        Ok(null) => null,
        Err(e) => {
            ::log::error!("upload hook runner: {e}");
            return 1;
        }
    };
    if let Err(e) = become_run_as(settings) {
        ::log::error!("upload hook runner: {e}; no hooks will run");
        return 1;
    }
    let mut pipe = File::from(pipe);
    let mut running: Vec<Running> = Vec::new();
    let mut open = true;
    while open || !running.is_empty() {
        reap(&mut running);
        kill_overdue(&mut running, settings.timeout);
        if !open || running.len() >= MAX_RUNNING {
            std::thread::sleep(TICK);
            continue;
        }
        let wait = if running.is_empty() {
            -1
        } else {
            TICK.as_millis() as i32
        };
        match sys::wait_readable(pipe.as_fd(), wait) {
            Ok(false) => continue,
            Ok(true) => {}
            Err(e) => {
                ::log::error!("upload hook runner: poll: {e}");
                open = false;
                continue;
            }
        }
        match read_record(&mut pipe) {
            Some(body) => {
                if let Some(hook) = start_hook(settings, &null, &body) {
                    running.push(hook);
                }
            }
            None => open = false,
        }
    }
    0
}

/// Leaves the server's sockets and standard streams behind: in inetd mode
/// they are the client's connection, which must close when the server ends.
/// Standard error stays when the log goes there. Returns /dev/null, opened
/// for the hooks' standard streams.
fn detach(sockets: &[RawFd]) -> Result<OwnedFd, String> {
    let null = File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| format!("/dev/null: {e}"))?;
    let null = OwnedFd::from(null);
    let mut targets = vec![0, 1];
    if !crate::daemon::logs_to_stderr() {
        targets.push(2);
    }
    for target in targets {
        sys::dup_onto(null.as_fd(), target).map_err(|e| format!("dup2: {e}"))?;
    }
    let others: Vec<RawFd> = sockets.iter().copied().filter(|&fd| fd > 2).collect();
    for fd in others {
        sys::close_fd(fd);
    }
    Ok(null)
}

/// As root: the run-as account, no supplementary groups, and proof that root
/// cannot come back. Either way, no hook may gain privileges through a
/// set-user-ID program.
fn become_run_as(settings: &Settings) -> Result<(), String> {
    if let Some(account) = &settings.run_as {
        sys::drop_identity(account.uid, account.gid)
            .map_err(|e| format!("becoming {}: {e}", account.name))?;
    }
    if sys::can_regain_root() {
        return Err("setuid(0) still works; refusing to run hooks as root".into());
    }
    sys::forbid_new_privileges().map_err(|e| format!("PR_SET_NO_NEW_PRIVS: {e}"))
}

/// One record's body, or None at the end of the pipe (or a broken record,
/// which cannot be told apart from the next one's start).
fn read_record(pipe: &mut File) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    pipe.read_exact(&mut len).ok()?;
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_RECORD {
        ::log::error!("upload hook runner: record of {len} bytes; stopping");
        return None;
    }
    let mut body = vec![0; len];
    pipe.read_exact(&mut body).ok()?;
    Some(body)
}

/// Runs the hook for one record; None when it could not be started.
fn start_hook(settings: &Settings, null: &OwnedFd, body: &[u8]) -> Option<Running> {
    let Some(([under_root, user, peer, vpath], size)) = decode(body) else {
        ::log::error!("upload hook runner: malformed record");
        return None;
    };
    let mut host = settings.root.as_os_str().as_bytes().to_vec();
    if host.ends_with(b"/") {
        host.pop();
    }
    host.extend_from_slice(&under_root);
    let exec = (|| {
        let program = CString::new(settings.program.as_os_str().as_bytes()).ok()?;
        let env = |name: &str, value: &[u8]| {
            let mut var = name.as_bytes().to_vec();
            var.extend_from_slice(value);
            CString::new(var).ok()
        };
        Some(sys::Exec {
            argv: vec![program.clone(), CString::new(host).ok()?],
            program,
            envp: vec![
                env(PATH, b"")?,
                env("MINFTPD_USER=", &user)?,
                env("MINFTPD_PEER=", &peer)?,
                env("MINFTPD_PATH=", &vpath)?,
                env("MINFTPD_SIZE=", size.to_string().as_bytes())?,
            ],
            null: null.try_clone().ok()?,
            keep_stderr: crate::daemon::logs_to_stderr(),
        })
    })();
    let Some(exec) = exec else {
        ::log::error!("upload hook: cannot pass {} to it", Quoted(&vpath));
        return None;
    };
    match sys::spawn(&exec) {
        Ok(pid) => {
            ::log::debug!("upload hook for {} started (pid {pid})", Quoted(&vpath));
            Some(Running {
                pid,
                deadline: Instant::now() + settings.timeout,
                vpath,
                killed: false,
            })
        }
        Err(e) => {
            ::log::error!("upload hook for {}: fork: {e}", Quoted(&vpath));
            None
        }
    }
}

/// Reaps the hooks that ended and logs those that failed.
fn reap(running: &mut Vec<Running>) {
    while let Some((pid, ended)) = sys::reap_any() {
        let Some(at) = running.iter().position(|r| r.pid == pid) else {
            continue;
        };
        let hook = running.swap_remove(at);
        let what = Quoted(&hook.vpath);
        match ended {
            sys::Ended::Exited(0) => ::log::debug!("upload hook for {what} done"),
            sys::Ended::Exited(127) => {
                ::log::warn!("upload hook for {what} exited with status 127 (could it be run?)")
            }
            sys::Ended::Exited(status) => {
                ::log::warn!("upload hook for {what} exited with status {status}")
            }
            sys::Ended::Signalled(_) if hook.killed => {}
            sys::Ended::Signalled(signal) => {
                ::log::warn!("upload hook for {what} killed by signal {signal}")
            }
        }
    }
}

/// Kills, with their whole process group, the hooks past their deadline.
fn kill_overdue(running: &mut [Running], timeout: Duration) {
    let now = Instant::now();
    for hook in running
        .iter_mut()
        .filter(|r| !r.killed && r.deadline <= now)
    {
        sys::kill_group(hook.pid);
        hook.killed = true;
        ::log::warn!(
            "upload hook for {} still running after upload_hook_timeout ({}s): killed",
            Quoted(&hook.vpath),
            timeout.as_secs()
        );
    }
}
