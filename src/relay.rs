//! Connections relayed by a load balancer: which peers must send a PROXY header (proxy_from),
//! reading exactly the header's bytes within a deadline, and the real client address it gives.
//! Only listed peers are read from at all; they control at most `proxy::MAX_HEADER` bytes and
//! `Relay::timeout` seconds of a worker, after which the connection is closed without a greeting.

use crate::proxy::{self, Header};
use std::fmt;
use std::io::{self, Read};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// How long a balancer may take to send its header: longer than a TCP
/// retransmission (the specification asks for at least 3 seconds), short
/// enough that silent connections free their workers quickly. Never longer
/// than `accept_timeout`, so tests (and impatient admins) can shorten it.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// One `proxy_from` entry: an address, or a network as ADDR/PREFIX.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Net {
    addr: IpAddr,
    prefix: u8,
}

impl Net {
    pub fn parse(text: &str) -> Result<Net, String> {
        let text = text.trim();
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("expected ADDR or ADDR/PREFIX, got {text:?}"))?;
        let full = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix.map(str::parse::<u8>) {
            None => full,
            Some(Ok(p)) if p <= full => p,
            Some(_) => return Err(format!("prefix of {text:?} is not 0 to {full}")),
        };
        Ok(Net { addr, prefix })
    }

    /// True when `ip` (an IPv4-mapped IPv6 address counts as IPv4) is in it.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl fmt::Display for Net {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let full = if self.addr.is_ipv4() { 32 } else { 128 };
        if self.prefix == full {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.prefix)
        }
    }
}

/// Parses the comma-separated `proxy_from` list; empty is allowed here
/// (validation refuses it when `proxy_protocol = yes`).
pub fn parse_nets(value: &str) -> Result<Vec<Net>, String> {
    value
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(Net::parse)
        .collect()
}

/// The PROXY protocol policy, when `proxy_protocol = yes`.
#[derive(Clone, Debug)]
pub struct Relay {
    pub from: Vec<Net>,
    pub timeout: Duration,
}

impl Relay {
    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.from.iter().any(|net| net.contains(ip))
    }
}

/// Whom a connection serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arrival {
    /// The real client: every limit, check and log line uses this.
    pub peer: SocketAddr,
    /// The balancer that relayed it, if any.
    pub via: Option<SocketAddr>,
    /// A v2 LOCAL connection: the balancer's own health check.
    pub health_check: bool,
}

impl Arrival {
    /// A connection without a balancer in front: the socket's peer.
    pub fn direct(peer: SocketAddr) -> Arrival {
        Arrival {
            peer,
            via: None,
            health_check: false,
        }
    }
}

/// Why a connection was closed before its greeting, for the one log line.
pub type Refusal = String;

/// Checks the peer against proxy_from, then reads its header. With
/// PROXY protocol on, every connection must come from a listed balancer and
/// carry a header: the specification forbids guessing whether one is there.
pub fn identify(stream: &TcpStream, relay: &Relay, timeout: Duration) -> Result<Arrival, Refusal> {
    let peer = stream.peer_addr().map_err(|e| e.to_string())?;
    if !relay.trusts(peer.ip()) {
        return Err("not in proxy_from".into());
    }
    let header = read_header(stream, timeout.min(relay.timeout))?;
    Ok(match header {
        Header::Proxied { source, .. } => Arrival {
            peer: SocketAddr::new(source.ip().to_canonical(), source.port()),
            via: Some(peer),
            health_check: false,
        },
        Header::Local => Arrival {
            health_check: true,
            ..Arrival::direct(peer)
        },
        Header::Unknown => Arrival::direct(peer),
    })
}

/// Reads exactly one header's bytes, so the FTP bytes after it stay in the
/// socket for the session. What has arrived is peeked at and parsed; bytes
/// that are only the start of a header are consumed, so the next peek
/// waits for new ones (no busy loop on a trickling sender).
pub fn read_header(stream: &TcpStream, timeout: Duration) -> Result<Header, Refusal> {
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; proxy::MAX_HEADER];
    let mut have = 0;
    let result = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break Err(format!(
                "no complete PROXY header within {}s",
                crate::log::Secs(timeout, 0)
            ));
        }
        stream
            .set_read_timeout(Some(left))
            .map_err(|e| e.to_string())?;
        // `have` < MAX_HEADER: the parser never asks for more past it.
        let n = match stream.peek(&mut buf[have..]) {
            Ok(0) => break Err("closed before a complete PROXY header".into()),
            Ok(n) => n,
            Err(e) if retry(&e) => continue,
            Err(e) => break Err(e.to_string()),
        };
        match proxy::parse(&buf[..have + n]) {
            Ok(parsed) => break consume(stream, parsed.len - have).map(|()| parsed.header),
            Err(proxy::Error::Incomplete) => {
                consume(stream, n)?;
                have += n;
            }
            Err(proxy::Error::Invalid(why)) => break Err(format!("PROXY header: {why}")),
        }
    };
    let _ = stream.set_read_timeout(None);
    result
}

fn retry(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// Takes `n` bytes that a peek has already seen out of the socket.
fn consume(mut stream: &TcpStream, n: usize) -> Result<(), Refusal> {
    let mut sink = [0u8; proxy::MAX_HEADER];
    stream
        .read_exact(&mut sink[..n])
        .map_err(|e| format!("reading the PROXY header: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::TcpListener;

    #[test]
    fn nets_match_addresses_and_prefixes() {
        let net = Net::parse("10.1.0.0/16").unwrap();
        assert!(net.contains("10.1.200.3".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.0.9".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        assert!(!net.contains("::1".parse().unwrap()));
        let one = Net::parse("127.0.0.1").unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        assert!(Net::parse("0.0.0.0/0")
            .unwrap()
            .contains("192.0.2.1".parse().unwrap()));
        let v6 = Net::parse("2001:db8::/32").unwrap();
        assert!(v6.contains("2001:db8:1::5".parse().unwrap()));
        assert!(!v6.contains("2001:db9::5".parse().unwrap()));
        for bad in ["10.0.0.0/33", "::/129", "host", "10.0.0.1/", "10.0.0.1/x"] {
            assert!(Net::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn nets_print_as_they_parse() {
        let nets = parse_nets("10.0.0.1, 192.168.0.0/24,,::1/128, 2001:db8::/48").unwrap();
        let text = nets
            .iter()
            .map(Net::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        assert_eq!(text, "10.0.0.1, 192.168.0.0/24, ::1, 2001:db8::/48");
        assert_eq!(parse_nets(&text).unwrap(), nets);
        assert_eq!(parse_nets("").unwrap(), vec![]);
    }

    /// A connected pair on loopback: (the server's end, the client's end).
    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        (listener.accept().unwrap().0, client)
    }

    #[test]
    fn the_header_is_taken_and_the_ftp_bytes_are_left() {
        let (server, mut client) = pair();
        client
            .write_all(b"PROXY TCP4 192.0.2.7 192.0.2.1 40000 21\r\nUSER x\r\n")
            .unwrap();
        header_then(&server, b"USER x\r\n");
    }

    /// Reads a header naming 192.0.2.7:40000 (to 192.0.2.1:21) from
    /// `server`; then `rest` must be the next bytes in the socket.
    fn header_then(server: &TcpStream, rest: &[u8]) {
        let header = read_header(server, Duration::from_secs(5)).unwrap();
        assert_eq!(
            header,
            Header::Proxied {
                source: "192.0.2.7:40000".parse().unwrap(),
                destination: "192.0.2.1:21".parse().unwrap()
            }
        );
        let mut next = vec![0u8; rest.len()];
        (&*server).read_exact(&mut next).unwrap();
        assert_eq!(next, rest);
    }

    #[test]
    fn a_header_in_pieces_is_put_together() {
        let (server, mut client) = pair();
        let writer = std::thread::spawn(move || {
            for piece in [
                &b"\r\n\r\n\0\r\nQU"[..],
                b"IT\n\x21\x11\x00",
                b"\x0c\xc0\x00\x02\x07",
            ] {
                client.write_all(piece).unwrap();
                std::thread::sleep(Duration::from_millis(50));
            }
            client
                .write_all(b"\xc0\x00\x02\x01\x9c\x40\x00\x15NOOP")
                .unwrap();
            client
        });
        header_then(&server, b"NOOP");
        let _client = writer.join().unwrap();
    }

    #[test]
    fn silence_garbage_and_closing_are_refused() {
        let (server, _client) = pair();
        let err = read_header(&server, Duration::from_millis(200)).unwrap_err();
        assert!(err.contains("no complete PROXY header"), "{err}");
        let (server, mut client) = pair();
        client.write_all(b"USER anonymous\r\n").unwrap();
        let err = read_header(&server, Duration::from_secs(5)).unwrap_err();
        assert_eq!(err, "PROXY header: no PROXY protocol header");
        let (server, mut client) = pair();
        client.write_all(b"PROXY TCP4 1.2").unwrap();
        drop(client);
        let err = read_header(&server, Duration::from_secs(5)).unwrap_err();
        assert_eq!(err, "closed before a complete PROXY header");
    }

    #[test]
    fn only_listed_peers_are_read_from() {
        let (server, mut client) = pair();
        client.write_all(b"PROXY UNKNOWN\r\n").unwrap();
        let elsewhere = Relay {
            from: parse_nets("10.0.0.1").unwrap(),
            timeout: HEADER_TIMEOUT,
        };
        assert_eq!(
            identify(&server, &elsewhere, HEADER_TIMEOUT).unwrap_err(),
            "not in proxy_from"
        );
        let here = Relay {
            from: parse_nets("127.0.0.0/8").unwrap(),
            timeout: HEADER_TIMEOUT,
        };
        let arrival = identify(&server, &here, HEADER_TIMEOUT).unwrap();
        assert_eq!(arrival, Arrival::direct(client.local_addr().unwrap()));
    }
}
