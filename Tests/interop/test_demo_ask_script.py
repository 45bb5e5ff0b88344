"""The Ask demo's script cannot silently rot (ask-spec.md "Demo", issue 14): examples/demo-conversation.json holds a
`"purpose": "ask"` entry for each of the four example questions, each reply is the final JSON the scripted model gives
(`answer` text without numbers — Medic attaches the database's value — and one read-only SELECT), and each SELECT,
run on the demo users database (rebuilt by demo_users.py exactly as DemoUsers.swift builds it), gives the answer the
question asks for, checked against plain Python over the same rows. Pure Python: no medic binary needed."""
import json
import os
import re
import sqlite3
from collections import defaultdict

import pytest

import demo_users

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "examples")
with open(os.path.join(EXAMPLES, "demo-conversation.json"), encoding="utf-8") as f:
    REPLIES = json.load(f)["replies"]

TOKYO = ("How many female users are currently active in the Tokyo, Japan region with above $500 but less than $1950 "
         "in the wallet?")
TOP = "Show me the top 10 most active users this week"
REGIONS = "What's the average wallet balance by region?"
KYC = "How many users completed KYC?"


def entry(question):
    """The first `ask` entry matching the question, by ScriptedConversation's rules (case-insensitive substring)."""
    for e in REPLIES:
        if e.get("purpose") == "ask" and (e.get("match") is None or e["match"].lower() in question.lower()):
            return e
    return None


@pytest.fixture(scope="module")
def data():
    return demo_users.rows()


@pytest.fixture(scope="module")
def db(data, tmp_path_factory):
    path = tmp_path_factory.mktemp("demo") / "demo-users.sqlite"
    connection = demo_users.create(str(path), data)
    yield connection
    connection.close()


def run(db, sql):
    # The engine's own read-only check (what SQLiteQuerySource requires): one statement, and it does not write.
    assert sqlite3.complete_statement(sql + ";")
    assert ";" not in sql.strip().rstrip(";")
    cursor = db.execute(sql)
    return [d[0] for d in cursor.description], cursor.fetchall()


@pytest.mark.parametrize("question", [TOKYO, TOP, REGIONS, KYC])
def test_each_example_question_has_its_own_ask_entry_with_a_plain_select_and_no_number_in_the_answer(question):
    e = entry(question)
    assert e is not None, question
    assert [q for q in (TOKYO, TOP, REGIONS, KYC) if entry(q) is e] == [question]  # no entry answers two of them
    reply = e["reply"]
    assert set(reply) == {"answer", "sql"}
    assert re.match(r"^(SELECT|WITH)\b", reply["sql"], re.I)
    for word in ("insert", "update", "delete", "drop", "attach", "pragma", "email", "wallet_address"):
        assert not re.search(rf"\b{word}\b", reply["sql"], re.I), (word, reply["sql"])
    # Medic shows the database's number; the text may name the question's bounds ($500, $1,950, ten) but no result.
    numbers = re.findall(r"\d[\d,]*(?:\.\d+)?", reply["answer"])
    assert set(numbers) <= {"500", "1,950", "1"}, numbers


def test_a_question_outside_the_four_matches_no_ask_entry_and_fix_entries_are_untouched():
    assert entry("How many fixes failed this week?") is None
    # The fix/bug entries still come first for their purposes; the catch-all fix entry stays last.
    assert REPLIES[-1].get("purpose") is None and REPLIES[-1].get("match") is None


def test_tokyo_sql_counts_what_plain_python_counts(db, data):
    columns, rows = run(db, entry(TOKYO)["reply"]["sql"])
    assert len(columns) == 1 and len(rows) == 1
    i = {c: n for n, c in enumerate(demo_users.COLUMNS)}
    expected = sum(1 for r in data
                   if r[i["gender"]] == "female" and r[i["is_active"]] == 1 and r[i["country"]] == "Japan"
                   and r[i["city"]] == "Tokyo" and 500 < r[i["wallet_balance_usd"]] < 1950)
    assert rows[0][0] == expected
    assert 1 <= expected <= 1000
    # Bounds are exclusive, as the question says ("above $500 but less than $1950").
    assert db.execute("SELECT count(*) FROM users WHERE wallet_balance_usd IN (500, 1950)").fetchone()[0] >= 0


def test_top_ten_this_week_are_the_highest_scores_among_the_last_seven_days(db, data):
    columns, rows = run(db, entry(TOP)["reply"]["sql"])
    assert len(rows) == 10
    assert "activity_score" in columns and "email" not in columns and "wallet_address" not in columns
    i = {c: n for n, c in enumerate(demo_users.COLUMNS)}
    # "This week": the seven days up to the latest activity in the data (the reference date of the demo).
    latest = max(r[i["last_active"]] for r in data)
    assert latest <= demo_users.timestamp(demo_users.REFERENCE)
    week_start = demo_users.timestamp(demo_users.REFERENCE - 7 * 86_400) if latest == demo_users.timestamp(demo_users.REFERENCE) else None
    assert week_start is not None
    week = [r for r in data if r[i["last_active"]] >= week_start]
    best = sorted(week, key=lambda r: r[i["last_active"]], reverse=True)
    best = sorted(best, key=lambda r: r[i["activity_score"]], reverse=True)[:10]  # stable: score, then latest first
    assert [r[columns.index("id")] for r in rows] == [r[i["id"]] for r in best]
    scores = [r[columns.index("activity_score")] for r in rows]
    assert scores == sorted(scores, reverse=True) and scores[0] <= 100


def test_average_balance_by_region_matches_python_and_is_a_chart(db, data):
    columns, rows = run(db, entry(REGIONS)["reply"]["sql"])
    # One text column and one number column: the page draws it as a bar chart (ask-spec.md `chart`).
    assert len(columns) == 2
    assert all(isinstance(r[0], str) and isinstance(r[1], float) for r in rows)
    i = {c: n for n, c in enumerate(demo_users.COLUMNS)}
    sums = defaultdict(lambda: [0.0, 0])
    for r in data:
        sums[r[i["region"]]][0] += r[i["wallet_balance_usd"]]
        sums[r[i["region"]]][1] += 1
    expected = {region: s / n for region, (s, n) in sums.items()}
    assert {r[0] for r in rows} == set(expected)
    for region, average in rows:
        assert abs(average - expected[region]) <= 0.005 + 1e-9
    assert [r[1] for r in rows] == sorted((r[1] for r in rows), reverse=True)
    assert rows[0][1] - rows[-1][1] > 500  # regions differ enough to show on a chart


def test_kyc_count_matches_python(db, data):
    columns, rows = run(db, entry(KYC)["reply"]["sql"])
    i = demo_users.COLUMNS.index("kyc_verified")
    expected = sum(r[i] for r in data)
    assert rows == [(expected,)]
    assert 0.55 * demo_users.ROWS < expected < 0.65 * demo_users.ROWS


def test_the_python_rows_are_the_swift_rows(db):
    """The same value DemoUsersTests pins for the Swift generator's database."""
    assert db.execute("SELECT count(*) FROM users").fetchone()[0] == 50_000
    assert demo_users.checksum(db) == 0x49FB68BB57B1AF9D


def test_a_database_made_by_medic_is_the_same(tmp_path):
    """When a medic data directory holds the demo database (MEDIC_DEMO_USERS, e.g. .medic/demo-users.sqlite after
    scripts/run.sh), it is this one."""
    path = os.environ.get("MEDIC_DEMO_USERS")
    if not path or not os.path.exists(path):
        pytest.skip("MEDIC_DEMO_USERS not set")
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as made:
        assert demo_users.checksum(made) == 0x49FB68BB57B1AF9D
