"""fake_asks.py: the Ask workflow of fake_server.py (ask-spec.md: `ask`, `mark_answer`, the `asks` and `ask:<id>`
topics, GET /api/v1/sources, GET /api/v1/asks[/<id>[/events]]) with scripted runs.

A mixin of fake_server.Fake: it uses the fake's `topics`, `publish` and `pause`.

Scripts, chosen by the question (case-insensitive):
- "tokyo": round 1 streams thinking, calls list_tables and describe_table, proposes a DELETE that is refused
  (not_read_only); round 2 streams again, proposes the count, gets its result; the answer carries `value` 236.
- "by region": the average balance per region, 19 rows, `chart` {label_column: region, value_column: average_balance_usd}.
- "top 10": seven columns, ten rows (a table, no value, no chart).
- "kyc": a single value.
- "hostile": `<img onerror>` / `<script>` in the thinking text, the SQL, column names, cells, the answer text and a
  chart label.
- "down": the source is unavailable — `ask_failed`.
- anything else: a generic count.
"""

import asyncio
import json
import random
import string
import time

HOSTILE = '<img src=x onerror="window.pwned=1">'
TOKYO_SQL = ("SELECT count(*) AS users FROM users WHERE gender = 'female' AND is_active = 1 AND country = 'Japan' "
             "AND region = 'Tokyo' AND wallet_balance_usd > 500 AND wallet_balance_usd < 1950")
REGIONS = [["Singapore", 3986.73], ["New York", 3666.35], ["California", 3602.56], ["England", 3411.28], ["Seoul", 3253.23],
           ["Texas", 3230.54], ["Tokyo", 3229.13], ["Bavaria", 3213.92], ["New South Wales", 3134.59], ["Osaka", 3045.3],
           ["Île-de-France", 3032.82], ["Berlin", 3023.73], ["Kanagawa", 2930.74], ["Ontario", 2893.57], ["Scotland", 2691.87],
           ["Karnataka", 2414.36], ["São Paulo", 2315.11], ["Maharashtra", 2091.74], ["Lagos", 1758.41]]

SOURCES = [
    {"name": "users", "kind": "sqlite", "tables": [{"name": "users", "row_estimate": 50000, "columns": [
        {"name": "id", "type": "INTEGER", "sensitive": False, "sample_values": []},
        {"name": "email", "type": "TEXT", "sensitive": True, "sample_values": []},
        {"name": "wallet_address", "type": "TEXT", "sensitive": True, "sample_values": []},
        {"name": "gender", "type": "TEXT", "sensitive": False, "sample_values": ["female", "male", "other"]},
        {"name": "city", "type": "TEXT", "sensitive": False, "sample_values": ["Tokyo", "London"]},
        {"name": "wallet_balance_usd", "type": "REAL", "sensitive": False, "sample_values": []}]}]},
    {"name": "medic", "kind": "sqlite", "tables": [{"name": "medic_proposals", "row_estimate": 3, "columns": []},
                                                   {"name": "medic_bugs", "row_estimate": 1, "columns": []}]},
]


def now_ms():
    return int(time.time() * 1000)


class AskRefusal(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


def answer_for(question):
    """(rounds, final): rounds = [(thinking, tools, [(sql, result | refusal)])], final = the answer event or a failure."""
    q = question.lower()
    if "down" in q:
        return [("Reading the users table…", [("list_tables", {})], [])], {"failed": "source users is unavailable: cannot open the database"}
    if "hostile" in q:
        cols = [f"name {HOSTILE}", "n"]
        rows = [[f"<script>window.pwned=2</script>{HOSTILE}", 5], ["&lt;b&gt;not bold&lt;/b&gt;", 3]]
        sql = f"SELECT '{HOSTILE}' AS x -- </code><img src=x onerror=alert(1)>"
        result = {"columns": cols, "rows": rows, "row_count": 2, "truncated": False, "duration_ms": 1, "masked": []}
        return [(f"Thinking {HOSTILE} <script>window.pwned=3</script>", [("describe_table", {"table": HOSTILE})],
                 [(sql, {"code": "not_allowed", "reason": f"table {HOSTILE} is not allowed"}), (sql, result)])], {
            "text": f"Answer {HOSTILE}", "sql": sql, "columns": cols, "rows": rows, "row_count": 2, "truncated": False,
            "chart": {"label_column": cols[0], "value_column": "n"}}
    if "tokyo" in q:
        count = {"columns": ["users"], "rows": [[236]], "row_count": 1, "truncated": False, "duration_ms": 4, "masked": []}
        text = ("This counts the female users in Tokyo, Japan who are currently active (is_active = 1) and whose wallet "
                "holds more than $500 and less than $1,950.")
        # Round 2 is the model's final reply (one JSON object, streamed like any text); Medic runs its SQL.
        return [
            ("I will look at the users table first, then count the matching users.", [("list_tables", {}), ("describe_table", {"table": "users"})],
             [("DELETE FROM users WHERE is_active = 0", {"code": "not_read_only", "reason": "only reading is allowed (SQLite refused action 9)"})]),
            (json.dumps({"answer": text, "sql": TOKYO_SQL}), [], [(TOKYO_SQL, count)]),
        ], {"text": text, "sql": TOKYO_SQL, "columns": ["users"], "rows": [[236]], "row_count": 1, "truncated": False, "value": 236}
    if "by region" in q:
        sql = "SELECT region, round(avg(wallet_balance_usd), 2) AS average_balance_usd FROM users GROUP BY region ORDER BY average_balance_usd DESC"
        result = {"columns": ["region", "average_balance_usd"], "rows": REGIONS, "row_count": len(REGIONS), "truncated": False,
                  "duration_ms": 21, "masked": []}
        return [("Grouping the users by region.", [], [(sql, result)])], {
            "text": "This is the average wallet balance in US dollars of all users in each region, highest first.", "sql": sql,
            "columns": result["columns"], "rows": REGIONS, "row_count": len(REGIONS), "truncated": False,
            "chart": {"label_column": "region", "value_column": "average_balance_usd"}}
    if "top 10" in q:
        sql = ("SELECT id, gender, age, country, city, activity_score, last_active FROM users WHERE last_active >= "
               "(SELECT datetime(max(last_active), '-7 days') FROM users) ORDER BY activity_score DESC, last_active DESC LIMIT 10")
        cols = ["id", "gender", "age", "country", "city", "activity_score", "last_active"]
        rows = [[1000 + i, "female" if i % 2 else "male", 20 + i, "Japan", "Tokyo", 100 - i, f"2026-11-30 1{i}:00:00"] for i in range(10)]
        return [("Ranking by activity score among the last seven days.", [], [(sql, {"columns": cols, "rows": rows, "row_count": 10,
                                                                                     "truncated": False, "duration_ms": 9, "masked": []})])], {
            "text": "These are the ten users with the highest activity score among those active in the last seven days.",
            "sql": sql, "columns": cols, "rows": rows, "row_count": 10, "truncated": False}
    if "kyc" in q:
        sql = "SELECT count(*) AS kyc_completed FROM users WHERE kyc_verified = 1"
        return [("Counting verified users.", [], [(sql, {"columns": ["kyc_completed"], "rows": [[29936]], "row_count": 1,
                                                          "truncated": False, "duration_ms": 3, "masked": []})])], {
            "text": "This counts the users whose KYC verification is complete.", "sql": sql, "columns": ["kyc_completed"],
            "rows": [[29936]], "row_count": 1, "truncated": False, "value": 29936}
    sql = "SELECT count(*) AS users FROM users"
    return [("Counting all users.", [], [(sql, {"columns": ["users"], "rows": [[50000]], "row_count": 1, "truncated": False,
                                                 "duration_ms": 2, "masked": []})])], {
        "text": "This counts every user.", "sql": sql, "columns": ["users"], "rows": [[50000]], "row_count": 1,
        "truncated": False, "value": 50000}


class AskScripts:
    """Mixed into fake_server.Fake (which sets `self.asks = {}` and the `asks` topic)."""

    def ask_summary(self, a):
        return {k: a[k] for k in ("id", "question", "source", "status", "author", "created_at", "updated_at")}

    async def ask_status(self, a, status, reason=None):
        a["status"] = status
        a["updated_at"] = now_ms()
        data = {"status": status}
        if reason:
            data["reason"] = reason
        await self.publish(a["topic"], "status_changed", data)
        await self.publish("asks", "ask", self.ask_summary(a))

    async def create_ask(self, author, question, source):
        aid = "a-" + "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(10))
        topic = f"ask:{aid}"
        self.topics[topic] = []
        a = {"id": aid, "topic": topic, "question": question, "source": source, "status": "thinking", "author": author,
             "created_at": now_ms(), "updated_at": now_ms(), "steps": [], "answer": None, "mark": None}
        self.asks[aid] = a
        await self.publish(topic, "ask_created", {"id": aid, "question": question, "source": source, "author": author})
        await self.publish(topic, "status_changed", {"status": "thinking"})
        await self.publish("asks", "ask", self.ask_summary(a))
        asyncio.get_running_loop().create_task(self.run_ask(a))
        return a

    async def run_ask(self, a):
        t = a["topic"]
        rounds, final = answer_for(a["question"])
        await self.pause(0.3)
        for n, (thinking, tools, queries) in enumerate(rounds, start=1):
            # The model's text streams (ephemeral), a few characters at a time.
            for i in range(0, len(thinking), 12):
                await self.pause(0.03)
                await self.publish(t, "ask_thinking", {"round": n, "text": thinking[i:i + 12]}, ephemeral=True)
            for name, data in tools:
                await self.publish(t, "tool_called", {"round": n, "name": name, "input": data})
            for sql, outcome in queries:
                await self.pause(0.2)
                await self.publish(t, "sql_proposed", {"round": n, "sql": sql, "source": a["source"]})
                await self.pause(0.2)
                if "code" in outcome:
                    await self.publish(t, "sql_refused", {"round": n, "sql": sql, **outcome})
                    a["steps"].append({"round": n, "sql": sql, "refusal": outcome})
                else:
                    shown = dict(outcome, rows=outcome["rows"][:50])
                    await self.publish(t, "sql_result", {"round": n, **shown})
                    a["steps"].append({"round": n, "sql": sql, "result": {"row_count": outcome["row_count"]}})
        await self.pause(0.2)
        if "failed" in final:
            await self.publish(t, "ask_failed", {"reason": final["failed"]})
            await self.ask_status(a, "failed", final["failed"])
            return
        a["answer"] = final
        await self.publish(t, "answer", final)
        await self.ask_status(a, "answered")

    async def ask_command(self, s, msg):
        t = msg.get("type")
        if t == "ask":
            if s.role not in ("admin", "bot"):
                raise AskRefusal("forbidden", f"role {s.role} may not ask")
            question = msg.get("question")
            if not isinstance(question, str) or not question.strip():
                raise AskRefusal("invalid_message", "field 'question' must be a non-empty string")
            if len(question) > 4000:
                raise AskRefusal("invalid_message", f"question has {len(question)} characters; at most 4000")
            names = [src["name"] for src in SOURCES]
            source = msg.get("source") or "users"
            if source not in names:
                raise AskRefusal("invalid_message", f"unknown source '{source}'; configured: {', '.join(names)}")
            a = await self.create_ask(s.principal, question.strip(), source)
            return {"ask": a["id"], "status": "thinking"}
        # mark_answer
        if s.role != "admin":
            raise AskRefusal("forbidden", f"role {s.role} may not mark answers")
        a = self.asks.get(msg.get("ask"))
        if a is None:
            raise AskRefusal("not_found", f"no ask '{msg.get('ask')}'")
        if a["status"] != "answered":
            raise AskRefusal("invalid_state", f"ask {a['id']} has no answer yet ({a['status']})")
        if not isinstance(msg.get("correct"), bool):
            raise AskRefusal("invalid_message", "field 'correct' must be a boolean")
        comment = msg.get("comment", "")
        if not isinstance(comment, str) or len(comment) > 2000:
            raise AskRefusal("invalid_message", "field 'comment' must be a string of at most 2000 characters")
        a["mark"] = {"correct": msg["correct"], "comment": comment, "principal": s.principal}
        return {"ask": a["id"], "status": a["status"]}

    def ask_rest(self, path, query):
        """(status, body) for GET /api/v1/sources and /api/v1/asks…, or None when the path is not ours."""
        parts = path.split("/")[3:]   # ['asks', id?, 'events'?] or ['sources']
        if parts == ["sources"]:
            return 200, {"sources": SOURCES}
        if parts == ["asks"]:
            asks = sorted(self.asks.values(), key=lambda a: a["created_at"], reverse=True)
            return 200, {"asks": [self.ask_summary(a) for a in asks[:int(query.get("limit", "50"))]]}
        if len(parts) >= 2 and parts[0] == "asks":
            a = self.asks.get(parts[1])
            if a is None:
                return 404, {"code": "not_found", "message": f"no ask '{parts[1]}'"}
            if len(parts) == 2:
                return 200, self.ask_summary(a) | {"steps": a["steps"], "answer": a["answer"]}
            if parts[2:] == ["events"]:
                since = int(query.get("since", "0"))
                events = self.topics[a["topic"]]
                return 200, {"topic": a["topic"], "events": events[since:since + int(query.get("limit", "500"))], "head": len(events)}
        return None
