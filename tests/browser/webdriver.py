"""webdriver.py: just enough of the W3C WebDriver protocol (HTTP + JSON, over
urllib) to drive headless Chromium through Debian's chromedriver: open a
page, run a script in it, take a screenshot.

Browser(work_dir) starts chromedriver on a free 127.0.0.1 port and a session
with a fresh profile; quit() ends the session and stops chromedriver (the
caller, a child subreaper, kills whatever chromium left behind).
"""
import base64
import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request

from rrcluster import Failure, die_with_us, free_tcp_ports

CHROMEDRIVER = os.environ.get("RR_CHROMEDRIVER", "/usr/bin/chromedriver")
CHROMIUM = os.environ.get("RR_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1280,900"]


class Browser:
    def __init__(self, work_dir):
        for prog in (CHROMEDRIVER, CHROMIUM):
            if not os.access(prog, os.X_OK):
                raise Failure(f"{prog} missing: run deploy/install-deps.sh (chromium chromium-driver)")
        try:
            socket.getaddrinfo("localhost", None)
        except OSError as e:
            # chromedriver reaches Chromium's DevTools at "localhost": without it the
            # session fails as "unable to connect to renderer" (seen in a debootstrap
            # chroot, which has no /etc/hosts; a Debian install always has one).
            raise Failure(f"'localhost' does not resolve ({e}): chromedriver needs it "
                          "to reach Chromium; add '127.0.0.1 localhost' to /etc/hosts")
        self.port = free_tcp_ports(1)[0]
        self.base = f"http://127.0.0.1:{self.port}"
        self.session = None
        log = open(os.path.join(work_dir, "chromedriver.log"), "ab")
        self.driver = subprocess.Popen(
            [CHROMEDRIVER, f"--port={self.port}", "--allowed-ips=127.0.0.1"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, preexec_fn=die_with_us)
        log.close()
        try:
            self._wait_ready()
            profile = os.path.join(work_dir, "chromium-profile")
            os.makedirs(profile, exist_ok=True)
            caps = {"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {"binary": CHROMIUM,
                                       "args": CHROMIUM_FLAGS + [f"--user-data-dir={profile}"]}}}}
            self.session = self._call("POST", "/session", caps)["sessionId"]
        except BaseException:
            self.quit()
            raise

    def _wait_ready(self):
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.driver.poll() is not None:
                raise Failure(f"chromedriver exited {self.driver.returncode}")
            try:
                if self._call("GET", "/status", timeout=2).get("ready"):
                    return
            except (OSError, urllib.error.URLError, Failure):
                pass
            time.sleep(0.1)
        raise Failure("chromedriver not ready within 20 s")

    def _call(self, method, path, body=None, timeout=30):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return json.load(resp)["value"]
        except urllib.error.HTTPError as e:
            detail = e.read().decode(errors="replace")[:500]
            raise Failure(f"webdriver {method} {path}: HTTP {e.code}: {detail}") from None

    def _session(self, method, path, body=None):
        return self._call(method, f"/session/{self.session}{path}", body)

    def get(self, url):
        self._session("POST", "/url", {"url": url})

    def run(self, script, *args):
        """Run SCRIPT (a function body; arguments[i]) in the page; its return value."""
        return self._session("POST", "/execute/sync", {"script": script, "args": list(args)})

    def wait_for(self, script, what, timeout, *args, poll=0.1):
        """Run SCRIPT until it returns something truthy; that value, else Failure."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.run(script, *args)
            if value:
                return value
            if time.monotonic() > deadline:
                raise Failure(f"page: {what} not seen within {timeout} s")
            time.sleep(poll)

    def screenshot(self, path):
        png = base64.b64decode(self._session("GET", "/screenshot"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(png)
        return path

    def quit(self):
        if self.session:
            try:
                self._session("DELETE", "")
            except (OSError, urllib.error.URLError, Failure):
                pass
            self.session = None
        if self.driver.poll() is None:
            self.driver.terminate()
            try:
                self.driver.wait(5)
            except subprocess.TimeoutExpired:
                self.driver.kill()
                self.driver.wait()
