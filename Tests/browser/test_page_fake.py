"""The page's own checks against fake_server.py (no Medic needed): CSP, sign-in, console follow, fix_delta, resume, errors.

The fake speaks the medic.v1 subset the page uses (see fake_server.py); these checks pin down the
page's behaviour, while test_review_page.py proves it against the real server.
"""
import os
import shutil
import subprocess

import pytest
from selenium.webdriver.common.by import By

from conftest import HERE, SCREENSHOTS, screenshot, severe_console_errors, wait
from page import ReviewPage, tid

FAKE_SHOTS = os.path.join(SCREENSHOTS, "fake")


def first_proposal(fake):
    state = fake.control("state")
    return next(iter(state))


def test_token_from_fragment_is_removed_and_remembered_for_the_tab(fake_factory, browsers):
    fake = fake_factory("--demo", "--speed", "0.2")
    page = ReviewPage(browsers(), fake.url)
    page.open_with_token("tok-alice")
    assert "tok-alice" not in page.d.current_url
    assert page.d.execute_script("return sessionStorage.getItem('medic.token')") == "tok-alice"
    assert page.identity() == ("alice", "admin")
    page.d.refresh()
    page.wait_live()
    assert page.identity() == ("alice", "admin")
    page.button("sign-out").click()
    assert page.d.find_element(By.CSS_SELECTOR, tid("signin")).is_displayed()
    assert page.d.execute_script("return sessionStorage.getItem('medic.token')") is None
    # Signing in as someone else starts from a clean slate: same proposals, each listed once.
    page.d.find_element(By.CSS_SELECTOR, tid("token-input")).send_keys("tok-bob")
    page.button("signin-submit").click()
    page.wait_live()
    wait(page.d, lambda d: page.identity() == ("bob", "admin"), 10)
    wait(page.d, lambda d: len(page.list_items()) == 2, 10)
    seqs = page.seen_seqs("proposals")
    assert seqs == list(range(1, len(seqs) + 1))
    assert severe_console_errors(page.d) == [], "CSP violation or script error"


def test_an_unknown_proposal_in_the_url_is_explained(fake_factory, browsers):
    fake = fake_factory()
    page = ReviewPage(browsers(), fake.url)
    page.d.get(fake.url + "/#p=p_missing&token=tok-alice")
    page.wait_live()
    assert "tok-alice" not in page.d.current_url and "p=p_missing" in page.d.current_url
    wait(page.d, lambda d: "does not exist" in (page.text("proposal-error") or ""), 10)


def test_a_bad_token_returns_to_sign_in_with_a_message(fake_factory, browsers):
    fake = fake_factory()
    page = ReviewPage(browsers(), fake.url)
    page.d.get(fake.url + "/#token=nope")
    wait(page.d, lambda d: page.conn_state() == "unauthorized", 15)
    assert "did not accept" in page.text("signin-error")
    assert page.d.find_element(By.CSS_SELECTOR, tid("token-input")).is_displayed()


def test_full_run_renders_timeline_diffs_and_review_quorum(fake_factory, browsers):
    fake = fake_factory("--demo", "--speed", "0.2", "--quorum", "2")
    pid = first_proposal(fake)
    a = ReviewPage(browsers(), fake.url)
    b = ReviewPage(browsers(), fake.url)
    a.open_with_token("tok-alice", pid)
    b.open_with_token("tok-bob", pid)
    a.wait_status("awaiting_review", 60)
    kinds = [k for (k, _, _) in a.timeline_entries()]
    for kind in ("proposal_created", "sandbox_ready", "test_finished", "analysis", "fix_generated"):
        assert kind in kinds
    # Revision 2: modify shows one removed and one added line; the created test file is all
    # additions; the deleted file all removals.
    diffs = {d.get_attribute("data-path"): d for d in a.d.find_elements(By.CSS_SELECTOR, f'{tid("revision-diffs")}[data-revision="2"] {tid("diff")}')}
    pager = diffs["app/pager.py"]
    assert len(pager.find_elements(By.CSS_SELECTOR, 'tr[data-op="-"]')) == 1
    assert len(pager.find_elements(By.CSS_SELECTOR, 'tr[data-op="+"]')) == 1
    assert "(n + 1) * size + 1" in pager.find_element(By.CSS_SELECTOR, 'tr[data-op="-"]').text
    created = diffs["tests/test_pager.py"]
    assert created.find_elements(By.CSS_SELECTOR, 'tr[data-op="+"]') and not created.find_elements(By.CSS_SELECTOR, 'tr[data-op="-"]')
    deleted = diffs["app/old_pager.py"]
    assert deleted.find_elements(By.CSS_SELECTOR, 'tr[data-op="-"]') and not deleted.find_elements(By.CSS_SELECTOR, 'tr[data-op="+"]')

    wait(a.d, lambda d: a.presence() == ["bob"], 10)
    a.button("btn-approve").click()
    wait(b.d, lambda d: b.approvers() == ["alice"], 10)
    assert b.d.find_element(By.CSS_SELECTOR, tid("quorum-text")).text == "1 of 2 approvals"
    screenshot(b.d, "quorum-one-of-two.png", FAKE_SHOTS)
    b.button("btn-approve").click()
    a.wait_status("applied", 30)
    b.wait_status("applied", 30)
    screenshot(a.d, "applied.png", FAKE_SHOTS)
    assert severe_console_errors(a.d) == [] and severe_console_errors(b.d) == []


def test_console_follows_output_until_the_user_scrolls_up(fake_factory, browsers):
    fake = fake_factory("--speed", "1.5")
    page = ReviewPage(browsers(), fake.url)
    page.open_with_token("tok-alice")
    pid = fake.control("propose")["proposal"]
    page.open_proposal(pid)
    box = page.d.find_element(By.CSS_SELECTOR, tid("console"))
    overflowing = "return arguments[0].scrollHeight > arguments[0].clientHeight + 20"
    wait(page.d, lambda d: d.execute_script(overflowing, box), 30, "console never overflowed")
    at_bottom = "const b = arguments[0]; return b.scrollHeight - b.scrollTop - b.clientHeight < 8"
    assert page.d.execute_script(at_bottom, box), "console does not follow new output"

    page.d.execute_script("arguments[0].scrollTop = 0", box)
    wait(page.d, lambda d: box.get_attribute("data-follow") == "false", 5)
    assert page.button("console-jump").is_displayed()
    count = len(page.console_lines())
    wait(page.d, lambda d: len(page.console_lines()) > count + 2, 30)
    assert page.d.execute_script("return arguments[0].scrollTop", box) == 0, "scrolled away from where the user was reading"
    screenshot(page.d, "console-paused.png", FAKE_SHOTS)

    page.button("console-jump").click()
    wait(page.d, lambda d: box.get_attribute("data-follow") == "true", 5)
    assert page.d.execute_script(at_bottom, box)


def test_fix_text_streams_while_attempt_is_written(fake_factory, browsers):
    fake = fake_factory("--speed", "1.5")
    page = ReviewPage(browsers(), fake.url)
    page.open_with_token("tok-alice")
    pid = fake.control("propose")["proposal"]
    page.open_proposal(pid)
    streamed = lambda: len(page.text("fix-stream") or "")
    wait(page.d, lambda d: streamed() > 20, 60, "no fix text streamed")
    first = streamed()
    wait(page.d, lambda d: streamed() > first + 10, 20, "fix text did not grow")
    assert page.status() == "fixing"
    assert page.text("proposal-attempt") == "Attempt 1/3"
    screenshot(page.d, "fix-streaming.png", FAKE_SHOTS)
    page.wait_status("awaiting_review", 60)
    assert page.d.find_elements(By.CSS_SELECTOR, tid("fix-explanation"))


def test_reconnect_resumes_each_topic_without_gap_or_duplicate(fake_factory, browsers):
    fake = fake_factory("--speed", "0.6")
    page = ReviewPage(browsers(), fake.url)
    page.open_with_token("tok-alice")
    pid = fake.control("propose")["proposal"]
    page.open_proposal(pid)
    wait(page.d, lambda d: len(page.console_lines()) > 3, 30)
    for _ in range(2):
        fake.control("drop")
        wait(page.d, lambda d: page.conn_state() == "reconnecting", 10, "drop not noticed")
        page.wait_live(20)
    page.wait_status("awaiting_review", 60)
    head = fake.control("state")[pid]["head"]
    wait(page.d, lambda d: len(page.seen_seqs(f"proposal:{pid}")) >= head, 10)
    assert page.seen_seqs(f"proposal:{pid}") == list(range(1, head + 1))
    proposals_seen = page.seen_seqs("proposals")
    assert proposals_seen == list(range(1, len(proposals_seen) + 1))
    seqs = [s for (_, s, _) in page.timeline_entries() if s]
    assert len(seqs) == len(set(seqs))
    steps = [l for l in page.console_lines() if l.startswith("collecting")]
    assert len(steps) == 24 and len(set(steps)) == 12, "console lines lost or doubled"


def test_stale_revision_and_missing_comment_are_explained(fake_factory, browsers):
    fake = fake_factory("--demo", "--speed", "0.2")
    pid = first_proposal(fake)
    page = ReviewPage(browsers(), fake.url)
    page.open_with_token("tok-alice", pid)
    page.wait_status("awaiting_review", 60)
    page.button("btn-reject").click()
    assert "comment" in page.text("review-message").lower()
    # The page reviews the revision it displays: pretend the screen still shows revision 1.
    page.d.execute_script("document.getElementById('review-revision').dataset.revision = '1'")
    page.button("btn-approve").click()
    wait(page.d, lambda d: "newer revision" in page.text("review-message"), 10)
    assert page.d.find_element(By.CSS_SELECTOR, tid("review-message")).get_attribute("data-kind") == "error"
    screenshot(page.d, "stale-revision.png", FAKE_SHOTS)


@pytest.mark.parametrize("token,word", [("tok-victor", "viewer"), ("tok-fixbot", "bots")])
def test_viewers_and_bots_see_disabled_review_buttons_with_a_reason(fake_factory, browsers, token, word):
    fake = fake_factory("--demo", "--speed", "0.2")
    pid = first_proposal(fake)
    page = ReviewPage(browsers(), fake.url)
    page.open_with_token(token, pid)
    page.wait_status("awaiting_review", 60)
    for b in ("btn-approve", "btn-reject", "btn-request-changes"):
        assert not page.button(b).is_enabled()
    assert word in page.text("review-why").lower()


def test_manual_mode_offers_auto_fix(fake_factory, browsers):
    fake = fake_factory("--speed", "0.2")
    page = ReviewPage(browsers(), fake.url)
    page.open_with_token("tok-alice")
    pid = fake.control("propose?manual=1")["proposal"]
    page.open_proposal(pid)
    page.wait_status("tests_failed", 30)
    wait(page.d, lambda d: page.button("btn-autofix").is_displayed(), 5)
    page.button("btn-autofix").click()
    page.wait_status("awaiting_review", 60)
    page.button("btn-approve").click()
    page.wait_status("applied", 30)
    wait(page.d, lambda d: page.button("btn-rollback").is_displayed(), 5)
    page.confirm_rollback()
    page.wait_status("rolled_back", 30)


def test_keyboard_only_review_with_visible_focus(fake_factory, browsers):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    fake = fake_factory("--demo", "--speed", "0.2")
    pid = first_proposal(fake)
    page = ReviewPage(browsers(), fake.url)
    page.open_with_token("tok-alice")
    wait(page.d, lambda d: len(page.list_items()) == 2, 10)
    focused = lambda: page.js("const e = document.activeElement; return e ? (e.dataset.testid || e.id) : null")

    # Tab from the top of the page reaches the proposal list; Enter opens the focused proposal.
    page.d.find_element(By.TAG_NAME, "body").click()
    for _ in range(12):
        ActionChains(page.d).send_keys(Keys.TAB).perform()
        if focused() == "proposal-item" and page.js("return document.activeElement.dataset.proposalId") == pid:
            break
    assert page.js("return document.activeElement.dataset.proposalId") == pid
    outline = page.js("return getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("none", ""), "no visible focus indicator"
    ActionChains(page.d).send_keys(Keys.ENTER).perform()
    page.wait_status("awaiting_review", 60)

    page.d.find_element(By.CSS_SELECTOR, tid("review-comment")).click()
    ActionChains(page.d).send_keys("ok").send_keys(Keys.TAB).perform()
    assert focused() == "btn-approve"
    ActionChains(page.d).send_keys(Keys.ENTER).perform()
    page.wait_status("applied", 30)


def test_javascript_units_under_node():
    node = shutil.which("node")
    if not node:
        pytest.skip("node not installed")
    out = subprocess.run([node, os.path.join(HERE, "js_units.mjs")], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
