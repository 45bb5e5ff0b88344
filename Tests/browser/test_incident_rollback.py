"""A fix that does not heal, rolled back from the incident's page: the demo loop (the bundled demo, the scripted
model, real git and bubblewrap) up to the applied fix, then the same errors go on — the incident reads regressed,
the admin clicks "Roll back the fix", confirms inline, the fix's commit is reverted in the demo repository and the
incident opens again. A viewer sees the regressed incident without the button."""
import json
import os
import subprocess
import threading
import time

from selenium.webdriver.common.by import By

from conftest import screenshot, severe_console_errors, wait
from page import ReviewPage, tid


def status(page):
    return page.js("return document.querySelector('[data-testid=incident-status]')?.dataset.status")


def shown(page, testid):
    return page.js(f"const e = document.querySelector('[data-testid={testid}]'); return !!e && e.offsetParent !== null")


class Errors:
    """Appends the demo's failed sign-in lines to its log, ~20 a second, until stopped: the errors go on."""

    def __init__(self, log):
        self.log, self.stopped = log, threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        n = 0
        while not self.stopped.is_set():
            with open(self.log, "a") as f:
                for _ in range(2):
                    n += 1
                    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + ".000Z"
                    f.write(f"{stamp} ERROR auth: login failed user=ghost{n % 30} reason=wrong_password ip=10.9.0.{n % 200}\n")
            time.sleep(0.1)

    def stop(self):
        self.stopped.set()
        self.thread.join(5)


def incident_of(server, token):
    listed = server.request("GET", "/api/v1/incidents", token)["incidents"]
    return next((i for i in listed if i["severity"] == "critical"), None)


def until(what, probe, deadline):
    end = time.time() + deadline
    while time.time() < end:
        value = probe()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_regressed_fix_is_rolled_back_from_the_incident_page(medic_factory, browsers):
    server = medic_factory(quorum=1, demo=True)
    alice = server.token("alice", "admin")
    victor = server.token("victor", "viewer")
    server.start()
    page = ReviewPage(browsers(), server.url)
    page.open_with_token(alice)   # the first admin: the demo's load starts
    log = os.path.join(server.data_dir, "demo-app.log")

    # Up to the applied fix through the API (the approval page has its own tests).
    found = until("the critical incident's proposal", lambda: (lambda i: i if i and i.get("proposal") else None)(incident_of(server, alice)), 240)
    incident, proposal = found["id"], found["proposal"]
    until("awaiting review", lambda: server.request("GET", f"/api/v1/proposals/{proposal}", alice)["status"] == "awaiting_review", 180)
    revision = server.request("GET", f"/api/v1/proposals/{proposal}", alice)["revision"]
    errors = Errors(log)
    try:
        server.request("POST", f"/api/v1/proposals/{proposal}/review", alice, {"verdict": "approve", "revision": revision})
        until("applied", lambda: server.request("GET", f"/api/v1/proposals/{proposal}", alice)["status"] == "applied", 120)
        page.js(f"location.hash = {json.dumps('#/incidents/' + incident)}")
        wait(page.d, lambda d: status(page) == "regressed", 120, f"never regressed: {page.text('incident-sentence')}")
        assert shown(page, "incident-rollback"), "no rollback button on a regressed incident"
        screenshot(page.d, "incident-regressed.png")

        # The viewer sees the same incident, without the button.
        viewer = ReviewPage(browsers(), server.url)
        viewer.open_with_token(victor)
        viewer.js(f"location.hash = {json.dumps('#/incidents/' + incident)}")
        wait(viewer.d, lambda d: status(viewer) == "regressed", 30)
        assert not shown(viewer, "incident-rollback")

        # Cancel first: nothing happens; then confirm.
        page.d.find_element(By.CSS_SELECTOR, tid("incident-rollback")).click()
        wait(page.d, lambda d: shown(page, "incident-rollback-confirm"), 5)
        assert proposal in page.text("incident-rollback-text")
        page.d.find_element(By.CSS_SELECTOR, tid("incident-rollback-cancel")).click()
        wait(page.d, lambda d: not shown(page, "incident-rollback-confirm"), 5)
        assert server.request("GET", f"/api/v1/proposals/{proposal}", alice)["status"] == "applied"
        page.d.find_element(By.CSS_SELECTOR, tid("incident-rollback")).click()
        wait(page.d, lambda d: shown(page, "incident-rollback-ok"), 5)
        page.d.find_element(By.CSS_SELECTOR, tid("incident-rollback-ok")).click()

        wait(page.d, lambda d: status(page) == "open", 120, f"not open again: {page.text('incident-sentence')}")
        assert server.request("GET", f"/api/v1/proposals/{proposal}", alice)["status"] == "rolled_back"
        detail = server.request("GET", f"/api/v1/incidents/{incident}", alice)
        assert "rolled back" in detail["incident"]["reason"]
        assert [e["kind"] for e in detail["events"]].count("regressed") == 1
        assert "rolled back" in page.text("incident-timeline")
        # The revert is a commit in the demo repository, on top of the fix.
        demo_repo = os.path.join(server.data_dir, "demo-repo")
        subjects = subprocess.run(["git", "-C", demo_repo, "log", "--format=%s", "-2"], capture_output=True, text=True, check=True).stdout
        assert subjects.startswith("Revert "), subjects
        wait(viewer.d, lambda d: status(viewer) == "open", 30)
        screenshot(page.d, "incident-rolled-back.png")
        assert severe_console_errors(page.d) == []
    finally:
        errors.stop()
