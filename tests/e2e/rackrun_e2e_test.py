#!/usr/bin/env python3
"""rackrun_e2e_test.py: jobs end to end through the real rackrun binaries.

Each case starts, under $RR_BINARY_DIR/test-tmp/e2e-<case>-<pid>:
  - the emulated rack (tests/rig/rig.py; `--node-kind highbank`: QEMU -M
    highbank nodes booting the real Debian armhf kernel, docs/highbank-node.md),
  - an HTTP server for the job's artifacts (python3 -m http.server on
    127.0.0.1; the nodes reach it as 10.0.2.2, QEMU's user network),
  - CURVE keys (rackrun keygen), rackrun-master and rackrun-worker with
    configurations written from the rig's rig.json, as deploy/demo.sh does,
then submits jobs with the rackrun CLI and checks their stored event streams
(`rackrun --json logs`, `rackrun --json show`).

  rackrun_e2e_test.py highbank     deploy tftp -> boot ipmi-pxe -> test (armv7l,
                                   Highbank model) -> deploy to disk -> boot
                                   ipmi-disk -> test -> transfer (sha256 checked)
  rackrun_e2e_test.py parallel     one job on each of 4 highbank nodes at once
  rackrun_e2e_test.py fail-404     disk image URL answers 404: job incomplete, reason
  rackrun_e2e_test.py fail-sha     disk image sha256 mismatch: job incomplete, reason
  rackrun_e2e_test.py fail-boot    a kernel that never reaches the prompt: boot timeout
  rackrun_e2e_test.py fail-power   the node powered off under a running job

Every process started is stopped, also on failure (this process is a child
subreaper and every child has PDEATHSIG; the rig kills its QEMUs). The work
dir is removed on success unless RR_KEEP_RIG=1, kept on failure.
"""
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from rrtest import (Failure, become_subreaper, check,  # noqa: E402,F401
                    die_with_us, free_tcp_ports, q, sha256_file)

SRC = os.environ.get("RR_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
BIN = os.environ.get("RR_BINARY_DIR") or os.getcwd()
CACHE = os.environ.get("RR_HIGHBANK_CACHE") or os.path.join(BIN, "highbank-cache")
HB = os.path.join(SRC, "tests", "rig", "highbank")
RACKRUN = os.path.join(BIN, "cli", "rackrun")
MASTER = os.path.join(BIN, "master", "rackrun-master")
WORKER = os.path.join(BIN, "worker", "rackrun-worker")
HOST_FROM_NODE = "10.0.2.2"       # QEMU user networking: the host's loopback
SEQ_TEXT = "".join(f"{i}\n" for i in range(1, 20001)).encode()


class Cluster:
    """rig + artifact HTTP server + master + worker, all stopped by close()."""

    def __init__(self, work, nodes, kind):
        self.work, self.kind, self.procs, self.rig = work, kind, [], None
        self.www = os.path.join(work, "www")
        self.artifacts = os.path.join(work, "artifacts")
        for d in ("tftp", "www", "spool", "keys", "workers.d", "clients.d", "artifacts"):
            os.makedirs(os.path.join(work, d), exist_ok=True)
        self.start_rig(nodes)
        self.http_port, worker_port, client_port = free_tcp_ports(3)
        self.spawn("http", [sys.executable, "-m", "http.server", "--bind", "127.0.0.1",
                            "--directory", self.www, str(self.http_port)])
        self.keys()
        self.configs(worker_port, client_port)
        self.spawn("master", [MASTER, "--config", os.path.join(work, "master.yaml")])
        self.spawn("worker", [WORKER, "--config", os.path.join(work, "worker.yaml")])
        self.env = dict(os.environ, RACKRUN_MASTER=f"tcp://127.0.0.1:{client_port}",
                        RACKRUN_KEY=os.path.join(work, "keys", "client_secret"),
                        RACKRUN_MASTER_KEY=os.path.join(work, "keys", "master"))
        self.wait_devices_idle(nodes)

    def spawn(self, name, argv, **kw):
        log = open(os.path.join(self.work, f"{name}.log"), "ab")
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                preexec_fn=die_with_us, **kw)
        log.close()
        self.procs.append((name, proc))
        return proc

    def start_rig(self, nodes):
        argv = [sys.executable, os.path.join(SRC, "tests", "rig", "rig.py"), "--nodes",
                str(nodes), "--dir", os.path.join(self.work, "rig"), "--tftp-root",
                os.path.join(self.work, "tftp"), "--node-kind", self.kind,
                "--highbank-cache", CACHE, "--disk-size-mb", "64"]
        log = open(os.path.join(self.work, "rig.log"), "ab")
        self.rig = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=log, preexec_fn=die_with_us)
        log.close()
        line = self.rig.stdout.readline().decode().strip()
        check(line.startswith("READY "), f"rig did not start: {line!r} (see rig.log)")
        with open(line[6:]) as f:
            self.rig_json = json.load(f)

    def rig_command(self, cmd):
        self.rig.stdin.write(cmd.encode() + b"\n")
        self.rig.stdin.flush()
        answer = self.rig.stdout.readline().decode().strip()
        check(answer.startswith("OK"), f"rig {cmd!r}: {answer!r}")

    def keys(self):
        keys = os.path.join(self.work, "keys")
        for name in ("master", "rack01", "client"):    # a worker's key carries its name
            role = ["--role", "submit"] if name == "client" else []
            subprocess.run([RACKRUN, "keygen", keys, name, *role], check=True,
                           capture_output=True)
        shutil.copy(os.path.join(keys, "rack01"), os.path.join(self.work, "workers.d"))
        shutil.copy(os.path.join(keys, "client"), os.path.join(self.work, "clients.d"))

    def configs(self, worker_port, client_port):
        w = self.work
        with open(os.path.join(w, "master.yaml"), "w") as f:
            f.write(f"db: {q(w + '/master.db')}\n"
                    f"worker_endpoint: tcp://127.0.0.1:{worker_port}\n"
                    f"client_endpoint: tcp://127.0.0.1:{client_port}\n"
                    'http_listen: "off"\n'
                    f"secret_key: {q(w + '/keys/master_secret')}\n"
                    f"worker_keys_dir: {q(w + '/workers.d')}\n"
                    f"client_keys_dir: {q(w + '/clients.d')}\n"
                    "heartbeat_interval: 1s\nheartbeat_timeout: 5s\n")
        password = os.path.join(w, "bmc.password")
        fd = os.open(password, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(fd, (self.rig_json["nodes"][0]["password"] + "\n").encode())
        os.close(fd)
        lines = [f"worker: rack01\nrack: e2e\nmaster: tcp://127.0.0.1:{worker_port}",
                 f"master_public_key: {q(w + '/keys/master')}",
                 f"secret_key: {q(w + '/keys/rack01_secret')}",
                 f"tftp_root: {q(w + '/tftp')}", f"spool_dir: {q(w + '/spool')}",
                 f"artifacts_dir: {q(self.artifacts)}",
                 "device_types:\n  highbank:\n    prompts: [\"# \"]", "devices:"]
        for node in self.rig_json["nodes"]:
            lines.append(f"  - name: {q(node['name'])}\n    type: highbank\n"
                         f"    bmc: {{host: {q(node['host'])}, port: {node['port']}, "
                         f"user: {q(node['user'])}, password_file: {q(password)}}}\n"
                         f"    mac: {q(node['mac'])}")
            if node.get("http_port"):
                lines.append(f"    http: 127.0.0.1:{node['http_port']}")
        with open(os.path.join(w, "worker.yaml"), "w") as f:
            f.write("\n".join(lines) + "\n")

    def cli(self, *args, timeout=30):
        res = subprocess.run([RACKRUN, *args], env=self.env, capture_output=True,
                             timeout=timeout, preexec_fn=die_with_us)
        return res.returncode, res.stdout.decode(errors="replace"), \
            res.stderr.decode(errors="replace")

    def wait_devices_idle(self, count):
        end = time.monotonic() + 30
        while time.monotonic() < end:
            for name, proc in self.procs:
                check(proc.poll() is None, f"{name} exited with {proc.returncode} "
                      f"(see {self.work}/{name}.log)")
            rc, out, _ = self.cli("--json", "--timeout", "1s", "devices")
            if rc == 0 and sum(d["state"] == "idle" for d in json.loads(out)) == count:
                return
            time.sleep(0.3)
        raise Failure(f"the worker's {count} devices were not idle within 30 s "
                      f"(see {self.work}/worker.log)")

    def submit(self, name, text):
        path = os.path.join(self.work, name + ".yaml")
        with open(path, "w") as f:
            f.write(text)
        rc, out, err = self.cli("submit", path)
        check(rc == 0 and out.strip().isdigit(), f"submit {name}: exit {rc}: {err.strip()}")
        return int(out.strip())

    def wait(self, job, timeout):
        """Follow JOB to its end; (summary, events) as stored by the master."""
        rc, _, err = self.cli("--timeout", "10s", "logs", "-f", str(job), timeout=timeout)
        check(rc == 0, f"logs -f {job}: exit {rc}: {err.strip()}")
        rc, out, err = self.cli("--json", "show", str(job))
        check(rc == 0, f"show {job}: exit {rc}: {err.strip()}")
        summary = json.loads(out)
        rc, out, err = self.cli("--json", "logs", str(job))
        check(rc == 0, f"logs {job}: exit {rc}: {err.strip()}")
        events = [json.loads(line) for line in out.splitlines() if line.strip()]
        with open(os.path.join(self.work, f"job{job}.console"), "wb") as f:
            f.write(console_of(events))
        return summary, events

    def close(self):
        for name, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        for name, proc in reversed(self.procs):
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self.rig and self.rig.poll() is None:
            self.rig.stdin.close()     # EOF: the rig stops its BMCs and nodes
            try:
                self.rig.wait(20)
            except subprocess.TimeoutExpired:
                self.rig.kill()
                self.rig.wait()


def console_of(events):
    data = bytearray()
    for ev in events:
        if ev.get("kind") == "log":
            if "data" in ev:
                data += ev["data"].encode()
            elif "data_base64" in ev:
                import base64
                data += base64.b64decode(ev["data_base64"])
    return bytes(data)


def results_of(summary):
    return {r["name"]: r for r in summary.get("results") or []}


def expect_outcome(summary, outcome, job):
    check(summary.get("outcome") == outcome,
          f"job {job}: outcome {summary.get('outcome')!r} (want {outcome}), "
          f"reason {summary.get('reason')!r}")


# ---- artifacts ---------------------------------------------------------------------------

def publish_boot_files(www):
    shas = {}
    for name in ("vmlinuz", "initrd.cpio.gz", "highbank.dtb"):
        shutil.copy(os.path.join(CACHE, name), os.path.join(www, name))
        shas[name] = sha256_file(os.path.join(www, name))
    return shas


def build_disk_image(www, marker):
    path = os.path.join(www, "disk.img")
    res = subprocess.run([os.path.join(HB, "build-disk-image.sh"), path, "--marker", marker,
                          "--image-dir", CACHE, "--size-mb", "16"], capture_output=True,
                         timeout=120)
    check(res.returncode == 0, f"build-disk-image.sh: {res.stderr.decode()[-400:]}")
    subprocess.run(["gzip", "-1", "-k", "-f", path], check=True, timeout=60)
    return sha256_file(path)     # deploy to disk checks what lands on the disk: uncompressed


def pxe_actions(port, shas, append="console=ttyAMA0", boot_timeout="2m"):
    base = f"http://127.0.0.1:{port}"
    return f"""  - deploy:
      to: tftp
      kernel: {{url: {base}/vmlinuz, sha256: {shas['vmlinuz']}}}
      initrd: {{url: {base}/initrd.cpio.gz, sha256: {shas['initrd.cpio.gz']}}}
      dtb: {{url: {base}/highbank.dtb, sha256: {shas['highbank.dtb']}}}
      append: {q(append)}
  - boot: {{method: ipmi-pxe, prompts: ["# "], timeout: {boot_timeout}}}
"""


def full_job(name, port, shas, disk_sha, marker):
    return f"""job_name: {q(name)}
device_type: highbank
timeouts: {{job: 6m, action: 2m}}
actions:
{pxe_actions(port, shas)}  - test:
      steps:
        - {{name: uname, run: "uname -a"}}
        - {{name: armv7l, run: "uname -m | grep -qx armv7l"}}
        - {{name: model, run: "cat /proc/device-tree/model; echo"}}
        - {{name: highbank-model, run: "grep -q 'Calxeda Highbank' /proc/device-tree/model"}}
  - deploy:
      to: disk
      image: {{url: http://{HOST_FROM_NODE}:{port}/disk.img.gz, sha256: {disk_sha}}}
      device: /dev/sda
  - boot: {{method: ipmi-disk, prompts: ["# "], timeout: 2m}}
  - test:
      steps:
        - {{name: disk-marker, run: "grep -qx {q(marker).replace('"', "'")} /mnt/disk/rackrun-marker"}}
        - {{name: disk-cmdline, run: "grep -q rackrun.disk=/dev/sda1 /proc/cmdline"}}
        - {{name: make-file, run: "seq 1 20000 > /tmp/seq.txt"}}
  - transfer: {{from: /tmp/seq.txt, to: seq.txt}}
"""


def check_full_job(cluster, job, summary, events, marker):
    expect_outcome(summary, "complete", job)
    results = results_of(summary)
    for name in ("uname", "armv7l", "model", "highbank-model", "disk-marker", "disk-cmdline",
                 "make-file"):
        check(results.get(name, {}).get("value") == "pass",
              f"job {job}: result {name}: {results.get(name)}")
    console = console_of(events).decode(errors="replace")
    check("Booting Linux on physical CPU" in console and "Linux version 6." in console,
          f"job {job}: the stored log has no kernel boot messages")
    check(console.count("U-Boot (rackrun highbank)") >= 2,
          f"job {job}: the stored log does not show both boots")
    check("armv7l" in console, f"job {job}: no armv7l in the log (uname -a)")
    check("Calxeda Highbank" in console, f"job {job}: no Highbank model in the log")
    arts = [e for e in events if e.get("kind") == "artifact"]
    want = hashlib.sha256(SEQ_TEXT).hexdigest()
    check(len(arts) == 1 and arts[0].get("name") == "seq.txt", f"job {job}: artifacts {arts}")
    check(arts[0].get("value") == want and arts[0].get("code") == len(SEQ_TEXT),
          f"job {job}: artifact event {arts[0]}, want sha256 {want} size {len(SEQ_TEXT)}")
    stored = os.path.join(cluster.artifacts, str(job), "seq.txt")
    check(os.path.isfile(stored) and sha256_file(stored) == want,
          f"job {job}: {stored} missing or not the node's /tmp/seq.txt")


# ---- cases -------------------------------------------------------------------------------

def case_highbank(work):
    c = Cluster(work, 1, "highbank")
    try:
        shas = publish_boot_files(c.www)
        marker = f"rackrun-e2e-{os.getpid()}-{random.randint(0, 1 << 30)}"
        disk_sha = build_disk_image(c.www, marker)
        t0 = time.monotonic()
        job = c.submit("full", full_job("highbank e2e", c.http_port, shas, disk_sha, marker))
        summary, events = c.wait(job, 420)
        check_full_job(c, job, summary, events, marker)
        took = {a["name"] + str(i): a.get("took_ms") for i, a in
                enumerate(summary.get("actions") or [])}
        print(f"job {job} complete in {time.monotonic() - t0:.1f} s; actions (ms): {took}")
    finally:
        c.close()


def case_parallel(work):
    nodes = 4
    c = Cluster(work, nodes, "highbank")
    try:
        shas = publish_boot_files(c.www)
        t0 = time.monotonic()
        jobs = []
        for i in range(nodes):
            jobs.append(c.submit(f"p{i}", f"""job_name: parallel {i}
device_type: highbank
timeouts: {{job: 5m, action: 3m}}
actions:
{pxe_actions(c.http_port, shas, append="console=ttyAMA0 loglevel=3", boot_timeout="3m")}  - test:
      steps:
        - {{name: armv7l, run: "uname -m | grep -qx armv7l"}}
        - {{name: highbank-model, run: "grep -q Highbank /proc/device-tree/model"}}
"""))
        devices = set()
        for job in jobs:
            summary, events = c.wait(job, 360)
            expect_outcome(summary, "complete", job)
            for name in ("armv7l", "highbank-model"):
                check(results_of(summary).get(name, {}).get("value") == "pass",
                      f"job {job}: result {name}")
            devices.add(summary["job"].get("device"))
        check(len(devices) == nodes, f"jobs ran on {sorted(devices)}, want {nodes} devices")
        print(f"{nodes} highbank jobs on {nodes} nodes of one worker: all complete, "
              f"total wall time {time.monotonic() - t0:.1f} s")
    finally:
        c.close()


def failing_disk_job(c, shas, url, sha):
    return c.submit("faildisk", f"""job_name: bad disk image
device_type: highbank
timeouts: {{job: 4m, action: 2m}}
actions:
{pxe_actions(c.http_port, shas, append="console=ttyAMA0 loglevel=3")}  - deploy:
      to: disk
      image: {{url: {q(url)}, sha256: {sha}}}
      device: /dev/sda
  - boot: {{method: ipmi-disk, timeout: 1m}}
""")


def case_fail_404(work):
    c = Cluster(work, 1, "highbank")
    try:
        shas = publish_boot_files(c.www)
        url = f"http://{HOST_FROM_NODE}:{c.http_port}/no-such-image.img"
        job = failing_disk_job(c, shas, url, "0" * 64)
        summary, _ = c.wait(job, 240)
        expect_outcome(summary, "incomplete", job)
        reason = summary.get("reason") or ""
        check(reason.startswith("deploy: disk image") and url in reason and "404" in reason,
              f"job {job}: reason {reason!r} does not name the deploy, the URL and the 404")
        print(f"job {job}: incomplete: {reason}")
    finally:
        c.close()


def case_fail_sha(work):
    c = Cluster(work, 1, "highbank")
    try:
        shas = publish_boot_files(c.www)
        image = os.urandom(256 << 10)    # small: what matters is the check, not a boot
        with open(os.path.join(c.www, "small.img"), "wb") as f:
            f.write(image)
        disk_sha = hashlib.sha256(image).hexdigest()
        wrong = hashlib.sha256(b"not the image").hexdigest()
        url = f"http://{HOST_FROM_NODE}:{c.http_port}/small.img"
        job = failing_disk_job(c, shas, url, wrong)
        summary, _ = c.wait(job, 240)
        expect_outcome(summary, "incomplete", job)
        reason = summary.get("reason") or ""
        check(reason.startswith("deploy: disk image") and wrong in reason and disk_sha in reason,
              f"job {job}: reason {reason!r} does not name both sha256s")
        print(f"job {job}: incomplete: {reason}")
    finally:
        c.close()


def case_fail_boot(work):
    """A real kernel whose init never starts (rdinit names no file): it panics, no prompt."""
    c = Cluster(work, 1, "highbank")
    try:
        shas = publish_boot_files(c.www)
        job = c.submit("failboot", f"""job_name: kernel never reaches the prompt
device_type: highbank
timeouts: {{job: 3m, action: 1m}}
actions:
{pxe_actions(c.http_port, shas, append="console=ttyAMA0 rdinit=/no/such/init panic=0",
             boot_timeout="25s")}  - test:
      steps:
        - {{name: never, run: "true"}}
""")
        summary, events = c.wait(job, 180)
        expect_outcome(summary, "incomplete", job)
        reason = summary.get("reason") or ""
        check(reason.startswith("boot: no prompt") and "within 25 s" in reason,
              f"job {job}: reason {reason!r} does not name the boot action and its timeout")
        check("Kernel panic" in console_of(events).decode(errors="replace"),
              f"job {job}: the log does not show the kernel's panic")
        check("never" not in results_of(summary), f"job {job}: a step ran after a failed boot")
        print(f"job {job}: incomplete: {reason}")
    finally:
        c.close()


def case_fail_power(work):
    c = Cluster(work, 1, "highbank")
    try:
        shas = publish_boot_files(c.www)
        job = c.submit("failpower", f"""job_name: node powered off under the job
device_type: highbank
timeouts: {{job: 3m, action: 2m}}
actions:
{pxe_actions(c.http_port, shas, append="console=ttyAMA0 loglevel=3")}  - test:
      steps:
        - {{name: long-sleep, run: "echo sleeping; sleep 120", timeout: 10s}}
""")
        console = os.path.join(c.rig_json["nodes"][0]["dir"], "console.out")
        end = time.monotonic() + 120
        while time.monotonic() < end:
            with open(console, "rb") as f:
                if b"\nsleeping" in f.read():
                    break
            time.sleep(0.2)
        else:
            raise Failure("the step never started on the node")
        c.rig_command("power 0 off")
        summary, _ = c.wait(job, 120)
        expect_outcome(summary, "incomplete", job)
        reason = summary.get("reason") or ""
        check("long-sleep" in reason and "powered off" in reason,
              f"job {job}: reason {reason!r} does not name the step and the power off")
        print(f"job {job}: incomplete: {reason}")
    finally:
        c.close()


CASES = {"highbank": case_highbank, "parallel": case_parallel, "fail-404": case_fail_404,
         "fail-sha": case_fail_sha, "fail-boot": case_fail_boot, "fail-power": case_fail_power}


def main(argv):
    if len(argv) != 2 or argv[1] not in CASES:
        sys.stderr.write(f"usage: {argv[0]} {'|'.join(CASES)}\n")
        return 2
    become_subreaper()
    work = os.path.join(BIN, "test-tmp", f"e2e-{argv[1]}-{os.getpid()}")
    os.makedirs(work)
    ok = False
    t0 = time.monotonic()
    try:
        for path in (RACKRUN, MASTER, WORKER, os.path.join(CACHE, "done")):
            check(os.path.exists(path), f"{path} missing (build, and the highbank_image fixture)")
        CASES[argv[1]](work)
        ok = True
    except (Failure, OSError, subprocess.SubprocessError, ValueError, KeyError) as e:
        print(f"FAIL: {type(e).__name__}: {e}\nkept {work} (rig/, *.log, job*.console)")
    print(f"{argv[1]}: {time.monotonic() - t0:.1f} s")
    if ok and os.environ.get("RR_KEEP_RIG") != "1":
        shutil.rmtree(work, ignore_errors=True)
    print("PASS" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
