#!/usr/bin/env python3
"""The power-cut test: uploads to minftpd in a VM, SIGKILLs the emulator at a
random moment, boots it again on the same disk image and checks that every
upload acknowledged with 226 is there with its exact bytes.

One run of this script is one configuration (file system, fsync_uploads).
Each cycle: boot (the kernel mounts the image as a box does after power comes
back: ext4 replays its journal), check the files against what the client
knows, upload until the cut, SIGKILL. The guest's page cache dies with the
emulator; what qemu had written to the image file stays (the model of a power
cut: writes a disk's own volatile cache would lose are not modelled).

Why Python's ftplib: it is in every python3, it speaks plain passive FTP, and
its replies are easy to read one by one, which is all the client must do:
know exactly which upload got its 226 before the cut.

Counts, over all cycles:
  acknowledged  uploads answered 226
  lost          an acknowledged upload not on disk at the next boot (the name
                missing, or holding an older acknowledged version)
  partial       a final name holding bytes that are no version the client
                uploaded in full: a prefix, zeros, empty, a mix of old and new.
                The one upload in flight at the cut may be there whole, or (APPE,
                which writes in place by definition) as the old file plus a
                prefix of the appended bytes; both count as fine.
Loopback only: the VM's ports are forwarded to 127.0.0.1.
"""

import argparse
import ftplib
import hashlib
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

USER, PASSWORD = "pc", "powercut"
PASV_PORTS = 6  # one transfer at a time; a few so a port in TIME_WAIT never blocks
BOOT_DEADLINE = {"kvm": 10.0, "tcg": 90.0}
OP_TIMEOUT = 30.0  # seconds for one FTP command or transfer
BOOTS = 3  # tries to bring the VM up, per cycle
MAX_OPS = 100000  # bound on uploads in one cycle; the cut ends it long before
NAMES = 24  # STOR names reused, so overwrites are frequent and the disk stays small


def sha(data):
    return hashlib.sha256(data).hexdigest()


def free_port_block(count):
    """A first port P such that P..P+count-1 are free on 127.0.0.1 now."""
    for _ in range(200):
        # Below the kernel's ephemeral ports (32768 up), so a busy machine's
        # outgoing connections do not take them; SO_REUSEADDR as qemu binds.
        base = random.randrange(20000, 32000 - count)
        socks = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                socks.append(s)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            pass
        finally:
            for s in socks:
                s.close()
    raise SystemExit("powercut: no free block of loopback ports")


class Vm:
    """One boot of the emulator on the image; kill() is the power cut."""

    def __init__(self, args, accel, log):
        self.ctl = free_port_block(PASV_PORTS + 1)
        first, last = self.ctl + 1, self.ctl + PASV_PORTS
        fwd = ",".join(
            [f"hostfwd=tcp:127.0.0.1:{self.ctl}-:21"]
            + [f"hostfwd=tcp:127.0.0.1:{p}-:{p}" for p in range(first, last + 1)]
        )
        append = (
            # no_timer_check: under TCG on a loaded host the kernel's IO-APIC
            # timer check can time out and panic.
            f"console=ttyS0 quiet panic=-1 no_timer_check pc.fs={args.fs} "
            f"pc.fsync={args.fsync} pc.pasv={first}-{last}"
        )
        cmd = [
            args.qemu, "-accel", accel, "-m", "256", "-smp", "1",
            "-display", "none", "-monitor", "none", "-no-reboot",
            "-serial", f"file:{log}",
            "-kernel", os.path.join(args.dir, "vmlinuz"),
            "-initrd", os.path.join(args.dir, "initramfs.gz"),
            "-append", append,
            "-drive", f"file={args.image},format=raw,if=virtio",
            "-netdev", f"user,id=n,{fwd}",
            "-device", "virtio-net-pci,netdev=n,romfile=",
        ]  # fmt: skip
        self.log = log
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=die_with_parent
        )

    def wait_ready(self, deadline):
        """True once the server in the guest answers a login."""
        end = time.monotonic() + deadline
        while time.monotonic() < end and self.proc.poll() is None:
            try:
                ftp = connect(self.ctl, timeout=2)
                ftp.quit()
                return True
            except (OSError, EOFError, ftplib.Error):
                time.sleep(0.3)
        return False

    def kill(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


def die_with_parent():
    """In the emulator's child process: SIGKILL it when this script dies, so
    no qemu outlives the test whatever ends it."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def exit_on_signal(signum, _frame):
    """SIGTERM and SIGHUP unwind like Ctrl-C, through every `finally` that kills a VM."""
    raise SystemExit(f"powercut: stopped by signal {signum}")


def connect(port, timeout=OP_TIMEOUT):
    ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", port, timeout=timeout)
    ftp.login(USER, PASSWORD)
    ftp.voidcmd("TYPE I")
    return ftp


class Model:
    """What the client knows: the acknowledged content of each name, every
    version it ever uploaded in full, and the upload in flight."""

    def __init__(self):
        self.acked = {}  # name -> bytes of the last acknowledged upload
        self.versions = {}  # name -> set of sha256 of every acknowledged version
        self.inflight = None  # (verb, name or None, old bytes or None, new bytes)
        self.touched = set()  # names acknowledged or in flight since the last check
        self.broken = set()  # names found unreadable: counted once, then left alone
        self.acknowledged = self.lost = self.partial = 0
        self.notes = []

    def ack(self, name, content):
        self.acked[name] = content
        self.versions.setdefault(name, set()).add(sha(content))
        self.touched.add(name)
        self.acknowledged += 1

    def note(self, kind, name, detail):
        if len(self.notes) < 6:
            self.notes.append(f"{kind} {name}: {detail}")

    def check(self, ftp):
        """Compares the disk after a boot with what was acknowledged."""
        sizes = list_sizes(ftp)
        flight = self.inflight
        self.inflight = None
        names = set(self.acked) | set(sizes)
        for name in sorted(names - self.broken):
            expected = self.acked.get(name)
            in_flight = flight is not None and flight[1] == name
            unknown_stou = flight is not None and flight[0] == "STOU" and flight[1] is None
            if name not in sizes:
                if expected is not None:
                    self.lost += 1
                    self.note("lost", name, "missing")
                    del self.acked[name]
                continue
            must_read = (
                name in self.touched
                or in_flight
                or expected is None
                or sizes[name] != len(expected)
            )
            if not must_read:
                continue
            try:
                found = retr(ftp, name)
            except ftplib.error_temp as e:
                # vfat after a bad cut: a name whose clusters are free, so the
                # kernel fails the read (and turns the file system read-only).
                self.partial += 1
                cause = f", {flight[0]} in flight at the cut" if in_flight else ""
                self.note("partial", name, f"unreadable{cause}: {e}")
                self.acked.pop(name, None)
                self.broken.add(name)
                continue
            self.judge(name, found, expected, flight if in_flight or (unknown_stou and expected is None) else None)
            self.acked[name] = found
            self.versions.setdefault(name, set()).add(sha(found))
        self.touched.clear()

    def judge(self, name, found, expected, flight):
        if expected is not None and found == expected:
            return
        if flight is not None:
            verb, _, old, new = flight
            if found == new or (old is not None and found == old):
                return
            if verb == "APPE" and old is not None and found.startswith(old) and new.startswith(found):
                return
        if expected is not None and sha(found) in self.versions.get(name, ()):
            self.lost += 1
            self.note("lost", name, f"an older version ({len(found)} bytes, acknowledged {len(expected)})")
        elif expected is None and flight is None:
            self.partial += 1
            self.note("partial", name, f"{len(found)} bytes under a name never acknowledged")
        else:
            self.partial += 1
            want = len(expected) if expected is not None else len(flight[3])
            self.note("partial", name, f"{len(found)} bytes, expected {want}, {describe(found)}, {flight[0] if flight else 'nothing'} in flight")


def describe(data):
    if not data:
        return "empty"
    if data.count(0) == len(data):
        return "all zeros"
    return "other bytes"


def list_sizes(ftp):
    """Regular files by name (lost+found and the like left out)."""
    files = {name: int(facts["size"]) for name, facts in ftp.mlsd() if facts.get("type") == "file"}
    # fsck.vfat -a keeps the clusters of cut-off uploads as FSCKnnnn.REC: its names, not an upload's.
    return {n: size for n, size in files.items() if not re.fullmatch(r"FSCK\d{4}\.REC", n)}


def retr(ftp, name):
    """The file's bytes; a transfer the (slow, emulated) network aborted with
    a 4xx is read again, at most three times in all."""
    for attempt in range(3):
        chunks = []
        try:
            ftp.retrbinary(f"RETR {name}", chunks.append)
            return b"".join(chunks)
        except ftplib.error_temp:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def payload(rng):
    """Mixed sizes: mostly small files (a logger's records), some larger."""
    roll = rng.random()
    if roll < 0.5:
        size = rng.randint(1, 4096)
    elif roll < 0.85:
        size = rng.randint(16 << 10, 256 << 10)
    else:
        size = rng.randint(1 << 20, 3 << 20)
    return rng.randbytes(size)


def stou(ftp, data):
    """STOU by hand, so the name in the 150 reply is known before the data."""
    host, port = ftp.makepasv()
    conn = socket.create_connection((host, port), timeout=OP_TIMEOUT)
    try:
        resp = ftp.sendcmd("STOU")
        if not resp.startswith("150") or "FILE: " not in resp:
            raise ftplib.error_reply(resp)
        name = resp.split("FILE: ", 1)[1].strip()
        return name, conn
    except BaseException:
        conn.close()
        raise


def upload_until_cut(port, model, rng, stop, appe):
    """Uploads until the connection dies (the cut) or `stop` is set."""
    ftp = connect(port)
    for _ in range(MAX_OPS):
        if stop.is_set():
            break
        known = sorted(model.acked)
        roll = rng.random()
        data = payload(rng)
        if roll < 0.15:
            model.inflight = ("STOU", None, None, data)
            name, conn = stou(ftp, data)
            model.inflight = ("STOU", name, None, data)
            with conn:
                conn.sendall(data)
            ftp.voidresp()
            model.ack(name, data)
            continue
        if roll < 0.15 + appe and known:
            name = rng.choice(known)
            old = model.acked[name]
            data = data[: 64 << 10]
            model.inflight = ("APPE", name, old, old + data)
            ftp.storbinary(f"APPE {name}", _reader(data))
            model.ack(name, old + data)
            continue
        name = f"f{rng.randrange(NAMES):02d}.bin"
        model.inflight = ("STOR", name, model.acked.get(name), data)
        ftp.storbinary(f"STOR {name}", _reader(data))
        model.ack(name, data)
    ftp.quit()


def _reader(data):
    import io

    return io.BytesIO(data)


def run_cycle(args, accel, model, rng, cycle, last):
    log = os.path.join(args.work, f"console-{cycle:03d}.log")
    # A boot that never serves (qemu lost a forwarded port to another
    # process, or the guest panicked early) is retried: power comes back again.
    for _ in range(BOOTS):
        vm = Vm(args, accel, log)
        if vm.wait_ready(BOOT_DEADLINE[accel]):
            break
        vm.kill()
        if accel == "kvm" and cycle == 0:
            return False
    else:
        return False
    try:
        ftp = connect(vm.ctl)
        model.check(ftp)
        ftp.quit()
        if last:
            return True
        stop = threading.Event()
        cut_after = rng.uniform(args.min_cut, args.max_cut)
        timer = threading.Timer(cut_after, vm.kill)
        timer.start()
        try:
            upload_until_cut(vm.ctl, model, rng, stop, args.appe)
        except (OSError, EOFError, ftplib.Error):
            pass  # the cut
        finally:
            stop.set()
            timer.cancel()
        return True
    finally:
        vm.kill()


def choose_accel(args):
    """KVM where /dev/kvm is usable, unless an earlier configuration of this
    run found that the guest does not boot under it (run.sh clears the note)."""
    if args.accel != "auto":
        return args.accel
    try:
        with open(os.path.join(args.dir, "accel")) as f:
            return f.read().strip()
    except OSError:
        return "kvm" if os.access("/dev/kvm", os.R_OK | os.W_OK) else "tcg"


def remember_accel(args, accel):
    with open(os.path.join(args.dir, "accel"), "w") as f:
        f.write(accel + "\n")


def make_image(args):
    if os.path.exists(args.image):
        os.unlink(args.image)
    with open(args.image, "wb") as f:
        f.truncate(args.size_mb << 20)
    mkfs = ["mkfs.ext4", "-q", "-F", args.image] if args.fs == "ext4" else ["mkfs.vfat", args.image]
    subprocess.run(mkfs, check=True, stdout=subprocess.DEVNULL)


def host_fsck(args):
    """The file system check after a cut; True when it found nothing.

    ext4: `e2fsck -fn` on a copy after its journal replay (the mount in the
    guest replays the journal itself). vfat has no journal: as a box that
    mounts a FAT card should, `fsck.vfat -a` repairs the image itself before
    the next boot; without it the clusters of an upload cut off mid-write stay
    half-allocated and later files get cross-linked with them."""
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    if args.fs == "vfat":
        return subprocess.run(["fsck.vfat", "-a", "-w", args.image], **quiet).returncode == 0
    copy = args.image + ".fsck"
    shutil.copyfile(args.image, copy)
    try:
        subprocess.run(["e2fsck", "-E", "journal_only", "-y", copy], **quiet)
        return subprocess.run(["e2fsck", "-f", "-n", copy], **quiet).returncode == 0
    finally:
        os.unlink(copy)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--fs", choices=["ext4", "vfat"], required=True)
    p.add_argument("--fsync", choices=["yes", "no"], required=True)
    p.add_argument("--cuts", type=int, default=20)
    p.add_argument("--dir", default="target/powercut", help="where vmlinuz and initramfs.gz are")
    p.add_argument("--qemu", default="qemu-system-x86_64")
    p.add_argument("--accel", choices=["auto", "kvm", "tcg"], default="auto")
    p.add_argument("--size-mb", type=int, default=192)
    p.add_argument("--min-cut", type=float, default=0.2, help="earliest cut, seconds into the uploads")
    p.add_argument("--max-cut", type=float, default=4.0, help="latest cut, seconds into the uploads")
    p.add_argument("--appe", type=float, default=0.15, help="share of uploads that are APPE to a known file")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--strict", action="store_true", help="exit 1 unless 0 lost and 0 partial")
    p.add_argument("--strict-lost", action="store_true", help="exit 1 unless 0 lost")
    args = p.parse_args()
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, exit_on_signal)
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    args.work = os.path.join(args.dir, f"{args.fs}-{args.fsync}")
    os.makedirs(args.work, exist_ok=True)
    args.image = os.path.join(args.work, "disk.img")
    make_image(args)
    accel = choose_accel(args)
    model = Model()
    started = time.monotonic()
    fsck_damage = 0
    cycle = 0
    while cycle <= args.cuts:
        last = cycle == args.cuts
        if not run_cycle(args, accel, model, rng, cycle, last):
            if accel == "kvm" and cycle == 0:
                print("powercut: the guest did not boot under KVM here (nested KVM?); using TCG", file=sys.stderr)
                accel = "tcg"
                remember_accel(args, accel)
                continue
            tail = open(os.path.join(args.work, f"console-{cycle:03d}.log"), errors="replace").read()[-2000:]
            raise SystemExit(f"powercut: the VM did not come up (cycle {cycle}); console:\n{tail}")
        if cycle == 0:
            remember_accel(args, accel)
        if not last and not host_fsck(args):
            fsck_damage += 1
        cycle += 1
    elapsed = time.monotonic() - started
    for n in model.notes:
        print(f"  {args.fs} fsync_uploads={args.fsync}: {n}", file=sys.stderr)
    print(
        f"powercut: fs={args.fs} fsync_uploads={args.fsync}: {model.acknowledged} acknowledged, "
        f"{model.lost} lost, {model.partial} partial, {args.cuts} cuts "
        f"({accel}, {elapsed:.0f} s, {elapsed / (args.cuts + 1):.1f} s a cycle, "
        f"fsck found something after {fsck_damage} cuts, seed {seed})",
        flush=True,
    )
    if args.strict and (model.lost or model.partial or model.acknowledged == 0):
        sys.exit(1)
    if args.strict_lost and (model.lost or model.acknowledged == 0):
        sys.exit(1)


if __name__ == "__main__":
    main()
