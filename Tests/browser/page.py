"""page.py: a page object for the review page — what the browser tests read and click, by data-testid."""
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By

from conftest import wait


def tid(testid):
    return f'[data-testid="{testid}"]'


class ReviewPage:
    def __init__(self, driver, base_url):
        self.d = driver
        self.base = base_url

    # ---- sign-in and connection ----

    def open_with_token(self, token, proposal=None):
        """Opens the link `medic serve` prints (`/#token=…`), optionally with a proposal open."""
        self.d.get(f"{self.base}/#token={token}")
        self.wait_live()
        if proposal:
            self.open_proposal(proposal)

    def sign_in_typed(self, token):
        self.d.get(self.base + "/")
        field = wait(self.d, lambda d: d.find_element(By.CSS_SELECTOR, tid("token-input")))
        field.send_keys(token)
        self.d.find_element(By.CSS_SELECTOR, tid("signin-submit")).click()
        self.wait_live()

    def conn_state(self):
        return self.d.find_element(By.CSS_SELECTOR, tid("conn-state")).get_attribute("data-state")

    def wait_live(self, timeout=30):
        wait(self.d, lambda d: self.conn_state() == "live", timeout, "page did not become live")

    def identity(self):
        return (self.d.find_element(By.CSS_SELECTOR, tid("identity-name")).text,
                self.d.find_element(By.CSS_SELECTOR, tid("identity-role")).text)

    # ---- list ----

    def list_items(self):
        return self.d.find_elements(By.CSS_SELECTOR, tid("proposal-item"))

    def list_status(self, proposal):
        return self.js("return document.querySelector(arguments[0])?.dataset.status ?? null",
                       f'[data-proposal-id="{proposal}"] {tid("proposal-item-status")}')

    def open_proposal(self, proposal, timeout=30):
        selector = f'[data-proposal-id="{proposal}"]'
        wait(self.d, lambda d: d.find_elements(By.CSS_SELECTOR, selector), timeout, f"{proposal} never appeared in the list")

        self.click_css(selector)
        wait(self.d, lambda d: proposal in d.find_element(By.CSS_SELECTOR, tid("proposal-meta")).text, timeout)

    def click_css(self, selector, timeout=10):
        """Clicks what `selector` finds; a dynamic element re-rendered between find and click is found again."""
        def click(d):
            try:
                d.find_element(By.CSS_SELECTOR, selector).click()
                return True
            except StaleElementReferenceException:
                return False

        wait(self.d, click, timeout, f"could not click {selector}")

    def click(self, testid, timeout=10):
        """`click_css` by data-testid (links and rows the page re-renders as events arrive)."""
        self.click_css(tid(testid), timeout)

    # ---- open proposal ----

    def js(self, script, *args):
        """Reads the DOM in one script call: elements are re-rendered live, so held references go stale."""
        return self.d.execute_script(script, *args)

    def status(self):
        return self.js("return document.getElementById('p-status')?.dataset.status ?? null")

    def wait_status(self, statuses, timeout=120):
        if isinstance(statuses, str):
            statuses = {statuses}
        return wait(self.d, lambda d: self.status() in statuses and self.status(), timeout,
                    f"status never became {statuses} (last: {self.status()})")

    def timeline_entries(self):
        """(kind, seq) of every timeline entry, in order."""
        return self.d.execute_script(
            "return [...document.querySelectorAll('[data-testid=timeline-entry]')]"
            ".map(e => [e.dataset.kind, e.dataset.seq, e.dataset.key])")

    def console_lines(self):
        return self.d.execute_script(
            "return [...document.querySelectorAll('[data-testid=console-line]')].map(e => e.textContent)")

    def seen_seqs(self, topic):
        return self.d.execute_script("return window.medicPage.seenSeqs(arguments[0])", topic)

    def scroll_to(self, selector):
        """Brings the last element matching `selector` into view (for screenshots of the part that matters)."""
        self.js("[...document.querySelectorAll(arguments[0])].at(-1)?.scrollIntoView({block: 'start'})", selector)

    def button(self, testid):
        return self.d.find_element(By.CSS_SELECTOR, tid(testid))

    def text(self, testid):
        return self.js("const e = document.querySelector(arguments[0]); return e ? e.innerText : null", tid(testid))

    def principals(self, testid):
        return self.js("return [...document.querySelectorAll(arguments[0])].map(e => e.dataset.principal)", tid(testid))

    def approvers(self):
        return self.principals("approver")

    def presence(self):
        return self.principals("presence-member")

    def notices(self):
        """Every command outcome the review panel has shown (window.medicPage.notices())."""
        return self.js("return window.medicPage.notices()")

    def confirm_rollback(self):
        """Roll back through the confirmation dialog (mouse)."""
        self.button("btn-rollback").click()
        wait(self.d, lambda d: self.js("return document.getElementById('confirm-rollback').open"), 5, "no confirmation dialog")
        self.button("confirm-rollback-ok").click()

    def review_revision(self):
        return int(self.d.find_element(By.CSS_SELECTOR, tid("review-revision")).get_attribute("data-revision") or 0)
