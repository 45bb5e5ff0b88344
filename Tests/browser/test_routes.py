"""Hash routes, against fake_server.py: a deep link `#/proposals/<id>` opens that proposal (after a reload too),
back and forward move between what was opened, an unknown address shows a not-found view with the way back,
and a hostile or overlong id is refused: never subscribed to, never put into the DOM."""
from selenium.webdriver.common.by import By

from conftest import severe_console_errors, wait
from page import ReviewPage, tid

# Records every frame the page sends (installed before the page's own scripts; CDP scripts are not subject to
# the CSP), so a test can say which topics the page subscribed to.
RECORD_SENT = """
window.__sent = [];
const send = WebSocket.prototype.send;
WebSocket.prototype.send = function (data) { window.__sent.push(String(data)); return send.call(this, data); };
"""


def recording_page(browsers, base):
    driver = browsers()
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_SENT})
    return ReviewPage(driver, base)


def subscribed_topics(page):
    return page.js("return (window.__sent || []).map(s => JSON.parse(s)).filter(m => m.type === 'subscribe')"
                   ".map(m => m.topic)")


def shown(page, testid):
    return page.js("const e = document.querySelector(arguments[0]); return !!e && !e.closest('[hidden]')", tid(testid))


def route(page):
    return page.js("return window.medicPage.route()")


def wait_open(page, pid, timeout=15):
    wait(page.d, lambda d: shown(page, "proposal-title") and pid in (page.text("proposal-meta") or ""), timeout,
         f"{pid} is not the open proposal (route {route(page)})")


def test_a_deep_link_opens_its_proposal_and_survives_a_reload(fake_factory, browsers):
    fake = fake_factory("--speed", "0.2")
    first = fake.control("propose?title=First")["proposal"]
    second = fake.control("propose?title=Second")["proposal"]
    page = recording_page(browsers, fake.url)
    # A new tab is signed out: the link waits behind the sign-in form and opens once signed in.
    page.d.get(f"{fake.url}/#/proposals/{second}")
    field = wait(page.d, lambda d: d.find_element(By.CSS_SELECTOR, tid("token-input")))
    field.send_keys("tok-alice")
    page.d.find_element(By.CSS_SELECTOR, tid("signin-submit")).click()
    page.wait_live()
    wait_open(page, second)
    assert route(page) == {"name": "proposal", "params": {"id": second}}
    assert page.d.current_url.endswith(f"#/proposals/{second}"), "the address stays as linked"
    wait(page.d, lambda d: page.seen_seqs(f"proposal:{second}")[:1] == [1], 10, "the proposal's events were not replayed")
    marked = page.js("return document.querySelector('[aria-current=true]')?.dataset.proposalId")
    assert marked == second, "the list marks the linked proposal as the open one"

    page.d.refresh()
    page.wait_live()
    wait_open(page, second)
    assert sorted(subscribed_topics(page)) == sorted(["proposals", "incidents", f"proposal:{second}"]), \
        "after a reload: the list, the incidents (the admins' banner) and the link only"
    # Another deep link in the signed-in tab switches to that proposal.
    page.d.get(f"{fake.url}/#/proposals/{first}")
    wait_open(page, first)
    assert subscribed_topics(page)[-1] == f"proposal:{first}"
    assert severe_console_errors(page.d) == []


def test_back_and_forward_move_between_opened_proposals(fake_factory, browsers):
    fake = fake_factory("--speed", "0.2")
    a = fake.control("propose?title=Alpha")["proposal"]
    b = fake.control("propose?title=Beta")["proposal"]
    page = ReviewPage(browsers(), fake.url)
    page.open_with_token("tok-alice")
    assert shown(page, "placeholder"), "two proposals: nothing opens by itself"
    page.open_proposal(a)
    page.open_proposal(b)
    assert route(page)["params"] == {"id": b}

    page.d.back()
    wait_open(page, a)
    page.d.back()
    wait(page.d, lambda d: shown(page, "placeholder") and not shown(page, "proposal-title"), 10, "back to the list")
    assert route(page)["name"] == "home"
    page.d.forward()
    wait_open(page, a)
    page.d.forward()
    wait_open(page, b)
    # The open proposal's events keep coming after all that history: it is subscribed exactly once.
    wait(page.d, lambda d: len(page.timeline_entries()) > 0, 10)
    seqs = page.seen_seqs(f"proposal:{b}")
    assert seqs == list(range(1, len(seqs) + 1)), f"a gap or a repeat: {seqs[:20]}"


def test_an_unknown_address_shows_not_found_with_the_way_back(fake_factory, browsers):
    fake = fake_factory("--speed", "0.2")
    pid = fake.control("propose")["proposal"]
    page = ReviewPage(browsers(), fake.url)
    page.d.get(f"{fake.url}/#token=tok-alice")
    page.wait_live()
    wait_open(page, pid)   # the only proposal opens by itself
    page.js("location.hash = '#/dashboards/42'")
    wait(page.d, lambda d: shown(page, "not-found"), 10, "no not-found view")
    assert not shown(page, "proposal-title") and not shown(page, "placeholder")
    assert page.text("not-found-text").startswith("Nothing lives at this address")
    assert page.js("return document.title") == "Not found — Medic"
    assert page.list_items(), "the list stays reachable"
    page.d.find_element(By.CSS_SELECTOR, tid("not-found-home")).click()
    wait(page.d, lambda d: shown(page, "placeholder") and not shown(page, "not-found"), 10)
    assert route(page)["name"] == "proposals"
    assert page.d.current_url.endswith("#/proposals")
    # Nothing opened by itself after the user chose a place.
    assert not shown(page, "proposal-title")


HOSTILE = ["<img src=x onerror=window.__pwned=1>", '"><svg onload=window.__pwned=1>', "p_1' onmouseover='x",
           "../../api/v1/proposals", "a" * 65, "p" * 5000]


def test_hostile_or_overlong_ids_are_refused_and_never_reach_the_dom(fake_factory, browsers):
    fake = fake_factory("--speed", "0.2")
    fake.control("propose")
    fake.control("propose")
    page = recording_page(browsers, fake.url)
    # As the first address of a tab (a link someone sent) …
    page.d.get(fake.url + "/#/proposals/<img src=x onerror=window.__pwned=1>")
    page.d.get(fake.url + "/#token=tok-alice")
    page.wait_live()
    # … and typed into a tab already signed in.
    for bad in HOSTILE:
        for address in ("#/proposals/" + bad, "#p=" + bad):
            page.js("location.hash = '#/proposals'")
            wait(page.d, lambda d: shown(page, "placeholder"), 10)
            page.js("location.hash = arguments[0]", address)
            wait(page.d, lambda d: shown(page, "not-found"), 10, f"{address[:60]} was not refused")
            # An id with a "/" in the path form is a longer path no route has; every other one is a bad id.
            reason = "unknown" if "/" in bad and address.startswith("#/") else "invalid"
            assert page.js("return document.querySelector('[data-testid=not-found-text]').dataset.reason") == reason
            assert route(page) == {"name": "not-found", "params": {}, "reason": reason}
            html = page.js("return document.body.innerHTML")
            assert "onerror" not in html and "onload" not in html and "onmouseover" not in html and bad not in html
            assert page.js("return document.querySelectorAll('img, svg').length") == 0
    assert page.js("return window.__pwned") is None
    assert sorted(subscribed_topics(page)) == ["incidents", "proposals"], "no topic was built from a refused id"
    assert page.js("return document.title") == "Not found — Medic"
    # A percent-encoded hostile id is decoded, then refused just the same.
    page.js("location.hash = '#/proposals/%3Cimg%20src%3Dx%20onerror%3Dwindow.__pwned%3D1%3E'")
    wait(page.d, lambda d: shown(page, "not-found"), 10)
    assert page.js("return window.__pwned") is None
    assert severe_console_errors(page.d) == []


def test_the_skip_link_moves_focus_without_closing_the_proposal(fake_factory, browsers):
    fake = fake_factory("--speed", "0.2")
    pid = fake.control("propose")["proposal"]
    page = ReviewPage(browsers(), fake.url)
    page.open_with_token("tok-alice")
    wait_open(page, pid)
    page.js("document.querySelector('.skip-link').click()")
    assert page.js("return document.activeElement.id") == "proposal-view"
    assert route(page)["params"] == {"id": pid}
    wait_open(page, pid, 2)
