//! FTPS in a session (RFC 4217): AUTH TLS, PBSZ, PROT, CCC, the `tls = required` policy, and
//! TLS on data connections. The client picks when to start TLS and the protection level; bytes
//! sent in clear after AUTH are dropped, a failed handshake ends the session, deadlines bound both.

use super::{r, Flow, Reply, Session};
use crate::config::TlsMode;
use crate::data::{DataStream, Direction};
use crate::reply::*;
use std::io;
#[cfg(feature = "tls")]
use std::sync::atomic::Ordering;

/// Reply to PROT C (534) and transfers under it (521) when policy wants TLS.
const PROTECTED_DATA: u16 = 521;
/// RFC 2228's reply to CCC when policy keeps the control connection protected.
const CCC_DENIED: u16 = 533;
/// RFC 2228: the protection level is not supported by the mechanism.
const PROT_UNSUPPORTED: u16 = 536;
const PROCEED_TLS: u16 = 234;
/// The log line of a session closed in its handshake to make room for a new client.
#[cfg(feature = "tls")]
const EVICTED_IN_HANDSHAKE: &str =
    "closed in its TLS handshake to make room for a new client (not logged in)";

/// A session's TLS state.
#[derive(Default)]
pub(super) struct Secure {
    /// The control connection is TLS (AUTH TLS done, or an implicit listener).
    pub(super) control: bool,
    /// PBSZ seen after the handshake (RFC 4217: it must precede PROT).
    pbsz: bool,
    /// PROT P: data connections are TLS.
    pub(super) private: bool,
    #[cfg(feature = "tls")]
    pub(super) session: Option<crate::tls::SessionTls>,
}

impl Session<'_> {
    /// TLS is configured (`tls = yes` or `required`; only a TLS build accepts them).
    pub(super) fn tls_offered(&self) -> bool {
        self.ctx.config.tls != TlsMode::No
    }

    /// Whether policy wants TLS for this user (`tls = required`; anonymous
    /// users only with `tls_anon_required`).
    pub(super) fn needs_tls(&self, anonymous: bool) -> bool {
        self.ctx.config.tls == TlsMode::Required
            && (!anonymous || self.ctx.config.tls_anon_required)
    }

    /// USER under `tls = required`: a plain control connection may not carry
    /// the password of a user who must use TLS.
    pub(super) fn refuse_plain_login(&self, anonymous: bool) -> Option<Reply> {
        (self.needs_tls(anonymous) && !self.secure.control)
            .then(|| r(NOT_LOGGED_IN, "TLS is required: send AUTH TLS before USER."))
    }

    /// Transfers of a user who must use TLS need PROT P (checked before any
    /// data connection is opened).
    pub(super) fn refuse_plain_data(&self) -> Option<Reply> {
        let anonymous = self.identity.as_ref().is_some_and(|i| i.anonymous);
        (self.needs_tls(anonymous) && !self.secure.private).then(|| {
            r(
                PROTECTED_DATA,
                "Data connections must be protected: send PROT P.",
            )
        })
    }

    /// AUTH TLS: 234, then the handshake; the session starts over (RFC 4217
    /// section 4: the client logs in again). A failed handshake ends it.
    pub(super) fn auth(&mut self, tls: bool) -> io::Result<Flow> {
        let refusal = if !self.tls_offered() {
            Some(r(NOT_IMPLEMENTED, "TLS is not supported."))
        } else if !tls {
            Some(r(NOT_FOR_PARAMETER, "Use AUTH TLS (or AUTH SSL)."))
        } else if self.secure.control {
            Some(r(BAD_SEQUENCE, "Already using TLS."))
        } else {
            None
        };
        if let Some(reply) = refusal {
            self.send(reply)?;
            return Ok(Flow::Continue);
        }
        self.send(r(PROCEED_TLS, "Proceed with negotiation."))?;
        self.start_tls()
    }

    #[cfg(not(feature = "tls"))]
    fn start_tls(&mut self) -> io::Result<Flow> {
        unreachable!("configuration validation refuses tls without the tls feature")
    }

    /// The handshake on the control connection, then a fresh session. The
    /// fresh session does not mean fresh time: a client not logged in keeps
    /// the login deadline it had from its greeting.
    #[cfg(feature = "tls")]
    fn start_tls(&mut self) -> io::Result<Flow> {
        let tcp = self.ctl.plain_for_upgrade()?;
        if self.upgrade_control(tcp).is_err() {
            return Ok(Flow::Close);
        }
        let logged_in = self.identity.is_some();
        let login_deadline = self.login_deadline;
        let _ = self.rein();
        if !logged_in {
            self.login_deadline = login_deadline;
        }
        self.secure.pbsz = false;
        self.secure.private = false;
        Ok(Flow::Continue)
    }

    /// Runs the control handshake within its own deadline; a failure is
    /// logged (peer and rustls' reason) and ends this session only. Before
    /// login the wait also ends when the session is closed to make room for
    /// a new client (its place was taken), or on shutdown.
    #[cfg(feature = "tls")]
    pub(super) fn upgrade_control(&mut self, tcp: std::net::TcpStream) -> io::Result<()> {
        let Some(certs) = &self.ctx.tls else {
            return Err(io::Error::other("no certificate"));
        };
        let tls = certs.for_session();
        let evict = self.pre_login.evict_flag();
        let shutdown = &self.ctx.shutdown;
        let give_up = || {
            if evict.load(Ordering::SeqCst) {
                Some(EVICTED_IN_HANDSHAKE)
            } else if shutdown.load(Ordering::SeqCst) {
                Some("closed in its TLS handshake: server shutting down")
            } else {
                None
            }
        };
        match tls.control(tcp, self.handshake_deadline(), &give_up) {
            Ok(stream) => {
                self.ctl.stream = super::ControlStream::Tls(Box::new(stream));
                self.secure.control = true;
                self.secure.session = Some(tls);
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                log::info!("{}: {e}", self.peer);
                Err(e)
            }
            Err(e) => {
                log::info!("{}: TLS handshake failed: {e}", self.peer);
                Err(e)
            }
        }
    }

    /// When the control handshake must be done: `login_timeout` from now (the
    /// 234 reply, or the connection on an implicit listener), and before login
    /// no later than the login deadline, so TLS never adds pre-login time.
    #[cfg(feature = "tls")]
    fn handshake_deadline(&self) -> std::time::Instant {
        let own = std::time::Instant::now()
            + std::time::Duration::from_secs(self.ctx.config.login_timeout);
        match self.identity {
            Some(_) => own,
            None => own.min(self.login_deadline),
        }
    }

    /// PBSZ: only 0 makes sense for TLS (RFC 4217 section 8), so any size is
    /// answered with PBSZ=0.
    pub(super) fn pbsz(&mut self) -> Reply {
        if !self.tls_offered() {
            return r(NOT_IMPLEMENTED, "TLS is not supported.");
        }
        if !self.secure.control {
            return r(BAD_SEQUENCE, "PBSZ needs AUTH TLS first.");
        }
        self.secure.pbsz = true;
        r(OK, "PBSZ=0")
    }

    /// PROT C or P; S and E do not exist for TLS.
    pub(super) fn prot(&mut self, level: u8) -> Reply {
        if !self.tls_offered() {
            return r(NO_TLS, "Only PROT C without TLS.");
        }
        if !self.secure.control || !self.secure.pbsz {
            return r(BAD_SEQUENCE, "PROT needs AUTH TLS and PBSZ first.");
        }
        match level {
            b'P' => {
                self.secure.private = true;
                r(OK, "PROT now Private.")
            }
            b'C' if self.needs_tls(self.identity.as_ref().is_some_and(|i| i.anonymous)) => r(
                NO_TLS,
                "PROT C refused: this account must protect its data.",
            ),
            b'C' => {
                self.secure.private = false;
                r(OK, "PROT now Clear.")
            }
            b'S' | b'E' => r(PROT_UNSUPPORTED, "PROT S and E are not supported; use P."),
            _ => r(NOT_FOR_PARAMETER, "PROT takes C or P."),
        }
    }

    /// CCC: refused; the control connection stays encrypted once it is.
    pub(super) fn ccc(&self) -> Reply {
        if !self.tls_offered() {
            return r(SYNTAX_ERROR, "Unknown command.");
        }
        r(
            CCC_DENIED,
            "CCC refused: the control connection stays protected.",
        )
    }

    /// After the 150 reply: under PROT P the client now starts TLS on the
    /// data connection (ftplib and curl wait for 150 first). A failed
    /// handshake, or one that does not resume with `tls_require_reuse`, is
    /// the transfer's end with 425.
    pub(super) fn protect_data(
        &mut self,
        sock: DataStream,
        direction: Direction,
    ) -> Result<DataStream, Reply> {
        if !self.secure.private {
            return Ok(sock);
        }
        self.tls_data(sock, direction)
    }

    #[cfg(not(feature = "tls"))]
    fn tls_data(&mut self, sock: DataStream, _: Direction) -> Result<DataStream, Reply> {
        Ok(sock)
    }

    #[cfg(feature = "tls")]
    fn tls_data(&mut self, sock: DataStream, direction: Direction) -> Result<DataStream, Reply> {
        let (DataStream::Plain(tcp), Some(tls)) = (sock, &self.secure.session) else {
            return Err(r(CANT_OPEN_DATA, "TLS data connection not available."));
        };
        let reuse = self.ctx.config.tls_require_reuse;
        match crate::data::secure(tcp, tls, direction, &self.ctx.data, reuse, &mut self.ctl) {
            Ok(stream) => Ok(stream),
            // ABOR while waiting: 426 for the transfer, then ABOR's own 226.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                let _ = self.send(r(TRANSFER_ABORTED, "Transfer aborted before TLS was up."));
                Err(r(TRANSFER_DONE, "ABOR successful."))
            }
            Err(e) => {
                log::info!("{}: TLS on the data connection failed: {e}", self.peer);
                Err(match e.kind() {
                    io::ErrorKind::PermissionDenied => r(
                        CANT_OPEN_DATA,
                        "Data connection must resume the control connection's TLS session.",
                    ),
                    _ => r(
                        CANT_OPEN_DATA,
                        "TLS handshake on the data connection failed.",
                    ),
                })
            }
        }
    }

    /// The FEAT list: RFC 4217's three lines only when TLS is configured.
    pub(super) fn features(&self) -> String {
        let base = super::FEATURES;
        if !self.tls_offered() {
            return base.to_string();
        }
        base.replacen("Features:\n", "Features:\nAUTH TLS\nPBSZ\nPROT\n", 1)
    }
}
