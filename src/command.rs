//! Pure parsing of one control line into a `Command`. No I/O, so it can be fuzzed.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// A parsed control command. Path arguments stay raw bytes: file names on
/// Linux are bytes, and UTF-8 names pass through unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    User(Vec<u8>),
    Pass(Vec<u8>),
    Acct,
    Quit,
    Rein,
    Port(SocketAddr),
    Pasv,
    Eprt(SocketAddr),
    /// `EPSV`, `EPSV 1`/`EPSV 2` (a protocol), or `EPSV ALL`.
    Epsv(EpsvArg),
    Type(TransferType),
    Stru(u8),
    Mode(u8),
    Retr(Vec<u8>),
    Stor(Vec<u8>),
    Stou(Vec<u8>),
    Appe(Vec<u8>),
    Allo,
    Rest(u64),
    Rnfr(Vec<u8>),
    Rnto(Vec<u8>),
    Abor,
    Dele(Vec<u8>),
    Rmd(Vec<u8>),
    Mkd(Vec<u8>),
    Pwd,
    Cwd(Vec<u8>),
    Cdup,
    List(Vec<u8>),
    Nlst(Vec<u8>),
    Mlsd(Vec<u8>),
    Mlst(Vec<u8>),
    Size(Vec<u8>),
    /// `HASH path` (draft-bryan-ftp-hash).
    Hash(Vec<u8>),
    Mdtm(Vec<u8>),
    /// `MFMT YYYYMMDDHHMMSS path`: the time as seconds since the epoch.
    Mfmt(i64, Vec<u8>),
    Site(Vec<u8>),
    Syst,
    Stat(Vec<u8>),
    Help(Vec<u8>),
    Noop,
    Feat,
    Opts(Vec<u8>),
    Host(Vec<u8>),
    /// `AUTH TLS` or `AUTH SSL` (RFC 4217): true for those, false for any other mechanism.
    Auth(bool),
    Pbsz,
    /// `PROT C|S|E|P`: the level letter, upper-cased; 0 for a missing or longer argument.
    Prot(u8),
    Ccc,
    /// A known verb with an argument it cannot take; the text says why.
    BadArgument(&'static str),
    /// A verb we do not know.
    Unknown(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferType {
    Ascii,
    Binary,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpsvArg {
    Any,
    Protocol(u8),
    All,
}

impl Command {
    /// Commands a client may send before it has logged in.
    pub fn allowed_before_login(&self) -> bool {
        matches!(
            self,
            Command::User(_)
                | Command::Pass(_)
                | Command::Quit
                | Command::Feat
                | Command::Syst
                | Command::Help(_)
                | Command::Noop
                | Command::Opts(_)
                | Command::Host(_)
                | Command::Auth(_)
                | Command::Pbsz
                | Command::Prot(_)
                | Command::Ccc
                | Command::Acct
        )
    }
}

/// Strips the line ending and Telnet IAC sequences (clients send `IAC IP IAC
/// DM` before ABOR; `IAC IAC` stands for a literal 255).
pub fn clean_line(raw: &[u8]) -> Vec<u8> {
    const IAC: u8 = 255;
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            IAC if raw.get(i + 1) == Some(&IAC) => {
                out.push(IAC);
                i += 2;
            }
            IAC if matches!(raw.get(i + 1), Some(251..=254)) => i += 3,
            IAC => i += 2,
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    while matches!(out.last(), Some(b'\n') | Some(b'\r')) {
        out.pop();
    }
    out
}

/// Splits a line into its verb (upper-cased) and its argument (after one space).
pub fn split_line(line: &[u8]) -> (String, &[u8]) {
    let verb_end = line.iter().position(|&b| b == b' ').unwrap_or(line.len());
    let verb = String::from_utf8_lossy(&line[..verb_end]).to_ascii_uppercase();
    let arg = if verb_end < line.len() {
        &line[verb_end + 1..]
    } else {
        &[][..]
    };
    (verb, arg)
}

/// Parses one control line (without its CRLF).
pub fn parse(line: &[u8]) -> Command {
    let (verb, arg) = split_line(line);
    let path = || arg.to_vec();
    match verb.as_str() {
        "USER" => Command::User(path()),
        "PASS" => Command::Pass(path()),
        "ACCT" => Command::Acct,
        "QUIT" => Command::Quit,
        "REIN" => Command::Rein,
        "PORT" => parse_port(arg)
            .map(Command::Port)
            .unwrap_or(Command::BadArgument("Bad PORT argument.")),
        "PASV" => Command::Pasv,
        "EPRT" => parse_eprt(arg)
            .map(Command::Eprt)
            .unwrap_or(Command::BadArgument("Bad EPRT argument.")),
        "EPSV" => parse_epsv(arg),
        "TYPE" => parse_type(arg),
        "STRU" => single_letter(arg)
            .map(Command::Stru)
            .unwrap_or(Command::BadArgument("Bad STRU argument.")),
        "MODE" => single_letter(arg)
            .map(Command::Mode)
            .unwrap_or(Command::BadArgument("Bad MODE argument.")),
        "RETR" => Command::Retr(path()),
        "STOR" => Command::Stor(path()),
        "STOU" => Command::Stou(path()),
        "APPE" => Command::Appe(path()),
        "ALLO" => Command::Allo,
        "REST" => ascii(arg)
            .and_then(|s| s.trim().parse().ok())
            .map(Command::Rest)
            .unwrap_or(Command::BadArgument("Bad REST offset.")),
        "RNFR" => Command::Rnfr(path()),
        "RNTO" => Command::Rnto(path()),
        "ABOR" => Command::Abor,
        "DELE" => Command::Dele(path()),
        "RMD" | "XRMD" => Command::Rmd(path()),
        "MKD" | "XMKD" => Command::Mkd(path()),
        "PWD" | "XPWD" => Command::Pwd,
        "CWD" | "XCWD" => Command::Cwd(path()),
        "CDUP" | "XCUP" => Command::Cdup,
        "LIST" => Command::List(path()),
        "NLST" => Command::Nlst(path()),
        "MLSD" => Command::Mlsd(path()),
        "MLST" => Command::Mlst(path()),
        "SIZE" => Command::Size(path()),
        "HASH" => Command::Hash(path()),
        "MDTM" => Command::Mdtm(path()),
        "MFMT" => parse_mfmt(arg),
        "SITE" => Command::Site(path()),
        "SYST" => Command::Syst,
        "STAT" => Command::Stat(path()),
        "HELP" => Command::Help(path()),
        "NOOP" => Command::Noop,
        "FEAT" => Command::Feat,
        "OPTS" => Command::Opts(path()),
        "HOST" => Command::Host(path()),
        "AUTH" => Command::Auth(matches!(
            ascii(arg).map(|s| s.trim().to_ascii_uppercase()).as_deref(),
            Some("TLS" | "SSL" | "TLS-C")
        )),
        "PBSZ" => Command::Pbsz,
        "PROT" => Command::Prot(single_letter(arg).unwrap_or(0)),
        "CCC" => Command::Ccc,
        _ => Command::Unknown(
            verb.chars()
                .filter(|c| c.is_ascii_graphic())
                .take(16)
                .collect(),
        ),
    }
}

fn ascii(arg: &[u8]) -> Option<&str> {
    std::str::from_utf8(arg).ok().filter(|s| s.is_ascii())
}

fn single_letter(arg: &[u8]) -> Option<u8> {
    match arg {
        [c] if c.is_ascii_alphabetic() => Some(c.to_ascii_uppercase()),
        _ => None,
    }
}

fn parse_type(arg: &[u8]) -> Command {
    let text = ascii(arg).unwrap_or("").to_ascii_uppercase();
    let words: Vec<&str> = text.split_whitespace().collect();
    match words.as_slice() {
        ["A"] | ["A", "N"] => Command::Type(TransferType::Ascii),
        ["I"] | ["L", "8"] | ["L8"] => Command::Type(TransferType::Binary),
        ["A", _] | ["E"] | ["E", _] | ["L", _] => Command::BadArgument("Unsupported TYPE."),
        _ => Command::BadArgument("Bad TYPE argument."),
    }
}

/// `PORT h1,h2,h3,h4,p1,p2` (RFC 959).
pub fn parse_port(arg: &[u8]) -> Option<SocketAddr> {
    let text = ascii(arg)?;
    let nums: Vec<u8> = text
        .trim()
        .split(',')
        .map(|n| n.trim().parse().ok())
        .collect::<Option<_>>()?;
    let [a, b, c, d, p1, p2] = nums.as_slice() else {
        return None;
    };
    let ip = IpAddr::V4(Ipv4Addr::new(*a, *b, *c, *d));
    Some(SocketAddr::new(ip, u16::from(*p1) << 8 | u16::from(*p2)))
}

/// `EPRT |1|132.235.1.2|6275|` or `EPRT |2|::1|5282|` (RFC 2428); any
/// delimiter in 33..=126 is allowed.
pub fn parse_eprt(arg: &[u8]) -> Option<SocketAddr> {
    let text = ascii(arg)?;
    let delim = text.chars().next().filter(|c| ('!'..='~').contains(c))?;
    let parts: Vec<&str> = text.split(delim).collect();
    let ["", proto, addr, port, ""] = parts.as_slice() else {
        return None;
    };
    let ip: IpAddr = addr.parse().ok()?;
    match (*proto, ip) {
        ("1", IpAddr::V4(_)) | ("2", IpAddr::V6(_)) => {}
        _ => return None,
    }
    Some(SocketAddr::new(ip, port.parse().ok()?))
}

fn parse_epsv(arg: &[u8]) -> Command {
    match ascii(arg).map(|s| s.trim().to_ascii_uppercase()).as_deref() {
        Some("") => Command::Epsv(EpsvArg::Any),
        Some("ALL") => Command::Epsv(EpsvArg::All),
        Some("1") => Command::Epsv(EpsvArg::Protocol(1)),
        Some("2") => Command::Epsv(EpsvArg::Protocol(2)),
        _ => Command::BadArgument("Bad EPSV argument."),
    }
}

fn parse_mfmt(arg: &[u8]) -> Command {
    let bad = Command::BadArgument("Usage: MFMT YYYYMMDDHHMMSS path.");
    let Some(space) = arg.iter().position(|&b| b == b' ') else {
        return bad;
    };
    let (time, path) = (&arg[..space], &arg[space + 1..]);
    match ascii(time).and_then(parse_timeval) {
        Some(t) if !path.is_empty() => Command::Mfmt(t, path.to_vec()),
        _ => bad,
    }
}

/// Parses an RFC 3659 time-val `YYYYMMDDHHMMSS[.sss]` (UTC) to epoch seconds.
pub fn parse_timeval(text: &str) -> Option<i64> {
    let digits = text.split('.').next()?;
    if digits.len() != 14 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |range: std::ops::Range<usize>| digits[range].parse::<i64>().ok();
    let (year, month, day) = (n(0..4)?, n(4..6)?, n(6..8)?);
    let (hour, min, sec) = (n(8..10)?, n(10..12)?, n(12..14)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    Some(
        crate::listing::days_from_civil(year, month as u32, day as u32) * 86400
            + hour * 3600
            + min * 60
            + sec,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn telnet_sequences_are_stripped() {
        assert_eq!(clean_line(b"\xff\xf4\xff\xf2ABOR\r\n"), b"ABOR");
        assert_eq!(clean_line(b"NOOP\n"), b"NOOP");
        assert_eq!(clean_line(b"\xff\xfb\x01USER x\r\n"), b"USER x");
        assert_eq!(clean_line(b"RETR a\xff\xffb\r\n"), b"RETR a\xffb");
    }

    #[test]
    fn verbs_are_case_insensitive_and_args_kept_raw() {
        assert_eq!(parse(b"user bob"), Command::User(b"bob".to_vec()));
        assert_eq!(parse(b"RETR a b.txt"), Command::Retr(b"a b.txt".to_vec()));
        assert_eq!(
            parse(b"CWD \xc3\xa9t\xc3\xa9"),
            Command::Cwd("été".as_bytes().to_vec())
        );
        assert_eq!(parse(b"XMKD d"), Command::Mkd(b"d".to_vec()));
        assert_eq!(parse(b"LIST"), Command::List(vec![]));
        assert_eq!(parse(b"FROB x"), Command::Unknown("FROB".into()));
    }

    #[test]
    fn port_and_eprt() {
        assert_eq!(
            parse(b"PORT 127,0,0,1,4,1"),
            Command::Port("127.0.0.1:1025".parse().unwrap())
        );
        assert!(matches!(
            parse(b"PORT 127,0,0,1,4"),
            Command::BadArgument(_)
        ));
        assert!(matches!(
            parse(b"PORT 300,0,0,1,4,1"),
            Command::BadArgument(_)
        ));
        assert_eq!(
            parse(b"EPRT |1|127.0.0.1|6275|"),
            Command::Eprt("127.0.0.1:6275".parse().unwrap())
        );
        assert_eq!(
            parse(b"EPRT !2!::1!5282!"),
            Command::Eprt("[::1]:5282".parse().unwrap())
        );
        assert!(matches!(
            parse(b"EPRT |2|127.0.0.1|5282|"),
            Command::BadArgument(_)
        ));
        assert!(matches!(
            parse(b"EPRT |1|127.0.0.1|99999|"),
            Command::BadArgument(_)
        ));
    }

    #[test]
    fn types_modes_and_structures() {
        assert_eq!(parse(b"TYPE A"), Command::Type(TransferType::Ascii));
        assert_eq!(parse(b"TYPE A N"), Command::Type(TransferType::Ascii));
        assert_eq!(parse(b"type i"), Command::Type(TransferType::Binary));
        assert_eq!(parse(b"TYPE L 8"), Command::Type(TransferType::Binary));
        assert!(matches!(parse(b"TYPE E"), Command::BadArgument(_)));
        assert!(matches!(parse(b"TYPE X"), Command::BadArgument(_)));
        assert_eq!(parse(b"MODE B"), Command::Mode(b'B'));
        assert_eq!(parse(b"STRU r"), Command::Stru(b'R'));
        assert_eq!(parse(b"EPSV ALL"), Command::Epsv(EpsvArg::All));
        assert_eq!(parse(b"EPSV 2"), Command::Epsv(EpsvArg::Protocol(2)));
    }

    #[test]
    fn rest_and_mfmt() {
        assert_eq!(parse(b"REST 100"), Command::Rest(100));
        assert!(matches!(parse(b"REST -1"), Command::BadArgument(_)));
        assert_eq!(
            parse(b"MFMT 20200102030405 f.txt"),
            Command::Mfmt(1577934245, b"f.txt".to_vec())
        );
        assert!(matches!(parse(b"MFMT 2020 f"), Command::BadArgument(_)));
        assert!(matches!(
            parse(b"MFMT 20201302030405 f"),
            Command::BadArgument(_)
        ));
    }

    #[test]
    fn login_gate() {
        assert!(parse(b"FEAT").allowed_before_login());
        assert!(parse(b"OPTS UTF8 ON").allowed_before_login());
        assert!(!parse(b"LIST").allowed_before_login());
        assert!(!parse(b"PASV").allowed_before_login());
    }
}
