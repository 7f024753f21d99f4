//! The data channel: its stream type, PASV/EPSV listeners, PORT/EPRT connects, and what
//! the transfer loops (send.rs, receive.rs, splice.rs) wait with.
//! The client names active targets (its own address, ports of 1024 up), races for passive ports
//! (other peers are dropped) and sets the pace: rate limit, stall timeout, ABOR polled meanwhile.

mod receive;
mod send;
mod splice;

pub use receive::receive;
pub use send::{send_ascii, send_binary};

use crate::sys;
use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Binary downloads go out in slices of this size; between slices the control
/// connection is checked for ABOR.
const SENDFILE_SLICE: usize = 1 << 20;
/// Upload and ASCII buffer. Large reads cut syscalls per byte; 256 KiB moved
/// uploads at the speed of the disk in measurements, and the buffer only exists
/// while a transfer runs.
const COPY_BUFFER: usize = 256 * 1024;
/// How many uploaded bytes pass between two checks of the control connection.
const ABORT_CHECK_BYTES: u64 = 4 << 20;

/// Read, Write and AsFd for a stream enum, each call passed on to the
/// transport under the variant. The control and the data stream share it, so
/// a new transport (TLS) adds its arms here once.
macro_rules! stream_io {
    ($stream:ty) => {
        impl std::io::Read for $stream {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                match self {
                    Self::Plain(tcp) => std::io::Read::read(tcp, buf),
                    #[cfg(feature = "tls")]
                    Self::Tls(tls) => std::io::Read::read(&mut **tls, buf),
                }
            }
        }

        impl std::io::Write for $stream {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                match self {
                    Self::Plain(tcp) => std::io::Write::write(tcp, buf),
                    #[cfg(feature = "tls")]
                    Self::Tls(tls) => std::io::Write::write(&mut **tls, buf),
                }
            }

            fn flush(&mut self) -> std::io::Result<()> {
                match self {
                    Self::Plain(tcp) => std::io::Write::flush(tcp),
                    #[cfg(feature = "tls")]
                    Self::Tls(tls) => std::io::Write::flush(&mut **tls),
                }
            }
        }

        /// The descriptor a transfer polls.
        impl std::os::fd::AsFd for $stream {
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                match self {
                    Self::Plain(tcp) => std::os::fd::AsFd::as_fd(tcp),
                    #[cfg(feature = "tls")]
                    Self::Tls(tls) => std::os::fd::AsFd::as_fd(&**tls),
                }
            }
        }
    };
}
pub(crate) use stream_io;

/// An open data connection: plain TCP or (PROT P) TLS, so the transfer loops
/// are written once. Binary downloads pick sendfile(2) for plain TCP, the one
/// variant it serves, in one place, `send_binary`.
pub enum DataStream {
    Plain(TcpStream),
    #[cfg(feature = "tls")]
    Tls(Box<crate::tls::TlsStream>),
}

impl DataStream {
    fn tcp(&self) -> &TcpStream {
        match self {
            DataStream::Plain(tcp) => tcp,
            #[cfg(feature = "tls")]
            DataStream::Tls(tls) => tls.tcp(),
        }
    }

    /// Non-blocking during a transfer: `Watch::wait` polls it with the control
    /// connection, so ABOR is heard and a stall times out.
    fn set_nonblocking(&self) -> io::Result<()> {
        self.tcp().set_nonblocking(true)
    }

    /// Applies the data timeout to both directions (listings write blocking).
    pub fn set_timeouts(&self, timeout: Duration) -> io::Result<()> {
        self.tcp().set_read_timeout(Some(timeout))?;
        self.tcp().set_write_timeout(Some(timeout))
    }
}

stream_io!(DataStream);

/// The data connection the next transfer will use, as set up by PASV/PORT.
#[derive(Debug, Default)]
pub enum Pending {
    #[default]
    None,
    Passive(TcpListener),
    Active(SocketAddr),
}

/// The timeouts and ports a data connection obeys.
#[derive(Clone, Debug)]
pub struct Settings {
    pub accept_timeout: Duration,
    pub connect_timeout: Duration,
    pub data_timeout: Duration,
    pub pasv_ports: Option<(u16, u16)>,
    /// Active connections leave from port 20 (connect_from_port_20).
    pub from_port_20: bool,
    /// PROXY protocol on: passive connections come through a balancer too.
    pub proxy: Option<crate::relay::Relay>,
}

/// Why a PORT or EPRT target is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    OtherHost,
    ReservedPort,
}

/// A PORT/EPRT target must be the control peer's own address and an
/// unprivileged port: anything else is an FTP bounce attack.
pub fn check_active_target(target: SocketAddr, control_peer: IpAddr) -> Result<(), Refusal> {
    if target.ip().to_canonical() != control_peer.to_canonical() {
        Err(Refusal::OtherHost)
    } else if target.port() < 1024 {
        Err(Refusal::ReservedPort)
    } else {
        Ok(())
    }
}

/// Opens a passive listener on `local` (the control connection's local address),
/// on a free port of the configured range.
pub fn listen_passive(local: IpAddr, settings: &Settings) -> io::Result<TcpListener> {
    let local = local.to_canonical();
    let (lo, hi) = settings.pasv_ports.unwrap_or(ANY_PASSIVE_PORT);
    let span = u32::from(hi - lo) + 1;
    // Start at a varying point so that concurrent sessions do not all fight
    // for the same ports.
    let start = passive_port_seed();
    let mut last_err = io::Error::from(io::ErrorKind::AddrInUse);
    for i in 0..span.min(MAX_PORT_ATTEMPTS) {
        let port = lo + (start.wrapping_add(i) % span) as u16;
        // std sets SO_REUSEADDR, so a port whose old connections linger in
        // TIME_WAIT is free for a new listener.
        match TcpListener::bind((local, port)) {
            Ok(listener) => return Ok(listener),
            Err(e) => last_err = e,
        }
    }
    match settings.pasv_ports {
        None => TcpListener::bind((local, 0)),
        Some(_) => Err(last_err),
    }
}

/// Where passive ports come from when no range is configured: the
/// unprivileged ports, as vsftpd does. Not port 0: with tens of thousands of
/// connections in TIME_WAIT (a busy server) the kernel's search for a free
/// ephemeral port took milliseconds per PASV, measured by the small-files bench.
const ANY_PASSIVE_PORT: (u16, u16) = (1024, 65535);
/// Ports tried before giving up on a range.
const MAX_PORT_ATTEMPTS: u32 = 1000;

fn passive_port_seed() -> u32 {
    use std::sync::atomic::AtomicU32;
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    // xorshift over time and a counter: cheap, and different for every call.
    let mut x = nanos ^ COUNTER.fetch_add(0x9e37_79b9, Ordering::Relaxed);
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    x
}

/// Waits for the client's passive connection. A connection from any other
/// address is closed at once and logged, and the wait goes on: a racing
/// attacker can neither steal the data nor break the real client's transfer.
/// Behind a balancer (`proxy`) the address compared is the one its PROXY
/// header names, read within what is left of the wait. The control
/// connection is watched meanwhile: a client that goes away (or sends ABOR)
/// frees the worker at once instead of after `timeout`, so EPSV, RETR and a
/// hang-up cannot hold a worker for the whole accept wait.
pub fn accept_passive(
    listener: &TcpListener,
    control_peer: IpAddr,
    timeout: Duration,
    proxy: Option<&crate::relay::Relay>,
    control: &mut dyn ControlLink,
) -> io::Result<TcpStream> {
    let deadline = Instant::now() + timeout;
    loop {
        wait_watching_control(listener.as_fd(), sys::POLLIN, deadline, control)?;
        let left = deadline.saturating_duration_since(Instant::now());
        let (stream, addr) = listener.accept()?;
        let addr = match proxy {
            None => addr,
            Some(relay) => match crate::relay::identify(&stream, relay, left) {
                Ok(arrival) => arrival.peer,
                Err(reason) => {
                    log::warn!("refused passive data connection from {addr}: {reason}");
                    continue;
                }
            },
        };
        if addr.ip().to_canonical() == control_peer.to_canonical() {
            return Ok(stream);
        }
        log::warn!(
            "refused passive data connection from {} (control connection is from {})",
            addr,
            control_peer
        );
        drop(stream);
    }
}

/// Connects to the client for an active-mode transfer, from `local` (the
/// control connection's local address) port 20 when so configured.
/// The control connection is watched while the connect waits, as the
/// passive accept does: a hang-up frees the worker, ABOR ends the wait.
pub fn connect_active(
    target: SocketAddr,
    local: IpAddr,
    settings: &Settings,
    control: &mut dyn ControlLink,
) -> io::Result<TcpStream> {
    let stream = if settings.from_port_20 {
        sys::start_connect(
            Some(SocketAddr::new(local.to_canonical(), 20)),
            SocketAddr::new(target.ip().to_canonical(), target.port()),
        )?
    } else {
        sys::start_connect(None, target)?
    };
    let deadline = Instant::now() + settings.connect_timeout;
    wait_watching_control(stream.as_fd(), sys::POLLOUT, deadline, control)?;
    sys::finish_connect(&stream)?;
    Ok(stream)
}

/// Waits until `fd` is ready for `events`, watching the control connection
/// meanwhile: its end is an error (the worker is freed at once), ABOR is
/// `Interrupted`, and `deadline` passing is `TimedOut`. Other commands stay
/// queued in the control buffer.
fn wait_watching_control(
    fd: BorrowedFd,
    events: i16,
    deadline: Instant,
    control: &mut dyn ControlLink,
) -> io::Result<()> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::from(io::ErrorKind::TimedOut));
        }
        let ready = sys::poll(&[(fd, events), (control.fd(), sys::POLLIN)], Some(left))?;
        if ready[1] != 0 && control.abort_requested()? {
            return Err(io::Error::new(io::ErrorKind::Interrupted, "ABOR"));
        }
        if ready[0] != 0 {
            return Ok(());
        }
    }
}

/// Keeps a transfer at or below `rate` bytes per second (0: unlimited) by
/// sleeping whenever it runs ahead of schedule.
pub struct Throttle {
    rate: u64,
    start: Instant,
}

impl Throttle {
    pub fn new(rate: u64) -> Throttle {
        Throttle {
            rate,
            start: Instant::now(),
        }
    }

    /// Sleeps until `moved` bytes are due.
    fn pace(&self, moved: u64) {
        if self.rate == 0 {
            return;
        }
        let due = Duration::from_secs_f64(moved as f64 / self.rate as f64);
        if let Some(ahead) = due.checked_sub(self.start.elapsed()) {
            std::thread::sleep(ahead);
        }
    }

    /// The largest amount to move at once: a tenth of a second's worth, so
    /// the pace stays smooth.
    fn slice(&self, max: usize) -> usize {
        if self.rate == 0 {
            max
        } else {
            (self.rate / 10).clamp(1024, max as u64) as usize
        }
    }
}

/// Why a transfer did not finish.
#[derive(Debug)]
pub enum Failure {
    /// The client sent ABOR.
    Aborted,
    /// The data connection broke, stalled past `data_timeout`, or the control
    /// connection went away.
    Network(io::Error),
    /// Reading or writing the local file failed.
    File(io::Error),
}

/// Bytes moved, or why the transfer stopped and how far it got.
pub type Outcome = Result<u64, (Failure, u64)>;

/// The control connection as a transfer sees it: a descriptor to wait on,
/// and whether the client has sent ABOR (or vanished) meanwhile.
pub trait ControlLink {
    fn fd(&self) -> BorrowedFd<'_>;
    fn abort_requested(&mut self) -> io::Result<bool>;
    /// Control input already read from the socket but not yet looked at
    /// (TLS decrypts whole records): polling the socket would not show it.
    fn buffered(&mut self) -> bool {
        false
    }
}

/// What a transfer watches besides its data socket: the control connection
/// (for ABOR), the stall timeout, and the rate limit. The data socket is
/// non-blocking during a transfer, so a client that stops reading or sending
/// can still abort, and a stall is noticed after `timeout`.
pub struct Watch<'a> {
    pub control: &'a mut dyn ControlLink,
    pub timeout: Duration,
    pub throttle: Throttle,
    since_check: u64,
}

impl<'a> Watch<'a> {
    pub fn new(control: &'a mut dyn ControlLink, timeout: Duration, rate: u64) -> Watch<'a> {
        Watch {
            control,
            timeout,
            throttle: Throttle::new(rate),
            since_check: 0,
        }
    }

    fn check_abort(&mut self, moved: u64) -> Result<(), (Failure, u64)> {
        self.since_check = 0;
        match self.control.abort_requested() {
            Ok(false) => Ok(()),
            Ok(true) => Err((Failure::Aborted, moved)),
            Err(e) => Err((Failure::Network(e), moved)),
        }
    }

    /// Counts progress; paces to the rate limit and, every few megabytes,
    /// looks for ABOR even while the data socket never has to wait.
    fn progress(&mut self, n: usize, moved: u64) -> Result<(), (Failure, u64)> {
        self.since_check += n as u64;
        self.throttle.pace(moved);
        if self.since_check >= ABORT_CHECK_BYTES {
            self.check_abort(moved)?;
        }
        Ok(())
    }

    /// Waits until `sock` is ready for `events`, handling control input meanwhile.
    fn wait(&mut self, sock: BorrowedFd, events: i16, moved: u64) -> Result<(), (Failure, u64)> {
        let deadline = Instant::now() + self.timeout;
        if self.control.buffered() {
            self.check_abort(moved)?;
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let stalled = io::Error::new(io::ErrorKind::TimedOut, "data connection stalled");
                return Err((Failure::Network(stalled), moved));
            }
            let ready = sys::poll(
                &[(sock, events), (self.control.fd(), sys::POLLIN)],
                Some(left),
            )
            .map_err(|e| (Failure::Network(e), moved))?;
            if ready[1] != 0 {
                self.check_abort(moved)?;
            }
            if ready[0] != 0 {
                return Ok(());
            }
        }
    }
}

fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

fn nonblocking(sock: &DataStream) -> Result<(), (Failure, u64)> {
    sock.set_nonblocking().map_err(|e| (Failure::Network(e), 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounce_targets_are_refused() {
        let peer: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(
            check_active_target("127.0.0.1:2000".parse().unwrap(), peer),
            Ok(())
        );
        assert_eq!(
            check_active_target("127.0.0.2:2000".parse().unwrap(), peer),
            Err(Refusal::OtherHost)
        );
        assert_eq!(
            check_active_target("127.0.0.1:25".parse().unwrap(), peer),
            Err(Refusal::ReservedPort)
        );
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert_eq!(
            check_active_target("127.0.0.1:2000".parse().unwrap(), mapped),
            Ok(())
        );
    }

    #[test]
    fn throttle_slices_follow_the_rate() {
        assert_eq!(Throttle::new(0).slice(1 << 20), 1 << 20);
        assert_eq!(Throttle::new(100_000).slice(1 << 20), 10_000);
        assert_eq!(Throttle::new(10).slice(1 << 20), 1024);
    }

    #[test]
    fn passive_ports_stay_in_range() {
        let settings = Settings {
            accept_timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(1),
            data_timeout: Duration::from_secs(1),
            pasv_ports: Some((40100, 40110)),
            from_port_20: false,
            proxy: None,
        };
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let listeners: Vec<_> = (0..3)
            .map(|_| listen_passive(ip, &settings).unwrap())
            .collect();
        for l in &listeners {
            let port = l.local_addr().unwrap().port();
            assert!((40100..=40110).contains(&port), "port {port}");
        }
    }
}
