"""Modified files show real diffs against the repository at the sandbox's base commit, and the review panel shows
what an approval will commit: the revision's whole patch against that commit."""
from selenium.webdriver.common.by import By

from conftest import wait
from page import ReviewPage, tid


def test_modified_files_diff_against_the_base_and_the_commit_view_shows_the_whole_patch(medic_factory, browsers):
    server = medic_factory(quorum=1)
    alice = server.token("alice", "admin")
    bot = server.token("fixbot", "bot")
    server.start()
    page = ReviewPage(browsers(), server.url)
    page.open_with_token(alice)
    proposal = server.propose_demo(bot)
    page.open_proposal(proposal)
    page.wait_status(["awaiting_review"], 240)

    # Revision 1 modifies app/users.py: a real diff with removed lines, not "original not in the proposal".
    selector = f'{tid("revision-diffs")}[data-revision="1"] {tid("diff")}[data-path="app/users.py"]'
    wait(page.d, lambda d: d.find_elements(By.CSS_SELECTOR, selector + ' tr[data-op="-"]'), 30,
         "app/users.py shows no removed line against its base")
    assert "original not in the proposal" not in page.d.find_element(By.CSS_SELECTOR, selector).text

    # The review panel: what will be committed, against the base commit of the revision under review.
    revision = page.review_revision()
    view = wait(page.d, lambda d: d.find_element(By.CSS_SELECTOR, tid("committed-view")).is_displayed() and
                d.find_element(By.CSS_SELECTOR, tid("committed-view")), 30, "no 'what will be committed' view")
    summary = page.text("committed-summary")
    assert summary.startswith(f"What will be committed: revision {revision} against "), summary
    view.find_element(By.CSS_SELECTOR, "summary").click()
    paths = sorted(d.get_attribute("data-path") for d in view.find_elements(By.CSS_SELECTOR, tid("diff")))
    assert paths == ["app/cache.py", "app/users.py", "tests/test_cache.py"], paths
    users = view.find_element(By.CSS_SELECTOR, f'{tid("diff")}[data-path="app/users.py"]')
    assert users.find_elements(By.CSS_SELECTOR, 'tr[data-op="-"]') and users.find_elements(By.CSS_SELECTOR, 'tr[data-op="+"]')
