//! Resolving the host name of `pasv_address` to an IPv4 address, once at
//! start-up: /etc/hosts first, then an `A` query to the nameservers of
//! /etc/resolv.conf. Not the C library's getaddrinfo: musl's resolver alone
//! was 23 KB of the static binary, which is held to 1 MiB, and a static
//! glibc's needs the NSS libraries at run time.
//!
//! No FTP client reaches this. What a hostile party may control is a DNS
//! reply (a spoofer on the path to the nameserver): only a reply with our
//! random id that names our query is read, every offset is checked against
//! its length, a name is skipped over at most 64 labels (pointers are never
//! followed), and
//! the whole lookup is bounded by `TRIES` rounds of `TIMEOUT` per nameserver.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(2);
const TRIES: usize = 2;
/// Replies to a socket that are not ours (a stale id) read before giving up
/// on this round.
const MAX_STRAY_REPLIES: usize = 4;
const TYPE_A: u16 = 1;
const CLASS_IN: u16 = 1;

/// The IPv4 address of `name`, or why there is none.
pub fn ipv4_of(name: &str) -> Result<Ipv4Addr, String> {
    let name = name.strip_suffix('.').unwrap_or(name);
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    if let Some(ip) = from_hosts(&hosts, name) {
        return Ok(ip);
    }
    let conf = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let id = random_id();
    let query = encode_query(id, name);
    let mut last = "no nameserver answered".to_string();
    for _ in 0..TRIES {
        for server in nameservers(&conf) {
            match ask(server, &query, id, name) {
                Ok(answer) => return answer.ok_or_else(|| "it has no IPv4 address".into()),
                Err(e) => last = e,
            }
        }
    }
    Err(last)
}

/// The first IPv4 address /etc/hosts gives `name` (names compare without case).
fn from_hosts(text: &str, name: &str) -> Option<Ipv4Addr> {
    text.lines().find_map(|line| {
        let line = line.split('#').next().unwrap_or("");
        let mut fields = line.split_whitespace();
        let ip: Ipv4Addr = fields.next()?.parse().ok()?;
        fields.any(|n| n.eq_ignore_ascii_case(name)).then_some(ip)
    })
}

/// The `nameserver` lines of resolv.conf; the local one when there are none,
/// as the C libraries do.
fn nameservers(text: &str) -> Vec<SocketAddr> {
    let mut servers: Vec<SocketAddr> = text
        .lines()
        .filter_map(|line| line.strip_prefix("nameserver"))
        .filter_map(|rest| rest.trim().parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect();
    if servers.is_empty() {
        servers.push(SocketAddr::from(([127, 0, 0, 1], 53)));
    }
    servers
}

fn random_id() -> u16 {
    let mut bytes = [0u8; 2];
    let read = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes));
    match read {
        Ok(()) => u16::from_be_bytes(bytes),
        Err(_) => std::process::id() as u16,
    }
}

/// A recursive `A IN` query for `name`.
fn encode_query(id: u16, name: &str) -> Vec<u8> {
    let mut q = Vec::with_capacity(18 + name.len());
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]); // RD; one question
    for label in name.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&TYPE_A.to_be_bytes());
    q.extend_from_slice(&CLASS_IN.to_be_bytes());
    q
}

/// One round with one nameserver: Ok(None) when it says the name has no
/// IPv4 address, Err when it fails or does not answer in time.
fn ask(server: SocketAddr, query: &[u8], id: u16, name: &str) -> Result<Option<Ipv4Addr>, String> {
    let local: SocketAddr = match server {
        SocketAddr::V4(_) => ([0, 0, 0, 0], 0).into(),
        SocketAddr::V6(_) => ([0u16; 8], 0).into(),
    };
    let fail = |e: std::io::Error| format!("nameserver {}: {e}", server.ip());
    let socket = UdpSocket::bind(local).map_err(fail)?;
    socket.connect(server).map_err(fail)?;
    socket.set_read_timeout(Some(TIMEOUT)).map_err(fail)?;
    socket.send(query).map_err(fail)?;
    let mut buf = [0u8; 1500];
    for _ in 0..MAX_STRAY_REPLIES {
        let len = socket.recv(&mut buf).map_err(|e| match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                format!("nameserver {} did not answer", server.ip())
            }
            _ => fail(e),
        })?;
        match parse_reply(&buf[..len], id, name) {
            Reply::Stray => continue,
            Reply::NoSuchName => return Err("no such name".into()),
            Reply::Failed(rcode) => {
                return Err(format!("nameserver {} failed (rcode {rcode})", server.ip()))
            }
            Reply::Answer(ip) => return Ok(ip),
        }
    }
    Err(format!("nameserver {}: no reply to our query", server.ip()))
}

#[derive(Debug, PartialEq)]
enum Reply {
    /// Not a reply to our query (other id, malformed): ignored.
    Stray,
    NoSuchName,
    Failed(u8),
    /// The first `A IN` record of the answer section, if any.
    Answer(Option<Ipv4Addr>),
}

fn u16_at(msg: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*msg.get(at)?, *msg.get(at + 1)?]))
}

/// The offset after the (possibly compressed) name at `at`.
fn skip_name(msg: &[u8], mut at: usize) -> Option<usize> {
    for _ in 0..64 {
        let len = *msg.get(at)? as usize;
        match len {
            0 => return Some(at + 1),
            l if l & 0xc0 == 0xc0 => return (at + 2 <= msg.len()).then_some(at + 2),
            l => at += 1 + l,
        }
    }
    None
}

fn parse_reply(msg: &[u8], id: u16, name: &str) -> Reply {
    parse_checked(msg, id, name).unwrap_or(Reply::Stray)
}

fn parse_checked(msg: &[u8], id: u16, name: &str) -> Option<Reply> {
    let flags = u16_at(msg, 2)?;
    // Ours: our id, a response (QR), and our one question echoed back.
    let question = encode_query(id, name);
    let asked = &question[12..];
    if u16_at(msg, 0)? != id || flags & 0x8000 == 0 || u16_at(msg, 4)? != 1 {
        return None;
    }
    let echoed = msg.get(12..12 + asked.len())?;
    if !echoed.eq_ignore_ascii_case(asked) {
        return None;
    }
    match (flags & 0x000f) as u8 {
        0 => {}
        3 => return Some(Reply::NoSuchName),
        rcode => return Some(Reply::Failed(rcode)),
    }
    let mut at = 12 + asked.len();
    for _ in 0..u16_at(msg, 6)? {
        at = skip_name(msg, at)?;
        let (kind, class) = (u16_at(msg, at)?, u16_at(msg, at + 2)?);
        let len = u16_at(msg, at + 8)? as usize;
        let data = msg.get(at + 10..at + 10 + len)?;
        if kind == TYPE_A && class == CLASS_IN && len == 4 {
            return Some(Reply::Answer(Some(Ipv4Addr::new(
                data[0], data[1], data[2], data[3],
            ))));
        }
        at += 10 + len;
    }
    Some(Reply::Answer(None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_lines_match_any_alias_without_case() {
        let hosts =
            "# c\n127.0.0.1 localhost\n::1 ip6-localhost\n192.0.2.9 Gate gate.example.org # nat\n";
        assert_eq!(from_hosts(hosts, "localhost"), Some(Ipv4Addr::LOCALHOST));
        assert_eq!(
            from_hosts(hosts, "GATE.example.org"),
            Some([192, 0, 2, 9].into())
        );
        assert_eq!(from_hosts(hosts, "ip6-localhost"), None);
        assert_eq!(from_hosts(hosts, "nat"), None);
    }

    #[test]
    fn nameservers_come_from_resolv_conf() {
        let conf = "search example.org\nnameserver 10.0.0.1\nnameserver ::1\nnameserver bogus\n";
        assert_eq!(
            nameservers(conf),
            ["10.0.0.1:53".parse().unwrap(), "[::1]:53".parse().unwrap()]
        );
        assert_eq!(nameservers(""), ["127.0.0.1:53".parse().unwrap()]);
    }

    /// A reply to `encode_query(id, name)` with `answers` appended.
    fn reply(id: u16, name: &str, rcode: u8, count: u16, answers: &[u8]) -> Vec<u8> {
        let mut msg = encode_query(id, name);
        msg[2] = 0x81;
        msg[3] = 0x80 | rcode;
        msg[6..8].copy_from_slice(&count.to_be_bytes());
        msg.extend_from_slice(answers);
        msg
    }

    #[test]
    fn replies_are_read_with_every_offset_checked() {
        // A CNAME (pointer to the question's name), then the A record.
        let cname = [0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 2, 0xc0, 12];
        let a = [0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 7];
        let good = reply(7, "gate.example.org", 0, 2, &[&cname[..], &a[..]].concat());
        let answer = Reply::Answer(Some([192, 0, 2, 7].into()));
        assert_eq!(parse_reply(&good, 7, "gate.example.org"), answer);
        assert_eq!(parse_reply(&good, 7, "GATE.example.org"), answer);
        assert_eq!(parse_reply(&good, 8, "gate.example.org"), Reply::Stray);
        assert_eq!(parse_reply(&good, 7, "other.example.org"), Reply::Stray);
        for cut in 0..good.len() {
            assert_ne!(parse_reply(&good[..cut], 7, "gate.example.org"), answer);
        }
        let nx = reply(7, "x.invalid", 3, 0, &[]);
        assert_eq!(parse_reply(&nx, 7, "x.invalid"), Reply::NoSuchName);
        let only_cname = reply(7, "x.org", 0, 1, &cname);
        assert_eq!(parse_reply(&only_cname, 7, "x.org"), Reply::Answer(None));
    }
}
