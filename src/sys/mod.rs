//! Every `unsafe` call of the program, each behind a small safe function that
//! returns `io::Result`. Nothing outside this folder may use `unsafe`; the
//! files split it by concern, and every function is re-exported here so that
//! callers name `sys::function` whatever file holds it.

use std::ffi::CString;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

/// Turns a C return value into `io::Result`, reading `errno` on -1.
fn check<T: Copy + PartialEq + From<i8>>(ret: T) -> io::Result<T> {
    if ret == T::from(-1) {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Like `check`, but retries while the call was interrupted by a signal.
fn retry<T: Copy + PartialEq + From<i8>>(mut call: impl FnMut() -> T) -> io::Result<T> {
    loop {
        match check(call()) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

fn cstring(name: &[u8]) -> io::Result<CString> {
    CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// Calls `f` with `name` as a C string, on the stack when it is short: a
/// listing stats every entry, and an allocation per entry showed in profiles.
fn with_cstr<T>(
    name: &[u8],
    f: impl FnOnce(*const libc::c_char) -> io::Result<T>,
) -> io::Result<T> {
    const STACK: usize = 256;
    if name.len() < STACK {
        if name.contains(&0) {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let mut buf = [0u8; STACK];
        buf[..name.len()].copy_from_slice(name);
        f(buf.as_ptr().cast())
    } else {
        let name = cstring(name)?;
        f(name.as_ptr())
    }
}

fn owned(fd: libc::c_int) -> OwnedFd {
    // SAFETY: callers pass a descriptor the kernel has just returned to us and
    // that nothing else owns.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

mod files;
mod identity;
mod passwords;
mod pipes;
mod process;
mod resources;
mod sandbox;
mod signals;
mod sockets;

pub use files::*;
pub use identity::*;
pub use passwords::*;
pub use pipes::*;
pub use process::*;
pub use resources::*;
pub use sandbox::*;
pub use signals::*;
pub use sockets::*;
