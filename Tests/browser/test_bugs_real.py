"""The bug views against `medic serve` (MEDIC_BIN): the demo bug (filed by the monitor from the errors of
examples/demo-load.py, which starts when the first admin signs in) walks through the checklist in the page, its approaches show as cards, the winner's proposal opens
in the review view and an admin picks the other qualified approach; the report form's command and the server's
refusal, through the real server."""
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from conftest import screenshot, severe_console_errors, wait
from page import ReviewPage, tid
from test_bugs_page import CARDS, SPY, checklist, go, rows, sent, wait_check


def test_the_demo_bug_in_the_page_from_report_to_a_chosen_approach(medic_factory, browsers):
    server = medic_factory(quorum=1, demo=True)
    alice = server.token("alice", "admin")
    server.start()
    page = ReviewPage(browsers(), server.url)
    page.open_with_token(alice)   # the first admin page: the demo proposal and bug are filed
    go(page, "#/bugs")
    wait(page.d, lambda d: rows(page), 60, "the demo bug never appeared in the list")
    [bug] = rows(page)
    page.click("bug-row-title")
    wait(page.d, lambda d: page.js("return window.medicPage.route()?.name") == "bug", 10)
    wait(page.d, lambda d: any(s == "done" and t.endswith("ready to review") for (s, t) in checklist(page)), 240,
         f"the demo bug never reached review: {checklist(page)}")
    items = checklist(page)
    texts = [t for (_, t) in items]
    assert texts[:4] == ["Analyzed bug", texts[1], "Reproduced the bug", "Generated 3 potential fixes"], texts
    assert texts[1].startswith("Found location: app/auth.py:"), texts[1]
    cards = {c["n"]: c for c in page.js(CARDS)}
    assert sorted(cards) == [1, 2, 3]
    winners = [n for n, c in cards.items() if c["winner"]]
    assert len(winners) == 1 and cards[winners[0]]["status"] == "qualified"
    failed = [c for c in cards.values() if c["status"] == "failed"]
    assert failed and any(c["breaking"] for c in failed), cards
    assert all(c["tests"].endswith("passed") for c in cards.values())
    # Every stored event once, in order (the REST log is the reference).
    events = server.request("GET", f"/api/v1/bugs/{bug['id']}/events?since=0&limit=1000", alice)["events"]
    assert page.seen_seqs(f"bug:{bug['id']}") == [e["seq"] for e in events]
    screenshot(page.d, "bug-real-proposed.png")

    # An admin prefers the other qualified approach: a new proposal replaces the winner's.
    first = server.request("GET", f"/api/v1/bugs/{bug['id']}", alice)["proposal"]
    others = [n for n, c in cards.items() if c["canChoose"]]
    assert others and winners[0] not in others
    page.js(SPY)
    page.click_css(f'[data-testid=approach-card][data-approach="{others[0]}"] [data-testid=approach-choose]')
    wait(page.d, lambda d: "chosen" in (page.text("bug-message") or ""), 60, f"no outcome: {page.text('bug-message')}")
    [cmd] = sent(page, "choose_approach")
    assert (cmd["bug"], cmd["approach"]) == (bug["id"], others[0])
    wait(page.d, lambda d: f"Fix #{others[0]} is proposed" in (page.text("bug-proposal") or ""), 60)
    now = server.request("GET", f"/api/v1/bugs/{bug['id']}", alice)
    assert now["chosen_approach"] == others[0] and now["proposal"] != first
    # Links are re-rendered as the proposal's status moves (proposal_status events): `click` finds a stale one again.
    page.click("bug-proposal-link")
    wait(page.d, lambda d: now["proposal"] in (page.text("proposal-meta") or ""), 30)
    # …and the proposal links back to its bug.
    wait(page.d, lambda d: page.text("proposal-bug") == f"fixes bug {bug['id']}", 10)
    page.click("proposal-bug")
    wait(page.d, lambda d: page.js("return window.medicPage.route()?.name") == "bug", 10)
    assert severe_console_errors(page.d) == []


def test_the_report_form_against_the_server(medic_factory, browsers):
    server = medic_factory(quorum=1)
    alice = server.token("alice", "admin")
    server.start()
    page = ReviewPage(browsers(), server.url)
    page.open_with_token(alice)
    page.js(SPY)
    go(page, "#/bugs")
    page.button("bug-report-open").click()
    wait(page.d, lambda d: Select(d.find_element(By.CSS_SELECTOR, tid("bug-form-repo"))).options, 10, "no repository")
    page.button("bug-title-input").send_keys('Sign-in <img src=x onerror="window.pwned=1"> fails')
    page.button("bug-evidence-input").send_keys("\n---\n".join(f"log {i}" for i in range(21)))
    page.button("bug-submit").click()
    wait(page.d, lambda d: page.text("bug-form-error"), 15, "the refusal was not shown")
    assert "evidence" in page.text("bug-form-error"), page.text("bug-form-error")
    assert server.request("GET", "/api/v1/bugs", alice)["bugs"] == []
    page.button("bug-evidence-input").clear()
    page.button("bug-evidence-input").send_keys("Traceback (most recent call last):\n---\nlog")
    page.button("bug-submit").click()
    wait(page.d, lambda d: page.js("return window.medicPage.route()?.name") == "bug", 15, "did not land on the bug")
    bid = page.js("return window.medicPage.route().params.id")
    assert [m["evidence"] for m in sent(page, "report_bug")][-1] == ["Traceback (most recent call last):", "log"]
    detail = server.request("GET", f"/api/v1/bugs/{bid}", alice)
    assert detail["report"]["evidence"] == ["Traceback (most recent call last):", "log"] and detail["author"] == "alice"
    wait(page.d, lambda d: page.text("bug-title") == 'Sign-in <img src=x onerror="window.pwned=1"> fails', 15)
    assert page.js("return document.querySelectorAll('#bug img, #bugs img').length") == 0
    assert page.js("return window.pwned === undefined")
    assert severe_console_errors(page.d) == []
