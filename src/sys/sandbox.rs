//! The kernel sandbox's system calls: Landlock (ruleset, rules, restriction),
//! `no_new_privs`, and installing a seccomp filter. No client input reaches
//! them: start-up calls them once, with rules built from the configuration
//! (see `crate::sandbox`, which holds the policy and its tables).

use super::{check, owned};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

/// `struct landlock_ruleset_attr` as of ABI 6: the kernel accepts this size
/// from every ABI on (`copy_struct_from_user`) as long as the fields it does
/// not know are zero, which `crate::sandbox` ensures.
#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
    handled_access_net: u64,
    scoped: u64,
}

/// `struct landlock_path_beneath_attr` (packed in the kernel's header).
#[repr(C, packed)]
struct PathBeneathAttr {
    allowed_access: u64,
    parent_fd: i32,
}

/// `struct landlock_net_port_attr`.
#[repr(C)]
struct NetPortAttr {
    allowed_access: u64,
    port: u64,
}

const LANDLOCK_CREATE_RULESET_VERSION: u32 = 1;
const LANDLOCK_RULE_PATH_BENEATH: libc::c_int = 1;
const LANDLOCK_RULE_NET_PORT: libc::c_int = 2;

/// The Landlock ABI version the kernel offers; `ENOSYS` or `EOPNOTSUPP` when
/// it offers none (older than 5.13, or Landlock not enabled at boot).
pub fn landlock_abi() -> io::Result<u32> {
    // SAFETY: a NULL attribute with size 0 and the VERSION flag only asks
    // for the ABI number; no memory is read or written.
    let ret = check(unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<RulesetAttr>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    })?;
    Ok(ret as u32)
}

/// A new Landlock ruleset handling these rights (denied unless a rule allows).
pub fn landlock_ruleset(fs: u64, net: u64, scoped: u64) -> io::Result<OwnedFd> {
    let attr = RulesetAttr {
        handled_access_fs: fs,
        handled_access_net: net,
        scoped,
    };
    // SAFETY: attr is a live, fully initialised struct of the size we pass.
    let fd = check(unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            &attr as *const RulesetAttr,
            std::mem::size_of::<RulesetAttr>(),
            0u32,
        )
    })?;
    Ok(owned(fd as libc::c_int))
}

/// Allows `access` beneath the directory (or on the file) `at`.
pub fn landlock_allow_beneath(ruleset: &OwnedFd, at: BorrowedFd, access: u64) -> io::Result<()> {
    let attr = PathBeneathAttr {
        allowed_access: access,
        parent_fd: at.as_raw_fd(),
    };
    // SAFETY: both descriptors are open for the call; attr is initialised.
    check(unsafe {
        libc::syscall(
            libc::SYS_landlock_add_rule,
            ruleset.as_raw_fd(),
            LANDLOCK_RULE_PATH_BENEATH,
            &attr as *const PathBeneathAttr,
            0u32,
        )
    })?;
    Ok(())
}

/// Allows `access` (bind, connect) on TCP `port`.
pub fn landlock_allow_port(ruleset: &OwnedFd, port: u16, access: u64) -> io::Result<()> {
    let attr = NetPortAttr {
        allowed_access: access,
        port: u64::from(port),
    };
    // SAFETY: the descriptor is open for the call; attr is initialised.
    check(unsafe {
        libc::syscall(
            libc::SYS_landlock_add_rule,
            ruleset.as_raw_fd(),
            LANDLOCK_RULE_NET_PORT,
            &attr as *const NetPortAttr,
            0u32,
        )
    })?;
    Ok(())
}

/// Confines the calling thread (and every thread and process it starts
/// afterwards) to the ruleset. Needs `no_new_privs` first.
pub fn landlock_restrict_self(ruleset: &OwnedFd) -> io::Result<()> {
    // SAFETY: plain descriptor and flags.
    check(unsafe { libc::syscall(libc::SYS_landlock_restrict_self, ruleset.as_raw_fd(), 0u32) })?;
    Ok(())
}

/// `PR_SET_NO_NEW_PRIVS`: no exec can ever grant privileges again; needed
/// by both Landlock and seccomp without `CAP_SYS_ADMIN`. Linux 3.5+.
pub fn set_no_new_privs() -> io::Result<()> {
    // SAFETY: integer arguments only.
    check(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) })?;
    Ok(())
}

/// Installs a seccomp BPF filter on the calling thread (and what it starts
/// afterwards): the `seccomp(2)` call (3.17+), else `prctl` (3.5+).
pub fn install_seccomp_filter(program: &[libc::sock_filter]) -> io::Result<()> {
    let len =
        u16::try_from(program.len()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let prog = libc::sock_fprog {
        len,
        // The kernel only reads the program; the cast to *mut is the C type's.
        filter: program.as_ptr().cast_mut(),
    };
    // SAFETY: prog points at `len` initialised instructions that outlive the
    // call; the kernel copies them.
    let ret = check(unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0u32,
            &prog as *const libc::sock_fprog,
        )
    });
    match ret {
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {
            // SAFETY: as above, through the older interface.
            check(unsafe {
                libc::prctl(
                    libc::PR_SET_SECCOMP,
                    libc::SECCOMP_MODE_FILTER,
                    &prog as *const libc::sock_fprog,
                )
            })?;
            Ok(())
        }
        other => other.map(drop),
    }
}
