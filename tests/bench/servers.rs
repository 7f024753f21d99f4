//! The servers of `make bench`: minftpd and vsftpd started on loopback ports
//! with configurations the bench writes (plain, or requiring FTPS with the
//! bench's certificate), and the memory their processes use.

use crate::client::Tls;
use crate::{tls, Data, TIMEOUT};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Kind {
    Minftpd,
    Vsftpd,
    /// A second minftpd build (`MINFTPD_BASELINE`) in vsftpd's place: a
    /// build trade (size, a new data path) measured side by side.
    Baseline,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Minftpd => "minftpd",
            Kind::Vsftpd => "vsftpd",
            Kind::Baseline => "baseline",
        }
    }
}

pub struct Server {
    pub kind: Kind,
    pub child: Child,
    pub addr: SocketAddr,
    /// vsftpd's config directory, removed with the server.
    conf: Option<PathBuf>,
    /// How clients talk to it: plain, or AUTH TLS and PROT P.
    pub tls: Tls,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(conf) = &self.conf {
            let _ = std::fs::remove_dir_all(conf);
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_ready(addr: SocketAddr) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Ok(mut s) = TcpStream::connect(addr) {
            s.set_read_timeout(Some(TIMEOUT)).unwrap();
            let mut buf = [0u8; 64];
            if s.read(&mut buf)
                .map(|n| buf[..n].starts_with(b"220"))
                .unwrap_or(false)
            {
                let _ = s.write_all(b"QUIT\r\n");
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "server on {addr} never became ready"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts a server; with a certificate, FTPS is required of its clients.
pub fn start(kind: Kind, data: &Data, cert: Option<&tls::Cert>) -> Server {
    let mut server = match kind {
        Kind::Minftpd => start_minftpd(kind, &minftpd_binary(), data, cert),
        Kind::Baseline => start_minftpd(kind, &baseline_binary().unwrap(), data, cert),
        Kind::Vsftpd => start_vsftpd(data, cert),
    };
    if cert.is_some() {
        server.tls = Tls::client();
    }
    server
}

pub fn minftpd_binary() -> PathBuf {
    if let Ok(path) = std::env::var("MINFTPD") {
        return PathBuf::from(path);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/minftpd")
}

/// The build to compare with instead of vsftpd, when `MINFTPD_BASELINE`
/// names one.
pub fn baseline_binary() -> Option<PathBuf> {
    std::env::var_os("MINFTPD_BASELINE").map(PathBuf::from)
}

fn start_minftpd(kind: Kind, binary: &Path, data: &Data, cert: Option<&tls::Cert>) -> Server {
    let mut child = Command::new(binary)
        .args([
            "-c",
            "/dev/null",
            "-A",
            "-w",
            "-l",
            "127.0.0.1:0",
            "-o",
            "anon_upload_dir=/upload",
        ])
        .args([
            "--max-clients",
            "300",
            "--max-per-ip",
            "300",
            "-o",
            "log_level=info",
            // vsftpd never syncs an upload: compare like with like. What
            // durable uploads cost is measured on its own (README, Power cuts).
            "-o",
            "fsync_uploads=no",
            "-r",
        ])
        .arg(&data.dir)
        .args(cert.map(tls::minftpd_args).unwrap_or_default())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start minftpd (run `cargo build --release` first)");
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let addr = loop {
        let line = lines.next().expect("minftpd exited").unwrap();
        if let Some(rest) = line.split("listening on ").nth(1) {
            break rest.trim().parse().unwrap();
        }
    };
    // Keep draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    wait_ready(addr);
    Server {
        kind,
        child,
        addr,
        conf: None,
        tls: Tls::none(),
    }
}

fn start_vsftpd(data: &Data, cert: Option<&tls::Cert>) -> Server {
    let port = free_port();
    let conf_dir = data.dir.with_extension("vsftpd");
    std::fs::create_dir_all(conf_dir.join("empty")).unwrap();
    let conf = conf_dir.join("vsftpd.conf");
    let mut text = format!(
        "listen=YES\nlisten_address=127.0.0.1\nlisten_port={port}\nbackground=NO\nanonymous_enable=YES\n\
         local_enable=NO\nanon_root={}\nno_anon_password=YES\nwrite_enable=YES\nanon_upload_enable=YES\n\
         anon_mkdir_write_enable=YES\npasv_enable=YES\nuse_sendfile=YES\nmax_clients=0\nmax_per_ip=0\n\
         xferlog_enable=NO\nseccomp_sandbox=NO\nsecure_chroot_dir={}\nconnect_from_port_20=NO\n\
         idle_session_timeout=600\ndata_connection_timeout=600\n",
        data.dir.display(),
        conf_dir.join("empty").display()
    );
    text += &cert.map(tls::vsftpd_conf).unwrap_or_default();
    std::fs::write(&conf, text).unwrap();
    let child = Command::new("/usr/sbin/vsftpd")
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start vsftpd");
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    wait_ready(addr);
    Server {
        kind: Kind::Vsftpd,
        child,
        addr,
        conf: Some(conf_dir),
        tls: Tls::none(),
    }
}

/// Every process of the server: the pid and all its descendants.
fn process_tree(root: u32) -> Vec<u32> {
    let mut parents = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let after = stat.rsplit(')').next().unwrap_or("");
        let ppid: u32 = after
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        parents.push((pid, ppid));
    }
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(
            parents
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    tree
}

/// (PSS, RSS) in KiB summed over the server's processes.
pub fn memory(root: u32) -> (u64, u64) {
    let mut pss = 0;
    let mut rss = 0;
    for pid in process_tree(root) {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")) else {
            continue;
        };
        for line in text.lines() {
            let value = || {
                line.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            if line.starts_with("Pss:") {
                pss += value();
            } else if line.starts_with("Rss:") {
                rss += value();
            }
        }
    }
    (pss, rss)
}

/// CPU seconds (user and system) the server's processes have used, with
/// those of the children they have reaped: vsftpd's sessions are processes
/// (counted while they live), minftpd's are threads.
pub fn cpu_seconds(root: u32) -> f64 {
    // SAFETY: sysconf reads a constant of the system.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let mut total = 0u64;
    for pid in process_tree(root) {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // After the command name: state is field 3, utime..cstime are 14..17.
        let after = stat.rsplit(')').next().unwrap_or("");
        total += after
            .split_whitespace()
            .skip(11)
            .take(4)
            .filter_map(|v| v.parse::<u64>().ok())
            .sum::<u64>();
    }
    total as f64 / ticks
}
