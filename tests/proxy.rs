//! PROXY protocol: hand-written v1 and v2 headers straight to minftpd, and two minftpd
//! nodes over one directory behind a real HAProxy (`send-proxy-v2` on the control port and
//! on each node's passive range), with clients on 127.0.0.2 and 127.0.0.3.

use crate::common::*;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------- direct

/// Anonymous minftpd that takes PROXY headers from 127.0.0.1 only (the test
/// plays the balancer), giving up on a header after one second.
fn proxied_server(extra: &[&str]) -> Server {
    let mut args = vec![
        "--anonymous",
        "-o",
        "proxy_protocol=yes",
        "-o",
        "proxy_from=127.0.0.1",
        "-o",
        "accept_timeout=1",
    ];
    args.extend_from_slice(extra);
    Server::start(TempDir::new("proxy"), &args)
}

/// A v2 PROXY header for a TCP over IPv4 client at `ip`:`port`.
pub(crate) fn v2_tcp4(ip: [u8; 4], port: u16) -> Vec<u8> {
    let mut out = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c".to_vec();
    out.extend(ip);
    out.extend([127, 0, 0, 1]);
    out.extend(port.to_be_bytes());
    out.extend(21u16.to_be_bytes());
    out
}

pub(crate) const V2_LOCAL: &[u8] = b"\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00";

/// A control connection that starts with `header`; the greeting read.
pub(crate) fn with_header(server: &Server, header: &[u8]) -> Ftp {
    let mut ctl = TcpStream::connect_timeout(&server.addr, TIMEOUT).unwrap();
    ctl.write_all(header).unwrap();
    Ftp::over(ctl)
}

/// Sends `bytes` as a would-be header; the server must close without a
/// greeting and log `reason` for this connection.
fn refused(server: &Server, from: IpAddr, bytes: &[u8], reason: &str) {
    let mut ctl = connect_from(from, server.addr);
    let me = ctl.local_addr().unwrap();
    ctl.write_all(bytes).unwrap();
    expect_eof(&mut ctl);
    let line = format!("closed connection from {me}: {reason}");
    assert!(server.wait_for_log(&line), "{line}\n{}", server.log());
}

#[test]
fn hand_written_v1_and_v2_headers_name_the_client() {
    let server = proxied_server(&[]);
    // The first command in the same segment as the header: only the
    // header's bytes are taken before the session starts.
    let mut ftp = with_header(
        &server,
        b"PROXY TCP4 192.0.2.7 127.0.0.1 40007 21\r\nUSER nobody\r\n",
    );
    assert_eq!(ftp.greeting.code, 220, "{}", ftp.greeting.text);
    assert_eq!(ftp.reply().code, 331);
    assert_eq!(ftp.cmd("PASS wrong").code, 530);
    assert!(server.wait_for_log("login failed: peer=192.0.2.7 "));
    assert!(server
        .log()
        .contains("session opened: 192.0.2.7:40007 via 127.0.0.1:"));

    let mut ftp = with_header(&server, &v2_tcp4([198, 51, 100, 9], 40009));
    ftp.login("anonymous", "x");
    // Active mode goes to the real client only.
    ftp.ok("PORT 198,51,100,9,200,10", 200);
    assert_eq!(ftp.cmd("PORT 127,0,0,1,200,10").code, 500);
    // A passive connection through the balancer names its client too: one
    // naming someone else is refused, the client's own is served.
    let mut thief = ftp.epsv();
    thief
        .write_all(&v2_tcp4([198, 51, 100, 10], 40010))
        .unwrap();
    let port = thief.peer_addr().unwrap().port();
    let mut data = TcpStream::connect(("127.0.0.1", port)).unwrap();
    data.write_all(&v2_tcp4([198, 51, 100, 9], 40011)).unwrap();
    let (_, reply) = ftp.download_on(data, "NLST /");
    assert_eq!(reply.code, 226, "{}", reply.text);
    expect_eof(&mut thief);
    assert!(server.wait_for_log("refused passive data connection from 198.51.100.10:40010"));
}

#[test]
fn a_header_from_an_address_not_in_proxy_from_is_refused() {
    let server = proxied_server(&[]);
    let spoof = b"PROXY TCP4 192.0.2.1 127.0.0.1 40000 21\r\n";
    refused(&server, [127, 0, 0, 2].into(), spoof, "not in proxy_from");
    // Without a header as well: the specification forbids guessing. (From
    // another address: the same refusal again is counted, not written.)
    refused(&server, [127, 0, 0, 3].into(), b"", "not in proxy_from");
}

#[test]
fn missing_garbage_and_oversized_headers_are_refused() {
    let server = proxied_server(&[]);
    let local: IpAddr = [127, 0, 0, 1].into();
    refused(
        &server,
        local,
        b"USER anonymous\r\n",
        "PROXY header: no PROXY protocol header",
    );
    refused(
        &server,
        local,
        b"PROXY TCP4 192.0.2.1 127.0.0.1 040000 21\r\n",
        "PROXY header: v1 port is not a decimal number up to 65535",
    );
    refused(
        &server,
        local,
        b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x02\x01",
        "PROXY header: v2 header longer than 16 + 512 bytes",
    );
    refused(
        &server,
        local,
        b"\r\n\r\n\0\r\nQUIT\n\x11",
        "PROXY header: v2 version is not 2",
    );
}

#[test]
fn silent_and_slow_headers_free_the_worker() {
    // Two workers, so one connection may wait before login (or its header).
    let server = proxied_server(&["-o", "max_clients=2"]);
    let mut silent = TcpStream::connect(server.addr).unwrap();
    let me = silent.local_addr().unwrap();
    let waiting = Ftp::connect(server.addr);
    assert_eq!(waiting.greeting.code, 421, "{}", waiting.greeting.text);
    // accept_timeout = 1: closed without a greeting, the place given back.
    expect_eof(&mut silent);
    let line = format!("closed connection from {me}: no complete PROXY header within 1s");
    assert!(server.wait_for_log(&line), "{}", server.log());
    // A header trickling in and stopping halfway is closed the same way.
    let mut slow = TcpStream::connect(server.addr).unwrap();
    slow.write_all(b"PROXY TCP4 192.0.2.").unwrap();
    expect_eof(&mut slow);
    let ftp = with_header(&server, b"PROXY TCP4 192.0.2.8 127.0.0.1 1 21\r\n");
    assert_eq!(ftp.greeting.code, 220, "{}", ftp.greeting.text);
}

#[test]
fn health_checks_get_a_greeting_and_stay_out_of_the_log() {
    let server = proxied_server(&[]);
    let mut check = with_header(&server, V2_LOCAL);
    assert_eq!(check.greeting.code, 220, "{}", check.greeting.text);
    check.ok("QUIT", 221);
    check.expect_closed();
    // A client after it: once its lines are in, the check's would be too.
    let mut ftp = with_header(&server, b"PROXY TCP4 192.0.2.9 127.0.0.1 9 21\r\n");
    ftp.ok("QUIT", 221);
    ftp.expect_closed();
    assert!(server.wait_for_log("session closed: 192.0.2.9:9"));
    let log = server.log();
    assert!(!log.contains("health check"), "{log}");
    assert!(!log.contains(": 127.0.0.1:"), "{log}");

    let debug = proxied_server(&["-o", "log_level=debug"]);
    let mut check = with_header(&debug, V2_LOCAL);
    check.ok("QUIT", 221);
    assert!(debug.wait_for_log("health check from 127.0.0.1:"));
}

#[test]
fn proxy_protocol_without_proxy_from_is_a_config_error() {
    let root = TempDir::new("proxy-conf");
    let (code, err) = start_error(&[
        "-c",
        "/dev/null",
        "--root",
        root.path().to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "-o",
        "proxy_protocol=yes",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("proxy_from"), "{err}");
}

// ---------------------------------------------------------------- HAProxy

/// Two minftpd nodes (127.0.0.4 and 127.0.0.5) over one directory behind
/// one HAProxy on 127.0.0.1: `front[i]` reaches node i (the balancing rule
/// is a frontend per node, so a test knows which node serves it), each
/// node's passive range is forwarded to it, all with `send-proxy-v2`.
struct Cluster {
    nodes: Vec<Server>,
    front: Vec<SocketAddr>,
    shared: TempDir,
    _haproxy: Kill,
    _etc: TempDir,
}

impl Cluster {
    /// `extra(i)`: more arguments for node i. None when haproxy is missing.
    fn start(extra: impl Fn(usize) -> Vec<String>) -> Option<Cluster> {
        if !have("haproxy") {
            return None;
        }
        let shared = TempDir::new("shared");
        let etc = TempDir::new("haproxy");
        let mut nodes = Vec::new();
        let mut ranges = Vec::new();
        for i in 0..2 {
            let range = free_ports(4);
            let mut args: Vec<String> = [
                "-A",
                "-w",
                "-o",
                "anon_upload_dir=/",
                "-o",
                "anon_umask=022",
                "-o",
                "proxy_protocol=yes",
                "-o",
                "proxy_from=127.0.0.1",
                "-o",
                "pasv_address=127.0.0.1",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            args.extend(["-o".into(), format!("root={}", shared.path().display())]);
            args.extend(["-o".into(), format!("pasv_min_port={}", range.start())]);
            args.extend(["-o".into(), format!("pasv_max_port={}", range.end())]);
            args.extend(extra(i));
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let listen = format!("127.0.0.{}:0", 4 + i);
            nodes.push(Server::launch(
                BIN,
                &["--listen", &listen],
                TempDir::new("node"),
                &args,
            ));
            ranges.push(range);
        }
        let ports = free_ports(3);
        let ready = *ports.start();
        let front: Vec<SocketAddr> = (1..3)
            .map(|n| SocketAddr::from(([127, 0, 0, 1], ready + n)))
            .collect();
        let mut cfg = String::from(
            "global\n    maxconn 256\n\
             defaults\n    mode tcp\n    timeout connect 5s\n    timeout client 60s\n    \
             timeout server 60s\n    source 127.0.0.1\n",
        );
        cfg += &format!(
            "frontend ready\n    bind 127.0.0.1:{ready}\n    tcp-request connection reject\n    \
             default_backend control_0\n"
        );
        for (i, node) in nodes.iter().enumerate() {
            let (lo, hi) = (ranges[i].start(), ranges[i].end());
            cfg += &format!(
                "frontend ftp_{i}\n    bind {}\n    default_backend control_{i}\n\
                 frontend passive_{i}\n    bind 127.0.0.1:{lo}-{hi}\n    default_backend data_{i}\n\
                 backend control_{i}\n    option tcp-check\n    tcp-check expect string 220\n    \
                 tcp-check send QUIT\\r\\n\n    tcp-check expect string 221\n    \
                 server n{i} {} send-proxy-v2 check check-send-proxy inter 300ms fall 1\n\
                 backend data_{i}\n    server n{i} {} send-proxy-v2\n",
                front[i],
                node.addr,
                node.addr.ip()
            );
        }
        let cfg_path = etc.path().join("haproxy.cfg");
        std::fs::write(&cfg_path, cfg).unwrap();
        let stderr = std::fs::File::create(etc.path().join("haproxy.err")).unwrap();
        let mut haproxy = Kill::spawn(
            Command::new("haproxy")
                .args(["-f", cfg_path.to_str().unwrap(), "-db"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(stderr),
        );
        if let Err(e) = wait_listening(&mut haproxy, ready) {
            let err = std::fs::read_to_string(etc.path().join("haproxy.err"));
            panic!("haproxy did not start ({e}): {err:?}");
        }
        Some(Cluster {
            nodes,
            front,
            shared,
            _haproxy: haproxy,
            _etc: etc,
        })
    }

    /// A client on `from` (127.0.0.2, 127.0.0.3...) through the balancer to node `node`.
    fn client(&self, from: [u8; 4], node: usize) -> Ftp {
        Ftp::over(connect_from(from.into(), self.front[node]))
    }
}

/// EPSV, then a data connection from the client's own address.
fn data_from(ftp: &mut Ftp, from: [u8; 4]) -> TcpStream {
    let reply = ftp.ok("EPSV", 229);
    let port: u16 = reply.text.split('|').nth(3).unwrap().parse().unwrap();
    connect_from(
        from.into(),
        SocketAddr::new(ftp.ctl.peer_addr().unwrap().ip(), port),
    )
}

fn upload(ftp: &mut Ftp, from: [u8; 4], name: &str, bytes: &[u8]) {
    ftp.ok("TYPE I", 200);
    let mut data = data_from(ftp, from);
    ftp.ok(&format!("STOR {name}"), 150);
    data.write_all(bytes).unwrap();
    drop(data);
    let reply = ftp.reply();
    assert_eq!(reply.code, 226, "STOR {name}: {}", reply.text);
}

#[test]
fn an_upload_through_the_balancer_is_served_by_the_other_node() {
    let Some(cluster) = Cluster::start(|_| vec![]) else {
        return;
    };
    let body = pattern(300_000);
    let mut first = cluster.client([127, 0, 0, 2], 0);
    first.login("anonymous", "x");
    upload(&mut first, [127, 0, 0, 2], "shared.bin", &body);
    assert_eq!(cluster.shared.read("shared.bin"), body);

    let mut second = cluster.client([127, 0, 0, 2], 1);
    second.login("anonymous", "x");
    let data = data_from(&mut second, [127, 0, 0, 2]);
    let (names, reply) = second.download_on(data, "NLST /");
    assert_eq!(reply.code, 226, "{}", reply.text);
    assert_eq!(String::from_utf8(names).unwrap().trim(), "shared.bin");
    second.ok("TYPE I", 200);
    let data = data_from(&mut second, [127, 0, 0, 2]);
    let (got, reply) = second.download_on(data, "RETR shared.bin");
    assert_eq!(reply.code, 226, "{}", reply.text);
    assert!(got == body, "the download differs from the upload");
    // Each node saw the real client, and which node did what.
    let [a, b] = [&cluster.nodes[0], &cluster.nodes[1]];
    for (node, verb) in [(a, "STOR"), (b, "RETR")] {
        let done = format!("{verb} \"/shared.bin\" ok");
        assert!(node.wait_for_log(&done), "{}", node.log());
        let log = node.log();
        assert!(log.contains("session opened: 127.0.0.2:"), "{log}");
        assert!(!log.contains("session opened: 127.0.0.1:"), "{log}");
    }
}

#[test]
fn max_per_ip_counts_the_real_clients_behind_the_balancer() {
    let Some(cluster) = Cluster::start(|_| vec!["-o".into(), "max_per_ip=1".into()]) else {
        return;
    };
    let mut a = cluster.client([127, 0, 0, 2], 0);
    assert_eq!(a.greeting.code, 220, "{}", a.greeting.text);
    let again = cluster.client([127, 0, 0, 2], 0);
    assert_eq!(again.greeting.code, 421, "{}", again.greeting.text);
    assert!(again.greeting.text.contains("from your address"));
    let mut b = cluster.client([127, 0, 0, 3], 0);
    assert_eq!(b.greeting.code, 220, "{}", b.greeting.text);
    a.ok("QUIT", 221);
    b.ok("QUIT", 221);
    let node = &cluster.nodes[0];
    assert!(node.wait_for_log("refused connection from 127.0.0.2: Too many"));
}

#[test]
fn a_passive_connection_from_another_client_is_refused_through_the_balancer() {
    let Some(cluster) = Cluster::start(|_| vec![]) else {
        return;
    };
    cluster.shared.write("secret", b"for 127.0.0.2 only");
    let mut owner = cluster.client([127, 0, 0, 2], 0);
    owner.login("anonymous", "x");
    owner.ok("TYPE I", 200);
    let reply = owner.ok("EPSV", 229);
    let port: u16 = reply.text.split('|').nth(3).unwrap().parse().unwrap();
    let balancer = SocketAddr::from(([127, 0, 0, 1], port));
    // Another client gets to the advertised port first.
    let mut thief = connect_from([127, 0, 0, 3].into(), balancer);
    owner.send_raw(b"RETR secret\r\n");
    let node = &cluster.nodes[0];
    assert!(
        node.wait_for_log("refused passive data connection from 127.0.0.3:"),
        "{}",
        node.log()
    );
    let mut data = connect_from([127, 0, 0, 2].into(), balancer);
    assert_eq!(owner.reply().code, 150);
    let mut got = Vec::new();
    data.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"for 127.0.0.2 only");
    assert_eq!(owner.reply().code, 226);
    expect_eof(&mut thief);
}

#[test]
fn the_xferlog_names_the_real_client() {
    let etc = TempDir::new("xferlog");
    let xferlog = etc.path().join("xferlog");
    let Some(cluster) =
        Cluster::start(|_| vec!["-o".into(), format!("xferlog_file={}", xferlog.display())])
    else {
        return;
    };
    let mut ftp = cluster.client([127, 0, 0, 3], 1);
    ftp.login("anonymous", "x");
    upload(&mut ftp, [127, 0, 0, 3], "logged", b"bytes");
    let text = std::fs::read_to_string(&xferlog).unwrap();
    let line = text.lines().find(|l| l.contains("logged")).expect(&text);
    assert!(line.contains(" 127.0.0.3 5 "), "{line}");
}

#[test]
fn the_balancers_health_checks_pass_and_stay_out_of_the_log() {
    let Some(cluster) = Cluster::start(|i| {
        let level = if i == 1 { "debug" } else { "info" };
        vec!["-o".into(), format!("log_level={level}")]
    }) else {
        return;
    };
    let [quiet, chatty] = [&cluster.nodes[0], &cluster.nodes[1]];
    let deadline = Instant::now() + TIMEOUT;
    while chatty.log().matches("health check from 127.0.0.1:").count() < 3 {
        assert!(
            Instant::now() < deadline,
            "no health checks:\n{}",
            chatty.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // fall 1: a failed check would have taken the node out by now.
    for node in 0..2 {
        let mut ftp = cluster.client([127, 0, 0, 2], node);
        assert_eq!(ftp.greeting.code, 220, "{}", ftp.greeting.text);
        ftp.ok("QUIT", 221);
    }
    let log = quiet.log();
    assert!(!log.contains("health check"), "{log}");
    assert!(!log.contains("session opened: 127.0.0.1:"), "{log}");
}
