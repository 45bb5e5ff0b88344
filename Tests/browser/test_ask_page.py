"""The Ask panel against fake_server.py (fake_asks.py scripts the asks; ask-spec.md is the contract): the sources from
GET /api/v1/sources with the demo's users preselected; the Tokyo question typed in sends `ask {question, source}`,
lands on `#/ask/<id>` and shows the model's streamed text, a refused DELETE with its reason, the SELECT with its result
and the answer — value 236 big, its SQL, the row count; a grouped answer draws a bar chart scaled to the largest value
and a table; past asks are listed and live; admins mark answers correct or wrong (`mark_answer`), viewers neither ask
nor mark; a failed ask says why; the server's refusal shows in the form; hostile text stays text."""
import json
import os
import urllib.parse
import urllib.request

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from conftest import SCREENSHOTS, emulate, screenshot, severe_console_errors, wait
from page import ReviewPage, tid

TOKYO = ("How many female users are currently active in the Tokyo, Japan region with above $500 but less than $1950 "
         "in the wallet?")
TOKYO_SQL = ("SELECT count(*) AS users FROM users WHERE gender = 'female' AND is_active = 1 AND country = 'Japan' "
             "AND region = 'Tokyo' AND wallet_balance_usd > 500 AND wallet_balance_usd < 1950")
HOSTILE = '<img src=x onerror="window.pwned=1">'
SHOTS = os.path.join(SCREENSHOTS, "fake")

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

# Records every streamed text the page shows and every state of the steps (as the page renders them).
OBSERVE = """
window.thinking = [];
window.stepStates = [];
const steps = document.getElementById('ask-steps');
new MutationObserver(() => {
  const texts = [...steps.querySelectorAll('[data-testid=ask-thinking]')].map(t => t.textContent).join('|');
  if (texts && window.thinking.at(-1) !== texts) window.thinking.push(texts);
  const states = [...steps.querySelectorAll('[data-testid=ask-query]')].map(q => q.dataset.state).join(',');
  if (states && window.stepStates.at(-1) !== states) window.stepStates.push(states);
}).observe(steps, {childList: true, subtree: true, characterData: true});
"""

STEPS = """
return [...document.querySelectorAll('[data-testid=ask-step]')].map(s => ({
  round: Number(s.dataset.round),
  thinking: s.querySelector('[data-testid=ask-thinking]')?.textContent ?? null,
  tools: [...s.querySelectorAll('[data-testid=ask-tool]')].map(t => t.textContent),
  queries: [...s.querySelectorAll('[data-testid=ask-query]')].map(q => ({
    state: q.dataset.state, sql: q.querySelector('[data-testid=ask-query-sql]').textContent,
    refused: q.querySelector('[data-testid=ask-refused]')?.textContent ?? null,
    meta: q.querySelector('[data-testid=ask-result-meta]')?.textContent ?? null,
    cells: [...q.querySelectorAll('[data-testid=ask-result-table-row]')].map(r => [...r.cells].map(c => c.textContent))})),
}));
"""


def rest(fake, path, token="tok-alice"):
    req = urllib.request.Request(fake.url + path, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def signed_in(browsers, fake, token, route="#/ask"):
    page = ReviewPage(browsers(), fake.url)
    page.open_with_token(token)
    page.js(SPY)
    go(page, route)
    return page


def go(page, route):
    page.js("location.hash = arguments[0]", route)
    wait(page.d, lambda d: page.js("return window.medicPage.route()?.name") in ("ask", "ask-detail", "not-found"), 10)


def sent(page, kind):
    return [m for m in page.js("return window.sentCommands") if m.get("type") == kind]


def text(page, testid):
    return page.js("return document.querySelector(arguments[0])?.textContent ?? null", tid(testid))


def shown(page, testid):
    return page.js("const e = document.querySelector(arguments[0]); return !!e && !e.closest('[hidden]')", tid(testid))


def ask(page, question):
    box = page.d.find_element(By.CSS_SELECTOR, tid("ask-question"))
    box.clear()
    box.send_keys(question)
    page.d.find_element(By.CSS_SELECTOR, tid("ask-submit")).click()
    wait(page.d, lambda d: page.js("return window.medicPage.route()?.name") == "ask-detail", 10, "the new ask did not open")
    return page.js("return window.medicPage.route().params.id")


def fake_ask(fake, question, author="fixbot"):
    return fake.control("ask?" + urllib.parse.urlencode({"question": question, "author": author}))["ask"]


def test_the_tokyo_question_streams_shows_the_refused_sql_and_answers_with_its_sql(fake_factory, browsers):
    fake = fake_factory()
    page = signed_in(browsers, fake, "tok-alice")
    # The sources: the demo's users database first (not Medic's own store), with its tables.
    wait(page.d, lambda d: page.js("return document.getElementById('ask-source').options.length") == 2, 10)
    assert Select(page.d.find_element(By.CSS_SELECTOR, tid("ask-source"))).first_selected_option.get_attribute("value") == "users"
    assert "users (≈50,000 rows)" in text(page, "ask-source-info")
    assert shown(page, "ask-examples")
    page.js(OBSERVE)
    aid = ask(page, TOKYO)
    assert sent(page, "ask")[-1] | {"id": None} == {"type": "ask", "question": TOKYO, "source": "users", "id": None}
    assert page.d.current_url.endswith(f"#/ask/{aid}")
    wait(page.d, lambda d: text(page, "ask-current-question") == TOKYO, 10)
    wait(page.d, lambda d: shown(page, "ask-answer"), 30, "no answer")
    # The answer: the database's value big, the text, the SQL it came from and the row count; no table for one value.
    assert text(page, "ask-answer-value") == "236"
    assert shown(page, "ask-answer-value")
    assert text(page, "ask-answer-text").startswith("This counts the female users in Tokyo, Japan")
    assert text(page, "ask-answer-sql") == TOKYO_SQL
    assert text(page, "ask-answer-count") == "1 row"
    assert not shown(page, "ask-answer-chart")
    assert page.js("return document.querySelectorAll('[data-testid=ask-answer-rows]').length") == 0
    wait(page.d, lambda d: page.js("return document.querySelector('[data-testid=ask-current-status]').dataset.status") == "answered", 10)
    # Every step: round 1 thought, called two tools, and its DELETE was refused with the reason; round 2 ran the count.
    steps = page.js(STEPS)
    assert [s["round"] for s in steps] == [1, 2]
    assert steps[0]["thinking"] == "I will look at the users table first, then count the matching users."
    assert steps[0]["tools"] == ["Tool: list_tables", 'Tool: describe_table {"table":"users"}']
    assert steps[0]["queries"] == [{"state": "refused", "sql": "DELETE FROM users WHERE is_active = 0",
                                    "refused": "Refused (not_read_only): only reading is allowed (SQLite refused action 9)",
                                    "meta": None, "cells": []}]
    # Round 2 is the final reply: once its JSON is whole, only its sentence shows (the SQL is right below).
    assert steps[1]["thinking"].startswith("This counts the female users in Tokyo, Japan")
    assert steps[1]["queries"][0]["state"] == "result" and steps[1]["queries"][0]["sql"] == TOKYO_SQL
    assert steps[1]["queries"][0]["meta"] == "1 row in 4 ms"
    assert steps[1]["queries"][0]["cells"] == [["236"]]
    # Nothing but the rendered parts (no stray "null" from a missing note).
    assert "null" not in page.js("return document.getElementById('ask-current').textContent")
    # It streamed: the thinking text grew in pieces, and the statement showed as running before its result.
    thinking = page.js("return window.thinking")
    assert len(thinking) > 3 and thinking[0] != thinking[-1]
    assert any('|{"answer": "This counts' in t for t in thinking)   # the reply streamed as JSON before it was whole
    assert "running" in page.js("return window.stepStates")
    # The list of past asks has it, live.
    wait(page.d, lambda d: page.js("return document.querySelector('[data-testid=ask-item]')?.dataset.status") == "answered", 10)
    assert text(page, "ask-item-question") == TOKYO
    assert page.js("return [...document.querySelectorAll('[data-testid=ask-item]')].map(li => li.dataset.id)") == [aid]
    # The topic's seqs: 1, 2, 3, … without holes or repeats (ask_thinking is ephemeral and carries none).
    seqs = page.seen_seqs(f"ask:{aid}")
    assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) == rest(fake, f"/api/v1/asks/{aid}/events")["head"]
    page.scroll_to(tid("ask-current"))
    screenshot(page.d, "ask-tokyo.png", SHOTS)
    # A reload (deep link) shows the same answer from the replay.
    page.d.refresh()
    page.wait_live()
    wait(page.d, lambda d: text(page, "ask-answer-value") == "236", 10)
    # The answer can show from the ask's summary before the replayed steps render: wait for them.
    wait(page.d, lambda d: len(page.js(STEPS)) == 2, 10, "the replay did not render both steps")
    assert severe_console_errors(page.d) == []


def test_a_grouped_answer_draws_a_bar_chart_and_a_table(fake_factory, browsers):
    fake = fake_factory("--speed", "0.3")
    page = signed_in(browsers, fake, "tok-alice")
    wait(page.d, lambda d: page.js("return document.getElementById('ask-source').options.length") == 2, 10)
    page.d.find_elements(By.CSS_SELECTOR, tid("ask-example"))[2].click()
    assert page.d.find_element(By.CSS_SELECTOR, tid("ask-question")).get_attribute("value") == "What's the average wallet balance by region?"
    # Enter asks.
    page.d.find_element(By.CSS_SELECTOR, tid("ask-question")).send_keys(Keys.ENTER)
    wait(page.d, lambda d: page.js("return window.medicPage.route()?.name") == "ask-detail", 10)
    wait(page.d, lambda d: shown(page, "ask-answer-chart"), 30, "no chart")
    bars = page.js("""return [...document.querySelectorAll('[data-testid=ask-chart-bar]')].map(g => ({
        value: Number(g.dataset.value), fraction: Number(g.dataset.fraction),
        width: Number(g.querySelector('rect').getAttribute('width')), label: g.querySelector('text').textContent}))""")
    assert len(bars) == 19
    assert bars[0] == {"value": 3986.73, "fraction": 1.0, "width": 360.0, "label": "Singapore"}
    assert bars[-1]["label"] == "Lagos" and abs(bars[-1]["fraction"] - 1758.41 / 3986.73) < 1e-4
    assert all(b["width"] <= 360 for b in bars) and [b["width"] for b in bars] == sorted((b["width"] for b in bars), reverse=True)
    assert not shown(page, "ask-answer-value")
    assert text(page, "ask-answer-count") == "19 rows"
    cells = page.js("return [...document.querySelectorAll('[data-testid=ask-answer-rows-row]')].map(r => [...r.cells].map(c => c.textContent))")
    assert len(cells) == 19 and cells[0] == ["Singapore", "3986.73"]
    assert page.js("return document.querySelector('[data-testid=ask-answer-rows] th').textContent") == "region"
    page.scroll_to(tid("ask-answer"))
    screenshot(page.d, "ask-chart.png", SHOTS)
    assert severe_console_errors(page.d) == []


def test_past_asks_are_live_and_open_on_click(fake_factory, browsers):
    fake = fake_factory("--speed", "0.3")
    first = fake_ask(fake, "How many users completed KYC?")
    page = signed_in(browsers, fake, "tok-alice")
    wait(page.d, lambda d: len(page.d.find_elements(By.CSS_SELECTOR, tid("ask-item"))) == 1, 10)
    assert not shown(page, "asks-empty")
    second = fake_ask(fake, "Show me the top 10 most active users this week", author="bob")
    # The `asks` topic adds it at the top without a reload.
    wait(page.d, lambda d: page.js("return [...document.querySelectorAll('[data-testid=ask-item]')].map(li => li.dataset.id)") == [second, first], 10)
    page.d.find_elements(By.CSS_SELECTOR, tid("ask-item-question"))[0].click()
    wait(page.d, lambda d: page.js("return window.medicPage.route()?.params?.id") == second, 10)
    wait(page.d, lambda d: shown(page, "ask-answer"), 30)
    # A table answer: seven columns, ten rows, no value, no chart.
    cells = page.js("return [...document.querySelectorAll('[data-testid=ask-answer-rows-row]')].map(r => r.cells.length)")
    assert cells == [7] * 10
    assert not shown(page, "ask-answer-value") and not shown(page, "ask-answer-chart")
    assert "asked by bob" in text(page, "ask-current-meta")
    # Opening another ask leaves the first ask's topic.
    page.d.find_elements(By.CSS_SELECTOR, tid("ask-item-question"))[1].click()
    wait(page.d, lambda d: text(page, "ask-answer-value") == "29,936", 30)
    unsubscribed = [m["topic"] for m in sent(page, "unsubscribe")]
    assert f"ask:{second}" in unsubscribed


def test_admins_mark_answers_correct_or_wrong(fake_factory, browsers):
    fake = fake_factory("--speed", "0.3")
    aid = fake_ask(fake, "How many users completed KYC?")
    wait(None, lambda _: fake.control("asks")[aid]["status"] == "answered", 30)
    page = signed_in(browsers, fake, "tok-alice", f"#/ask/{aid}")
    wait(page.d, lambda d: shown(page, "ask-mark"), 10)
    page.d.find_element(By.CSS_SELECTOR, tid("ask-mark-correct")).click()
    wait(page.d, lambda d: (text(page, "ask-mark-message") or "").startswith("Marked correct"), 10)
    assert sent(page, "mark_answer")[-1] | {"id": None} == {"type": "mark_answer", "ask": aid, "correct": True, "id": None}
    assert fake.control("asks")[aid]["mark"] == {"correct": True, "comment": "", "principal": "alice"}
    # Wrong… asks for a comment first.
    page.d.find_element(By.CSS_SELECTOR, tid("ask-mark-wrong")).click()
    assert shown(page, "ask-mark-form")
    page.d.find_element(By.CSS_SELECTOR, tid("ask-mark-comment")).send_keys("KYC level 0 users were counted too")
    page.d.find_element(By.CSS_SELECTOR, tid("ask-mark-send")).click()
    wait(page.d, lambda d: (text(page, "ask-mark-message") or "").startswith("Marked wrong"), 10)
    assert sent(page, "mark_answer")[-1] | {"id": None} == {"type": "mark_answer", "ask": aid, "correct": False,
                                                            "comment": "KYC level 0 users were counted too", "id": None}
    assert fake.control("asks")[aid]["mark"]["comment"] == "KYC level 0 users were counted too"
    assert not shown(page, "ask-mark-form")


def test_viewers_neither_ask_nor_mark_and_a_bot_asks(fake_factory, browsers):
    fake = fake_factory("--speed", "0.3")
    aid = fake_ask(fake, "How many users completed KYC?")
    wait(None, lambda _: fake.control("asks")[aid]["status"] == "answered", 30)
    page = signed_in(browsers, fake, "tok-victor", f"#/ask/{aid}")
    wait(page.d, lambda d: shown(page, "ask-answer"), 10)
    assert not shown(page, "ask-form")
    assert not shown(page, "ask-mark")
    bot = signed_in(browsers, fake, "tok-fixbot")
    wait(bot.d, lambda d: shown(bot, "ask-form"), 10)
    wait(bot.d, lambda d: bot.js("return document.getElementById('ask-source').options.length") == 2, 10)
    bid = ask(bot, "How many users are there?")
    wait(bot.d, lambda d: text(bot, "ask-answer-value") == "50,000", 30)
    assert not shown(bot, "ask-mark")  # marking is for admins
    assert bid != aid


def test_a_failed_ask_and_a_refused_question_are_explained(fake_factory, browsers):
    fake = fake_factory("--speed", "0.3")
    page = signed_in(browsers, fake, "tok-alice")
    wait(page.d, lambda d: page.js("return document.getElementById('ask-source').options.length") == 2, 10)
    ask(page, "Is the database down?")
    wait(page.d, lambda d: shown(page, "ask-failed"), 30)
    assert text(page, "ask-failed") == "No answer: source users is unavailable: cannot open the database"
    assert not shown(page, "ask-answer")
    # The server's refusal of the question shows in the form (an empty question is caught before sending).
    go(page, "#/ask")
    page.d.find_element(By.CSS_SELECTOR, tid("ask-submit")).click()
    assert text(page, "ask-form-error") == "Type a question."
    page.js("""const s = document.getElementById('ask-source');
               s.append(Object.assign(document.createElement('option'), {value: 'gone', textContent: 'gone'})); s.value = 'gone';""")
    box = page.d.find_element(By.CSS_SELECTOR, tid("ask-question"))
    box.send_keys("How many users completed KYC?")
    page.d.find_element(By.CSS_SELECTOR, tid("ask-submit")).click()
    wait(page.d, lambda d: "unknown source" in (text(page, "ask-form-error") or ""), 10)
    assert text(page, "ask-form-error") == "The server refused the question: unknown source 'gone'; configured: users, medic"
    assert page.js("return window.medicPage.route().name") == "ask"
    # An unknown ask.
    go(page, "#/ask/a-missing")
    wait(page.d, lambda d: "does not exist" in (text(page, "ask-load-error") or ""), 10)


def test_hostile_strings_render_as_text(fake_factory, browsers):
    fake = fake_factory("--speed", "0.3")
    page = signed_in(browsers, fake, "tok-alice")
    wait(page.d, lambda d: page.js("return document.getElementById('ask-source').options.length") == 2, 10)
    question = f"hostile {HOSTILE}"
    aid = ask(page, question)
    wait(page.d, lambda d: shown(page, "ask-answer"), 30)
    body = page.js("return document.getElementById('ask').textContent")
    for where in (question, f"Thinking {HOSTILE} <script>window.pwned=3</script>", f"Answer {HOSTILE}",
                  f"<script>window.pwned=2</script>{HOSTILE}", f"table {HOSTILE} is not allowed", "&lt;b&gt;not bold&lt;/b&gt;",
                  f"name {HOSTILE}", f"describe_table {{\"table\":\"<img src=x onerror=\\\"window.pwned=1\\\">\"}}"):
        assert where in body, where
    assert text(page, "ask-answer-sql") == f"SELECT '{HOSTILE}' AS x -- </code><img src=x onerror=alert(1)>"
    # The chart's label is an SVG text node, not markup.
    labels = page.js("return [...document.querySelectorAll('[data-testid=ask-chart-bar] text')].map(t => t.textContent)")
    assert any(label.startswith("<script>") for label in labels)
    assert page.js("return document.querySelectorAll('#ask img, #ask script, #ask b, #ask foreignObject').length") == 0
    assert page.js("return window.pwned === undefined")
    assert page.js("return [...document.querySelectorAll('[data-testid=ask-item]')].map(li => li.dataset.id)") == [aid]
    assert severe_console_errors(page.d) == []


def test_hostile_ids_in_the_address_are_not_found(fake_factory, browsers):
    fake = fake_factory()
    page = signed_in(browsers, fake, "tok-alice")
    page.js("location.hash = arguments[0]", "#/ask/%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E")
    wait(page.d, lambda d: page.js("return window.medicPage.route()?.name") == "not-found", 10)
    assert page.js("return window.pwned === undefined")


def test_the_ask_panel_fits_a_phone_in_dark_mode(fake_factory, browsers):
    fake = fake_factory("--speed", "0.3")
    aid = fake_ask(fake, "What's the average wallet balance by region?")
    wait(None, lambda _: fake.control("asks")[aid]["status"] == "answered", 30)
    driver = browsers()
    emulate(driver, 390, 844, dark=True)
    page = ReviewPage(driver, fake.url)
    page.open_with_token("tok-alice")
    go(page, f"#/ask/{aid}")
    wait(page.d, lambda d: shown(page, "ask-answer-chart"), 10)
    assert page.js("return document.documentElement.scrollWidth - document.documentElement.clientWidth") <= 0, \
        "the Ask panel scrolls sideways on a phone"
    page.scroll_to(tid("ask-answer"))
    screenshot(page.d, "ask-phone-dark.png", SHOTS)
