//! Directories and file commands: CWD, PWD, MKD, RMD, DELE, RNFR/RNTO, SIZE,
//! MDTM, MLST, MLSD, LIST, STAT, SITE, and the exact replies for each.

use super::*;

#[test]
fn directories_and_the_virtual_root() {
    let server = served();
    let mut ftp = server.anon();
    assert_eq!(
        ftp.cmd("PWD").text,
        "257 \"/\" is the current directory.\r\n"
    );
    ftp.ok("CWD dir", 250);
    assert!(ftp.cmd("XPWD").text.starts_with("257 \"/dir\""));
    ftp.ok("CDUP", 250);
    ftp.ok("CDUP", 250);
    ftp.ok("CWD ../../..", 250);
    assert!(ftp.cmd("PWD").text.starts_with("257 \"/\""));
    ftp.ok("CWD nowhere", 550);
    ftp.ok("CWD a.txt", 550);
    ftp.ok("XCWD /dir", 250);
    assert_eq!(ftp.retr("inner.txt"), b"inner");
}

#[test]
fn size_mdtm_mlst() {
    let server = served();
    let mut ftp = server.anon();
    assert_eq!(ftp.cmd("SIZE a.txt").text, "213 6\r\n");
    ftp.ok("SIZE missing", 550);
    ftp.ok("SIZE dir", 550);
    let mdtm = ftp.ok("MDTM a.txt", 213).text;
    assert_eq!(mdtm.trim().len(), "213 YYYYMMDDHHMMSS".len(), "{mdtm}");
    ftp.ok("MDTM missing", 550);
    let mlst = ftp.ok("MLST a.txt", 250).text;
    assert!(mlst.contains(" type=file;size=6;modify="), "{mlst}");
    assert!(mlst.contains(";perm=r;unix.mode=0666;unique="), "{mlst}");
    assert!(mlst.contains("; a.txt\r\n"), "{mlst}");
    ftp.ok("MLST missing", 550);
}

#[test]
fn listings() {
    let server = served();
    let mut ftp = server.anon();
    let list = ftp.list("LIST");
    assert!(
        list.lines()
            .any(|l| l.starts_with("-rw-rw-rw-") && l.ends_with(" a.txt")),
        "{list}"
    );
    assert!(
        list.lines()
            .any(|l| l.starts_with("drwxrwxrwx") && l.ends_with(" dir")),
        "{list}"
    );
    assert!(!list.contains(".hidden"));
    assert!(list.lines().all(|l| !l.is_empty()) && list.ends_with("\r\n"));
    assert!(ftp.list("LIST -la").contains(" .hidden\r\n"));
    assert_eq!(
        ftp.list("LIST -l dir").trim_end().rsplit(' ').next(),
        Some("inner.txt")
    );
    let mut names: Vec<String> = ftp.list("NLST").lines().map(String::from).collect();
    names.sort();
    assert_eq!(names, ["a.txt", "dir"]);
    let mlsd = ftp.list("MLSD");
    assert!(mlsd.contains("type=cdir;"), "{mlsd}");
    assert!(
        mlsd.contains("type=file;size=6;") && mlsd.contains("; a.txt\r\n"),
        "{mlsd}"
    );
    assert!(
        mlsd.contains("type=dir;") && mlsd.contains("; dir\r\n"),
        "{mlsd}"
    );
    assert!(mlsd.contains("; .hidden\r\n"));
    for line in ["LIST nowhere", "NLST nowhere", "MLSD nowhere"] {
        ftp.refused_keeps_data(line, 550);
    }
}

#[test]
fn stat_on_the_control_connection() {
    let server = served();
    let mut ftp = server.anon();
    let stat = ftp.ok("STAT", 211).text;
    assert!(stat.contains("Logged in as anonymous"), "{stat}");
    let listing = ftp.ok("STAT dir", 213).text;
    assert!(
        listing.contains(" inner.txt\r\n") && listing.ends_with("213 End of status.\r\n"),
        "{listing}"
    );
    ftp.ok("STAT missing", 550);
}

#[test]
fn mkdir_quotes_names() {
    let root = TempDir::new("mkd");
    let dir = TempDir::new("mkd-users");
    let users = users_file(&dir, &[("w", "pw", "/", "rw")]);
    let server = Server::start(root, &["-w", "-U", users.to_str().unwrap()]);
    let mut ftp = server.connect();
    ftp.login("w", "pw");
    assert_eq!(ftp.cmd("MKD a\"b").text, "257 \"/a\"\"b\" created.\r\n");
    assert!(server.root.path().join("a\"b").is_dir());
    ftp.ok("MKD a\"b", 550);
    ftp.ok("RMD a\"b", 250);
}

#[test]
fn a_missing_path_is_550_for_every_command_that_names_one() {
    let root = TempDir::new("missing");
    root.write("f.txt", b"f");
    root.mkdir("d");
    // A writer, so that 550 cannot come from a missing permission.
    let (server, _etc) = writable(root);
    let mut ftp = server.connect();
    ftp.login("rw", "pw");
    for line in [
        "MLST nope",
        "CWD nope",
        "SIZE nope",
        "MDTM nope",
        "DELE nope",
        "RNFR nope",
        "RMD nope",
        "SITE CHMOD 644 nope",
        "MFMT 20200101000000 nope",
        "SIZE nope/f.txt",
        "DELE d",
        "RMD f.txt",
    ] {
        let reply = ftp.cmd(line);
        assert_eq!(reply.code, 550, "{line}: {}", reply.text);
    }
    ftp.ok("TYPE I", 200);
    for line in ["RETR nope", "RETR d", "LIST nope", "NLST nope", "MLSD nope"] {
        ftp.refused_keeps_data(line, 550);
    }
    // Storing into a directory that does not exist fails too and creates nothing.
    let reply = ftp.upload("STOR nope/new.txt", b"x");
    assert!(matches!(reply.code, 550 | 553), "{}", reply.text);
    assert_eq!(server.root.names(""), ["d", "f.txt"]);
    ftp.ok("RNTO f.txt", 503);
    ftp.ok("NOOP", 200);
}

#[test]
fn mlsd_lines_carry_every_fact() {
    let server = served();
    let mut ftp = server.anon();
    let mlsd = ftp.list("MLSD");
    let lines: Vec<&str> = mlsd.lines().collect();
    assert!(lines.len() >= 4, "{mlsd}");
    for line in &lines {
        let (facts, name) = line.split_once(' ').expect("facts, space, name");
        let facts: std::collections::HashMap<String, String> = facts
            .split(';')
            .filter(|f| !f.is_empty())
            .map(|f| {
                let (k, v) = f.split_once('=').expect("fact=value");
                (k.to_ascii_lowercase(), v.to_string())
            })
            .collect();
        for key in ["type", "modify", "perm", "unix.mode", "unique"] {
            assert!(facts.contains_key(key), "{name}: no {key} in {line}");
        }
        let modify = &facts["modify"];
        assert!(
            modify.len() >= 14 && modify[..14].bytes().all(|b| b.is_ascii_digit()),
            "{line}"
        );
        let mode = &facts["unix.mode"];
        assert!(
            mode.len() == 4 && mode.bytes().all(|b| (b'0'..=b'7').contains(&b)),
            "{line}"
        );
        match name {
            "a.txt" => {
                assert_eq!(facts["type"], "file", "{line}");
                assert_eq!(facts["size"], "6", "{line}");
                assert_eq!(facts["unix.mode"], "0666", "{line}");
                assert!(facts["perm"].contains('r'), "{line}");
            }
            "dir" => {
                assert_eq!(facts["type"], "dir", "{line}");
                assert!(facts["perm"].contains('l'), "{line}");
            }
            _ => {}
        }
    }
    let unique = |name: &str| {
        lines
            .iter()
            .find(|l| l.ends_with(&format!(" {name}")))
            .and_then(|l| l.split(';').find(|f| f.starts_with("unique=")))
            .map(String::from)
    };
    assert!(unique("a.txt").is_some() && unique("a.txt") != unique("dir"));
    // MLST of a directory describes the directory itself.
    let mlst = ftp.ok("MLST dir", 250).text;
    assert!(mlst.contains("type=dir;"), "{mlst}");
    assert!(
        mlst.starts_with("250-") && mlst.lines().last().unwrap().starts_with("250 "),
        "{mlst}"
    );
}

#[test]
fn mdtm_mlst_and_list_show_the_real_time() {
    let root = TempDir::new("time");
    let old = root.write("old.txt", b"old");
    // 2001-02-03 12:00:00 UTC: far older than six months.
    set_mtime(&old, 981_201_600);
    root.write("new.txt", b"new");
    let server = Server::start(root, &["-A"]);
    let mut ftp = server.anon();
    assert_eq!(ftp.cmd("MDTM old.txt").text, "213 20010203120000\r\n");
    let mlst = ftp.ok("MLST old.txt", 250).text;
    assert!(mlst.contains("modify=20010203120000"), "{mlst}");
    let list = ftp.list("LIST");
    let old_line = list
        .lines()
        .find(|l| l.ends_with(" old.txt"))
        .expect("old.txt listed");
    assert!(old_line.contains(" Feb  3  2001 old.txt"), "{old_line}");
    let new_line = list
        .lines()
        .find(|l| l.ends_with(" new.txt"))
        .expect("new.txt listed");
    // A recent entry shows the time of day instead of the year: "Mon dd HH:MM name".
    let fields: Vec<&str> = new_line.split_whitespace().collect();
    let time = fields[fields.len() - 2];
    assert!(time.len() == 5 && time.as_bytes()[2] == b':', "{new_line}");
}

#[test]
fn rename_delete_and_directory_commands() {
    let root = TempDir::new("rename");
    root.write("a.txt", b"A");
    root.write("b.txt", b"B");
    let (server, _etc) = writable(root);
    let mut ftp = server.connect();
    ftp.login("rw", "pw");
    ftp.ok("RNFR a.txt", 350);
    ftp.ok("RNTO c.txt", 250);
    assert_eq!(server.root.read("c.txt"), b"A");
    assert!(!server.root.path().join("a.txt").exists());
    // RNTO needs an RNFR before it, and a rename is used up once done.
    ftp.ok("RNTO d.txt", 503);
    ftp.ok("RNFR c.txt", 350);
    ftp.ok("RNTO a.txt", 250);
    ftp.ok("RNTO c.txt", 503);
    assert_eq!(server.root.read("a.txt"), b"A");
    assert!(ftp.cmd("XMKD sub").text.starts_with("257 \"/sub\""));
    ftp.ok("XCWD sub", 250);
    assert!(ftp
        .cmd("MKD deeper")
        .text
        .starts_with("257 \"/sub/deeper\""));
    ftp.ok("XCUP", 250);
    assert!(server.root.path().join("sub/deeper").is_dir());
    // A directory that is not empty stays.
    ftp.ok("RMD sub", 550);
    ftp.ok("XRMD sub/deeper", 250);
    ftp.ok("RMD sub", 250);
    assert!(!server.root.path().join("sub").exists());
    ftp.ok("DELE b.txt", 250);
    assert_eq!(server.root.names(""), ["a.txt"]);
}

#[test]
fn rnto_must_immediately_follow_rnfr() {
    // RFC 959 4.1.3: RNTO "must be immediately preceded by a rename from command".
    let root = TempDir::new("rnto");
    root.write("a.txt", b"A");
    let (server, _etc) = writable(root);
    let mut ftp = server.connect();
    ftp.login("rw", "pw");
    ftp.ok("RNFR a.txt", 350);
    ftp.ok("NOOP", 200);
    ftp.ok("RNTO b.txt", 503);
    assert_eq!(server.root.names(""), ["a.txt"]);
}

#[test]
fn site_chmod_umask_idle_and_mfmt() {
    let root = TempDir::new("site");
    let (server, _etc) = writable(root);
    let mut ftp = server.connect();
    ftp.login("rw", "pw");
    // The file is the server's own: when the tests run as root the server
    // runs as an unprivileged account, which may only chmod what it owns.
    ftp.stor("f.txt", b"f");
    assert!(ftp.ok("SITE HELP", 214).text.contains("CHMOD"));
    let chmod = ftp.cmd("SITE CHMOD 640 f.txt");
    assert_eq!(mode_of(&server.root.path().join("f.txt")), 0o640);
    ftp.ok("SITE CHMOD 99x f.txt", 501);
    ftp.ok("SITE UMASK 077", 200);
    ftp.stor("private.txt", b"p");
    let mode = mode_of(&server.root.path().join("private.txt"));
    assert_eq!(mode & 0o077, 0, "umask 077 left mode {mode:o}");
    ftp.ok("SITE IDLE 120", 200);
    ftp.ok("SITE FROB", 500);
    let reply = ftp.ok("MFMT 20200101000000 f.txt", 213);
    assert!(reply.text.contains("20200101000000"), "{}", reply.text);
    assert_eq!(mtime_secs(&server.root.path().join("f.txt")), 1_577_836_800);
    assert_eq!(ftp.cmd("MDTM f.txt").text, "213 20200101000000\r\n");
    ftp.ok("MFMT 2020 f.txt", 501);
    // RFC 959 5.4: SITE answers 200 (or 202, 500, 501, 530), as vsftpd does.
    assert_eq!(chmod.code, 200, "SITE CHMOD: {}", chmod.text);
}

#[test]
fn utf8_names_work_and_names_with_line_breaks_are_not_listed() {
    let root = TempDir::new("names");
    root.write("h\u{e9}llo w\u{f6}rld.txt", b"utf8");
    root.write("bad\nname", b"x");
    root.write("bad\rname2", b"x");
    let server = Server::start(root, &["-A"]);
    let mut ftp = server.anon();
    ftp.ok("OPTS UTF8 ON", 200);
    let names = ftp.list("NLST");
    assert_eq!(names, "h\u{e9}llo w\u{f6}rld.txt\r\n");
    let list = ftp.list("LIST");
    assert_eq!(list.lines().count(), 1, "{list:?}");
    assert!(list.ends_with(" h\u{e9}llo w\u{f6}rld.txt\r\n"), "{list:?}");
    let mlsd = ftp.list("MLSD");
    assert!(!mlsd.contains("bad"), "{mlsd:?}");
    assert_eq!(ftp.retr("h\u{e9}llo w\u{f6}rld.txt"), b"utf8");
    assert_eq!(ftp.cmd("SIZE h\u{e9}llo w\u{f6}rld.txt").text, "213 4\r\n");
}
