#!/usr/bin/env python3
"""cli_results_test.py: the operator's CLI commands around a job, on a real
master, worker and emulated rack (rrcluster.py):

  results   `rackrun results ID --junit FILE` of a real job is valid against
            tests/browser/junit.xsd (xmllint, Debian libxml2-utils), has one
            testcase per step and RR_RESULT line, the failing step's
            <failure> carries the tail of its console (escape sequences,
            control bytes and XML specials made safe), a skip is <skipped/>;
            --json says the same; a job that did not complete gets an
            <error> case.
  wait      blocks until the job ends; exit 0 for complete, 1 otherwise.
  resubmit  submits the stored job again as a new job, which runs the same.
"""
import json
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

from rrcluster import RACKRUN, SRC, Failure, check, run, say

XSD = os.path.join(SRC, "tests", "browser", "junit.xsd")
XMLLINT = "/usr/bin/xmllint"

STEPS = [
    ("hello", "echo hello-from-node"),
    # a failing step whose output holds what XML cannot take raw
    ("broken", "printf 'before\\033[31m <boom> & \"quoted\" \\001\\302 red\\033[0m\\n'; sh -c 'exit 3'"),
    ("extra", "printf '\\nRR_%s name=optional result=skip\\n' RESULT; "
              "printf 'RR_%s name=speed result=pass measurement=42 units=MB/s\\n' RESULT"),
]

CASES = ["hello", "broken", "optional", "speed", "extra"]


def xmllint(path):
    r = subprocess.run([XMLLINT, "--noout", "--schema", XSD, path], capture_output=True, text=True)
    return r.returncode, r.stderr


def check_schema_rejects_bad_junit(c):
    """The validation can fail: a testcase without its name is refused."""
    bad = c.path("bad.xml")
    with open(bad, "w") as f:
        f.write('<?xml version="1.0"?>\n<testsuites><testsuite name="x" tests="1">'
                '<testcase classname="y"/></testsuite></testsuites>\n')
    rc, err = xmllint(bad)
    check(rc != 0, f"xmllint accepted a testcase without a name: {err}")


def check_junit(c, job):
    out = c.path(f"job{job}.xml")
    rc, _, err = c.cli("results", str(job), "--junit", out)
    check(rc == 0, f"rackrun results {job} --junit: exit {rc}: {err}")
    rc, err = xmllint(out)
    check(rc == 0, f"{out} is not valid JUnit (junit.xsd): {err}")
    suite = ET.parse(out).getroot().find("testsuite")
    cases = {tc.get("name"): tc for tc in suite.findall("testcase")}
    # the RR_RESULT lines of step "extra" come before the step's own result
    check(list(cases) == CASES, f"testcases: {list(cases)}")
    failure = cases["broken"].find("failure")
    check(failure is not None and failure.get("message") == "exit 3",
          f"step 'broken' has no <failure message='exit 3'>: {ET.tostring(cases['broken'])!r}")
    check('<boom> & "quoted"' in failure.text and "before" in failure.text,
          f"the failure lacks the console tail: {failure.text!r}")
    check("\x1b" not in failure.text and "\x01" not in failure.text, "control bytes in the XML text")
    check(cases["hello"].find("failure") is None and cases["speed"].find("failure") is None,
          "a passing case carries a failure")
    check(cases["optional"].find("skipped") is not None, "the skip result is not <skipped/>")
    check(suite.get("tests") == str(len(cases)) and suite.get("failures") == "1"
          and suite.get("skipped") == "1", f"suite counts: {suite.attrib}")
    say(f"results: job {job} JUnit valid, {len(cases)} testcases")
    rc, xml_out, err = c.cli("results", str(job), "--junit")
    check(rc == 0 and xml_out.startswith("<?xml"), f"--junit to stdout: exit {rc}: {err}")


def check_json(c, job):
    rc, out, err = c.cli("--json", "results", str(job))
    check(rc == 0, f"rackrun --json results {job}: exit {rc}: {err}")
    data = json.loads(out)
    names = [r["name"] for r in data["results"]]
    check(names == CASES, f"--json results: {names}")
    check((data["pass"], data["fail"], data["skip"]) == (3, 1, 1), f"--json counts: {data}")
    broken = data["results"][1]
    check(broken["code"] == 3 and "<boom>" in broken["log_tail"], f"--json failure: {broken}")
    speed = data["results"][3]
    check(speed.get("measurement") == "42" and speed.get("units") == "MB/s", f"measurement: {speed}")


def check_wait_blocks_until_end(c):
    job = c.submit(c.job_yaml("wait for me", [("nap", "sleep 3; echo napped")]), "nap")
    t0 = time.monotonic()
    rc, out, err = c.cli("wait", str(job))
    info = c.job(job)
    check(rc == 0, f"rackrun wait {job}: exit {rc} for a job that completed: {out}{err}")
    check(info["state"] == "finished" and info["outcome"] == "complete",
          f"wait returned while job {job} is {info['state']}")
    check("complete" in out, f"wait printed no outcome: {out!r}")
    say(f"wait: job {job} complete, waited {time.monotonic() - t0:.1f} s")
    return job


def check_wait_fails_for_canceled(c):
    job = c.submit(c.job_yaml("cancel me", [("long", "sleep 60")]), "long")
    waiter = subprocess.Popen([RACKRUN, "wait", str(job)],
                              env=c.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while c.job(job)["state"] != "running" and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(0.5)
        check(waiter.poll() is None, f"rackrun wait {job} returned while the job runs")
        rc, _, err = c.cli("cancel", str(job))
        check(rc == 0, f"rackrun cancel {job}: {err}")
        rc = waiter.wait(30)
        out = waiter.stdout.read().decode()
    finally:
        if waiter.poll() is None:
            waiter.kill()
            waiter.wait()
        waiter.stdout.close()
        waiter.stderr.close()
    check(rc == 1, f"rackrun wait {job}: exit {rc} for a canceled job (want 1): {out}")
    # a job that did not complete: the JUnit report says so with an <error> case
    path = c.path(f"job{job}.xml")
    rc, _, err = c.cli("results", str(job), "--junit", path)
    check(rc == 0, f"results --junit of canceled job {job}: {err}")
    rc, err = xmllint(path)
    check(rc == 0, f"JUnit of canceled job {job} invalid: {err}")
    suite = ET.parse(path).getroot().find("testsuite")
    errors = [tc for tc in suite.findall("testcase") if tc.find("error") is not None]
    check(len(errors) == 1 and errors[0].find("error").get("type") == "canceled"
          and suite.get("errors") == "1", f"canceled job's JUnit: {ET.tostring(suite)[:600]!r}")
    say(f"wait: canceled job {job} gives exit 1 and a JUnit <error>")


def check_resubmit(c, job):
    rc, out, err = c.cli("resubmit", str(job))
    check(rc == 0, f"rackrun resubmit {job}: exit {rc}: {err}")
    new = int(out.strip())
    check(new != job, f"resubmit gave the same id {new}")
    old_info, new_info = c.job(job), c.job(new)
    check(new_info["name"] == old_info["name"] and new_info["yaml"] == old_info["yaml"],
          f"job {new} is not a copy of job {job}")
    rc, out, err = c.cli("wait", str(new))
    check(rc == 0, f"rackrun wait {new} (resubmitted): exit {rc}: {out}{err}")
    rc, _, err = c.cli("resubmit", "999999")
    check(rc == 1 and "999999" in err, f"resubmit of an unknown job: exit {rc}: {err}")
    say(f"resubmit: job {job} -> job {new}, complete")


def test(c):
    check(os.access(XMLLINT, os.X_OK), "xmllint missing: run deploy/install-deps.sh (libxml2-utils)")
    check_schema_rejects_bad_junit(c)
    job = c.submit(c.job_yaml("results demo", STEPS), "results")
    info = c.wait_job(job, 60)
    say(f"job {job} ended {info['outcome']} ({info.get('reason')})")
    check_junit(c, job)
    check_json(c, job)
    done = check_wait_blocks_until_end(c)
    check_wait_fails_for_canceled(c)
    check_resubmit(c, done)


if __name__ == "__main__":
    try:
        sys.exit(run(test, "cli-results"))
    except Failure as e:
        say(f"FAIL: {e}")
        sys.exit(1)
