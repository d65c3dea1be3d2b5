"""rrcluster.py: a small rackrun installation for the Python tests of
tests/browser (the dashboard in a real browser, the operator commands,
notifications, log retention), made of the real programs.

tests/system/cluster.c does the same for the C tests but writes a master
configuration without HTTP and without room for more keys; these tests need
the HTTP API on, and settings of their own (retention, heartbeats), so the
master configuration here takes extra YAML lines.

Cluster(name, nodes, master_extra) starts, under
$RR_BINARY_DIR/test-tmp/<name>-<pid>:
  - the emulated rack (tests/rig/rig.py: ipmi_sim BMCs + fast shell nodes),
  - CURVE certificates (rackrun keygen), as deploy/demo.sh makes them,
  - rackrun-master with HTTP on a free 127.0.0.1 port serving the dashboard
    from the source tree (master/www), and one rackrun-worker "rack01".
close() stops every process it started, by pid, also after a failure: this
process becomes a child subreaper and every child gets PDEATHSIG, so even a
grandchild (chromium under chromedriver) is reaped here and killed by close().

Programs: $RR_MASTER_BIN, $RR_WORKER_BIN, $RR_CLI_BIN (CMake passes them),
else $RR_BINARY_DIR/{master,worker,cli}/... The work dir is removed after a
passing test unless RR_KEEP_RIG=1; kept (with every log) after a failure.
"""
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from rrtest import (Failure,  # noqa: E402,F401
                    become_subreaper, check, die_with_us, free_tcp_ports, q)

SRC = os.environ.get("RR_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
BIN = os.environ.get("RR_BINARY_DIR") or os.getcwd()
MASTER = os.environ.get("RR_MASTER_BIN") or os.path.join(BIN, "master", "rackrun-master")
WORKER = os.environ.get("RR_WORKER_BIN") or os.path.join(BIN, "worker", "rackrun-worker")
RACKRUN = os.environ.get("RR_CLI_BIN") or os.path.join(BIN, "cli", "rackrun")
STOP_GRACE_S = 5


def say(msg):
    sys.stderr.write(f"{time.strftime('%H:%M:%S')} {msg}\n")
    sys.stderr.flush()


def children_of(pid):
    """Pids whose parent is PID (from /proc)."""
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if int(fields[1]) == pid:
            kids.append(int(entry))
    return kids


def kill_orphans():
    """SIGKILL and reap every remaining child of this process (and so, as a
    subreaper, every orphaned descendant of the processes it started)."""
    for _ in range(50):
        kids = children_of(os.getpid())
        if not kids:
            return
        for pid in kids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for pid in kids:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass


def http_json(url, data=None, timeout=5, token=None):
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    req = urllib.request.Request(url, data=data, headers=headers)
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.load(resp)


class Cluster:
    """rig + master (HTTP on) + worker rack01; every process stopped by close()."""

    def __init__(self, name, nodes=1, master_extra="", heartbeat_interval="250ms",
                 heartbeat_timeout="2s", http_token=None):
        become_subreaper()
        self.work = os.path.join(BIN, "test-tmp", f"{name}-{os.getpid()}")
        self.procs, self.rig, self.passed = {}, None, False
        self.heartbeat_timeout = heartbeat_timeout
        self.http_token = http_token    # set: the HTTP API needs it (http_tokens, read role)
        shutil.rmtree(self.work, ignore_errors=True)
        for d in ("tftp", "spool", "keys", "workers.d", "clients.d", "artifacts"):
            os.makedirs(os.path.join(self.work, d))
        try:
            self.start_rig(nodes)
            self.http_port, worker_port, client_port = free_tcp_ports(3)
            self.url = f"http://127.0.0.1:{self.http_port}"
            self.keys()
            self.write_artifacts()
            if http_token:
                master_extra += self.write_http_tokens(http_token)
            self.write_master_config(worker_port, client_port, master_extra, heartbeat_interval)
            self.write_worker_config(worker_port)
            self.env = dict(os.environ, RACKRUN_MASTER=f"tcp://127.0.0.1:{client_port}",
                            RACKRUN_KEY=self.path("keys", "client_secret"),
                            RACKRUN_MASTER_KEY=self.path("keys", "master"))
            self.start_master()
            self.start_worker()
            self.wait_devices_idle(nodes)
        except BaseException:
            self.close()
            raise

    def path(self, *parts):
        return os.path.join(self.work, *parts)

    # ---- processes ----

    def spawn(self, name, argv, **kw):
        log = open(self.path(f"{name}.log"), "ab")
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                preexec_fn=die_with_us, **kw)
        log.close()
        self.procs[name] = proc
        return proc

    def start_rig(self, nodes):
        argv = [sys.executable, os.path.join(SRC, "tests", "rig", "rig.py"), "--nodes",
                str(nodes), "--dir", self.path("rig"), "--tftp-root", self.path("tftp")]
        log = open(self.path("rig.log"), "ab")
        self.rig = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=log, preexec_fn=die_with_us)
        log.close()
        line = self.rig.stdout.readline().decode().strip()
        check(line.startswith("READY "), f"rig did not start: {line!r} (see rig.log)")
        with open(line[6:]) as f:
            self.rig_json = json.load(f)

    def start_master(self):
        self.spawn("master", [MASTER, "--config", self.path("master.yaml")])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            check(self.procs["master"].poll() is None, "rackrun-master exited:\n" + self.tail("master"))
            try:
                self.api("/api/v1/workers")
                return
            except (OSError, urllib.error.URLError):
                time.sleep(0.1)
        raise Failure("rackrun-master's HTTP API did not answer within 10 s:\n" + self.tail("master"))

    def start_worker(self):
        self.spawn("worker", [WORKER, "--config", self.path("worker.yaml")])

    def kill_worker(self):
        """SIGKILL the worker (no goodbye): the master must notice by heartbeats."""
        proc = self.procs.pop("worker")
        proc.kill()
        proc.wait()

    def tail(self, name, lines=20):
        try:
            with open(self.path(f"{name}.log"), errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    def dump(self):
        for name in ("master", "worker", "rig"):
            say(f"---- last lines of {self.path(name + '.log')}\n{self.tail(name)}")

    def close(self):
        """Stop the daemons (worker first), then the rig; then anything left."""
        bad = []
        for name in ("worker", "master"):
            proc = self.procs.pop(name, None)
            if proc and proc.poll() is None:
                proc.terminate()
                try:
                    rc = proc.wait(STOP_GRACE_S)
                    if rc != 0:
                        bad.append(f"{name} exited {rc} on SIGTERM")
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                    bad.append(f"{name} ignored SIGTERM")
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        self.procs = {}
        if self.rig:
            try:
                self.rig.stdin.close()    # EOF: the rig stops its BMCs and nodes
                self.rig.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                self.rig.kill()
                self.rig.wait()
            self.rig = None
        kill_orphans()
        if self.passed and not bad and os.environ.get("RR_KEEP_RIG") != "1":
            shutil.rmtree(self.work, ignore_errors=True)
        else:
            say(f"cluster: kept {self.work}")
        return bad

    # ---- configuration ----

    def keys(self):
        for name, role in (("master", None), ("rack01", None), ("client", "admin")):
            args = ["keygen", self.path("keys"), name] + (["--role", role] if role else [])
            subprocess.run([RACKRUN] + args, check=True, stdout=subprocess.DEVNULL)
        shutil.copy(self.path("keys", "rack01"), self.path("workers.d", "rack01"))
        shutil.copy(self.path("keys", "client"), self.path("clients.d", "client"))

    def write_artifacts(self):
        self.shas = {}
        for role in ("kernel", "initrd", "dtb"):
            data = f"rackrun browser test {role} (not a real one)\n".encode()
            with open(self.path("artifacts", role), "wb") as f:
                f.write(data)
            self.shas[role] = hashlib.sha256(data).hexdigest()

    def write_http_tokens(self, token):
        """A 0600 tokens file with TOKEN as the read role; its master.yaml line."""
        old = os.umask(0o077)
        with open(self.path("http-tokens"), "w") as f:
            f.write(f"# dashboard\nread {token}\n")
        os.umask(old)
        return f"\nhttp_tokens: {q(self.path('http-tokens'))}\n"

    def write_master_config(self, worker_port, client_port, extra, interval):
        text = f"""db: {q(self.path('master.db'))}
worker_endpoint: tcp://127.0.0.1:{worker_port}
client_endpoint: tcp://127.0.0.1:{client_port}
http_listen: 127.0.0.1:{self.http_port}
http_www: {q(os.path.join(SRC, 'master', 'www'))}
secret_key: {q(self.path('keys', 'master_secret'))}
worker_keys_dir: {q(self.path('workers.d'))}
client_keys_dir: {q(self.path('clients.d'))}
heartbeat_interval: {interval}
heartbeat_timeout: {self.heartbeat_timeout}
worker_grace: 30s
{extra}"""
        with open(self.path("master.yaml"), "w") as f:
            f.write(text)

    def write_worker_config(self, worker_port):
        old = os.umask(0o077)
        with open(self.path("bmc.password"), "w") as f:
            f.write(self.rig_json["nodes"][0]["password"] + "\n")
        os.umask(old)
        lines = [f"""worker: rack01
rack: browser-rack
master: tcp://127.0.0.1:{worker_port}
master_public_key: {q(self.path('keys', 'master'))}
secret_key: {q(self.path('keys', 'rack01_secret'))}
tftp_root: {q(self.path('tftp'))}
spool_dir: {q(self.path('spool'))}
file_roots: [{q(self.path('artifacts'))}]
device_types:
  highbank:
    prompts: ["# "]
devices:"""]
        for node in self.rig_json["nodes"]:
            lines.append(f"""  - name: {q(node['name'])}
    type: highbank
    bmc: {{host: {q(node['host'])}, port: {node['port']}, user: {q(node['user'])}, password_file: {q(self.path('bmc.password'))}}}
    mac: {q(node['mac'])}""")
        with open(self.path("worker.yaml"), "w") as f:
            f.write("\n".join(lines) + "\n")

    # ---- using it ----

    def api(self, path, timeout=5):
        return http_json(self.url + path, timeout=timeout, token=self.http_token)

    def cli(self, *args, timeout=60):
        """Run the rackrun CLI: (exit code, stdout, stderr)."""
        r = subprocess.run([RACKRUN] + list(args), env=self.env, capture_output=True,
                           timeout=timeout, preexec_fn=die_with_us)
        return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")

    def wait_devices_idle(self, count, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name in ("master", "worker"):
                check(self.procs[name].poll() is None, f"rackrun-{name} exited:\n" + self.tail(name))
            devices = self.api("/api/v1/devices")["devices"]
            if sum(d["state"] == "idle" for d in devices) >= count:
                return
            time.sleep(0.2)
        raise Failure(f"{count} devices not idle within {timeout} s:\n" + self.tail("worker"))

    def job_yaml(self, name, steps, extra="", test_timeout="1m"):
        """A job for the fast shell nodes: deploy (the test artifacts), boot, test STEPS
        (a list of (name, command)); EXTRA: more top-level YAML lines."""
        arts = "".join(f"      {role}: {{url: {q('file://' + self.path('artifacts', role))}, "
                       f"sha256: {self.shas[role]}}}\n" for role in ("kernel", "initrd", "dtb"))
        steps_yaml = "".join(f"        - {{name: {q(n)}, run: {q(cmd)}}}\n" for n, cmd in steps)
        return (f"job_name: {q(name)}\ndevice_type: highbank\ntimeouts: {{job: 3m, action: 1m}}\n"
                f"{extra}"
                f"actions:\n  - deploy:\n      to: tftp\n{arts}"
                f"  - boot: {{method: ipmi-pxe, prompts: [\"# \"], timeout: 30s}}\n"
                f"  - test:\n      timeout: {test_timeout}\n      steps:\n{steps_yaml}")

    def submit(self, yaml_text, name="job"):
        path = self.path(f"{name}.yaml")
        with open(path, "w") as f:
            f.write(yaml_text)
        rc, out, err = self.cli("submit", path)
        check(rc == 0, f"rackrun submit {name}: exit {rc}: {err}")
        return int(out.strip())

    def job(self, job):
        return self.api(f"/api/v1/jobs/{job}")

    def wait_job(self, job, timeout=60):
        """Wait until JOB finished; returns it (as the API shows it)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            info = self.job(job)
            if info["state"] == "finished":
                return info
            time.sleep(0.2)
        raise Failure(f"job {job} not finished within {timeout} s (state {info['state']}):\n"
                      + self.tail("worker"))


def run(test, name, **kw):
    """Start a cluster, run TEST(cluster), close it; exit 0 only if the test
    passed and the daemons stopped cleanly."""
    t0 = time.monotonic()
    cluster = None
    ok = False
    try:
        cluster = Cluster(name, **kw)
        test(cluster)
        cluster.passed = ok = True
    except Failure as e:
        say(f"FAIL: {e}")
        if cluster:
            cluster.dump()
    finally:
        bad = cluster.close() if cluster else []
        kill_orphans()
    for b in bad:
        say(f"FAIL: {b}")
        ok = False
    say(f"{name}: {'passed' if ok else 'FAILED'} in {time.monotonic() - t0:.1f} s")
    print(f"{1 if ok else 0} passed, {0 if ok else 1} failed")
    return 0 if ok else 1
