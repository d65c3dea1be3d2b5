#!/usr/bin/env python3
"""notify_test.py: job notifications (master/notify.h) end to end: a real
master, worker and emulated rack (rrcluster.py), and a local HTTP receiver
(http.server on 127.0.0.1) that answers the first POST with 500 after
holding it for 2 s, and later ones with 200.

  - a job with notify: {callback, on: [finished]} is POSTed once more after
    the 500, about 1 s later (backoff), with the job and its result counts;
  - while the receiver holds the first POST, the master's API still answers
    at once (deliveries never block the loop);
  - a job with on: [incomplete] that completes is not POSTed;
  - the master log names the receiver but never the URL's query (a token);
  - a callback that is not http(s), or an unknown event, is refused at submit.
"""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from rrcluster import Failure, check, run, say

HOLD_FIRST_S = 2.0


class Receiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.posts = []             # (monotonic time, path, body, status answered)
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}"

    def stop(self):
        self.shutdown()
        self.server_close()

    def wait_posts(self, n, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.posts) >= n:
                    return list(self.posts)
            time.sleep(0.05)
        raise Failure(f"receiver: {len(self.posts)} POSTs within {timeout} s, wanted {n}")


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        server = self.server
        with server.lock:
            first = not server.posts
            server.posts.append((time.monotonic(), self.path, body, 500 if first else 200,
                                 self.headers.get("Content-Type")))
        if first:
            time.sleep(HOLD_FIRST_S)
        self.send_response(500 if first else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, fmt, *args):
        pass


def check_refused(c, notify, want):
    yaml = c.job_yaml("bad notify", [("x", "true")], extra=f"notify: {notify}\n")
    path = c.path("bad-notify.yaml")
    with open(path, "w") as f:
        f.write(yaml)
    rc, _, err = c.cli("submit", path)
    check(rc == 1 and want in err, f"notify {notify}: submit exit {rc}, stderr {err!r} (want {want!r})")


def api_latency(c):
    t0 = time.monotonic()
    c.api("/api/v1/workers")
    return time.monotonic() - t0


def test(c):
    check_refused(c, "{callback: \"file:///etc/passwd\"}", "notify.callback")
    check_refused(c, "{callback: \"http://127.0.0.1:1/\", on: [done]}", "unknown event 'done'")
    rx = Receiver()
    try:
        quiet = c.submit(c.job_yaml("quiet", [("ok", "true")],
                                    extra=f"notify: {{callback: \"{rx.url}/quiet\", on: [incomplete]}}\n"),
                         "quiet")
        c.wait_job(quiet, 60)
        hook = f"{rx.url}/hook?token=s3cret"
        job = c.submit(c.job_yaml("notify me", [("ok", "echo fine")],
                                  extra=f"notify: {{callback: \"{hook}\", on: [finished]}}\n"), "notify")
        info = c.wait_job(job, 60)
        rx.wait_posts(1, 10)
        latency = api_latency(c)        # the first POST is being held right now
        check(latency < 0.5, f"the API took {latency:.2f} s while a notification was pending")
        posts = rx.wait_posts(2, 15)
        time.sleep(1.5)                 # nothing more may come after the 200
        with rx.lock:
            posts = list(rx.posts)
    finally:
        rx.stop()
    check(len(posts) == 2, f"receiver got {len(posts)} POSTs, wanted 2 (500 then 200): "
                           f"{[(p[1], p[3]) for p in posts]}")
    (t1, path1, body1, st1, ctype), (t2, path2, body2, st2, _) = posts
    check(path1 == path2 == "/hook?token=s3cret", f"POSTed to {path1}, {path2}; not the quiet job's")
    check(ctype == "application/json", f"Content-Type {ctype}")
    gap = t2 - t1 - HOLD_FIRST_S
    check(0.8 <= gap <= 5, f"the retry came {gap:.2f} s after the 500 (want the ~1 s backoff)")
    body = json.loads(body2)
    check(body == json.loads(body1), "the retry's body differs from the first")
    check(body["event"] == "finished" and body["job"]["id"] == job
          and body["job"]["outcome"] == info["outcome"] == "complete"
          and body["results"] == {"pass": 1, "fail": 0, "skip": 0}, f"body: {body}")
    log = open(c.path("master.log"), errors="replace").read()
    check(f"job {job}: notified {rx.url}" in log, "the master log does not say it notified")
    check("retry 2/6" in log, "the master log does not mention the retry")
    check("s3cret" not in log, "the callback's token reached the master log")
    say(f"notify: job {job} POSTed twice (500, then 200 after {gap:.2f} s); API answered in "
        f"{latency * 1000:.0f} ms meanwhile; job {quiet} (on: incomplete) not POSTed")


if __name__ == "__main__":
    try:
        sys.exit(run(test, "notify"))
    except Failure as e:
        say(f"FAIL: {e}")
        sys.exit(1)
