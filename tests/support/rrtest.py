"""rrtest.py: what rackrun's Python tests share (tests/e2e, tests/browser):
the failure type and check, process hygiene (children die with us, a
subreaper adopts grandchildren), free loopback ports, sha256 of a file, and
YAML quoting. Import it after putting tests/support on sys.path."""
import ctypes
import hashlib
import json
import signal
import socket

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
LIBC = ctypes.CDLL(None, use_errno=True)


class Failure(Exception):
    """A check that failed: the test prints it and exits 1."""


def check(cond, what):
    if not cond:
        raise Failure(what)


def free_tcp_ports(n):
    """N distinct free TCP ports on 127.0.0.1 (free now; bound by the caller soon)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def die_with_us():
    """For preexec_fn: the child gets SIGKILL when the test process dies."""
    LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def become_subreaper():
    """Orphaned descendants (a browser under its driver, QEMU under its node
    script) are reparented to us, so we can reap and kill them."""
    LIBC.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def q(text):
    return json.dumps(text)    # a JSON string is a YAML scalar
