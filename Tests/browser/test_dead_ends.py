"""No dead ends: a proposal that will not reach review by itself (here: manual mode, waiting for auto_fix after
failing tests) can be rejected with a comment or withdrawn from the page; withdrawing asks first, like rolling back."""
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from conftest import wait
from page import ReviewPage, tid

BROKEN = {"title": "Broken", "description": "does not even parse",
          "changes": [{"path": "app/users.py", "action": "modify", "content": "def broken(:\n"}]}


def wait_waiting_for_a_fix(page):
    page.wait_status(["tests_failed"], 120)
    wait(page.d, lambda d: page.button("btn-autofix").is_displayed(), 60, "the failure was never analysed")


def test_a_failed_proposal_can_be_rejected_or_withdrawn_from_the_page(medic_factory, browsers):
    server = medic_factory(extra=["--auto-fix", "manual"])
    alice = server.token("alice", "admin")
    bot = server.token("fixbot", "bot")
    server.start()
    page = ReviewPage(browsers(), server.url)
    page.open_with_token(alice)

    first = server.request("POST", "/api/v1/proposals", bot, BROKEN)["proposal"]
    page.open_proposal(first)
    wait_waiting_for_a_fix(page)
    wait(page.d, lambda d: not page.button("btn-reject").get_attribute("disabled"), 20, "Reject stays off for a failed proposal")
    assert page.button("btn-approve").get_attribute("disabled"), "a failed proposal cannot be approved"
    assert page.button("btn-withdraw").is_displayed()
    page.d.find_element(By.CSS_SELECTOR, tid("review-comment")).send_keys("not worth fixing")
    page.button("btn-reject").click()
    page.wait_status(["rejected"], 30)
    assert not page.button("btn-withdraw").is_displayed()

    second = server.request("POST", "/api/v1/proposals", bot, BROKEN)["proposal"]
    page.open_proposal(second)
    wait_waiting_for_a_fix(page)
    wait(page.d, lambda d: page.button("btn-withdraw").is_displayed(), 20)
    page.button("btn-withdraw").click()
    dialog = page.d.find_element(By.CSS_SELECTOR, tid("confirm-rollback"))
    wait(page.d, lambda d: dialog.is_displayed(), 10)
    assert "Withdraw this proposal?" in dialog.text
    page.d.switch_to.active_element.send_keys(Keys.ENTER)
    page.wait_status(["withdrawn"], 30)
