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
use std::os::unix::ffi::{OsStrExt, OsStringExt};
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
    let null = match detach(sockets).and_then(|null| become_run_as(settings).map(|()| null)) {
        Ok(null) => null,
        Err(e) => {
            ::log::error!("upload hook runner: {e}; no hooks will run");
            return 1;
        }
    };
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
        let wait = match running.is_empty() {
            true => -1,
            false => TICK.as_millis() as i32,
        };
        // A poll error ends the runner like the end of the pipe does.
        let record = match sys::wait_readable(pipe.as_fd(), wait) {
            Ok(false) => continue,
            Ok(true) => read_record(&mut pipe),
            Err(_) => None,
        };
        match record {
            Some(body) => match start_hook(settings, &null, &body) {
                Ok(hook) => running.push(hook),
                Err(why) => ::log::error!("upload hook not run: {why}"),
            },
            None => open = false,
        }
    }
    0
}

/// Leaves the server's sockets and standard streams behind: in inetd mode
/// they are the client's connection, which must close when the server ends.
/// Standard error stays when the log goes there. Returns /dev/null, opened
/// for the hooks' standard streams.
fn detach(sockets: &[RawFd]) -> Result<OwnedFd, &'static str> {
    let null = File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map(OwnedFd::from)
        .map_err(|_| "cannot open /dev/null")?;
    let stdio = if crate::daemon::logs_to_stderr() {
        2
    } else {
        3
    };
    for target in 0..stdio {
        sys::dup_onto(null.as_fd(), target).map_err(|_| "dup2 failed")?;
    }
    for &fd in sockets.iter().filter(|&&fd| fd > 2) {
        sys::close_fd(fd);
    }
    Ok(null)
}

/// As root: the run-as account, no supplementary groups, and proof that root
/// cannot come back. Either way, no hook may gain privileges through a
/// set-user-ID program.
fn become_run_as(settings: &Settings) -> Result<(), &'static str> {
    if let Some(account) = &settings.run_as {
        sys::drop_identity(account.uid, account.gid)
            .map_err(|_| "cannot become the run_as account")?;
    }
    if sys::can_regain_root() {
        return Err("setuid(0) still works");
    }
    sys::forbid_new_privileges().map_err(|_| "PR_SET_NO_NEW_PRIVS failed")
}

/// One record's body, or None at the end of the pipe (or a record longer
/// than any the server sends: the stream cannot be trusted after it).
fn read_record(pipe: &mut File) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    pipe.read_exact(&mut len).ok()?;
    let len = u32::from_le_bytes(len) as usize;
    let mut body = vec![0; len.min(MAX_RECORD + 1)];
    pipe.read_exact(&mut body).ok()?;
    (len <= MAX_RECORD).then_some(body)
}

/// The host path of the uploaded file with every symlink resolved, which must
/// still be below the served root (`root` is canonical). The server wrote the
/// file through its path layer, which keeps a symlink planted in the tree
/// inside the root; read on the host, the same string could lead anywhere
/// (an absolute link), and the hook, outside the chroot, would act on that
/// other file. Such a path is not handed over.
fn inside_root(root: &std::path::Path, host: Vec<u8>) -> Result<Vec<u8>, &'static str> {
    let path = std::path::PathBuf::from(std::ffi::OsString::from_vec(host));
    let resolved = std::fs::canonicalize(path).map_err(|_| "the file is gone or unreachable")?;
    if !resolved.starts_with(root) {
        return Err("its path leads outside the served root through a symlink");
    }
    Ok(resolved.into_os_string().into_vec())
}

/// Runs the hook for one record.
fn start_hook(settings: &Settings, null: &OwnedFd, body: &[u8]) -> Result<Running, &'static str> {
    let ([under_root, user, peer, vpath], size) = decode(body).ok_or("malformed record")?;
    let mut host = settings.root.as_os_str().as_bytes().to_vec();
    if host.ends_with(b"/") {
        host.pop();
    }
    host.extend_from_slice(&under_root);
    let host = inside_root(&settings.root, host)?;
    let nul = "a NUL byte";
    let program = CString::new(settings.program.as_os_str().as_bytes()).map_err(|_| nul)?;
    let size = size.to_string();
    let vars: [(&str, &[u8]); 5] = [
        (PATH, b""),
        ("MINFTPD_USER=", &user),
        ("MINFTPD_PEER=", &peer),
        ("MINFTPD_PATH=", &vpath),
        ("MINFTPD_SIZE=", size.as_bytes()),
    ];
    let mut envp = Vec::with_capacity(vars.len());
    for (name, value) in vars {
        envp.push(CString::new([name.as_bytes(), value].concat()).map_err(|_| nul)?);
    }
    let exec = sys::Exec {
        argv: vec![program.clone(), CString::new(host).map_err(|_| nul)?],
        program,
        envp,
        null: null.try_clone().map_err(|_| "out of descriptors")?,
        keep_stderr: crate::daemon::logs_to_stderr(),
    };
    let pid = sys::spawn(&exec).map_err(|_| "fork failed")?;
    ::log::debug!("upload hook for {} started (pid {pid})", Quoted(&vpath));
    Ok(Running {
        pid,
        deadline: Instant::now() + settings.timeout,
        vpath,
        killed: false,
    })
}

/// Reaps the hooks that ended and logs those that failed (127: the program
/// could not be run).
fn reap(running: &mut Vec<Running>) {
    while let Some((pid, ended)) = sys::reap_any() {
        let Some(at) = running.iter().position(|r| r.pid == pid) else {
            continue;
        };
        let hook = running.swap_remove(at);
        let (how, n) = match ended {
            sys::Ended::Exited(0) => continue,
            sys::Ended::Signalled(_) if hook.killed => continue,
            sys::Ended::Exited(status) => ("exited with status", status),
            sys::Ended::Signalled(signal) => ("killed by signal", signal),
        };
        ::log::warn!("upload hook for {} {how} {n}", Quoted(&hook.vpath));
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
