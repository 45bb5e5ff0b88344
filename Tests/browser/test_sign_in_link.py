"""Getting back in after a restart: `medic login` prints a single-use sign-in link; the page exchanges it for a
session, removes it from the address bar, and a used or forged link is refused with a hint."""
import subprocess

from selenium.webdriver.common.by import By

from conftest import severe_console_errors, wait
from page import ReviewPage, tid


def login_link(server, *extra):
    out = subprocess.run([server.binary, "login", "--data-dir", server.data_dir, "--url", server.url, *extra],
                         check=True, capture_output=True, text=True, timeout=30).stdout
    return out.strip().splitlines()[-1]


def test_a_sign_in_link_works_once_and_leaves_no_trace(medic_factory, browsers):
    server = medic_factory()
    server.token("alice", "admin")
    server.start()
    link = login_link(server, "--name", "alice")
    assert link.startswith(server.url + "/#login=")

    page = ReviewPage(browsers(), server.url)
    # A new tab with nothing shows the sign-in form with the hint.
    page.d.get(server.url + "/")
    wait(page.d, lambda d: d.find_element(By.CSS_SELECTOR, tid("signin")).is_displayed())
    assert "medic login" in page.text("signin-hint")

    page.d.get(link)
    page.wait_live()
    assert page.identity() == ("alice", "admin")
    assert "login=" not in page.d.current_url
    assert page.d.execute_script("return sessionStorage.getItem('medic.token')").startswith("mdc_")
    assert not severe_console_errors(page.d)

    # The same link again (another browser): refused, with the way out.
    other = ReviewPage(browsers(), server.url)
    other.d.get(link)
    wait(other.d, lambda d: "medic login" in (other.text("signin-error") or ""), 20, "a used link was not refused")
    assert other.d.execute_script("return sessionStorage.getItem('medic.token')") is None
