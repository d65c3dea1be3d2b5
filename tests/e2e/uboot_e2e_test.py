#!/usr/bin/env python3
"""uboot_e2e_test.py: `boot: {method: uboot-pxe}` end to end on the rig's uboot node.

The node (rig.py --node-kind uboot, tests/rig/highbank/node-uboot.py) is QEMU
-M virt running Debian's U-Boot (u-boot-qemu); the worker interrupts its
autoboot and types `setenv autoload no`, `dhcp`, `pxe get`, `pxe boot` at its
`=> ` prompt over SOL, and U-Boot fetches pxelinux.cfg/01-<mac>, the kernel and
the initrd from a real dnsmasq serving the worker's TFTP root. The kernel and
initrd are the highbank node image's armhf ones (tests/rig/highbank), served
to the worker by a local HTTP server as job artifacts. Through the real
binaries (rackrun-master, rackrun-worker, rackrun), as rackrun_e2e_test.py.

  uboot_e2e_test.py uboot    deploy tftp -> boot uboot-pxe -> test: armv7l;
                             dnsmasq's log shows it sent the config, kernel, initrd;
                             then a job without deploy: "pxe get failed: Config
                             file not found"
  uboot_e2e_test.py lossy    rig --lossy-ms 20 (U-Boot drops characters closer than
                             20 ms): serial.bootloader_delay_ms 0 fails, naming the
                             lost characters (the garbled echo is in the log);
                             bootloader_delay_ms 40 completes

Exit 77 (ctest: skipped) only when qemu-system-arm cannot boot U-Boot at all.
"""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rackrun_e2e_test as e2e  # noqa: E402

from rackrun_e2e_test import check, console_of, expect_outcome, q, results_of  # noqa: E402

UBOOT_BIN = "/usr/lib/u-boot/qemu_arm/u-boot.bin"
SKIP = 77


class UbootCluster(e2e.Cluster):
    """The e2e cluster on uboot nodes: device types with their own serial delays."""

    def __init__(self, work, nodes, rig_args=(), types=None):
        self.rig_args = list(rig_args)
        self.types = types or {"uboot": 0}
        super().__init__(work, nodes, "uboot")

    def start_rig(self, nodes):
        """Cluster.start_rig's rig, a uboot one with our extra arguments (--lossy-ms)."""
        argv = [sys.executable, os.path.join(e2e.SRC, "tests", "rig", "rig.py"), "--nodes",
                str(nodes), "--dir", os.path.join(self.work, "rig"), "--tftp-root",
                os.path.join(self.work, "tftp"), "--node-kind", "uboot", *self.rig_args]
        log = open(os.path.join(self.work, "rig.log"), "ab")
        self.rig = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=log, preexec_fn=e2e.die_with_us)
        log.close()
        line = self.rig.stdout.readline().decode().strip()
        check(line.startswith("READY "), f"rig did not start: {line!r} (see rig.log)")
        with open(line[6:]) as f:
            self.rig_json = json.load(f)

    def configs(self, worker_port, client_port):
        """The worker.yaml of Cluster, with one device type per node (in order)."""
        super().configs(worker_port, client_port)
        path = os.path.join(self.work, "worker.yaml")
        with open(path) as f:
            text = f.read()
        types = "device_types:\n" + "".join(
            f"  {name}:\n    prompts: [\"# \"]\n    serial: {{bootloader_delay_ms: {delay}, "
            "test_shell_delay_ms: 0}\n" for name, delay in self.types.items())
        text = text.replace('device_types:\n  highbank:\n    prompts: ["# "]\n', types)
        for name in self.types:
            text = text.replace("    type: highbank\n", f"    type: {name}\n", 1)
        with open(path, "w") as f:
            f.write(text)


def uboot_job(name, device_type, port, shas, boot_timeout="90s"):
    base = f"http://127.0.0.1:{port}"
    return f"""job_name: {q(name)}
device_type: {device_type}
timeouts: {{job: 3m, action: 2m}}
actions:
  - deploy:
      to: tftp
      kernel: {{url: {base}/vmlinuz, sha256: {shas['vmlinuz']}}}
      initrd: {{url: {base}/initrd.cpio.gz, sha256: {shas['initrd.cpio.gz']}}}
      append: "console=ttyAMA0"
  - boot: {{method: uboot-pxe, prompts: ["# "], timeout: {boot_timeout}}}
  - test:
      steps:
        - {{name: uname-m, run: "uname -m"}}
        - {{name: armv7l, run: "uname -m | grep -qx armv7l"}}
"""


def check_booted(c, job, summary, events, node):
    expect_outcome(summary, "complete", job)
    results = results_of(summary)
    for name in ("uname-m", "armv7l"):
        check(results.get(name, {}).get("value") == "pass",
              f"job {job}: result {name}: {results.get(name)}")
    console = console_of(events).decode(errors="replace")
    for text in ("U-Boot 2023", "=> pxe get", "Starting kernel", "armv7l",
                 "Booting Linux on physical CPU"):
        check(text in console, f"job {job}: the stored log lacks {text!r}")
    mac = node["mac"].replace(":", "-")
    with open(os.path.join(node["dir"], "dnsmasq.log")) as f:
        served = f.read()
    for path in (f"pxelinux.cfg/01-{mac}", f"files/{node['name']}/kernel",
                 f"files/{node['name']}/initrd"):
        check(f"/{path} to 10.0.2.15" in served, f"job {job}: dnsmasq did not send {path}")


def case_uboot(work):
    c = UbootCluster(work, 1)
    try:
        shas = e2e.publish_boot_files(c.www)
        start = time.monotonic()
        job = c.submit("uboot", uboot_job("uboot-pxe", "uboot", c.http_port, shas))
        summary, events = c.wait(job, 150)
        check_booted(c, job, summary, events, c.rig_json["nodes"][0])
        print(f"uboot-pxe job {job}: complete in {time.monotonic() - start:.1f} s")
        # The job's 01-<mac> is gone after it and the TFTP root has no default: U-Boot's
        # `pxe get` finds no config, and the job says so with U-Boot's own words.
        job = c.submit("noconfig", f"""job_name: uboot-no-config
device_type: uboot
timeouts: {{job: 2m, action: 1m}}
actions:
  - boot: {{method: uboot-pxe, prompts: ["# "]}}
""")
        summary, events = c.wait(job, 90)
        expect_outcome(summary, "incomplete", job)
        check(summary.get("reason") == "boot: u-boot: pxe get failed: Config file not found",
              f"job {job}: reason {summary.get('reason')!r}")
    finally:
        c.close()


def case_lossy(work):
    c = UbootCluster(work, 2, ["--lossy-ms", "20"], {"uboot-fast": 0, "uboot-paced": 40})
    try:
        shas = e2e.publish_boot_files(c.www)
        job = c.submit("fast", uboot_job("lossy-fast", "uboot-fast", c.http_port, shas))
        summary, events = c.wait(job, 120)
        expect_outcome(summary, "incomplete", job)
        reason = summary.get("reason") or ""
        check(reason.startswith("boot: u-boot: ") and "characters were lost" in reason
              and "bootloader_delay_ms is 0 ms" in reason,
              f"job {job}: reason does not say characters were lost: {reason!r}")
        console = console_of(events).decode(errors="replace")
        check("=> setenv autoload no" not in console and "Starting kernel" not in console,
              f"job {job}: the command arrived whole or the kernel started: see the log")
        print(f"bootloader_delay_ms 0 at --lossy-ms 20: {reason}")
        start = time.monotonic()
        job = c.submit("paced", uboot_job("lossy-paced", "uboot-paced", c.http_port, shas))
        summary, events = c.wait(job, 150)
        check_booted(c, job, summary, events, c.rig_json["nodes"][1])
        print(f"bootloader_delay_ms 40 at --lossy-ms 20: job {job} complete in "
              f"{time.monotonic() - start:.1f} s")
    finally:
        c.close()


def qemu_boots_uboot():
    """False when this machine's QEMU cannot even print U-Boot's banner (no point then)."""
    if not os.path.isfile(UBOOT_BIN):
        return False
    try:
        res = subprocess.run(["qemu-system-arm", "-M", "virt", "-bios", UBOOT_BIN, "-display",
                              "none", "-monitor", "none", "-serial", "stdio", "-nic", "none"],
                             stdin=subprocess.DEVNULL, capture_output=True, timeout=8)
        out = res.stdout
    except subprocess.TimeoutExpired as e:
        out = e.stdout or b""
    except OSError:
        return False
    return b"U-Boot 20" in out


def main(argv):
    cases = {"uboot": case_uboot, "lossy": case_lossy}
    if len(argv) != 2 or argv[1] not in cases:
        print(f"usage: {argv[0]} {'|'.join(cases)}", file=sys.stderr)
        return 2
    if not qemu_boots_uboot():
        print(f"SKIP: qemu-system-arm -M virt -bios {UBOOT_BIN} does not boot here")
        return SKIP
    e2e.CASES.clear()
    e2e.CASES.update(cases)
    return e2e.main(argv)         # work dir, subreaper, cleanup and verdict as there


if __name__ == "__main__":
    sys.exit(main(sys.argv))
