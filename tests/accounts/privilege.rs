//! As root: the chroot, the privilege drop, descriptors left after start-up,
//! and the one capability kept for port 20.

use super::*;
use std::io::Read;

/// Finding 7: descriptors a parent leaks (here fd 7 on /etc/hostname, opened
/// by the shell that execs the server) are closed at start, and nothing the
/// server opens outside the root stays open once it serves (as root: across
/// the chroot; the users file's directory was kept open for reloads before).
#[test]
fn no_descriptor_outside_the_root_survives_start_up() {
    let etc = TempDir::new("fds-etc");
    let users = users_file(&etc, &[("u", "pw", "/", "ro")]);
    let wrapper = ["bash", "-c", "exec 7</etc/hostname; exec \"$@\"", "wrapper"];
    let server = Server::start_via(
        &wrapper,
        TempDir::new("fds-root"),
        &["-A", "-U", users.to_str().unwrap()],
    );
    // A session, so that the per-session descriptors are there too.
    let mut ftp = server.connect();
    ftp.login("u", "pw");
    ftp.ok("CWD /", 250);
    let root = std::fs::canonicalize(server.root.path()).unwrap();
    let mut checked = 0;
    for entry in std::fs::read_dir(format!("/proc/{}/fd", server.pid())).unwrap() {
        let entry = entry.unwrap();
        let fd: u32 = entry.file_name().to_str().unwrap().parse().unwrap();
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue; // closed meanwhile
        };
        checked += 1;
        let text = target.to_string_lossy();
        assert_ne!(
            text, "/etc/hostname",
            "the inherited fd 7 survived as fd {fd}"
        );
        if fd <= 2 {
            continue; // standard streams stay as the parent made them
        }
        let allowed = ["socket:", "pipe:", "anon_inode:"]
            .iter()
            .any(|p| text.starts_with(p))
            || target.starts_with(&root);
        assert!(allowed, "fd {fd} leads outside the root: {text}");
    }
    assert!(checked > 3, "read too few descriptors");
}

/// When the tests run as root: the process's identity after start-up.
#[test]
fn as_root_the_daemon_chroots_and_drops_privileges() {
    if !is_root() {
        return skip("needs root");
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    let account = ["ftp", "nobody"]
        .iter()
        .find_map(|name| {
            passwd
                .lines()
                .find(|l| l.starts_with(&format!("{name}:")))
                .map(|l| {
                    let f: Vec<&str> = l.split(':').collect();
                    (f[2].to_string(), f[3].to_string())
                })
        })
        .expect("an ftp or nobody account");
    let root = TempDir::new("asroot");
    root.write("pub/f.txt", b"served");
    std::os::unix::fs::symlink("/etc/passwd", root.path().join("pub/passwd")).unwrap();
    let etc = TempDir::new("asroot-etc");
    let users = users_file(&etc, &[("w", "pw", "/", "rw")]);
    let server = Server::start(root, &["-A", "-w", "-U", users.to_str().unwrap()]);
    let uid = server.status_field("Uid");
    let gid = server.status_field("Gid");
    assert_eq!(
        uid.split_whitespace().collect::<Vec<_>>(),
        vec![account.0.as_str(); 4],
        "Uid: {uid}"
    );
    assert_eq!(
        gid.split_whitespace().collect::<Vec<_>>(),
        vec![account.1.as_str(); 4],
        "Gid: {gid}"
    );
    assert_eq!(server.status_field("CapEff"), "0000000000000000");
    let proc_root = std::fs::read_link(format!("/proc/{}/root", server.pid())).unwrap();
    assert_eq!(proc_root, server.root.path());
    let mut ftp = server.connect();
    ftp.login("w", "pw");
    ftp.stor("/pub/up.txt", b"uploaded");
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(server.root.path().join("pub/up.txt")).unwrap();
    assert_eq!(
        meta.uid().to_string(),
        account.0,
        "uploads belong to the run-as account"
    );
    ftp.epsv();
    ftp.ok("RETR /pub/passwd", 550);
    assert!(server.log().contains("chrooted into the served root"));
}

#[test]
fn as_root_port_20_keeps_only_cap_net_bind_service() {
    if !is_root() {
        return skip("needs root");
    }
    let root = TempDir::new("port20");
    root.write("f.txt", b"from port 20");
    let server = Server::start(root, &["-A", "-o", "connect_from_port_20=yes"]);
    assert_eq!(server.status_field("CapEff"), "0000000000000400");
    assert_eq!(server.status_field("CapPrm"), "0000000000000400");
    let mut ftp = server.anon();
    ftp.ok("TYPE I", 200);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    ftp.ok(&format!("PORT 127,0,0,1,{},{}", port >> 8, port & 255), 200);
    ftp.ok("RETR f.txt", 150);
    let (mut conn, from) = listener.accept().unwrap();
    assert_eq!(from.port(), 20);
    let mut got = Vec::new();
    conn.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"from port 20");
    assert_eq!(ftp.reply().code, 226);
}

#[test]
fn port_20_is_refused_without_root() {
    let dir = TempDir::new("p20");
    let dir = dir.path().to_str().unwrap();
    let server = [
        BIN,
        "-c",
        "/dev/null",
        "-l",
        "127.0.0.1:0",
        "-r",
        dir,
        "-o",
        "connect_from_port_20=yes",
    ];
    // As root, drop to nobody for this one start-up through setpriv.
    let mut command: Vec<&str> = Vec::new();
    if is_root() {
        if !have("setpriv") {
            return;
        }
        command.extend([
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
        ]);
    }
    command.extend(server);
    let out = run(command[0], &command[1..]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("connect_from_port_20 needs minftpd to be started as root"),
        "{err}"
    );
}
