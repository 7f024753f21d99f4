//! (cargo feature `tls`) FTPS: certificate and key loading, the rustls server configuration, the
//! per-session resumption store and the TLS stream. A client controls every handshake byte (rustls
//! parses them; a bad one ends that session) and its pace (bounded by the deadline it is given).

use rustls::server::{ServerSessionMemoryCache, StoresServerSessions};
use rustls::{HandshakeKind, ServerConfig, ServerConnection, StreamOwned};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
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
    cert_file: PathBuf,
    key_file: PathBuf,
    config: RwLock<Arc<ServerConfig>>,
}

impl Certs {
    /// Reads both files; an error names the file and what is wrong with it.
    pub fn load(cert_file: &Path, key_file: &Path) -> Result<Certs, String> {
        Ok(Certs {
            cert_file: cert_file.to_path_buf(),
            key_file: key_file.to_path_buf(),
            config: RwLock::new(server_config(cert_file, key_file)?),
        })
    }

    /// SIGHUP: reads the files again; a bad new pair leaves the old one in use.
    pub fn reload(&self) -> Result<(), String> {
        let config = server_config(&self.cert_file, &self.key_file)?;
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
        }
    }
}

fn server_config(cert_file: &Path, key_file: &Path) -> Result<Arc<ServerConfig>, String> {
    let chain = certificates(cert_file)?;
    let key = private_key(key_file)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS set-up: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| {
            format!(
                "tls_key_file {} does not fit tls_cert_file {}: {e}",
                key_file.display(),
                cert_file.display()
            )
        })?;
    Ok(Arc::new(config))
}

fn read_file(key: &str, path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{key} {}: {e}", path.display()))
}

/// The certificate chain, end-entity certificate first.
fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = read_file("tls_cert_file", path)?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("tls_cert_file {}: {e}", path.display()))?;
    if chain.is_empty() {
        return Err(format!(
            "tls_cert_file {}: no PEM CERTIFICATE in it",
            path.display()
        ));
    }
    Ok(chain)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let pem = read_file("tls_key_file", path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        format!(
            "tls_key_file {}: no private key in it ({e})",
            path.display()
        )
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

    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.hit(self.cache.take(key))
    }

    fn can_cache(&self) -> bool {
        true
    }
}

/// What one session holds of TLS: its configuration and resumption store.
pub struct SessionTls {
    config: Arc<ServerConfig>,
    store: Arc<SessionStore>,
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
    /// does not resume this session's TLS session is refused.
    pub fn data(
        &self,
        tcp: TcpStream,
        deadline: Instant,
        require_reuse: bool,
    ) -> io::Result<TlsStream> {
        self.store.open.store(false, Ordering::SeqCst);
        let stream = TlsStream::handshake(tcp, &self.config, deadline)?;
        if require_reuse && stream.0.conn.handshake_kind() != Some(HandshakeKind::Resumed) {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "data connection did not resume the control connection's TLS session",
            ));
        }
        Ok(stream)
    }
}

/// TLS over a TCP connection, the server side. Dropping it sends
/// close_notify (clients built on GnuTLS report a bare close as an error).
pub struct TlsStream(StreamOwned<ServerConnection, TcpStream>);

impl TlsStream {
    /// Runs the handshake to its end, or fails: on garbage (rustls' reason),
    /// on a close, or when `deadline` passes (a client that stops half-way).
    fn handshake(
        tcp: TcpStream,
        config: &Arc<ServerConfig>,
        deadline: Instant,
    ) -> io::Result<TlsStream> {
        Self::handshake_watching(tcp, config, deadline, &|| None)
    }

    /// `handshake`, that also fails when `give_up` gives a reason (asked
    /// before every read, which waits at most `HANDSHAKE_POLL`).
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
                Err(e) => return Err(e),
            }
        }
        tcp.set_read_timeout(read_timeout)?;
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
