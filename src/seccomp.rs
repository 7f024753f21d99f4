//! The seccomp deny-list: the syscalls an FTP server never makes, in one
//! table, and the BPF program built from it. No client input reaches this
//! file; it bounds what a client who took over a worker could ask the kernel.
//! Why a deny-list, EPERM and a killed foreign architecture: see `sandbox`.

use crate::sys;
use std::io;

/// THE TABLE: every syscall the filter answers with EPERM, and why an FTP
/// server never makes it after start-up. The numbers are `libc`'s for the
/// target being built (x86_64 and aarch64 number them differently); the
/// reasons are comments, not strings, to keep them out of the binary.
/// Also (see `program`): `clone` with a namespace flag is EPERM, as
/// `unshare` is, and `clone3`, whose flags a filter cannot read, is ENOSYS,
/// so that libc falls back to `clone`.
pub const DENIED: &[libc::c_long] = &[
    libc::SYS_ptrace,            // reads and writes other processes
    libc::SYS_process_vm_readv,  // reads another process's memory
    libc::SYS_process_vm_writev, // writes another process's memory
    libc::SYS_kcmp,              // compares other processes' kernel objects
    libc::SYS_pidfd_getfd,       // steals another process's descriptors
    libc::SYS_process_madvise,   // acts on another process's memory
    libc::SYS_mount,             // changes the mount table
    libc::SYS_umount2,           // changes the mount table
    libc::SYS_pivot_root,        // changes the root
    libc::SYS_chroot,            // changes the root (done once, at start-up, before the filter)
    libc::SYS_fsopen,            // new mount API
    libc::SYS_fsconfig,          // new mount API
    libc::SYS_fsmount,           // new mount API
    libc::SYS_fspick,            // new mount API
    libc::SYS_move_mount,        // new mount API
    libc::SYS_open_tree,         // new mount API
    libc::SYS_mount_setattr,     // new mount API
    libc::SYS_open_by_handle_at, // opens a file by handle, past chroot and path checks
    libc::SYS_name_to_handle_at, // makes handles for open_by_handle_at
    libc::SYS_unshare,           // new namespaces (a user namespace brings back capabilities)
    libc::SYS_setns,             // enters other namespaces
    libc::SYS_execve,            // runs programs (the upload hook runner is started before)
    libc::SYS_execveat,          // runs programs
    libc::SYS_setuid,            // identity is set once at start-up, before the filter
    libc::SYS_setgid,            // identity is set once at start-up
    libc::SYS_setreuid,          // identity is set once at start-up
    libc::SYS_setregid,          // identity is set once at start-up
    libc::SYS_setresuid,         // identity is set once at start-up
    libc::SYS_setresgid,         // identity is set once at start-up
    libc::SYS_setfsuid,          // identity is set once at start-up
    libc::SYS_setfsgid,          // identity is set once at start-up
    libc::SYS_setgroups,         // identity is set once at start-up
    libc::SYS_capset,            // capabilities are set once at start-up
    libc::SYS_kexec_load,        // replaces the kernel
    libc::SYS_init_module,       // loads kernel code
    libc::SYS_finit_module,      // loads kernel code
    libc::SYS_delete_module,     // unloads kernel code
    libc::SYS_bpf,               // loads programs into the kernel
    libc::SYS_perf_event_open,   // kernel attack surface, reads other processes
    libc::SYS_userfaultfd,       // stalls the kernel at will (exploit aid)
    libc::SYS_keyctl,            // kernel keyrings
    libc::SYS_add_key,           // kernel keyrings
    libc::SYS_request_key,       // kernel keyrings
    libc::SYS_io_uring_setup,    // kernel attack surface, bypasses seccomp per operation
    libc::SYS_io_uring_enter,    // kernel attack surface
    libc::SYS_io_uring_register, // kernel attack surface
    libc::SYS_personality,       // changes the ABI (READ_IMPLIES_EXEC)
    libc::SYS_acct,              // process accounting
    libc::SYS_swapon,            // swap
    libc::SYS_swapoff,           // swap
    libc::SYS_reboot,            // reboots
    libc::SYS_quotactl,          // disk quotas
    libc::SYS_syslog,            // reads the kernel log
    libc::SYS_settimeofday,      // sets the clock
    libc::SYS_clock_settime,     // sets the clock
    libc::SYS_clock_adjtime,     // sets the clock
    libc::SYS_adjtimex,          // sets the clock
    libc::SYS_sethostname,       // names the host
    libc::SYS_setdomainname,     // names the host
    libc::SYS_vhangup,           // hangs up the terminal
    libc::SYS_lookup_dcookie,    // profiling
];

/// x86_64 only: port I/O, LDT and old loader calls; and kexec_file_load,
/// which libc names for x86_64 but not for aarch64 musl.
#[cfg(target_arch = "x86_64")]
const DENIED_ARCH: &[libc::c_long] = &[
    libc::SYS_kexec_file_load, // replaces the kernel
    libc::SYS_iopl,            // port I/O
    libc::SYS_ioperm,          // port I/O
    libc::SYS_modify_ldt,      // segment tables (exploit aid)
    libc::SYS_uselib,          // loads libraries the old way
];
/// aarch64: kexec_file_load by its number in asm-generic/unistd.h.
#[cfg(target_arch = "aarch64")]
const DENIED_ARCH: &[libc::c_long] = &[
    294, // kexec_file_load: replaces the kernel
];

/// Every denied syscall of this target.
pub fn denied() -> impl Iterator<Item = libc::c_long> {
    DENIED.iter().chain(DENIED_ARCH).copied()
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
    for nr in denied() {
        p.extend([
            jump(JEQ_K, nr as u32, 0, 1),
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
        let mut nrs: Vec<_> = denied().collect();
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
