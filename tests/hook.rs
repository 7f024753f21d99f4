//! The upload hook (`upload_hook`): a real shell script records its argument
//! and environment for uploads with hostile names, byte for byte; a slow hook
//! does not slow uploads; a hanging one is killed at the timeout with its
//! process group; it never runs as root; STOU and APPE fire, an aborted
//! upload does not; the real client behind a PROXY balancer is named; inetd
//! mode runs it and lets the connection close; --check-config checks it.

use crate::common::*;
use std::io::Write;
use std::net::TcpStream;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What one run of the recording hook saw.
#[derive(Debug)]
struct Record {
    argc: String,
    arg: Vec<u8>,
    user: Vec<u8>,
    peer: String,
    path: Vec<u8>,
    size: String,
    uid: String,
    env: String,
}

/// A hook script in a directory of its own; its records go to `records`
/// (open to the run-as account). `body` runs after the recording.
struct Hook {
    bin: TempDir,
    records: TempDir,
}

impl Hook {
    fn new(body: &str) -> Hook {
        let bin = TempDir::new("hook-bin");
        let records = TempDir::new("hook-records");
        let r = records.path().display();
        let script = format!(
            "#!/bin/sh\n\
             d={r}/tmp.$$\n\
             mkdir \"$d\"\n\
             printf '%s' \"$#\" > \"$d/argc\"\n\
             printf '%s' \"$1\" > \"$d/arg\"\n\
             printf '%s' \"$MINFTPD_USER\" > \"$d/user\"\n\
             printf '%s' \"$MINFTPD_PEER\" > \"$d/peer\"\n\
             printf '%s' \"$MINFTPD_PATH\" > \"$d/path\"\n\
             printf '%s' \"$MINFTPD_SIZE\" > \"$d/size\"\n\
             id -u > \"$d/uid\"\n\
             env > \"$d/env\"\n\
             {body}\n\
             mv \"$d\" {r}/done.$$\n"
        );
        let path = bin.write("hook.sh", script.as_bytes());
        set_mode(&path, 0o755);
        Hook { bin, records }
    }

    fn program(&self) -> PathBuf {
        self.bin.path().join("hook.sh")
    }

    fn option(&self) -> String {
        format!("upload_hook={}", self.program().display())
    }

    /// The finished runs so far.
    fn records(&self) -> Vec<Record> {
        let read = |d: &Path, f: &str| std::fs::read(d.join(f)).unwrap_or_default();
        let text = |d: &Path, f: &str| String::from_utf8_lossy(&read(d, f)).trim().to_string();
        let mut out = Vec::new();
        for entry in std::fs::read_dir(self.records.path()).unwrap() {
            let d = entry.unwrap().path();
            if !d.file_name().unwrap().as_bytes().starts_with(b"done.") {
                continue;
            }
            out.push(Record {
                argc: text(&d, "argc"),
                arg: read(&d, "arg"),
                user: read(&d, "user"),
                peer: text(&d, "peer"),
                path: read(&d, "path"),
                size: text(&d, "size"),
                uid: text(&d, "uid"),
                env: text(&d, "env"),
            });
        }
        out
    }

    /// Waits (bounded) until `n` runs have finished.
    fn wait_records(&self, n: usize, within: Duration) -> Vec<Record> {
        let deadline = Instant::now() + within;
        loop {
            let records = self.records();
            if records.len() >= n || Instant::now() > deadline {
                return records;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Uploads `bytes` with the raw command `line` (any bytes); `header` goes
/// first on the data connection (a PROXY header, or nothing).
fn upload_raw(ftp: &mut Ftp, line: &[u8], header: &[u8], bytes: &[u8]) -> Reply {
    let mut data = ftp.epsv();
    data.write_all(header).unwrap();
    ftp.send_raw(&[line, b"\r\n"].concat());
    let opening = ftp.reply();
    if opening.code != 150 {
        return opening;
    }
    data.write_all(bytes).unwrap();
    drop(data);
    ftp.reply()
}

/// The uid of the run-as account when the tests run as root.
fn expected_uid() -> Option<String> {
    if !is_root() {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    let name = if passwd.lines().any(|l| l.starts_with("ftp:")) {
        "ftp"
    } else {
        "nobody"
    };
    passwd
        .lines()
        .find(|l| l.starts_with(&format!("{name}:")))
        .map(|l| l.split(':').nth(2).unwrap().to_string())
}

/// A server with a named user `cam` (password `pass`) at home in /incoming,
/// the hook set; the TempDir holds the users file.
fn cam_server(hook: &Hook, extra: &[&str]) -> (Server, TempDir) {
    let root = TempDir::new("hook-root");
    root.mkdir("incoming/sub");
    let etc = TempDir::new("hook-etc");
    let users = users_file(&etc, &[("cam", "pass", "/incoming", "rw")]);
    let option = hook.option();
    let mut args = vec!["-w", "-U", users.to_str().unwrap(), "-o", &option];
    args.extend_from_slice(extra);
    (Server::start(root, &args), etc)
}

/// The pids of the server's children (the hook's runner).
fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect()
}

/// Gone, or a zombie nobody reaped yet: not running any more.
fn is_gone(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .unwrap()
            .trim_start()
            .starts_with('Z'),
    }
}

fn wait_gone(pid: &str) -> bool {
    let deadline = Instant::now() + TIMEOUT;
    while Instant::now() < deadline {
        if is_gone(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn hostile_names_reach_the_hook_byte_for_byte_without_a_shell() {
    let hook = Hook::new("");
    let (server, _etc) = cam_server(&hook, &[]);
    let mut ftp = server.login("cam", "pass");
    ftp.ok("TYPE I", 200);
    let names: [&[u8]; 7] = [
        b"a b  c",
        b"$(touch pwned)",
        b"`touch pwned2`;x",
        b"quote'\"s",
        b"-rf",
        b"caf\xe9 \x80\xfe",
        b"sub/--help",
    ];
    for (i, name) in names.iter().enumerate() {
        let reply = upload_raw(&mut ftp, &[b"STOR ", *name].concat(), b"", &pattern(i));
        assert_eq!(
            reply.code,
            226,
            "{}: {}",
            String::from_utf8_lossy(name),
            reply.text
        );
    }
    let records = hook.wait_records(names.len(), TIMEOUT);
    assert_eq!(records.len(), names.len(), "{records:?}\n{}", server.log());
    let root = std::fs::canonicalize(server.root.path()).unwrap();
    for (i, name) in names.iter().enumerate() {
        let vpath = [b"/", *name].concat();
        let record = records
            .iter()
            .find(|r| r.path == vpath)
            .unwrap_or_else(|| panic!("no run for {}: {records:?}", String::from_utf8_lossy(name)));
        let host = [root.as_os_str().as_bytes(), b"/incoming", &vpath].concat();
        assert_eq!(record.arg, host);
        assert_eq!(
            std::fs::read(std::ffi::OsStr::from_bytes(&host)).unwrap(),
            pattern(i)
        );
        assert_eq!(record.argc, "1");
        assert_eq!(record.user, b"cam");
        assert_eq!(record.peer, "127.0.0.1");
        assert_eq!(record.size, i.to_string());
        if let Some(uid) = expected_uid() {
            assert_eq!(record.uid, uid, "the hook runs as the run-as account");
        }
        assert_ne!(record.uid, "0");
        // Nothing of the server's environment (cargo sets CARGO_* for us).
        assert!(!record.env.contains("CARGO"), "{}", record.env);
    }
    for dir in [server.root.path(), hook.records.path(), hook.bin.path()] {
        for planted in ["pwned", "pwned2", "incoming/pwned"] {
            assert!(
                !dir.join(planted).exists(),
                "{planted} in {}",
                dir.display()
            );
        }
    }
}

#[test]
fn stou_and_appe_fire_and_an_aborted_upload_does_not() {
    let hook = Hook::new("");
    let (server, _etc) = cam_server(&hook, &["-o", "log_level=debug"]);
    let mut ftp = server.login("cam", "pass");
    ftp.ok("TYPE I", 200);
    let stou = upload_raw(&mut ftp, b"STOU cam.jpg", b"", b"12345");
    assert_eq!(stou.code, 226, "{}", stou.text);
    ftp.stor("log.txt", b"abc");
    let appe = upload_raw(&mut ftp, b"APPE log.txt", b"", b"defg");
    assert_eq!(appe.code, 226, "{}", appe.text);

    // ABOR while the data still flows: 426, then 226 for the ABOR itself.
    let mut data = ftp.epsv();
    ftp.ok("STOR aborted", 150);
    data.write_all(&pattern(1000)).unwrap();
    ftp.send_raw(b"ABOR\r\n");
    assert_eq!(ftp.reply().code, 426);
    assert_eq!(ftp.reply().code, 226);
    drop(data);
    // A refused upload (no 150 at all) fires nothing either.
    assert_eq!(ftp.cmd("STOR ../../etc/passwd-x").code / 100, 5);
    ftp.stor("last", b"z");

    // The runner starts hooks in the order of the uploads: once the last
    // one has started, every earlier one that fired has been logged.
    assert!(server.wait_for_log("upload hook for \"/last\" started"));
    let log = server.log();
    assert!(!log.contains("upload hook for \"/aborted\""), "{log}");
    assert!(!log.contains("passwd-x\" started"), "{log}");
    let records = hook.wait_records(4, TIMEOUT);
    let mut seen: Vec<(String, String)> = records
        .iter()
        .map(|r| {
            (
                String::from_utf8_lossy(&r.path).into_owned(),
                r.size.clone(),
            )
        })
        .collect();
    seen.sort();
    let want = [
        ("/cam.jpg", "5"),
        ("/last", "1"),
        ("/log.txt", "3"),
        ("/log.txt", "7"),
    ];
    assert_eq!(
        seen,
        want.map(|(p, s)| (p.to_string(), s.to_string())),
        "STOR, STOU and APPE fire, with the file's size after the upload"
    );
}

#[test]
fn a_slow_hook_does_not_slow_uploads() {
    // Each run takes 2 s; at most a few run at once. Were the hook run in
    // the session, each 226 would wait for it and 19 runs would be over by
    // the time the 20th upload is answered.
    let hook = Hook::new("sleep 2");
    let (server, _etc) = cam_server(&hook, &[]);
    let mut ftp = server.login("cam", "pass");
    for i in 0..20 {
        ftp.stor(&format!("f{i}"), b"x");
    }
    let finished = hook.records().len();
    assert!(
        finished < 20,
        "{finished} hooks finished before the uploads did"
    );
    let records = hook.wait_records(20, Duration::from_secs(60));
    assert_eq!(records.len(), 20, "every upload runs its hook in the end");
    server.finish();
}

#[test]
fn a_hanging_hook_is_killed_with_its_children_at_the_timeout() {
    let hook = Hook::new("");
    let r = hook.records.path().display();
    // Replaces the recording script: one that hangs, and a child that hangs.
    let script = format!(
        "#!/bin/sh\nsleep 1000 &\necho $! > {r}/child.tmp\nmv {r}/child.tmp {r}/child\necho $$ > {r}/pid\nwait\n"
    );
    std::fs::write(hook.program(), script).unwrap();
    let (server, _etc) = cam_server(&hook, &["-o", "upload_hook_timeout=1"]);
    server.login("cam", "pass").stor("hang", b"x");
    let line = "upload hook for \"/hang\" still running after upload_hook_timeout (1s): killed";
    assert!(server.wait_for_log(line), "{}", server.log());
    let read = |f: &str| std::fs::read_to_string(hook.records.path().join(f)).unwrap();
    let (pid, child) = (read("pid"), read("child"));
    assert!(wait_gone(pid.trim()), "the hook {pid} still runs");
    assert!(
        wait_gone(child.trim()),
        "the hook's child {child} still runs"
    );
    // A killed hook is not a failure to report twice, and serving goes on.
    assert!(
        !server.log().contains("killed by signal"),
        "{}",
        server.log()
    );
    server.login("cam", "pass").stor("after", b"y");
    let line = "upload hook for \"/after\" still running after upload_hook_timeout (1s): killed";
    assert!(server.wait_for_log(line), "{}", server.log());
    server.finish();
}

#[test]
fn the_runner_never_runs_as_root() {
    let hook = Hook::new("");
    let (server, _etc) = cam_server(&hook, &[]);
    let runners = children(server.pid());
    assert_eq!(runners.len(), 1, "one runner: {runners:?}");
    let status = std::fs::read_to_string(format!("/proc/{}/status", runners[0])).unwrap();
    let field = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap()
            .split_whitespace()
            .map(String::from)
            .collect::<Vec<_>>()
    };
    for key in ["Uid:", "Gid:"] {
        assert!(
            !field(key).contains(&"0".to_string()),
            "{key} {:?}",
            field(key)
        );
    }
    assert_eq!(field("Groups:"), Vec::<String>::new());
    assert_eq!(field("NoNewPrivs:"), vec!["1".to_string()]);
    if let Some(uid) = expected_uid() {
        assert_eq!(field("Uid:"), vec![uid; 4]);
    }
    // Not chrooted: the runner reaches the host's files.
    let proc_root = std::fs::read_link(format!("/proc/{}/root", runners[0])).unwrap();
    assert_eq!(proc_root, Path::new("/"));
    server.login("cam", "pass").stor("x", b"x");
    let records = hook.wait_records(1, TIMEOUT);
    assert_ne!(records[0].uid, "0");
}

#[test]
fn behind_a_balancer_the_hook_names_the_real_client() {
    let hook = Hook::new("");
    let root = TempDir::new("hook-proxy");
    root.mkdir("up");
    let option = hook.option();
    let args = [
        "--anonymous",
        "-w",
        "-o",
        "anon_upload_dir=/up",
        "-o",
        "proxy_protocol=yes",
        "-o",
        "proxy_from=127.0.0.1",
        "-o",
        &option,
    ];
    let server = Server::start(root, &args);
    let mut ctl = TcpStream::connect_timeout(&server.addr, TIMEOUT).unwrap();
    ctl.write_all(b"PROXY TCP4 192.0.2.7 127.0.0.1 40007 21\r\n")
        .unwrap();
    let mut ftp = Ftp::over(ctl);
    ftp.login("anonymous", "x");
    ftp.ok("TYPE I", 200);
    let header = b"PROXY TCP4 192.0.2.7 127.0.0.1 40008 21\r\n";
    let reply = upload_raw(&mut ftp, b"STOR /up/cam.jpg", header, b"jpeg");
    assert_eq!(reply.code, 226, "{}", reply.text);
    let records = hook.wait_records(1, TIMEOUT);
    assert_eq!(records.len(), 1, "{}", server.log());
    assert_eq!(records[0].peer, "192.0.2.7");
    assert_eq!(records[0].user, b"anonymous");
    assert_eq!(records[0].path, b"/up/cam.jpg");
}

#[test]
fn in_inetd_mode_the_runner_holds_no_socket_and_ends_after_the_server() {
    // The hook outlives the session: the runner must not hold the client's
    // socket (standard input and output in inetd mode) open meanwhile.
    let hook = Hook::new("sleep 3");
    let root = TempDir::new("hook-inetd");
    let option = hook.option();
    let (mut server, mut ftp) = inetd(
        &root,
        &[
            "--anonymous",
            "-w",
            "-o",
            "anon_upload_dir=/",
            "-o",
            &option,
        ],
    );
    let runners = children(server.0.id());
    assert_eq!(runners.len(), 1, "one runner per inetd process");
    // The runner lets go of the sockets first thing after the fork; the
    // greeting may come before it has: wait for that, bounded.
    let deadline = Instant::now() + TIMEOUT;
    let held = loop {
        let held = sockets_held(runners[0]);
        if held.is_empty() || Instant::now() >= deadline {
            break held;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(held.is_empty(), "the runner holds {held:?}");
    ftp.login("anonymous", "x");
    ftp.stor("/in.txt", b"inetd");
    ftp.ok("QUIT", 221);
    let mut ctl = ftp.ctl.try_clone().unwrap();
    expect_eof(&mut ctl);
    assert!(wait_exit(&mut server.0).is_some(), "the server exits");
    let records = hook.wait_records(1, TIMEOUT);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].path, b"/in.txt");
    // The server closed the pipe: the runner ends once its hook has.
    assert!(wait_gone(&runners[0].to_string()), "the runner still runs");
}

#[test]
fn check_config_names_a_hook_that_cannot_be_run() {
    let root = TempDir::new("hook-check");
    let script = root.write("hook.sh", b"#!/bin/sh\n");
    let missing = root.path().join("missing");
    let cases = [script.clone(), missing, PathBuf::from("hook.sh")];
    for program in cases {
        let option = format!("upload_hook={}", program.display());
        let args = ["-c", "/dev/null", "--check-config", "-r"];
        let mut args = args.to_vec();
        args.extend([root.path().to_str().unwrap(), "-o", &option]);
        let (code, err) = start_error(&args);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("upload_hook"), "{err}");
        assert!(err.contains(&program.display().to_string()), "{err}");
        assert!(
            err.contains("is not an executable file given by its absolute path"),
            "{err}"
        );
    }
    set_mode(&script, 0o755);
    let option = format!("upload_hook={}", script.display());
    let printed = check_config(root.path(), &["-o", &option]);
    assert!(
        printed.contains(&format!("upload_hook = {}", script.display())),
        "{printed}"
    );
    assert!(printed.contains("upload_hook_timeout = 60"), "{printed}");
    if is_root() {
        // Executable by root alone: the run-as account could not run it.
        set_mode(&script, 0o700);
        let root_arg = root.path().to_str().unwrap();
        let args = [
            "-c",
            "/dev/null",
            "--check-config",
            "-r",
            root_arg,
            "-o",
            &option,
        ];
        let err = String::from_utf8_lossy(&run(BIN, &args).stderr).into_owned();
        assert!(
            err.contains("upload_hook: ") && err.contains("cannot be run by"),
            "{err}"
        );
    }
}

#[test]
fn socket_activated_uploads_run_the_hook() {
    if !have("systemd-socket-activate") || !have("curl") {
        return skip("systemd-socket-activate and curl");
    }
    let hook = Hook::new("");
    let option = hook.option();
    let args = ["-w", "-o", "anon_upload_dir=/", "-o", &option];
    // Accept=no hands over the listener, Accept=yes each connection.
    for (i, accept) in [&[][..], &["-a"][..]].into_iter().enumerate() {
        let root = TempDir::new("hook-activated");
        let port = free_port();
        let _activator = socket_activate(port, accept, &args, &root);
        let url = format!("ftp://127.0.0.1:{port}/up{i}.txt");
        let file = hook.bin.write("upload.txt", b"activated");
        curl_ok(&["-T", file.to_str().unwrap(), &url]);
        let records = hook.wait_records(i + 1, TIMEOUT);
        assert_eq!(records.len(), i + 1, "accept {accept:?}");
        assert!(records
            .iter()
            .any(|r| r.path == format!("/up{i}.txt").as_bytes()));
    }
}

#[test]
fn the_runner_ends_with_the_server_on_sigterm() {
    let hook = Hook::new("");
    let (mut server, _etc) = cam_server(&hook, &[]);
    let runners = children(server.pid());
    assert_eq!(runners.len(), 1);
    server.signal("TERM");
    assert!(server.wait_exit().is_some(), "the server exits on SIGTERM");
    assert!(
        wait_gone(&runners[0].to_string()),
        "the runner outlived the server"
    );
    assert!(
        !server.log().contains("upload hook runner"),
        "{}",
        server.log()
    );
}

/// The sockets among a process's open descriptors (`socket:[inode]`).
fn sockets_held(pid: u32) -> Vec<String> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .map(|target| target.to_string_lossy().into_owned())
        .filter(|target| target.starts_with("socket:"))
        .collect()
}

/// A symlink planted in the tree (by a local user: FTP makes none) leads
/// uploads somewhere inside the root, as the path layer keeps it there; the
/// same path read on the host leads outside. The hook, which runs outside the
/// chroot, must not be handed that outside path.
#[test]
fn a_planted_symlink_cannot_hand_the_hook_a_path_outside_the_root() {
    let hook = Hook::new("");
    let outside = TempDir::new("hook-outside");
    // What the hook would act on instead of the upload.
    outside.write("x.jpg", b"not the upload");
    let (server, _etc) = cam_server(&hook, &[]);
    // Inside the root the absolute link resolves below the home...
    let inside = format!("incoming{}", outside.path().display());
    server.root.mkdir(&inside);
    std::os::unix::fs::symlink(outside.path(), server.root.path().join("incoming/link")).unwrap();
    let mut ftp = server.login("cam", "pass");
    ftp.stor("/link/x.jpg", b"jpeg");
    assert_eq!(server.root.read(&format!("{inside}/x.jpg")), b"jpeg");
    ftp.stor("/last.jpg", b"last");
    let records = hook.wait_records(1, TIMEOUT);
    // ...and on the host to the directory outside it: every path the hook
    // was handed must lead, resolved on the host, into the root.
    let root = std::fs::canonicalize(server.root.path()).unwrap();
    for record in &records {
        let arg = std::path::PathBuf::from(std::ffi::OsStr::from_bytes(&record.arg));
        let resolved = std::fs::canonicalize(&arg).unwrap_or(arg);
        assert!(
            resolved.starts_with(&root),
            "the hook was handed a path leading to {}",
            resolved.display()
        );
    }
    assert!(
        server.wait_for_log("leads outside the served root"),
        "{}",
        server.log()
    );
}
