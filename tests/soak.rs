//! Load and soak: 200 concurrent sessions for a minute (MINFTPD_SOAK_SECS)
//! mixing logins, listings (LIST and MLSD of a directory that grows all
//! along), downloads, and uploads of up to a few megabytes resumed with
//! REST, all with checksums, while a second thread cuts client connections
//! at random and sessions reset their own mid-transfer. Run with `make soak`.

use crate::common::*;
use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod memory;

use memory::*;

const SESSIONS: usize = 200;
const FILES: usize = 8;
/// Acknowledged transfers each second of the run must reach at least.
const MIN_TRANSFERS_PER_SEC: u64 = 100;

fn checksum(bytes: &[u8]) -> u64 {
    // FNV-1a: enough to tell a truncated or mangled file from the right one.
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// The file that downloads cut by a reset read from: larger than the
/// socket buffers, so the server is mid-write when the reset comes.
const BIG_FILE: usize = 4 << 20;
/// Largest upload resumed with REST.
const BIG_UPLOAD: usize = 4 << 20;

fn file_bytes(n: usize) -> Vec<u8> {
    let mut data = pattern(16 * 1024 + n * 40_000);
    data[0] = n as u8;
    data
}

/// What happened, counted by kind: every session ends either complete, cut
/// by the killer, or with a protocol error, which the test does not allow.
#[derive(Default)]
struct Figures {
    /// Logged in.
    sessions: AtomicU64,
    /// Ran to QUIT and its 221.
    complete: AtomicU64,
    /// Transfers that got their 226.
    acknowledged: AtomicU64,
    bytes: AtomicU64,
    /// Connections the killer shut down.
    cut: AtomicU64,
    /// Sessions that failed after a cut: the expected failures.
    cut_sessions: AtomicU64,
    /// Sessions that failed without a cut, by kind of error.
    errors: Mutex<HashMap<String, u64>>,
    bad: Mutex<Vec<String>>,
}

impl Figures {
    fn outcome(&self, result: std::io::Result<()>, was_cut: bool) {
        match result {
            Ok(()) => {
                self.complete.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) if was_cut => {
                self.cut_sessions.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                // An unexpected reply is an Other error carrying its text.
                let kind = match e.kind() {
                    std::io::ErrorKind::Other => e.to_string(),
                    kind => format!("{kind:?}"),
                };
                *self.errors.lock().unwrap().entry(kind).or_default() += 1;
            }
        }
    }
}

/// A tiny xorshift generator, so the test needs no crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Connections the killer may cut, by session number.
type Victims = Arc<Mutex<HashMap<usize, TcpStream>>>;
/// Sessions the killer cut in their current round.
type Cut = Arc<Mutex<HashSet<usize>>>;

/// One FTP exchange that may fail at any point (the killer cuts sockets):
/// errors are expected, wrong data after a 226 is not.
struct Client {
    ctl: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    fn open(addr: SocketAddr) -> std::io::Result<Client> {
        let ctl = TcpStream::connect_timeout(&addr, TIMEOUT)?;
        ctl.set_read_timeout(Some(TIMEOUT))?;
        ctl.set_write_timeout(Some(TIMEOUT))?;
        let mut client = Client {
            ctl,
            buf: Vec::new(),
        };
        client.expect(220)?;
        Ok(client)
    }

    /// The next CRLF-terminated line from the control connection.
    fn line(&mut self) -> std::io::Result<Vec<u8>> {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\r\n") {
                return Ok(self.buf.drain(..end + 2).collect());
            }
            let mut chunk = [0u8; 4096];
            let n = self.ctl.read(&mut chunk)?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// The code of the next reply (skipping the inner lines of multi-line ones).
    fn reply(&mut self) -> std::io::Result<(u16, String)> {
        loop {
            let line = self.line()?;
            if line.len() >= 4 && line[3] == b' ' {
                let code = std::str::from_utf8(&line[..3])
                    .ok()
                    .and_then(|c| c.parse().ok());
                let text = String::from_utf8_lossy(&line[4..]).trim_end().to_string();
                return code
                    .map(|code| (code, text))
                    .ok_or_else(|| std::io::Error::other("bad reply"));
            }
        }
    }

    /// The next reply must be `code`; else an error naming what came (its
    /// text too, so that the failure kinds say which limit refused).
    fn expect(&mut self, code: u16) -> std::io::Result<()> {
        let (got, text) = self.reply()?;
        if got == code {
            Ok(())
        } else {
            Err(std::io::Error::other(format!(
                "expected {code}, got {got} {text}"
            )))
        }
    }

    fn cmd(&mut self, line: &str, code: u16) -> std::io::Result<()> {
        self.ctl.write_all(format!("{line}\r\n").as_bytes())?;
        self.expect(code)
    }

    fn data(&mut self) -> std::io::Result<TcpStream> {
        self.ctl.write_all(b"EPSV\r\n")?;
        let text = self.line()?;
        let text = String::from_utf8_lossy(&text);
        let port: u16 = text
            .split('|')
            .nth(3)
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| std::io::Error::other(text.to_string()))?;
        let addr = SocketAddr::new(self.ctl.peer_addr()?.ip(), port);
        let data = TcpStream::connect_timeout(&addr, TIMEOUT)?;
        data.set_read_timeout(Some(TIMEOUT))?;
        data.set_write_timeout(Some(TIMEOUT))?;
        Ok(data)
    }
}

/// What the uploads left on disk: for names written once, (name, checksum,
/// length); for the one resumable name of each session, the last state a
/// 226 confirmed, or None while an upload to it is under way (a cut one
/// leaves either state).
struct Uploads {
    once: Mutex<Vec<(String, u64, usize)>>,
    resumed: Mutex<HashMap<String, Option<(u64, usize)>>>,
}

/// Ends a session as a client that vanishes does: a reset on the control
/// connection and on the data connection, mid-transfer.
fn reset(client: Client, data: TcpStream, id: usize, cut: &Cut) -> std::io::Result<()> {
    minftpd::sys::reset_on_close(&data)?;
    minftpd::sys::reset_on_close(&client.ctl)?;
    cut.lock().unwrap().insert(id);
    Err(std::io::Error::other("reset by the client"))
}

/// An upload of a few megabytes in two parts: STOR of the first, then REST
/// and STOR of the rest, each confirmed by its 226.
fn resumed_upload(
    client: &mut Client,
    name: &str,
    body: &[u8],
    uploads: &Uploads,
) -> std::io::Result<()> {
    let split = body.len() / 3;
    for (offset, part) in [(0, &body[..split]), (split, &body[split..])] {
        uploads
            .resumed
            .lock()
            .unwrap()
            .insert(name.to_string(), None);
        if offset > 0 {
            client.cmd(&format!("REST {offset}"), 350)?;
        }
        let mut data = client.data()?;
        client.cmd(&format!("STOR {name}"), 150)?;
        data.write_all(part)?;
        drop(data);
        client.expect(226)?;
        let done = &body[..offset + part.len()];
        uploads
            .resumed
            .lock()
            .unwrap()
            .insert(name.to_string(), Some((checksum(done), done.len())));
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn one_session(
    addr: SocketAddr,
    id: usize,
    round: u64,
    rng: &mut Rng,
    victims: &Victims,
    cut: &Cut,
    figures: &Figures,
    uploads: &Uploads,
) -> std::io::Result<()> {
    let mut client = Client::open(addr)?;
    victims.lock().unwrap().insert(id, client.ctl.try_clone()?);
    let named = rng.below(2) == 0;
    if named {
        client.cmd("USER rw", 331)?;
        client.cmd("PASS pw", 230)?;
    } else {
        client.cmd("USER anonymous", 331)?;
        client.cmd("PASS soak@", 230)?;
    }
    figures.sessions.fetch_add(1, Ordering::Relaxed);
    client.cmd("TYPE I", 200)?;
    for op in 0..1 + rng.below(4) {
        // Named sessions upload too; anonymous ones only read.
        let kind = rng.below(if named { 7 } else { 5 });
        match kind {
            0 => {
                let mut data = client.data()?;
                client.cmd("LIST /files", 150)?;
                let mut listing = Vec::new();
                data.read_to_end(&mut listing)?;
                client.expect(226)?;
                let lines = listing
                    .split(|&b| b == b'\n')
                    .filter(|l| !l.is_empty())
                    .count();
                if lines != FILES {
                    figures
                        .bad
                        .lock()
                        .unwrap()
                        .push(format!("a 226 listing had {lines} lines"));
                }
            }
            1 => {
                let n = rng.below(FILES);
                let mut data = client.data()?;
                client.cmd(&format!("RETR /files/f{n}"), 150)?;
                let mut got = Vec::new();
                data.read_to_end(&mut got)?;
                client.expect(226)?;
                figures.acknowledged.fetch_add(1, Ordering::Relaxed);
                figures.bytes.fetch_add(got.len() as u64, Ordering::Relaxed);
                if checksum(&got) != checksum(&file_bytes(n)) {
                    figures
                        .bad
                        .lock()
                        .unwrap()
                        .push(format!("RETR f{n}: {} bytes after 226", got.len()));
                }
            }
            2 | 3 => {
                // A directory that grows all along: its listing buffers
                // grow with it, in every size.
                let verb = if kind == 2 { "LIST" } else { "MLSD" };
                let mut data = client.data()?;
                client.cmd(&format!("{verb} /up"), 150)?;
                let mut listing = Vec::new();
                data.read_to_end(&mut listing)?;
                client.expect(226)?;
            }
            4 => {
                // A download cut by a reset once part of it has arrived.
                let mut data = client.data()?;
                client.cmd("RETR /big/file", 150)?;
                let mut part = vec![0u8; 64 * 1024 + rng.below(BIG_FILE / 2)];
                data.read_exact(&mut part)?;
                return reset(client, data, id, cut);
            }
            5 if rng.below(4) == 0 => {
                // An upload cut by a reset halfway.
                let mut data = client.data()?;
                client.cmd(&format!("STOR up/s{id}-resumed"), 150)?;
                uploads
                    .resumed
                    .lock()
                    .unwrap()
                    .insert(format!("up/s{id}-resumed"), None);
                data.write_all(&pattern(1000 + rng.below(BIG_UPLOAD)))?;
                return reset(client, data, id, cut);
            }
            5 => {
                let body = pattern(1000 + rng.below(BIG_UPLOAD));
                let name = format!("up/s{id}-resumed");
                resumed_upload(&mut client, &name, &body, uploads)?;
                figures.acknowledged.fetch_add(2, Ordering::Relaxed);
                figures
                    .bytes
                    .fetch_add(body.len() as u64, Ordering::Relaxed);
            }
            _ => {
                let name = format!("up/s{id}-{round}-{op}");
                let len = 1000 + rng.below(300_000);
                let body = pattern(len);
                let mut data = client.data()?;
                client.cmd(&format!("STOR {name}"), 150)?;
                data.write_all(&body)?;
                drop(data);
                client.expect(226)?;
                figures.acknowledged.fetch_add(1, Ordering::Relaxed);
                figures.bytes.fetch_add(len as u64, Ordering::Relaxed);
                uploads
                    .once
                    .lock()
                    .unwrap()
                    .push((name, checksum(&body), len));
            }
        }
    }
    client.cmd("QUIT", 221)?;
    // The server closes after 221; waiting for that also keeps this client
    // from reconnecting while its old session still holds a worker.
    match client.line() {
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {}
        other => return Err(std::io::Error::other(format!("open after QUIT: {other:?}"))),
    }
    victims.lock().unwrap().remove(&id);
    Ok(())
}

#[test]
#[ignore = "a minute of load: run with `make soak`"]
fn soak_200_sessions_with_random_cuts() {
    let secs: u64 = std::env::var("MINFTPD_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let root = TempDir::new("soak");
    for n in 0..FILES {
        root.write(&format!("files/f{n}"), &file_bytes(n));
    }
    root.write("big/file", &pattern(BIG_FILE));
    root.mkdir("up");
    let etc = TempDir::new("soak-etc");
    let users = users_file(&etc, &[("rw", "pw", "/", "rw")]);
    // MINFTPD_SOAK_BIN: another build of the server (the static musl one)
    // under the same load.
    let program = std::env::var("MINFTPD_SOAK_BIN").unwrap_or_else(|_| BIN.to_string());
    let mut server = Server::launch(
        &program,
        &["--listen", "127.0.0.1:0"],
        root,
        &[
            "-A",
            "-w",
            "-U",
            users.to_str().unwrap(),
            // Room for the sessions the killer cut and the server has not
            // yet seen end: a full pool is tested elsewhere, not here.
            "--max-clients",
            &WORKERS.to_string(),
            "--max-per-ip",
            &WORKERS.to_string(),
            "-o",
            "idle_timeout=30",
            "-o",
            "data_timeout=20",
        ],
    );
    // One session first, so that the pool is up before the idle figures.
    server.connect().login("anonymous", "x");
    let idle_threads = server.threads();
    let idle = Memory::of(&server);
    let figures = Arc::new(Figures::default());
    let victims: Victims = Arc::new(Mutex::new(HashMap::new()));
    let cut: Cut = Arc::new(Mutex::new(HashSet::new()));
    let uploads = Arc::new(Uploads {
        once: Mutex::new(Vec::new()),
        resumed: Mutex::new(HashMap::new()),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let addr = server.addr;
    let mut workers = Vec::new();
    for id in 0..SESSIONS {
        let (figures, victims, uploads, cut) = (
            Arc::clone(&figures),
            Arc::clone(&victims),
            Arc::clone(&uploads),
            Arc::clone(&cut),
        );
        workers.push(std::thread::spawn(move || {
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ ((id as u64 + 1) * 0x1234_5678_9abc));
            let mut round = 0u64;
            while Instant::now() < deadline {
                round += 1;
                let result = one_session(
                    addr, id, round, &mut rng, &victims, &cut, &figures, &uploads,
                );
                victims.lock().unwrap().remove(&id);
                // The killer only cuts what is in `victims`: after the removal
                // above, the mark is this round's and only this round's.
                let was_cut = cut.lock().unwrap().remove(&id);
                figures.outcome(result, was_cut);
            }
        }));
    }
    let killer = {
        let (victims, figures, stop, cut) = (
            Arc::clone(&victims),
            Arc::clone(&figures),
            Arc::clone(&stop),
            Arc::clone(&cut),
        );
        std::thread::spawn(move || {
            let mut rng = Rng(42);
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(20));
                let map = victims.lock().unwrap();
                if map.is_empty() {
                    continue;
                }
                let pick = rng.below(map.len());
                if let Some((id, stream)) = map.iter().nth(pick) {
                    cut.lock().unwrap().insert(*id);
                    let _ = stream.shutdown(Shutdown::Both);
                    figures.cut.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    let mut peak = idle;
    let mut peak_threads = 0;
    while Instant::now() < deadline {
        peak = peak.max(Memory::of(&server));
        peak_threads = peak_threads.max(server.threads());
        std::thread::sleep(Duration::from_millis(500));
    }
    for worker in workers {
        worker.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    killer.join().unwrap();
    let load_ended = Instant::now();

    // Let cut sessions notice and end, bounded.
    let settle = Instant::now() + TIMEOUT;
    while Instant::now() < settle && !server.root.names("up").iter().all(|n| !n.starts_with('.')) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let bad = figures.bad.lock().unwrap().clone();
    assert!(
        bad.is_empty(),
        "acknowledged transfers with wrong data: {bad:?}"
    );
    let resumed = uploads.resumed.lock().unwrap();
    let confirmed = resumed
        .iter()
        .filter_map(|(name, state)| Some((name, (*state)?.0, (*state)?.1)));
    for (name, sum, len) in uploads
        .once
        .lock()
        .unwrap()
        .iter()
        .map(|(n, s, l)| (n, *s, *l))
        .chain(confirmed)
    {
        let on_disk = server.root.read(name);
        assert_eq!(
            (on_disk.len(), checksum(&on_disk)),
            (len, sum),
            "{name} differs from what was acknowledged"
        );
    }
    assert_no_temp_files(&server.root, "up");
    server.assert_running();
    let after_threads = server.threads();
    std::thread::sleep(AFTER_LOAD.saturating_sub(load_ended.elapsed()));
    let after = Memory::of(&server);
    let errors = figures.errors.lock().unwrap().clone();
    let acknowledged = figures.acknowledged.load(Ordering::Relaxed);
    println!(
        "soak: {} s, sessions served {}, complete {}, cut {}, failed otherwise {errors:?}, transfers acknowledged {}, bytes moved {}, connections cut {}, threads idle/peak/after {}/{}/{}, RSS KiB idle/peak/after {}/{}/{}, PSS KiB idle/peak/after {}/{}/{} (after: {} s after the load; bound {} / {})",
        secs,
        figures.sessions.load(Ordering::Relaxed),
        figures.complete.load(Ordering::Relaxed),
        figures.cut_sessions.load(Ordering::Relaxed),
        acknowledged,
        figures.bytes.load(Ordering::Relaxed),
        figures.cut.load(Ordering::Relaxed),
        idle_threads,
        peak_threads,
        after_threads,
        idle.rss,
        peak.rss,
        after.rss,
        idle.pss,
        peak.pss,
        after.pss,
        AFTER_LOAD.as_secs(),
        memory_bound(idle.rss),
        memory_bound(idle.pss),
    );
    assert!(
        errors.is_empty(),
        "sessions failed without being cut: {errors:?}"
    );
    // A minute moves thousands; a short run (MINFTPD_SOAK_SECS) still must
    // move its share, so a server that refuses every transfer fails.
    let minimum = MIN_TRANSFERS_PER_SEC * secs;
    assert!(
        acknowledged >= minimum,
        "{acknowledged} transfers acknowledged in {secs} s, below {minimum}"
    );
    assert!(
        figures.complete.load(Ordering::Relaxed) > SESSIONS as u64,
        "the load did not run"
    );
    assert_eq!(
        after_threads, idle_threads,
        "the fixed pool keeps its thread count"
    );
    // Buffers that live only during a transfer must not stay in the process.
    assert!(
        after.rss <= memory_bound(idle.rss) && after.pss <= memory_bound(idle.pss),
        "memory did not come back: {after:?} KiB {} s after the load, idle {idle:?}; largest mappings:\n{}",
        AFTER_LOAD.as_secs(),
        largest_mappings(&server, 8)
    );
    server.connect().login("anonymous", "x");
}
