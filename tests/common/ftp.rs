//! The FTP client side: a small client that returns exact replies, a
//! connection from a chosen loopback address, a passive-mode thief, and
//! ftplib sessions.

use super::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};

/// A reply: code and full text (all lines).
#[derive(Debug, Clone)]
pub struct Reply {
    pub code: u16,
    pub text: String,
}

/// A small FTP client that returns exact replies.
pub struct Ftp {
    pub ctl: TcpStream,
    reader: BufReader<TcpStream>,
    pub greeting: Reply,
}

impl Ftp {
    pub fn connect(addr: SocketAddr) -> Ftp {
        Ftp::over(TcpStream::connect_timeout(&addr, TIMEOUT).expect("connect"))
    }

    /// A client over a connection made already (from a chosen source
    /// address, or after a PROXY header); reads the greeting.
    pub fn over(ctl: TcpStream) -> Ftp {
        ctl.set_read_timeout(Some(TIMEOUT)).unwrap();
        ctl.set_write_timeout(Some(TIMEOUT)).unwrap();
        let reader = BufReader::new(ctl.try_clone().unwrap());
        let mut ftp = Ftp {
            ctl,
            reader,
            greeting: Reply {
                code: 0,
                text: String::new(),
            },
        };
        ftp.greeting = ftp.reply();
        ftp
    }

    /// Reads one (possibly multi-line) reply.
    pub fn reply(&mut self) -> Reply {
        self.try_reply().expect("reply")
    }

    pub fn try_reply(&mut self) -> Option<Reply> {
        let mut first = String::new();
        if self.reader.read_line(&mut first).ok()? == 0 {
            return None;
        }
        let code: u16 = first.get(..3)?.parse().ok()?;
        let mut text = first.clone();
        if first.as_bytes().get(3) == Some(&b'-') {
            let end = format!("{code} ");
            for _ in 0..100_000 {
                let mut line = String::new();
                if self.reader.read_line(&mut line).ok()? == 0 {
                    return None;
                }
                text.push_str(&line);
                if line.starts_with(&end) {
                    break;
                }
            }
        }
        Some(Reply { code, text })
    }

    /// Asserts that the server closes the control connection: end of stream
    /// (or a reset) within `CLOSE_DEADLINE`, with no further reply before it.
    /// `try_reply().is_none()` cannot tell a close from a read timeout.
    pub fn expect_closed(&mut self) {
        self.ctl.set_read_timeout(Some(CLOSE_DEADLINE)).unwrap();
        let mut rest = String::new();
        let got = self.reader.read_line(&mut rest);
        if let Err(e) = closed(got) {
            panic!("the control connection was not closed: {e}; read {rest:?}");
        }
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.ctl.write_all(bytes).unwrap();
    }

    pub fn cmd(&mut self, line: &str) -> Reply {
        self.send_raw(format!("{line}\r\n").as_bytes());
        self.reply()
    }

    /// Sends a command and asserts its reply code.
    pub fn ok(&mut self, line: &str, code: u16) -> Reply {
        let reply = self.cmd(line);
        assert_eq!(reply.code, code, "{line}: {}", reply.text);
        reply
    }

    pub fn login(&mut self, user: &str, pass: &str) {
        self.ok(&format!("USER {user}"), 331);
        self.ok(&format!("PASS {pass}"), 230);
    }

    /// EPSV, then a data connection to the announced port.
    pub fn epsv(&mut self) -> TcpStream {
        let port = self.epsv_port();
        let addr = SocketAddr::new(self.ctl.peer_addr().unwrap().ip(), port);
        let data = TcpStream::connect_timeout(&addr, TIMEOUT).unwrap();
        data.set_read_timeout(Some(TIMEOUT)).unwrap();
        data
    }

    /// EPSV without connecting: the announced port.
    pub fn epsv_port(&mut self) -> u16 {
        let reply = self.ok("EPSV", 229);
        reply.text.split('|').nth(3).unwrap().parse().unwrap()
    }

    /// PASV: the announced address.
    pub fn pasv_addr(&mut self) -> SocketAddr {
        let reply = self.ok("PASV", 227);
        let inside = reply
            .text
            .split('(')
            .nth(1)
            .unwrap()
            .split(')')
            .next()
            .unwrap();
        let n: Vec<u16> = inside
            .split(',')
            .map(|x| x.trim().parse().unwrap())
            .collect();
        SocketAddr::from((
            [n[0] as u8, n[1] as u8, n[2] as u8, n[3] as u8],
            n[4] * 256 + n[5],
        ))
    }

    /// Runs a command that sends data to us, returning the bytes and the final reply.
    pub fn download(&mut self, line: &str) -> (Vec<u8>, Reply) {
        let data = self.epsv();
        self.download_on(data, line)
    }

    /// `download` over a data connection prepared earlier.
    pub fn download_on(&mut self, mut data: TcpStream, line: &str) -> (Vec<u8>, Reply) {
        let opening = self.cmd(line);
        if opening.code != 150 {
            return (Vec::new(), opening);
        }
        let mut out = Vec::new();
        data.read_to_end(&mut out).unwrap();
        drop(data);
        (out, self.reply())
    }

    pub fn retr(&mut self, path: &str) -> Vec<u8> {
        self.ok("TYPE I", 200);
        let (bytes, reply) = self.download(&format!("RETR {path}"));
        assert_eq!(reply.code, 226, "RETR {path}: {}", reply.text);
        bytes
    }

    pub fn list(&mut self, line: &str) -> String {
        let (bytes, reply) = self.download(line);
        assert_eq!(reply.code, 226, "{line}: {}", reply.text);
        String::from_utf8(bytes).unwrap()
    }

    /// Runs an upload command; the final reply.
    pub fn upload(&mut self, line: &str, bytes: &[u8]) -> Reply {
        let mut data = self.epsv();
        let opening = self.cmd(line);
        if opening.code != 150 {
            return opening;
        }
        data.write_all(bytes).unwrap();
        drop(data);
        self.reply()
    }

    pub fn stor(&mut self, path: &str, bytes: &[u8]) {
        self.ok("TYPE I", 200);
        let reply = self.upload(&format!("STOR {path}"), bytes);
        assert_eq!(reply.code, 226, "STOR {path}: {}", reply.text);
    }
}

/// Asserts that the peer closes `stream`: end of stream (or a reset)
/// within `CLOSE_DEADLINE`, and no bytes before it.
pub fn expect_eof(stream: &mut TcpStream) {
    stream.set_read_timeout(Some(CLOSE_DEADLINE)).unwrap();
    let mut buf = [0u8; 64];
    if let Err(e) = closed(stream.read(&mut buf)) {
        panic!("the connection was not closed: {e}");
    }
}

/// Ok when a read result means the peer closed: 0 bytes or a reset.
fn closed(read: std::io::Result<usize>) -> Result<(), String> {
    match read {
        Ok(0) => Ok(()),
        Ok(n) => Err(format!("{n} more bytes arrived")),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Ok(()),
        Err(e) => Err(format!("still open after {CLOSE_DEADLINE:?} ({e})")),
    }
}

impl Ftp {
    /// Sends `line`, which must be refused with `code` before any data
    /// connection is used, on a prepared EPSV connection; then asserts what
    /// minftpd does today: the prepared connection stays pending (not
    /// closed, nothing sent on it) and the next transfer command uses it.
    pub fn refused_keeps_data(&mut self, line: &str, code: u16) {
        let data = self.epsv();
        let reply = self.cmd(line);
        assert_eq!(reply.code, code, "{line}: {}", reply.text);
        let (_, done) = self.download_on(data, "NLST /");
        assert_eq!(done.code, 226, "NLST on the kept connection: {}", done.text);
    }
}

/// A passive-mode thief: a Python process on 127.0.0.2 that connects to
/// `port` before the client does, runs `then` (Python with the socket `s`,
/// printing one line) and exits.
pub struct Thief {
    child: Kill,
    out: BufReader<std::process::ChildStdout>,
}

impl Thief {
    /// Returns once the thief is connected (it is in the accept queue first).
    pub fn connect(port: u16, then: &str) -> Thief {
        let script = format!(
            "import socket\ns = socket.socket()\ns.settimeout(15)\ns.bind(('127.0.0.2', 0))\n\
             s.connect(('127.0.0.1', {port}))\nprint('connected', flush=True)\n{then}\n"
        );
        let mut child = Kill::spawn(
            Command::new("python3")
                .args(["-c", &script])
                .stdout(Stdio::piped()),
        );
        let out = BufReader::new(child.0.stdout.take().unwrap());
        let mut thief = Thief { child, out };
        assert_eq!(thief.line(), "connected");
        thief
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.out.read_line(&mut line).unwrap();
        line.trim().to_string()
    }

    /// The line the thief printed at the end; asserts it exited cleanly.
    pub fn report(mut self) -> String {
        let line = self.line();
        let status = wait_exit(&mut self.child.0).expect("the thief exits");
        assert!(status.success(), "thief: {status:?}");
        line
    }
}

/// A TCP connection to `to` from the loopback address `from` (port chosen by
/// the kernel): a second or third client machine, as a balancer sees it.
pub fn connect_from(from: std::net::IpAddr, to: SocketAddr) -> TcpStream {
    let stream = minftpd::sys::connect_from(SocketAddr::new(from, 0), to, TIMEOUT)
        .unwrap_or_else(|e| panic!("connect from {from} to {to}: {e}"));
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(TIMEOUT)).unwrap();
    stream
}

/// Runs `body` (Python) after an ftplib session `f` has connected to
/// `server` and logged in as `user` (a name and a password); the modules
/// the tests use are imported. Its stdout; fails on a non-zero exit.
pub fn ftplib_session(server: &Server, user: (&str, &str), body: &str) -> String {
    let (name, pass) = user;
    let port = server.port();
    python(&format!(
        "import ftplib, hashlib, io, socket, struct\n\
         f = ftplib.FTP()\n\
         f.connect('127.0.0.1', {port}, timeout=20)\n\
         f.login('{name}', '{pass}')\n{body}"
    ))
}
