#!/usr/bin/env python3
"""retention_test.py: log retention (master/retention.h) on a real master,
worker and emulated rack (rrcluster.py).

  retention_test.py age    log_retention_age: 2s. A finished job keeps its
                           log until 2 s after it ended; the next pass (the
                           next job's end) removes it: its log is then only
                           the retention line, while its results, actions
                           and outcome stay, and the new job's log is whole.
  retention_test.py size   log_retention_size: a budget a big log exceeds:
                           the job printing it loses its log as soon as it
                           ends (oldest first, only while over budget); a
                           small job after it keeps its log.
"""
import base64
import sys
import time

from rrcluster import Failure, check, run, say

MARKER = "[rackrun: console log removed by log retention]"
SIZE_BUDGET = "256KiB"
BIG_LINES = 60000                          # ~340 KB of console output


def log_text(c, job):
    """The job's console as the HTTP API gives it, and its events."""
    events, seq = [], 0
    while True:
        page = c.api(f"/api/v1/jobs/{job}/log?from={seq}&limit=1000")
        events += page["events"]
        seq = page["last_seq"]
        if not page["more"]:
            break
    text = "".join(ev.get("data") or base64.b64decode(ev.get("data_base64", "")).decode(
        errors="replace") for ev in events if ev["kind"] == "log")
    return text, events


def wait_pruned(c, job, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text, events = log_text(c, job)
        if MARKER in text:
            return text, events
        time.sleep(0.2)
    raise Failure(f"job {job}: log not pruned within {timeout} s:\n" + c.tail("master"))


def check_kept_the_rest(c, job, events):
    kinds = {ev["kind"] for ev in events}
    check({"state", "action", "result", "end"} <= kinds, f"job {job}: events lost: {kinds}")
    results = c.api(f"/api/v1/jobs/{job}/results")
    check(results["pass"] == 1, f"job {job}: results after pruning: {results}")
    info = c.job(job)
    check(info["outcome"] == "complete", f"job {job}: outcome after pruning: {info['outcome']}")
    rc, out, err = c.cli("logs", str(job))
    check(rc == 0 and MARKER in out, f"rackrun logs {job} after pruning: exit {rc}: {out[-300:]}{err}")


def test_age(c):
    old = c.submit(c.job_yaml("old", [("say", "echo old-job-output")]), "old")
    info = c.wait_job(old, 60)
    text, _ = log_text(c, old)
    check("old-job-output" in text and MARKER not in text, f"job {old} pruned too early")
    time.sleep(max(0.0, info["ended_ms"] / 1000 + 2.5 - time.time()))
    new = c.submit(c.job_yaml("new", [("say", "echo new-job-output")]), "new")
    c.wait_job(new, 60)
    text, events = wait_pruned(c, old, 10)
    check("old-job-output" not in text, f"job {old}: console bytes left after pruning: {text[-300:]}")
    check_kept_the_rest(c, old, events)
    text, _ = log_text(c, new)
    check("new-job-output" in text and MARKER not in text, f"job {new} (2 s young) lost its log")
    say(f"retention age: job {old} pruned after 2 s, job {new} kept")


def test_size(c):
    big = c.submit(c.job_yaml("big", [("flood", f"seq 1 {BIG_LINES}; echo flood-done")],
                              test_timeout="2m"), "big")
    c.wait_job(big, 120)
    text, events = wait_pruned(c, big, 10)
    check("flood-done" not in text, f"job {big}: console bytes left: {text[-200:]}")
    check_kept_the_rest(c, big, events)
    small = c.submit(c.job_yaml("small", [("say", "echo small-job-output")]), "small")
    c.wait_job(small, 60)
    time.sleep(1)                       # a pass runs 0.1 s after a job ends
    text, _ = log_text(c, small)
    check("small-job-output" in text and MARKER not in text,
          f"job {small} lost its log although the database is under budget again")
    log = open(c.path("master.log"), errors="replace").read()
    check(f"retention: job {big}: console log removed" in log and "log_retention_size" in log,
          "the master log does not say why it pruned")
    say(f"retention size: job {big} pruned over budget {SIZE_BUDGET}, job {small} kept")


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    try:
        if mode == "age":
            sys.exit(run(test_age, "retention-age", master_extra="log_retention_age: 2s\n"))
        if mode == "size":
            sys.exit(run(test_size, "retention-size",
                         master_extra=f"log_retention_size: {SIZE_BUDGET}\n"))
    except Failure as e:
        say(f"FAIL: {e}")
        sys.exit(1)
    print(__doc__)
    sys.exit(2)
