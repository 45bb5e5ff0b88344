"""`medic ask "QUESTION" [--source S] [--json]`: the requests it sends and what it prints, against a small fake REST
server (the real routes are the Ask server's; ask-spec.md "Commands", "Reads" and "Events on ask:<id>"):
POST /api/v1/ask with an Idempotency-Key, then GET /api/v1/asks/{id}/events?since=N until `answer` or `ask_failed`."""
import http.server
import json
import re
import subprocess
import threading
import urllib.parse

import pytest

from interop_support import binary

TOKYO_SQL = ("SELECT count(*) AS users FROM users WHERE gender = 'female' AND is_active = 1 AND country = 'Japan' "
             "AND region = 'Tokyo' AND wallet_balance_usd > 500 AND wallet_balance_usd < 1950")
REGION_SQL = "SELECT region, round(avg(wallet_balance_usd), 2) AS average_balance_usd FROM users GROUP BY region"


def events_for(question):
    """The ask's whole event log (seq from 1), as the Ask server would store it."""
    log = [("ask_created", {"id": "a-x", "question": question, "source": "users", "author": "admin"}),
           ("status_changed", {"status": "thinking"}),
           ("sql_proposed", {"round": 1, "sql": "SELECT email FROM users", "source": "users"}),
           ("sql_refused", {"round": 1, "sql": "SELECT email FROM users", "code": "not_allowed", "reason": "email is sensitive"})]
    if "down" in question:
        return log + [("ask_failed", {"reason": "source users is unavailable: cannot open"}),
                      ("status_changed", {"status": "failed", "reason": "source users is unavailable"})]
    if "by region" in question:
        rows = [["Singapore", 3986.73], ["New York", 3666.35], ["Lagos", 1758.41]] + [[f"Region {i}", 1000 + i] for i in range(30)]
        answer = {"text": "Average balance per region.", "sql": REGION_SQL, "columns": ["region", "average_balance_usd"],
                  "rows": rows, "row_count": len(rows), "truncated": False,
                  "chart": {"label_column": "region", "value_column": "average_balance_usd"}}
    elif "hostile" in question:
        answer = {"text": "Evil \x1b[2J\x1b]0;pwned\x07 text\rOVERWRITE", "sql": "SELECT '\x1b[31m' AS x",
                  "columns": ["x\x1b[1m"], "rows": [["\x1b[31mred\u202eevil"]], "row_count": 1, "truncated": False}
    else:
        answer = {"text": "This counts the female users in Tokyo, Japan who are currently active.", "sql": TOKYO_SQL,
                  "columns": ["users"], "rows": [[236]], "row_count": 1, "truncated": False, "value": 236}
    return log + [("sql_proposed", {"round": 2, "sql": answer["sql"], "source": "users"}),
                  ("sql_result", {"round": 2, "columns": answer["columns"], "rows": answer["rows"][:50],
                                  "row_count": answer["row_count"], "truncated": False, "duration_ms": 3, "masked": []}),
                  ("answer", answer), ("status_changed", {"status": "answered"})]


class FakeAsk(http.server.BaseHTTPRequestHandler):
    requests = []
    asks = {}

    def log_message(self, *args):
        pass

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        FakeAsk.requests.append(("POST", self.path, dict(self.headers), body))
        if self.headers.get("Authorization") != "Bearer good":
            return self.answer(401, {"error": {"code": "unauthenticated", "message": "Authorization: Bearer TOKEN required"}})
        if self.path != "/api/v1/ask":
            return self.answer(404, {"error": {"code": "not_found", "message": "no such endpoint"}})
        if body.get("source", "users") not in ("users", "medic"):
            return self.answer(400, {"error": {"code": "invalid_message",
                                               "message": f"unknown source '{body['source']}'; configured: users, medic"}})
        id = "a-%010d" % (len(FakeAsk.asks) + 1)
        FakeAsk.asks[id] = {"log": events_for(body["question"]), "reads": 0}
        self.answer(201, {"type": "ack", "id": self.headers.get("Idempotency-Key"), "ask": id, "status": "thinking"})

    def do_GET(self):
        FakeAsk.requests.append(("GET", self.path, dict(self.headers), None))
        url = urllib.parse.urlparse(self.path)
        m = re.fullmatch(r"/api/v1/asks/(a-\d+)/events", url.path)
        if not m or m.group(1) not in FakeAsk.asks:
            return self.answer(404, {"error": {"code": "not_found", "message": "no such ask"}})
        ask = FakeAsk.asks[m.group(1)]
        since = int(urllib.parse.parse_qs(url.query)["since"][0])
        # The log grows as the ask runs: each read reveals three more events.
        ask["reads"] += 1
        visible = ask["log"][:3 * ask["reads"]]
        events = [{"topic": f"ask:{m.group(1)}", "seq": seq, "ts": 1764547200000 + seq, "kind": kind, "data": data}
                  for seq, (kind, data) in enumerate(visible, start=1) if seq > since]
        self.answer(200, {"topic": f"ask:{m.group(1)}", "head": len(visible), "events": events})


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeAsk)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def medic(*args):
    return subprocess.run([binary("MEDIC_BIN"), "ask", *args], capture_output=True, text=True, timeout=60)


TOKYO = "How many female users are currently active in the Tokyo, Japan region with above $500 but less than $1950 in the wallet?"


def test_ask_posts_the_question_follows_the_events_and_prints_the_value_and_its_sql(server):
    FakeAsk.requests.clear()
    out = medic(TOKYO, "--source", "users", "--url", server + "/", "--token", "good")
    assert out.returncode == 0, out.stderr
    method, path, headers, body = FakeAsk.requests[0]
    assert (method, path, body) == ("POST", "/api/v1/ask", {"question": TOKYO, "source": "users"})
    assert 1 <= len(headers["Idempotency-Key"]) <= 128
    reads = [urllib.parse.urlparse(r[1]) for r in FakeAsk.requests[1:]]
    assert {r.path for r in reads} == {"/api/v1/asks/a-0000000001/events"}
    # Each read asks from the last seq seen: nothing is read twice, nothing skipped.
    assert [int(urllib.parse.parse_qs(r.query)["since"][0]) for r in reads] == [0, 3, 6]
    lines = out.stdout.splitlines()
    assert lines[0] == "This counts the female users in Tokyo, Japan who are currently active."
    assert "SQL: " + TOKYO_SQL in lines
    assert "users = 236" in lines
    assert lines[-1] == "(1 row)"
    assert out.stderr == ""
    # A second ask is a new ask (a fresh Idempotency-Key).
    assert medic(TOKYO, "--url", server, "--token", "good").returncode == 0
    posts = [r for r in FakeAsk.requests if r[0] == "POST"]
    assert posts[-1][3] == {"question": TOKYO} and posts[-1][2]["Idempotency-Key"] != headers["Idempotency-Key"]


def test_a_table_answer_is_printed_as_a_small_table(server):
    out = medic("What's the average wallet balance by region?", "--url", server, "--token", "good")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    # Padded to the widest cell shown (20 of the 33 rows; "Region 16" is as wide as "Singapore").
    header = lines.index("region    | average_balance_usd")
    assert lines[header + 1] == "----------+--------------------"
    assert lines[header + 2] == "Singapore | 3986.73"
    assert lines[header + 4] == "Lagos     | 1758.41"
    assert lines[header + 5] == "Region 0  | 1000"
    assert lines[header + 21] == "Region 16 | 1016"
    assert "… 13 more rows not shown (--json prints them)" in lines
    assert lines[-1] == "(33 rows)"


def test_json_prints_the_answer_event_with_the_ask_id(server):
    out = medic(TOKYO, "--json", "--url", server, "--token", "good")
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout)
    assert answer["ask"].startswith("a-") and answer["value"] == 236 and answer["sql"] == TOKYO_SQL


def test_a_failed_ask_and_an_error_answer_go_to_stderr_with_exit_1(server):
    out = medic("Is the database down?", "--url", server, "--token", "good")
    assert out.returncode == 1 and out.stdout == ""
    assert re.search(r"medic ask: ask a-\d+ failed: source users is unavailable: cannot open", out.stderr)
    out = medic(TOKYO, "--source", "nope", "--url", server, "--token", "good")
    assert out.returncode == 1 and out.stdout == ""
    assert "medic ask: invalid_message: unknown source 'nope'; configured: users, medic (HTTP 400)" in out.stderr
    out = medic(TOKYO, "--url", server, "--token", "bad")
    assert out.returncode == 1 and "unauthenticated" in out.stderr


def test_hostile_text_and_values_cannot_drive_the_terminal(server):
    out = medic("hostile", "--url", server, "--token", "good")
    assert out.returncode == 0, out.stderr
    assert "\x1b" not in out.stdout and "\r" not in out.stdout and "\x07" not in out.stdout and "\u202e" not in out.stdout
    assert "Evil \ufffd[2J\ufffd]0;pwned\ufffd text\ufffdOVERWRITE" in out.stdout


@pytest.mark.parametrize("args, message", [
    (["   "], "the question must not be empty"),
    (["x" * 4001], "the question has 4001 characters; at most 4000"),
    (["q", "--source", "Users"], "--source must be a source name"),
    (["q", "--source", "a" * 33], "--source must be a source name"),
    (["q", "--url", "ftp://x"], "--url must be http(s)://HOST[:PORT]"),
])
def test_mistakes_are_named_before_anything_is_sent(args, message):
    out = subprocess.run([binary("MEDIC_BIN"), "ask", *args, "--token", "t"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 64, out
    assert message in out.stderr


def test_a_server_that_is_not_there_is_an_error():
    out = medic("q", "--url", "http://127.0.0.1:9", "--token", "good")
    assert out.returncode == 1 and out.stderr.startswith("medic ask: POST http://127.0.0.1:9/api/v1/ask:")
