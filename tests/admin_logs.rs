//! What an administrator reads in the log without -v: writes the host
//! refuses, the journal's priorities, syslog as a target, rotation.

use crate::common::*;
use std::os::unix::fs::PermissionsExt;

/// A directory the server's account cannot write: mode 0555 (as root the
/// server drops to an unprivileged account, so this holds then too).
fn locked_dir(root: &TempDir, rel: &str) {
    root.write(&format!("{rel}/old.txt"), b"old");
    let dir = root.path().join(rel);
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o555)).unwrap();
}

#[test]
fn writes_the_filesystem_refuses_are_logged_at_info_with_user_path_and_reason() {
    let root = TempDir::new("refused");
    locked_dir(&root, "cam");
    let (server, _etc) = rw_server(root, "pw", &[]);
    let mut ftp = server.login("rw", "pw");
    ftp.ok("TYPE I", 200);
    assert_eq!(ftp.upload("STOR /cam/new.jpg", b"frame").code, 550);
    ftp.ok("MKD /cam/sub", 550);
    ftp.ok("DELE /cam/old.txt", 550);
    ftp.ok("RNFR /cam/old.txt", 350);
    ftp.ok("RNTO /cam/renamed.txt", 550);
    ftp.ok("QUIT", 221);
    for (verb, path) in [
        ("STOR", "/cam/new.jpg"),
        ("MKD", "/cam/sub"),
        ("DELE", "/cam/old.txt"),
        ("RNTO", "/cam/renamed.txt"),
    ] {
        let line = format!("\"rw\" {verb} \"{path}\" refused by the filesystem: permission denied");
        assert!(
            server.wait_for_log(&line),
            "no {line:?} in:\n{}",
            server.log()
        );
    }
    // The log names the path as the client knows it, never the host's.
    assert!(
        !server.log().contains(server.root.path().to_str().unwrap()),
        "{}",
        server.log()
    );
    let dir = server.root.path().join("cam");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    server.finish();
}
