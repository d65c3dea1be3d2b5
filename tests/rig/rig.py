#!/usr/bin/env python3
"""rig.py: an emulated rack for rackrun's tests, demo and benchmarks.

Starts N stock OpenIPMI `ipmi_sim` BMCs on 127.0.0.1 and, behind each, a "fast
shell node": a persistent pty (the BMC's SOL device) that this process owns, so
it survives power cycles. This process is the serial line between the pty and
the node: power on (ipmi_sim's chassis_control hook, tests/rig/chassisctl)
prints a U-Boot-like banner and starts an interactive /bin/sh with PS1='# ';
power off kills the shell's whole session. With --node-kind highbank, power on
starts tests/rig/highbank/node-qemu.py on that pty instead (QEMU -M highbank: the
real armhf kernel; see docs/highbank-node.md); with --node-kind uboot it starts
tests/rig/highbank/node-uboot.py (QEMU -M virt running Debian's U-Boot, which the
job drives at its prompt to PXE boot from a real dnsmasq serving --tftp-root).
Every byte the node prints goes to
nXX/console.out, every byte it receives to nXX/console.in.tsv with a
CLOCK_MONOTONIC time, every hook call to nXX/hook.log.

When every BMC answers, it writes DIR/rig.json and prints `READY DIR/rig.json`.
It stops (killing every process it started) on stdin EOF, SIGTERM, SIGINT or
SIGHUP, and exits 0. Lines on stdin are commands (answered `OK ...`/`ERR ...`
on stdout): `bmc I kill|stop|cont|start|restart`, `power I on|off|reset`,
`pids`. Python 3 stdlib only. See docs/rig.md.
"""
import argparse
import ctypes
import json
import os
import random
import secrets
import selectors
import signal
import socket
import stat
import subprocess
import sys
import termios
import fcntl
import time
import tty

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
LIBC = ctypes.CDLL(None, use_errno=True)
HERE = os.path.dirname(os.path.abspath(__file__))
CHASSISCTL = os.path.join(HERE, "chassisctl")
PORT_RANGE = (20000, 32000)         # below Linux's ephemeral range (32768-60999)
BMC_START_TRIES = 5
BMC_START_TIMEOUT_S = 10
REBOOT_MIN_INTERVAL_S = 1.0         # a Highbank guest that resets boots again, at most this often
NODE_QEMU = os.path.join(HERE, "highbank", "node-qemu.py")
NODE_UBOOT = os.path.join(HERE, "highbank", "node-uboot.py")
UBOOT_BIN = "/usr/lib/u-boot/qemu_arm/u-boot.bin"
QEMU_KINDS = ("highbank", "uboot")  # node kinds whose power on starts a QEMU node script
UBOOT_KERNEL_START = b"Starting kernel"  # U-Boot's last line: the bootloader phase ends
OUT_PENDING_MAX = 1 << 20           # bytes queued towards a BMC that does not read
# Get Channel Authentication Capabilities (IPMI 1.5, no session): any BMC answers it.
BMC_PING = bytes.fromhex("0600ff07" "00" "00000000" "00000000" "09"
                         "20" "18" "c8" "81" "00" "38" "8e" "04" "b5")
BMC_EMU = """mc_setbmc 0x20
mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02
sel_enable 0x20 1000 0x0a
mc_enable 0x20
"""


def log(msg):
    sys.stderr.write(f"{time.strftime('%H:%M:%S')} rig[{os.getpid()}]: {msg}\n")
    sys.stderr.flush()


def unix_path(path, keep):
    """AF_UNIX paths are limited to 107 bytes: reach long ones through /proc/self/fd."""
    if len(path.encode()) < 100:
        return path
    dirfd = os.open(os.path.dirname(path), os.O_PATH | os.O_CLOEXEC)
    keep.append(dirfd)
    return f"/proc/self/fd/{dirfd}/{os.path.basename(path)}"


def listen_unix(path, keep):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(unix_path(path, keep))
    # Every BMC of a rack may call its chassis_control hook at once (a whole
    # rack powered on in parallel): a short backlog makes those connects fail
    # with EAGAIN and the BMC answer "Unspecified error".
    sock.listen(256)
    sock.setblocking(False)
    return sock


def write_file(path, text, mode=0o644):
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.rename(tmp, path)


def sane_tty(fd):
    """`stty sane` on the terminal FD, without the subprocess that cost the rig's
    single loop about 3 ms of every node's boot (half the emulator's floor in
    bench_rack_power). Gives the same termios as stty sane (checked on a fresh pty)."""
    iflag, oflag, cflag, lflag, ispeed, ospeed, cc = termios.tcgetattr(fd)
    iflag |= termios.BRKINT | termios.ICRNL | termios.IMAXBEL | termios.IXON
    iflag &= ~(termios.IGNBRK | termios.INLCR | termios.IGNCR | termios.IXOFF | termios.IUCLC
               | termios.IXANY | termios.ISTRIP | termios.INPCK | termios.IGNPAR | termios.PARMRK)
    oflag |= termios.OPOST | termios.ONLCR
    oflag &= ~(termios.OLCUC | termios.OCRNL | termios.ONOCR | termios.ONLRET | termios.OFILL
               | termios.OFDEL)
    cflag |= termios.CREAD
    lflag |= (termios.ISIG | termios.ICANON | termios.IEXTEN | termios.ECHO | termios.ECHOE
              | termios.ECHOK | termios.ECHOCTL | termios.ECHOKE)
    lflag &= ~(termios.ECHONL | termios.NOFLSH | termios.XCASE | termios.TOSTOP | termios.ECHOPRT)
    termios.tcsetattr(fd, termios.TCSANOW, [iflag, oflag, cflag, lflag, ispeed, ospeed, cc])


NOBODY_ID = 65534  # uid and gid of nobody/nogroup on Debian


def spawn(argv, fds, env=None, cwd=None, ctty=False, unprivileged=False):
    """fork+exec ARGV in a new session with FDS as 0, 1, 2; it dies with us (PDEATHSIG).
    UNPRIVILEGED: when the rig runs as root, the child runs as nobody, so a fast node's
    shell (a shell on THIS host) cannot touch the host's disks or files the way a job
    meant for a real node might try to (`dd of=/dev/sda`)."""
    parent = os.getpid()
    pid = os.fork()
    if pid != 0:
        return pid
    try:
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGPIPE, signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        os.setsid()
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        if ctty:
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:
            os._exit(1)
        os.closerange(3, 65536)
        if cwd:
            os.chdir(cwd)
        if unprivileged and os.geteuid() == 0:
            os.setgroups([])
            os.setgid(NOBODY_ID)
            os.setuid(NOBODY_ID)
        os.execvpe(argv[0], argv, env if env is not None else os.environ)
    except BaseException as e:  # noqa: B902 - the child must never return into the rig
        os.write(2, f"rig: exec {argv[0]}: {e}\n".encode())
    os._exit(127)


def proc_stat(pid):
    """(ppid, pgrp, session) of PID, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rindex(")") + 2:].split()
    return int(fields[1]), int(fields[2]), int(fields[3])


def all_pids():
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def session_members(sid):
    return [p for p in all_pids() if (st := proc_stat(p)) and st[2] == sid]


def port_free(port, kind):
    """Whether 127.0.0.1:PORT can be bound now (KIND: socket.SOCK_DGRAM or SOCK_STREAM)."""
    sock = socket.socket(socket.AF_INET, kind)
    try:
        sock.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        sock.close()


def udp_port_owner_ok(port, pid):
    """True when PID holds the UDP socket bound to 127.0.0.1:PORT."""
    inodes = set()
    with open("/proc/net/udp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            addr, hexport = fields[1].split(":")
            if int(hexport, 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    if not inodes:
        return False
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                    return True
            except OSError:
                pass
    except OSError:
        pass
    return False


def parse_pxelinux(text):
    """The label a pxelinux config boots: DEFAULT's, else the first one."""
    labels, default, cur = [], None, None
    for raw in text.splitlines():
        parts = raw.strip().split(None, 1)
        if not parts or parts[0].startswith("#"):
            continue
        key, val = parts[0].lower(), (parts[1].strip() if len(parts) > 1 else "")
        if key == "default":
            default = val
        elif key == "label":
            cur = {"label": val}
            labels.append(cur)
        elif cur is not None and key in ("kernel", "linux"):
            cur["kernel"] = val
        elif cur is not None and key == "initrd":
            cur["initrd"] = val
        elif cur is not None and key in ("fdt", "devicetree"):
            cur["fdt"] = val
        elif cur is not None and key == "append":
            cur["append"] = val
    for label in labels:
        if label["label"] == default:
            return label
    return labels[0] if labels else None


class Node:
    def __init__(self, rig, index):
        self.rig = rig
        self.index = index
        self.name = f"{rig.args.base_name}{index + 1:02d}"
        self.dir = os.path.join(rig.dir, self.name)
        self.mac = f"52:54:00:00:{(index + 1) >> 8:02x}:{(index + 1) & 0xff:02x}"
        self.port = 0
        self.power = 0
        self.bootdev = "default"
        self.bmc_pid = 0
        self.bmc_state = "down"        # down | starting | up | stopped
        self.bmc_deadline = 0.0
        self.bmc_tries = 0
        self.bmc_waiters = []
        self.bmc_ping = None
        self.shell_pid = 0
        self.shell_fd = -1
        self.shell_pending = bytearray()
        self.boot_at = None            # monotonic time the pending boot runs
        self.last_boot = 0.0
        self.http_port = 0             # highbank: 127.0.0.1 port forwarded to the node's :80
        self.last_rx_ns = 0
        self.in_bootloader = False     # uboot: between power on and "Starting kernel"
        self.out_tail = b""            # uboot: the end of the output, to find that line
        self.taps = []
        self.out_pending = bytearray()
        os.makedirs(self.dir, exist_ok=True)
        # The SOL device: a pty we hold both ends of, so it outlives power cycles and
        # never hangs up when ipmi_sim closes it. ipmi_sim locks /run/lock/LCK..<basename>
        # globally: the basename carries our pid and index.
        self.sol_fd, self.sol_slave = os.openpty()
        tty.setraw(self.sol_slave)
        os.set_blocking(self.sol_fd, False)
        self.sol_name = f"rr{os.getpid()}-{self.name}.tty"
        self.sol_path = os.path.join(self.dir, self.sol_name)
        for link in (self.sol_path, os.path.join(self.dir, "tty")):
            if os.path.lexists(link):
                os.unlink(link)
            os.symlink(os.ttyname(self.sol_slave), link)
        self.out_fd = os.open(os.path.join(self.dir, "console.out"),
                              os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        self.in_log = open(os.path.join(self.dir, "console.in.tsv"), "a", buffering=1)
        self.hook_log = open(os.path.join(self.dir, "hook.log"), "a", buffering=1)
        self.tap_listener = listen_unix(os.path.join(self.dir, "console.sock"), rig.keep_fds)
        write_file(os.path.join(self.dir, "power"), "0\n")
        if rig.args.node_kind == "highbank":
            self.setup_highbank()
        rig.sel.register(self.sol_fd, selectors.EVENT_READ, self.on_sol_readable)
        rig.sel.register(self.tap_listener, selectors.EVENT_READ, self.on_tap_accept)

    def setup_highbank(self):
        """The node's SATA disk (sparse, empty until a job deploys one) and HTTP port."""
        disk = os.path.join(self.dir, "disk.img")
        if not os.path.exists(disk):
            with open(disk, "wb") as f:
                f.truncate(self.rig.args.disk_size_mb << 20)
        for _ in range(200):
            port = random.randint(*PORT_RANGE)
            if port not in self.rig.http_ports_taken() and port_free(port, socket.SOCK_STREAM):
                self.http_port = port
                return
        raise SystemExit(f"rig: {self.name}: no free TCP port for the node's HTTP forward")

    # ---- BMC --------------------------------------------------------------------------

    def write_bmc_config(self):
        hook = (f"'{self.rig.args.hook}'" if self.rig.args.hook
                else f"'{sys.executable}' -I -S '{CHASSISCTL}'")
        hook = f"{hook} '{self.rig.dir}' {self.name}"
        conf = (f'name "{self.name}"\n'
                "set_working_mc 0x20\n"
                "  startlan 1\n"
                f"    addr 127.0.0.1 {self.port}\n"
                "    priv_limit admin\n"
                "    allowed_auths_admin none md2 md5 straight\n"
                f"    guid a123456789abcdefa1234567{self.index + 1:08x}\n"
                "  endlan\n"
                f'  chassis_control "{hook}"\n'
                f'  sol "{self.sol_path}" 115200\n'
                f'  user 2 true "{self.rig.user}" "{self.rig.password}" admin 10 '
                "none md2 md5 straight\n")
        write_file(os.path.join(self.dir, "lan.conf"), conf, 0o600)
        write_file(os.path.join(self.dir, "bmc.emu"), BMC_EMU)

    def pick_port(self):
        if self.port and self.bmc_tries == 0:
            return True                # restart: keep the port clients know
        for _ in range(200):
            port = random.randint(*PORT_RANGE)
            if port not in self.rig.ports_taken() and port_free(port, socket.SOCK_DGRAM):
                self.port = port
                return True
        return False

    def bmc_start(self):
        """Start ipmi_sim; readiness is checked by the main loop (bmc_poll)."""
        if not self.pick_port():
            return self.bmc_failed("no free UDP port")
        self.write_bmc_config()
        state = os.path.join(self.dir, "state")
        os.makedirs(state, exist_ok=True)
        logfd = os.open(os.path.join(self.dir, "ipmi_sim.log"),
                        os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        nullfd = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        self.bmc_pid = spawn(["ipmi_sim", "-c", "lan.conf", "-f", "bmc.emu", "-s", state, "-n"],
                             [nullfd, logfd, logfd], cwd=self.dir)
        os.close(logfd)
        os.close(nullfd)
        self.bmc_tries += 1
        self.bmc_state = "starting"
        self.bmc_deadline = time.monotonic() + BMC_START_TIMEOUT_S
        self.bmc_ping = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.bmc_ping.setblocking(False)
        log(f"{self.name}: ipmi_sim pid {self.bmc_pid} on 127.0.0.1:{self.port} "
            f"(try {self.bmc_tries})")

    def bmc_poll(self):
        """Called by the main loop while starting: ready once it owns its port and answers."""
        try:
            if self.bmc_ping.recv(512):
                if udp_port_owner_ok(self.port, self.bmc_pid):
                    return self.bmc_ready()
        except BlockingIOError:
            pass
        except OSError:
            pass
        if self.bmc_pid == 0 or time.monotonic() > self.bmc_deadline:
            why = "exited" if self.bmc_pid == 0 else "no answer"
            self.bmc_kill()
            if self.bmc_tries >= BMC_START_TRIES:
                return self.bmc_failed(f"ipmi_sim {why} on port {self.port} "
                                       f"after {self.bmc_tries} tries (see {self.dir}/ipmi_sim.log)")
            log(f"{self.name}: ipmi_sim {why} on port {self.port}: trying another port")
            self.port = 0
            return self.bmc_start()
        if udp_port_owner_ok(self.port, self.bmc_pid):
            try:
                self.bmc_ping.sendto(BMC_PING, ("127.0.0.1", self.port))
            except OSError:
                pass
        elif time.monotonic() > self.bmc_deadline - BMC_START_TIMEOUT_S + 1.0:
            # ipmi_sim does not exit when its port is taken: it runs deaf. Move on.
            self.bmc_deadline = 0

    def bmc_ready(self):
        self.bmc_state = "up"
        self.bmc_tries = 0
        self.bmc_ping.close()
        self.bmc_ping = None
        log(f"{self.name}: BMC up on 127.0.0.1:{self.port}")
        self.finish_waiters("OK")

    def bmc_failed(self, why):
        self.bmc_state = "down"
        self.bmc_tries = 0
        log(f"{self.name}: BMC failed: {why}")
        self.finish_waiters(f"ERR bmc {self.name}: {why}")
        self.rig.bmc_failure(self, why)

    def finish_waiters(self, answer):
        waiters, self.bmc_waiters = self.bmc_waiters, []
        for reply in waiters:
            reply(answer)

    def bmc_kill(self):
        if self.bmc_pid:
            self.rig.kill_group(self.bmc_pid, signal.SIGKILL)
            self.rig.wait_gone(self.bmc_pid, 2.0)
            self.bmc_pid = 0
        if self.bmc_ping:
            self.bmc_ping.close()
            self.bmc_ping = None
        self.remove_lock()
        self.bmc_state = "down"

    def remove_lock(self):
        lock = f"/run/lock/LCK..{self.sol_name}"
        try:
            with open(lock) as f:
                owner = int(f.read().split()[0])
            if proc_stat(owner) is None or owner == self.bmc_pid:
                os.unlink(lock)
        except (OSError, ValueError, IndexError):
            pass

    # ---- power and boot ---------------------------------------------------------------

    def hook(self, args):
        """One chassis_control call; returns the text ipmi_sim reads on stdout."""
        self.hook_log.write(f"{time.monotonic_ns()}\t{' '.join(args)}\n")
        if args[0] == "get":
            values = {"power": self.power, "boot": self.bootdev}
            return "".join(f"{name}:{values.get(name, 0)}\n" for name in args[1:])
        if args[0] != "set" or len(args) % 2 != 1:
            raise ValueError(f"bad hook call {' '.join(args)!r}")
        for name, value in zip(args[1::2], args[2::2]):
            self.set(name, value)
        return ""

    def set(self, name, value):
        if name == "power":
            self.power_on() if value == "1" else self.power_off()
        elif name == "reset" and value == "1":
            if self.power:
                self.power_off()
                self.power_on()
        elif name == "shutdown" and value == "1":
            self.power_off()
        elif name == "boot":
            self.bootdev = value
            write_file(os.path.join(self.dir, "bootdev"), value + "\n")

    def power_on(self):
        if self.power:
            return
        self.power = 1
        write_file(os.path.join(self.dir, "power"), "1\n")
        self.boot_at = time.monotonic() + self.rig.args.boot_delay_ms / 1000.0

    def power_off(self):
        self.boot_at = None
        if not self.power:
            return
        self.power = 0
        write_file(os.path.join(self.dir, "power"), "0\n")
        self.kill_shell()
        log(f"{self.name}: power off")

    def boot(self):
        """Print the boot banner and, when the boot succeeds, start the shell."""
        self.boot_at = None
        self.last_boot = time.monotonic()
        if self.rig.args.node_kind == "highbank":
            return self.boot_highbank()
        if self.rig.args.node_kind == "uboot":
            return self.boot_uboot()
        info = {"bootdev": self.bootdev, "booted": True}
        lines = ["", f"U-Boot (rackrun rig) {self.name} {self.mac}", f"Boot device: {self.bootdev}"]
        if self.bootdev == "pxe":
            lines += self.pxe(info)
        else:
            lines.append("Booting from disk")
        if info["booted"]:
            lines += ["Starting kernel ...", "", f"rackrun rig: {self.name} shell ready", ""]
        else:
            lines += ["ERROR: boot failed", ""]
        write_file(os.path.join(self.dir, "boot.json"), json.dumps(info, indent=1) + "\n")
        self.emit("\r\n".join(lines).encode())
        log(f"{self.name}: power on, boot {self.bootdev}"
            + ("" if info["booted"] else " FAILED"))
        if info["booted"]:
            self.start_shell(info)

    def pxe(self, info):
        """What U-Boot's pxe boot would do with the TFTP root; fills INFO."""
        root = self.rig.args.tftp_root
        if not root:
            return ["PXE: no TFTP root given to the rig (--tftp-root)", "Booting from disk"]
        lines = []
        for name in (f"pxelinux.cfg/01-{self.mac.replace(':', '-')}",
                     "pxelinux.cfg/default-arm-highbank", "pxelinux.cfg/default"):
            lines.append(f"Retrieving file: {name}")
            try:
                with open(os.path.join(root, name)) as f:
                    label = parse_pxelinux(f.read())
            except OSError:
                lines.append("TFTP error: 'File not found' (1)")
                continue
            info["config"] = name
            if label is None:
                lines.append(f"{name}: no LABEL")
                info["booted"] = False
                return lines
            lines.append(f"1:\t{label['label']}")
            for key in ("kernel", "initrd", "fdt"):
                if key in label:
                    info[key] = label[key]
                    lines.append(f"Retrieving file: {label[key]}")
                    if not os.path.isfile(os.path.join(root, label[key].lstrip("/"))):
                        lines.append("TFTP error: 'File not found' (1)")
                        info["booted"] = False
            if "append" in label:
                info["append"] = label["append"]
                lines.append(f"append: {label['append']}")
            if "kernel" not in label:
                info["booted"] = False
            return lines
        lines.append("Config file not found")
        info["booted"] = False
        return lines

    def boot_highbank(self):
        """node-qemu.py on a fresh pty: it prints U-Boot's lines and runs QEMU (its
        serial line is that pty); rig.py stays the wire to the SOL pty, as for a shell."""
        argv = [sys.executable, "-I", NODE_QEMU, "--name", self.name, "--mac", self.mac,
                "--bootdev", self.bootdev, "--node-dir", self.dir,
                "--firmware-dtb", os.path.join(self.rig.args.highbank_cache, "highbank.dtb"),
                "--disk", os.path.join(self.dir, "disk.img"), "--http-port", str(self.http_port)]
        if self.rig.args.tftp_root:
            argv += ["--tftp-root", self.rig.args.tftp_root]
        self.start_node_script(argv)
        log(f"{self.name}: power on, highbank boot {self.bootdev} (node-qemu.py pid "
            f"{self.shell_pid})")

    def boot_uboot(self):
        """node-uboot.py on a fresh pty: QEMU -M virt with U-Boot on the serial line, in a
        private network namespace with its own dnsmasq serving the TFTP root. The boot
        device set over IPMI does not matter: U-Boot does what it is told at its prompt."""
        argv = [sys.executable, "-I", NODE_UBOOT, "--name", self.name, "--mac", self.mac,
                "--tftp-root", self.rig.args.tftp_root, "--node-dir", self.dir,
                "--uboot", self.rig.args.uboot]
        self.in_bootloader = True
        self.out_tail = b""
        self.start_node_script(argv)
        log(f"{self.name}: power on, U-Boot (node-uboot.py pid {self.shell_pid})")

    def start_node_script(self, argv):
        master, slave = os.openpty()
        logfd = os.open(os.path.join(self.dir, "node.log"),
                        os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        self.shell_pid = spawn(argv, [slave, slave, logfd], cwd=self.dir)
        os.close(slave)
        os.close(logfd)
        os.set_blocking(master, False)
        self.shell_fd = master
        self.shell_pending = bytearray()
        self.rig.sel.register(master, selectors.EVENT_READ, self.on_shell_io)
        write_file(os.path.join(self.dir, "shell.pid"), f"{self.shell_pid}\n")

    def start_shell(self, info):
        master, slave = os.openpty()
        sane_tty(slave)
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "HOME": self.dir, "PS1": "# ", "TERM": "vt100", "LANG": "C",
               "RR_NODE": self.name, "RR_MAC": self.mac, "RR_BOOTDEV": info["bootdev"]}
        for key in ("kernel", "initrd", "fdt", "append"):
            env["RR_" + key.upper()] = info.get(key, "")
        self.shell_pid = spawn(["/bin/sh", "-i"], [slave, slave, slave], env=env,
                               cwd=self.dir, ctty=True,
                               unprivileged=self.rig.args.unprivileged_nodes)
        os.close(slave)
        os.set_blocking(master, False)
        self.shell_fd = master
        self.shell_pending = bytearray()
        self.rig.sel.register(master, selectors.EVENT_READ, self.on_shell_io)
        write_file(os.path.join(self.dir, "shell.pid"), f"{self.shell_pid}\n")

    def kill_shell(self):
        if self.shell_pid:
            for pid in session_members(self.shell_pid) + [self.shell_pid]:
                self.rig.kill_pid(pid, signal.SIGKILL)
            self.rig.wait_gone(self.shell_pid, 2.0)
            self.shell_pid = 0
        self.close_shell_fd()

    def close_shell_fd(self):
        if self.shell_fd >= 0:
            self.drain_shell()
            self.rig.sel.unregister(self.shell_fd)
            os.close(self.shell_fd)
            self.shell_fd = -1

    def shell_exited(self, status=0):
        """The shell exited by itself (`exit`): respawn it like init does. A Highbank
        guest that reset or powered itself off (status 0) boots again through U-Boot."""
        self.shell_pid = 0
        self.close_shell_fd()
        if self.power and self.rig.args.node_kind in QEMU_KINDS:
            if os.waitstatus_to_exitcode(status) == 0:
                self.boot_at = max(time.monotonic(), self.last_boot + REBOOT_MIN_INTERVAL_S)
            else:
                log(f"{self.name}: node-qemu.py exited with status "
                    f"{os.waitstatus_to_exitcode(status)}: node stays dead until power cycled")
            return
        if self.power:
            self.emit(b"\r\nrackrun rig: shell exited, respawning\r\n")
            self.start_shell(json.load(open(os.path.join(self.dir, "boot.json"))))

    # ---- the serial line --------------------------------------------------------------

    def emit(self, data):
        """The node prints DATA: console.out, the SOL pty, the taps."""
        os.write(self.out_fd, data)
        if self.in_bootloader:
            seen = self.out_tail + data
            if UBOOT_KERNEL_START in seen:
                self.in_bootloader = False
                log(f"{self.name}: U-Boot started the kernel: serial input is no longer lossy")
            self.out_tail = seen[-len(UBOOT_KERNEL_START):]
        self.out_pending += data
        if len(self.out_pending) > OUT_PENDING_MAX:
            del self.out_pending[:len(self.out_pending) - OUT_PENDING_MAX]
        self.flush_sol()
        for tap in list(self.taps):
            try:
                tap.sendall(data)
            except OSError:
                self.close_tap(tap)

    def flush_sol(self):
        try:
            while self.out_pending:
                n = os.write(self.sol_fd, self.out_pending)
                del self.out_pending[:n]
        except BlockingIOError:
            pass
        self.rig.sel.modify(self.sol_fd, selectors.EVENT_READ
                            | (selectors.EVENT_WRITE if self.out_pending else 0),
                            self.on_sol_readable)

    def receive(self, data, source):
        """The node's serial line received DATA (from SOL, or a tap)."""
        now = time.monotonic_ns()
        lossy_ns = self.rig.args.lossy_ms * 1_000_000
        keep = bytearray()
        for byte in data:
            fate = "ok"
            if not self.shell_pid or self.shell_fd < 0:
                fate = "off"
            elif lossy_ns and self.last_rx_ns and now - self.last_rx_ns < lossy_ns \
                    and self.lossy_now():
                fate = "drop"
            if source == "sol" and fate != "off":
                self.watch_sol_burst(now)
            self.last_rx_ns = now
            self.in_log.write(f"{now}\t{byte:02x}\t{source}\t{fate}\n")
            if fate == "ok":
                keep.append(byte)
        if keep:
            self.shell_pending += keep
            self.flush_shell()

    def lossy_now(self):
        """--lossy-ms applies to a uboot node while U-Boot runs (a bootloader that
        cannot buffer serial input; Linux's driver can), to other kinds always."""
        return self.rig.args.node_kind != "uboot" or self.in_bootloader

    def watch_sol_burst(self, now):
        """--sol-burst-ms: a BMC that drops SOL when input comes too fast (the seed's
        "SOL session closed by BMC"): a SOL byte less than N ms after the previous one
        (bytes read in one chunk count as 0 ms apart) deactivates the session from
        outside, as `ipmitool sol deactivate` would, at most once a second."""
        burst_ns = self.rig.args.sol_burst_ms * 1_000_000
        if not burst_ns or not self.last_rx_ns or now - self.last_rx_ns >= burst_ns:
            return
        if now - getattr(self, "sol_tripped_ns", 0) < 1_000_000_000 or not self.port:
            return
        self.sol_tripped_ns = now
        log(f"{self.name}: SOL input burst ({(now - self.last_rx_ns) // 1000} us apart): "
            f"deactivating the SOL session (ipmitool sol deactivate)")
        with open(os.path.join(self.dir, "sol-trips.log"), "a") as f:
            f.write(f"{now}\n")
        argv = ["ipmitool", "-I", "lanplus", "-C", "3", "-H", "127.0.0.1", "-p", str(self.port),
                "-U", "admin", "-f", os.path.join(self.rig.dir, "bmc.password"), "sol",
                "deactivate"]
        try:
            subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
        except OSError as e:
            log(f"{self.name}: ipmitool sol deactivate: {e}")

    def flush_shell(self):
        try:
            while self.shell_pending and self.shell_fd >= 0:
                n = os.write(self.shell_fd, self.shell_pending)
                del self.shell_pending[:n]
        except BlockingIOError:
            pass
        except OSError:
            self.shell_pending.clear()
        if self.shell_fd >= 0:
            self.rig.sel.modify(self.shell_fd, selectors.EVENT_READ
                                | (selectors.EVENT_WRITE if self.shell_pending else 0),
                                self.on_shell_io)

    def on_sol_readable(self, mask):
        if mask & selectors.EVENT_WRITE:
            self.flush_sol()
        if mask & selectors.EVENT_READ:
            try:
                data = os.read(self.sol_fd, 4096)
            except (BlockingIOError, OSError):
                return
            if data:
                self.receive(data, "sol")

    def drain_shell(self):
        while True:
            try:
                data = os.read(self.shell_fd, 4096)
            except (BlockingIOError, OSError):
                return
            if not data:
                return
            self.emit(data)

    def on_shell_io(self, mask):
        if mask & selectors.EVENT_WRITE:
            self.flush_shell()
        if mask & selectors.EVENT_READ and self.shell_fd >= 0:
            try:
                data = os.read(self.shell_fd, 4096)
            except BlockingIOError:
                return
            except OSError:        # EIO: the shell and its session are gone
                data = b""
            if data:
                self.emit(data)
            else:
                self.rig.sel.unregister(self.shell_fd)
                os.close(self.shell_fd)
                self.shell_fd = -1

    def on_tap_accept(self, mask):
        try:
            conn, _ = self.tap_listener.accept()
        except OSError:
            return
        conn.setblocking(True)
        conn.settimeout(1.0)      # a tap that stops reading is dropped, not waited for
        self.taps.append(conn)
        self.rig.sel.register(conn, selectors.EVENT_READ, lambda m, c=conn: self.on_tap_data(c))

    def on_tap_data(self, conn):
        try:
            data = conn.recv(4096)
        except OSError:
            data = b""
        if data:
            self.receive(data, "sock")
        else:
            self.close_tap(conn)

    def close_tap(self, conn):
        if conn in self.taps:
            self.taps.remove(conn)
            self.rig.sel.unregister(conn)
            conn.close()

    def pids(self):
        pids = [self.bmc_pid] if self.bmc_pid else []
        if self.shell_pid:
            pids += [p for p in session_members(self.shell_pid) if p not in pids]
            if self.shell_pid not in pids:
                pids.append(self.shell_pid)
        return pids

    def teardown(self):
        """After Rig.teardown stopped the shell and the BMC: close and unlink."""
        for tap in list(self.taps):
            self.close_tap(tap)
        for path in (self.sol_path, os.path.join(self.dir, "tty"),
                     os.path.join(self.dir, "console.sock")):
            try:
                os.unlink(path)
            except OSError:
                pass



class Rig:
    def __init__(self, args):
        self.args = args
        self.dir = os.path.abspath(args.dir)
        self.user = "admin"
        self.password = self.read_password(args.password_file)
        self.sel = selectors.DefaultSelector()
        self.keep_fds = []
        self.stopping = False
        self.ready = False
        self.failed = None
        self.children = set()
        self.stdin_open = False

    @staticmethod
    def read_password(path):
        if not path:
            return secrets.token_hex(8)
        with open(path) as f:
            password = f.read().strip()
        if not password or len(password) > 20 or any(c in password for c in '"\\\n'):
            raise SystemExit(f"rig: {path}: password must be 1-20 characters, no quotes")
        return password

    def ports_taken(self):
        return {n.port for n in self.nodes if n.port}

    def http_ports_taken(self):
        return {n.http_port for n in getattr(self, "nodes", []) if n.http_port}

    def setup(self):
        os.makedirs(self.dir, exist_ok=True)
        for bad in " \t\"'\\":
            if bad in self.dir or bad in HERE or bad in sys.executable:
                raise SystemExit(f"rig: paths must not contain {bad!r}: {self.dir}")
        if self.args.tftp_root:
            self.args.tftp_root = os.path.abspath(self.args.tftp_root)
        if self.args.node_kind == "highbank":
            self.args.highbank_cache = os.path.abspath(self.args.highbank_cache or "")
            dtb = os.path.join(self.args.highbank_cache, "highbank.dtb")
            if not self.args.highbank_cache or not os.path.isfile(dtb):
                raise SystemExit(f"rig: no Highbank node image ({dtb} missing): run "
                                 "tests/rig/highbank/build-node-image.sh CACHE and pass "
                                 "--highbank-cache CACHE (or set RR_HIGHBANK_CACHE)")
        if self.args.node_kind == "uboot":
            if not self.args.tftp_root:
                raise SystemExit("rig: --node-kind uboot needs --tftp-root (what dnsmasq serves)")
            if not os.path.isfile(self.args.uboot):
                raise SystemExit(f"rig: {self.args.uboot} missing: install u-boot-qemu "
                                 "(deploy/install-deps.sh)")
            if os.geteuid() != 0:
                raise SystemExit("rig: --node-kind uboot needs root (each node gets a private "
                                 "network namespace for its dnsmasq)")
        LIBC.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)  # orphans of node shells come to us
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_r.setblocking(False)
        self.wake_w.setblocking(False)
        signal.set_wakeup_fd(self.wake_w.fileno(), warn_on_full_buffer=False)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self.on_stop_signal)
        signal.signal(signal.SIGCHLD, lambda s, f: None)
        self.sel.register(self.wake_r, selectors.EVENT_READ, self.on_wake)
        write_file(os.path.join(self.dir, "bmc.password"), self.password + "\n", 0o600)
        self.ctl = listen_unix(os.path.join(self.dir, "ctl.sock"), self.keep_fds)
        self.sel.register(self.ctl, selectors.EVENT_READ, self.on_ctl_accept)
        self.nodes = []
        for i in range(self.args.nodes):
            self.nodes.append(Node(self, i))
        self.setup_stdin()
        for node in self.nodes:
            node.bmc_start()

    def setup_stdin(self):
        if self.args.no_stdin:
            return
        st = os.fstat(0)
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == os.stat(os.devnull).st_rdev:
            log("stdin is /dev/null: ignoring it (stop with SIGTERM or Ctrl-C)")
            return
        self.stdin_buf = b""
        self.stdin_open = True
        self.sel.register(0, selectors.EVENT_READ, self.on_stdin)

    # ---- process control --------------------------------------------------------------

    def kill_pid(self, pid, sig):
        try:
            os.kill(pid, sig)
        except OSError:
            pass

    def kill_group(self, pid, sig):
        try:
            os.killpg(pid, sig)
        except OSError:
            self.kill_pid(pid, sig)

    def reap(self):
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            for node in self.nodes:
                if pid == node.bmc_pid:
                    node.bmc_pid = 0
                    if node.bmc_state == "up" and not self.stopping:
                        log(f"{node.name}: ipmi_sim pid {pid} died")
                        node.bmc_state = "down"
                        node.remove_lock()
                elif pid == node.shell_pid and not self.stopping:
                    node.shell_exited(status)

    def wait_gone(self, pid, timeout):
        """Wait (reaping) until PID no longer exists; False after TIMEOUT seconds."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                got, _ = os.waitpid(pid, os.WNOHANG)
                if got == pid:
                    return True
            except ChildProcessError:
                if proc_stat(pid) is None:
                    return True
            time.sleep(0.01)
        return False

    # ---- event handlers ---------------------------------------------------------------

    def on_stop_signal(self, signum, frame):
        self.stopping = True

    def on_wake(self, mask):
        try:
            while self.wake_r.recv(512):
                pass
        except BlockingIOError:
            pass

    def on_ctl_accept(self, mask):
        try:
            conn, _ = self.ctl.accept()
        except OSError:
            return
        conn.settimeout(5.0)
        try:
            request = b""
            while not request.endswith(b"\n"):
                chunk = conn.recv(1024)
                if not chunk:
                    break
                request += chunk
            conn.sendall(self.ctl_answer(request.decode(errors="replace").split()).encode())
        except OSError as e:
            log(f"ctl.sock: {e}")
        finally:
            conn.close()

    def ctl_answer(self, words):
        node = next((n for n in self.nodes if words and n.name == words[0]), None)
        if node is None or len(words) < 3:
            return f"ERR unknown node or bad call: {' '.join(words)!r}\n"
        try:
            return "OK\n" + node.hook(words[1:])
        except (ValueError, OSError) as e:
            return f"ERR {node.name}: {e}\n"

    def on_stdin(self, mask):
        try:
            data = os.read(0, 4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            log("stdin closed: stopping")
            self.sel.unregister(0)
            self.stdin_open = False
            self.stopping = True
            return
        self.stdin_buf += data
        while b"\n" in self.stdin_buf:
            line, self.stdin_buf = self.stdin_buf.split(b"\n", 1)
            self.command(line.decode(errors="replace").split())

    def reply(self, text):
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    def command(self, words):
        if not words:
            return
        if words == ["pids"]:
            pids = [os.getpid()] + [p for n in self.nodes for p in n.pids()]
            return self.reply("OK " + " ".join(map(str, pids)))
        if len(words) != 3 or words[0] not in ("bmc", "power") or not words[1].isdigit() \
                or int(words[1]) >= len(self.nodes):
            return self.reply(f"ERR bad command {' '.join(words)!r} (bmc I kill|stop|cont|start|"
                              "restart, power I on|off|reset, pids)")
        node = self.nodes[int(words[1])]
        if words[0] == "power":
            return self.power_command(node, words[2])
        self.bmc_command(node, words[2])

    def power_command(self, node, action):
        if action not in ("on", "off", "reset"):
            return self.reply(f"ERR power: unknown action {action!r}")
        node.set({"on": "power", "off": "power", "reset": "reset"}[action],
                 "0" if action == "off" else "1")
        self.reply("OK")

    def bmc_command(self, node, action):
        if action == "kill":
            node.bmc_kill()
        elif action in ("stop", "cont") and node.bmc_pid:
            self.kill_group(node.bmc_pid, signal.SIGSTOP if action == "stop" else signal.SIGCONT)
        elif action in ("start", "restart"):
            if action == "restart" or node.bmc_state != "up":
                node.bmc_kill()
                node.bmc_waiters.append(self.reply)
                node.bmc_start()
            else:
                self.reply("OK")
            return
        else:
            return self.reply(f"ERR bmc {node.name}: cannot {action} (pid {node.bmc_pid})")
        self.reply("OK")

    def bmc_failure(self, node, why):
        if not self.ready:
            self.failed = f"{node.name}: {why}"
            self.stopping = True

    # ---- main loop --------------------------------------------------------------------

    def write_ready(self):
        nodes = [{"name": n.name, "host": "127.0.0.1", "port": n.port, "user": self.user,
                  "password": self.password, "mac": n.mac, "dir": n.dir,
                  "sol_device": n.sol_path, "console_sock": os.path.join(n.dir, "console.sock"),
                  "bmc_pid": n.bmc_pid, "kind": self.args.node_kind,
                  "http_port": n.http_port or None,
                  "disk": os.path.join(n.dir, "disk.img") if n.http_port else None}
                 for n in self.nodes]
        doc = {"pid": os.getpid(), "dir": self.dir, "tftp_root": self.args.tftp_root,
               "password_file": os.path.join(self.dir, "bmc.password"), "nodes": nodes}
        path = os.path.join(self.dir, "rig.json")
        write_file(path, json.dumps(doc, indent=1) + "\n", 0o600)
        self.ready = True
        log(f"ready: {len(self.nodes)} nodes, ports "
            + " ".join(str(n.port) for n in self.nodes))
        self.reply(f"READY {path}")

    def step(self):
        starting = [n for n in self.nodes if n.bmc_state == "starting"]
        boots = [n.boot_at for n in self.nodes if n.boot_at is not None]
        timeout = 0.05 if starting else 1.0
        if boots:
            timeout = max(0.0, min([timeout] + [b - time.monotonic() for b in boots]))
        for key, mask in self.sel.select(timeout):
            key.data(mask)
        self.reap()
        for node in self.nodes:
            if node.bmc_state == "starting":
                node.bmc_poll()
            if node.boot_at is not None and node.boot_at <= time.monotonic():
                node.boot()
        if not self.ready and not self.failed and all(n.bmc_state == "up" for n in self.nodes):
            self.write_ready()

    def run(self):
        try:
            self.setup()
            while not self.stopping:
                self.step()
        finally:
            self.teardown()
        if self.failed:
            log(f"failed: {self.failed}")
            self.reply(f"FAILED {self.failed}")
            return 1
        return 0

    def teardown(self):
        self.stopping = True
        nodes = getattr(self, "nodes", [])
        for node in nodes:
            node.power = 0
            node.kill_shell()
        # All BMCs at once: SIGTERM (ipmi_sim removes its lock), SIGKILL after 1 s.
        for node in nodes:
            if node.bmc_pid:
                self.kill_group(node.bmc_pid, signal.SIGCONT)
                self.kill_group(node.bmc_pid, signal.SIGTERM)
        end = time.monotonic() + 1.0
        for node in nodes:
            if node.bmc_pid and self.wait_gone(node.bmc_pid, max(0.0, end - time.monotonic())):
                node.bmc_pid = 0
            node.bmc_kill()
            node.teardown()
        # Anything else that ended up our child (orphans reparented to us, the subreaper).
        for _ in range(50):
            orphans = [p for p in all_pids() if (st := proc_stat(p)) and st[0] == os.getpid()]
            if not orphans:
                break
            for pid in orphans:
                self.kill_pid(pid, signal.SIGKILL)
            time.sleep(0.02)
            self.reap()
        for name in ("ctl.sock",):
            try:
                os.unlink(os.path.join(self.dir, name))
            except OSError:
                pass
        log("stopped")


def main():
    p = argparse.ArgumentParser(description="Emulated rack: N ipmi_sim BMCs with fast shell nodes.")
    p.add_argument("--nodes", type=int, required=True, help="number of nodes (1-250)")
    p.add_argument("--dir", required=True, help="state directory (created)")
    p.add_argument("--tftp-root", help="TFTP root read at PXE boot like U-Boot would")
    p.add_argument("--hook", help="chassis_control hook program instead of the Python "
                   "chassisctl (same arguments and ctl.sock protocol; the benchmarks use a C one)")
    p.add_argument("--base-name", default="n", help="node name prefix (default n: n01, n02...)")
    p.add_argument("--password-file", help="file holding the BMC password (default: random)")
    p.add_argument("--lossy-ms", type=int, default=0,
                   help="drop serial input bytes arriving sooner than N ms after the previous one")
    p.add_argument("--sol-burst-ms", type=int, default=0,
                   help="deactivate a node's SOL session (ipmitool sol deactivate) when a SOL "
                        "input byte comes less than N ms after the previous one")
    p.add_argument("--boot-delay-ms", type=int, default=0,
                   help="delay between power on and the boot banner")
    p.add_argument("--no-stdin", action="store_true", help="ignore stdin (no EOF stop)")
    p.add_argument("--unprivileged-nodes", action="store_true",
                   help="run fast node shells as nobody when the rig runs as root")
    p.add_argument("--node-kind", choices=("fast",) + QEMU_KINDS, default="fast",
                   help="fast: a host shell that boots at once (default); highbank: QEMU "
                        "-M highbank booting the real armhf kernel (docs/highbank-node.md); "
                   "uboot: QEMU -M virt with Debian's U-Boot, PXE from a real dnsmasq "
                   "serving --tftp-root (root needed: a network namespace per node)")
    p.add_argument("--uboot", default=UBOOT_BIN,
                   help=f"uboot: the U-Boot image (default {UBOOT_BIN}, package u-boot-qemu)")
    p.add_argument("--highbank-cache", default=os.environ.get("RR_HIGHBANK_CACHE"),
                   help="highbank: build-node-image.sh's cache (default $RR_HIGHBANK_CACHE)")
    p.add_argument("--disk-size-mb", type=int, default=256,
                   help="highbank: size of each node's empty SATA disk nXX/disk.img")
    args = p.parse_args()
    if not 1 <= args.nodes <= 250:
        p.error("--nodes must be 1-250")
    return Rig(args).run()


if __name__ == "__main__":
    sys.exit(main())
