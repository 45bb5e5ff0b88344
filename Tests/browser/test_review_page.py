"""Browser tests of the review page against the real `medic serve` (MEDIC_BIN): live streaming, quorum, roles, resume.

Each test starts its own server on a loopback port with a fresh data directory (demo repository,
scripted LLM, `--no-demo`), creates tokens with `medic token create`, proposes
examples/demo-proposal.json over REST as a bot, and drives headless Chromium. Key states are
saved to Tests/browser/screenshots/.
"""
import time

import pytest
from selenium.webdriver.common.by import By

from conftest import screenshot, severe_console_errors, wait
from page import ReviewPage, tid

# Statuses a demo proposal rests in (the pipeline stops there until someone acts).
RESTING = {"awaiting_review", "tests_failed", "unfixable", "interrupted", "rejected", "applied", "apply_failed"}


def expected_console_lines(events):
    """The page prints one header per test run, each output line, and one result line per run."""
    n = 0
    for e in events:
        if e["kind"] == "test_output":
            n += len(e["data"]["lines"])
        elif e["kind"] in ("test_started", "test_finished"):
            n += 1
    return n


def assert_no_gap_no_duplicate(page, server, token, proposal):
    """The page processed exactly seq 1…head of the proposal's topic, once each, and shows each once."""
    events = server.events(token, proposal)
    head = events[-1]["seq"]
    topic = f"proposal:{proposal}"
    wait(page.d, lambda d: (page.seen_seqs(topic) or [0])[-1] >= head, 30, "page never caught up with the head")
    events = server.events(token, proposal)  # the pipeline may have moved on meanwhile
    seen = page.seen_seqs(topic)
    assert seen == list(range(1, len(seen) + 1)), f"gap or duplicate in processed seqs: {seen}"
    assert [e["seq"] for e in events[:len(seen)]] == seen
    entry_seqs = [s for (_, s, _) in page.timeline_entries() if s]
    assert len(entry_seqs) == len(set(entry_seqs)), "a timeline entry is shown twice"
    shown = events[:len(seen)]
    assert len(page.console_lines()) == expected_console_lines(shown), "console lines lost or doubled"


def test_a_proposal_streams_into_the_page_live(medic_factory, browsers):
    server = medic_factory(quorum=1)
    alice = server.token("alice", "admin")
    bot = server.token("fixbot", "bot")
    server.start()

    page = ReviewPage(browsers(), server.url)
    page.open_with_token(alice)
    assert page.identity() == ("alice", "admin")
    assert "token" not in page.d.current_url, "the token must be removed from the visible URL"
    assert page.list_items() == []

    proposal = server.propose_demo(bot)
    page.open_proposal(proposal)  # appears in the list without a reload
    assert page.list_status(proposal) is not None

    # Test output streams into the console while the pipeline runs.
    wait(page.d, lambda d: len(page.console_lines()) > 1, 60, "no test output streamed")
    wait(page.d, lambda d: any(k == "fix_started" or k.startswith("fix_") for (k, _, _) in page.timeline_entries()), 120,
         "no fix attempt appeared")
    # For the picture: the explanation being written (or, if that moment passed, whatever came next).
    wait(page.d, lambda d: len(page.text("fix-stream") or "") > 120 or
         page.js("return !document.querySelector('[data-key=fix-1] [data-testid=fix-live]')"), 60)
    page.scroll_to('[data-testid="timeline-entry"][data-key^="fix-"]')
    screenshot(page.d, "01-streaming-fix-attempt.png")

    page.wait_status(RESTING, 180)
    kinds = [k for (k, _, _) in page.timeline_entries()]
    for kind in ("proposal_created", "sandbox_ready", "test_finished", "analysis"):
        assert kind in kinds, f"{kind} missing from the timeline: {kinds}"
    # The analysis shows its categories and root cause; a fix shows its explanation and a diff.
    assert page.d.find_elements(By.CSS_SELECTOR, tid("category"))
    assert page.d.find_elements(By.CSS_SELECTOR, tid("root-cause"))
    if page.status() == "awaiting_review":
        assert page.d.find_elements(By.CSS_SELECTOR, tid("fix-explanation"))
        diffs = page.d.find_elements(By.CSS_SELECTOR, f'{tid("revision-diffs")}[data-revision="2"] {tid("diff")}')
        assert diffs, "revision 2 has no rendered diff"
        assert diffs[0].find_elements(By.CSS_SELECTOR, 'tr[data-op="+"]') or diffs[0].find_elements(By.CSS_SELECTOR, 'tr[data-op="-"]')
    # A created file of revision 1 is all additions.
    created = page.d.find_elements(By.CSS_SELECTOR, f'{tid("revision-diffs")}[data-revision="1"] {tid("diff")}[data-action="create"]')
    assert created
    assert not created[0].find_elements(By.CSS_SELECTOR, 'tr[data-op="-"], tr[data-op=" "]')
    assert created[0].find_elements(By.CSS_SELECTOR, 'tr[data-op="+"]')
    page.scroll_to('[data-testid="timeline-entry"][data-key^="fix-"]')
    screenshot(page.d, "02-proposal-timeline.png")

    assert_no_gap_no_duplicate(page, server, alice, proposal)
    assert severe_console_errors(page.d) == []


def test_a_bad_token_is_refused_and_sign_in_explains(medic_factory, browsers):
    server = medic_factory()
    server.token("alice", "admin")
    server.start()
    page = ReviewPage(browsers(), server.url)
    page.d.get(server.url + "/#token=mdc_not_a_real_token")
    wait(page.d, lambda d: page.conn_state() == "unauthorized", 20, "a bad token was not refused")
    assert "did not accept" in page.text("signin-error")
    assert page.d.execute_script("return sessionStorage.getItem('medic.token')") is None


def test_two_admins_with_quorum_two_approve_and_it_applies(medic_factory, browsers):
    server = medic_factory(quorum=2)
    alice = server.token("alice", "admin")
    bob = server.token("bob", "admin")
    bot = server.token("fixbot", "bot")
    server.start()
    proposal = server.propose_demo(bot)

    a = ReviewPage(browsers(), server.url)
    b = ReviewPage(browsers(), server.url)
    a.open_with_token(alice, proposal)
    b.sign_in_typed(bob)
    b.open_proposal(proposal)
    a.wait_status("awaiting_review", 180)
    b.wait_status("awaiting_review", 30)

    # Presence: each sees the other watching.
    wait(a.d, lambda d: "bob" in a.presence(), 15, "alice does not see bob watching")
    wait(b.d, lambda d: "alice" in b.presence(), 15, "bob does not see alice watching")

    revision = a.review_revision()
    assert revision >= 1 and b.review_revision() == revision
    assert a.button("btn-approve").is_enabled()
    a.d.find_element(By.CSS_SELECTOR, tid("review-comment")).send_keys("Looks right to me.")
    a.button("btn-approve").click()
    wait(a.d, lambda d: "Approved revision" in a.text("review-message"), 15, a.text("review-message"))
    assert a.approvers() == ["alice"]
    assert "(1 of 2)" in a.text("review-message")
    assert not a.button("btn-approve").is_enabled(), "alice already approved this revision"

    # Bob's page shows alice's approval at once (no reload) and 1 of 2.
    wait(b.d, lambda d: b.approvers() == ["alice"], 15, "bob never saw alice's approval")
    quorum = b.d.find_element(By.CSS_SELECTOR, tid("quorum-text"))
    assert quorum.get_attribute("data-approvals") == "1" and quorum.get_attribute("data-quorum") == "2"
    assert b.status() == "awaiting_review"
    screenshot(b.d, "03-quorum-one-of-two.png")

    b.button("btn-approve").click()
    wait(b.d, lambda d: any("quorum reached (2 of 2)" in n for n in b.notices()), 15, str(b.notices()))
    for p in (a, b):
        p.wait_status("applied", 60)
        wait(p.d, lambda d, p=p: "applied" in [k for (k, _, _) in p.timeline_entries()], 15)
    # The ack's message belonged to approving: once applied, the panel says so instead.
    wait(b.d, lambda d: "quorum reached" not in (b.text("review-message") or ""), 10, b.text("review-message"))
    assert b.text("review-state").startswith("Applied as commit")
    # A 40-character commit id must not push the page sideways.
    assert b.js("return document.documentElement.scrollWidth - document.documentElement.clientWidth") <= 0
    assert sorted(b.approvers()) == ["alice", "bob"]
    assert b.button("btn-rollback").is_displayed()
    b.scroll_to('[data-testid="timeline-entry"][data-kind="applied"]')
    screenshot(b.d, "04-applied.png")
    assert severe_console_errors(a.d) == [] and severe_console_errors(b.d) == []


def test_a_viewer_cannot_review_but_can_comment(medic_factory, browsers):
    server = medic_factory(quorum=1)
    victor = server.token("victor", "viewer")
    bot = server.token("fixbot", "bot")
    server.start()
    proposal = server.propose_demo(bot)

    page = ReviewPage(browsers(), server.url)
    page.open_with_token(victor, proposal)
    assert page.identity() == ("victor", "viewer")
    page.wait_status(RESTING, 180)
    for button in ("btn-approve", "btn-reject", "btn-request-changes"):
        assert not page.button(button).is_enabled(), f"{button} is enabled for a viewer"
    assert "viewer" in page.text("review-why").lower()
    assert not page.button("btn-autofix").is_displayed()
    assert not page.button("btn-rollback").is_displayed()

    page.d.find_element(By.CSS_SELECTOR, tid("comment-text")).send_keys("Watching this one.")
    page.button("comment-send").click()
    wait(page.d, lambda d: "comment" in [k for (k, _, _) in page.timeline_entries()], 15, "comment not shown")
    assert "Watching this one." in page.d.find_element(By.CSS_SELECTOR, '[data-kind="comment"]').text
    screenshot(page.d, "05-viewer-read-only.png")


def test_the_page_resumes_after_a_server_restart_without_gap_or_duplicate(medic_factory, browsers):
    server = medic_factory(quorum=1)
    alice = server.token("alice", "admin")
    bot = server.token("fixbot", "bot")
    server.start()
    proposal = server.propose_demo(bot)

    page = ReviewPage(browsers(), server.url)
    page.open_with_token(alice, proposal)
    # Mid-stream: the first test run has started printing.
    wait(page.d, lambda d: len(page.console_lines()) >= 1, 60, "the run never started")
    server.stop()
    # One predicate: the state flips between reconnecting and connecting while the server is down.
    wait(page.d, lambda d: page.conn_state() == "reconnecting" and "Reconnecting in" in (page.text("conn-state") or ""),
         15, "the page did not show that it is reconnecting")
    screenshot(page.d, "06-reconnecting.png")

    server.start()  # same port, same data directory
    page.wait_live(60)
    page.wait_status(RESTING, 180)
    assert_no_gap_no_duplicate(page, server, alice, proposal)
    page.scroll_to('#timeline > li:last-child')
    screenshot(page.d, "07-resumed-after-restart.png")
    assert severe_console_errors(page.d) == []


def test_manual_mode_auto_fix_then_approve_then_roll_back(medic_factory, browsers):
    server = medic_factory(quorum=1, extra=("--auto-fix", "manual"))
    alice = server.token("alice", "admin")
    bot = server.token("fixbot", "bot")
    server.start()
    proposal = server.propose_demo(bot)

    page = ReviewPage(browsers(), server.url)
    page.open_with_token(alice, proposal)
    page.wait_status("tests_failed", 120)
    wait(page.d, lambda d: page.button("btn-autofix").is_displayed(), 10, "no Auto-Fix & Retry for tests_failed")
    screenshot(page.d, "08-manual-auto-fix.png")
    page.button("btn-autofix").click()
    wait(page.d, lambda d: page.status() != "tests_failed", 30)
    # The demo needs two attempts; each stop in tests_failed waits for the button again.
    for _ in range(3):
        status = page.wait_status({"tests_failed", "awaiting_review", "unfixable"}, 180)
        if status != "tests_failed":
            break
        wait(page.d, lambda d: page.button("btn-autofix").is_displayed() and page.button("btn-autofix").is_enabled(), 10)
        page.button("btn-autofix").click()
        wait(page.d, lambda d: page.status() != "tests_failed", 30)
    assert page.wait_status({"awaiting_review"}, 10) == "awaiting_review"
    assert "Attempt" in page.text("proposal-attempt")

    page.button("btn-approve").click()
    page.wait_status("applied", 60)
    wait(page.d, lambda d: page.button("btn-rollback").is_displayed() and page.button("btn-rollback").is_enabled(), 10)
    page.confirm_rollback()
    page.wait_status("rolled_back", 60)
    assert "rolled_back" in [k for (k, _, _) in page.timeline_entries()]


def test_the_demo_starts_when_the_first_admin_opens_the_page_and_streams_at_a_watchable_pace(medic_factory, browsers):
    """`medic serve` on an empty store (demo on): the demo is filed when an admin's page signs in, opens
    itself there, and the scripted model writes its reply over seconds, shown as prose."""
    server = medic_factory(quorum=1, demo=True)
    alice = server.token("alice", "admin")
    victor = server.token("victor", "viewer")
    server.start()
    # Nobody watching, or only a viewer: nothing is filed (it used to be filed 5 s after start).
    viewer = ReviewPage(browsers(), server.url)
    viewer.open_with_token(victor)
    time.sleep(6)
    assert server.request("GET", "/api/v1/proposals", alice)["proposals"] == []

    page = ReviewPage(browsers(), server.url)
    page.open_with_token(alice)
    # The demo opens by itself, from its first step, without a click.
    wait(page.d, lambda d: "demo-bot" in (page.text("proposal-meta") or ""), 30, "the demo did not open by itself")
    proposal = page.js("return new URLSearchParams(location.hash.slice(1)).get('p')")
    assert page.seen_seqs(f"proposal:{proposal}")[:1] == [1]
    prose = []

    def sample(d):
        text = page.text("fix-stream")
        if text and page.js("return [...document.querySelectorAll('[data-testid=fix-state]')].some(e => e.textContent === 'writing…')"):
            prose.append(text)
        return page.status() in RESTING and page.status()

    status = wait(page.d, sample, 180, "the demo never came to rest")
    assert status == "awaiting_review"
    # Two attempts written in many small pieces (a person can follow them), shown as text, never as JSON.
    deltas = page.js("return window.medicPage.fixDeltas()")
    print(f"\ndemo: {deltas} fix_delta events seen live")
    assert deltas >= 60, f"only {deltas} deltas: the reply arrived in a few lumps"
    written = [t for t in prose if t not in ("Waiting for the model…", "The model is writing its reply…")]
    assert len(set(written)) >= 10, f"the explanation was not seen growing: {len(set(written))} states"
    assert all('{"' not in t and '\\n' not in t for t in written)
    assert any(t.startswith("The tests fail with ModuleNotFoundError") for t in written)
    assert len(server.request("GET", "/api/v1/proposals", alice)["proposals"]) == 1, "the demo is filed once"
    events = server.events(alice, proposal)
    waiting = next(e for e in events if e["kind"] == "status_changed" and e["data"]["status"] == "awaiting_review")
    print(f"demo: proposed → awaiting_review in {(waiting['ts'] - events[0]['ts']) / 1000:.1f} s")
