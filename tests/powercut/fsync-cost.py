#!/usr/bin/env python3
"""What fsync_uploads = yes costs: the release minftpd serves DIR on loopback
with fsync_uploads no, then yes (alternating, ROUNDS times), and this client
measures big uploads (MB/s) and small uploads (uploads a second, one session,
one after another: a logger sending its records).

  fsync-cost.py DIR [--rounds 3] [--big-mb 128] [--small 400] [--small-kb 4]

DIR decides the file system measured: a tmpfs (fsync is nearly free there)
or an ext4 image mounted through a loop device (fsync reaches the disk).
"""

import argparse
import ftplib
import io
import os
import statistics
import subprocess
import sys
import time

# MINFTPD: another build to measure (as make bench reads it).
BIN = os.environ.get("MINFTPD") or os.path.join(os.path.dirname(__file__), "..", "..", "target", "release", "minftpd")


def start(root, fsync):
    os.makedirs(os.path.join(root, "upload"), exist_ok=True)
    os.chmod(os.path.join(root, "upload"), 0o777)  # started as root, minftpd serves as ftp or nobody
    cmd = [
        BIN, "-c", "/dev/null", "-l", "127.0.0.1:0", "-r", root,
        "-w", "-A", "-o", "anon_upload_dir=/upload", "-o", f"fsync_uploads={fsync}",
        "-o", "anon_umask=022",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 10
    for line in proc.stderr:
        if "listening on " in line:
            port = int(line.rsplit(":", 1)[1])
            break
        if time.monotonic() > deadline:
            break
    else:
        proc.kill()
        raise SystemExit("fsync-cost: minftpd did not start")
    return proc, port


def session(port):
    ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", port, timeout=60)
    ftp.login("anonymous", "x")
    ftp.voidcmd("TYPE I")
    return ftp


def big(port, tag, size_mb):
    data = os.urandom(1 << 20) * size_mb
    ftp = session(port)
    started = time.monotonic()
    ftp.storbinary(f"STOR upload/big-{tag}", io.BytesIO(data), blocksize=1 << 20)
    elapsed = time.monotonic() - started
    ftp.quit()
    return size_mb / elapsed


def small(port, tag, count, size_kb):
    data = os.urandom(size_kb << 10)
    ftp = session(port)
    started = time.monotonic()
    for n in range(count):
        ftp.storbinary(f"STOR upload/small-{tag}-{n}", io.BytesIO(data))
    elapsed = time.monotonic() - started
    ftp.quit()
    return count / elapsed


def clear(root):
    up = os.path.join(root, "upload")
    for name in os.listdir(up):
        os.unlink(os.path.join(up, name))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("dir")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--big-mb", type=int, default=128)
    p.add_argument("--small", type=int, default=400)
    p.add_argument("--small-kb", type=int, default=4)
    args = p.parse_args()
    figures = {("no", "big"): [], ("yes", "big"): [], ("no", "small"): [], ("yes", "small"): []}
    for rnd in range(args.rounds):
        order = ["no", "yes"] if rnd % 2 == 0 else ["yes", "no"]
        for fsync in order:
            proc, port = start(args.dir, fsync)
            try:
                figures[(fsync, "big")].append(big(port, f"{fsync}{rnd}", args.big_mb))
                figures[(fsync, "small")].append(small(port, f"{fsync}{rnd}", args.small, args.small_kb))
            finally:
                proc.kill()
                proc.wait()
                clear(args.dir)
    fs = subprocess.run(["findmnt", "-n", "-o", "FSTYPE", "--target", args.dir], capture_output=True, text=True).stdout.split()
    fs = fs[-1] if fs else "?"  # the last of stacked mounts is the one seen
    for fsync in ("no", "yes"):
        b = statistics.median(figures[(fsync, "big")])
        s = statistics.median(figures[(fsync, "small")])
        print(
            f"fsync-cost: {fs} fsync_uploads={fsync}: stor-big {b:.0f} MB/s ({args.big_mb} MiB), "
            f"small uploads {s:.0f}/s ({args.small_kb} KiB, {1000 / s:.2f} ms each), median of {args.rounds}"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
