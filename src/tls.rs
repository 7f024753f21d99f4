//! (cargo feature `tls`) FTPS: certificate and key loading, the rustls server configuration, the
//! per-session resumption store and the TLS stream. A client controls every handshake byte (rustls
//! parses them; a bad one ends that session) and its pace (bounded by the deadline it is given).

use crate::data::Direction;
use crate::sys;
use rustls::server::{ServerSessionMemoryCache, StoresServerSessions};
use rustls::{HandshakeKind, ServerConfig, ServerConnection, StreamOwned};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::cell::OnceCell;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// Plaintext rustls may hold for sending: a whole 256 KiB file buffer fits,
/// so a download becomes full 16 KiB records without a wait per record.
const SEND_BUFFER: usize = 256 * 1024 + 16 * 1024;
/// Sessions a control connection's own store keeps for its data connections.
const SESSIONS_PER_CONTROL: usize = 32;
/// How long one read waits inside a handshake before the deadline is checked.
const HANDSHAKE_POLL: Duration = Duration::from_secs(1);

/// The certificate in use, and where it came from, so SIGHUP can read it again.
pub struct Certs {
    files: KeyPair,
    config: RwLock<Arc<ServerConfig>>,
}

/// Where the certificate and its key are read from. vsftpd's usual set-up
/// keeps both in one PEM file (`rsa_cert_file` alone): then `key` is None
/// and the key is read from the certificate's file.
struct KeyPair {
    cert: PathBuf,
    key: Option<PathBuf>,
}

impl Certs {
    /// Reads both files (the key from `cert_file` when `key_file` is None)
    /// and checks that they belong together; an error names the file, what
    /// is wrong with it and what to do. `--check-config` runs this too.
    pub fn load(cert_file: &Path, key_file: Option<&Path>) -> Result<Certs, String> {
        let files = KeyPair {
            cert: cert_file.to_path_buf(),
            key: key_file.map(Path::to_path_buf),
        };
        Ok(Certs {
            config: RwLock::new(server_config(&files)?),
            files,
        })
    }

    /// SIGHUP: reads the files again; a bad new pair leaves the old one in use.
    pub fn reload(&self) -> Result<(), String> {
        let config = server_config(&self.files)?;
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = config;
        Ok(())
    }

    /// The configuration one control connection and its data connections use:
    /// the current certificate, with a resumption store of their own, so a
    /// data connection can only resume a session this control connection made.
    pub fn for_session(&self) -> SessionTls {
        let global = self
            .config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let store = Arc::new(SessionStore {
            cache: ServerSessionMemoryCache::new(SESSIONS_PER_CONTROL),
            open: AtomicBool::new(true),
        });
        let mut config = (*global).clone();
        config.session_storage = store.clone();
        SessionTls {
            config: Arc::new(config),
            store,
            upload_config: OnceCell::new(),
        }
    }
}

fn server_config(files: &KeyPair) -> Result<Arc<ServerConfig>, String> {
    let chain = certificates(&files.cert)?;
    let key = match &files.key {
        Some(path) => private_key("tls_key_file", path)?,
        None => private_key("tls_cert_file", &files.cert).map_err(where_the_key_goes)?,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS set-up: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| mismatch(files, e))?;
    Ok(Arc::new(config))
}

/// With `tls_key_file` empty and no key in the certificate's file: where
/// the key may go.
fn where_the_key_goes(e: String) -> String {
    if !e.contains("no private key") {
        return e;
    }
    format!("{e}; name the key's own file with tls_key_file, or append the key to the certificate's file")
}

/// The error for a key that rustls will not pair with the certificate.
fn mismatch(files: &KeyPair, e: rustls::Error) -> String {
    let key = files.key.as_deref().unwrap_or(&files.cert);
    let why = match e {
        rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
            "the private key is not the one the certificate was made for".to_string()
        }
        e => e.to_string(),
    };
    format!(
        "the private key in {} does not fit the certificate in tls_cert_file {}: {why}",
        key.display(),
        files.cert.display()
    )
}

fn read_file(key: &str, path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{key} {}: cannot read it: {e}", path.display()))
}

/// What a file that should hold PEM holds instead, for the error message.
fn pem_contents(pem: &[u8]) -> Contents {
    let text = String::from_utf8_lossy(pem);
    if pem.first() == Some(&0x30) {
        Contents::Der
    } else if text.contains("ENCRYPTED") {
        Contents::EncryptedKey
    } else if text.contains("PRIVATE KEY-----") {
        Contents::Key
    } else if text.contains("-----BEGIN CERTIFICATE-----") {
        Contents::Certificate
    } else {
        Contents::Other
    }
}

enum Contents {
    Der,
    EncryptedKey,
    Key,
    Certificate,
    Other,
}

/// The certificate chain, end-entity certificate first.
fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = read_file("tls_cert_file", path)?;
    let shown = path.display();
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("tls_cert_file {shown}: not a valid PEM file ({e})"))?;
    if !chain.is_empty() {
        return Ok(chain);
    }
    Err(match pem_contents(&pem) {
        Contents::Der => format!("tls_cert_file {shown}: a DER (binary) file; minftpd reads PEM: convert it with openssl x509 -inform der -in {shown} -out {shown}.pem"),
        Contents::Key | Contents::EncryptedKey => format!("tls_cert_file {shown}: holds a private key but no certificate; are tls_cert_file and tls_key_file swapped?"),
        _ => format!("tls_cert_file {shown}: no PEM CERTIFICATE in it"),
    })
}

/// The private key from `path`, which the configuration key `setting` names.
fn private_key(setting: &str, path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let pem = read_file(setting, path)?;
    let shown = path.display();
    let contents = pem_contents(&pem);
    // An encrypted key would need its passphrase at every start; rustls
    // reads none, so say so rather than "no key".
    if let Contents::EncryptedKey = contents {
        return Err(format!("{setting} {shown}: encrypted keys are not supported; decrypt it (openssl pkey -in {shown} -out {shown}.plain) and keep it readable by root only"));
    }
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match contents {
        Contents::Der => format!("{setting} {shown}: a DER (binary) file; minftpd reads PEM: convert it with openssl pkey -inform der -in {shown} -out {shown}.pem"),
        Contents::Certificate if setting == "tls_key_file" => format!("{setting} {shown}: holds a certificate but no private key; are tls_cert_file and tls_key_file swapped?"),
        _ => format!("{setting} {shown}: no private key in it ({e})"),
    })
}

/// A control connection's resumption store. A data connection's handshake
/// may only add sessions when it resumed one (`open`): a stranger who wins
/// the race for a passive port with a full handshake gets no ticket that a
/// later data connection could resume.
#[derive(Debug)]
struct SessionStore {
    cache: Arc<ServerSessionMemoryCache>,
    open: AtomicBool,
}

impl SessionStore {
    fn hit(&self, found: Option<Vec<u8>>) -> Option<Vec<u8>> {
        if found.is_some() {
            self.open.store(true, Ordering::SeqCst);
        }
        found
    }
}

impl StoresServerSessions for SessionStore {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        self.open.load(Ordering::SeqCst) && self.cache.put(key, value)
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.hit(self.cache.get(key))
    }

    /// TLS 1.3 resumption asks to consume the ticket; it is kept instead,
    /// so a client that offers the control connection's ticket for every
    /// data connection (uploads get no new ones, see `upload_config`)
    /// resumes each time. No early data is accepted, so a ticket used twice
    /// replays nothing, and the store lives and dies with its session.
    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.hit(self.cache.get(key))
    }

    fn can_cache(&self) -> bool {
        true
    }
}

/// What one session holds of TLS: its configuration and resumption store,
/// and (made at the first protected upload) the configuration uploads use.
pub struct SessionTls {
    config: Arc<ServerConfig>,
    store: Arc<SessionStore>,
    upload_config: OnceCell<Arc<ServerConfig>>,
}

impl SessionTls {
    /// The handshake on the control connection (after AUTH TLS, or at once
    /// on an implicit listener), finished before `deadline`. `give_up` is
    /// asked at least once a second (`HANDSHAKE_POLL`) whether to stop
    /// waiting, and why: a session not logged in that was closed to make room
    /// frees its worker then, not at its deadline.
    pub fn control(
        &self,
        tcp: TcpStream,
        deadline: Instant,
        give_up: &dyn Fn() -> Option<&'static str>,
    ) -> io::Result<TlsStream> {
        self.store.open.store(true, Ordering::SeqCst);
        TlsStream::handshake_watching(tcp, &self.config, deadline, give_up)
    }

    /// The handshake on a data connection; with `require_reuse`, one that
    /// does not resume this session's TLS session is refused. `wait` blocks
    /// until the socket is ready for the events it is given (or fails: the
    /// caller's deadline, ABOR, the control connection gone).
    pub fn data(
        &self,
        tcp: TcpStream,
        direction: Direction,
        require_reuse: bool,
        wait: &mut dyn FnMut(BorrowedFd, i16) -> io::Result<()>,
    ) -> io::Result<TlsStream> {
        self.store.open.store(false, Ordering::SeqCst);
        let config = match direction {
            Direction::ToClient => &self.config,
            Direction::FromClient => self
                .upload_config
                .get_or_init(|| upload_config(&self.config)),
        };
        let stream = TlsStream::handshake_waiting(tcp, config, wait)?;
        if require_reuse && stream.0.conn.handshake_kind() != Some(HandshakeKind::Resumed) {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "data connection did not resume the control connection's TLS session",
            ));
        }
        Ok(stream)
    }
}

/// An upload's configuration: the session's, without TLS 1.3 tickets. A
/// client that uploads never reads from its data connection, so tickets sent
/// there stay unread in its socket, and its close then becomes a reset that
/// discards the end of the upload (curl over OpenSSL: curl issues 6149 and
/// 13556). Downloads and listings keep sending them: their client reads to
/// the end, and a client that uses each ticket once (OpenSSL) resumes its
/// next data connection with them.
fn upload_config(session: &Arc<ServerConfig>) -> Arc<ServerConfig> {
    let mut config = (**session).clone();
    config.send_tls13_tickets = 0;
    Arc::new(config)
}

/// A handshake error in the admin's words when the client offered nothing
/// newer than TLS 1.1, so that an old embedded client is recognised from the
/// log line alone. rustls names it by what it found missing first: a TLS 1.1
/// hello has no signature_algorithms extension (TLS 1.2 brought it; every
/// TLS 1.2 client in use sends it), and one that has it names no version
/// rustls speaks.
fn too_old(e: io::Error) -> io::Error {
    use rustls::PeerIncompatible::{
        SignatureAlgorithmsExtensionRequired, Tls12NotOffered, Tls12NotOfferedOrEnabled,
    };
    let inner = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
    match inner {
        Some(rustls::Error::PeerIncompatible(
            Tls12NotOffered | Tls12NotOfferedOrEnabled | SignatureAlgorithmsExtensionRequired,
        )) => io::Error::new(
            e.kind(),
            "client offers only TLS 1.1 or older (minftpd needs TLS 1.2 or 1.3)",
        ),
        _ => e,
    }
}

/// TLS over a TCP connection, the server side. Dropping it sends
/// close_notify (clients built on GnuTLS report a bare close as an error).
pub struct TlsStream(StreamOwned<ServerConnection, TcpStream>);

impl TlsStream {
    /// Runs the handshake to its end, or fails: on garbage (rustls' reason),
    /// on a close, when `deadline` passes (a client that stops half-way), or
    /// when `give_up` gives a reason (asked before every read, which waits at
    /// most `HANDSHAKE_POLL`).
    fn handshake_watching(
        mut tcp: TcpStream,
        config: &Arc<ServerConfig>,
        deadline: Instant,
        give_up: &dyn Fn() -> Option<&'static str>,
    ) -> io::Result<TlsStream> {
        let mut conn = ServerConnection::new(config.clone()).map_err(io::Error::other)?;
        conn.set_buffer_limit(Some(SEND_BUFFER));
        let read_timeout = tcp.read_timeout()?;
        tcp.set_nonblocking(false)?;
        tcp.set_read_timeout(Some(HANDSHAKE_POLL))?;
        while conn.is_handshaking() {
            if let Some(reason) = give_up() {
                return Err(io::Error::new(io::ErrorKind::Interrupted, reason));
            }
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "TLS handshake not finished in time",
                ));
            }
            match conn.complete_io(&mut tcp) {
                Ok((0, 0)) if conn.is_handshaking() => {
                    return Err(io::ErrorKind::UnexpectedEof.into())
                }
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => return Err(too_old(e)),
            }
        }
        tcp.set_read_timeout(read_timeout)?;
        Ok(TlsStream(StreamOwned::new(conn, tcp)))
    }

    /// Runs the handshake on a non-blocking socket, `wait` deciding how
    /// long and on what else to wait whenever the socket is not ready; a
    /// close or garbage (rustls' reason, after its alert) fails it.
    fn handshake_waiting(
        mut tcp: TcpStream,
        config: &Arc<ServerConfig>,
        wait: &mut dyn FnMut(BorrowedFd, i16) -> io::Result<()>,
    ) -> io::Result<TlsStream> {
        let mut conn = ServerConnection::new(config.clone()).map_err(io::Error::other)?;
        conn.set_buffer_limit(Some(SEND_BUFFER));
        tcp.set_nonblocking(true)?;
        // The last flight may still be queued when the handshake is done.
        while conn.is_handshaking() || conn.wants_write() {
            let (result, events) = if conn.wants_write() {
                (conn.write_tls(&mut tcp), sys::POLLOUT)
            } else {
                (conn.read_tls(&mut tcp), sys::POLLIN)
            };
            match result {
                Ok(0) if events == sys::POLLIN => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(_) if events == sys::POLLIN => {
                    if let Err(e) = conn.process_new_packets() {
                        // The alert rustls queued, if the socket takes it now.
                        let _ = conn.write_tls(&mut tcp);
                        return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                    }
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => wait(tcp.as_fd(), events)?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        tcp.set_nonblocking(false)?;
        Ok(TlsStream(StreamOwned::new(conn, tcp)))
    }

    /// Whether rustls holds decrypted bytes the socket no longer shows as
    /// readable (the ABOR check must see them).
    pub fn has_plaintext(&mut self) -> bool {
        self.0
            .conn
            .process_new_packets()
            .is_ok_and(|state| state.plaintext_bytes_to_read() > 0)
    }

    pub fn tcp(&self) -> &TcpStream {
        &self.0.sock
    }
}

impl Read for TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.0.read(buf) {
            // A TCP close without close_notify: curl ends uploads this way, and
            // vsftpd accepts it by default (strict_ssl_read_eof = NO). A
            // truncated upload still ends as one would without TLS.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
            other => other,
        }
    }
}

impl Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl AsFd for TlsStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.sock.as_fd()
    }
}

impl Drop for TlsStream {
    /// close_notify after a complete transfer. Never waits: when records are
    /// still queued (ABOR, a client that stopped reading) the connection is
    /// cut as plain TCP would be, and a full socket buffer drops the alert.
    fn drop(&mut self) {
        if self.0.conn.wants_write() || self.0.sock.set_nonblocking(true).is_err() {
            return;
        }
        self.0.conn.send_close_notify();
        while self.0.conn.wants_write() {
            match self.0.conn.write_tls(&mut self.0.sock) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    }
}
