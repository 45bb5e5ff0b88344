"""The Ask panel against `medic serve` (MEDIC_BIN) on its demo defaults — issue 14's "done when": the Tokyo question
typed into the page returns the right number with its SQL. The demo creates <data-dir>/demo-users.sqlite and
configures it as the source `users`; the scripted model answers the four example questions. The numbers are checked
against SQL written here, run on the same file with Python's sqlite3 (read-only). Skipped while the server has no
Ask feature (GET /api/v1/sources answers 404)."""
import sqlite3
import urllib.error

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from conftest import screenshot, severe_console_errors, wait
from page import ReviewPage, tid
from test_ask_page import SPY, STEPS, TOKYO, TOKYO_SQL, go, sent, shown, text


def started(medic_factory):
    server = medic_factory(quorum=1)
    alice = server.token("alice", "admin")
    server.start()
    try:
        sources = server.request("GET", "/api/v1/sources", alice)["sources"]
    except urllib.error.HTTPError as e:
        if e.code == 404:
            pytest.skip("this medic has no Ask feature (GET /api/v1/sources: 404)")
        raise
    return server, alice, sources


def independent(server, sql):
    with sqlite3.connect(f"file:{server.data_dir}/demo-users.sqlite?mode=ro", uri=True) as db:
        return db.execute(sql).fetchall()


def test_the_tokyo_question_typed_into_the_page_returns_the_right_number_with_its_sql(medic_factory, browsers):
    server, alice, sources = started(medic_factory)
    assert [s["name"] for s in sources][:1] == ["users"] and "medic" in [s["name"] for s in sources]
    expected = independent(server, """SELECT count(*) FROM users WHERE gender = 'female' AND is_active = 1
                                      AND city = 'Tokyo' AND country = 'Japan'
                                      AND wallet_balance_usd > 500 AND wallet_balance_usd < 1950""")[0][0]
    assert 1 <= expected <= 1000
    page = ReviewPage(browsers(), server.url)
    page.open_with_token(alice)
    page.js(SPY)
    page.d.find_element(By.CSS_SELECTOR, tid("nav-ask")).click()
    wait(page.d, lambda d: page.js("return window.medicPage.route()?.name") == "ask", 10)
    wait(page.d, lambda d: page.js("return document.getElementById('ask-source').options.length") >= 2, 15)
    assert Select(page.d.find_element(By.CSS_SELECTOR, tid("ask-source"))).first_selected_option.get_attribute("value") == "users"
    box = page.d.find_element(By.CSS_SELECTOR, tid("ask-question"))
    box.send_keys(TOKYO, Keys.ENTER)
    wait(page.d, lambda d: page.js("return window.medicPage.route()?.name") == "ask-detail", 15, "the ask did not open")
    aid = page.js("return window.medicPage.route().params.id")
    assert sent(page, "ask")[-1]["question"] == TOKYO and sent(page, "ask")[-1]["source"] == "users"
    wait(page.d, lambda d: shown(page, "ask-answer"), 60, f"no answer: {text(page, 'ask-failed')}")
    assert text(page, "ask-answer-value") == f"{expected:,}"
    assert text(page, "ask-answer-sql") == TOKYO_SQL
    assert text(page, "ask-answer-count") == "1 row"
    # The step shows the statement Medic ran and its result; every stored event once, in order.
    steps = page.js(STEPS)
    assert any(q["sql"] == TOKYO_SQL and q["state"] == "result" for s in steps for q in s["queries"]), steps
    events = server.request("GET", f"/api/v1/asks/{aid}/events?since=0", alice)["events"]
    wait(page.d, lambda d: page.seen_seqs(f"ask:{aid}") == [e["seq"] for e in events], 10)
    assert [e["kind"] for e in events if e["kind"] in ("answer", "status_changed")][-2:] == ["answer", "status_changed"]
    answer = next(e["data"] for e in events if e["kind"] == "answer")
    assert answer["value"] == expected and answer["sql"] == TOKYO_SQL
    page.scroll_to(tid("ask-current"))
    screenshot(page.d, "ask-real-tokyo.png")
    # Marked correct by the admin: the detail remembers it.
    page.d.find_element(By.CSS_SELECTOR, tid("ask-mark-correct")).click()
    wait(page.d, lambda d: (text(page, "ask-mark-message") or "").startswith("Marked correct"), 15)
    assert server.request("GET", f"/api/v1/asks/{aid}", alice)["mark"]["correct"] is True
    assert severe_console_errors(page.d) == []


def test_the_other_example_questions_a_chart_and_the_past_asks(medic_factory, browsers):
    server, alice, _ = started(medic_factory)
    page = ReviewPage(browsers(), server.url)
    page.open_with_token(alice)
    go(page, "#/ask")
    wait(page.d, lambda d: page.js("return document.getElementById('ask-source').options.length") >= 2, 15)
    # The average balance by region: one label and one number column — a bar per region, scaled to the largest.
    page.d.find_elements(By.CSS_SELECTOR, tid("ask-example"))[2].click()
    page.d.find_element(By.CSS_SELECTOR, tid("ask-submit")).click()
    wait(page.d, lambda d: shown(page, "ask-answer-chart"), 60, f"no chart: {text(page, 'ask-failed')}")
    regions = independent(server, "SELECT region, round(avg(wallet_balance_usd), 2) FROM users GROUP BY region ORDER BY 2 DESC")
    bars = page.js("""return [...document.querySelectorAll('[data-testid=ask-chart-bar]')].map(g => [
        g.querySelector('text').textContent, Number(g.dataset.value), Number(g.dataset.fraction)])""")
    assert [(label, value) for label, value, _ in bars] == regions
    assert bars[0][2] == 1.0
    # How many users completed KYC.
    go(page, "#/ask")
    page.d.find_elements(By.CSS_SELECTOR, tid("ask-example"))[3].click()
    page.d.find_element(By.CSS_SELECTOR, tid("ask-submit")).click()
    kyc = independent(server, "SELECT count(*) FROM users WHERE kyc_verified = 1")[0][0]
    wait(page.d, lambda d: text(page, "ask-answer-value") == f"{kyc:,}", 60, f"no answer: {text(page, 'ask-failed')}")
    # Both are in the list of past asks, newest first.
    wait(page.d, lambda d: len(page.d.find_elements(By.CSS_SELECTOR, tid("ask-item"))) == 2, 15)
    assert page.js("return [...document.querySelectorAll('[data-testid=ask-item-question]')].map(a => a.textContent)") == [
        "How many users completed KYC?", "What's the average wallet balance by region?"]
    assert severe_console_errors(page.d) == []


def postgres_users():
    """A throwaway PostgreSQL database holding the demo's 50,000 users (the same rows, from
    Tests/interop/demo_users.py); (url, drop). Skips without MEDIC_TEST_POSTGRES_URL (scripts/test.sh sets it)."""
    import csv, io, os, random, shutil, subprocess, sys
    base = os.environ.get("MEDIC_TEST_POSTGRES_URL")
    if not base or not shutil.which("psql"):
        pytest.skip("no MEDIC_TEST_POSTGRES_URL / psql")
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "interop"))
    import demo_users
    name = f"medic_ask_page_{random.randrange(1 << 30)}"
    subprocess.run(["psql", base, "-qc", f"CREATE DATABASE {name}"], check=True, timeout=60)
    url = base.rsplit("/", 1)[0] + "/" + name
    data = io.StringIO()
    csv.writer(data).writerows(demo_users.rows())
    ddl = demo_users.CREATE_TABLE.replace("REAL", "DOUBLE PRECISION")
    subprocess.run(["psql", url, "-q", "-v", "ON_ERROR_STOP=1", "-c", ddl, "-c", "COPY users FROM STDIN WITH (FORMAT csv)"],
                   input=data.getvalue(), text=True, check=True, timeout=120)
    return url, lambda: subprocess.run(["psql", base, "-qc", f"DROP DATABASE {name} WITH (FORCE)"], timeout=60)


def test_the_tokyo_question_on_a_postgresql_source(medic_factory, browsers):
    """The same question typed into the page, the source `users` now a PostgreSQL database with the same rows:
    the right number (psql's, computed here) with its SQL."""
    import subprocess
    url, drop = postgres_users()
    try:
        server = medic_factory(quorum=1, extra=["--source", f"users={url}"])
        alice = server.token("alice", "admin")
        server.start()
        sources = {s["name"]: s for s in server.request("GET", "/api/v1/sources", alice)["sources"]}
        assert sources["users"]["kind"] == "postgres", sources.get("users")
        expected = int(subprocess.run(
            ["psql", url, "-tAc", "SELECT count(id) FROM users WHERE gender = 'female' AND is_active = 1 AND city = 'Tokyo' "
             "AND country = 'Japan' AND wallet_balance_usd > 500 AND wallet_balance_usd < 1950"],
            check=True, capture_output=True, text=True, timeout=30).stdout.strip())
        assert 1 <= expected <= 1000
        page = ReviewPage(browsers(), server.url)
        page.open_with_token(alice)
        go(page, "#/ask")
        wait(page.d, lambda d: page.js("return document.getElementById('ask-source').options.length") >= 2, 15)
        Select(page.d.find_element(By.CSS_SELECTOR, tid("ask-source"))).select_by_value("users")
        page.d.find_element(By.CSS_SELECTOR, tid("ask-question")).send_keys(TOKYO, Keys.ENTER)
        wait(page.d, lambda d: shown(page, "ask-answer"), 60, f"no answer: {text(page, 'ask-failed')}")
        assert text(page, "ask-answer-value") == f"{expected:,}"
        assert text(page, "ask-answer-sql") == TOKYO_SQL
        screenshot(page.d, "ask-real-tokyo-postgres.png")
        assert severe_console_errors(page.d) == []
    finally:
        drop()
