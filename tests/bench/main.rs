//! `make bench`: minftpd against vsftpd, side by side in one run.
//!
//! A load generator written with std (and rustls for the client side of
//! `--tls`), so that the client is never the bottleneck. Each workload prints one line of figures per server and round;
//! the rounds alternate the servers (A B A B) and the table at the end holds
//! medians and the ratio minftpd/vsftpd, oriented so that above 1 means
//! minftpd is better. vsftpd takes part when /usr/sbin/vsftpd exists; the bench
//! writes its own config and starts it in the foreground on a loopback port.
//!
//! With `MINFTPD_BASELINE=PATH` a second minftpd build takes vsftpd's place,
//! so that a trade (size, a new data path) is measured side by side.
//!
//! Options: `--rounds N` (default 3), `--only a,b`, `--quick` (small sizes),
//! `--tls` (FTPS rows instead: both servers with one self-signed certificate;
//! needs minftpd built with `--features tls`, as `make bench-tls` does),
//! `--rsa` (with `--tls`: an RSA 2048 key instead of ECDSA P-256).

mod ceiling;
mod client;
mod servers;
mod tls;

use ceiling::Ceilings;
use client::Ftp;
use servers::{baseline_binary, cpu_seconds, memory, minftpd_binary, start, Kind, Server};

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) const TIMEOUT: Duration = Duration::from_secs(60);
const IDLE_SESSIONS: usize = 200;

struct Sizes {
    big: u64,
    big_reps: usize,
    mid: u64,
    small_files: usize,
    list_entries: usize,
    window: Duration,
}

struct Options {
    rounds: usize,
    only: Option<Vec<String>>,
    sizes: Sizes,
    tls: bool,
    rsa: bool,
}

fn options() -> Options {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let mut rounds = 3;
    let mut only = None;
    let mut quick = false;
    let mut tls = false;
    let mut rsa = false;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--rounds" => {
                i += 1;
                rounds = args[i].parse().expect("--rounds N");
            }
            "--only" => {
                i += 1;
                only = Some(args[i].split(',').map(String::from).collect());
            }
            "--quick" => quick = true,
            "--tls" => tls = true,
            "--rsa" => rsa = true,
            other => {
                panic!(
                    "unknown argument {other}; use --rounds N, --only a,b, --quick, --tls, --rsa"
                )
            }
        }
        i += 1;
    }
    let sizes = if quick {
        Sizes {
            big: 64 << 20,
            big_reps: 2,
            mid: 8 << 20,
            small_files: 200,
            list_entries: 1000,
            window: Duration::from_secs(1),
        }
    } else {
        Sizes {
            big: 1 << 30,
            big_reps: 3,
            mid: 64 << 20,
            small_files: 2000,
            list_entries: 10_000,
            window: Duration::from_secs(3),
        }
    };
    Options {
        rounds,
        only,
        sizes,
        tls,
        rsa,
    }
}

// ------------------------------------------------------------------ test data

struct Data {
    dir: PathBuf,
}

impl Data {
    fn create(sizes: &Sizes) -> Data {
        let dir = std::env::temp_dir().join(format!("minftpd-bench-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("small")).unwrap();
        std::fs::create_dir_all(dir.join("list")).unwrap();
        std::fs::create_dir_all(dir.join("upload")).unwrap();
        write_sized(&dir.join("big.bin"), sizes.big);
        write_sized(&dir.join("mid.bin"), sizes.mid);
        let chunk = vec![b's'; 4096];
        for n in 0..sizes.small_files {
            std::fs::write(dir.join(format!("small/f{n}")), &chunk).unwrap();
        }
        for n in 0..sizes.list_entries {
            std::fs::write(dir.join(format!("list/entry-{n:05}.txt")), b"x").unwrap();
        }
        // vsftpd refuses an anonymous root that its unprivileged user can write;
        // uploads go to a subdirectory that account owns.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        if let Some((uid, gid)) = account("ftp") {
            std::os::unix::fs::chown(dir.join("upload"), Some(uid), Some(gid)).unwrap();
        }
        std::fs::set_permissions(dir.join("upload"), std::fs::Permissions::from_mode(0o777))
            .unwrap();
        // Flush the new files now, so that their writeback does not land in
        // the first round's figures.
        let _ = Command::new("sync").status();
        Data { dir }
    }
}

impl Drop for Data {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn write_sized(path: &Path, size: u64) {
    let mut file = std::fs::File::create(path).unwrap();
    let block: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
    let mut left = size;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        file.write_all(&block[..n]).unwrap();
        left -= n as u64;
    }
}

fn account(name: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() > 3 && f[0] == name)
            .then(|| (f[2].parse().ok(), f[3].parse().ok()))
            .and_then(|(u, g)| Some((u?, g?)))
    })
}

// ------------------------------------------------------------------ workloads

/// One workload's figures: name of the figure and its value (higher is better
/// unless the name says otherwise).
type Figures = Vec<(String, f64)>;

fn mb_per_s(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / secs / 1e6
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn retr_big(server: &Server, sizes: &Sizes) -> Figures {
    let mut ftp = Ftp::login(server.addr, &server.tls);
    let mut buf = vec![0u8; 1 << 20];
    let started = Instant::now();
    let mut bytes = 0;
    for _ in 0..sizes.big_reps {
        let got = ftp.fetch("RETR big.bin", &mut buf);
        assert_eq!(got, sizes.big);
        bytes += got;
    }
    ftp.quit();
    vec![(
        "MB/s".into(),
        mb_per_s(bytes, started.elapsed().as_secs_f64()),
    )]
}

fn stor_big(server: &Server, sizes: &Sizes, data: &Data, round: usize) -> Figures {
    let mut ftp = Ftp::login(server.addr, &server.tls);
    let block: Vec<u8> = (0..1 << 20).map(|i| (i % 253) as u8).collect();
    let cpu_before = cpu_seconds(server.child.id());
    let started = Instant::now();
    let mut bytes = 0;
    for rep in 0..sizes.big_reps {
        let name = format!("upload/big-{}-{round}-{rep}", server.kind.name());
        ftp.store(&format!("STOR {name}"), &block, sizes.big);
        let size = ftp.cmd(&format!("SIZE {name}"), 213);
        assert_eq!(
            size.trim_end().split(' ').nth(1),
            Some(sizes.big.to_string().as_str()),
            "upload size"
        );
        bytes += sizes.big;
        let _ = std::fs::remove_file(data.dir.join(&name));
    }
    let secs = started.elapsed().as_secs_f64();
    // Before QUIT: vsftpd's session processes are still there to be counted.
    let cpu = cpu_seconds(server.child.id()) - cpu_before;
    ftp.quit();
    vec![
        ("MB/s".into(), mb_per_s(bytes, secs)),
        (
            "server CPU ms/GB (lower is better)".into(),
            cpu * 1e3 / (bytes as f64 / 1e9),
        ),
    ]
}

/// Runs `workers` threads for the window; each returns its latencies (ms).
fn timed_workers(
    workers: usize,
    window: Duration,
    work: impl Fn(usize, Instant) -> Vec<f64> + Send + Sync + 'static,
) -> (Vec<f64>, f64) {
    let work = Arc::new(work);
    let deadline = Instant::now() + window;
    let started = Instant::now();
    let handles: Vec<_> = (0..workers)
        .map(|w| {
            let work = Arc::clone(&work);
            std::thread::spawn(move || work(w, deadline))
        })
        .collect();
    let mut all: Vec<f64> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let secs = started.elapsed().as_secs_f64();
    all.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (all, secs)
}

fn small_files(server: &Server, sizes: &Sizes) -> Figures {
    let (addr, tls) = (server.addr, server.tls.clone());
    let count = sizes.small_files;
    let (lat, secs) = timed_workers(16, sizes.window, move |w, deadline| {
        let mut ftp = Ftp::login(addr, &tls);
        let mut buf = vec![0u8; 8192];
        let mut lat = Vec::new();
        let mut n = w * 97;
        while Instant::now() < deadline {
            let t = Instant::now();
            let got = ftp.fetch(&format!("RETR small/f{}", n % count), &mut buf);
            assert_eq!(got, 4096);
            lat.push(t.elapsed().as_secs_f64() * 1000.0);
            n += 1;
        }
        ftp.quit();
        lat
    });
    vec![
        ("files/s".into(), lat.len() as f64 / secs),
        ("p50 ms (lower is better)".into(), percentile(&lat, 0.5)),
        ("p99 ms (lower is better)".into(), percentile(&lat, 0.99)),
    ]
}

fn login_churn(server: &Server, sizes: &Sizes) -> Figures {
    let (addr, tls) = (server.addr, server.tls.clone());
    let (lat, secs) = timed_workers(8, sizes.window, move |_, deadline| {
        let mut lat = Vec::new();
        while Instant::now() < deadline {
            let t = Instant::now();
            let mut ftp = Ftp::connect(addr, &tls);
            ftp.anonymous();
            ftp.quit();
            lat.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        lat
    });
    vec![
        ("sessions/s".into(), lat.len() as f64 / secs),
        ("p99 ms (lower is better)".into(), percentile(&lat, 0.99)),
    ]
}

fn list_big(server: &Server, sizes: &Sizes) -> Figures {
    let mut out = Vec::new();
    let verbs: &[&str] = if server.kind == Kind::Vsftpd {
        &["LIST"]
    } else {
        &["LIST", "MLSD"]
    };
    let mut ftp = Ftp::login(server.addr, &server.tls);
    let mut buf = vec![0u8; 1 << 16];
    for verb in verbs {
        let started = Instant::now();
        let mut n = 0;
        while started.elapsed() < sizes.window || n == 0 {
            let got = ftp.fetch(&format!("{verb} list"), &mut buf);
            assert!(
                got > sizes.list_entries as u64 * 20,
                "{verb} returned {got} bytes"
            );
            n += 1;
        }
        out.push((
            format!("{verb} listings/s"),
            n as f64 / started.elapsed().as_secs_f64(),
        ));
    }
    ftp.quit();
    out
}

fn concurrent_retr(server: &Server, sizes: &Sizes, sessions: usize) -> Figures {
    let addr = server.addr;
    let size = sizes.mid;
    let go = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = (0..sessions)
        .map(|_| {
            let go = Arc::clone(&go);
            let tls = server.tls.clone();
            std::thread::spawn(move || {
                let mut ftp = Ftp::login(addr, &tls);
                let mut buf = vec![0u8; 1 << 18];
                while !go.load(Ordering::Acquire) {
                    std::thread::yield_now();
                }
                let got = ftp.fetch("RETR mid.bin", &mut buf);
                assert_eq!(got, size);
                ftp.quit();
                got
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    go.store(true, Ordering::Release);
    let bytes: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    vec![(
        "aggregate MB/s".into(),
        mb_per_s(bytes, started.elapsed().as_secs_f64()),
    )]
}

fn idle_memory(server: &Server) -> Figures {
    let pid = server.child.id();
    std::thread::sleep(Duration::from_millis(300));
    let (pss0, rss0) = memory(pid);
    let mut sessions: Vec<Ftp> = (0..IDLE_SESSIONS)
        .map(|_| Ftp::login(server.addr, &server.tls))
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let (pss1, rss1) = memory(pid);
    for ftp in &mut sessions {
        ftp.cmd("NOOP", 200);
    }
    drop(sessions);
    let n = IDLE_SESSIONS as f64;
    vec![
        (
            "PSS KiB/session (lower is better)".into(),
            (pss1.saturating_sub(pss0)) as f64 / n,
        ),
        (
            "RSS KiB/session (lower is better)".into(),
            (rss1.saturating_sub(rss0)) as f64 / n,
        ),
        ("baseline PSS KiB (lower is better)".into(), pss0 as f64),
    ]
}

// ------------------------------------------------------------------ the run

const WORKLOADS: &[&str] = &[
    "retr-big",
    "stor-big",
    "small-files",
    "login-churn",
    "list-big",
    "concurrent-retr",
    "idle-memory",
];

fn run_workload(name: &str, server: &Server, sizes: &Sizes, data: &Data, round: usize) -> Figures {
    match name {
        "retr-big" => retr_big(server, sizes),
        "stor-big" => stor_big(server, sizes, data, round),
        "small-files" => small_files(server, sizes),
        "login-churn" => login_churn(server, sizes),
        "list-big" => list_big(server, sizes),
        "concurrent-retr" => {
            let mut f = concurrent_retr(server, sizes, 16);
            f[0].0 = "16 sessions MB/s".into();
            let mut g = concurrent_retr(server, sizes, 64);
            g[0].0 = "64 sessions MB/s".into();
            f.extend(g);
            f
        }
        "idle-memory" => idle_memory(server),
        _ => unreachable!(),
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn main() {
    let opts = options();
    let peers: Vec<Kind> = if let Some(baseline) = baseline_binary() {
        println!("comparing with the minftpd build {}", baseline.display());
        vec![Kind::Minftpd, Kind::Baseline]
    } else if Path::new("/usr/sbin/vsftpd").exists() {
        vec![Kind::Minftpd, Kind::Vsftpd]
    } else {
        println!("vsftpd is not installed (apt-get install vsftpd): measuring minftpd alone");
        vec![Kind::Minftpd]
    };
    assert!(
        minftpd_binary().exists(),
        "build minftpd first: cargo build --release"
    );
    let cert = opts.tls.then(|| tls::Cert::create(opts.rsa));
    if let Some(cert) = &cert {
        tls::check_minftpd(&minftpd_binary(), cert);
    }
    let all = if opts.tls { tls::WORKLOADS } else { WORKLOADS };
    let workloads: Vec<&str> = all
        .iter()
        .copied()
        .filter(|w| {
            opts.only
                .as_ref()
                .map_or(true, |o| o.iter().any(|x| x == w))
        })
        .collect();
    println!("preparing test data in {}", std::env::temp_dir().display());
    let data = Data::create(&opts.sizes);
    let mut results: BTreeMap<(String, String, Kind), Vec<f64>> = BTreeMap::new();
    let mut ceilings = Ceilings::default();
    for round in 0..opts.rounds {
        for workload in &workloads {
            ceilings.measure_before(round, workload, &data, &opts.sizes);
            // A B A B: the order of the servers alternates between rounds.
            let mut order = peers.clone();
            if round % 2 == 1 {
                order.reverse();
            }
            for kind in order {
                let server = start(kind, &data, cert.as_ref());
                if round == 0 && cert.is_some() && workload == &workloads[0] {
                    let ftp = Ftp::connect(server.addr, &server.tls);
                    println!("{} negotiates {}", kind.name(), ftp.describe());
                    ftp.quit();
                }
                let name = tls::plain_name(workload);
                let figures = run_workload(name, &server, &opts.sizes, &data, round);
                drop(server);
                let text: Vec<String> =
                    figures.iter().map(|(k, v)| format!("{k} {v:.1}")).collect();
                println!(
                    "round {round} {workload:<16} {:<8} {}",
                    kind.name(),
                    text.join(", ")
                );
                for (figure, value) in figures {
                    results
                        .entry((workload.to_string(), figure, kind))
                        .or_default()
                        .push(value);
                }
            }
        }
    }
    print_table(&results, &peers, &ceilings);
}

fn print_table(
    results: &BTreeMap<(String, String, Kind), Vec<f64>>,
    peers: &[Kind],
    ceilings: &Ceilings,
) {
    println!("\nmedians over the rounds (ratio > 1: minftpd is better)\n");
    let peer = peers.get(1).copied();
    let peer_name = peer.map_or("vsftpd", Kind::name);
    println!("| workload | figure | minftpd | {peer_name} | ratio |");
    println!("| --- | --- | ---: | ---: | ---: |");
    let mut rows: Vec<(&String, &String)> = results.keys().map(|(w, f, _)| (w, f)).collect();
    rows.dedup();
    let order = |w: &str| {
        let plain = WORKLOADS.iter().position(|x| *x == tls::plain_name(w));
        (w != tls::plain_name(w), plain.unwrap_or(99))
    };
    rows.sort_by_key(|(w, f)| (order(w), (*f).clone()));
    rows.dedup();
    for (workload, figure) in rows {
        let get = |kind| {
            results
                .get(&(workload.clone(), figure.clone(), kind))
                .map(|v| median(&mut v.clone()))
        };
        let mine = get(Kind::Minftpd);
        let theirs = peer.and_then(get);
        let lower_better = figure.contains("lower is better");
        let ratio = match (mine, theirs) {
            (Some(m), Some(t)) if m > 0.0 && t > 0.0 => {
                format!("{:.2}", if lower_better { t / m } else { m / t })
            }
            _ => "n/a".into(),
        };
        let show = |v: Option<f64>| v.map(|v| format!("{v:.1}")).unwrap_or_else(|| "n/a".into());
        println!(
            "| {workload} | {figure} | {} | {} | {ratio} |",
            show(mine),
            show(theirs)
        );
    }
    ceilings.print_rows(results);
}
