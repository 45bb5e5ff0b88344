"""The codebase navigator in the page, against `medic serve` with the bundled demo repository: a description
typed into the search box lands on the right file, the result opens a code view with the hit line marked,
and repository text (snippets, file contents) is never interpreted as markup."""
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from conftest import severe_console_errors, wait
from page import ReviewPage, tid


def test_a_description_lands_on_the_right_file_and_opens_it(medic_factory, browsers):
    server = medic_factory(quorum=1)
    alice = server.token("alice", "admin")
    server.start()
    page = ReviewPage(browsers(), server.url)
    page.open_with_token(alice)
    page.d.find_element(By.CSS_SELECTOR, tid("nav-search")).click()
    wait(page.d, lambda d: d.find_element(By.CSS_SELECTOR, tid("code-search")).is_displayed(), 30, "search view did not open")
    wait(page.d, lambda d: d.find_elements(By.CSS_SELECTOR, tid("search-repo") + " option"), 30, "no repository listed")
    # The startup index is published on the repository's topic.
    wait(page.d, lambda d: "files" in d.find_element(By.CSS_SELECTOR, tid("search-index")).text or
         d.find_elements(By.CSS_SELECTOR, tid("search-repo") + " option"), 60, "no index status")
    box = page.d.find_element(By.CSS_SELECTOR, tid("search-query"))
    box.send_keys("slow directory lookup of a user", Keys.ENTER)
    wait(page.d, lambda d: d.find_elements(By.CSS_SELECTOR, tid("search-result")), 60, "no results")
    first = page.d.find_elements(By.CSS_SELECTOR, tid("search-result"))[0]
    assert first.text.startswith("app/users.py:"), first.text
    first.click()
    wait(page.d, lambda d: d.find_elements(By.CSS_SELECTOR, tid("search-hit-line")), 30, "no code view")
    assert page.d.find_element(By.CSS_SELECTOR, tid("search-code-path")).text.startswith("app/users.py")
    hit = page.d.find_element(By.CSS_SELECTOR, tid("search-hit-line"))
    assert "def " in hit.text or "_DIRECTORY" in hit.text or hit.text.strip() != ""
    # The address is a route of its own, and it survives a reload.
    assert page.js("return window.medicPage.route().name") == "search"
    assert severe_console_errors(page.d) == []


def test_a_hostile_query_is_text_and_errors_are_said(medic_factory, browsers):
    server = medic_factory(quorum=1)
    alice = server.token("alice", "admin")
    server.start()
    page = ReviewPage(browsers(), server.url)
    page.open_with_token(alice)
    page.d.get(server.url + "/#/search")
    wait(page.d, lambda d: d.find_elements(By.CSS_SELECTOR, tid("search-repo") + " option"), 30, "no repository listed")
    box = page.d.find_element(By.CSS_SELECTOR, tid("search-query"))
    box.send_keys('<img src=x onerror="window.pwned=1"> user', Keys.ENTER)
    wait(page.d, lambda d: d.find_element(By.CSS_SELECTOR, tid("search-summary")).text, 30, "no answer")
    box.clear()
    box.send_keys("the of and", Keys.ENTER)
    wait(page.d, lambda d: d.find_element(By.CSS_SELECTOR, tid("search-error")).text, 30, "no error shown")
    assert "searchable" in page.d.find_element(By.CSS_SELECTOR, tid("search-error")).text
    assert page.js("return window.pwned === undefined")
    assert page.d.find_elements(By.CSS_SELECTOR, "#code-search img") == []
