//! The kernel sandbox (issue 21). The sandbox itself: a child process (this
//! test binary, run again on the ignored `sandboxed_child` test) applies
//! exactly the server's `sandbox::apply` for a configuration, then tries what
//! it must forbid and what it must allow, each with its expected errno. The
//! real binary: NoNewPrivs and Seccomp in /proc while it serves, as root
//! with chroot and as an ordinary user; under strace's fault injection (an
//! old kernel) it starts, serves and says what it could not apply.

use crate::common::*;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::Command;

const CASE: &str = "MINFTPD_SANDBOX_CASE";
const DIR: &str = "MINFTPD_SANDBOX_DIR";
const PORT: &str = "MINFTPD_SANDBOX_PORT";

/// A port that was free a moment ago.
fn free_port() -> u16 {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    l.local_addr().unwrap().port()
}

/// Runs `sandboxed_child` for `case` in a fresh process.
fn spawn_child(case: &str, dir: &Path, port: u16) -> std::process::Output {
    let exe = std::env::current_exe().unwrap();
    Command::new(exe)
        .args([
            "--exact",
            "sandbox::sandboxed_child",
            "--ignored",
            "--nocapture",
        ])
        .args(["--test-threads", "1"])
        .env(CASE, case)
        .env(DIR, dir)
        .env(PORT, port.to_string())
        .output()
        .unwrap()
}

/// Runs `sandboxed_child` for `case`, which must pass; its output.
fn run_child(case: &str, dir: &Path, port: u16) -> String {
    let out = spawn_child(case, dir, port);
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "the sandboxed child failed:\n{text}");
    assert!(
        text.contains("1 passed"),
        "the child test did not run:\n{text}"
    );
    text
}

/// The tree both cases use: a served root with a file, homes, and a secret
/// and the users file outside it.
fn tree() -> TempDir {
    let dir = TempDir::new("sandbox");
    dir.write("root/pub/file", b"served");
    dir.mkdir("root/alice/sub");
    dir.mkdir("root/bob");
    dir.write("outside/secret", b"secret");
    dir.write("etc/users", b"alice:$6$x$y:/alice:rw\nbob:$6$x$y:/bob:ro\n");
    dir
}

#[test]
fn a_read_only_root_confines_files_ports_and_syscalls() {
    let dir = tree();
    let out = run_child("ro", dir.path(), free_port());
    assert!(out.contains("sandbox: "), "{out}");
}

#[test]
fn writes_land_only_where_the_configuration_allows_them() {
    let dir = tree();
    let out = run_child("rw", dir.path(), free_port());
    assert!(out.contains("sandbox: "), "{out}");
}

/// A syscall through the i386 entry (`int 0x80`) would meet numbers the
/// deny-list does not name (ptrace is 26 there): it kills the process.
#[cfg(target_arch = "x86_64")]
#[test]
fn a_32_bit_syscall_kills_the_process() {
    let dir = tree();
    let out = spawn_child("i386", dir.path(), free_port());
    let text = String::from_utf8_lossy(&out.stdout);
    if text.contains("no i386 entry") {
        return skip("this kernel has no i386 syscall entry");
    }
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(out.status.signal(), Some(libc::SIGSYS), "{text}");
    assert!(
        text.contains("i386 getpid works before the sandbox"),
        "{text}"
    );
}

/// getpid through the i386 entry (its number 20 there).
#[cfg(target_arch = "x86_64")]
fn i386_getpid() -> i64 {
    let mut ret: i64 = 20;
    // SAFETY (test): int 0x80 with eax = 20 takes no arguments and only
    // writes eax; the compat entry clobbers nothing else that we use.
    unsafe { std::arch::asm!("int 0x80", inout("rax") ret, options(nostack)) };
    ret
}

/// The configuration of each case: anonymous read-only with a passive range
/// of one port, or named users with write_enable and any passive port.
fn child_config(case: &str, dir: &Path, port: u16) -> minftpd::config::Config {
    let mut config = minftpd::config::Config {
        root: dir.join("root"),
        anonymous_enable: true,
        ..Default::default()
    };
    if case == "ro" {
        config.pasv_min_port = port;
        config.pasv_max_port = port;
    } else {
        config.write_enable = true;
        config.users_file = Some(dir.join("etc/users"));
    }
    config
}

/// The errno of a result, or 0 when it succeeded.
fn errno<T>(r: std::io::Result<T>) -> i32 {
    match r {
        Ok(_) => 0,
        Err(e) => e.raw_os_error().unwrap_or(-1),
    }
}

fn create(path: &Path) -> i32 {
    errno(
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(path),
    )
}

fn bind(port: u16) -> i32 {
    errno(TcpListener::bind((Ipv4Addr::LOCALHOST, port)))
}

fn syscall_errno(ret: libc::c_long) -> i32 {
    if ret == -1 {
        std::io::Error::last_os_error().raw_os_error().unwrap()
    } else {
        0
    }
}

/// Not a test of its own: the body `run_child` runs in a fresh process.
#[test]
#[ignore = "runs only as the child of the sandbox tests"]
fn sandboxed_child() {
    let (Ok(case), Ok(dir), Ok(port)) =
        (std::env::var(CASE), std::env::var(DIR), std::env::var(PORT))
    else {
        return;
    };
    let dir = Path::new(&dir);
    let port: u16 = port.parse().unwrap();
    let config = child_config(&case, dir, port);
    let root = minftpd::fs::Root::open(&config.root).unwrap();
    let users = match &config.users_file {
        Some(path) => minftpd::auth::Users::load(path).unwrap(),
        None => minftpd::auth::Users::default(),
    };
    let other_port = free_port();
    #[cfg(target_arch = "x86_64")]
    if case == "i386" {
        if i386_getpid() != i64::from(std::process::id()) {
            println!("no i386 entry");
            return;
        }
        println!("i386 getpid works before the sandbox");
        minftpd::sandbox::apply(&config, &root, &users, false);
        i386_getpid();
        panic!("an i386 syscall survived the filter");
    }
    let line = minftpd::sandbox::apply(&config, &root, &users, false);
    println!("{line}");
    let abi: u32 = line
        .split("landlock ABI ")
        .nth(1)
        .and_then(|r| r.split(' ').next()?.parse().ok())
        .unwrap_or(0);
    assert!(line.contains("seccomp deny-list of "), "{line}");

    // Always allowed: reading the served root.
    assert_eq!(std::fs::read(dir.join("root/pub/file")).unwrap(), b"served");

    // seccomp: EPERM whatever Landlock offers, even as root.
    // SAFETY (test): PTRACE_TRACEME takes no pointers.
    let traceme = unsafe { libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) };
    assert_eq!(syscall_errno(traceme), libc::EPERM, "ptrace");
    let target =
        std::ffi::CString::new(dir.join("root/pub").into_os_string().into_encoded_bytes()).unwrap();
    // SAFETY (test): NUL-terminated strings and a null data pointer.
    let mount = unsafe {
        libc::mount(
            c"none".as_ptr(),
            target.as_ptr(),
            c"tmpfs".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    assert_eq!(syscall_errno(mount.into()), libc::EPERM, "mount");
    // SAFETY (test): integer arguments.
    let unshare = unsafe { libc::unshare(libc::CLONE_NEWUSER) };
    assert_eq!(syscall_errno(unshare.into()), libc::EPERM, "unshare");
    // The raw call: glibc's setuid() would ask every thread to change too,
    // and only this test thread is sandboxed (the server's threads all are).
    // SAFETY (test): integer arguments.
    let setuid = unsafe { libc::syscall(libc::SYS_setuid, 0) };
    assert_eq!(syscall_errno(setuid), libc::EPERM, "setuid");
    let exec = Command::new("/bin/true").status();
    assert_eq!(errno(exec), libc::EPERM, "execve");
    // Threads still start (clone, or clone3 falling back to clone).
    assert_eq!(std::thread::spawn(|| 7).join().unwrap(), 7);

    if abi == 0 {
        println!("no landlock on this kernel: filesystem and port checks skipped");
        return;
    }
    // Landlock: nothing outside the root, for reading or writing.
    let secret = dir.join("outside/secret");
    assert_eq!(errno(std::fs::read(&secret)), libc::EACCES, "read outside");
    assert_eq!(create(&secret), libc::EACCES, "write outside");
    assert_eq!(
        create(&dir.join("outside/new")),
        libc::EACCES,
        "create outside"
    );
    assert_eq!(
        errno(std::fs::read_dir(dir.join("outside"))),
        libc::EACCES,
        "list outside"
    );

    if case == "ro" {
        assert_eq!(
            create(&dir.join("root/pub/new")),
            libc::EACCES,
            "write in a read-only root"
        );
        assert_eq!(
            create(&dir.join("root/pub/file")),
            libc::EACCES,
            "overwrite in a read-only root"
        );
        assert_eq!(
            errno(std::fs::create_dir(dir.join("root/d"))),
            libc::EACCES,
            "mkdir in a read-only root"
        );
        assert_eq!(
            errno(std::fs::remove_file(dir.join("root/pub/file"))),
            libc::EACCES,
            "delete in a read-only root"
        );
        if abi >= 4 {
            // The passive range is the one port; nothing else, not even port 0.
            assert_eq!(bind(port), 0, "bind in the passive range");
            assert_eq!(
                bind(other_port),
                libc::EACCES,
                "bind outside the passive range"
            );
            assert_eq!(bind(0), libc::EACCES, "bind to an ephemeral port");
            // Connect is not restricted (active mode goes to any port >= 1024).
            let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).unwrap();
            assert_eq!(
                errno(std::net::TcpStream::connect(listener.local_addr().unwrap())),
                0
            );
        }
    } else {
        // alice's home is rw: upload, rename across directories, delete.
        let home = dir.join("root/alice");
        assert_eq!(create(&home.join("up")), 0, "write in a rw home");
        assert_eq!(
            errno(std::fs::rename(home.join("up"), home.join("sub/up"))),
            0,
            "rename in a rw home"
        );
        assert_eq!(
            errno(std::fs::create_dir(home.join("new"))),
            0,
            "mkdir in a rw home"
        );
        assert_eq!(
            errno(std::fs::remove_file(home.join("sub/up"))),
            0,
            "delete in a rw home"
        );
        // bob's home is ro, and the root above the homes is not writable.
        assert_eq!(
            create(&dir.join("root/bob/x")),
            libc::EACCES,
            "write in a ro home"
        );
        assert_eq!(
            create(&dir.join("root/x")),
            libc::EACCES,
            "write above the homes"
        );
        // Not chrooted: SIGHUP re-reads the users file, and may.
        assert!(
            std::fs::read(dir.join("etc/users")).is_ok(),
            "reload the users file"
        );
        assert_eq!(
            create(&dir.join("etc/users")),
            libc::EACCES,
            "write the users file"
        );
        if abi >= 4 {
            // No passive range: passive mode binds random ports of
            // 1024-65535, so binds stay free (the bench caught 1000 refused
            // tries per PASV when they were not).
            assert_eq!(bind(other_port), 0, "bind without a passive range");
        }
    }
}

/// Every thread of the process shows the filter and no_new_privs.
fn assert_sandboxed(pid: u32) {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
    let mut seen = 0;
    for task in tasks {
        let status = std::fs::read_to_string(task.unwrap().path().join("status")).unwrap();
        assert!(status.contains("NoNewPrivs:\t1"), "{status}");
        assert!(status.contains("Seccomp:\t2"), "{status}");
        seen += 1;
    }
    assert!(seen > 1, "the pool's threads should be there too");
}

#[test]
fn the_server_serves_sandboxed_as_root_with_chroot() {
    if !is_root() {
        return skip("the chrooted server needs root");
    }
    let root = TempDir::new("root");
    root.write("f", b"data");
    let server = Server::start(root, &["--anonymous"]);
    assert!(
        server.log().contains("sandbox: landlock ABI")
            || server.log().contains("sandbox: no landlock"),
        "{}",
        server.log()
    );
    let mut ftp = server.anon();
    assert_eq!(ftp.retr("/f"), b"data");
    assert_sandboxed(server.pid());
    server.finish();
}

#[test]
fn the_server_serves_sandboxed_as_an_ordinary_user() {
    let root = TempDir::new("root");
    root.write("f", b"data");
    let server = if is_root() {
        if !have("setpriv") {
            return skip("setpriv is missing");
        }
        let drop = [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
        ];
        Server::start_via(&drop, root, &["--anonymous"])
    } else {
        Server::start(root, &["--anonymous"])
    };
    assert!(
        server.log().contains("not started as root"),
        "{}",
        server.log()
    );
    let mut ftp = server.anon();
    assert_eq!(ftp.retr("/f"), b"data");
    // setpriv execs the server: same pid.
    assert_sandboxed(server.pid());
    server.finish();
}

/// Starts the server under strace with `injections`, fetches a file, and
/// returns its log.
fn serve_under_strace(injections: &[&str]) -> Option<String> {
    if !have("strace") {
        skip("strace is missing");
        return None;
    }
    let root = TempDir::new("root");
    root.write("f", b"data");
    let mut wrapper = vec!["strace", "-f", "-qq", "-o", "/dev/null"];
    for i in injections {
        wrapper.extend(["-e", i]);
    }
    let server = Server::start_via(&wrapper, root, &["--anonymous"]);
    let mut ftp = server.anon();
    assert_eq!(ftp.retr("/f"), b"data");
    let log = server.log();
    server.finish();
    Some(log)
}

#[test]
fn without_landlock_or_seccomp_the_server_starts_serves_and_says_so() {
    let Some(log) = serve_under_strace(&[
        "inject=landlock_create_ruleset:error=ENOSYS",
        "inject=seccomp:error=EINVAL",
    ]) else {
        return;
    };
    assert!(
        log.contains("sandbox: no landlock (the kernel offers none), no seccomp: "),
        "{log}"
    );
}

#[test]
fn without_the_seccomp_syscall_the_filter_goes_in_through_prctl() {
    let Some(log) = serve_under_strace(&["inject=seccomp:error=ENOSYS"]) else {
        return;
    };
    assert!(log.contains("seccomp deny-list of "), "{log}");
}

#[test]
fn sandbox_no_applies_nothing() {
    let root = TempDir::new("root");
    let server = Server::start(root, &["--anonymous", "-o", "sandbox=no"]);
    assert!(server.log().contains("sandbox = no"), "{}", server.log());
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
    assert!(status.contains("Seccomp:\t0"), "{status}");
    server.finish();
}
