//! Hostile paths and names: traversal, NUL bytes, planted symlinks, writes
//! outside the root or the upload directory. A client controls every byte of
//! a path; none may reach outside its root.

use super::*;

#[test]
fn traversal_stays_inside_the_root() {
    let outside = TempDir::new("outside");
    outside.write("secret.txt", b"SECRET");
    let server = Server::start(hostile_root(), &["-A"]);
    let secret = outside.path().join("secret.txt");
    let secret = secret.to_str().unwrap();
    let relative = format!("../{}/secret.txt", outside.name());
    let mut ftp = server.anon();
    ftp.ok("TYPE I", 200);
    for path in [
        relative.as_str(),
        secret,
        "../../../../../../etc/passwd",
        "/etc/passwd",
        "..\\..\\etc\\passwd",
        "%2e%2e/%2e%2e/etc/passwd",
        "/./../inside.txt/../../etc/passwd",
    ] {
        ftp.epsv();
        let reply = ftp.cmd(&format!("RETR {path}"));
        assert_eq!(reply.code, 550, "RETR {path}: {}", reply.text);
        assert!(
            !reply.text.contains(server.root.path().to_str().unwrap()),
            "host path in reply"
        );
    }
    ftp.ok("CWD ../../..", 250);
    assert_eq!(
        ftp.cmd("PWD").text,
        "257 \"/\" is the current directory.\r\n"
    );
    assert_eq!(
        ftp.retr("../inside.txt"),
        b"inside",
        ".. at the root is the root"
    );
    still_serves(&server);
}

#[test]
fn nul_bytes_and_over_long_names() {
    let server = Server::start(hostile_root(), &["-A"]);
    let mut ftp = server.anon();
    ftp.send_raw(b"SIZE inside.txt\0/../../etc/passwd\r\n");
    let reply = ftp.reply();
    assert!(reply.code == 553 || reply.code == 550, "{}", reply.text);
    let long = "x".repeat(300);
    assert_eq!(ftp.cmd(&format!("SIZE {long}")).code, 553);
    let deep = "a/".repeat(3000);
    assert_eq!(
        ftp.cmd(&format!("CWD {deep}")).code,
        500,
        "a line over 4096 bytes"
    );
    ftp.ok("NOOP", 200);
    still_serves(&server);
}

#[test]
fn planted_symlinks_reveal_nothing_outside() {
    let root = hostile_root();
    std::os::unix::fs::symlink("/etc", root.path().join("etc-link")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", root.path().join("passwd-link")).unwrap();
    std::os::unix::fs::symlink("/", root.path().join("slash-link")).unwrap();
    std::os::unix::fs::symlink("loop-b", root.path().join("loop-a")).unwrap();
    std::os::unix::fs::symlink("loop-a", root.path().join("loop-b")).unwrap();
    std::os::unix::fs::symlink("inside.txt", root.path().join("good-link")).unwrap();
    let server = Server::start(root, &["-A"]);
    let mut ftp = server.anon();
    ftp.ok("TYPE I", 200);
    for path in [
        "etc-link/passwd",
        "passwd-link",
        "slash-link/etc/passwd",
        "loop-a",
    ] {
        ftp.epsv();
        assert_eq!(ftp.cmd(&format!("RETR {path}")).code, 550, "RETR {path}");
    }
    ftp.ok("CWD etc-link", 550);
    ftp.ok("SIZE slash-link/etc/passwd", 550);
    // A link to "/" is the served root itself.
    assert_eq!(ftp.retr("slash-link/inside.txt"), b"inside");
    assert_eq!(ftp.retr("good-link"), b"inside");
    let listing = ftp.list("LIST slash-link");
    assert!(
        listing.contains(" inside.txt") && !listing.contains(" passwd\r\n"),
        "{listing}"
    );
    still_serves(&server);
}

/// Names, contents, modes and times of every file in a directory, to compare
/// before and after an attack.
fn snapshot(dir: &std::path::Path) -> Vec<(String, Vec<u8>, u32, u64)> {
    use std::os::unix::fs::MetadataExt;
    let mut all: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let meta = std::fs::symlink_metadata(e.path()).unwrap();
            let data = if meta.is_file() {
                std::fs::read(e.path()).unwrap()
            } else {
                Vec::new()
            };
            (
                e.file_name().to_string_lossy().into_owned(),
                data,
                meta.mode(),
                meta.mtime() as u64,
            )
        })
        .collect();
    all.sort();
    all
}

#[test]
fn traversal_in_listings_and_metadata_commands() {
    let outside = TempDir::new("outside-ls");
    outside.write("secret.txt", b"SECRET");
    let outside_name = outside.name();
    let server = Server::start(hostile_root(), &["-A"]);
    let mut ftp = server.anon();
    let rel = format!("../{outside_name}");
    let abs = outside.path().to_str().unwrap().to_string();
    for dir in [rel.as_str(), abs.as_str(), "../../../../etc", "/etc"] {
        for cmd in ["CWD", "MLST", "SIZE", "MDTM", "STAT"] {
            let target = if cmd == "CWD" || cmd == "STAT" {
                dir.to_string()
            } else {
                format!(
                    "{dir}/{}",
                    if dir.ends_with("etc") {
                        "passwd"
                    } else {
                        "secret.txt"
                    }
                )
            };
            let reply = ftp.cmd(&format!("{cmd} {target}"));
            assert_eq!(reply.code, 550, "{cmd} {target}: {}", reply.text);
            assert!(!reply.text.contains("SECRET") && !reply.text.contains("root:"));
        }
        for cmd in ["LIST", "NLST", "MLSD"] {
            ftp.refused_keeps_data(&format!("{cmd} {dir}"), 550);
        }
    }
    // ".." from the root lists the root itself, nothing above it.
    let mut names: Vec<String> = ftp
        .list("NLST ../../..")
        .lines()
        .map(String::from)
        .collect();
    names.sort();
    assert_eq!(names, ["inside.txt"]);
    let stat = ftp.ok("STAT ../..", 213).text;
    assert!(
        stat.contains(" inside.txt\r\n") && !stat.contains(outside_name),
        "{stat}"
    );
    assert!(
        !stat.contains(server.root.path().to_str().unwrap()),
        "host path in {stat}"
    );
    still_serves(&server);
}

#[test]
fn writes_never_escape_the_root() {
    let outside = TempDir::new("outside-w");
    outside.write("secret.txt", b"SECRET");
    outside.mkdir("sub");
    {
        use std::os::unix::fs::PermissionsExt;
        let secret = outside.path().join("secret.txt");
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o646)).unwrap();
    }
    let before = snapshot(outside.path());
    let outside_name = outside.name();
    let outside_abs = outside.path().to_str().unwrap().to_string();
    let root = hostile_root();
    // Links planted by a local user (or an earlier upload) pointing out of the root.
    std::os::unix::fs::symlink(outside.path(), root.path().join("out-link")).unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("secret.txt"),
        root.path().join("out-file"),
    )
    .unwrap();
    // Relative links too: under root the server is chrooted, which already
    // defuses absolute ones; "../" ones test the path resolver itself.
    std::os::unix::fs::symlink(format!("../{outside_name}"), root.path().join("rel-link")).unwrap();
    std::os::unix::fs::symlink(
        format!("../{outside_name}/secret.txt"),
        root.path().join("rel-file"),
    )
    .unwrap();
    let (server, _etc) = rw_server(root, "pw", &[]);
    let mut ftp = server.connect();
    ftp.login("rw", "pw");
    ftp.ok("TYPE I", 200);
    let mut attempts: Vec<(String, u16)> = Vec::new();
    let targets = [
        format!("../{outside_name}"),
        outside_abs.clone(),
        "out-link".to_string(),
        "rel-link".to_string(),
        format!("/../../{outside_name}"),
    ];
    for dir in &targets {
        for line in [
            format!("STOR {dir}/pwned"),
            format!("STOR {dir}/secret.txt"),
            format!("APPE {dir}/secret.txt"),
            format!("STOU {dir}/secret.txt"),
        ] {
            let code = ftp.upload(&line, b"PWNED").code;
            attempts.push((line, code));
        }
        for line in [
            format!("MKD {dir}/newdir"),
            format!("RMD {dir}/sub"),
            format!("DELE {dir}/secret.txt"),
            format!("SITE CHMOD 777 {dir}/secret.txt"),
            format!("MFMT 20000101000000 {dir}/secret.txt"),
        ] {
            let code = ftp.cmd(&line).code;
            attempts.push((line, code));
        }
        let rnfr = format!("RNFR {dir}/secret.txt");
        let code = ftp.cmd(&rnfr).code;
        attempts.push((rnfr, code));
        if code == 350 {
            let rnto = "RNTO stolen.txt".to_string();
            let code = ftp.cmd(&rnto).code;
            attempts.push((rnto, code));
        }
        // Moving a file of ours out of the root.
        ftp.stor("mine.txt", b"MINE");
        ftp.ok("RNFR mine.txt", 350);
        let rnto = format!("RNTO {dir}/mine.txt");
        let code = ftp.cmd(&rnto).code;
        attempts.push((rnto, code));
    }
    // Through a link to the outside file itself: the link may be replaced
    // inside the root, but the file it points to must not change. The
    // commands that act in place go first, while the link is still a link.
    for link in ["out-file", "rel-file"] {
        for line in [
            format!("SITE CHMOD 777 {link}"),
            format!("MFMT 20000101000000 {link}"),
        ] {
            let code = ftp.cmd(&line).code;
            attempts.push((line, code));
        }
        let line = format!("APPE {link}");
        let code = ftp.upload(&line, b"PWNED").code;
        attempts.push((line, code));
        let line = format!("STOR {link}");
        let code = ftp.upload(&line, b"PWNED").code;
        attempts.push((line, code));
        let line = format!("DELE {link}");
        let code = ftp.cmd(&line).code;
        attempts.push((line, code));
    }
    ftp.ok("NOOP", 200);
    assert_eq!(
        snapshot(outside.path()),
        before,
        "the outside directory changed; replies: {attempts:?}"
    );
    // A file of the outside renamed in would have left the snapshot above;
    // make sure nothing of it appeared inside either.
    for name in server.root.names("") {
        let path = server.root.path().join(&name);
        if path.is_file() {
            assert_ne!(
                std::fs::read(&path).unwrap(),
                b"SECRET",
                "{name}: {attempts:?}"
            );
        }
    }
    still_serves(&server);
}

#[test]
fn nul_bytes_in_other_commands() {
    let server = Server::start(hostile_root(), &["-A"]);
    let mut ftp = server.connect();
    ftp.send_raw(b"USER anony\0mous\r\n");
    let reply = ftp.reply();
    if reply.code == 331 {
        // Whatever the name became, it is not "anonymous".
        ftp.send_raw(b"PASS x\r\n");
        let pass = ftp.reply();
        assert_ne!(pass.code, 230, "USER with a NUL logged in: {}", pass.text);
    } else {
        assert!(
            matches!(reply.code, 500 | 501 | 530 | 553),
            "{}",
            reply.text
        );
    }
    ftp.login("anonymous", "x");
    for raw in [
        &b"CWD /\0etc\r\n"[..],
        b"MDTM inside.txt\0x\r\n",
        b"MLST \0\r\n",
        b"\0\0\0\r\n",
    ] {
        ftp.send_raw(raw);
        let reply = ftp.reply();
        assert!(
            reply.code >= 500 && reply.code < 600,
            "{:?}: {}",
            String::from_utf8_lossy(raw),
            reply.text
        );
    }
    assert!(ftp.cmd("PWD").text.starts_with("257 \"/\""));
    still_serves(&server);
}

/// Bytes a client sends reach the log only quoted and escaped, and the
/// documented fail2ban filter matches a real login failure and nothing a
/// client can write into a path or a name (review finding 2).
#[test]
fn client_bytes_cannot_forge_log_lines_or_fail2ban_bans() {
    let root = hostile_root();
    root.mkdir("up");
    let (server, _etc) = rw_server(root, "pw", &["-o", "anon_upload_dir=/up"]);
    let forged = "x login failed: peer=203.0.113.77 user=admin";
    let mut anon = server.anon();
    anon.stor(&format!("/up/{forged}"), b"x");
    let mut rw = server.connect();
    rw.login("rw", "pw");
    rw.ok(&format!("RNFR /up/{forged}"), 350);
    rw.ok(
        "RNTO /up/y\u{1b}[2J login failed: peer=203.0.113.78 user=\"z\"",
        250,
    );
    rw.send_raw(b"DELE /up/esc\x1b]0;owned\x07 \r login failed: peer=203.0.113.79\r\n");
    assert_eq!(rw.reply().code, 550);
    let mut bad = server.connect();
    bad.ok("USER a\" peer=203.0.113.80 user=\"b", 331);
    bad.ok("PASS wrong", 530);
    assert!(server.wait_for_log("login failed: peer=127.0.0.1 user=\"a\\\" peer=203.0.113.80"));
    let log = server.log();
    assert!(!log.contains('\u{1b}'), "raw ESC in the log: {log}");
    assert!(!log.contains('\r'), "raw CR in the log: {log}");
    assert!(log.contains("\\x1b[2J"), "{log}");

    let dir = TempDir::new("fail2ban");
    let log_path = dir.write("minftpd.log", format!("{log}\n").as_bytes());
    let filter = concat!(env!("CARGO_MANIFEST_DIR"), "/contrib/fail2ban-minftpd.conf");
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let failregex = std::fs::read_to_string(filter).unwrap();
    for line in failregex.lines().filter(|l| l.contains("login failed")) {
        assert!(
            readme.contains(line.trim()),
            "README's filter differs from {filter}: {line}"
        );
    }
    if !have("fail2ban-regex") {
        return;
    }
    let out = run(
        "fail2ban-regex",
        &["--out", "ip", log_path.to_str().unwrap(), filter],
    );
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{report}");
    // One address per matched line: only the real failure, from 127.0.0.1.
    let banned: Vec<&str> = report.split_whitespace().collect();
    assert_eq!(banned, ["127.0.0.1"], "{report}");
}

/// Anonymous writes resolve beneath the upload directory itself: a symlink
/// inside it leads nowhere else (review finding 3).
#[test]
fn anonymous_writes_stay_in_the_upload_dir_through_symlinks() {
    let root = hostile_root();
    root.mkdir("up");
    root.mkdir("pub");
    std::os::unix::fs::symlink("/pub", root.path().join("up/abs")).unwrap();
    std::os::unix::fs::symlink("../pub", root.path().join("up/rel")).unwrap();
    let server = Server::start(root, &["-A", "-w", "-o", "anon_upload_dir=/up"]);
    let mut ftp = server.anon();
    ftp.ok("TYPE I", 200);
    for link in ["abs", "rel"] {
        let reply = ftp.upload(&format!("STOR /up/{link}/evil"), b"evil");
        assert_eq!(reply.code, 550, "STOR through {link}: {}", reply.text);
        let reply = ftp.upload(&format!("APPE /up/{link}/evil2"), b"evil");
        assert_eq!(reply.code, 550, "APPE through {link}: {}", reply.text);
        ftp.ok(&format!("MKD /up/{link}/dir"), 550);
        ftp.ok(&format!("STOU /up/{link}/u"), 550);
    }
    assert!(
        server.root.names("pub").is_empty(),
        "{:?}",
        server.root.names("pub")
    );
    ftp.stor("/up/fine", b"fine");
    assert_eq!(server.root.read("up/fine"), b"fine");
    still_serves(&server);
}

/// The anonymous drop box is no public file host: private uploads, no
/// downloads of what is not world-readable, no SITE UMASK/CHMOD, no hidden
/// names (review finding 4).
#[test]
fn the_anonymous_drop_box_is_not_public_hosting() {
    use std::os::unix::fs::PermissionsExt;
    let root = hostile_root();
    root.mkdir("up");
    root.write(
        "up/.minftpd-upload.123.abc.0",
        b"someone's upload in progress",
    );
    let server = Server::start(root, &["-A", "-w", "-o", "anon_upload_dir=/up"]);
    let mut first = server.anon();
    first.stor("/up/drop.bin", b"dropped");
    let mode = std::fs::metadata(server.root.path().join("up/drop.bin"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "anon_umask 077: {mode:o}");
    let mut second = server.anon();
    let (_, reply) = second.download("RETR /up/drop.bin");
    assert_eq!(reply.code, 550, "{}", reply.text);
    let (_, reply) = second.download("RETR /up/.minftpd-upload.123.abc.0");
    assert_eq!(reply.code, 550, "{}", reply.text);
    second.ok("SITE UMASK 000", 550);
    second.ok("SITE UMASK", 200);
    second.ok("SITE CHMOD 644 /up/drop.bin", 550);
    second.ok("TYPE I", 200);
    let reply = second.upload("STOR /up/.minftpd-upload.x", b"hidden");
    assert_eq!(reply.code, 553, "{}", reply.text);
    second.send_raw(b"STOR /up/a\rb\r\n");
    assert_eq!(second.reply().code, 553);
    second.ok("MKD /up/.minftpd-upload.d", 553);
    // MLSx facts name only what an anonymous session may do.
    let facts = second.cmd("MLST /up").text;
    assert!(facts.contains("perm=celm;"), "{facts}");
    let listing = second.list("MLSD /up");
    let line = listing.lines().find(|l| l.ends_with(" drop.bin")).unwrap();
    assert!(line.contains("perm=;"), "{line}");
    let facts = second.cmd("MLST /inside.txt").text;
    assert!(facts.contains("perm=r;"), "{facts}");
    still_serves(&server);
}
