//! PROXY protocol headers (HAProxy's specification, versions 1 and 2): a pure, bounded parser.
//! Only a balancer listed in proxy_from gets this far, but every byte is still treated as
//! hostile: a v1 line ends within 107 bytes, a v2 block within 16 + 512, nothing beyond is read.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The longest v1 line the specification allows, CRLF included
/// ("PROXY UNKNOWN" with two full IPv6 addresses and ports).
pub const V1_MAX: usize = 107;
/// The longest v2 address-and-TLV block we take. The specification keeps a
/// header within 536 bytes (the smallest TCP segment every host must take),
/// so 16 + 512 fits what a balancer sends at once and leaves room for TLVs.
pub const V2_MAX_BODY: usize = 512;
/// No header is longer than this: a reader never needs a larger buffer.
pub const MAX_HEADER: usize = 16 + V2_MAX_BODY;

/// The 12 bytes that open a v2 header.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
const V1_PREFIX: &[u8] = b"PROXY ";

/// What a header says about the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Header {
    /// v2 LOCAL: the balancer itself connected (a health check); the
    /// socket's own endpoints stand.
    Local,
    /// v1 UNKNOWN, or v2 PROXY over a family other than TCP over IPv4/IPv6:
    /// relayed, but the client's address is not given; the socket's own
    /// endpoints stand, as the specification asks.
    Unknown,
    /// Relayed for the client at `source`, which connected to `destination`.
    Proxied {
        source: SocketAddr,
        destination: SocketAddr,
    },
}

/// A complete header and how many bytes of the input it took; whatever
/// follows belongs to the protocol underneath (FTP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parsed {
    pub header: Header,
    pub len: usize,
}

/// Why there is no header yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The input is a valid beginning of a header: read more bytes. Never
    /// returned for an input of `MAX_HEADER` bytes or more.
    Incomplete,
    /// Not a header the specification allows: close the connection.
    Invalid(&'static str),
}

/// Parses the header at the start of `buf`.
pub fn parse(buf: &[u8]) -> Result<Parsed, Error> {
    match buf.first() {
        None => Err(Error::Incomplete),
        Some(b'\r') => parse_v2(buf),
        Some(b'P') => parse_v1(buf),
        Some(_) => Err(Error::Invalid("no PROXY protocol header")),
    }
}

/// Checks that `buf` begins like `expected` as far as it goes; true when it
/// is long enough to hold all of `expected`.
fn starts_like(buf: &[u8], expected: &[u8], why: &'static str) -> Result<bool, Error> {
    let n = buf.len().min(expected.len());
    if buf[..n] != expected[..n] {
        return Err(Error::Invalid(why));
    }
    Ok(n == expected.len())
}

// ---------------------------------------------------------------- version 1

fn parse_v1(buf: &[u8]) -> Result<Parsed, Error> {
    if !starts_like(buf, V1_PREFIX, "no PROXY protocol header")? {
        return Err(Error::Incomplete);
    }
    let window = &buf[..buf.len().min(V1_MAX)];
    let Some(lf) = window.iter().position(|&b| b == b'\n') else {
        return Err(if buf.len() >= V1_MAX {
            Error::Invalid("v1 line longer than 107 bytes")
        } else {
            Error::Incomplete
        });
    };
    // A lone LF must not end the line; a CR elsewhere fails the field checks.
    if window[lf - 1] != b'\r' {
        return Err(Error::Invalid("v1 line not ended by CRLF"));
    }
    let header = v1_fields(&window[V1_PREFIX.len()..lf - 1])?;
    Ok(Parsed {
        header,
        len: lf + 1,
    })
}

/// The fields after "PROXY ": the family, then for TCP4/TCP6 exactly two
/// addresses and two ports, each after exactly one space.
fn v1_fields(line: &[u8]) -> Result<Header, Error> {
    let mut fields = line.split(|&b| b == b' ');
    let family = fields.next().unwrap_or_default();
    let v6 = match family {
        // The receiver must ignore whatever follows UNKNOWN.
        b"UNKNOWN" => return Ok(Header::Unknown),
        b"TCP4" => false,
        b"TCP6" => true,
        _ => return Err(Error::Invalid("v1 family is not TCP4, TCP6 or UNKNOWN")),
    };
    let mut next = || {
        fields
            .next()
            .ok_or(Error::Invalid("v1 line has too few fields"))
    };
    let src = v1_address(next()?, v6)?;
    let dst = v1_address(next()?, v6)?;
    let sport = v1_port(next()?)?;
    let dport = v1_port(next()?)?;
    if fields.next().is_some() {
        return Err(Error::Invalid("v1 line has too many fields"));
    }
    Ok(Header::Proxied {
        source: SocketAddr::new(src, sport),
        destination: SocketAddr::new(dst, dport),
    })
}

fn v1_address(text: &[u8], v6: bool) -> Result<IpAddr, Error> {
    let bad = Error::Invalid("v1 address does not match its family");
    let text = std::str::from_utf8(text).map_err(|_| bad)?;
    if v6 {
        text.parse::<Ipv6Addr>().map(IpAddr::V6).map_err(|_| bad)
    } else {
        // std refuses leading zeros (octal look-alikes), as the specification does.
        text.parse::<Ipv4Addr>().map(IpAddr::V4).map_err(|_| bad)
    }
}

/// A decimal port without leading zeros.
fn v1_port(text: &[u8]) -> Result<u16, Error> {
    let bad = Error::Invalid("v1 port is not a decimal number up to 65535");
    let digits_only = !text.is_empty() && text.len() <= 5 && text.iter().all(u8::is_ascii_digit);
    if !digits_only || (text.len() > 1 && text[0] == b'0') {
        return Err(bad);
    }
    std::str::from_utf8(text)
        .ok()
        .and_then(|t| t.parse().ok())
        .ok_or(bad)
}

// ---------------------------------------------------------------- version 2

const V2_LOCAL: u8 = 0x20;
const V2_PROXY: u8 = 0x21;
const TCP4: u8 = 0x11;
const TCP6: u8 = 0x21;

fn parse_v2(buf: &[u8]) -> Result<Parsed, Error> {
    if !starts_like(buf, &V2_SIGNATURE, "no PROXY protocol header")? {
        return Err(Error::Incomplete);
    }
    // Each field is judged as soon as it has arrived, so garbage is refused
    // without waiting for bytes that may never come.
    if let Some(&ver_cmd) = buf.get(12) {
        if ver_cmd >> 4 != 2 {
            return Err(Error::Invalid("v2 version is not 2"));
        }
        if ver_cmd != V2_LOCAL && ver_cmd != V2_PROXY {
            return Err(Error::Invalid("v2 command is neither LOCAL nor PROXY"));
        }
    }
    if let Some(&family) = buf.get(13) {
        if family >> 4 > 3 || family & 0x0f > 2 {
            return Err(Error::Invalid("v2 address family or protocol unknown"));
        }
    }
    if buf.len() < 16 {
        return Err(Error::Incomplete);
    }
    let body_len = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    if body_len > V2_MAX_BODY {
        return Err(Error::Invalid("v2 header longer than 16 + 512 bytes"));
    }
    let len = 16 + body_len;
    let Some(body) = buf.get(16..len) else {
        return Err(Error::Incomplete);
    };
    let (header, addresses) = v2_addresses(buf[12], buf[13], body)?;
    check_tlvs(&body[addresses..])?;
    Ok(Parsed { header, len })
}

/// The header a v2 block gives, and how many bytes of the body its
/// addresses take (the TLVs follow).
fn v2_addresses(ver_cmd: u8, family: u8, body: &[u8]) -> Result<(Header, usize), Error> {
    let need = match family >> 4 {
        1 => 12,  // 2 x 4 address bytes + 2 x 2 port bytes
        2 => 36,  // 2 x 16 + 2 x 2
        3 => 216, // 2 x 108 (AF_UNIX)
        _ => 0,
    };
    if ver_cmd == V2_LOCAL {
        // LOCAL: the addresses (if any) are ignored, TLVs are not looked at.
        return Ok((Header::Local, body.len()));
    }
    if family & 0x0f == 0 || family >> 4 == 0 {
        // UNSPEC: the address bytes cannot be told from TLVs, so all are skipped.
        return Ok((Header::Unknown, body.len()));
    }
    if body.len() < need {
        return Err(Error::Invalid(
            "v2 address block shorter than its family needs",
        ));
    }
    let header = match family {
        TCP4 => {
            let ip = |at: usize| IpAddr::from(<[u8; 4]>::try_from(&body[at..at + 4]).unwrap());
            proxied(ip(0), ip(4), &body[8..12])
        }
        TCP6 => {
            let ip = |at: usize| IpAddr::from(<[u8; 16]>::try_from(&body[at..at + 16]).unwrap());
            proxied(ip(0), ip(16), &body[32..36])
        }
        // UDP or AF_UNIX: nothing an FTP server can use; fall back to UNSPEC.
        _ => Header::Unknown,
    };
    Ok((header, need))
}

fn proxied(src: IpAddr, dst: IpAddr, ports: &[u8]) -> Header {
    Header::Proxied {
        source: SocketAddr::new(src, u16::from_be_bytes([ports[0], ports[1]])),
        destination: SocketAddr::new(dst, u16::from_be_bytes([ports[2], ports[3]])),
    }
}

/// TLVs are skipped, but each must fit the block: type, 2-byte length, value.
fn check_tlvs(mut tlvs: &[u8]) -> Result<(), Error> {
    while !tlvs.is_empty() {
        let overrun = Error::Invalid("v2 TLV overruns the header");
        let len = match tlvs {
            [_, hi, lo, ..] => usize::from(u16::from_be_bytes([*hi, *lo])),
            _ => return Err(overrun),
        };
        tlvs = tlvs.get(3 + len..).ok_or(overrun)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxied(src: &str, dst: &str) -> Header {
        Header::Proxied {
            source: src.parse().unwrap(),
            destination: dst.parse().unwrap(),
        }
    }

    fn v2(ver_cmd: u8, family: u8, body: &[u8]) -> Vec<u8> {
        let mut out = V2_SIGNATURE.to_vec();
        out.extend([ver_cmd, family]);
        out.extend((body.len() as u16).to_be_bytes());
        out.extend(body);
        out
    }

    fn invalid(buf: &[u8]) -> &'static str {
        match parse(buf) {
            Err(Error::Invalid(why)) => why,
            other => panic!(
                "{:?}: expected Invalid, got {other:?}",
                String::from_utf8_lossy(buf)
            ),
        }
    }

    /// Every proper prefix of a valid header asks for more bytes.
    fn prefixes_are_incomplete(header: &[u8]) {
        for n in 0..header.len() {
            assert_eq!(parse(&header[..n]), Err(Error::Incomplete), "prefix {n}");
        }
    }

    /// The specification's example connection (192.168.0.1:56324 to
    /// 192.168.0.11:443) in `header`, followed by the protocol's own bytes:
    /// only the header's are taken, and each shorter prefix asks for more.
    fn the_example_connection(header: &[u8]) {
        let mut buf = header.to_vec();
        buf.extend(b"USER x\r\n");
        let parsed = parse(&buf).unwrap();
        let example = proxied("192.168.0.1:56324", "192.168.0.11:443");
        assert_eq!(parsed.header, example);
        assert_eq!(
            parsed.len,
            header.len(),
            "the bytes after the header are left"
        );
        prefixes_are_incomplete(header);
    }

    #[test]
    fn v1_tcp4_from_the_specification() {
        the_example_connection(b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n");
    }

    #[test]
    fn v1_tcp6_at_the_longest() {
        let a = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
        let line = format!("PROXY TCP6 {a} {a} 65535 65535\r\n");
        assert_eq!(line.len(), 104);
        let parsed = parse(line.as_bytes()).unwrap();
        let end = format!("[{a}]:65535");
        assert_eq!(parsed.header, proxied(&end, &end));
        let short = parse(b"PROXY TCP6 2001:db8::1 ::1 1024 21\r\n").unwrap();
        assert_eq!(short.header, proxied("[2001:db8::1]:1024", "[::1]:21"));
    }

    #[test]
    fn v1_unknown_short_and_worst_case() {
        let short = b"PROXY UNKNOWN\r\n";
        assert_eq!(
            parse(short),
            Ok(Parsed {
                header: Header::Unknown,
                len: 15
            })
        );
        let a = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
        let worst = format!("PROXY UNKNOWN {a} {a} 65535 65535\r\n");
        assert_eq!(worst.len(), V1_MAX);
        assert_eq!(parse(worst.as_bytes()).unwrap().len, V1_MAX);
        prefixes_are_incomplete(worst.as_bytes());
    }

    #[test]
    fn v1_without_crlf_in_107_bytes_is_refused() {
        let mut long = b"PROXY UNKNOWN ".to_vec();
        long.resize(V1_MAX - 1, b'x');
        assert_eq!(parse(&long), Err(Error::Incomplete));
        long.push(b'\r');
        assert_eq!(invalid(&long), "v1 line longer than 107 bytes");
        long.push(b'\n');
        assert_eq!(invalid(&long), "v1 line longer than 107 bytes");
    }

    #[test]
    fn v1_malformed_lines() {
        for bad in [
            &b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\n"[..], // lone LF
            b"PROXY TCP4 192.168.0.1 192.168.0.11 56324\r\n",        // a port short
            b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443 1\r\n",  // one field too many
            b"PROXY TCP4  192.168.0.1 192.168.0.11 56324 443\r\n",   // two spaces
            b"PROXY TCP4 192.168.0.01 192.168.0.11 56324 443\r\n",   // leading zero
            b"PROXY TCP4 ::1 192.168.0.11 56324 443\r\n",            // family mismatch
            b"PROXY TCP6 192.168.0.1 ::1 56324 443\r\n",             // family mismatch
            b"PROXY TCP4 192.168.0.1 192.168.0.11 056324 443\r\n",   // leading zero
            b"PROXY TCP4 192.168.0.1 192.168.0.11 65536 443\r\n",    // port too large
            b"PROXY TCP4 192.168.0.1 192.168.0.11 -1 443\r\n",
            b"PROXY UDP4 192.168.0.1 192.168.0.11 56324 443\r\n",
            b"PROXY tcp4 192.168.0.1 192.168.0.11 56324 443\r\n",
            b"PROXY TCP4 192.168.0.1\r192.168.0.11 56324 443\r\n",
            b"PROXY\r\n",
            b"proxy TCP4 1.2.3.4 1.2.3.4 1 2\r\n",
        ] {
            invalid(bad);
        }
        assert_eq!(
            parse(b"PROXY TCP4 1.2.3.4 5.6.7.8 0 21\r\n")
                .unwrap()
                .header,
            proxied("1.2.3.4:0", "5.6.7.8:21")
        );
    }

    #[test]
    fn v2_proxy_tcp4() {
        let body = [192, 168, 0, 1, 192, 168, 0, 11, 0xdc, 0x04, 0x01, 0xbb];
        let header = v2(0x21, 0x11, &body);
        assert_eq!(header.len(), 28);
        the_example_connection(&header);
    }

    #[test]
    fn v2_proxy_tcp6() {
        let mut body = vec![0x20, 0x01, 0x0d, 0xb8];
        body.resize(15, 0);
        body.push(1); // 2001:db8::1
        body.resize(31, 0);
        body.push(1); // ::1
        body.extend([0x04, 0x00, 0x00, 0x15]);
        let parsed = parse(&v2(0x21, 0x21, &body)).unwrap();
        assert_eq!(parsed.header, proxied("[2001:db8::1]:1024", "[::1]:21"));
        assert_eq!(parsed.len, 52);
    }

    #[test]
    fn v2_local_as_health_checks_send_it() {
        // HAProxy's checks: LOCAL, UNSPEC, no addresses.
        let header = v2(0x20, 0x00, &[]);
        assert_eq!(
            parse(&header),
            Ok(Parsed {
                header: Header::Local,
                len: 16
            })
        );
        prefixes_are_incomplete(&header);
        // The length must be honoured even for LOCAL.
        let with_addresses = v2(0x20, 0x11, &[127, 0, 0, 1, 127, 0, 0, 1, 0, 1, 0, 2]);
        assert_eq!(parse(&with_addresses).unwrap().len, 28);
        assert_eq!(parse(&with_addresses).unwrap().header, Header::Local);
    }

    #[test]
    fn v2_tlvs_are_skipped_but_must_fit() {
        let mut body = vec![10, 0, 0, 7, 10, 0, 0, 1, 0x30, 0x39, 0x00, 0x15];
        body.extend([0x04, 0x00, 0x02, 0xaa, 0xbb]); // NOOP, 2 bytes
        body.extend([0x05, 0x00, 0x03, 1, 2, 3]); // UNIQUE_ID, 3 bytes
        let parsed = parse(&v2(0x21, 0x11, &body)).unwrap();
        assert_eq!(parsed.header, proxied("10.0.0.7:12345", "10.0.0.1:21"));
        assert_eq!(parsed.len, 16 + body.len());
        body.extend([0x01, 0x00, 0x09, b'f']); // ALPN claiming 9 bytes, 1 there
        assert_eq!(
            invalid(&v2(0x21, 0x11, &body)),
            "v2 TLV overruns the header"
        );
        body.truncate(body.len() - 2); // 2 stray bytes: not even a TLV header
        assert_eq!(
            invalid(&v2(0x21, 0x11, &body)),
            "v2 TLV overruns the header"
        );
    }

    #[test]
    fn v2_other_families_fall_back_to_unknown() {
        assert_eq!(parse(&v2(0x21, 0x00, &[])).unwrap().header, Header::Unknown);
        let udp = [1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2];
        assert_eq!(
            parse(&v2(0x21, 0x12, &udp)).unwrap().header,
            Header::Unknown
        );
        let unix = [0u8; 216];
        assert_eq!(
            parse(&v2(0x21, 0x31, &unix)).unwrap().header,
            Header::Unknown
        );
    }

    #[test]
    fn v2_truncated_is_incomplete_until_refused() {
        let header = v2(0x21, 0x11, &[1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2]);
        assert_eq!(parse(&header[..27]), Err(Error::Incomplete));
        // A block too short for its family is refused, not waited for.
        let short = v2(0x21, 0x11, &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(
            invalid(&short),
            "v2 address block shorter than its family needs"
        );
        assert_eq!(
            invalid(&v2(0x21, 0x21, &[0; 12])),
            "v2 address block shorter than its family needs"
        );
    }

    #[test]
    fn v2_oversized_is_refused_from_its_length_field() {
        let mut head = V2_SIGNATURE.to_vec();
        head.extend([0x21, 0x11]);
        head.extend(((V2_MAX_BODY + 1) as u16).to_be_bytes());
        assert_eq!(invalid(&head), "v2 header longer than 16 + 512 bytes");
        let largest = v2(0x20, 0x00, &[0; V2_MAX_BODY]);
        assert_eq!(parse(&largest).unwrap().len, MAX_HEADER);
    }

    #[test]
    fn v2_bad_signature_version_command_family() {
        let good = v2(0x21, 0x11, &[1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2]);
        let mut sig = good.clone();
        sig[4] = b'x';
        assert_eq!(invalid(&sig[..5]), "no PROXY protocol header");
        let mut version = good.clone();
        version[12] = 0x11;
        assert_eq!(invalid(&version[..13]), "v2 version is not 2");
        let mut command = good.clone();
        command[12] = 0x22;
        assert_eq!(invalid(&command), "v2 command is neither LOCAL nor PROXY");
        for family in [0x41, 0x13, 0xff] {
            let mut bad = good.clone();
            bad[13] = family;
            assert_eq!(invalid(&bad[..14]), "v2 address family or protocol unknown");
        }
    }

    #[test]
    fn ftp_and_other_protocols_are_not_headers() {
        for bad in [
            &b"USER anonymous\r\n"[..],
            b"\x16\x03\x01",
            b"GET / HTTP/1.0\r\n",
            b"\r\n\r\n\r\n",
        ] {
            invalid(bad);
        }
        assert_eq!(parse(b""), Err(Error::Incomplete));
        assert_eq!(parse(b"PROX"), Err(Error::Incomplete));
    }
}
