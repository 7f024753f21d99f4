//! HASH and OPTS HASH (draft-bryan-ftp-hash): every algorithm against coreutils and
//! zlib on files of 0, 1 and 10 MiB + 1 bytes through Python's ftplib; refusals as for
//! RETR; a paced HASH of a big file heard ABOR and a hang-up.

use crate::common::*;
use std::time::{Duration, Instant};

const SIZES: [(&str, usize); 3] = [("empty", 0), ("one", 1), ("big", 10 * 1024 * 1024 + 1)];

/// What the reference tools say, in the order of `ALGOS`.
fn reference(path: &std::path::Path) -> Vec<String> {
    let path = path.to_str().unwrap();
    let mut sums: Vec<String> = ["sha256sum", "sha512sum", "sha1sum", "md5sum"]
        .iter()
        .map(|tool| {
            let out = run(tool, &[path]);
            assert!(out.status.success(), "{tool}");
            let text = String::from_utf8(out.stdout).unwrap();
            text.split_whitespace().next().unwrap().to_string()
        })
        .collect();
    let crc = python(&format!(
        "import zlib\nprint('%08x' % zlib.crc32(open({path:?}, 'rb').read()))"
    ));
    sums.push(crc.trim().to_string());
    sums
}

const ALGOS: [&str; 5] = ["SHA-256", "SHA-512", "SHA-1", "MD5", "CRC32"];

#[test]
fn every_algorithm_matches_coreutils_and_zlib_through_ftplib() {
    let root = TempDir::new("hash");
    for (name, len) in SIZES {
        root.write(name, &pattern(len));
    }
    let server = Server::start(root, &["--anonymous"]);
    // Each reply on its own line: "file algo reply".
    let replies = ftplib_session(
        &server,
        ("anonymous", "x@"),
        &format!(
            "print(f.sendcmd('HASH one'))\n\
             for algo in {ALGOS:?}:\n\
             \x20   f.sendcmd('OPTS HASH ' + algo)\n\
             \x20   for name in ['empty', 'one', 'big']:\n\
             \x20       print(f.sendcmd('HASH ' + name))\n\
             f.quit()\n"
        ),
    );
    let sums: Vec<Vec<String>> = SIZES
        .iter()
        .map(|(name, _)| reference(&server.root.path().join(name)))
        .collect();
    let mut lines = replies.lines();
    let default = lines.next().unwrap();
    assert_eq!(default, format!("213 SHA-256 0-1 {} one", sums[1][0]));
    for (a, algo) in ALGOS.iter().enumerate() {
        for (f, (name, len)) in SIZES.into_iter().enumerate() {
            let want = &sums[f][a];
            let line = lines.next().unwrap();
            assert_eq!(line, format!("213 {algo} 0-{len} {want} {name}"));
        }
    }
}

#[test]
fn opts_hash_shows_selects_and_refuses_and_feat_marks_the_choice() {
    let server = Server::anonymous();
    let mut ftp = server.anon();
    let feat = ftp.ok("FEAT", 211).text;
    assert!(
        feat.contains("\r\n HASH SHA-256*;SHA-512;SHA-1;MD5;CRC32\r\n"),
        "{feat}"
    );
    assert_eq!(ftp.ok("OPTS HASH", 200).text, "200 SHA-256\r\n");
    assert_eq!(ftp.ok("OPTS HASH md5", 200).text, "200 MD5\r\n");
    assert_eq!(ftp.ok("OPTS HASH", 200).text, "200 MD5\r\n");
    ftp.ok("OPTS HASH SHA-3", 504);
    assert_eq!(ftp.ok("OPTS HASH", 200).text, "200 MD5\r\n");
    let feat = ftp.ok("FEAT", 211).text;
    assert!(
        feat.contains(" HASH SHA-256;SHA-512;SHA-1;MD5*;CRC32\r\n"),
        "{feat}"
    );
}

#[test]
fn hash_is_refused_where_retr_is() {
    let root = TempDir::new("hash-refused");
    root.mkdir("dir");
    let secret = root.write("secret", b"not for anonymous eyes");
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let server = Server::start(root, &["--anonymous"]);
    let mut ftp = server.connect();
    ftp.ok("HASH secret", 530);
    ftp.login("anonymous", "x@");
    ftp.ok("HASH", 501);
    ftp.ok("HASH nothing", 550);
    ftp.ok("HASH dir", 550);
    let denied = ftp.ok("HASH secret", 550).text;
    assert!(denied.contains("Permission denied"), "{denied}");
    assert!(!denied.contains(server.root.path().to_str().unwrap()));
    ftp.ok("RETR secret", 550);
    ftp.ok("NOOP", 200);
}

/// A server whose sessions move 100 kB a second, with a 10 MiB file: a HASH
/// of it takes about 100 s unless something ends it.
fn paced_server() -> Server {
    let root = TempDir::new("hash-paced");
    root.write("big", &pattern(10 << 20));
    Server::start(root, &["--anonymous", "-o", "anon_max_rate=100000"])
}

/// Sends HASH of the big file and sees that no reply comes for a while:
/// the server is hashing.
fn start_hashing(ftp: &mut Ftp) {
    ftp.send_raw(b"HASH big\r\n");
    ftp.ctl
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let early = ftp.try_reply();
    assert!(early.is_none(), "{early:?}");
    ftp.ctl.set_read_timeout(Some(TIMEOUT)).unwrap();
}

#[test]
fn a_paced_hash_hears_abor() {
    let server = paced_server();
    let mut ftp = server.anon();
    start_hashing(&mut ftp);
    ftp.send_raw(b"ABOR\r\n");
    let started = Instant::now();
    assert_eq!(ftp.reply().code, 426);
    assert_eq!(ftp.reply().code, 226);
    assert!(started.elapsed() < TIMEOUT);
    ftp.ok("NOOP", 200);
}

#[test]
fn a_client_that_hangs_up_during_a_paced_hash_frees_its_worker() {
    let server = paced_server();
    let mut ftp = server.anon();
    start_hashing(&mut ftp);
    drop(ftp);
    assert!(
        server.wait_for_log("session closed: 127.0.0.1"),
        "{}",
        server.log()
    );
}
