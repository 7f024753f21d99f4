//! Real clients against the real server: curl, Python's ftplib, lftp.

use crate::common::*;

/// A server with an anonymous read-only side and a named read-write user `rw`
/// (password `secret`) whose home is the whole root.
fn with_writer(root: TempDir) -> (Server, TempDir) {
    let etc = TempDir::new("clients-etc");
    let users = users_file(&etc, &[("rw", "secret", "/", "rw")]);
    let server = Server::start(root, &["-A", "-w", "-U", users.to_str().unwrap()]);
    (server, etc)
}

fn curl(args: &[&str]) -> std::process::Output {
    let mut all = vec!["-s", "-S", "--max-time", "60"];
    all.extend_from_slice(args);
    run("curl", &all)
}

fn curl_ok(args: &[&str]) -> Vec<u8> {
    let out = curl(args);
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
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
    let script = format!(
        r#"
import ftplib, io
f = ftplib.FTP()
f.connect('127.0.0.1', {port}, timeout=20)
f.login('rw', 'secret')
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
        port = server.port()
    );
    let out = python(&script);
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
