//! Logging in: USER, PASS, REIN, password checks, failure delays, the pre-login slot.
//! The client picks names and passwords: names are cut to 64 characters and quoted in logs,
//! unknown names cost the same crypt(3) work, failures wait longer and end at max_login_fails.

use super::SHUTDOWN_CHECK;
use super::{r, Flow, Reply, Session};
use super::{Ticket, Waiting};
use crate::auth::{self, Identity};
use crate::data::Pending;
use crate::fs::{normalize, Root};
use crate::listing;
use crate::log::Quoted;
use crate::reply::*;
use crate::server;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A session's place among those not logged in yet (`Context::waiting`),
/// given back on login, or when the session ends however it ends.
pub(super) struct PreLogin<'a> {
    waiting: &'a Waiting,
    ticket: Option<Ticket>,
}

/// The eviction flag of a session that has logged in: never set.
static NOT_WAITING: AtomicBool = AtomicBool::new(false);

impl<'a> PreLogin<'a> {
    /// The place the pool (or inetd mode) admitted the session with.
    pub(super) fn held(waiting: &'a Waiting, ticket: Ticket) -> PreLogin<'a> {
        PreLogin {
            waiting,
            ticket: Some(ticket),
        }
    }

    fn release(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            self.waiting.leave(&ticket);
        }
    }

    /// REIN: the session waits to log in again (not capped: it has a worker).
    fn retake(&mut self, ip: std::net::IpAddr) {
        if self.ticket.is_none() {
            self.ticket = Some(self.waiting.readmit(ip));
        }
    }

    /// While the session waits to log in: the flag set when it must close
    /// to make room for a new client.
    pub(super) fn waiting_flag(&self) -> Option<&AtomicBool> {
        self.ticket.as_ref().map(|t| &*t.evict)
    }

    /// Set when this session must close to make room for a new client.
    pub(super) fn evict_flag(&self) -> &AtomicBool {
        self.ticket.as_ref().map_or(&NOT_WAITING, |t| &t.evict)
    }
}

impl Drop for PreLogin<'_> {
    fn drop(&mut self) {
        self.release();
    }
}

impl Session<'_> {
    /// USER: the name is kept, cut to 64 characters, until PASS; it reaches
    /// the log only quoted.
    pub(super) fn user(&mut self, name: Vec<u8>) -> Reply {
        if self.identity.is_some() {
            return r(NOT_LOGGED_IN, "Can't change to another user.");
        }
        let anonymous = auth::is_anonymous_name(&String::from_utf8_lossy(&name));
        if let Some(refusal) = self.refuse_plain_login(anonymous) {
            log::info!("{}: plain login refused: tls = required", self.peer);
            return refusal;
        }
        self.user = Some(String::from_utf8_lossy(&name).chars().take(64).collect());
        r(NEED_PASSWORD, "Please specify the password.")
    }

    /// PASS: the client chooses the password and how often it tries; a try
    /// costs one crypt(3), as much for an unknown name as for a known one, and
    /// a failure waits (`login_failed`). The password is never logged.
    pub(super) fn pass(&mut self, password: &[u8]) -> io::Result<Flow> {
        if self.identity.is_some() {
            self.send(r(LOGGED_IN, "Already logged in."))?;
            return Ok(Flow::Continue);
        }
        let Some(name) = self.user.take() else {
            self.send(r(BAD_SEQUENCE, "Login with USER first."))?;
            return Ok(Flow::Continue);
        };
        // A session opened before its address was banned tries no more.
        if self.ctx.bans.refuses(self.peer.ip()) {
            self.send_last(UNAVAILABLE, crate::ban::REFUSAL)?;
            return Ok(Flow::Close);
        }
        match self.authenticate(&name, password) {
            Some(identity) => match self.open_home(&identity) {
                Ok((root, upload_root)) => {
                    log::info!(
                        "login: peer={} user={}",
                        self.peer.ip().to_canonical(),
                        Quoted(name.as_bytes())
                    );
                    self.upload_root = upload_root;
                    self.umask = if identity.anonymous {
                        self.ctx.config.anon_umask
                    } else {
                        self.ctx.config.umask
                    };
                    self.identity = Some(identity);
                    self.root = Some(root);
                    self.cwd = b"/".to_vec();
                    self.pre_login.release();
                    self.send(r(LOGGED_IN, "Login successful."))?;
                    Ok(Flow::Continue)
                }
                Err(e) if server::out_of_descriptors(&e) => {
                    // Not the home's fault: say so, and give the worker back.
                    log::error!(
                        "login: peer={} user={}: out of file descriptors ({e}); raise LimitNOFILE or lower max_clients",
                        self.peer.ip().to_canonical(),
                        Quoted(name.as_bytes())
                    );
                    self.send_last(UNAVAILABLE, server::OUT_OF_DESCRIPTORS)?;
                    Ok(Flow::Close)
                }
                Err(e) => {
                    log::error!(
                        "user {}: home directory {} cannot be opened: {e}",
                        Quoted(name.as_bytes()),
                        Quoted(&identity.home)
                    );
                    self.send(r(NOT_LOGGED_IN, "Home directory not available."))?;
                    Ok(Flow::Continue)
                }
            },
            None => self.login_failed(&name),
        }
    }

    /// The logged-in user's root and, for anonymous uploads, the root at the
    /// upload directory; both shared with other sessions of the same home
    /// (one descriptor, not one a session). An upload directory that cannot
    /// be opened only means no uploads, unless descriptors ran out.
    fn open_home(&self, identity: &Identity) -> io::Result<(Arc<Root>, Option<Arc<Root>>)> {
        let root = self.ctx.root.shared_subroot(&identity.home)?;
        let upload_root = match identity.upload_dir.as_deref() {
            Some(dir) => match root.shared_subroot(dir) {
                Ok(upload_root) => Some(upload_root),
                Err(e) if server::out_of_descriptors(&e) => return Err(e),
                Err(_) => None,
            },
            None => None,
        };
        Ok((root, upload_root))
    }

    /// Checks a login. Unknown names cost the same crypt(3) work as known ones.
    fn authenticate(&self, name: &str, password: &[u8]) -> Option<Identity> {
        let config = &self.ctx.config;
        if auth::is_anonymous_name(name) {
            if !config.anonymous_enable {
                auth::decoy_check(&self.ctx.users(), password);
                return None;
            }
            let upload_dir = (config.write_enable && !config.anon_upload_dir.is_empty())
                .then(|| normalize(b"/", config.anon_upload_dir.as_bytes()));
            return Some(Identity {
                name: name.to_string(),
                anonymous: true,
                home: normalize(b"/", config.anon_root.as_bytes()),
                full_write: false,
                upload_dir,
            });
        }
        let users = self.ctx.users();
        let Some(account) = users.get(name) else {
            auth::decoy_check(&users, password);
            return None;
        };
        if !auth::check_password(account, password) {
            return None;
        }
        Some(Identity {
            name: name.to_string(),
            anonymous: false,
            home: account.home.clone(),
            full_write: account.write && config.write_enable,
            upload_dir: None,
        })
    }

    /// A wrong password: the wait grows with each failure (`login_fail_delay`
    /// times the count), and `max_login_fails` ends the session.
    fn login_failed(&mut self, name: &str) -> io::Result<Flow> {
        self.failures += 1;
        // The fixed format fail2ban matches (see README): the user name is
        // quoted and escaped, so nothing a client sends can look like a peer.
        log::warn!(
            "login failed: peer={} user={}",
            self.peer.ip().to_canonical(),
            Quoted(name.as_bytes())
        );
        if self.counts_toward_ban() && self.ctx.bans.failed(self.peer.ip()) {
            self.send_last(UNAVAILABLE, crate::ban::REFUSAL)?;
            return Ok(Flow::Close);
        }
        let delay = self
            .ctx
            .config
            .login_fail_delay
            .saturating_mul(u64::from(self.failures));
        if !self.pause_unless_evicted(Duration::from_secs(delay)) {
            log::info!(
                "{}: closed to make room for a new client (after a failed login)",
                self.peer
            );
            self.send_last(UNAVAILABLE, "Too many connections waiting to log in.")?;
            return Ok(Flow::Close);
        }
        if self.failures >= self.ctx.config.max_login_fails {
            self.send_last(UNAVAILABLE, "Too many failed logins; closing connection.")?;
            return Ok(Flow::Close);
        }
        self.send(r(NOT_LOGGED_IN, "Login incorrect."))?;
        Ok(Flow::Continue)
    }

    /// Waits `pause`, looking every `SHUTDOWN_CHECK` whether the session's
    /// place among those not logged in was given to a new client (false):
    /// a failed login's delay must not keep a worker its session lost.
    fn pause_unless_evicted(&self, pause: Duration) -> bool {
        let until = Instant::now() + pause;
        loop {
            if self.pre_login.evict_flag().load(Ordering::SeqCst) {
                return false;
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return true;
            }
            std::thread::sleep(left.min(SHUTDOWN_CHECK));
        }
    }

    /// A failure counts toward the ban of the client's address; never toward
    /// a balancer's (its own health checks, or a header naming no client).
    fn counts_toward_ban(&self) -> bool {
        let ip = self.peer.ip();
        !self
            .ctx
            .data
            .proxy
            .as_ref()
            .is_some_and(|relay| relay.trusts(ip))
    }

    /// REIN: back to before login, with a fresh login deadline; the session
    /// takes a pre-login place again.
    pub(super) fn rein(&mut self) -> Reply {
        self.user = None;
        self.identity = None;
        self.root = None;
        self.upload_root = None;
        self.umask = self.ctx.config.umask;
        self.login_deadline = Instant::now() + Duration::from_secs(self.ctx.config.login_timeout);
        self.pre_login.retake(self.peer.ip());
        self.cwd = b"/".to_vec();
        self.ascii = false;
        self.rest = 0;
        self.rename_from = None;
        self.pending = Pending::None;
        self.epsv_all = false;
        self.facts = listing::ALL_FACTS;
        r(READY, "Ready for a new user.")
    }
}
