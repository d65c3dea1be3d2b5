#!/usr/bin/env python3
"""node-qemu.py: one emulated Calxeda Highbank node, booted like U-Boot would.

The rig's power-on hook runs this with the node's serial line as stdin/stdout
(the pty behind the BMC's SOL device). It prints a U-Boot-like banner there,
finds what to boot, and runs `qemu-system-arm -M highbank` with ttyAMA0 on
the same stdin/stdout:

- bootdev pxe: the TFTP root as U-Boot's `pxe get` reads it:
  pxelinux.cfg/01-<mac, dashes, lower case>, then default-arm-highbank, then
  default; the DEFAULT label (else the first) gives KERNEL/INITRD/FDT/APPEND.
- any other bootdev (disk arrives from ipmi_sim as `default`): U-Boot distro
  boot from the SATA disk image: the MBR's bootable (else first Linux)
  partition, an ext2/3/4 filesystem read with debugfs, /extlinux/extlinux.conf
  or /boot/extlinux/extlinux.conf in the same syntax. Kernel, initrd and dtb
  are copied into memfds, so nothing is left on disk.
- no FDT line: the board firmware's dtb (--firmware-dtb), as on hardware.

A failed boot prints `ERROR: boot failed` and waits, powered on, until killed
(a prompt timeout, as on hardware). QEMU runs as our child with
PR_SET_PDEATHSIG, so SIGKILL of this process (power off) kills it too; SIGTERM,
SIGINT and SIGHUP stop it. Exit 0 when the guest reset or powered itself off
(-no-reboot): the caller respawns us, which reboots the node through U-Boot.
QEMU's own messages go to NODE_DIR/qemu.log; NODE_DIR/boot.json says what was
booted. Python 3 stdlib only. See docs/highbank-node.md.
"""
import argparse
import ctypes
import json
import os
import shlex
import signal
import struct
import subprocess
import sys
import termios
import time
import tty

# One pxelinux parser for both node kinds: the rig's (node-qemu runs with -I,
# so the rig's directory is added by hand).
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from rig import parse_pxelinux  # noqa: E402

PR_SET_PDEATHSIG = 1
LIBC = ctypes.CDLL(None, use_errno=True)
EXTLINUX = ("/extlinux/extlinux.conf", "/boot/extlinux/extlinux.conf")


class BootError(Exception):
    """The boot failed the way U-Boot's would: the message goes to the console."""


class Console:
    """The node's serial line as U-Boot writes it (CRLF line ends)."""

    def __init__(self, fd):
        self.fd = fd

    def say(self, *lines):
        data = "".join(line + "\r\n" for line in lines).encode()
        while data:
            try:
                n = os.write(self.fd, data)
            except OSError:
                return                 # nobody on the line: U-Boot prints anyway
            data = data[n:]


class Tftp:
    """Files under the TFTP root; names never escape it (like a TFTP server)."""

    def __init__(self, root):
        self.root = os.path.abspath(root)

    def path(self, name):
        rel = os.path.normpath(name.lstrip("/"))
        if rel == ".." or rel.startswith("../") or os.path.isabs(rel):
            return None
        return os.path.join(self.root, rel)

    def read(self, name):
        path = self.path(name)
        try:
            with open(path, "rb") as f:
                return f.read()
        except (OSError, TypeError):
            return None


def label_files(con, info, origin, text, fetch):
    """The LABEL of the pxelinux/extlinux TEXT read from ORIGIN as {kernel, initrd,
    fdt, append}, as U-Boot reports it; FETCH(key, name) gives a file's path or raises."""
    label = parse_pxelinux(text.decode(errors="replace"))
    if label is None or "kernel" not in label:
        raise BootError(f"{origin}: no LABEL with a KERNEL")
    con.say(f"1:\t{label['label']}")
    files = {}
    for key in ("kernel", "initrd", "fdt"):
        if key not in label:
            continue
        info[key] = label[key]
        con.say(f"Retrieving file: {label[key]}")
        files[key] = fetch(key, label[key])
    files["append"] = label.get("append", "")
    info["append"] = files["append"]
    con.say(f"append: {files['append']}")
    return files


def pxe_boot(args, con, info):
    """U-Boot's `pxe get; pxe boot` against the TFTP root: {kernel, initrd, fdt, append} paths."""
    if not args.tftp_root:
        raise BootError("PXE: no TFTP root")
    tftp = Tftp(args.tftp_root)

    def tftp_file(_key, name):
        path = tftp.path(name)
        if path is None or not os.path.isfile(path):
            con.say("TFTP error: 'File not found' (1)")
            raise BootError(f"{name}: not found in the TFTP root")
        return path

    mac = args.mac.lower().replace(":", "-")
    for name in (f"pxelinux.cfg/01-{mac}", "pxelinux.cfg/default-arm-highbank",
                 "pxelinux.cfg/default"):
        con.say(f"Retrieving file: {name}")
        text = tftp.read(name)
        if text is None:
            con.say("TFTP error: 'File not found' (1)")
            continue
        info["config"] = name
        return label_files(con, info, name, text, tftp_file)
    con.say("Config file not found")
    raise BootError("no pxelinux config for this node")


def boot_partition(disk):
    """(number, byte offset) of the MBR's bootable partition, else the first Linux one."""
    with open(disk, "rb") as f:
        mbr = f.read(512)
    if len(mbr) < 512 or mbr[510:512] != b"\x55\xaa":
        raise BootError("disk has no partition table")
    parts = []
    for i in range(4):
        entry = mbr[446 + 16 * i: 462 + 16 * i]
        status, ptype = entry[0], entry[4]
        start, count = struct.unpack("<II", entry[8:16])
        if ptype and count:
            parts.append((i + 1, status, ptype, start))
    for number, status, _, start in parts:
        if status == 0x80:
            return number, start * 512
    for number, _, ptype, start in parts:
        if ptype == 0x83:
            return number, start * 512
    raise BootError("disk has no bootable partition")


class Ext2:
    """Files of the ext2/3/4 filesystem at OFFSET in DISK, read with debugfs (no root)."""

    def __init__(self, disk, offset):
        self.spec = f"{disk}?offset={offset}"

    def read(self, path):
        if any(c.isspace() or c in "\"'\\" for c in path) or not path.startswith("/"):
            return None
        try:
            res = subprocess.run(["debugfs", "-R", f"cat {path}", self.spec],
                                 capture_output=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise BootError(f"debugfs: {e}") from e
        errors = [line for line in res.stderr.decode(errors="replace").splitlines()
                  if line and not line.startswith("debugfs ")]
        if res.returncode != 0 or errors:
            return None
        return res.stdout


def memfd_with(name, data):
    fd = os.memfd_create(name, 0)     # inherited by QEMU, which opens /dev/fd/N
    os.write(fd, data)
    return f"/dev/fd/{fd}", fd


def disk_boot(args, con, info, keep_fds):
    """U-Boot distro boot from the SATA disk: extlinux.conf on the boot partition."""
    if not args.disk or not os.path.isfile(args.disk):
        raise BootError("no disk")
    number, offset = boot_partition(args.disk)
    fs = Ext2(args.disk, offset)
    con.say(f"Scanning scsi 0:{number}...")
    for conf in EXTLINUX:
        text = fs.read(conf)
        if text is not None:
            break
    else:
        raise BootError(f"scsi 0:{number}: no extlinux.conf")
    con.say(f"Found {conf}", "Retrieving file: " + conf)
    info["config"] = f"scsi 0:{number}{conf}"

    def disk_file(key, name):
        data = fs.read(name)
        if data is None:
            raise BootError(f"scsi 0:{number}{name}: not found")
        path, fd = memfd_with(key, data)
        keep_fds.append(fd)
        return path

    return label_files(con, info, conf, text, disk_file)


def qemu_argv(args, files):
    dtb = files.get("fdt") or args.firmware_dtb
    if not dtb or not os.path.isfile(dtb):
        raise BootError("no device tree (no FDT line and no firmware dtb)")
    argv = [args.qemu, "-M", "highbank", "-m", f"{args.memory}M",
            "-accel", f"tcg,tb-size={args.tb_size}",
            "-kernel", files["kernel"], "-dtb", dtb, "-append", files["append"],
            "-display", "none", "-monitor", "none", "-no-reboot",
            "-chardev", "stdio,id=s0,signal=off", "-serial", "chardev:s0"]
    if "initrd" in files:
        argv += ["-initrd", files["initrd"]]
    netdev = "user,id=n0"
    if args.http_port:
        netdev += f",hostfwd=tcp:127.0.0.1:{args.http_port}-:80"
    argv += ["-netdev", netdev, "-net", f"nic,netdev=n0,model=xgmac,macaddr={args.mac}"]
    if args.disk:
        argv += ["-drive", f"file={args.disk},if=none,id=d0,format=raw",
                 "-device", "ide-hd,drive=d0,bus=ide.0"]
    return argv


def write_json(path, doc):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    os.rename(tmp, path)


def wait_forever():
    """A failed boot: the node stays on with nothing running, until power off."""
    while True:
        signal.pause()


def run_qemu(argv, log_path, keep_fds):
    """Run QEMU as our child (dies with us); its exit status."""
    stderr = open(log_path, "ab") if log_path else None
    stop = []

    def on_signal(signum, frame):
        stop.append(signum)
        if child.poll() is None:
            child.kill()

    def child_setup():
        LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)

    if stderr:
        stderr.write(f"{time.strftime('%F %T')} {shlex.join(argv)}\n".encode())
        stderr.flush()
    child = subprocess.Popen(argv, stdin=0, stdout=1, stderr=stderr, pass_fds=keep_fds,
                             preexec_fn=child_setup)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    status = child.wait()
    if stderr:
        stderr.write(f"{time.strftime('%F %T')} qemu exited with status {status}\n".encode())
        stderr.close()
    return -1 if stop else status


def raw_line(fd):
    """Make the pty a transparent wire. QEMU's stdio backend turns OPOST back on, so
    the output mappings themselves must be off too, or every CRLF becomes CRCRLF."""
    tty.setraw(fd, termios.TCSANOW)
    attrs = termios.tcgetattr(fd)
    attrs[1] &= ~(termios.ONLCR | termios.OCRNL | termios.ONLRET | termios.ONOCR)
    termios.tcsetattr(fd, termios.TCSANOW, attrs)


def parse_args(argv):
    p = argparse.ArgumentParser(description="One emulated Highbank node (QEMU), booted "
                                "like U-Boot. The serial line is stdin/stdout.")
    p.add_argument("--name", default="node", help="node name for the banner")
    p.add_argument("--mac", required=True, help="eth0 MAC, e.g. 52:54:00:00:00:01")
    p.add_argument("--bootdev", default="pxe",
                   help="pxe, or disk/default/anything else: boot the disk")
    p.add_argument("--tftp-root", help="TFTP root read for PXE")
    p.add_argument("--disk", help="raw SATA disk image (ide.0, /dev/sda in the guest)")
    p.add_argument("--http-port", type=int, help="host port forwarded to the guest's port 80")
    p.add_argument("--firmware-dtb", help="dtb used when the config has no FDT line")
    p.add_argument("--node-dir", help="writes boot.json and qemu.log there")
    p.add_argument("--memory", type=int, default=512, help="guest RAM in MiB (default 512)")
    p.add_argument("--tb-size", type=int, default=32,
                   help="QEMU translation cache in MiB (host RSS; default 32)")
    p.add_argument("--qemu", default="qemu-system-arm")
    p.add_argument("--dry-run", action="store_true",
                   help="print boot.json and the QEMU command line as JSON and exit")
    return p.parse_args(argv)


def main(argv):
    args = parse_args(argv)
    if os.isatty(0) and not args.dry_run:
        raw_line(0)
    con = Console(2 if args.dry_run else 1)
    pxe = args.bootdev == "pxe"
    info = {"bootdev": args.bootdev, "booted": False}
    con.say("", f"U-Boot (rackrun highbank) {args.name} {args.mac}",
            f"Boot device: {args.bootdev}")
    keep_fds = []
    try:
        files = pxe_boot(args, con, info) if pxe else disk_boot(args, con, info, keep_fds)
        argv = qemu_argv(args, files)
        info["booted"] = True
    except BootError as e:
        con.say(f"{e}", "ERROR: boot failed")
        info["error"] = str(e)
        argv = None
    if args.node_dir:
        write_json(os.path.join(args.node_dir, "boot.json"), info)
    if args.dry_run:
        print(json.dumps({"boot": info, "qemu": argv}, indent=1))
        return 0 if argv else 1
    if argv is None:
        wait_forever()
    con.say("Starting kernel ...", "")
    log_path = os.path.join(args.node_dir, "qemu.log") if args.node_dir else None
    status = run_qemu(argv, log_path, keep_fds)
    if status == 0:
        return 0                      # the guest reset or powered off (-no-reboot)
    if status < 0:
        return 1                      # we were told to stop
    con.say("", f"ERROR: qemu exited with status {status}"
            + (f" (see {log_path})" if log_path else ""))
    wait_forever()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
