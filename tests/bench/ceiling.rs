//! The machine's own limits, measured in the same run as the servers: how
//! fast loopback moves the big file with no FTP at all, each way. Downloads
//! are held against a plain sendfile(2) sender, uploads against a plain
//! splice(2) receiver (socket -> pipe -> file, in the upload directory).
//! Only the bench's own loopback connections take part.

use crate::servers::Kind;
use crate::{mb_per_s, median, Data, Sizes};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Instant;

/// The pipe of the splice receiver: the largest an unprivileged process may
/// ask for by default (/proc/sys/fs/pipe-max-size).
const PIPE_SIZE: usize = 1 << 20;

/// The ceilings of each round, in round order.
#[derive(Default)]
pub struct Ceilings {
    send: Vec<f64>,
    receive: Vec<f64>,
    /// CPU milliseconds per GB of the splice receiver's thread.
    receive_cpu: Vec<f64>,
}

impl Ceilings {
    /// Measures the ceiling `workload` is held against, right before it runs:
    /// what the machine's page cache and disk are doing then (a download of
    /// the big file just before, written files being flushed) is the same for
    /// both, which it was not when every ceiling ran at the start of a round.
    pub fn measure_before(&mut self, round: usize, workload: &str, data: &Data, sizes: &Sizes) {
        if workload == "retr-big" {
            let c = sendfile_sender(data, sizes);
            println!("round {round} ceiling sendfile MB/s {c:.0}");
            self.send.push(c);
        }
        if workload == "stor-big" {
            let (c, cpu) = splice_receiver(data, sizes);
            println!("round {round} ceiling splice receive MB/s {c:.0}, CPU ms/GB {cpu:.0}");
            self.receive.push(c);
            self.receive_cpu.push(cpu);
        }
    }

    /// The ceiling rows of the table: each ceiling's median, and minftpd's
    /// share of it as the median of the rounds' ratios (a round's server and
    /// ceiling ran moments apart, so the machine's noise cancels more).
    pub fn print_rows(&self, results: &BTreeMap<(String, String, Kind), Vec<f64>>) {
        let rows = [
            ("retr-big", "loopback sendfile MB/s", &self.send),
            ("stor-big", "loopback splice receive MB/s", &self.receive),
        ];
        for (workload, what, ceilings) in rows {
            if ceilings.is_empty() {
                continue;
            }
            println!(
                "| ceiling | {what} | {:.1} | | |",
                median(&mut ceilings.clone())
            );
            let key = (workload.to_string(), "MB/s".to_string(), Kind::Minftpd);
            if let Some(mine) = results.get(&key) {
                let mut ratios: Vec<f64> = mine.iter().zip(ceilings).map(|(m, c)| m / c).collect();
                println!(
                    "| {workload} | share of the ceiling (median of rounds) | {:.2} | | |",
                    median(&mut ratios)
                );
            }
        }
        if !self.receive_cpu.is_empty() {
            println!(
                "| ceiling | splice receiver CPU ms/GB (lower is better) | {:.1} | | |",
                median(&mut self.receive_cpu.clone())
            );
        }
    }
}

/// Loopback sendfile of the big file, no FTP, as many times as retr-big
/// downloads it.
fn sendfile_sender(data: &Data, sizes: &Sizes) -> f64 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let reps = sizes.big_reps;
    let reader = std::thread::spawn(move || {
        let mut total = 0u64;
        let mut buf = vec![0u8; 1 << 20];
        for _ in 0..reps {
            let (mut s, _) = listener.accept().unwrap();
            loop {
                let n = s.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                total += n as u64;
            }
        }
        total
    });
    let started = Instant::now();
    for _ in 0..reps {
        let sock = TcpStream::connect(addr).unwrap();
        let file = File::open(data.dir.join("big.bin")).unwrap();
        let mut offset: libc::off_t = 0;
        while (offset as u64) < sizes.big {
            // SAFETY: both descriptors are open for the call; offset is a valid pointer.
            let n =
                unsafe { libc::sendfile(sock.as_raw_fd(), file.as_raw_fd(), &mut offset, 1 << 20) };
            assert!(n > 0, "sendfile failed");
        }
    }
    let total = reader.join().unwrap();
    mb_per_s(total, started.elapsed().as_secs_f64())
}

/// Loopback upload of the big file's size, as many times as stor-big sends
/// it, from the same kind of sender (1 MiB writes), into files of the upload
/// directory that are then removed, as stor-big's are. MB/s, and the
/// receiving thread's CPU milliseconds per GB, removals left out (stor-big's
/// client removes its files, not the server).
fn splice_receiver(data: &Data, sizes: &Sizes) -> (f64, f64) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (reps, size) = (sizes.big_reps, sizes.big);
    let dir = data.dir.join("upload");
    let receiver = std::thread::spawn(move || {
        let (mut total, mut cpu) = (0u64, 0.0);
        for rep in 0..reps {
            let (sock, _) = listener.accept().unwrap();
            let cpu_before = thread_cpu_seconds();
            let path = dir.join(format!("ceiling-{rep}"));
            let file = File::create(&path).unwrap();
            total += splice_to_end(&sock, &file);
            drop(file);
            cpu += thread_cpu_seconds() - cpu_before;
            std::fs::remove_file(&path).unwrap();
        }
        (total, cpu)
    });
    let block: Vec<u8> = (0..1 << 20).map(|i| (i % 253) as u8).collect();
    let started = Instant::now();
    for _ in 0..reps {
        let mut sock = TcpStream::connect(addr).unwrap();
        let mut left = size;
        while left > 0 {
            let n = left.min(block.len() as u64) as usize;
            sock.write_all(&block[..n]).unwrap();
            left -= n as u64;
        }
    }
    let (total, cpu) = receiver.join().unwrap();
    assert_eq!(total, size * reps as u64, "splice receiver lost bytes");
    let secs = started.elapsed().as_secs_f64();
    (mb_per_s(total, secs), cpu * 1e3 / (total as f64 / 1e9))
}

/// User and system CPU time of the calling thread.
fn thread_cpu_seconds() -> f64 {
    // SAFETY: rusage is a plain C struct for which all-zero is valid, and
    // getrusage fills it.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_THREAD, &mut usage);
        usage
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// socket -> pipe -> file until the sender closes; bytes moved. As a server
/// would (and minftpd does): the socket non-blocking, each splice taking what
/// has arrived, a wait in poll(2) when nothing has. A blocking splice would
/// instead wait for a whole pipe's worth and stall the sender meanwhile.
fn splice_to_end(sock: &TcpStream, file: &File) -> u64 {
    sock.set_nonblocking(true).unwrap();
    let mut fds = [0; 2];
    // SAFETY: fds is an array of two ints for the kernel to fill.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: the kernel just returned both descriptors; nothing else owns them.
    let (out, into) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: F_SETPIPE_SZ takes an int and touches no memory of ours.
    unsafe {
        libc::fcntl(
            into.as_raw_fd(),
            libc::F_SETPIPE_SZ,
            PIPE_SIZE as libc::c_int,
        )
    };
    let splice = |from: i32, to: i32, len: usize, flags: u32| {
        let null = std::ptr::null_mut();
        // SAFETY: both descriptors are open; null offsets use the files' positions.
        let n = unsafe { libc::splice(from, null, to, null, len, flags) };
        (n >= 0).then_some(n as usize)
    };
    let nonblocking = libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK;
    let mut total = 0u64;
    loop {
        let n = match splice(sock.as_raw_fd(), into.as_raw_fd(), PIPE_SIZE, nonblocking) {
            Some(0) => return total,
            Some(n) => n,
            None => {
                let e = std::io::Error::last_os_error();
                assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock, "splice: {e}");
                wait_readable(sock);
                continue;
            }
        };
        let mut left = n;
        while left > 0 {
            let to_file = splice(out.as_raw_fd(), file.as_raw_fd(), left, libc::SPLICE_F_MOVE);
            left -= to_file.expect("splice into the file");
        }
        total += n as u64;
    }
}

fn wait_readable(sock: &TcpStream) {
    let mut pfd = libc::pollfd {
        fd: sock.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = crate::TIMEOUT.as_millis() as libc::c_int;
    // SAFETY: pfd is one valid pollfd for the call.
    let ready = unsafe { libc::poll(&mut pfd, 1, ms) };
    assert!(ready > 0, "the sender stalled");
}
