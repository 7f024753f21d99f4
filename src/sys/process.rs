//! Processes for the upload hook: the event pipe, the fork of the runner at
//! start-up, and the runner's fork+execve of the hook program, its timeout
//! kill and its reaping. No client byte is interpreted here: the hook's
//! argument and environment reach execve as they are, with no shell between.

use super::{check, retry};
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

/// Which side of a `fork` we are on.
pub enum Forked {
    Parent(libc::pid_t),
    Child,
}

/// `fork()`. Only sound while the process has one thread (start-up, before
/// the pool, or the single-threaded runner): the child gets a copy of memory
/// in which no other thread holds a lock.
pub fn fork() -> io::Result<Forked> {
    // SAFETY: see above; callers fork only while single-threaded.
    let pid = check(unsafe { libc::fork() })?;
    Ok(if pid == 0 {
        Forked::Child
    } else {
        Forked::Parent(pid)
    })
}

/// Ends the process at once, without running exit handlers or flushing
/// buffers copied from the parent at the fork.
pub fn exit_now(status: i32) -> ! {
    // SAFETY: _exit never returns and is always safe to call.
    unsafe { libc::_exit(status) }
}

/// Ignores the termination and hang-up signals in the runner: it ends when the
/// server closes the event pipe, so a group-wide SIGTERM or a terminal's ^C
/// lets the server finish its grace and the runner run the hooks it sent.
pub fn ignore_stop_signals() {
    for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGPIPE] {
        // SAFETY: SIG_IGN is a valid disposition.
        unsafe { libc::signal(signal, libc::SIG_IGN) };
    }
}

/// Points `target` (0, 1 or 2) at `fd`.
pub fn dup_onto(fd: BorrowedFd, target: i32) -> io::Result<()> {
    // SAFETY: plain integer arguments; `target` is a standard descriptor
    // that this process owns by convention.
    retry(|| unsafe { libc::dup2(fd.as_raw_fd(), target) })?;
    Ok(())
}

/// Waits up to `timeout_ms` (-1: without end) for `fd` to be readable or
/// closed at the other end.
pub fn wait_readable(fd: BorrowedFd, timeout_ms: i32) -> io::Result<bool> {
    let mut poll = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    match check(unsafe { libc::poll(&mut poll, 1, timeout_ms) }) {
        Ok(n) => Ok(n > 0),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(false),
        Err(e) => Err(e),
    }
}

/// What the hook program gets: its path, its argv and its environment.
pub struct Exec {
    pub program: CString,
    pub argv: Vec<CString>,
    pub envp: Vec<CString>,
    /// Where its standard input and output go (and error, unless
    /// `keep_stderr`): /dev/null.
    pub null: OwnedFd,
    pub keep_stderr: bool,
}

/// Starts `exec` in a new process group of its own (so that a timeout kills
/// everything it started) and returns its pid. The child resets the signals
/// the runner ignores, dies with the runner, and closes every descriptor but
/// 0, 1 and 2; if execve fails it exits with 127, as a shell would.
pub fn spawn(exec: &Exec) -> io::Result<libc::pid_t> {
    // Built before the fork: the child only makes system calls.
    let ptrs = |v: &[CString]| {
        v.iter()
            .map(|s| s.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect::<Vec<_>>()
    };
    let argv = ptrs(&exec.argv);
    let envp = ptrs(&exec.envp);
    match fork()? {
        Forked::Parent(pid) => {
            // Also in the parent, so a kill right after the fork finds the group.
            // SAFETY: plain integer arguments; EACCES after the exec is harmless.
            unsafe { libc::setpgid(pid, pid) };
            Ok(pid)
        }
        Forked::Child => {
            // SAFETY: after fork in a single-threaded process; the pointers
            // point into memory the fork copied; execve only returns on failure.
            unsafe {
                libc::setpgid(0, 0);
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
                for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGPIPE] {
                    libc::signal(signal, libc::SIG_DFL);
                }
                let mut none: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut none);
                libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
                let null = exec.null.as_raw_fd();
                libc::dup2(null, 0);
                libc::dup2(null, 1);
                if !exec.keep_stderr {
                    libc::dup2(null, 2);
                }
                libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
                libc::chdir(c"/".as_ptr());
                libc::execve(exec.program.as_ptr(), argv.as_ptr(), envp.as_ptr());
                libc::_exit(127)
            }
        }
    }
}

/// SIGKILL to the whole process group `pid` leads.
pub fn kill_group(pid: libc::pid_t) {
    // SAFETY: plain integer arguments; a group already gone gives ESRCH.
    unsafe { libc::kill(-pid, libc::SIGKILL) };
}

/// How a reaped child ended.
pub enum Ended {
    Exited(i32),
    Signalled(i32),
}

/// Reaps one ended child without waiting, if any.
pub fn reap_any() -> Option<(libc::pid_t, Ended)> {
    let mut status = 0;
    // SAFETY: status is a valid out-pointer.
    let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
    if pid <= 0 {
        return None;
    }
    let ended = if libc::WIFEXITED(status) {
        Ended::Exited(libc::WEXITSTATUS(status))
    } else {
        Ended::Signalled(libc::WTERMSIG(status))
    };
    Some((pid, ended))
}

/// Closes a descriptor that no Rust object owns (one inherited at start-up).
pub fn close_fd(fd: std::os::fd::RawFd) {
    // SAFETY: callers pass descriptors nothing in this process owns or uses.
    unsafe { libc::close(fd) };
}

/// `PR_SET_NO_NEW_PRIVS`: no set-user-ID program run from here gains rights.
pub fn forbid_new_privileges() -> io::Result<()> {
    // SAFETY: plain integer arguments.
    check(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) })?;
    Ok(())
}
