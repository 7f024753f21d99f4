//! The seccomp deny-list: the syscalls an FTP server never makes, in one
//! table, and the BPF program built from it. No client input reaches this
//! file; it bounds what a client who took over a worker could ask the kernel.
//! Why a deny-list, EPERM and a killed foreign architecture: see `sandbox`.

use crate::sys;
use std::io;

/// One denied syscall: its number for this target, its name, and why.
pub struct Denied {
    pub nr: libc::c_long,
    /// `SYS_` and the name.
    pub name: &'static str,
    pub why: &'static str,
}

/// `deny! { SYS_name: "why", ... }`: one `Denied` per line, its number
/// from `libc` for the target being built (x86_64 and aarch64 differ).
macro_rules! deny {
    ($($nr:ident: $why:expr,)*) => {
        &[$(Denied { nr: libc::$nr, name: stringify!($nr), why: $why },)*]
    };
}

/// THE TABLE: every syscall the filter answers with EPERM, and why an FTP
/// server never makes it after start-up. (Also: `clone` with a namespace
/// flag is EPERM, as `unshare` is, and `clone3`, whose flags a filter cannot
/// read, is ENOSYS, so that libc falls back to `clone`; see `program`.)
pub const DENIED: &[Denied] = deny! {
    SYS_ptrace: "reads and writes other processes",
    SYS_process_vm_readv: "reads another process's memory",
    SYS_process_vm_writev: "writes another process's memory",
    SYS_kcmp: "compares other processes' kernel objects",
    SYS_pidfd_getfd: "steals another process's descriptors",
    SYS_process_madvise: "acts on another process's memory",
    SYS_mount: "changes the mount table",
    SYS_umount2: "changes the mount table",
    SYS_pivot_root: "changes the root",
    SYS_chroot: "changes the root (done once, at start-up, before the filter)",
    SYS_fsopen: "new mount API",
    SYS_fsconfig: "new mount API",
    SYS_fsmount: "new mount API",
    SYS_fspick: "new mount API",
    SYS_move_mount: "new mount API",
    SYS_open_tree: "new mount API",
    SYS_mount_setattr: "new mount API",
    SYS_open_by_handle_at: "opens a file by handle, past chroot and path checks",
    SYS_name_to_handle_at: "makes handles for open_by_handle_at",
    SYS_unshare: "new namespaces (a user namespace brings back capabilities)",
    SYS_setns: "enters other namespaces",
    SYS_execve: "runs programs (the upload hook runner is started before)",
    SYS_execveat: "runs programs",
    SYS_setuid: "identity is set once at start-up, before the filter",
    SYS_setgid: "identity is set once at start-up",
    SYS_setreuid: "identity is set once at start-up",
    SYS_setregid: "identity is set once at start-up",
    SYS_setresuid: "identity is set once at start-up",
    SYS_setresgid: "identity is set once at start-up",
    SYS_setfsuid: "identity is set once at start-up",
    SYS_setfsgid: "identity is set once at start-up",
    SYS_setgroups: "identity is set once at start-up",
    SYS_capset: "capabilities are set once at start-up",
    SYS_kexec_load: "replaces the kernel",
    SYS_init_module: "loads kernel code",
    SYS_finit_module: "loads kernel code",
    SYS_delete_module: "unloads kernel code",
    SYS_bpf: "loads programs into the kernel",
    SYS_perf_event_open: "kernel attack surface, reads other processes",
    SYS_userfaultfd: "stalls the kernel at will (exploit aid)",
    SYS_keyctl: "kernel keyrings",
    SYS_add_key: "kernel keyrings",
    SYS_request_key: "kernel keyrings",
    SYS_io_uring_setup: "kernel attack surface, bypasses seccomp per operation",
    SYS_io_uring_enter: "kernel attack surface",
    SYS_io_uring_register: "kernel attack surface",
    SYS_personality: "changes the ABI (READ_IMPLIES_EXEC)",
    SYS_acct: "process accounting",
    SYS_swapon: "swap",
    SYS_swapoff: "swap",
    SYS_reboot: "reboots",
    SYS_quotactl: "disk quotas",
    SYS_syslog: "reads the kernel log",
    SYS_settimeofday: "sets the clock",
    SYS_clock_settime: "sets the clock",
    SYS_clock_adjtime: "sets the clock",
    SYS_adjtimex: "sets the clock",
    SYS_sethostname: "names the host",
    SYS_setdomainname: "names the host",
    SYS_vhangup: "hangs up the terminal",
    SYS_lookup_dcookie: "profiling",
};

/// x86_64 only: port I/O, LDT and old loader calls; and kexec_file_load,
/// which libc names for x86_64 but not for aarch64 musl.
#[cfg(target_arch = "x86_64")]
const DENIED_ARCH: &[Denied] = deny! {
    SYS_kexec_file_load: "replaces the kernel",
    SYS_iopl: "port I/O",
    SYS_ioperm: "port I/O",
    SYS_modify_ldt: "segment tables (exploit aid)",
    SYS_uselib: "loads libraries the old way",
};
/// aarch64: kexec_file_load by its number in asm-generic/unistd.h.
#[cfg(target_arch = "aarch64")]
const DENIED_ARCH: &[Denied] = &[Denied {
    nr: 294,
    name: "SYS_kexec_file_load",
    why: "replaces the kernel",
}];

/// Every denied syscall of this target.
pub fn denied() -> impl Iterator<Item = &'static Denied> {
    DENIED.iter().chain(DENIED_ARCH)
}

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E; // AUDIT_ARCH_X86_64
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7; // AUDIT_ARCH_AARCH64

/// x32 syscalls arrive with AUDIT_ARCH_X86_64 and this bit in the number.
#[cfg(target_arch = "x86_64")]
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// clone flags that make namespaces (CLONE_NEWTIME is 0x80, which clone reads
/// as part of the exit signal, so it is unshare's and clone3's only).
const CLONE_NAMESPACES: u32 = 0x0002_0000 // CLONE_NEWNS
    | 0x0200_0000 // CLONE_NEWCGROUP
    | 0x0400_0000 // CLONE_NEWUTS
    | 0x0800_0000 // CLONE_NEWIPC
    | 0x1000_0000 // CLONE_NEWUSER
    | 0x2000_0000 // CLONE_NEWPID
    | 0x4000_0000; // CLONE_NEWNET

// Classic BPF as seccomp reads it (linux/filter.h, linux/seccomp.h).
const LD_W_ABS: u16 = 0x20; // BPF_LD (0) | BPF_W (0) | BPF_ABS (0x20)
const JEQ_K: u16 = 0x05 | 0x10; // BPF_JMP | BPF_JEQ | BPF_K
const JGE_K: u16 = 0x05 | 0x30; // BPF_JMP | BPF_JGE | BPF_K
const JSET_K: u16 = 0x05 | 0x40; // BPF_JMP | BPF_JSET | BPF_K
const RET_K: u16 = 0x06; // BPF_RET | BPF_K
const OFFSET_NR: u32 = 0; // struct seccomp_data: int nr
const OFFSET_ARCH: u32 = 4; // __u32 arch
const OFFSET_ARG0_LOW: u32 = 16; // __u64 args[6], low half on little-endian
const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
const KILL: u32 = libc::SECCOMP_RET_KILL_PROCESS;

fn errno(e: i32) -> u32 {
    libc::SECCOMP_RET_ERRNO | (e as u32 & libc::SECCOMP_RET_DATA)
}

fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// The filter: a foreign architecture (and x32) kills the process; a
/// skipped call (number -1) passes; each
/// denied number answers EPERM (two instructions per entry, no long jumps);
/// clone3 answers ENOSYS; clone with a namespace flag EPERM; all else runs.
pub fn program() -> Vec<libc::sock_filter> {
    let mut p = vec![
        stmt(LD_W_ABS, OFFSET_ARCH),
        jump(JEQ_K, AUDIT_ARCH, 1, 0),
        stmt(RET_K, KILL),
        stmt(LD_W_ABS, OFFSET_NR),
        // -1 is a tracer skipping the call (strace's fault injection): the
        // kernel runs nothing and returns what the tracer sets.
        jump(JEQ_K, u32::MAX, 0, 1),
        stmt(RET_K, ALLOW),
    ];
    #[cfg(target_arch = "x86_64")]
    p.extend([jump(JGE_K, X32_SYSCALL_BIT, 0, 1), stmt(RET_K, KILL)]);
    #[cfg(not(target_arch = "x86_64"))]
    let _ = JGE_K;
    for d in denied() {
        p.extend([
            jump(JEQ_K, d.nr as u32, 0, 1),
            stmt(RET_K, errno(libc::EPERM)),
        ]);
    }
    p.extend([
        jump(JEQ_K, libc::SYS_clone3 as u32, 0, 1),
        stmt(RET_K, errno(libc::ENOSYS)),
        jump(JEQ_K, libc::SYS_clone as u32, 1, 0),
        stmt(RET_K, ALLOW),
        stmt(LD_W_ABS, OFFSET_ARG0_LOW),
        jump(JSET_K, CLONE_NAMESPACES, 0, 1),
        stmt(RET_K, errno(libc::EPERM)),
        stmt(RET_K, ALLOW),
    ]);
    p
}

/// Installs the filter on the calling thread; returns how many syscalls it
/// denies. Needs `no_new_privs` (or CAP_SYS_ADMIN) first.
pub fn install() -> io::Result<usize> {
    sys::install_seccomp_filter(&program())?;
    Ok(denied().count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_no_duplicates_and_spares_what_the_server_needs() {
        let mut nrs: Vec<_> = denied().map(|d| d.nr).collect();
        nrs.sort();
        let len = nrs.len();
        nrs.dedup();
        assert_eq!(nrs.len(), len, "a syscall is listed twice");
        for needed in [
            libc::SYS_openat,
            libc::SYS_sendfile,
            libc::SYS_clone,
            libc::SYS_prctl,
        ] {
            assert!(!nrs.contains(&needed));
        }
    }

    #[test]
    fn the_program_fits_and_ends_in_a_return() {
        let p = program();
        assert!(p.len() < 4096);
        assert_eq!(p.last().map(|i| (i.code, i.k)), Some((RET_K, ALLOW)));
    }
}
