//! Opening a data connection: PASV/EPSV listeners, PORT/EPRT connects, and (PROT P) its TLS
//! handshake, each waiting with an eye on the control connection. The client names active targets
//! (its own address, ports of 1024 up only), races for passive ports (other peers are dropped) and
//! paces the handshake; `accept_timeout`, `connect_timeout` and the handshake deadline bound the
//! waits, and ABOR or a hang-up ends them at once.

use super::ControlLink;
#[cfg(feature = "tls")]
use super::DataStream;
use crate::sys;
use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

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

/// Which way a transfer's data flows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Downloads and listings: the client reads to the end.
    ToClient,
    /// Uploads: the client only writes, and then closes.
    FromClient,
}

/// The longest a data connection's TLS handshake may take (less when
/// `data_timeout` is shorter). A handshake is a round trip or two; a client
/// that connects and then says nothing holds a worker no longer than this.
#[cfg(feature = "tls")]
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);

/// PROT P: the TLS handshake on an open data connection, within
/// `TLS_HANDSHAKE_TIMEOUT` (or `data_timeout` if shorter), watching the
/// control connection as the accept and connect waits do: ABOR ends it
/// (`Interrupted`), a hang-up frees the worker at once.
#[cfg(feature = "tls")]
pub fn secure(
    tcp: TcpStream,
    tls: &crate::tls::SessionTls,
    direction: Direction,
    settings: &Settings,
    require_reuse: bool,
    control: &mut dyn ControlLink,
) -> io::Result<DataStream> {
    tcp.set_write_timeout(Some(settings.data_timeout))?;
    let deadline = Instant::now() + settings.data_timeout.min(TLS_HANDSHAKE_TIMEOUT);
    let mut wait = |fd: BorrowedFd, events| wait_watching_control(fd, events, deadline, control);
    let stream = tls.data(tcp, direction, require_reuse, &mut wait)?;
    Ok(DataStream::Tls(Box::new(stream)))
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
    // An ABOR rustls already decrypted leaves the control socket quiet.
    if control.buffered() && control.abort_requested()? {
        return Err(io::Error::new(io::ErrorKind::Interrupted, "ABOR"));
    }
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
