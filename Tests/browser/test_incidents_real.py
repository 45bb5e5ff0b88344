"""The incidents page against `medic serve` (MEDIC_BIN): log lines posted to POST /api/v1/ingest open incidents that
appear in the list live; the view draws the rate as an SVG sparkline that grows with each closed bucket, shows the
samples (hostile log text stays text), and an admin acknowledges, mutes and resolves through the page while a
viewer gets no buttons; a critical incident raises the banner for admins on every view. Buckets are 1 s."""
import json
import urllib.error
import urllib.request

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from conftest import screenshot, severe_console_errors, wait
from page import ReviewPage, tid

HOSTILE = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>'


def config(tmp_path):
    monitor = {
        "bucket_seconds": 1,
        "detection": {"warmup_buckets": 2, "new_fingerprint_min_count": 5, "spike_min_count": 5},
        # Explicit levels so the test does not lean on the defaults: "password" is critical, volume alone medium.
        "policy": {"critical": {"multiple": 1e9, "users": 1000000, "keywords": ["password"]},
                   "high": {"multiple": 1e9, "users": 1000000}, "medium": {"multiple": 2, "users": 1000000}},
    }
    path = tmp_path / "incidents-config.json"
    path.write_text(json.dumps({"monitor": monitor}))
    return str(path)


def ingest(server, token, lines):
    body = "\n".join(json.dumps(line) for line in lines).encode()
    req = urllib.request.Request(server.url + "/api/v1/ingest", data=body, method="POST",
                                 headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        out = json.loads(r.read())
    assert out["accepted"] == len(lines), out
    return out


def go(page, fragment):
    page.js(f"location.hash = {json.dumps(fragment)}")


def rows(page):
    return page.js("return [...document.querySelectorAll('[data-testid=incident-row]')].map(r => ({id: r.dataset.id, "
                   "status: r.dataset.status, severity: r.dataset.severity, "
                   "title: r.querySelector('[data-testid=incident-row-title]')?.textContent}))")


def status(page):
    return page.js("return document.querySelector('[data-testid=incident-status]')?.dataset.status")


def shown(page, testid):
    return page.js(f"const e = document.querySelector('[data-testid={testid}]'); return !!e && e.offsetParent !== null")


def test_incidents_open_live_and_an_admin_acknowledges_mutes_and_resolves_them(medic_factory, browsers, tmp_path):
    server = medic_factory(extra=["--config", config(tmp_path)])
    alice = server.token("alice", "admin")
    victor = server.token("victor", "viewer")
    server.start()
    page = ReviewPage(browsers(), server.url)
    page.open_with_token(alice)
    go(page, "#/incidents")
    wait(page.d, lambda d: shown(page, "incidents-empty"), 10, "the empty list did not say so")

    # A new error at volume, its messages carrying markup: a medium incident opens and shows up live.
    ingest(server, alice, [{"service": "shop", "level": "error", "message": f"{HOSTILE} checkout failed for order {n}",
                            "user": f"u{n}"} for n in range(12)])
    wait(page.d, lambda d: rows(page), 20, "no incident appeared in the list")
    [row] = rows(page)
    assert (row["status"], row["severity"]) == ("open", "medium"), row
    assert row["title"].startswith("<img src=x") and "checkout failed for order" in row["title"]
    assert not shown(page, "incident-banner")   # medium: no banner

    page.click("incident-row-title")
    wait(page.d, lambda d: page.js("return window.medicPage.route()?.name") == "incident", 10)
    wait(page.d, lambda d: status(page) == "open", 10)
    assert page.text("incident-title") == row["title"]
    # The samples are the raw messages, as text: no element was made from them and nothing ran.
    wait(page.d, lambda d: page.js("return document.querySelectorAll('[data-testid=incident-sample]').length") >= 1, 10)
    assert HOSTILE in page.text("incident-samples")
    assert page.js("return document.querySelectorAll('#incident img, #incident script').length") == 0
    assert page.js("return window.pwned") is None
    # The sparkline: an SVG polyline whose points grow with each closed bucket (live `bucket` events).
    wait(page.d, lambda d: page.js("return document.querySelector('[data-testid=incident-sparkline]')?.dataset.points") is not None, 10)
    first = int(page.js("return document.querySelector('[data-testid=incident-sparkline]').dataset.points"))
    wait(page.d, lambda d: int(page.js("return document.querySelector('[data-testid=incident-sparkline]').dataset.points")) >= first + 2, 15,
         "the sparkline did not grow with the closed buckets")
    assert page.js("return document.querySelector('[data-testid=incident-sparkline-line]').tagName") == "polyline"
    assert page.js("return document.querySelector('[data-testid=incident-sparkline]').namespaceURI") == "http://www.w3.org/2000/svg"
    screenshot(page.d, "incident-open.png")

    # Acknowledge, mute for an hour, resolve with a reason: each through the page, each seen in status and timeline.
    page.button("incident-acknowledge").click()
    wait(page.d, lambda d: status(page) == "acknowledged", 10)
    assert not shown(page, "incident-acknowledge")
    Select(page.d.find_element(By.CSS_SELECTOR, tid("incident-mute-duration"))).select_by_visible_text("1 hour")
    page.button("incident-mute").click()
    wait(page.d, lambda d: status(page) == "muted", 10)
    muted = server.request("GET", f"/api/v1/incidents/{row['id']}", alice)["incident"]
    assert muted["status"] == "muted" and 3_500_000 < muted["muted_until"] - muted["updated_at"] <= 3_600_000
    page.d.find_element(By.CSS_SELECTOR, tid("incident-reason")).send_keys("a test shop, nobody buys there")
    page.button("incident-resolve").click()
    wait(page.d, lambda d: status(page) == "resolved", 10)
    wait(page.d, lambda d: "Resolved by alice: a test shop, nobody buys there" in page.text("incident-timeline"), 10)
    kinds = page.js("return [...document.querySelectorAll('[data-testid=incident-event]')].map(e => e.dataset.kind)")
    assert kinds == ["incident_opened", "incident_acknowledged", "incident_muted", "incident_resolved"], kinds
    assert not shown(page, "incident-resolve") and shown(page, "incident-file-bug")   # closed: only a new bug is offered
    # The page saw every stored event of the topic once, in order.
    events = server.request("GET", f"/api/v1/incidents/{row['id']}/events?since=0&limit=1000", alice)["events"]
    assert page.seen_seqs(f"incident:{row['id']}") == [e["seq"] for e in events]

    # A critical one ("password"): the banner shows for the admin on every view and leads to it.
    ingest(server, alice, [{"service": "auth", "level": "error", "message": f"login rejected: invalid password for account {n}"}
                           for n in range(12)])
    wait(page.d, lambda d: shown(page, "incident-banner"), 20, "no banner for the critical incident")
    assert "Critical incident" in page.text("incident-banner-text")
    go(page, "#/bugs")
    wait(page.d, lambda d: page.js("return window.medicPage.route()?.name") == "bugs", 10)
    assert shown(page, "incident-banner")
    page.click("incident-banner-link")
    wait(page.d, lambda d: page.js("return window.medicPage.route()?.name") == "incident", 10)
    critical = page.js("return document.querySelector('[data-testid=incident-banner]').dataset.incident")
    assert page.js("return window.medicPage.route().params.id") == critical
    wait(page.d, lambda d: page.js("return document.querySelector('[data-testid=incident-severity]').dataset.severity") == "critical", 10)
    screenshot(page.d, "incident-critical-banner.png")
    assert severe_console_errors(page.d) == []

    # A viewer sees the incidents but no banner and no buttons — and the server refuses the command anyway.
    viewer = ReviewPage(browsers(), server.url)
    viewer.open_with_token(victor)
    go(viewer, f"#/incidents/{critical}")
    wait(viewer.d, lambda d: status(viewer) in ("open", "fixing"), 10)
    assert not shown(viewer, "incident-banner")
    assert not shown(viewer, "incident-actions")
    assert "Only admins" in viewer.text("incident-why")
    try:
        server.request("POST", f"/api/v1/incidents/{critical}/resolve", victor, {})
        raise AssertionError("a viewer resolved an incident")
    except urllib.error.HTTPError as e:
        assert e.code == 403
    assert server.request("GET", f"/api/v1/incidents/{critical}", alice)["incident"]["status"] in ("open", "fixing")
