//! The control connection: greeting, login and logout, FEAT, HELP, OPTS,
//! line handling, timeouts, and what is refused before login.

use super::*;

#[test]
fn greeting_login_and_quit() {
    let server = served();
    let mut ftp = server.connect();
    assert_eq!(ftp.greeting.code, 220);
    ftp.ok("USER anonymous", 331);
    ftp.ok("PASS guest@", 230);
    ftp.ok("QUIT", 221);
    ftp.expect_closed();
}

#[test]
fn commands_before_login() {
    let server = served();
    let mut ftp = server.connect();
    for line in [
        "LIST",
        "RETR a.txt",
        "CWD dir",
        "PASV",
        "PWD",
        "STOR x",
        "FROB",
        "SITE HELP",
    ] {
        assert_eq!(ftp.cmd(line).code, 530, "{line}");
    }
    assert_eq!(ftp.cmd("SYST").text, "215 UNIX Type: L8\r\n");
    ftp.ok("NOOP", 200);
    ftp.ok("OPTS UTF8 ON", 200);
    ftp.ok("FEAT", 211);
    ftp.ok("HELP", 214);
    ftp.ok("HOST localhost", 220);
    ftp.ok("AUTH TLS", 502);
    ftp.ok("PASS x", 503);
}

#[test]
fn feat_lists_the_extensions() {
    let server = served();
    let mut ftp = server.connect();
    let feat = ftp.ok("FEAT", 211).text;
    assert!(
        feat.starts_with("211-") && feat.ends_with("211 End\r\n"),
        "{feat}"
    );
    for f in [
        "EPRT",
        "EPSV",
        "MDTM",
        "MFMT",
        "MLST type*;size*;modify*",
        "PASV",
        "REST STREAM",
        "SIZE",
        "TVFS",
        "UTF8",
    ] {
        assert!(
            feat.contains(&format!("\r\n {f}")),
            "FEAT lacks {f}: {feat}"
        );
    }
}

#[test]
fn rein_logs_out() {
    let server = served();
    let mut ftp = server.anon();
    ftp.ok("REIN", 220);
    ftp.ok("PWD", 530);
    ftp.login("ftp", "x");
    ftp.ok("PWD", 257);
}

#[test]
fn over_long_lines_get_500_and_the_session_continues() {
    let server = served();
    let mut ftp = server.anon();
    let mut line = vec![b'A'; 6000];
    line.extend_from_slice(b"\r\n");
    ftp.send_raw(&line);
    assert_eq!(ftp.reply().code, 500);
    ftp.ok("NOOP", 200);
    // A line of exactly 4096 bytes is still a line.
    let long_path = format!("SIZE {}b", "b/".repeat(2045));
    assert_eq!(long_path.len(), 4096);
    assert_eq!(ftp.cmd(&long_path).code, 550);
}

#[test]
fn telnet_interrupt_before_abor_and_bare_lf() {
    let server = served();
    let mut ftp = server.anon();
    ftp.send_raw(b"\xff\xf4\xff\xf2ABOR\r\n");
    assert_eq!(ftp.reply().code, 225);
    ftp.send_raw(b"NOOP\n");
    assert_eq!(ftp.reply().code, 200);
}

#[test]
fn idle_sessions_are_closed_with_421() {
    let server = Server::start(TempDir::new("idle"), &["-A", "-o", "idle_timeout=1"]);
    let mut ftp = server.anon();
    let reply = ftp.reply();
    assert_eq!(reply.code, 421, "{}", reply.text);
    ftp.expect_closed();
}

#[test]
fn opts_mlst_chooses_the_facts() {
    let server = served();
    let mut ftp = server.anon();
    assert_eq!(
        ftp.cmd("OPTS MLST type;size;").text,
        "200 MLST OPTS type;size;\r\n"
    );
    let mlst = ftp.ok("MLST a.txt", 250).text;
    assert!(mlst.contains("\r\n type=file;size=6; a.txt\r\n"), "{mlst}");
    let mlsd = ftp.list("MLSD dir");
    assert_eq!(
        mlsd.lines()
            .filter(|l| l.ends_with(" inner.txt"))
            .collect::<Vec<_>>(),
        ["type=file;size=5; inner.txt"]
    );
    assert_eq!(ftp.cmd("OPTS MLST").text, "200 MLST OPTS \r\n");
    assert!(ftp.ok("MLST a.txt", 250).text.contains("\r\n  a.txt\r\n"));
    ftp.ok("OPTS FROB", 501);
}

#[test]
fn help_is_a_proper_multi_line_reply() {
    let server = served();
    let mut ftp = server.anon();
    let help = ftp.ok("HELP", 214).text;
    let lines: Vec<&str> = help.lines().collect();
    assert!(lines.len() >= 2, "{help}");
    assert!(lines[0].starts_with("214-"), "{help}");
    assert!(lines.last().unwrap().starts_with("214 "), "{help}");
    for command in ["RETR", "STOR", "MLSD", "EPSV", "FEAT"] {
        assert!(help.contains(command), "HELP lacks {command}: {help}");
    }
    ftp.ok("QUIT", 221);
    // QUIT is allowed before login too.
    let mut ftp = server.connect();
    ftp.ok("QUIT", 221);
    ftp.expect_closed();
}

#[test]
fn anonymous_login_variants() {
    let server = served();
    for (user, pass) in [("anonymous", "a@b"), ("ftp", "x")] {
        let mut ftp = server.connect();
        ftp.ok(&format!("USER {user}"), 331);
        let reply = ftp.cmd(&format!("PASS {pass}"));
        assert_eq!(reply.code, 230, "USER {user}: {}", reply.text);
        assert_eq!(ftp.retr("a.txt"), b"alpha\n");
    }
    // Without --anonymous nobody gets in as anonymous.
    let closed = Server::start(TempDir::new("noanon"), &[]);
    let mut ftp = closed.connect();
    // Refused at USER or at PASS, either way not logged in.
    if ftp.cmd("USER anonymous").code == 331 {
        ftp.ok("PASS x", 530);
    }
    ftp.ok("PWD", 530);
}

#[test]
fn every_other_command_is_530_before_login() {
    let server = served();
    let mut ftp = server.connect();
    // The issue: anything but USER, PASS, QUIT, FEAT, SYST, HELP, NOOP, OPTS,
    // HOST and AUTH answers 530 before login.
    for line in [
        "PORT 127,0,0,1,200,10",
        "EPRT |1|127.0.0.1|51210|",
        "EPSV",
        "TYPE I",
        "MODE S",
        "STRU F",
        "RETR a.txt",
        "STOU",
        "APPE a.txt",
        "ALLO 10",
        "REST 0",
        "RNFR a.txt",
        "RNTO b.txt",
        "ABOR",
        "DELE a.txt",
        "RMD dir",
        "XRMD dir",
        "MKD new",
        "XMKD new",
        "XPWD",
        "XCWD dir",
        "CDUP",
        "XCUP",
        "NLST",
        "MLSD",
        "MLST a.txt",
        "SIZE a.txt",
        "MDTM a.txt",
        "MFMT 20200101000000 a.txt",
        "SITE CHMOD 777 a.txt",
        "STAT a.txt",
    ] {
        let reply = ftp.cmd(line);
        assert_eq!(reply.code, 530, "{line}: {}", reply.text);
    }
    assert!(!server.root.path().join("new").exists());
    assert_eq!(server.root.read("a.txt"), b"alpha\n");
    ftp.login("anonymous", "x");
    ftp.ok("NOOP", 200);
}
