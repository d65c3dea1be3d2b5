#!/usr/bin/env python3
"""dashboard_test.py: the master's dashboard (master/www) in headless
Chromium, against a real master, worker and emulated rack (rrcluster.py),
driven through chromedriver's W3C WebDriver API (webdriver.py).

What a person at the dashboard must see (the master has http_tokens on):
  0. the API refuses a request without the token (401); the page opened as
     /#token=TOKEN works and drops the token from its address;
  1. the worker rack01 on the overview, online, and its device idle;
  2. a running job's console log live on the job page: "tick-1" shows while
     the job still runs (its step prints tick-1..tick-5 a second apart);
  3. the worker killed with SIGKILL turns "lost" (its row red) within the
     heartbeat timeout plus a margin (one overview poll + one master tick).
Screenshots go to $RR_BINARY_DIR/screenshots/ (dashboard-running.png,
job-log.png, worker-lost.png); docs/dashboard.png is a copy of the first.
"""
import os
import secrets
import sys
import time
import urllib.error

from rrcluster import BIN, Failure, check, http_json, run, say
from webdriver import Browser

HEARTBEAT_TIMEOUT_S = 2.0
LOST_MARGIN_S = 3.0    # overview polls every 1 s, the master checks every interval; slack for CI
TICKS = "for i in 1 2 3 4 5; do echo tick-$i; sleep 1; done"
SHOTS = os.path.join(BIN, "screenshots")
TOKEN = secrets.token_hex(16)

WORKER_ROW = """
for (const tr of document.querySelectorAll('tbody tr'))
  if (tr.cells[0] && tr.cells[0].textContent === arguments[0] && tr.classList.contains(arguments[1]))
    return getComputedStyle(tr.cells[0]).color;
return null;"""
DEVICE_IN = "return document.querySelectorAll('.device.d-' + arguments[0]).length;"
LOG = "(document.querySelector('pre.log') || {textContent: ''}).textContent"
FOLLOW_NOTE = "(document.querySelector('.follow') || {textContent: ''}).textContent"


def check_token_required(c, b):
    """The API wants the token; the page takes it from #token= and hides it."""
    try:
        http_json(c.url + "/api/v1/workers")
        check(False, "the API answered without a bearer token")
    except urllib.error.HTTPError as e:
        check(e.code == 401, f"no token: HTTP {e.code}, expected 401")
    b.get(f"{c.url}/#token={TOKEN}")
    b.wait_for(WORKER_ROW, "worker rack01 online (with the token)", 10, "rack01", "online")
    href = b.run("return location.href;")
    check(TOKEN not in href, f"the token stays in the address bar: {href}")
    say("dashboard: API refuses no token (401), page works with #token= and hides it")


def check_worker_online(c, b):
    b.get(c.url + "/#/")
    b.wait_for(WORKER_ROW, "worker rack01 online", 10, "rack01", "online")
    b.wait_for(DEVICE_IN, "an idle device", 10, "idle")
    say("dashboard: worker rack01 online, device idle")


def check_live_log(c, b):
    job = c.submit(c.job_yaml("browser ticks", [("ticks", TICKS)]), "ticks")
    # the overview first: the job shows on its device while it runs
    b.wait_for(DEVICE_IN, "the device running job", 30, "running")
    b.get(f"{c.url}/#/job/{job}")
    seen = b.wait_for(f"return {LOG}.includes('tick-1');", "tick-1 in the log", 60)
    info = c.job(job)
    check(seen and info["state"] != "finished",
          f"tick-1 showed only after job {job} ended: the log was not live ({info})")
    log_now = b.run(f"return {LOG};")
    check("tick-5\n" not in log_now.replace("\r", ""),
          "tick-5 already on the page when tick-1 appeared: not live")
    say(f"dashboard: tick-1 on the page while job {job} is {info['state']}")
    b.screenshot(os.path.join(SHOTS, "job-log.png"))
    b.get(c.url + "/#/")
    b.wait_for(DEVICE_IN, "the running device", 10, "running")
    b.screenshot(os.path.join(SHOTS, "dashboard-running.png"))
    b.get(f"{c.url}/#/job/{job}")
    b.wait_for(f"return {FOLLOW_NOTE} === 'job finished';", "'job finished'", 60)
    log = b.run(f"return {LOG};")
    check(all(f"tick-{i}" in log for i in range(1, 6)), f"the finished log lacks ticks:\n{log[-800:]}")
    info = c.wait_job(job, 10)
    check(info["outcome"] == "complete", f"job {job} ended {info['outcome']}: {info.get('reason')}")


def check_worker_lost(c, b):
    b.get(c.url + "/#/")
    b.wait_for(WORKER_ROW, "worker rack01 online", 10, "rack01", "online")
    t0 = time.monotonic()
    c.kill_worker()
    color = b.wait_for(WORKER_ROW, "worker rack01 lost", HEARTBEAT_TIMEOUT_S + LOST_MARGIN_S + 5,
                       "rack01", "lost", poll=0.05)
    elapsed = time.monotonic() - t0
    say(f"dashboard: rack01 lost {elapsed:.1f} s after SIGKILL, row color {color}")
    check(elapsed <= HEARTBEAT_TIMEOUT_S + LOST_MARGIN_S,
          f"lost shown after {elapsed:.1f} s (timeout {HEARTBEAT_TIMEOUT_S} s + {LOST_MARGIN_S} s)")
    rgb = [int(x) for x in color[color.index("(") + 1:color.index(")")].split(",")[:3]]
    check(rgb[0] > 150 and rgb[1] < 100 and rgb[2] < 100, f"the lost row is not red: {color}")
    b.screenshot(os.path.join(SHOTS, "worker-lost.png"))


def test(c):
    browser = Browser(c.work)
    try:
        check_token_required(c, browser)
        check_worker_online(c, browser)
        check_live_log(c, browser)
        check_worker_lost(c, browser)
    finally:
        browser.quit()
    say(f"screenshots in {SHOTS}")


if __name__ == "__main__":
    if "--help" in sys.argv:
        print(__doc__)
        sys.exit(0)
    try:
        sys.exit(run(test, "browser-dashboard", nodes=2, heartbeat_timeout=f"{HEARTBEAT_TIMEOUT_S:g}s",
                     http_token=TOKEN))
    except Failure as e:
        say(f"FAIL: {e}")
        sys.exit(1)
