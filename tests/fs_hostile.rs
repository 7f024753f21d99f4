//! Hostile objects in the served tree (FIFOs, sockets, devices, deep trees,
//! symlinks) and a hostile kernel (errors injected with strace): each test
//! asserts a prompt, safe reply and that the session stays usable. The
//! server runs under a wrapper (strace, prlimit) where the test needs one.

use crate::common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// strace arguments that make every call of `syscalls` fail with its error,
/// e.g. `&[("openat2", "ENOSYS")]`; strace's own output goes nowhere.
fn strace_injecting(faults: &[(&str, &str)]) -> Vec<String> {
    let names: Vec<&str> = faults.iter().map(|(s, _)| *s).collect();
    let mut args: Vec<String> = ["strace", "-f", "-qq", "-o", "/dev/null", "-e"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.push(format!("trace={}", names.join(",")));
    for (syscall, error) in faults {
        args.push("-e".into());
        args.push(format!("inject={syscall}:error={error}"));
    }
    args
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(|s| s.as_str()).collect()
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn shell(line: &str) {
    let out = run("sh", &["-c", line]);
    assert!(out.status.success(), "{line}: {:?}", out);
}

// ---------------------------------------------------------------- finding 1

/// Plants special files, writable by everyone so that the server's
/// unprivileged account could open them (and block) on the old code.
fn plant_special_files(root: &TempDir) -> Vec<&'static str> {
    let mut names = vec!["fifo", "sock"];
    shell(&format!(
        "mkfifo -m 666 {}",
        root.path().join("fifo").display()
    ));
    let sock = root.path().join("sock");
    drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
    chmod(&sock, 0o666);
    if is_root() {
        // A /dev/null-like character device; opening it never blocks, but a
        // download of /dev/zero would never end: devices are refused too.
        let dev = root.path().join("dev");
        if run(
            "mknod",
            &["-m", "666", dev.to_str().unwrap(), "c", "1", "3"],
        )
        .status
        .success()
        {
            names.push("dev");
        } else {
            eprintln!("no device node test: mknod is not permitted here");
        }
    } else {
        eprintln!("no device node test: not root");
    }
    names
}

#[test]
fn special_files_get_prompt_refusals_and_the_session_survives() {
    let root = TempDir::new("fs-special");
    let names = plant_special_files(&root);
    let (server, _etc) = rw_server(root, "pw", &[]);
    let mut ftp = server.login("rw", "pw");
    ftp.ok("TYPE I", 200);
    for name in names {
        // Each reply must come within TIMEOUT: the old code sat in open(2).
        let reply = ftp.upload(&format!("APPE {name}"), b"x");
        assert_eq!(reply.code, 550, "APPE {name}: {}", reply.text);
        ftp.ok("REST 1", 350);
        let reply = ftp.upload(&format!("STOR {name}"), b"x");
        assert_eq!(reply.code, 550, "REST 1 + STOR {name}: {}", reply.text);
        let (_, reply) = ftp.download(&format!("RETR {name}"));
        assert_eq!(reply.code, 550, "RETR {name}: {}", reply.text);
        ftp.ok(&format!("SITE CHMOD 644 {name}"), 550);
        ftp.ok(&format!("MFMT 20200101000000 {name}"), 550);
        let reply = ftp.cmd(&format!("SIZE {name}"));
        assert!(reply.code >= 200, "SIZE {name}: {}", reply.text);
        let (_, reply) = ftp.download(&format!("LIST {name}"));
        assert!(reply.code >= 200, "LIST {name}: {}", reply.text);
        ftp.ok("NOOP", 200);
    }
    // A plain STOR replaces a FIFO by a file (rename over it), as before.
    ftp.stor("fifo", b"now a file");
    assert_eq!(ftp.retr("fifo"), b"now a file");
}

// ---------------------------------------------------------------- finding 11

#[test]
fn chmod_and_mfmt_work_on_files_without_read_permission() {
    let root = TempDir::new("fs-chmod");
    let (server, _etc) = rw_server(root, "pw", &[]);
    let mut ftp = server.login("rw", "pw");
    // Uploaded, so owned by the account the server runs as (not root).
    ftp.stor("f", b"data");
    let path = server.root.path().join("f");
    ftp.ok("SITE CHMOD 200 f", 200);
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o200
    );
    ftp.ok("MFMT 20200102030405 f", 213);
    let mtime = std::fs::metadata(&path).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(mtime.mtime(), 1_577_934_245);
    ftp.ok("SITE CHMOD 644 f", 200);
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o644
    );
    // A directory without read permission too.
    ftp.ok("MKD d", 257);
    ftp.ok("SITE CHMOD 300 d", 200);
    ftp.ok("SITE CHMOD 755 d", 200);
    ftp.ok("NOOP", 200);
}

#[test]
fn chmod_and_mfmt_do_not_follow_symlinks() {
    let outside = TempDir::new("fs-chmod-outside");
    let target = outside.write("target", b"t");
    chmod(&target, 0o666);
    let root = TempDir::new("fs-chmod-link");
    std::os::unix::fs::symlink(&target, root.path().join("link")).unwrap();
    let (server, _etc) = rw_server(root, "pw", &["--no-chroot"]);
    let mut ftp = server.login("rw", "pw");
    ftp.ok("SITE CHMOD 600 link", 550);
    ftp.ok("MFMT 20000101000000 link", 550);
    assert_eq!(
        std::fs::metadata(&target).unwrap().permissions().mode() & 0o777,
        0o666
    );
}

// ---------------------------------------------------------------- issue 10 item 4: both resolvers

/// A tree whose symlinks all try to leave the root. The server runs with
/// --no-chroot, so only the path resolver stands between them and `outside`.
fn escape_tree() -> (TempDir, TempDir) {
    let outside = TempDir::new("fs-outside");
    outside.write("secret.txt", b"SECRET");
    let name = outside.name().to_string();
    let root = TempDir::new("fs-escape");
    root.write("inside.txt", b"inside");
    root.mkdir("sub");
    let link = |target: String, at: &str| {
        std::os::unix::fs::symlink(target, root.path().join(at)).unwrap();
    };
    link("/".into(), "to-slash");
    link(outside.path().display().to_string(), "abs-dir");
    link(
        format!("{}/secret.txt", outside.path().display()),
        "abs-file",
    );
    link(format!("../{name}"), "rel-dir");
    link(format!("../{name}/secret.txt"), "rel-file");
    link(format!("../../{name}/secret.txt"), "sub/up");
    link("..".into(), "sub/parent");
    link("loop".into(), "loop");
    (root, outside)
}

/// Whether a listing has an entry named secret.txt (link targets may name it).
fn lists_secret(listing: &str) -> bool {
    listing
        .lines()
        .any(|l| l.trim_end().ends_with(" secret.txt"))
}

/// The confinement checks, through FTP.
fn check_confinement(server: &Server) {
    let mut ftp = server.login("rw", "pw");
    ftp.ok("TYPE I", 200);
    assert_eq!(ftp.retr("to-slash/inside.txt"), b"inside");
    assert_eq!(ftp.retr("sub/parent/inside.txt"), b"inside");
    ftp.ok("SIZE to-slash/inside.txt", 213);
    for path in [
        "abs-file",
        "rel-file",
        "sub/up",
        "abs-dir/secret.txt",
        "rel-dir/secret.txt",
        "to-slash/secret.txt",
        "loop",
    ] {
        let (bytes, reply) = ftp.download(&format!("RETR {path}"));
        assert_eq!(reply.code, 550, "RETR {path}: {}", reply.text);
        assert!(bytes.is_empty());
        ftp.ok(&format!("SIZE {path}"), 550);
    }
    // Directories: an absolute link means the root, `..` stops there.
    for dir in ["to-slash", "sub/parent"] {
        let listing = ftp.list(&format!("LIST {dir}"));
        assert!(listing.contains("inside.txt"), "LIST {dir}: {listing}");
        assert!(!lists_secret(&listing), "LIST {dir}: {listing}");
        ftp.ok(&format!("CWD /{dir}"), 250);
        ftp.ok("SIZE inside.txt", 213);
    }
    for dir in ["abs-dir", "rel-dir"] {
        let reply = ftp.cmd(&format!("CWD /{dir}"));
        assert_eq!(reply.code, 550, "CWD {dir}: {}", reply.text);
        let (bytes, reply) = ftp.download(&format!("LIST /{dir}"));
        assert!(!lists_secret(&String::from_utf8_lossy(&bytes)));
        assert_ne!(reply.code, 226, "LIST {dir}: {}", reply.text);
    }
    ftp.ok("NOOP", 200);
}

#[test]
fn the_openat2_resolver_confines_symlinks() {
    let (root, _outside) = escape_tree();
    let (server, _etc) = rw_server(root, "pw", &["--no-chroot"]);
    check_confinement(&server);
    assert!(
        server.log().contains("path resolver: openat2"),
        "{}",
        server.log()
    );
    assert!(!server.log().contains("openat walk"), "{}", server.log());
}

#[test]
fn the_forced_walk_confines_symlinks() {
    if !have("strace") {
        return;
    }
    let (root, _outside) = escape_tree();
    let strace = strace_injecting(&[("openat2", "ENOSYS")]);
    let (server, _etc) = rw_server_via(&strs(&strace), root, "pw", &["--no-chroot"]);
    check_confinement(&server);
    let log = server.log();
    assert!(
        log.contains("path resolver: openat walk (openat2 unavailable"),
        "{log}"
    );
    assert!(!log.contains("path resolver: openat2"), "{log}");
}

// ---------------------------------------------------------------- finding 8

#[test]
fn a_deep_tree_under_the_walk_needs_few_descriptors() {
    if !have("strace") || !have("prlimit") {
        return;
    }
    let root = TempDir::new("fs-deep");
    let deep = vec!["d"; 200].join("/");
    root.write(&format!("{deep}/leaf"), b"deep leaf");
    // A symlink whose target climbs all the way back: 200 `..` re-walks.
    let up = vec![".."; 200].join("/");
    std::os::unix::fs::symlink(format!("{up}/top"), root.path().join(format!("{deep}/up")))
        .unwrap();
    root.write("top", b"top");
    let mut wrapper = vec!["prlimit", "--nofile=64:64", "--"];
    let strace = strace_injecting(&[("openat2", "ENOSYS")]);
    wrapper.extend(strs(&strace));
    let (server, _etc) = rw_server_via(&wrapper, root, "pw", &[]);
    let mut ftp = server.login("rw", "pw");
    assert_eq!(
        ftp.ok(&format!("SIZE {deep}/leaf"), 213).text.trim(),
        "213 9"
    );
    assert_eq!(ftp.retr(&format!("{deep}/leaf")), b"deep leaf");
    assert_eq!(ftp.retr(&format!("{deep}/up")), b"top");
    ftp.ok("NOOP", 200);
    assert!(server.log().contains("openat walk"), "{}", server.log());
}

// ---------------------------------------------------------------- finding 9

#[test]
fn openat2_eagain_is_retried_then_walked() {
    if !have("strace") {
        return;
    }
    let root = TempDir::new("fs-eagain");
    root.write("pub/file.txt", b"twelve bytes");
    let strace = strace_injecting(&[("openat2", "EAGAIN")]);
    let (server, _etc) = rw_server_via(&strs(&strace), root, "pw", &[]);
    let mut ftp = server.login("rw", "pw");
    assert_eq!(ftp.ok("SIZE pub/file.txt", 213).text.trim(), "213 12");
    assert_eq!(ftp.retr("pub/file.txt"), b"twelve bytes");
    ftp.stor("pub/new.txt", b"new");
    assert_eq!(ftp.retr("pub/new.txt"), b"new");
}

// ---------------------------------------------------------------- vfat: no link(2)

fn anonymous_upload_without(faults: &[(&str, &str)]) {
    let root = TempDir::new("fs-nolink");
    root.mkdir("up");
    let strace = strace_injecting(faults);
    let args = ["-A", "-w", "-o", "anon_upload_dir=/up"];
    let server = Server::start_via(&strs(&strace), root, &args);
    let mut ftp = server.login("anonymous", "x@");
    let data = pattern(100_000);
    ftp.stor("/up/new.bin", &data);
    let path = server.root.path().join("up/new.bin");
    assert_eq!(std::fs::read(&path).unwrap(), data, "{faults:?}");
    // The same name again: never replaced.
    ftp.ok("TYPE I", 200);
    let reply = ftp.upload("STOR /up/new.bin", b"replacement");
    assert_eq!(reply.code, 550, "{faults:?}: {}", reply.text);
    assert_eq!(std::fs::read(&path).unwrap(), data);
    // No temporary file is left behind.
    assert_eq!(server.root.names("up"), ["new.bin"], "{faults:?}");
}

#[test]
fn exclusive_uploads_commit_without_hard_links() {
    if !have("strace") {
        return;
    }
    // vfat: link(2) fails with EPERM; renameat2(RENAME_NOREPLACE) works.
    anonymous_upload_without(&[("linkat", "EPERM")]);
    // Neither: the exclusive create and copy.
    anonymous_upload_without(&[("linkat", "EPERM"), ("renameat2", "EINVAL")]);
}
