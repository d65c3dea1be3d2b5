#!/usr/bin/env python3
"""highbank_node_test.py: end-to-end tests of the emulated Highbank node.

Boots tests/rig/highbank/node-qemu.py (QEMU -M highbank, the real Debian armhf
kernel and the busybox initrd of build-node-image.sh) exactly as the rig's
power hook does: the node's serial line is a pty whose master this test holds.

  highbank_node_test.py build         build (or reuse) the cached node image
  highbank_node_test.py pxe           PXE boot via pxelinux.cfg/01-<mac>: prompt,
                                      uname -m, device-tree model, a file off the
                                      node's httpd through hostfwd, power off
  highbank_node_test.py disk          boot the disk image (bootdev default) and
                                      read its marker from /mnt/disk

Cache: $RR_HIGHBANK_CACHE, else $RR_BINARY_DIR/highbank-cache. Work dir:
$RR_BINARY_DIR/test-tmp/<case>-<pid>, removed on success unless RR_KEEP_RIG=1.
Every process started is killed, also on failure. Prints boot time and RSS.
"""
import ctypes
import hashlib
import os
import random
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
import tty
import urllib.request

SRC = os.environ.get("RR_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
BIN = os.environ.get("RR_BINARY_DIR") or os.getcwd()
HB = os.path.join(SRC, "tests", "rig", "highbank")
CACHE = os.environ.get("RR_HIGHBANK_CACHE") or os.path.join(BIN, "highbank-cache")
MAC = "52:54:00:00:00:01"
PROMPT_TIMEOUT_S = 60
CMD_TIMEOUT_S = 20
ANSI_DSR = b"\x1b[6n"          # busybox ash asks for the cursor position after each prompt
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
LIBC = ctypes.CDLL(None, use_errno=True)


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


def free_tcp_port():
    for _ in range(200):
        port = random.randint(20000, 32000)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise Failure("no free TCP port in 20000-32000")


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[-1][0] != "Z"
    except OSError:
        return False


def reaped(pid):
    """True once PID is gone: reaped by us (the subreaper), or dead and not ours."""
    try:
        got, _ = os.waitpid(pid, os.WNOHANG)
        return got == pid
    except ChildProcessError:
        return not alive(pid)


class Node:
    """node-qemu.py on a pty; this object holds the serial line's other end."""

    def __init__(self, workdir, args):
        self.dir = os.path.join(workdir, "n01")
        os.makedirs(self.dir, exist_ok=True)
        self.master, slave = os.openpty()
        tty.setraw(slave)
        log = os.open(os.path.join(self.dir, "node.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        argv = [sys.executable, os.path.join(HB, "node-qemu.py"), "--name", "n01", "--mac", MAC,
                "--node-dir", self.dir, "--firmware-dtb", os.path.join(CACHE, "highbank.dtb")]
        self.started = time.monotonic()
        self.proc = subprocess.Popen(argv + args, stdin=slave, stdout=slave, stderr=log,
                                     start_new_session=True, preexec_fn=self._die_with_us)
        os.close(slave)
        os.close(log)
        self.out = bytearray()
        self.console = open(os.path.join(self.dir, "console.out"), "ab")

    @staticmethod
    def _die_with_us():
        LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)

    def read_some(self, timeout):
        r, _, _ = select.select([self.master], [], [], timeout)
        if not r:
            return
        try:
            data = os.read(self.master, 65536)
        except OSError:
            data = b""
        if not data:
            raise Failure("serial line closed (node process gone?)")
        self.console.write(data)
        self.console.flush()
        self.out += data.replace(ANSI_DSR, b"")

    def expect(self, pattern, timeout, start=0):
        """Wait until PATTERN (bytes regex) matches the output from START; the match."""
        end = time.monotonic() + timeout
        rx = re.compile(pattern)
        while True:
            m = rx.search(self.out, start)
            if m:
                return m
            left = end - time.monotonic()
            if left <= 0:
                tail = bytes(self.out[-400:]).decode(errors="replace")
                raise Failure(f"timed out after {timeout} s waiting for {pattern!r}; "
                              f"console tail:\n{tail}")
            self.read_some(min(left, 0.5))

    def wait_prompt(self):
        self.expect(rb"(?:^|\n)# ", PROMPT_TIMEOUT_S)
        return time.monotonic() - self.started

    def run(self, cmd):
        """Type CMD into the shell; (exit status, output). The end marker is computed by
        the shell, so the echo of the typed line can never match it. Typed ahead of the
        prompt, it is echoed twice (by the tty, then by ash's line editor): the output is
        what follows the last echo. Kernel messages may interleave, as on hardware."""
        n = random.randint(1000, 9999)
        typed = f"{cmd}; echo RR-END-$(({n}+1))-$?"
        start = len(self.out)
        os.write(self.master, typed.encode() + b"\n")
        m = self.expect(rb"RR-END-%d-(\d+)" % (n + 1), CMD_TIMEOUT_S, start)
        text = bytes(self.out[start:m.start()]).decode(errors="replace").replace("\r", "")
        lines = text.split("\n")
        echoed = [i for i, line in enumerate(lines) if typed in line]
        check(echoed, f"{cmd!r}: the node did not echo the command")
        return int(m.group(1)), "\n".join(lines[echoed[-1] + 1:]).strip()

    def qemu_pid(self):
        kids = children(self.proc.pid)
        return kids[0] if kids else 0

    def power_off(self):
        """What the rig does on power off: SIGKILL the node's whole session."""
        pids = [self.proc.pid] + children(self.proc.pid)
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        self.proc.wait()
        end = time.monotonic() + 5
        left = pids[1:]
        while left and time.monotonic() < end:
            left = [p for p in left if not reaped(p)]
            time.sleep(0.05)
        return left

    def close(self):
        if self.proc.poll() is None:
            self.power_off()
        os.close(self.master)
        self.console.close()


def build_image():
    t0 = time.monotonic()
    res = subprocess.run([os.path.join(HB, "build-node-image.sh"), CACHE], timeout=900,
                         check=False)
    check(res.returncode == 0, f"build-node-image.sh {CACHE} failed (status {res.returncode})")
    for f in ("vmlinuz", "initrd.cpio.gz", "highbank.dtb", "done"):
        check(os.path.getsize(os.path.join(CACHE, f)) > 0, f"{CACHE}/{f} is empty")
    print(f"highbank image ready in {CACHE} ({time.monotonic() - t0:.1f} s)")


def report(node, boot_s):
    qemu = node.qemu_pid()
    check(qemu, "no qemu process under node-qemu.py")
    print(f"highbank node: prompt {boot_s:.1f} s after start; RSS qemu "
          f"{rss_kib(qemu) / 1024:.0f} MiB, node-qemu.py {rss_kib(node.proc.pid) / 1024:.0f} MiB")


def case_pxe(work):
    tftp = os.path.join(work, "tftp")
    os.makedirs(os.path.join(tftp, "pxelinux.cfg"))
    os.makedirs(os.path.join(tftp, "files", "n01"))
    for f in ("vmlinuz", "initrd.cpio.gz", "highbank.dtb"):
        os.symlink(os.path.join(CACHE, f), os.path.join(tftp, "files", "n01", f))
    # A decoy default that must lose against the node's own 01-<mac> config.
    with open(os.path.join(tftp, "pxelinux.cfg", "default"), "w") as f:
        f.write("DEFAULT wrong\nLABEL wrong\n  KERNEL files/none/vmlinuz\n")
    with open(os.path.join(tftp, "pxelinux.cfg", "01-" + MAC.replace(":", "-")), "w") as f:
        f.write("DEFAULT rr\nLABEL rr\n  KERNEL files/n01/vmlinuz\n"
                "  INITRD files/n01/initrd.cpio.gz\n  FDT files/n01/highbank.dtb\n"
                "  APPEND console=ttyAMA0 rr.test=pxe\n")
    port = free_tcp_port()
    node = Node(work, ["--bootdev", "pxe", "--tftp-root", tftp, "--http-port", str(port)])
    try:
        boot_s = node.wait_prompt()
        report(node, boot_s)
        status, out = node.run("uname -m")
        check(status == 0 and out == "armv7l", f"uname -m: status {status}, {out!r}")
        status, out = node.run("cat /proc/device-tree/model")
        check(status == 0 and "Highbank" in out, f"device-tree model: {out!r}")
        status, out = node.run("cat /proc/cmdline")
        check("rr.test=pxe" in out, f"kernel command line is not the 01-<mac> one: {out!r}")
        # A ~1 MiB file off the node's busybox httpd: guest TCP transmit through xgmac.
        status, out = node.run("md5sum /lib/modules/ext4.ko")
        check(status == 0, f"md5sum on the node failed: {out!r}")
        want = out.split()[0]
        url = f"http://127.0.0.1:{port}/lib/modules/ext4.ko"
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with direct.open(url, timeout=30) as r:
            got = hashlib.md5(r.read()).hexdigest()
        check(got == want, f"{url}: md5 {got}, node says {want}")
        left = node.power_off()
        check(not left, f"processes left after power off: {left}")
    finally:
        node.close()


def case_disk(work):
    disk = os.path.join(work, "disk.img")
    marker = f"rackrun disk marker {os.getpid()}-{random.randint(0, 1 << 30)}"
    res = subprocess.run([os.path.join(HB, "build-disk-image.sh"), disk, "--marker", marker,
                          "--image-dir", CACHE], timeout=120, check=False)
    check(res.returncode == 0, "build-disk-image.sh failed")
    node = Node(work, ["--bootdev", "default", "--disk", disk])
    try:
        boot_s = node.wait_prompt()
        report(node, boot_s)
        status, out = node.run("cat /mnt/disk/rackrun-marker")
        check(status == 0 and out == marker, f"marker on /mnt/disk: {out!r}, want {marker!r}")
        status, out = node.run("cat /proc/cmdline")
        check("rackrun.disk=/dev/sda1" in out, f"not the disk's extlinux.conf append: {out!r}")
        left = node.power_off()
        check(not left, f"processes left after power off: {left}")
    finally:
        node.close()


def main(argv):
    cases = {"pxe": case_pxe, "disk": case_disk}
    if len(argv) != 2 or argv[1] not in ("build", *cases):
        sys.stderr.write(f"usage: {argv[0]} build|pxe|disk\n")
        return 2
    if argv[1] == "build":
        try:
            build_image()
            return 0
        except (Failure, OSError, subprocess.TimeoutExpired) as e:
            print(f"FAIL: {e}")
            return 1
    LIBC.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)   # orphaned QEMUs are ours to reap
    work = os.path.join(BIN, "test-tmp", f"highbank-{argv[1]}-{os.getpid()}")
    os.makedirs(work)
    ok = False
    try:
        check(os.path.isfile(os.path.join(CACHE, "done")),
              f"no node image in {CACHE} (the build test sets it up)")
        cases[argv[1]](work)
        ok = True
    except (Failure, OSError, subprocess.TimeoutExpired) as e:
        print(f"FAIL: {e}\nkept {work} (console.out, qemu.log, boot.json in n01/)")
    if ok and os.environ.get("RR_KEEP_RIG") != "1":
        shutil.rmtree(work, ignore_errors=True)
    print("PASS" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
