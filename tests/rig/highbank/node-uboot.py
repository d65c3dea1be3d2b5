#!/usr/bin/env python3
"""node-uboot.py: one emulated node booted by real U-Boot, PXE from a real dnsmasq.

The rig's power-on hook runs this (node kind `uboot`) with the node's serial
line as stdin/stdout, like node-qemu.py. Unlike node-qemu.py nothing here
decides what to boot: `qemu-system-arm -M virt -bios u-boot.bin` (Debian's
u-boot-qemu) runs on that line, counts down "Hit any key to stop autoboot",
and whoever drives the console (the worker's `boot: {method: uboot-pxe}`)
interrupts it and types `dhcp`, `pxe get`, `pxe boot` at its `=> ` prompt.
U-Boot then fetches pxelinux.cfg/01-<mac>, the kernel and the initrd over
TFTP from dnsmasq serving the worker's TFTP root, and boots them with the
device tree QEMU gave it.

The network is private to this node: the process enters a new network
namespace (unshare(CLONE_NEWNET); root needed) holding only `lo` and a tap
device rrtap0 (10.0.2.2/24); dnsmasq listens on 10.0.2.2 only and answers
DHCP for the node's MAC alone (10.0.2.15, boot file pxelinux.0) and TFTP;
QEMU's NIC (virtio-net, the node's MAC) is that tap. So any number of nodes
and tests run at once, each with its own port 69, and nothing is served on
the host's networks. (QEMU's user networking cannot be used: libslirp
answers every TFTP request to its virtual server itself, "Access violation"
when it has no tftp= directory, so a real TFTP server is never reached.)

Processes: dnsmasq and QEMU are our children with PR_SET_PDEATHSIG(SIGKILL);
the namespace and its tap vanish with the last of them. Exit 0 when the
guest reset or powered itself off (-no-reboot): the rig starts us again,
which boots through U-Boot again. Logs: NODE_DIR/qemu.log (QEMU, the
commands run), NODE_DIR/dnsmasq.log (every DHCP exchange and file sent),
NODE_DIR/boot.json. Python 3 stdlib only. See docs/highbank-node.md.
"""
import argparse
import ctypes
import importlib.util
import os
import shlex
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("node_qemu", os.path.join(HERE, "node-qemu.py"))
node_qemu = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(node_qemu)

PR_SET_PDEATHSIG = 1
CLONE_NEWNET = 0x40000000
LIBC = ctypes.CDLL(None, use_errno=True)
UBOOT_BIN = "/usr/lib/u-boot/qemu_arm/u-boot.bin"
TAP = "rrtap0"
SERVER_IP = "10.0.2.2"
NODE_IP = "10.0.2.15"
DNSMASQ_READY_S = 5.0


class NodeError(Exception):
    """The node cannot be started: the message goes to the console."""


def enter_private_netns():
    if LIBC.unshare(CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise NodeError(f"unshare(CLONE_NEWNET): {os.strerror(err)} "
                        "(the uboot node needs root for its private network)")


def run(argv, log):
    log.write(f"{time.strftime('%F %T')} {shlex.join(argv)}\n".encode())
    log.flush()
    res = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, check=False)
    if res.returncode != 0:
        raise NodeError(f"{shlex.join(argv)}: exit status {res.returncode}")


def setup_network(log):
    """lo up, and the tap QEMU's NIC attaches to, as the node's network segment."""
    run(["ip", "link", "set", "lo", "up"], log)
    run(["ip", "tuntap", "add", "dev", TAP, "mode", "tap"], log)
    run(["ip", "addr", "add", f"{SERVER_IP}/24", "dev", TAP], log)
    run(["ip", "link", "set", TAP, "up"], log)


def dnsmasq_argv(args):
    d = args.node_dir
    return [args.dnsmasq, "--conf-file=/dev/null", "--keep-in-foreground", "--port=0",
            "--bind-interfaces", f"--listen-address={SERVER_IP}", "--pid-file=",
            "--user=root",            # the worker's TFTP root may be private (0700)
            f"--dhcp-range={NODE_IP},{NODE_IP},255.255.255.0,1h",
            f"--dhcp-host={args.mac},{NODE_IP}", "--dhcp-boot=pxelinux.0",
            f"--dhcp-leasefile={os.path.join(d, 'dnsmasq.leases')}",
            "--enable-tftp", f"--tftp-root={args.tftp_root}",
            "--log-dhcp", f"--log-facility={os.path.join(d, 'dnsmasq.log')}"]


def child_setup():
    LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def udp_bound(port, addr_hex):
    """True when some socket in this namespace is bound to ADDR_HEX:PORT (/proc/net/udp)."""
    with open("/proc/net/udp") as f:
        for line in f.readlines()[1:]:
            local = line.split()[1]
            if local == f"{addr_hex}:{port:04X}":
                return True
    return False


def start_dnsmasq(args, log):
    argv = dnsmasq_argv(args)
    log.write(f"{time.strftime('%F %T')} {shlex.join(argv)}\n".encode())
    log.flush()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                            preexec_fn=child_setup)
    server_hex = "".join(f"{int(b):02X}" for b in reversed(SERVER_IP.split(".")))
    deadline = time.monotonic() + DNSMASQ_READY_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise NodeError(f"dnsmasq exited with status {proc.returncode} "
                            f"(see {args.node_dir}/qemu.log)")
        if udp_bound(69, server_hex) and udp_bound(67, "00000000"):
            return proc
        time.sleep(0.02)
    raise NodeError(f"dnsmasq not listening on {SERVER_IP}:69 after {DNSMASQ_READY_S} s")


def qemu_argv(args):
    return [args.qemu, "-M", "virt", "-m", f"{args.memory}M",
            "-accel", f"tcg,tb-size={args.tb_size}", "-bios", args.uboot,
            "-display", "none", "-monitor", "none", "-no-reboot",
            "-chardev", "stdio,id=s0,signal=off", "-serial", "chardev:s0",
            "-netdev", f"tap,id=n0,ifname={TAP},script=no,downscript=no",
            "-device", f"virtio-net-device,netdev=n0,mac={args.mac}"]


def parse_args(argv):
    p = argparse.ArgumentParser(description="One emulated node booted by U-Boot (QEMU -M "
                                "virt), PXE from dnsmasq. The serial line is stdin/stdout.")
    p.add_argument("--name", default="node", help="node name (boot.json)")
    p.add_argument("--mac", required=True, help="NIC MAC, e.g. 52:54:00:00:00:01")
    p.add_argument("--tftp-root", required=True, help="served by dnsmasq's TFTP")
    p.add_argument("--node-dir", required=True, help="logs and boot.json go there")
    p.add_argument("--memory", type=int, default=512, help="guest RAM in MiB (default 512)")
    p.add_argument("--tb-size", type=int, default=32, help="QEMU translation cache in MiB")
    p.add_argument("--uboot", default=UBOOT_BIN, help=f"U-Boot image (default {UBOOT_BIN})")
    p.add_argument("--qemu", default="qemu-system-arm")
    p.add_argument("--dnsmasq", default="dnsmasq")
    return p.parse_args(argv)


def main(argv):
    args = parse_args(argv)
    if os.isatty(0):
        node_qemu.raw_line(0)
    con = node_qemu.Console(1)
    info = {"kind": "uboot", "name": args.name, "mac": args.mac, "booted": False}
    log_path = os.path.join(args.node_dir, "qemu.log")
    log = open(log_path, "ab")
    try:
        if not os.path.isfile(args.uboot):
            raise NodeError(f"{args.uboot} missing (Debian package u-boot-qemu)")
        enter_private_netns()
        setup_network(log)
        start_dnsmasq(args, log)
        info["booted"] = True
    except (NodeError, OSError) as e:
        info["error"] = str(e)
        con.say("", f"rackrun uboot node {args.name}: {e}", "ERROR: node cannot start")
    node_qemu.write_json(os.path.join(args.node_dir, "boot.json"), info)
    if not info["booted"]:
        node_qemu.wait_forever()
    log.close()
    status = node_qemu.run_qemu(qemu_argv(args), log_path, [])
    if status == 0:
        return 0                      # the guest reset or powered off (-no-reboot)
    if status < 0:
        return 1                      # we were told to stop
    con.say("", f"ERROR: qemu exited with status {status} (see {log_path})")
    node_qemu.wait_forever()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
