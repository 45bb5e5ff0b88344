"""Fixtures for the browser suite: headless Chromium, the real `medic serve`, and the fake server."""
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
STATIC = os.path.join(REPO, "web-static")
# Test runs write screenshots to an ignored folder; the tracked ones the README shows are refreshed only on
# request (MEDIC_UPDATE_SCREENSHOTS=1), so a test run leaves the work tree clean.
SCREENSHOTS = (os.path.join(HERE, "screenshots") if os.environ.get("MEDIC_UPDATE_SCREENSHOTS") == "1"
               else os.path.join(REPO, ".tmp", "screenshots"))
CHROMIUM = os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER_BIN", "/usr/bin/chromedriver")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_http(url, deadline=30.0):
    end = time.time() + deadline
    last = None
    while time.time() < end:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except (OSError, urllib.error.URLError) as e:
            last = e
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer 200 within {deadline}s: {last}")


def medic_bin():
    """The medic binary from MEDIC_BIN; skipped locally when unset, a failure in CI."""
    path = os.environ.get("MEDIC_BIN")
    if not path:
        if os.environ.get("CI"):
            pytest.fail("MEDIC_BIN is not set: run through scripts/test.sh")
        pytest.skip("MEDIC_BIN not set (the browser tests need the real server)")
    return path


def wait(driver, predicate, timeout=30, message=""):
    """Polls `predicate(driver)` until truthy (bounded; WebDriverWait raises TimeoutException)."""
    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(predicate, message)


def screenshot(driver, name, folder=SCREENSHOTS):
    os.makedirs(folder, exist_ok=True)
    driver.save_screenshot(os.path.join(folder, name))


@pytest.fixture
def browsers():
    """A factory of headless Chromium sessions; all are closed at the end of the test."""
    made = []

    def make():
        options = Options()
        options.binary_location = CHROMIUM
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,900"):
            options.add_argument(arg)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        driver.set_page_load_timeout(30)
        driver.set_script_timeout(30)
        made.append(driver)
        return driver

    yield make
    for driver in made:
        driver.quit()


def emulate(driver, width=None, height=None, dark=None):
    """Viewport size (a phone: mobile metrics) and the colour scheme, through the DevTools protocol."""
    if width:
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600})
    if dark is not None:
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {
            "features": [{"name": "prefers-color-scheme", "value": "dark" if dark else "light"}]})


def severe_console_errors(driver):
    """Console errors (CSP violations and script errors show up here), minus expected socket noise."""
    errors = []
    for entry in driver.get_log("browser"):
        if entry["level"] != "SEVERE":
            continue
        msg = entry["message"]
        # A dropped or refused WebSocket during a restart is expected and logged by Chromium.
        if "WebSocket" in msg or "/ws" in msg or "favicon" in msg:
            continue
        errors.append(msg)
    return errors


class Medic:
    """One `medic serve` process on a loopback port with its own data directory."""

    def __init__(self, binary, data_dir, quorum=1, extra=(), demo=False):
        self.binary = binary
        self.demo = demo
        self.data_dir = str(data_dir)
        self.port = free_port()
        self.quorum = quorum
        self.extra = list(extra)
        self.proc = None
        self.log_path = os.path.join(self.data_dir, "serve.log")

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def token(self, name, role):
        """`medic token create`; the token is the last line of its output."""
        out = subprocess.run([self.binary, "token", "create", "--name", name, "--role", role, "--data-dir", self.data_dir],
                             check=True, capture_output=True, text=True, timeout=30)
        return out.stdout.strip().splitlines()[-1].strip()

    def start(self):
        os.makedirs(self.data_dir, exist_ok=True)
        log = open(self.log_path, "a")
        args = [self.binary, "serve", "--listen", f"127.0.0.1:{self.port}", "--data-dir", self.data_dir,
                "--static", STATIC, "--quorum", str(self.quorum), *([] if self.demo else ["--no-demo"]), *self.extra]
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        log.close()
        try:
            wait_for_http(self.url + "/healthz", deadline=30)
        except RuntimeError:
            self.stop()
            raise RuntimeError("medic serve did not come up; log:\n" + self.log())

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None

    def log(self):
        try:
            with open(self.log_path) as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def request(self, method, path, token, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=15) as r:
            return json.loads(r.read() or b"{}")

    def propose_demo(self, token):
        with open(os.path.join(REPO, "examples", "demo-proposal.json")) as f:
            body = json.load(f)
        return self.request("POST", "/api/v1/proposals", token, body)["proposal"]

    def events(self, token, proposal):
        """Every stored event of the proposal's topic, paging with since until head."""
        events, since = [], 0
        while True:
            page = self.request("GET", f"/api/v1/proposals/{proposal}/events?since={since}&limit=1000", token)
            events += page["events"]
            # README §8 promises `head`; page until it is reached (or until an empty page).
            if not page["events"] or ("head" in page and events[-1]["seq"] >= page["head"]):
                return events
            since = events[-1]["seq"]


@pytest.fixture
def medic_factory(tmp_path):
    """Makes (unstarted) Medic servers; stops them all at the end of the test."""
    binary = medic_bin()
    made = []

    def make(quorum=1, extra=(), demo=False):
        server = Medic(binary, tmp_path / f"medic{len(made)}", quorum=quorum, extra=extra, demo=demo)
        made.append(server)
        return server

    yield make
    for server in made:
        server.stop()


class FakeServer:
    def __init__(self, port, proc):
        self.port = port
        self.proc = proc

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def control(self, path):
        with urllib.request.urlopen(self.url + "/_fake/" + path, timeout=10) as r:
            return json.loads(r.read())


@pytest.fixture
def fake_factory():
    """Starts Tests/browser/fake_server.py (for the page's own checks, no Medic needed)."""
    made = []

    def make(*args):
        port = free_port()
        proc = subprocess.Popen([sys.executable, os.path.join(HERE, "fake_server.py"), "--port", str(port), *args],
                                stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        made.append(proc)
        wait_for_http(f"http://127.0.0.1:{port}/index.html", deadline=15)
        return FakeServer(port, proc)

    yield make
    for proc in made:
        proc.terminate()
        proc.wait(timeout=10)
