//! The kernel sandbox applied after start-up (DESIGN.md step 5): Landlock
//! confines the filesystem to the served root and TCP binds to the ports the
//! configuration needs; seccomp denies the syscalls an FTP server never makes.
//! No client input reaches this file: the rules come from the configuration
//! and the users file, fixed once before the first client is served. What a
//! hostile client controls is what happens after, and this is what bounds it.
//!
//! Both degrade by what the kernel offers and never fail start-up: no
//! Landlock before Linux 5.13, no seccomp filter before 3.5 (or under an
//! emulator that refuses it); the start-up log line says what was applied.
//!
//! Why a deny-list and not vsftpd's allowlist: an allowlist names every call
//! libc makes, and a libc update that makes a new one (clone3, rseq, statx,
//! openat2, ...) kills every session ("500 OOPS: child died" on OpenWrt and
//! WSL). A static binary is built against musl or glibc, for x86_64 or
//! aarch64, and started standalone, from inetd or systemd: an allowlist would
//! have to be proven for each. A deny-list names what this program never
//! calls, so no libc change can break a working box, and every entry is one
//! an exploit would want. Denied calls return EPERM rather than killing the
//! process: a stray library call (a probe for io_uring, say) then fails as it
//! would on an older kernel instead of dropping every client at once. A
//! syscall made through another architecture's entry (i386 `int 0x80`, x32 on
//! x86_64) kills the process: this binary never makes one, and the numbers
//! there differ, so the deny-list would not hold for them.

use crate::auth::Users;
use crate::config::Config;
use crate::fs::{normalize, Root};
use crate::sys;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

/// Landlock filesystem rights (linux/landlock.h), and the ABI that added them.
mod fs_right {
    pub const WRITE_FILE: u64 = 1 << 1;
    pub const READ_FILE: u64 = 1 << 2;
    pub const READ_DIR: u64 = 1 << 3;
    pub const REMOVE_DIR: u64 = 1 << 4;
    pub const REMOVE_FILE: u64 = 1 << 5;
    pub const MAKE_DIR: u64 = 1 << 7;
    pub const MAKE_REG: u64 = 1 << 8;
    /// ABI 2: rename and link across directories.
    pub const REFER: u64 = 1 << 13;
    /// ABI 3: truncate.
    pub const TRUNCATE: u64 = 1 << 14;
    /// ABI 5: ioctl on devices.
    pub const IOCTL_DEV: u64 = 1 << 15;
    /// Every right of ABI 1: execute to make-symlink, bits 0 to 12.
    pub const ABI1: u64 = (1 << 13) - 1;
}

const NET_BIND_TCP: u64 = 1 << 0;
const SCOPE_ABSTRACT_UNIX_SOCKET: u64 = 1 << 0;
const SCOPE_SIGNAL: u64 = 1 << 1;

/// What the served root grants everywhere: reading files and listing.
const READ: u64 = fs_right::READ_FILE | fs_right::READ_DIR;
/// What a directory where the configuration allows writes grants besides
/// `READ`: the calls STOR, APPE, STOU, MKD, RMD, DELE and RNFR/RNTO make
/// (uploads go to a temporary name and are renamed; no FTP command makes a
/// symlink, device, FIFO or socket, and chmod and utimes are not Landlock
/// rights).
const WRITE: u64 = fs_right::WRITE_FILE
    | fs_right::REMOVE_DIR
    | fs_right::REMOVE_FILE
    | fs_right::MAKE_DIR
    | fs_right::MAKE_REG
    | fs_right::REFER
    | fs_right::TRUNCATE;

/// The filesystem rights a ruleset of this ABI handles: all it knows, so
/// that everything not granted below is denied.
fn handled_fs(abi: u32) -> u64 {
    let mut rights = fs_right::ABI1;
    if abi >= 2 {
        rights |= fs_right::REFER;
    }
    if abi >= 3 {
        rights |= fs_right::TRUNCATE;
    }
    if abi >= 5 {
        rights |= fs_right::IOCTL_DEV;
    }
    rights
}

/// A passive range wider than this is not turned into per-port bind rules
/// (one syscall and one kernel allocation each); bind stays unrestricted.
const MAX_PORT_RULES: usize = 8192;

/// The Landlock rules, one table a reader can audit (`sandbox_rules` is the
/// prose of it, and what the man page lists):
///
/// | what                                   | rights         | when                           |
/// |----------------------------------------|----------------|--------------------------------|
/// | the served root                        | READ           | always                         |
/// | anon_root + anon_upload_dir            | READ + WRITE   | write_enable, anonymous_enable |
/// | each `rw` home of the users file       | READ + WRITE   | write_enable                   |
/// | dirs of users_file, tls_*_file (below) | READ_FILE      | not chrooted (SIGHUP reload)   |
/// | anything else on the filesystem        | nothing        | ABI 1+ (ABI 2+ when writable)  |
/// | TCP bind: each port of pasv_min..max   | bind           | a range of <= 8192, ABI 4+     |
/// | TCP bind: port 20                      | bind           | connect_from_port_20, ABI 4+   |
/// | TCP bind to any other port             | nothing        | as above (else unrestricted)   |
/// | TCP connect                            | not restricted | (active mode: any port >= 1024)|
/// | signals, abstract UNIX sockets outside | nothing        | ABI 6+                         |
///
/// Listeners are bound before and never again, so they need no bind rule.
/// Connect stays unrestricted: Landlock rules are per port, not per address,
/// and active mode connects to whatever port >= 1024 the client names, so a
/// rule set would be 64512 rules wide and deny only what `data` already
/// refuses (ports below 1024).
struct Rules {
    read: Vec<OwnedFd>,
    write: Vec<OwnedFd>,
    reload: Vec<OwnedFd>,
    bind_ports: Option<Vec<u16>>,
    notes: Vec<String>,
}

/// The virtual directories (under the served root) where the configuration
/// allows writes.
fn writable_dirs(config: &Config, users: &Users) -> Vec<Vec<u8>> {
    if !config.write_enable {
        return Vec::new();
    }
    let mut dirs: Vec<Vec<u8>> = users.writable_homes().map(<[u8]>::to_vec).collect();
    if config.anonymous_enable && !config.anon_upload_dir.is_empty() {
        let home = normalize(b"/", config.anon_root.as_bytes());
        dirs.push(normalize(
            &home,
            config.anon_upload_dir.trim_start_matches('/').as_bytes(),
        ));
    }
    dirs
}

/// Where a file SIGHUP re-reads by `path` may be found next time: the real
/// directory it is in now (a file replaced by rename, certbot's next archive
/// file), and the real directory holding each symlink on its path (a
/// deployment that swaps a `current -> v2` link).
fn reload_dirs_of(path: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::canonicalize(path)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .into_iter()
        .collect();
    let mut prefix = PathBuf::new();
    for part in path.components() {
        prefix.push(part);
        let is_link = std::fs::symlink_metadata(&prefix).is_ok_and(|m| m.is_symlink());
        if let (true, Some(parent)) = (is_link, prefix.parent()) {
            dirs.extend(std::fs::canonicalize(parent));
        }
    }
    dirs
}

/// The directories SIGHUP re-reads files from. Chrooted, nothing is re-read.
fn reload_dirs(config: &Config, chrooted: bool) -> Vec<PathBuf> {
    if chrooted {
        return Vec::new();
    }
    let files = [
        &config.users_file,
        &config.tls_cert_file,
        &config.tls_key_file,
    ];
    // A directory named twice is two equal rules: harmless, and cheaper in
    // the binary than sorting.
    let mut dirs = Vec::new();
    for file in files.into_iter().flatten() {
        dirs.append(&mut reload_dirs_of(file));
    }
    dirs
}

/// The TCP ports this process may bind after start-up, or None when binds
/// stay unrestricted: without a passive range (`data` then binds random
/// ports of 1024-65535 itself, not port 0, which was slow; a rule for each
/// would be 64512 rules to refuse only the ports below 1024, which an
/// unprivileged process cannot bind anyway), or with a range too wide.
fn bind_ports(config: &Config) -> Option<Vec<u16>> {
    if config.pasv_min_port == 0 {
        return None;
    }
    let span = usize::from(config.pasv_max_port - config.pasv_min_port) + 1;
    if span > MAX_PORT_RULES {
        return None;
    }
    let mut ports: Vec<u16> = (config.pasv_min_port..=config.pasv_max_port).collect();
    if config.connect_from_port_20 {
        ports.push(20);
    }
    Some(ports)
}

impl Rules {
    fn from_config(config: &Config, root: &Root, users: &Users, chrooted: bool) -> Rules {
        let mut notes = Vec::new();
        let mut write = Vec::new();
        for dir in writable_dirs(config, users) {
            match root.subroot(&dir) {
                Ok(sub) => write.push(OwnedFd::from(sub)),
                Err(e) => notes.push(format!(
                    "no write rule for {}: {e}",
                    String::from_utf8_lossy(&dir)
                )),
            }
        }
        let mut reload = Vec::new();
        for dir in reload_dirs(config, chrooted) {
            match std::fs::File::open(&dir) {
                Ok(f) => reload.push(OwnedFd::from(f)),
                Err(e) => notes.push(format!("{}: {e}; SIGHUP cannot re-read it", dir.display())),
            }
        }
        let read = match root.as_fd().try_clone_to_owned() {
            Ok(fd) => vec![fd],
            Err(e) => {
                notes.push(format!("served root: {e}"));
                Vec::new()
            }
        };
        Rules {
            read,
            write,
            reload,
            bind_ports: bind_ports(config),
            notes,
        }
    }
}

/// What `landlock` applied, for the log line.
fn landlock(rules: &Rules) -> Result<String, String> {
    let abi = match sys::landlock_abi() {
        Ok(abi) => abi,
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSYS | libc::EOPNOTSUPP)) => {
            return Err("no landlock (the kernel offers none)".into())
        }
        Err(e) => return Err(format!("no landlock: {e}")),
    };
    // What is applied, said as "a, b, c" (a String, not a Vec and join:
    // the binary's size counts).
    let mut parts = String::new();
    let mut say = |what: &str| {
        if !parts.is_empty() {
            parts.push_str(", ");
        }
        parts.push_str(what);
    };
    // ABI 1 refuses every rename across directories once a ruleset handles
    // the filesystem: RNFR/RNTO between directories would break, so with
    // writable directories the filesystem is left to the path layer there.
    let fs = if abi < 2 && !rules.write.is_empty() {
        say("no filesystem rules (ABI 1 would refuse renames across directories)");
        0
    } else if rules.read.is_empty() {
        say("no filesystem rules (the served root is not open)");
        0
    } else {
        say("filesystem");
        handled_fs(abi)
    };
    let net = match (&rules.bind_ports, abi >= 4) {
        (Some(_), true) => {
            say("TCP bind");
            NET_BIND_TCP
        }
        (None, true) => {
            say("no TCP bind rules (no passive range, or one too wide)");
            0
        }
        (_, false) => 0,
    };
    let scoped = if abi >= 6 {
        say("signal and abstract socket scopes");
        SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL
    } else {
        0
    };
    if fs == 0 && net == 0 && scoped == 0 {
        return Err(format!("landlock ABI {abi}: nothing applied ({parts})"));
    }
    let fail = |what: &str, e: std::io::Error| format!("no landlock: {what}: {e}");
    let ruleset = sys::landlock_ruleset(fs, net, scoped).map_err(|e| fail("ruleset", e))?;
    if fs != 0 {
        let grants = [
            (&rules.read, READ),
            (&rules.write, READ | WRITE),
            (&rules.reload, fs_right::READ_FILE),
        ];
        for (fds, rights) in grants {
            for fd in fds {
                sys::landlock_allow_beneath(&ruleset, fd.as_fd(), rights & fs)
                    .map_err(|e| fail("directory rule", e))?;
            }
        }
    }
    if net != 0 {
        for &port in rules.bind_ports.iter().flatten() {
            sys::landlock_allow_port(&ruleset, port, NET_BIND_TCP)
                .map_err(|e| fail("port rule", e))?;
        }
    }
    sys::landlock_restrict_self(&ruleset).map_err(|e| fail("restrict", e))?;
    Ok(format!("landlock ABI {abi} ({parts})"))
}

/// Applies the sandbox to the calling thread and every thread it starts
/// afterwards (so: call it on the main thread before any other starts, after
/// the privilege drop), and returns the one line saying what was applied.
/// Never fails: what the kernel refuses is said in the line.
pub fn apply(config: &Config, root: &Root, users: &Users, chrooted: bool) -> String {
    if !config.sandbox {
        return "sandbox = no: no landlock, no seccomp".into();
    }
    if let Err(e) = sys::set_no_new_privs() {
        return format!("no sandbox: no_new_privs: {e} (the kernel is older than 3.5?)");
    }
    let rules = Rules::from_config(config, root, users, chrooted);
    let landlock = landlock(&rules).unwrap_or_else(|why| why);
    let seccomp = match crate::seccomp::install() {
        Ok(n) => format!("seccomp deny-list of {n} syscalls"),
        Err(e) => format!("no seccomp: {e}"),
    };
    let mut line = format!("sandbox: {landlock}, {seccomp}");
    for note in &rules.notes {
        line.push_str("; ");
        line.push_str(note);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handled_rights_grow_with_the_abi() {
        assert_eq!(handled_fs(1), fs_right::ABI1);
        assert_eq!(handled_fs(2) & fs_right::REFER, fs_right::REFER);
        assert_eq!(handled_fs(2) & fs_right::TRUNCATE, 0);
        assert_eq!(handled_fs(7), (1 << 16) - 1);
        assert_eq!(READ & 1, 0, "nothing is executed");
    }

    #[test]
    fn writable_dirs_follow_write_enable_and_the_upload_dir() {
        let mut config = Config {
            anonymous_enable: true,
            anon_root: "/pub".into(),
            anon_upload_dir: "/incoming".into(),
            ..Config::default()
        };
        assert!(writable_dirs(&config, &Users::default()).is_empty());
        config.write_enable = true;
        assert_eq!(
            writable_dirs(&config, &Users::default()),
            vec![b"/pub/incoming".to_vec()]
        );
    }

    #[test]
    fn reload_follows_the_file_and_the_symlinks_on_its_path() {
        let base = std::env::temp_dir().join(format!("minftpd-reload-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(base.join("v1")).unwrap();
        std::fs::write(base.join("v1/users"), b"").unwrap();
        std::os::unix::fs::symlink("v1", base.join("current")).unwrap();
        let base = std::fs::canonicalize(&base).unwrap();
        let dirs = reload_dirs_of(&base.join("current/users"));
        std::fs::remove_dir_all(&base).unwrap();
        assert_eq!(dirs, vec![base.join("v1"), base.clone()]);
    }

    #[test]
    fn bind_ports_cover_the_passive_range_and_port_20() {
        let mut config = Config::default();
        assert_eq!(bind_ports(&config), None, "no range: any port >= 1024");
        config.pasv_min_port = 5000;
        config.pasv_max_port = 5002;
        config.connect_from_port_20 = true;
        assert_eq!(bind_ports(&config), Some(vec![5000, 5001, 5002, 20]));
        config.pasv_min_port = 1024;
        config.pasv_max_port = 65535;
        assert_eq!(bind_ports(&config), None);
    }
}
