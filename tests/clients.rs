//! Real clients against the real server: curl, Python's ftplib, lftp.

use crate::common::*;

/// A server with an anonymous read-only side and a named read-write user `rw`
/// (password `secret`) whose home is the whole root.
fn with_writer(root: TempDir) -> (Server, TempDir) {
    rw_server(root, "secret", &[])
}

#[test]
fn curl_lists_and_downloads_in_every_mode() {
    if !have("curl") {
        return;
    }
    let root = TempDir::new("curl");
    let data = pattern(300_000);
    root.write("pub/data.bin", &data);
    root.write("pub/text.txt", b"a\nb\n");
    let server = Server::start(root, &["-A"]);
    let listing = String::from_utf8(curl_ok(&[&server.url("pub/")])).unwrap();
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with("-rw") && l.ends_with(" data.bin")),
        "{listing}"
    );
    assert!(
        listing.lines().any(|l| l.ends_with(" text.txt")),
        "{listing}"
    );
    assert_eq!(curl_ok(&[&server.url("pub/data.bin")]), data, "EPSV");
    assert_eq!(
        curl_ok(&["--disable-epsv", &server.url("pub/data.bin")]),
        data,
        "PASV"
    );
    assert_eq!(
        curl_ok(&["-P", "-", &server.url("pub/data.bin")]),
        data,
        "active EPRT"
    );
    assert_eq!(
        curl_ok(&["-P", "-", "--disable-eprt", &server.url("pub/data.bin")]),
        data,
        "active PORT"
    );
    // curl turns the CRLF the server sends in ASCII mode back into LF.
    let ascii = curl(&["-v", &format!("{};type=a", server.url("pub/text.txt"))]);
    assert_eq!(ascii.stdout, b"a\nb\n");
    assert!(String::from_utf8_lossy(&ascii.stderr).contains("TYPE A"));
    assert_eq!(
        curl_ok(&["-r", "1000-", &server.url("pub/data.bin")]),
        &data[1000..],
        "resumed download"
    );
    let missing = curl(&[&server.url("pub/missing")]);
    assert_eq!(
        missing.status.code(),
        Some(78),
        "RETR of a missing file: curl's 'remote file not found'"
    );
}

#[test]
fn curl_uploads_resumes_and_quotes_as_a_named_user() {
    if !have("curl") {
        return;
    }
    let root = TempDir::new("curl-rw");
    root.write("old.txt", b"old contents");
    let (server, _etc) = with_writer(root);
    let local = TempDir::new("curl-local");
    let data = pattern(200_000);
    let file = local.write("up.bin", &data);
    let file = file.to_str().unwrap();
    curl_ok(&["-T", file, &server.user_url("rw", "secret", "up.bin")]);
    assert_eq!(server.root.read("up.bin"), data);
    // Overwrite.
    let small = local.write("small", b"new");
    curl_ok(&[
        "-T",
        small.to_str().unwrap(),
        &server.user_url("rw", "secret", "old.txt"),
    ]);
    assert_eq!(server.root.read("old.txt"), b"new");
    // Resume an upload: the server has the first half, curl sends the rest (APPE).
    server.root.write("half.bin", &data[..50_000]);
    curl_ok(&[
        "-C",
        "-",
        "-T",
        file,
        &server.user_url("rw", "secret", "half.bin"),
    ]);
    assert_eq!(server.root.read("half.bin"), data);
    // -Q: MKD, RNFR/RNTO, DELE, RMD.
    curl_ok(&[
        "-Q",
        "MKD newdir",
        "-Q",
        "RNFR up.bin",
        "-Q",
        "RNTO newdir/moved.bin",
        "-Q",
        "DELE old.txt",
        &server.user_url("rw", "secret", ""),
    ]);
    assert_eq!(server.root.read("newdir/moved.bin"), data);
    assert!(!server.root.path().join("old.txt").exists());
    std::fs::remove_file(server.root.path().join("newdir/moved.bin")).unwrap();
    curl_ok(&["-Q", "RMD newdir", &server.user_url("rw", "secret", "")]);
    assert!(!server.root.path().join("newdir").exists());
    // Anonymous may not write here.
    let denied = curl(&["-T", file, &server.url("anon.bin")]);
    assert!(!denied.status.success());
    assert!(!server.root.path().join("anon.bin").exists());
}

#[test]
fn ftplib_covers_the_extensions() {
    if !have("python3") {
        return;
    }
    let root = TempDir::new("ftplib");
    root.write("d/a.txt", b"hello world");
    root.write("d/big.bin", &pattern(8 << 20));
    root.write("d/app.txt", b"start-");
    let (server, _etc) = with_writer(root);
    let out = ftplib_session(
        &server,
        ("rw", "secret"),
        r#"
f.cwd('/d')
facts = dict(f.mlsd())
assert facts['a.txt']['type'] == 'file' and facts['a.txt']['size'] == '11', facts
assert facts['.']['type'] == 'cdir', facts
assert sorted(f.nlst()) == ['a.txt', 'app.txt', 'big.bin'], f.nlst()
assert f.size('a.txt') == 11
assert f.sendcmd('MDTM a.txt')[:4] == '213 '
buf = io.BytesIO()
f.retrbinary('RETR a.txt', buf.write, rest=6)
assert buf.getvalue() == b'world', buf.getvalue()
f.storbinary('STOR new.bin', io.BytesIO(b'x' * 100000))
assert f.size('new.bin') == 100000
f.storbinary('APPE app.txt', io.BytesIO(b'end'))
conn, _ = f.ntransfercmd('STOU')
conn.sendall(b'unique')
conn.close()
print('STOU', f.voidresp())
# Abort a running download: 426/226 and the session goes on.
conn = f.transfercmd('RETR big.bin')
conn.recv(65536)
resp = f.abort()
assert resp[:3] in ('426', '226', '225'), resp
if resp[:3] == '426':
    print('ABOR-second', f.getresp())
conn.close()
assert f.sendcmd('NOOP')[:3] == '200'
f.quit()
print('OK')
"#,
    );
    assert!(out.ends_with("OK\n"), "{out}");
    assert!(out.contains("ABOR-second 226"), "{out}");
    assert_eq!(server.root.read("d/app.txt"), b"start-end");
    assert_eq!(server.root.read("d/new.bin"), vec![b'x'; 100000]);
    assert!(out.contains("STOU 226"), "{out}");
    let stou = server
        .root
        .names("d")
        .into_iter()
        .filter(|n| n.starts_with("stou"))
        .count();
    assert_eq!(stou, 1, "{:?}", server.root.names("d"));
}

#[test]
fn lftp_mirrors_both_ways_and_pgets() {
    if !have("lftp") {
        return;
    }
    let root = TempDir::new("lftp");
    root.write("tree/a.txt", b"a");
    root.write("tree/sub/b.bin", &pattern(70_000));
    root.write("big.bin", &pattern(3 << 20));
    let (server, _etc) = with_writer(root);
    let local = TempDir::new("lftp-local");
    let open = format!(
        "set net:max-retries 1; set net:timeout 10; open -u rw,secret ftp://{}",
        server.addr
    );
    let local_path = local.path().to_str().unwrap();
    let script = format!(
        "{open}; mirror tree {local_path}/down; mirror -R {local_path}/down /up; pget -n 4 big.bin -o {local_path}/big.bin; quit"
    );
    let out = run("lftp", &["-c", &script]);
    assert!(
        out.status.success(),
        "lftp: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(local.read("down/sub/b.bin"), pattern(70_000));
    assert_eq!(local.read("down/a.txt"), b"a");
    assert_eq!(server.root.read("up/sub/b.bin"), pattern(70_000));
    assert_eq!(local.read("big.bin"), pattern(3 << 20));
}

#[test]
fn busybox_ftpget_ftpput_and_wget() {
    if !have("busybox") || !have("wget") {
        return;
    }
    let root = TempDir::new("busybox");
    root.write("pub/f.bin", &pattern(50_000));
    root.mkdir("incoming");
    let server = Server::start(root, &["-A", "-w", "-o", "anon_upload_dir=/incoming"]);
    let local = TempDir::new("busybox-local");
    let got = local.path().join("got.bin");
    let addr = server.addr.to_string();
    let out = run(
        "busybox",
        &["ftpget", &addr, got.to_str().unwrap(), "pub/f.bin"],
    );
    assert!(
        out.status.success(),
        "ftpget: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(&got).unwrap(), pattern(50_000));
    let out = run(
        "busybox",
        &["ftpput", &addr, "incoming/put.bin", got.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "ftpput: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(server.root.read("incoming/put.bin"), pattern(50_000));
    let out = run("wget", &["-q", "-O", "-", &server.url("pub/f.bin")]);
    assert!(
        out.status.success(),
        "wget: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, pattern(50_000));
}

#[test]
fn curl_resumes_a_download_with_continue_at() {
    if !have("curl") {
        return;
    }
    let root = TempDir::new("curl-c");
    let data = pattern(500_000);
    root.write("d.bin", &data);
    let server = Server::start(root, &["-A"]);
    let local = TempDir::new("curl-c-local");
    let partial = local.write("d.bin", &data[..123_456]);
    let partial = partial.to_str().unwrap();
    let out = curl(&["-v", "-C", "-", "-o", partial, &server.url("d.bin")]);
    let trace = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{trace}");
    assert!(trace.contains("> REST 123456"), "{trace}");
    assert_eq!(local.read("d.bin"), data);
    // An explicit offset, as `-C 400000`.
    let partial = local.write("e.bin", &data[..400_000]);
    curl_ok(&[
        "-C",
        "400000",
        "-o",
        partial.to_str().unwrap(),
        &server.url("d.bin"),
    ]);
    assert_eq!(local.read("e.bin"), data);
}

#[test]
fn curl_nlst_and_ascii_upload() {
    if !have("curl") {
        return;
    }
    let root = TempDir::new("curl-ascii");
    root.write("pub/one.txt", b"1");
    root.write("pub/two.txt", b"2");
    root.mkdir("up");
    let server = Server::start(root, &["-A", "-w", "-o", "anon_upload_dir=/up"]);
    let names = String::from_utf8(curl_ok(&["-l", &server.url("pub/")])).unwrap();
    let mut names: Vec<&str> = names.lines().collect();
    names.sort();
    assert_eq!(names, ["one.txt", "two.txt"]);
    // --crlf makes curl send CRLF line ends; in ASCII type the server stores LF.
    let local = TempDir::new("curl-ascii-local");
    let text = local.write("t.txt", b"first\nsecond\nthird\n");
    let out = curl(&[
        "-v",
        "--crlf",
        "-T",
        text.to_str().unwrap(),
        &format!("{};type=a", server.url("up/t.txt")),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("TYPE A"));
    assert_eq!(server.root.read("up/t.txt"), b"first\nsecond\nthird\n");
}

#[test]
fn curl_as_anonymous_may_only_add_to_the_upload_dir() {
    if !have("curl") {
        return;
    }
    let root = TempDir::new("curl-anon");
    root.write("up/old.txt", b"old");
    root.write("pub.txt", b"pub");
    let server = Server::start(root, &["-A", "-w", "-o", "anon_upload_dir=/up"]);
    let local = TempDir::new("curl-anon-local");
    let file = local.write("f.txt", b"fresh");
    let file = file.to_str().unwrap();
    curl_ok(&["-T", file, &server.url("up/new.txt")]);
    assert_eq!(server.root.read("up/new.txt"), b"fresh");
    curl_ok(&[
        "--ftp-create-dirs",
        "-T",
        file,
        &server.url("up/made/deep.txt"),
    ]);
    assert_eq!(server.root.read("up/made/deep.txt"), b"fresh");
    for (args, what) in [
        (
            vec!["-T", file, &server.url("up/old.txt")] as Vec<&str>,
            "overwrite",
        ),
        (
            vec!["-T", file, &server.url("elsewhere.txt")],
            "upload outside",
        ),
        (vec!["-a", "-T", file, &server.url("up/old.txt")], "append"),
        (vec!["-Q", "DELE up/old.txt", &server.url("")], "DELE"),
        (
            vec![
                "-Q",
                "RNFR up/old.txt",
                "-Q",
                "RNTO up/moved.txt",
                &server.url(""),
            ],
            "rename",
        ),
        (vec!["-Q", "DELE pub.txt", &server.url("")], "DELE outside"),
    ] {
        let out = curl(&args);
        assert!(!out.status.success(), "anonymous {what} was allowed");
    }
    assert_eq!(server.root.read("up/old.txt"), b"old");
    assert_eq!(server.root.read("pub.txt"), b"pub");
    assert!(!server.root.path().join("elsewhere.txt").exists());
    assert!(!server.root.path().join("up/moved.txt").exists());
}

#[test]
fn ftplib_active_mode_and_writes() {
    if !have("python3") {
        return;
    }
    let root = TempDir::new("ftplib-w");
    root.write("a.txt", b"line1\nline2\n");
    root.write("big.bin", &pattern(1 << 20));
    let (server, _etc) = with_writer(root);
    let out = ftplib_session(
        &server,
        ("rw", "secret"),
        r#"
# Active mode: ftplib sends PORT (EPRT for IPv6) and listens.
f.set_pasv(False)
buf = io.BytesIO()
f.retrbinary('RETR big.bin', buf.write)
print('ACTIVE-MD5', hashlib.md5(buf.getvalue()).hexdigest())
lines = []
f.retrlines('LIST', lines.append)
assert any(l.endswith(' a.txt') for l in lines), lines
f.set_pasv(True)
# ASCII both ways: retrlines gets the lines, storlines sends CRLF.
got = []
f.retrlines('RETR a.txt', got.append)
assert got == ['line1', 'line2'], got
f.storlines('STOR lines.txt', io.BytesIO(b'x\ny\n'))
# MKD with a quote in the name: ftplib parses the doubled quotes back.
assert f.mkd('q"dir') == '/q"dir', f.mkd
f.cwd('q"dir')
assert f.pwd() == '/q"dir', f.pwd()
f.cwd('..')
f.cwd('..')
assert f.pwd() == '/', f.pwd()
f.rename('a.txt', 'q"dir/b.txt')
assert f.nlst('q"dir') in (['b.txt'], ['q"dir/b.txt']), f.nlst('q"dir')
f.delete('q"dir/b.txt')
f.rmd('q"dir')
try:
    f.delete('nope')
    print('DELE-missing no error')
except ftplib.error_perm as e:
    print('DELE-missing', str(e)[:3])
f.quit()
print('OK')
"#,
    );
    assert!(out.ends_with("OK\n"), "{out}");
    let md5 = run(
        "md5sum",
        &[server.root.path().join("big.bin").to_str().unwrap()],
    );
    let md5 = String::from_utf8(md5.stdout).unwrap();
    assert!(
        out.contains(&format!("ACTIVE-MD5 {}", &md5[..32])),
        "{out} vs {md5}"
    );
    assert!(out.contains("DELE-missing 550"), "{out}");
    assert_eq!(server.root.read("lines.txt"), b"x\ny\n");
    assert!(!server.root.path().join("q\"dir").exists());
    assert!(!server.root.path().join("a.txt").exists());
}

#[test]
fn lftp_in_active_mode_and_as_anonymous() {
    if !have("lftp") {
        return;
    }
    let root = TempDir::new("lftp-anon");
    root.write("pub/a.txt", b"a-content");
    root.write("pub/sub/b.bin", &pattern(300_000));
    root.write("pub/.dot", b"dot");
    let server = Server::start(root, &["-A"]);
    let local = TempDir::new("lftp-anon-local");
    let local_path = local.path().to_str().unwrap();
    let script = format!(
        "debug -o {local_path}/debug.log 5; \
         set net:max-retries 1; set net:timeout 10; set ftp:passive-mode off; \
         open ftp://{addr}; cls -1 pub; get pub/a.txt -o {local_path}/a.txt; \
         mirror pub {local_path}/down; quit",
        addr = server.addr
    );
    let out = run("lftp", &["-c", &script]);
    assert!(
        out.status.success(),
        "lftp: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        listed.contains("a.txt") && listed.contains("sub"),
        "{listed}"
    );
    assert_eq!(local.read("a.txt"), b"a-content");
    assert_eq!(local.read("down/a.txt"), b"a-content");
    assert_eq!(local.read("down/sub/b.bin"), pattern(300_000));
    let debug = String::from_utf8_lossy(&local.read("debug.log")).into_owned();
    assert!(
        debug.contains("---> EPRT |1|127.0.0.1|") || debug.contains("---> PORT 127,0,0,1,"),
        "lftp did not use active mode: {debug}"
    );
    assert!(!debug.contains("---> EPSV") && !debug.contains("---> PASV"));
    // A read-only server refuses lftp's upload and keeps its tree.
    let script = format!(
        "set net:max-retries 1; set net:timeout 10; open ftp://{}; put {local_path}/a.txt -o pub/new.txt; quit",
        server.addr
    );
    let out = run("lftp", &["-c", &script]);
    assert!(!out.status.success(), "anonymous put succeeded");
    assert!(!server.root.path().join("pub/new.txt").exists());
}
