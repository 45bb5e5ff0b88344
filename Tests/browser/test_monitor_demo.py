"""The monitor's demo loop in the browser, against `medic serve` on its embedded defaults (the bundled demo, the
scripted model, real git and bubblewrap): when the first admin signs in, examples/demo-load.py signs the demo users
in against the demo repository; the users whose passwords need normalising get 'wrong password' — the spike is
detected, a critical incident opens (the banner), a bug is filed automatically, its approaches run, the admin
approves the winner in the page, the fix is applied, the errors stop and the incident reads "Healed in N s".
This is issue 15's done criterion."""
import json
import os
import re

from selenium.webdriver.common.by import By

from conftest import screenshot, severe_console_errors, wait
from page import ReviewPage, tid


def go(page, fragment):
    page.js(f"location.hash = {json.dumps(fragment)}")


def route(page):
    return page.js("return window.medicPage.route()?.name")


def status(page):
    return page.js("return document.querySelector('[data-testid=incident-status]')?.dataset.status")


def test_spike_incident_bug_approaches_approval_healed(medic_factory, browsers):
    server = medic_factory(quorum=1, demo=True)
    alice = server.token("alice", "admin")
    server.start()
    page = ReviewPage(browsers(), server.url)
    page.open_with_token(alice)   # the first admin: the demo proposal, then the demo app's load
    log = os.path.join(server.data_dir, "demo-app.log")
    wait(page.d, lambda d: os.path.exists(log) and os.path.getsize(log) > 0, 30, "the demo load wrote nothing")

    # The spike: a critical incident (the banner), its bug filed automatically.
    wait(page.d, lambda d: page.js("const b = document.querySelector('[data-testid=incident-banner]'); return !!b && !b.hidden"), 60,
         f"no critical incident: {server.log()}")
    page.click("incident-banner-link")
    wait(page.d, lambda d: route(page) == "incident", 10)
    incident = page.js("return window.medicPage.route().params.id")
    # The title is the id until the incident's detail (or its topic's first event) has arrived: wait for it.
    wait(page.d, lambda d: page.text("incident-title") == "auth: login failed user=<v> reason=wrong_password ip=<v>", 10,
         f"title: {page.text('incident-title')}")
    assert page.js("return document.querySelector('[data-testid=incident-severity]').dataset.severity") == "critical"
    assert "reason=wrong_password" in page.text("incident-samples")
    wait(page.d, lambda d: status(page) == "fixing", 30, f"no bug filed: {page.text('incident-sentence')}")
    wait(page.d, lambda d: page.js("return !!document.querySelector('[data-testid=incident-bug]')"), 10)
    screenshot(page.d, "demo-incident-fixing.png")

    # The approaches run in the bug's view; the winner is proposed.
    page.click("incident-bug")
    wait(page.d, lambda d: route(page) == "bug", 10)
    wait(page.d, lambda d: page.js("return !!document.querySelector('[data-testid=bug-proposal-link]')"), 240,
         f"the bug was never proposed: {page.text('bug-checklist')}")
    assert len(page.js("return [...document.querySelectorAll('[data-testid=approach-card]')]")) == 3
    page.click("bug-proposal-link")
    wait(page.d, lambda d: route(page) == "proposal", 10)
    page.wait_status(["awaiting_review"], timeout=120)

    # Approval is never skipped: the admin approves in the page, the fix is applied.
    page.button("btn-approve").click()
    page.wait_status(["applied"], timeout=120)

    # The errors stop; the incident watches, then reads healed.
    go(page, f"#/incidents/{incident}")
    wait(page.d, lambda d: route(page) == "incident", 10)
    wait(page.d, lambda d: status(page) in ("watching", "healed"), 30, f"not watching: {page.text('incident-sentence')}")
    wait(page.d, lambda d: status(page) == "healed", 120, f"never healed: {page.text('incident-timeline')}")
    sentence = page.text("incident-sentence")
    assert re.fullmatch(r"Healed in \d+( min( \d+ s)?| s)\.", sentence), sentence
    assert "Healed in" in page.text("incident-timeline")
    assert not page.js("const b = document.querySelector('[data-testid=incident-banner]'); return !!b && !b.hidden")
    detail = server.request("GET", f"/api/v1/incidents/{incident}", alice)["incident"]
    assert detail["status"] == "healed" and detail["automatic"] is True and detail["time_to_heal_ms"] > 0
    # The load's sign-ins work now: the log's last lines are successes only.
    with open(log) as f:
        tail = f.read().splitlines()[-20:]
    assert tail and all(" INFO auth: login ok " in line for line in tail), tail[-3:]
    screenshot(page.d, "demo-incident-healed.png")
    assert severe_console_errors(page.d) == []
