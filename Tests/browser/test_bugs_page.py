"""The bug views against fake_server.py (fake_bugs.py scripts the runs; bug-spec is the contract): the list is live
and flags what was not reproduced; the report form sends `report_bug` and lands on the bug, or says the server's
error; the checklist walks through every step while approaches overlap; three cards with their figures; diff and
console on demand; `choose_approach` for admins only; `resume_bug`; hostile text stays text."""
import json
import os
import urllib.parse
import urllib.request

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from conftest import SCREENSHOTS, emulate, screenshot, severe_console_errors, wait
from page import ReviewPage, tid

SHOTS = os.path.join(SCREENSHOTS, "fake")
HOSTILE = '<img src=x onerror="window.pwned=1">'

# Records every command the page sends (WebSocket.prototype.send is looked up at each call, so this also
# catches the socket that is already open).
SPY = """
if (!window.sentCommands) {
  window.sentCommands = [];
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) {
    try { window.sentCommands.push(JSON.parse(data)); } catch (e) {}
    return send.call(this, data);
  };
}
"""

# Records every state of the checklist (and any streamed fix text) as the page renders it.
OBSERVE = """
window.checkStates = [];
window.streamTexts = [];
const list = document.querySelector('[data-testid=bug-checklist]');
const snap = () => {
  const items = [...list.querySelectorAll('[data-testid=bug-check]')].map(li => [li.dataset.state, li.querySelector('.check-text').textContent]);
  const last = window.checkStates.at(-1);
  if (JSON.stringify(last) !== JSON.stringify(items)) window.checkStates.push(items);
};
new MutationObserver(snap).observe(list, {childList: true, subtree: true, characterData: true});
window.liveTexts = [];
const live = document.getElementById('bug-live-text');
new MutationObserver(() => { if (live.textContent) window.liveTexts.push(live.textContent); })
  .observe(live, {childList: true, subtree: true, characterData: true});
new MutationObserver(() => {
  for (const pre of document.querySelectorAll('[data-testid=approach-stream]')) {
    if (pre.textContent && window.streamTexts.at(-1) !== pre.textContent) window.streamTexts.push(pre.textContent);
  }
}).observe(document.getElementById('bug-approaches'), {childList: true, subtree: true, characterData: true});
"""

CARDS = """
return [...document.querySelectorAll('[data-testid=approach-card]')].map(c => {
  const t = (id) => c.querySelector(`[data-testid=${id}]`)?.textContent ?? null;
  const choose = c.querySelector('[data-testid=approach-choose]');
  return {n: Number(c.dataset.approach), status: c.dataset.status, strategy: t('approach-strategy'), attempt: t('approach-attempt'),
          tests: t('approach-tests'), reproducer: t('approach-reproducer'), size: t('approach-size'),
          duration: t('approach-duration'), winner: !!c.querySelector('[data-testid=approach-winner]'),
          chosen: !!c.querySelector('[data-testid=approach-chosen]'),
          breaking: [...c.querySelectorAll('[data-testid=approach-breaking] li')].map(li => li.textContent),
          canChoose: !!choose && !choose.hidden};
});
"""


def fake_bug(fake, **query):
    return fake.control("bug?" + urllib.parse.urlencode(query))["bug"]


def bug_state(fake, bid):
    return fake.control("bugs")[bid]


def rest(fake, path, token="tok-alice"):
    req = urllib.request.Request(fake.url + path, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def signed_in(browsers, fake, token, route=""):
    page = ReviewPage(browsers(), fake.url)
    page.open_with_token(token)
    page.js(SPY)
    if route:
        go(page, route)
    return page


def go(page, route):
    page.js("location.hash = arguments[0]", route)
    wait(page.d, lambda d: page.js("return window.medicPage.route()?.name") in ("bugs", "bug", "not-found"), 10)


def checklist(page):
    return page.js("return [...document.querySelectorAll('[data-testid=bug-check]')].map(li => [li.dataset.state, li.querySelector('.check-text').textContent])")


def wait_check(page, text, timeout=60):
    return wait(page.d, lambda d: any(t == text for (_, t) in checklist(page)), timeout,
                f"checklist never showed {text!r}: {checklist(page)}")


def rows(page):
    return page.js("""return [...document.querySelectorAll('[data-testid=bug-row]')].map(tr => ({
        id: tr.dataset.id, status: tr.dataset.status, title: tr.querySelector('td').textContent,
        flagged: !!tr.querySelector('[data-testid=bug-row-not-reproduced]'),
        proposal: tr.querySelector('[data-testid=bug-row-proposal]')?.textContent ?? null}))""")


def sent(page, kind):
    return [m for m in page.js("return window.sentCommands") if m.get("type") == kind]


def test_the_list_is_live_and_flags_a_bug_that_was_not_reproduced(fake_factory, browsers):
    fake = fake_factory("--speed", "0.4")
    page = signed_in(browsers, fake, "tok-alice")
    page.d.find_element(By.CSS_SELECTOR, tid("nav-bugs")).click()
    wait(page.d, lambda d: d.find_element(By.CSS_SELECTOR, tid("bugs")).is_displayed(), 10)
    assert page.text("bugs-empty") == "No bugs reported yet."
    full = fake_bug(fake, title="Any password signs in an active user")
    unrep = fake_bug(fake, script="unreproduced", title="Export drops the last row")
    # Rows arrive over the `bugs` topic while the page watches, and follow each status change.
    wait(page.d, lambda d: {r["id"] for r in rows(page)} == {full, unrep}, 15, "rows did not appear live")
    seen_statuses = set()
    def settled(d):
        by_id = {r["id"]: r for r in rows(page)}
        seen_statuses.update(r["status"] for r in by_id.values())
        return by_id[full]["status"] == "proposed" and by_id[unrep]["status"] == "unfixed"
    wait(page.d, settled, 60, "statuses never settled")
    assert {"analyzing", "fixing"} & seen_statuses, seen_statuses
    by_id = {r["id"]: r for r in rows(page)}
    assert by_id[unrep]["flagged"] and not by_id[full]["flagged"]
    assert by_id[full]["proposal"] == bug_state(fake, full)["proposal"]
    assert [r["id"] for r in rows(page)] == [unrep, full], "newest report first"
    seqs = page.seen_seqs("bugs")
    assert seqs == list(range(1, len(seqs) + 1))
    screenshot(page.d, "fake/bugs-list.png")

    # The view flags it too: header, checklist and reproducer.
    page.d.find_element(By.CSS_SELECTOR, f'[data-testid=bug-row][data-id="{unrep}"] [data-testid=bug-row-title]').click()
    wait(page.d, lambda d: d.find_element(By.CSS_SELECTOR, tid("bug-view")).is_displayed(), 10)
    wait_check(page, "No approach qualified")
    assert page.d.find_element(By.CSS_SELECTOR, tid("bug-not-reproduced")).is_displayed()
    assert ["warn", "Not reproduced: the test passed on the unchanged repository"] in checklist(page)
    assert "passed on the unchanged repository" in page.text("bug-reproducer-reason")
    assert page.js("return location.hash") == f"#/bugs/{unrep}"
    assert severe_console_errors(page.d) == []


def test_report_form_sends_report_bug_and_opens_the_new_bug(fake_factory, browsers):
    fake = fake_factory("--speed", "0.4")
    page = signed_in(browsers, fake, "tok-alice", "#/bugs")
    page.button("bug-report-open").click()
    wait(page.d, lambda d: len(Select(d.find_element(By.CSS_SELECTOR, tid("bug-form-repo"))).options) == 2, 10, "repos not loaded")
    Select(page.button("bug-form-repo")).select_by_visible_text("billing")
    assert Select(page.button("bug-form-severity")).first_selected_option.text == "medium"
    Select(page.button("bug-form-severity")).select_by_visible_text("critical")
    page.button("bug-title-input").send_keys("  Invoices are rounded twice  ")
    page.button("bug-description-input").send_keys("Totals are off by a cent.")
    page.button("bug-evidence-input").send_keys("Traceback (most recent call last):\n  File \"billing/total.py\", line 9\n---\n\nsecond log\n---\n")
    approaches = page.button("bug-form-approaches")
    approaches.clear()
    approaches.send_keys("2")
    page.button("bug-submit").click()
    wait(page.d, lambda d: page.js("return window.medicPage.route()?.name") == "bug", 10, "did not land on the bug")
    [cmd] = sent(page, "report_bug")
    bid = page.js("return window.medicPage.route().params.id")
    assert {k: v for k, v in cmd.items() if k != "id"} == {
        "type": "report_bug", "repo": "billing", "title": "Invoices are rounded twice",
        "description": "Totals are off by a cent.", "severity": "critical",
        "evidence": ['Traceback (most recent call last):\n  File "billing/total.py", line 9', "second log"], "approaches": 2}
    assert page.js("return location.hash") == f"#/bugs/{bid}"
    detail = rest(fake, f"/api/v1/bugs/{bid}")
    assert detail["author"] == "alice" and detail["repo"] == "billing"
    wait(page.d, lambda d: page.text("bug-title") == "Invoices are rounded twice", 10)
    evidence = page.js("return [...document.querySelectorAll('[data-testid=bug-evidence-item]')].map(p => p.textContent)")
    assert evidence == cmd["evidence"]
    assert "severity: critical" in page.text("bug-severity-label")
    # Two approaches were asked for: two cards, and the checklist says so.
    wait_check(page, "Generated 2 potential fixes")
    wait(page.d, lambda d: len(page.js(CARDS)) == 2, 30)
    assert severe_console_errors(page.d) == []


def test_the_servers_refusal_is_shown_in_the_form(fake_factory, browsers):
    fake = fake_factory("--speed", "0.4")
    page = signed_in(browsers, fake, "tok-fixbot", "#/bugs")   # bots report bugs too
    page.button("bug-report-open").click()
    wait(page.d, lambda d: Select(d.find_element(By.CSS_SELECTOR, tid("bug-form-repo"))).options, 10)
    page.button("bug-title-input").send_keys("Too much evidence")
    page.button("bug-evidence-input").send_keys("\n---\n".join(f"log {i}" for i in range(21)))
    page.button("bug-submit").click()
    wait(page.d, lambda d: page.text("bug-form-error"), 10, "no error shown")
    assert "evidence has 21 items; at most 20" in page.text("bug-form-error")
    assert len(sent(page, "report_bug")[0]["evidence"]) == 21
    assert page.js("return window.medicPage.route().name") == "bugs"
    assert page.button("bug-form").is_displayed(), "the form stays open with what was typed"
    assert page.button("bug-title-input").get_attribute("value") == "Too much evidence"
    assert fake.control("bugs") == {}
    # An empty title is caught before sending.
    page.button("bug-title-input").clear()
    page.button("bug-submit").click()
    wait(page.d, lambda d: page.text("bug-form-error") == "Give the bug a title.", 5)
    assert len(sent(page, "report_bug")) == 1

    viewer = signed_in(browsers, fake, "tok-victor", "#/bugs")
    wait(viewer.d, lambda d: d.find_element(By.CSS_SELECTOR, tid("bugs")).is_displayed(), 10)
    assert not viewer.button("bug-report-open").is_displayed(), "viewers cannot report bugs"


def test_the_checklist_walks_every_step_while_approaches_overlap(fake_factory, browsers):
    fake = fake_factory("--speed", "1.0")
    page = signed_in(browsers, fake, "tok-alice", "#/bugs")
    page.js(OBSERVE)
    fake.control("pause")   # held at its first step until the page shows it
    bid = fake_bug(fake)
    go(page, f"#/bugs/{bid}")
    wait_check(page, "Analyzing the bug…", 10)
    fake.control("resume")
    wait_check(page, "Fix #2 passes all tests, ready to review", 90)
    states = page.js("return window.checkStates")
    seen = {text for snap in states for (_, text) in snap}
    for text in ("Analyzing the bug…", "Analyzed bug", "Found location: app/auth.py:45", "Reproducing the bug…",
                 "Reproduced the bug", "Generated 3 potential fixes", "Testing fix #1 in sandbox…",
                 "Testing fix #2 in sandbox…", "Testing fix #3 in sandbox…", "Fix #1: writing attempt 2/2…",
                 "Fix #1 failed: breaks tests/test_session.py::test_logout_clears_token", "Fix #2 passes all tests",
                 "Fix #3 passes all tests", "Fix #2 passes all tests; its proposal is being checked (testing)…",
                 "Fix #2 passes all tests, ready to review"):
        assert text in seen, f"{text!r} never shown; saw {sorted(seen)}"
    # The approaches ran side by side: at some moment two or more were running at once.
    running = [sum(1 for (state, text) in snap if state == "running" and text.startswith(("Testing fix", "Fix #")))
               for snap in states]
    assert max(running) >= 2, running
    # The steps came in order: analysed before reproduced before the approaches.
    first = {}
    for i, snap in enumerate(states):
        for (state, text) in snap:
            if state == "done":
                first.setdefault(text, i)
    assert first["Analyzed bug"] <= first["Reproduced the bug"] <= first["Generated 3 potential fixes"] \
        <= first["Fix #2 passes all tests, ready to review"]
    assert [s for (s, _) in checklist(page)] == ["done", "done", "done", "done", "fail", "done", "done", "done"]
    assert page.js("return window.medicPage.fixDeltas()") > 0
    assert any("Keep the token reset" in t for t in page.js("return window.streamTexts")), "fix #1's reply did not stream"
    assert any('"summary": "check() returns' in t for t in page.js("return window.liveTexts")), "the analysis did not stream"
    assert not page.d.find_element(By.CSS_SELECTOR, tid("bug-live")).is_displayed()
    assert "Writing fix #1…" in seen

    # Three cards with their figures.
    cards = {c["n"]: c for c in page.js(CARDS)}
    assert sorted(cards) == [1, 2, 3]
    one, two, three = cards[1], cards[2], cards[3]
    assert (one["status"], one["attempt"], one["tests"]) == ("failed", "2/2", "11/12 passed")
    assert one["breaking"] == ["tests/test_session.py::test_logout_clears_token"]
    assert (one["size"], one["duration"]) == ("2 files, 9 lines", "+110 ms vs base (+14%)")
    assert (two["status"], two["attempt"], two["tests"], two["reproducer"]) == ("qualified", "1/2", "12/12 passed", "passes")
    assert (two["size"], two["duration"], two["winner"], two["breaking"]) == ("1 file, 2 lines", "+40 ms vs base (+5%)", True, [])
    assert (three["status"], three["tests"], three["size"], three["duration"]) == ("qualified", "12/12 passed", "3 files, 14 lines", "+210 ms vs base (+26%)")
    assert not one["winner"] and not three["winner"]
    assert two["strategy"] == "Return the active flag only after the password matched"
    assert "smallest change" in page.text("bug-ranking-why")
    assert "app/auth.py:45" in page.text("bug-analysis") and "the fall-through returns user.active" in page.text("bug-analysis")
    screenshot(page.d, "fake/bug-proposed.png")

    # The winner's proposal opens in the proposal view (where it is reviewed).
    pid = bug_state(fake, bid)["proposal"]
    wait(page.d, lambda d: "awaiting review" in page.text("bug-proposal"), 10)
    assert two["strategy"] and "Move the active check under the password check" in page.js(
        "return document.querySelector('[data-approach=\"2\"] [data-testid=approach-summary]').textContent")
    link = page.d.find_element(By.CSS_SELECTOR, tid("bug-proposal-link"))
    assert link.get_attribute("href").endswith(f"#p={pid}")
    link.click()
    wait(page.d, lambda d: pid in page.text("proposal-meta"), 10)
    page.wait_status("awaiting_review", 10)
    page.d.back()
    wait(page.d, lambda d: page.js("return window.medicPage.route()?.name") == "bug", 10)
    wait_check(page, "Fix #2 passes all tests, ready to review", 10)
    seqs = page.seen_seqs(f"bug:{bid}")
    assert seqs == list(range(1, len(seqs) + 1))
    assert severe_console_errors(page.d) == []


def test_diff_and_console_open_on_demand(fake_factory, browsers):
    fake = fake_factory("--speed", "0.3")
    bid = fake_bug(fake)
    wait(None, lambda _: bug_state(fake, bid)["status"] == "proposed", 60)
    page = signed_in(browsers, fake, "tok-victor", f"#/bugs/{bid}")   # a viewer reads everything
    wait(page.d, lambda d: len(page.js(CARDS)) == 3, 15)
    card = lambda n: f'[data-testid=approach-card][data-approach="{n}"]'
    shown = lambda sel: page.js("const e = document.querySelector(arguments[0]); return !!e && !e.closest('[hidden]')", sel)
    assert not shown(f"{card(2)} [data-testid=approach-diff]")
    assert not shown(f"{card(1)} [data-testid=approach-console-box]")
    # The diff: approach_started names the files; their content comes with the REST detail.
    page.d.find_element(By.CSS_SELECTOR, f"{card(3)} [data-testid=approach-diff-toggle]").click()
    wait(page.d, lambda d: len(d.find_elements(By.CSS_SELECTOR, f"{card(3)} [data-testid=diff]")) == 3, 10)
    diffs = page.js("""return [...document.querySelectorAll(arguments[0])].map(d => [d.dataset.path, d.dataset.action,
        d.querySelectorAll('tr').length])""", f"{card(3)} [data-testid=diff]")
    assert [d[:2] for d in diffs] == [["app/auth.py", "modify"], ["app/session.py", "modify"], ["tests/test_auth_inactive.py", "create"]]
    assert all(n > 0 for (_, _, n) in diffs)
    assert "return user.password_hash == hash(password)" in page.js("return document.querySelector(arguments[0]).textContent", f"{card(3)} [data-testid=diff]")
    assert page.button("approach-diff-toggle").get_attribute("aria-expanded") == "false"   # card 1's stays closed
    # Approach 1's patch includes its second attempt (fix_generated).
    page.d.find_element(By.CSS_SELECTOR, f"{card(1)} [data-testid=approach-diff-toggle]").click()
    wait(page.d, lambda d: "session.token = ''" in page.js("return document.querySelector(arguments[0]).textContent", f"{card(1)} [data-testid=approach-diff]"), 10)
    # The console: that approach's test output only.
    page.d.find_element(By.CSS_SELECTOR, f"{card(1)} [data-testid=approach-console-toggle]").click()
    assert shown(f"{card(1)} [data-testid=approach-console-box]")
    lines = page.js("return [...document.querySelectorAll(arguments[0])].map(l => l.textContent)", f"{card(1)} [data-testid=approach-console-line]")
    assert "$ python -m pytest -q   (revision 1)" in lines and "$ python -m pytest -q   (revision 2)" in lines
    assert "FAILED tests/test_session.py::test_logout_clears_token - AssertionError" in lines
    assert all("fix #2" not in line for line in lines)
    assert lines[-1] == "failed: 11 passed, 1 failed"
    # The viewer reads it all but can choose nothing.
    assert not any(c["canChoose"] for c in page.js(CARDS))
    screenshot(page.d, "fake/bug-diff-console.png")
    assert severe_console_errors(page.d) == []


def test_choose_approach_is_for_admins_and_sends_the_command(fake_factory, browsers):
    fake = fake_factory("--speed", "0.3")
    bid = fake_bug(fake)
    wait(None, lambda _: bug_state(fake, bid)["status"] == "proposed", 60)
    first = bug_state(fake, bid)["proposal"]
    bot = signed_in(browsers, fake, "tok-fixbot", f"#/bugs/{bid}")
    wait(bot.d, lambda d: len(bot.js(CARDS)) == 3, 15)
    assert not any(c["canChoose"] for c in bot.js(CARDS)), "bots cannot choose"
    bob = signed_in(browsers, fake, "tok-bob", f"#/bugs/{bid}")
    wait(bob.d, lambda d: len(bob.js(CARDS)) == 3 and any(c["canChoose"] for c in bob.js(CARDS)), 15)
    # Only the other qualified approach: not the winner (already proposed), not the failed one.
    assert {c["n"]: c["canChoose"] for c in bob.js(CARDS)} == {1: False, 2: False, 3: True}
    bob.d.find_element(By.CSS_SELECTOR, '[data-testid=approach-card][data-approach="3"] [data-testid=approach-choose]').click()
    wait(bob.d, lambda d: "chosen" in (bob.text("bug-message") or ""), 10, "no outcome shown")
    [cmd] = sent(bob, "choose_approach")
    assert (cmd["bug"], cmd["approach"]) == (bid, 3)
    state = bug_state(fake, bid)
    assert state["chosen"] == 3 and state["proposal"] != first
    assert state["proposal"] in bob.text("bug-message")
    # The page follows: the new proposal is linked, approach 3 is the chosen one, and nothing is offered any more but #2.
    wait(bob.d, lambda d: state["proposal"] in bob.text("bug-proposal"), 10)
    wait(bob.d, lambda d: f"chosen by bob instead of {first}" in bob.text("bug-proposal"), 10)
    cards = {c["n"]: c for c in bob.js(CARDS)}
    assert cards[3]["chosen"] and cards[2]["winner"]
    assert {n: c["canChoose"] for n, c in cards.items()} == {1: False, 2: True, 3: False}
    assert bob.js("return document.querySelector('[data-testid=bug-resume]').hidden") is True
    assert severe_console_errors(bob.d) == []


def test_an_interrupted_bug_can_be_resumed_by_an_admin(fake_factory, browsers):
    fake = fake_factory("--speed", "0.3")
    bid = fake_bug(fake, script="interrupt")
    wait(None, lambda _: bug_state(fake, bid)["status"] == "interrupted", 30)
    viewer = signed_in(browsers, fake, "tok-victor", f"#/bugs/{bid}")
    wait_check(viewer, "Interrupted (the server restarted): an admin can resume it", 15)
    assert not viewer.button("bug-resume").is_displayed()
    alice = signed_in(browsers, fake, "tok-alice", f"#/bugs/{bid}")
    wait(alice.d, lambda d: alice.button("bug-resume").is_displayed(), 15)
    alice.button("bug-resume").click()
    wait_check(alice, "Fix #2 passes all tests, ready to review", 60)
    assert [{k: v for k, v in m.items() if k != "id"} for m in sent(alice, "resume_bug")] == [{"type": "resume_bug", "bug": bid}]
    assert not alice.button("bug-resume").is_displayed()
    wait_check(viewer, "Fix #2 passes all tests, ready to review", 10)


def test_a_dropped_connection_resumes_the_bug_without_holes(fake_factory, browsers):
    fake = fake_factory("--speed", "0.6")
    page = signed_in(browsers, fake, "tok-alice", "#/bugs")
    bid = fake_bug(fake)
    go(page, f"#/bugs/{bid}")
    wait_check(page, "Testing fix #1 in sandbox…", 30)
    page.d.find_element(By.CSS_SELECTOR, '[data-testid=approach-card][data-approach="1"] [data-testid=approach-console-toggle]').click()
    fake.control("drop")
    wait(page.d, lambda d: page.conn_state() != "live", 10, "the drop was not noticed")
    page.wait_live()
    wait_check(page, "Fix #2 passes all tests, ready to review", 60)
    seqs = page.seen_seqs(f"bug:{bid}")
    assert seqs == list(range(1, len(seqs) + 1)) and seqs[-1] == bug_state(fake, bid)["head"]
    lines = page.js("return [...document.querySelectorAll(arguments[0])].map(l => l.textContent)",
                    '[data-testid=approach-card][data-approach="1"] [data-testid=approach-console-line]')
    passed = [line for line in lines if "PASSED" in line]
    assert len(passed) == len(set(passed)) == 8, lines   # 4 per test run, 2 runs, none twice


def test_an_unknown_bug_is_explained(fake_factory, browsers):
    fake = fake_factory()
    page = signed_in(browsers, fake, "tok-alice", "#/bugs/b-missing")
    wait(page.d, lambda d: "does not exist" in (page.text("bug-error") or ""), 10)


def test_hostile_strings_render_as_text(fake_factory, browsers):
    fake = fake_factory("--speed", "0.3")
    bid = fake_bug(fake, hostile="1", title=f"Title {HOSTILE}", evidence=f"trace {HOSTILE}", description=f"desc {HOSTILE}")
    wait(None, lambda _: bug_state(fake, bid)["status"] == "proposed", 60)
    page = signed_in(browsers, fake, "tok-alice", "#/bugs")
    wait(page.d, lambda d: rows(page), 10)
    assert rows(page)[0]["title"] == f"Title {HOSTILE}"
    go(page, f"#/bugs/{bid}")
    wait(page.d, lambda d: len(page.js(CARDS)) == 3, 15)
    for n in (1, 2, 3):
        for what in ("approach-diff-toggle", "approach-console-toggle"):
            page.d.find_element(By.CSS_SELECTOR, f'[data-testid=approach-card][data-approach="{n}"] [data-testid={what}]').click()
    wait(page.d, lambda d: HOSTILE in page.js("return document.getElementById('bug').textContent"), 10)
    text = page.js("return document.getElementById('bug').textContent")
    for where in (f"Title {HOSTILE}", f"trace {HOSTILE}", f"desc {HOSTILE}", f"captured: {HOSTILE}"):
        assert where in text, where
    assert page.js(CARDS)[0]["strategy"].endswith(HOSTILE)
    assert page.js("return document.querySelectorAll('#bug img, #bugs img, #bug svg, #bugs svg').length") == 0
    assert page.js("return window.pwned === undefined")
    assert HOSTILE in page.js("return document.title")
    assert severe_console_errors(page.d) == []


def test_the_bug_views_fit_a_phone_in_dark_mode(fake_factory, browsers):
    fake = fake_factory("--speed", "0.3")
    bid = fake_bug(fake, script="unreproduced")
    wait(None, lambda _: bug_state(fake, bid)["status"] == "unfixed", 60)
    driver = browsers()
    emulate(driver, 390, 844, dark=True)
    page = ReviewPage(driver, fake.url)
    page.open_with_token("tok-alice")
    sideways = "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
    go(page, "#/bugs")
    wait(page.d, lambda d: rows(page), 10)
    assert page.js(sideways) <= 0
    go(page, f"#/bugs/{bid}")
    wait_check(page, "No approach qualified", 10)
    wait(page.d, lambda d: len(page.js(CARDS)) == 3, 10)
    assert page.js(sideways) <= 0, "the bug view scrolls sideways on a phone"
    page.scroll_to(tid("bug-checklist"))
    screenshot(page.d, "fake/bug-phone-dark.png")
