//! Identity and privilege: effective uid, pid, chroot, dropping to the
//! run-as account, and the one capability kept for port 20. Only start-up
//! calls these; nothing a client sends reaches them.

use super::{check, cstring};
use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;

pub fn geteuid() -> u32 {
    // SAFETY: cannot fail.
    unsafe { libc::geteuid() }
}

pub fn getpid() -> i32 {
    // SAFETY: cannot fail.
    unsafe { libc::getpid() }
}

pub fn chroot(dir: &OsStr) -> io::Result<()> {
    let dir = cstring(dir.as_bytes())?;
    // SAFETY: dir is NUL-terminated.
    check(unsafe { libc::chroot(dir.as_ptr()) })?;
    Ok(())
}

/// Drops supplementary groups, then sets gid and uid (in that order: after
/// setuid we could no longer change groups).
pub fn drop_identity(uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: a zero-length list needs no pointer.
    check(unsafe { libc::setgroups(0, std::ptr::null()) })?;
    // SAFETY: plain integer arguments.
    check(unsafe { libc::setresgid(gid, gid, gid) })?;
    // SAFETY: plain integer arguments.
    check(unsafe { libc::setresuid(uid, uid, uid) })?;
    Ok(())
}

/// True when the process can become root again (which must never be the case
/// after `drop_identity`).
pub fn can_regain_root() -> bool {
    // SAFETY: plain integer argument; success would be the bug we look for.
    unsafe { libc::setuid(0) == 0 }
}

/// Keeps permitted capabilities across the coming setuid (`PR_SET_KEEPCAPS`).
pub fn keep_caps_across_setuid() -> io::Result<()> {
    // SAFETY: plain integer arguments.
    check(unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) })?;
    Ok(())
}

const CAP_NET_BIND_SERVICE: u32 = 10;
const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Reduces the process (all threads that exist now: call before starting any) to
/// exactly `CAP_NET_BIND_SERVICE`, effective and permitted.
pub fn keep_only_net_bind_service() -> io::Result<()> {
    let header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    data[0].effective = 1 << CAP_NET_BIND_SERVICE;
    data[0].permitted = 1 << CAP_NET_BIND_SERVICE;
    // SAFETY: header and data are valid for the layout capset(2) documents.
    check(unsafe { libc::syscall(libc::SYS_capset, &header as *const CapHeader, data.as_ptr()) })?;
    Ok(())
}
