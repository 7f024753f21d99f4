//! The bench's FTP client: a control connection, plain or TLS (rustls, the
//! client side of `--tls`), and passive data connections, protected under
//! `PROT P`. Only the bench's own servers on loopback answer it.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::Resumption;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme, StreamOwned};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;

use crate::TIMEOUT;

/// A connection to the server, in clear or under TLS.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            // A bare TCP close ends a data connection as close_notify does.
            Stream::Tls(s) => match s.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
                other => other,
            },
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

impl Stream {
    /// The TLS client handshake over `tcp`, run to its end.
    fn tls(mut tcp: TcpStream, config: &Arc<ClientConfig>) -> Stream {
        let name = ServerName::try_from("localhost").unwrap();
        let mut conn = ClientConnection::new(config.clone(), name).unwrap();
        while conn.is_handshaking() {
            conn.complete_io(&mut tcp).expect("TLS handshake");
        }
        Stream::Tls(Box::new(StreamOwned::new(conn, tcp)))
    }

    /// Ends the stream as a careful client does: under TLS close_notify, then
    /// reading to the end. Unread bytes at close (TLS 1.3 session tickets the
    /// server sent on a data connection) would make the kernel answer with a
    /// reset, which can cost the server the upload's last bytes.
    fn finish(self) {
        if let Stream::Tls(mut s) = self {
            s.conn.send_close_notify();
            let _ = s.flush();
            let _ = s.sock.shutdown(std::net::Shutdown::Write);
            let mut buf = [0u8; 4096];
            while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
        }
    }

    /// "TLSv1_3 TLS13_AES_256_GCM_SHA384", or "plain".
    pub fn describe(&self) -> String {
        match self {
            Stream::Plain(_) => "plain".into(),
            Stream::Tls(s) => format!(
                "{:?} {:?}",
                s.conn.protocol_version().unwrap(),
                s.conn.negotiated_cipher_suite().unwrap().suite()
            ),
        }
    }
}

/// The bench trusts the certificate it made itself: any certificate is
/// accepted, but the handshake signature is still checked, so the server
/// does all the work a real client makes it do.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// What a session knows of TLS: none, or the client configuration.
#[derive(Clone)]
pub struct Tls(Option<Arc<ClientConfig>>);

impl Tls {
    pub fn none() -> Tls {
        Tls(None)
    }

    /// rustls' defaults (TLS 1.3 first, the ring provider).
    pub fn client() -> Tls {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth();
        Tls(Some(Arc::new(config)))
    }

    /// A session's own copy with an empty session cache: its data
    /// connections may resume its control connection's session (as curl's
    /// do), but a new session starts with a full handshake, as a new client does.
    fn for_session(&self) -> Option<Arc<ClientConfig>> {
        self.0.as_ref().map(|c| {
            let mut own = (**c).clone();
            own.resumption = Resumption::in_memory_sessions(8);
            Arc::new(own)
        })
    }
}

pub struct Ftp {
    ctl: Stream,
    buf: Vec<u8>,
    /// Under TLS: the session's client configuration; data is PROT P.
    tls: Option<Arc<ClientConfig>>,
}

fn connect(addr: SocketAddr) -> TcpStream {
    let tcp = TcpStream::connect_timeout(&addr, TIMEOUT).expect("connect");
    tcp.set_read_timeout(Some(TIMEOUT)).unwrap();
    tcp.set_nodelay(true).unwrap();
    tcp
}

impl Ftp {
    /// Connects and reads the greeting; with TLS also AUTH TLS and the
    /// handshake (no login yet).
    pub fn connect(addr: SocketAddr, tls: &Tls) -> Ftp {
        let mut ftp = Ftp {
            ctl: Stream::Plain(connect(addr)),
            buf: Vec::with_capacity(512),
            tls: tls.for_session(),
        };
        ftp.expect(220);
        if let Some(config) = ftp.tls.clone() {
            ftp.cmd("AUTH TLS", 234);
            // The TLS stream takes a second handle of the socket; the plain
            // one is dropped with the value it replaces.
            let Stream::Plain(tcp) = &ftp.ctl else {
                unreachable!()
            };
            let tcp = tcp.try_clone().unwrap();
            ftp.ctl = Stream::tls(tcp, &config);
        }
        ftp
    }

    /// Logged in as anonymous, binary type; under TLS with PROT P.
    pub fn login(addr: SocketAddr, tls: &Tls) -> Ftp {
        let mut ftp = Ftp::connect(addr, tls);
        ftp.anonymous();
        if ftp.tls.is_some() {
            ftp.cmd("PBSZ 0", 200);
            ftp.cmd("PROT P", 200);
        }
        ftp.cmd("TYPE I", 200);
        ftp
    }

    /// vsftpd with no_anon_password logs anonymous in at USER already.
    pub fn anonymous(&mut self) {
        self.ctl.write_all(b"USER anonymous\r\n").unwrap();
        match self.reply() {
            (230, _) => {}
            (331, _) => {
                self.cmd("PASS bench@", 230);
            }
            (_, line) => panic!("USER anonymous: {line}"),
        }
    }

    pub fn describe(&self) -> String {
        self.ctl.describe()
    }

    fn line(&mut self) -> String {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..end + 2).collect();
                return String::from_utf8_lossy(&line).into_owned();
            }
            let mut chunk = [0u8; 1024];
            let n = self.ctl.read(&mut chunk).expect("control read");
            assert!(n > 0, "control connection closed");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn reply(&mut self) -> (u16, String) {
        loop {
            let line = self.line();
            if line.len() >= 4 && line.as_bytes()[3] == b' ' {
                return (line[..3].parse().unwrap_or(0), line);
            }
        }
    }

    pub fn expect(&mut self, code: u16) -> String {
        let (got, line) = self.reply();
        assert_eq!(got, code, "{line}");
        line
    }

    pub fn cmd(&mut self, line: &str, code: u16) -> String {
        self.ctl
            .write_all(format!("{line}\r\n").as_bytes())
            .unwrap();
        self.expect(code)
    }

    /// Sends a transfer command over a fresh passive connection and returns
    /// that connection after the 150 (under TLS: after its handshake, which
    /// the servers start once they have sent 150).
    pub fn transfer(&mut self, line: &str) -> Stream {
        let reply = self.cmd("EPSV", 229);
        let port: u16 = reply.split('|').nth(3).unwrap().parse().unwrap();
        let data = connect(SocketAddr::from(([127, 0, 0, 1], port)));
        self.cmd(line, 150);
        match &self.tls {
            Some(config) => Stream::tls(data, config),
            None => Stream::Plain(data),
        }
    }

    /// Runs a download command; bytes received.
    pub fn fetch(&mut self, line: &str, buf: &mut [u8]) -> u64 {
        let mut data = self.transfer(line);
        let mut total = 0u64;
        loop {
            let n = data.read(buf).unwrap();
            if n == 0 {
                break;
            }
            total += n as u64;
        }
        data.finish();
        self.expect(226);
        total
    }

    /// Uploads `size` bytes of `block` repeated with `line` (STOR name).
    pub fn store(&mut self, line: &str, block: &[u8], size: u64) {
        let mut data = self.transfer(line);
        let mut left = size;
        while left > 0 {
            let n = left.min(block.len() as u64) as usize;
            data.write_all(&block[..n]).unwrap();
            left -= n as u64;
        }
        data.finish();
        self.expect(226);
    }

    pub fn quit(mut self) {
        self.cmd("QUIT", 221);
        self.ctl.finish();
    }
}
