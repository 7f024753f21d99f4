//! Listeners, the accept loops, the fixed worker pool, and the global and
//! per-address session limits. Behind a balancer the per-address limit counts
//! the client its PROXY header names, so it is applied by the worker, after the header.

use crate::relay::{self, Arrival};
use crate::session::{self, Context, Ticket};
use std::collections::HashMap;
use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, OwnedFd};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Worker stack size. A session needs little stack (buffers live on the heap
/// and only while a transfer runs); untouched stack pages cost no memory.
const WORKER_STACK: usize = 256 * 1024;

/// Binds every configured address. The dual-stack `[::]` falls back to
/// `0.0.0.0` on hosts without IPv6.
pub fn bind(addrs: &[SocketAddr]) -> io::Result<Vec<TcpListener>> {
    let mut listeners = Vec::new();
    for addr in addrs {
        let listener = match TcpListener::bind(addr) {
            Err(e) if addr.ip().is_unspecified() && addr.is_ipv6() && ipv6_missing(&e) => {
                TcpListener::bind(SocketAddr::from(([0, 0, 0, 0], addr.port())))
            }
            other => other,
        }
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
        listeners.push(listener);
    }
    Ok(listeners)
}

fn ipv6_missing(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EAFNOSUPPORT) | Some(libc::EADDRNOTAVAIL)
    )
}

/// Sessions per client address, released when a session ends.
#[derive(Default)]
struct PerIp(Mutex<HashMap<IpAddr, usize>>);

impl PerIp {
    fn try_add(&self, ip: IpAddr, limit: usize) -> bool {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let count = map.entry(ip).or_insert(0);
        if *count >= limit {
            return false;
        }
        *count += 1;
        true
    }

    fn remove(&self, ip: IpAddr) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = map.get_mut(&ip) {
            *count -= 1;
            if *count == 0 {
                map.remove(&ip);
            }
        }
    }
}

/// A connection for a worker.
struct Job {
    stream: TcpStream,
    /// The address its place in `PerIp` was counted under; None when that
    /// waits for the PROXY header.
    counted: Option<IpAddr>,
    /// Its place among the sessions waiting to log in.
    ticket: Ticket,
    /// It came to an implicit FTPS listener.
    implicit: bool,
}

/// The fixed pool: `max_clients` workers waiting on one queue. A connection is
/// queued only after a worker has been reserved for it, so it never waits.
pub struct Pool {
    ctx: Arc<Context>,
    idle: AtomicUsize,
    /// Sessions ended so far: the main thread gives free memory back after some.
    ended: AtomicU64,
    per_ip: PerIp,
    queue: SyncSender<Job>,
}

impl Pool {
    /// Starts the workers.
    pub fn start(ctx: Arc<Context>) -> io::Result<Arc<Pool>> {
        let workers = ctx.config.max_clients;
        let (queue, jobs) = mpsc::sync_channel(workers);
        let pool = Arc::new(Pool {
            ctx,
            idle: AtomicUsize::new(workers),
            ended: AtomicU64::new(0),
            per_ip: PerIp::default(),
            queue,
        });
        let jobs = Arc::new(Mutex::new(jobs));
        for n in 0..workers {
            let pool = Arc::clone(&pool);
            let jobs = Arc::clone(&jobs);
            std::thread::Builder::new()
                .name(format!("worker-{n}"))
                .stack_size(WORKER_STACK)
                .spawn(move || pool.work(&jobs))?;
        }
        Ok(pool)
    }

    fn work(&self, jobs: &Mutex<Receiver<Job>>) {
        let stack_low = crate::sys::stack_low_end().ok();
        loop {
            let job = jobs.lock().unwrap_or_else(|e| e.into_inner()).recv();
            let Ok(job) = job else {
                return;
            };
            self.serve(job);
            self.ended.fetch_add(1, Ordering::Relaxed);
            // A waiting worker keeps only the stack it needs to wait: after
            // a busy minute the pool returns to its idle memory.
            if let Some(low) = stack_low {
                crate::sys::release_stack_below(low);
            }
        }
    }

    /// Learns whom the connection serves (reading a PROXY header if there is
    /// a balancer in front), counts that address if the acceptor could not,
    /// and runs the session.
    fn serve(&self, job: Job) {
        let Job {
            stream,
            counted,
            ticket,
            implicit,
        } = job;
        let Some(arrival) = arrival_watching(&stream, &self.ctx, &ticket.evict) else {
            return self.release(counted, &ticket);
        };
        let ip = match counted {
            Some(ip) => ip,
            None => {
                let ip = arrival.peer.ip().to_canonical();
                // Behind a balancer the banned address is the one its header
                // names, known only now: the worker refuses before any session.
                if self.ctx.bans.refuses(ip) {
                    refuse(stream, arrival.peer, crate::ban::REFUSAL);
                    return self.release(None, &ticket);
                }
                if !self.ctx.waiting.settle(&ticket, ip) {
                    refuse(
                        stream,
                        arrival.peer,
                        "Too many connections waiting to log in; try again later.",
                    );
                    return self.release(None, &ticket);
                }
                if !self.per_ip.try_add(ip, self.ctx.config.max_per_ip) {
                    refuse(
                        stream,
                        arrival.peer,
                        "Too many connections from your address.",
                    );
                    return self.release(None, &ticket);
                }
                ip
            }
        };
        let start = session::Start {
            arrival,
            ticket,
            implicit,
        };
        self.serve_isolated(ip, |release| {
            session::run(stream, &self.ctx, start, release)
        });
    }

    /// Gives back what `admit` reserved for a connection that gets no session.
    fn release(&self, counted: Option<IpAddr>, ticket: &Ticket) {
        self.ctx.waiting.leave(ticket);
        if let Some(ip) = counted {
            self.per_ip.remove(ip);
        }
        self.idle.fetch_add(1, Ordering::SeqCst);
    }

    /// Runs one session. A panic in it ends that session only (and is
    /// logged); the worker lives on, and its place in the pool and the
    /// address's count are given back either way: by the session itself just
    /// before its last reply (the release function it is handed), else when
    /// it returns. False after a panic.
    fn serve_isolated(&self, ip: IpAddr, session: impl FnOnce(&dyn Fn())) -> bool {
        let held = AtomicBool::new(true);
        let release = || {
            if held.swap(false, Ordering::SeqCst) {
                self.per_ip.remove(ip);
                self.idle.fetch_add(1, Ordering::SeqCst);
            }
        };
        let finished = panic::catch_unwind(AssertUnwindSafe(|| session(&release))).is_ok();
        if !finished {
            log::error!("session from {ip} panicked; session closed");
        }
        release();
        finished
    }

    /// Sessions (and refused connections a worker handled) ended so far.
    pub fn ended(&self) -> u64 {
        self.ended.load(Ordering::Relaxed)
    }

    /// Sessions running now.
    pub fn busy(&self) -> usize {
        self.ctx.config.max_clients - self.idle.load(Ordering::SeqCst)
    }

    /// Reserves a worker (and a place for `ip`, when known), or says why there is none.
    fn admit(&self, ip: Option<IpAddr>) -> Result<Ticket, &'static str> {
        if self.ctx.shutdown.load(Ordering::SeqCst) {
            return Err("Server shutting down.");
        }
        if self
            .idle
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_err()
        {
            return Err("Too many users connected; try again later.");
        }
        if let Some(ip) = ip {
            if !self.per_ip.try_add(ip, self.ctx.config.max_per_ip) {
                self.idle.fetch_add(1, Ordering::SeqCst);
                return Err("Too many connections from your address.");
            }
        }
        let Some(ticket) = self.ctx.waiting.admit(ip) else {
            if let Some(ip) = ip {
                self.per_ip.remove(ip);
            }
            self.idle.fetch_add(1, Ordering::SeqCst);
            return Err("Too many connections waiting to log in; try again later.");
        };
        Ok(ticket)
    }

    /// Hands an accepted connection to a worker, or answers 421 and closes it
    /// (in clear text also on an implicit listener: a TLS client then fails
    /// its handshake at once instead of waiting). Behind a balancer the peer
    /// is the balancer: the client's address is counted by the worker once
    /// the header has named it.
    pub fn dispatch(&self, stream: TcpStream, implicit: bool) {
        let Ok(peer) = stream.peer_addr() else { return };
        let counted = match self.ctx.data.proxy {
            Some(_) => None,
            None => Some(peer.ip().to_canonical()),
        };
        if counted.is_some_and(|ip| self.ctx.bans.refuses(ip)) {
            return refuse(stream, peer, crate::ban::REFUSAL);
        }
        match self.admit(counted) {
            Ok(ticket) => {
                let job = Job {
                    stream,
                    counted,
                    ticket,
                    implicit,
                };
                if let Err(mpsc::TrySendError::Full(job) | mpsc::TrySendError::Disconnected(job)) =
                    self.queue.try_send(job)
                {
                    // Cannot happen while reservations are counted right; undo anyway.
                    self.release(counted, &job.ticket);
                }
            }
            Err(reason) => refuse(stream, peer, reason),
        }
    }
}

/// Answers 421 with the reason, logs it (the first of a flood in full, the
/// rest as a count: see `log::Refusals`), and closes.
fn refuse(mut stream: TcpStream, peer: SocketAddr, reason: &str) {
    let ip = peer.ip().to_canonical();
    if crate::log::first_refusal(ip, reason) {
        log::warn!("refused connection from {ip}: {reason}");
    }
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    let _ = stream.write_all(&crate::reply::format(crate::reply::UNAVAILABLE, reason));
}

/// Whom a new control connection serves: its peer, or, with PROXY protocol
/// on, the client the balancer's header names. None, after one log line with
/// the peer and the reason, when it must be closed without a greeting.
pub fn arrival(stream: &TcpStream, ctx: &Context) -> Option<Arrival> {
    arrival_watching(stream, ctx, &AtomicBool::new(false))
}

/// `arrival` for a connection in a waiting place: the header wait also ends
/// (None) when `evict` is set, its place given to a new client.
fn arrival_watching(stream: &TcpStream, ctx: &Context, evict: &AtomicBool) -> Option<Arrival> {
    let peer = stream.peer_addr().ok()?;
    let Some(relay) = &ctx.data.proxy else {
        return Some(Arrival::direct(peer));
    };
    match relay::identify_watching(stream, relay, relay.timeout, evict) {
        Ok(arrival) => Some(arrival),
        Err(reason) => {
            // A peer not in proxy_from can repeat this as fast as it
            // connects: counted like a refusal. A listed balancer's
            // failures are each worth a line.
            let throttled = !relay.trusts(peer.ip());
            if !throttled || crate::log::first_refusal(peer.ip().to_canonical(), &reason) {
                log::warn!("closed connection from {peer}: {reason}");
            }
            None
        }
    }
}

/// The 421 text when the process (EMFILE) or the system (ENFILE) has no
/// descriptor left for a connection or a login.
pub const OUT_OF_DESCRIPTORS: &str = "Server out of file descriptors; try again later.";

/// The process or the system is out of descriptors.
pub fn out_of_descriptors(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE))
}

/// A descriptor held in reserve, given up to accept and refuse a connection
/// when the table is full: without it, the connection would wait unanswered
/// in the backlog until a descriptor came free.
fn spare_descriptor(listener: &TcpListener) -> Option<OwnedFd> {
    listener.as_fd().try_clone_to_owned().ok()
}

/// Accepts on one listener forever, handing connections to the pool.
pub fn accept_loop(listener: TcpListener, pool: Arc<Pool>, implicit: bool) {
    let mut spare = spare_descriptor(&listener);
    loop {
        match listener.accept() {
            Ok((stream, _)) => pool.dispatch(stream, implicit),
            Err(e) if out_of_descriptors(&e) && spare.take().is_some() => {
                if let Ok((stream, peer)) = listener.accept() {
                    refuse(stream, peer, OUT_OF_DESCRIPTORS);
                }
                spare = spare_descriptor(&listener);
            }
            Err(e) => {
                // Counted like a refusal (of connections from anywhere):
                // this can repeat ten times a second.
                let what = format!("accept: {e}");
                if crate::log::first_refusal(IpAddr::from([0, 0, 0, 0]), &what) {
                    log::error!("{what}");
                }
                // EMFILE and friends: back off instead of spinning.
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// Starts one acceptor thread per listener; true marks an implicit FTPS one.
pub fn spawn_acceptors(listeners: Vec<(TcpListener, bool)>, pool: &Arc<Pool>) -> io::Result<()> {
    for (n, (listener, implicit)) in listeners.into_iter().enumerate() {
        let pool = Arc::clone(pool);
        std::thread::Builder::new()
            .name(format!("accept-{n}"))
            .stack_size(WORKER_STACK)
            .spawn(move || accept_loop(listener, pool, implicit))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{auth, config::Config, data, fs};
    use std::sync::atomic::AtomicBool;
    use std::sync::RwLock;

    fn pool(max_clients: usize, max_per_ip: usize) -> Arc<Pool> {
        let config = Config {
            max_clients,
            max_per_ip,
            ..Config::default()
        };
        let ctx = Context {
            config,
            root: fs::Root::open(std::path::Path::new("/")).unwrap(),
            users: RwLock::new(Arc::new(auth::Users::default())),
            data: data::Settings {
                accept_timeout: Duration::from_secs(1),
                connect_timeout: Duration::from_secs(1),
                data_timeout: Duration::from_secs(1),
                pasv_ports: None,
                from_port_20: false,
                proxy: None,
            },
            xferlog: None,
            hook: None,
            shutdown: AtomicBool::new(false),
            waiting: session::Waiting::new(max_clients, Duration::from_secs(60)),
            bans: crate::ban::Bans::new(0, Duration::from_secs(1)),
            #[cfg(feature = "tls")]
            tls: None,
        };
        Pool::start(Arc::new(ctx)).unwrap()
    }

    #[test]
    fn a_panicking_session_gives_its_worker_and_address_slot_back() {
        // Four workers: up to two sessions may wait to log in.
        let pool = pool(4, 1);
        let ip: IpAddr = "127.0.0.9".parse().unwrap();
        assert!(pool.admit(Some(ip)).is_ok());
        assert_eq!(pool.busy(), 1);
        assert!(pool.admit(Some(ip)).is_err(), "one session per address");
        assert!(!pool.serve_isolated(ip, |_| panic!("a bug in one session")));
        assert_eq!(pool.busy(), 0);
        assert!(
            pool.admit(Some(ip)).is_ok(),
            "the address may connect again"
        );
        assert!(pool.serve_isolated(ip, |_| {}));
        assert_eq!(pool.busy(), 0);
    }

    #[test]
    fn a_session_gives_its_slot_back_before_its_last_reply() {
        let pool = pool(4, 1);
        let ip: IpAddr = "127.0.0.13".parse().unwrap();
        assert!(pool.admit(Some(ip)).is_ok());
        assert!(pool.serve_isolated(ip, |release| {
            release();
            // The client saw the last reply and connects again at once.
            assert!(pool.admit(Some(ip)).is_ok());
            release(); // a second call gives nothing back twice
        }));
        assert_eq!(pool.busy(), 1, "only the new session holds a worker");
        assert!(pool.admit(Some(ip)).is_err(), "and its address's one slot");
    }

    #[test]
    fn at_most_half_the_pool_waits_to_log_in() {
        let pool = pool(4, 4);
        let ip: IpAddr = "127.0.0.12".parse().unwrap();
        let first = pool.admit(Some(ip)).unwrap();
        assert!(pool.admit(Some(ip)).is_ok());
        assert_eq!(
            pool.admit(Some(ip)).err(),
            Some("Too many connections waiting to log in; try again later.")
        );
        assert_eq!(pool.busy(), 2, "a refused connection holds no worker");
        pool.ctx.waiting.leave(&first); // one session logs in
        assert!(pool.admit(Some(ip)).is_ok());
    }

    #[test]
    fn a_full_pool_refuses_with_a_reason() {
        let pool = pool(1, 1);
        let a: IpAddr = "127.0.0.10".parse().unwrap();
        let b: IpAddr = "127.0.0.11".parse().unwrap();
        assert!(pool.admit(Some(a)).is_ok());
        assert_eq!(
            pool.admit(Some(b)).err(),
            Some("Too many users connected; try again later.")
        );
    }
}
