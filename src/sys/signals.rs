//! Signals: SIGTERM/SIGINT ask the main thread to stop, SIGHUP to reload.
//! Nothing a client sends reaches these.

use super::check;
use std::io;

use std::sync::atomic::{AtomicBool, Ordering};

static TERMINATE: AtomicBool = AtomicBool::new(false);
static RELOAD: AtomicBool = AtomicBool::new(false);

extern "C" fn on_terminate(_: libc::c_int) {
    TERMINATE.store(true, Ordering::SeqCst);
}

extern "C" fn on_reload(_: libc::c_int) {
    RELOAD.store(true, Ordering::SeqCst);
}

fn set_handler(signal: libc::c_int, handler: extern "C" fn(libc::c_int)) -> io::Result<()> {
    // SAFETY: all-zero sigaction is valid; we set the handler and leave the mask empty.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = handler as usize;
    // SA_RESTART: no worker's blocking call fails with EINTR; the main thread
    // polls the flags instead of relying on an interrupted call.
    action.sa_flags = libc::SA_RESTART;
    // SAFETY: action is fully initialised; the handler only stores to an atomic.
    check(unsafe { libc::sigaction(signal, &action, std::ptr::null_mut()) })?;
    Ok(())
}

/// Installs handlers that only set flags: SIGTERM/SIGINT ask to stop, SIGHUP to
/// reload. SIGPIPE is ignored so a vanished peer is an error, not a death.
pub fn install_signal_handlers() -> io::Result<()> {
    set_handler(libc::SIGTERM, on_terminate)?;
    set_handler(libc::SIGINT, on_terminate)?;
    set_handler(libc::SIGHUP, on_reload)?;
    // SAFETY: SIG_IGN is a valid disposition.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    Ok(())
}

pub fn termination_requested() -> bool {
    TERMINATE.load(Ordering::SeqCst)
}

/// True once per SIGHUP received.
pub fn take_reload_request() -> bool {
    RELOAD.swap(false, Ordering::SeqCst)
}
