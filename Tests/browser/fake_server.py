#!/usr/bin/env python3
"""fake_server.py: a tiny stand-in for `medic serve` — serves web-static/ and speaks enough medic.v1 to drive the page.

For developing the page and for its own checks (test_page_fake.py); the required browser tests
run against the real server. Implements (protocol/README.md): hello/welcome (close 4001 on a
bad token), subscribe with since replay / since_beyond_head / not_found, unsubscribe, presence
per proposal topic, approve/reject/request_changes with revision binding, roles, author rule,
quorum and idempotent ids, auto_fix, rollback, comment, and a scripted pipeline run following
the typical run of README §4 (with ephemeral fix_delta). Responses to static files carry the
same Content-Security-Policy as Medic.

Bugs (fake_bugs.py): report_bug / choose_approach / resume_bug, the `bugs` and `bug:<id>` topics, GET /api/v1/bugs…
and /api/v1/repos, scripted bug runs.

Asks (fake_asks.py): ask / mark_answer, the `asks` and `ask:<id>` topics, GET /api/v1/sources and /api/v1/asks…,
scripted asks chosen by the question (the Tokyo question streams, has one refused SQL and answers 236).

Control endpoints (GET, for tests): /_fake/bug?script=full|unreproduced|interrupt&hostile=1&title=…&evidence=… (a
bug run; answers {"bug": id}), /_fake/bugs (JSON state of the bugs), /_fake/ask?question=…&author=… (an ask;
answers {"ask": id}), /_fake/asks (JSON state of the asks: status, mark, head), /_fake/propose?manual=1&unfixable=1&author=…&title=…, /_fake/bulk?n=2000 (a
proposal with n stored events, no pipeline), /_fake/drop (closes every
socket with 1001, keeps the store — a "restart"), /_fake/pause and /_fake/resume (hold the
scripted pipeline), /_fake/state (JSON).

Usage: python3 fake_server.py --port 8765 [--quorum 2] [--demo] [--speed 1.0]
"""

import argparse
import asyncio
import json
import mimetypes
import os
import random
import string
import time
from http import HTTPStatus

from websockets.asyncio.server import serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Response

from fake_asks import AskRefusal, AskScripts
from fake_bugs import BugRefusal, BugScripts

CSP = ("default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; "
       "style-src 'self'; script-src 'self'; frame-ancestors 'none'")
ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "web-static"))

TOKENS = {
    "tok-alice": ("alice", "admin"),
    "tok-bob": ("bob", "admin"),
    "tok-victor": ("victor", "viewer"),
    "tok-fixbot": ("fixbot", "bot"),
}

BUGGY = "def page(items, n, size):\n    return items[n * size:(n + 1) * size + 1]\n"
FIXED = "def page(items, n, size):\n    return items[n * size:(n + 1) * size]\n"
TEST = ("from app.pager import page\n\n\ndef test_first_page():\n    assert page(list(range(10)), 0, 3) == [0, 1, 2]\n\n\n"
        "def test_second_page():\n    assert page(list(range(10)), 1, 3) == [3, 4, 5]\n")


def now_ms():
    return int(time.time() * 1000)


class Fake(BugScripts, AskScripts):
    def __init__(self, quorum, speed):
        self.quorum = quorum
        self.speed = speed
        self.topics = {"proposals": [], "bugs": [], "asks": [], "incidents": []}  # topic -> stored events (no incidents here)
        self.subs = {}                        # topic -> set of Session
        self.presence = {}                    # topic -> {principal: {"role", "since", "sessions": set}}
        self.proposals = {}
        self.bugs = {}                        # fake_bugs.py
        self.asks = {}                        # fake_asks.py
        self.applied_ids = {}                 # (principal, id) -> ack
        self.sessions = set()
        self.running = asyncio.Event()
        self.running.set()

    # ---- events ----

    async def publish(self, topic, kind, data, ephemeral=False):
        ev = {"type": "event", "topic": topic, "ts": now_ms(), "kind": kind, "data": data}
        if not ephemeral:
            ev["seq"] = len(self.topics[topic]) + 1
            self.topics[topic].append(ev)
        text = json.dumps(ev)
        for s in list(self.subs.get(topic, ())):
            s.deliver(topic, ev, text)

    def summary(self, p):
        return {k: p[k] for k in ("id", "title", "status", "revision", "attempt", "max_attempts", "author", "repo")} | {
            "updated_at": p["updated_at"]}

    async def set_status(self, p, status, reason=None):
        p["status"] = status
        p["updated_at"] = now_ms()
        data = {"status": status, "revision": p["revision"], "attempt": p["attempt"], "max_attempts": p["max_attempts"]}
        if reason:
            data["reason"] = reason
        await self.publish(p["topic"], "status_changed", data)
        await self.publish("proposals", "proposal", self.summary(p))

    async def pause(self, seconds):
        await asyncio.sleep(seconds * self.speed)
        await self.running.wait()

    # ---- the scripted pipeline ----

    async def create(self, author, title, description, repo, changes, manual=False, unfixable=False):
        pid = "p_" + "".join(random.choice(string.ascii_letters + string.digits) for _ in range(8))
        topic = f"proposal:{pid}"
        self.topics[topic] = []
        p = {"id": pid, "topic": topic, "title": title, "description": description, "repo": repo, "author": author,
             "status": "proposed", "revision": 1, "attempt": 0, "max_attempts": 3, "created_at": now_ms(),
             "updated_at": now_ms(), "reviews": {}, "manual": manual, "unfixable": unfixable, "files": {c["path"]: c.get("content") for c in changes}}
        self.proposals[pid] = p
        info = {k: p[k] for k in ("id", "title", "description", "repo", "author", "status", "revision", "max_attempts", "created_at")}
        await self.publish(topic, "proposal_created", {"proposal": info, "revision": {"number": 1, "changes": changes}})
        await self.publish("proposals", "proposal", self.summary(p))
        asyncio.get_running_loop().create_task(self.test_cycle(p))
        return p

    async def test_cycle(self, p):
        rev = p["revision"]
        await self.pause(0.3)
        await self.set_status(p, "deploying")
        await self.pause(0.3)
        await self.publish(p["topic"], "sandbox_ready", {"revision": rev, "isolation": "bwrap", "duration_ms": 41, "visible": [{"path": "/usr", "mode": "ro"}, {"path": "/tmp", "mode": "rw"}]})
        await self.set_status(p, "testing")
        await self.publish(p["topic"], "test_started", {"revision": rev, "command": "python -m pytest -q"})
        passing = p["files"].get("app/pager.py") == FIXED
        for i in range(12):
            await self.pause(0.12)
            await self.publish(p["topic"], "test_output", {"revision": rev, "stream": "stdout",
                               "lines": [f"collecting … step {i + 1}/12", f"tests/test_pager.py::test_{i} PASSED"]})
        if not passing:
            await self.publish(p["topic"], "test_output", {"revision": rev, "stream": "stdout", "lines": [
                "F.", "FAILED tests/test_pager.py::test_second_page - assert [3, 4, 5, 6] == [3, 4, 5]"]})
            await self.publish(p["topic"], "test_output", {"revision": rev, "stream": "stderr", "lines": ["1 failed, 1 passed in 0.81s"]})
        await self.pause(0.2)
        await self.publish(p["topic"], "test_finished", {"revision": rev, "exit_code": 0 if passing else 1,
                           "passed": 2 if passing else 1, "failed": 0 if passing else 1, "duration_ms": 812,
                           "timed_out": False, "truncated": False})
        if passing:
            await self.set_status(p, "tests_passed")
            await self.set_status(p, "awaiting_review")
            return
        await self.set_status(p, "tests_failed")
        await self.publish(p["topic"], "analysis", {"revision": rev, "category": "assertion", "categories": ["assertion"],
                           "root_cause": "page() returns one element too many: the slice end has + 1.",
                           "locations": [{"file": "app/pager.py", "line": 2}],
                           "messages": ["assert [3, 4, 5, 6] == [3, 4, 5]"]})
        if p["manual"]:
            return  # waits for auto_fix
        await self.fix(p)

    async def fix(self, p, comment=None):
        await self.set_status(p, "analyzing")
        await self.pause(0.2)
        p["attempt"] += 1
        await self.set_status(p, "fixing")
        await self.publish(p["topic"], "fix_started", {"revision": p["revision"], "attempt": p["attempt"], "max_attempts": p["max_attempts"]})
        text = ("The failing test expects page 1 of size 3 to be [3, 4, 5], but page() returns four items. "
                "The slice end is (n + 1) * size + 1, one past the page.\nRemoving the stray \"+ 1\" fixes it." +
                (f" Reviewer asked: {comment}" if comment else ""))
        changes = [{"path": "app/pager.py", "action": "modify", "content": FIXED}]
        if p["revision"] == 1:
            changes.append({"path": "tests/test_pager.py", "action": "create", "content": TEST})
            changes.append({"path": "app/old_pager.py", "action": "delete"})
        if p["unfixable"]:
            text, changes = "The failure is in a service the sandbox cannot reach; no code change fixes it.", []
        # Like Medic, the deltas are the model's raw reply: JSON, cut anywhere (inside escapes too).
        reply = json.dumps({"unfixable": p["unfixable"], "explanation": text, "changes": changes})
        for i in range(0, len(reply), 11):
            await self.pause(0.03)
            await self.publish(p["topic"], "fix_delta", {"attempt": p["attempt"], "text": reply[i:i + 11]}, ephemeral=True)
        if p["unfixable"]:
            await self.publish(p["topic"], "unfixable", {"reason": "llm_gave_up", "explanation": text})
            await self.set_status(p, "unfixable")
            return
        p["revision"] += 1
        for c in changes:
            p["files"][c["path"]] = c.get("content")
        await self.publish(p["topic"], "fix_generated", {"attempt": p["attempt"], "revision": p["revision"],
                           "explanation": "Removed the stray + 1 from the slice end.", "changes": changes})
        await self.test_cycle(p)

    async def create_bulk(self, n):
        """A proposal with a long history (n timeline events: comments and reviews' chatter), no pipeline."""
        pid = "p_bulk" + "".join(random.choice(string.digits) for _ in range(6))
        topic = f"proposal:{pid}"
        self.topics[topic] = []
        p = {"id": pid, "topic": topic, "title": f"A long discussion ({n} events)", "description": "", "repo": "demo-app",
             "author": "fixbot", "status": "awaiting_review", "revision": 1, "attempt": 0, "max_attempts": 3,
             "created_at": now_ms(), "updated_at": now_ms(), "reviews": {}, "manual": True, "unfixable": False, "files": {}}
        self.proposals[pid] = p
        info = {k: p[k] for k in ("id", "title", "description", "repo", "author", "status", "revision", "max_attempts", "created_at")}
        await self.publish(topic, "proposal_created", {"proposal": info, "revision": {"number": 1, "changes": [
            {"path": "app/pager.py", "action": "modify", "content": BUGGY}]}})
        for i in range(n - 1):
            who = ("alice", "bob", "victor")[i % 3]
            await self.publish(topic, "comment", {"principal": who, "text": f"Comment {i + 1}: looked at line {i % 97} again."})
        await self.publish("proposals", "proposal", self.summary(p))
        return pid

    async def apply(self, p):
        await self.set_status(p, "approved")
        await self.pause(0.2)
        await self.set_status(p, "applying")
        await self.pause(0.2)
        approvers = p["reviews"][p["revision"]]["approvals"]
        p["commit"] = "%040x" % random.getrandbits(160)
        await self.publish(p["topic"], "applied", {"revision": p["revision"], "commit": p["commit"], "approvers": approvers})
        await self.set_status(p, "applied")

    # ---- commands ----

    async def command(self, s, msg):
        t = msg.get("type")
        if t == "subscribe":
            return await self.subscribe(s, msg)
        if t == "unsubscribe":
            self.leave(s, msg.get("topic"))
            return {"topic": msg.get("topic")}
        if t == "stats":
            return {"stats": {"connections": len(self.sessions)}}
        key = (s.principal, msg.get("id"))
        if msg.get("id") is not None and key in self.applied_ids:
            return self.applied_ids[key]
        ack = await self.mutate(s, msg)
        if msg.get("id") is not None:
            self.applied_ids[key] = ack
        return ack

    async def mutate(self, s, msg):
        t = msg.get("type")
        if t in ("report_bug", "choose_approach", "resume_bug"):
            try:
                return await self.bug_command(s, msg)
            except BugRefusal as r:
                raise Refusal(r.code, r.message)
        if t in ("ask", "mark_answer"):
            try:
                return await self.ask_command(s, msg)
            except AskRefusal as r:
                raise Refusal(r.code, r.message)
        if t not in ("approve", "reject", "request_changes", "auto_fix", "rollback", "comment", "propose"):
            raise Refusal("unknown_type", f"unknown type '{t}'")
        if t == "propose":
            if s.role not in ("admin", "bot"):
                raise Refusal("forbidden", "only admins and bots may propose")
            p = await self.create(s.principal, msg["title"], msg.get("description", ""), msg.get("repo"), msg["changes"])
            return {"proposal": p["id"], "revision": 1}
        p = self.proposals.get(msg.get("proposal"))
        if p is None:
            raise Refusal("not_found", f"no proposal '{msg.get('proposal')}'")
        if t == "comment":
            if not msg.get("text"):
                raise Refusal("invalid_message", "missing field 'text' (a string)")
            await self.publish(p["topic"], "comment", {"principal": s.principal, "text": msg["text"]})
            return {"proposal": p["id"], "seq": len(self.topics[p["topic"]])}
        if s.role != "admin":
            raise Refusal("forbidden", f"role {s.role} may not {t}")
        if t == "auto_fix":
            if p["status"] != "tests_failed" or p["attempt"] >= p["max_attempts"]:
                raise Refusal("invalid_state", f"auto_fix does not apply in status {p['status']}")
            asyncio.get_running_loop().create_task(self.fix(p))
            return {"proposal": p["id"], "status": "fixing"}
        if t == "rollback":
            if p["status"] != "applied":
                raise Refusal("invalid_state", f"rollback does not apply in status {p['status']}")
            await self.publish(p["topic"], "rolled_back", {"commit": p["commit"], "revert_commit": "%040x" % random.getrandbits(160)})
            await self.set_status(p, "rolled_back")
            return {"proposal": p["id"], "status": "rolled_back"}
        # reviews
        rev = msg.get("revision")
        if not isinstance(rev, int):
            raise Refusal("invalid_message", "field 'revision' must be an integer")
        if rev != p["revision"]:
            raise Refusal("stale_revision", f"revision {rev} is not the current revision {p['revision']}")
        if p["status"] != "awaiting_review":
            raise Refusal("invalid_state", f"reviews are accepted only in awaiting_review, not {p['status']}")
        r = p["reviews"].setdefault(rev, {"approvals": [], "by": set()})
        if s.principal in r["by"]:
            raise Refusal("already_reviewed", f"{s.principal} already reviewed revision {rev}")
        if t != "approve" and not msg.get("comment"):
            raise Refusal("invalid_message", "missing field 'comment' (a string)")
        if t == "approve" and s.principal == p["author"]:
            raise Refusal("forbidden", "the author cannot approve")
        r["by"].add(s.principal)
        verdict = t
        if t == "approve":
            r["approvals"].append(s.principal)
        data = {"revision": rev, "principal": s.principal, "verdict": verdict, "approvals": list(r["approvals"]), "quorum": self.quorum}
        if msg.get("comment"):
            data["comment"] = msg["comment"]
        await self.publish(p["topic"], "review", data)
        if t == "approve":
            if len(r["approvals"]) >= self.quorum:
                p["status"] = "approved"
                asyncio.get_running_loop().create_task(self.apply(p))
                return {"proposal": p["id"], "revision": rev, "status": "approved", "approvals": list(r["approvals"]), "quorum": self.quorum}
            return {"proposal": p["id"], "revision": rev, "status": p["status"], "approvals": list(r["approvals"]), "quorum": self.quorum}
        if t == "reject":
            await self.set_status(p, "rejected")
            return {"proposal": p["id"], "revision": rev, "status": "rejected"}
        await self.set_status(p, "changes_requested")
        asyncio.get_running_loop().create_task(self.fix(p, msg["comment"]))
        return {"proposal": p["id"], "revision": rev, "status": "changes_requested"}

    async def subscribe(self, s, msg):
        topic = msg.get("topic")
        if topic not in self.topics:
            raise Refusal("not_found", f"no topic '{topic}'")
        since = msg.get("since")
        head = len(self.topics[topic])
        if since is not None and since > head:
            raise Refusal("since_beyond_head", f"since {since} is beyond the topic's head {head}")
        s.send({"type": "ack", "id": msg.get("id"), "topic": topic, "head": head} if msg.get("id") else {"type": "ack", "topic": topic, "head": head})
        s.cursor[topic] = head if since is None else since
        self.subs.setdefault(topic, set()).add(s)
        if topic.startswith("proposal:"):
            self.join(s, topic)
        # Replay from the store; events published meanwhile are queued by deliver() (cursor logic).
        for ev in self.topics[topic][s.cursor[topic]:]:
            s.deliver(topic, ev, json.dumps(ev))
        return None  # ack already sent (it precedes presence and replay)

    def join(self, s, topic):
        members = self.presence.setdefault(topic, {})
        m = members.get(s.principal)
        if m:
            m["sessions"].add(s)
            s.send({"type": "presence", "topic": topic, "members": self.members(topic)})
            return
        members[s.principal] = {"role": s.role, "since": now_ms(), "sessions": {s}}
        self.broadcast_presence(topic)

    def leave(self, s, topic):
        self.subs.get(topic, set()).discard(s)
        s.cursor.pop(topic, None)
        m = self.presence.get(topic, {}).get(s.principal)
        if m and s in m["sessions"]:
            m["sessions"].discard(s)
            if not m["sessions"]:
                del self.presence[topic][s.principal]
                self.broadcast_presence(topic)

    def members(self, topic):
        ms = [{"principal": k, "role": v["role"], "since": v["since"]} for k, v in self.presence.get(topic, {}).items()]
        return sorted(ms, key=lambda m: (m["since"], m["principal"]))

    def broadcast_presence(self, topic):
        msg = {"type": "presence", "topic": topic, "members": self.members(topic)}
        for s in self.subs.get(topic, ()):
            s.send(msg)


class Refusal(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


class Session:
    def __init__(self, fake, ws):
        self.fake = fake
        self.ws = ws
        self.principal = None
        self.role = None
        self.cursor = {}
        self.queue = asyncio.Queue()

    def send(self, obj):
        self.queue.put_nowait(json.dumps(obj))

    def deliver(self, topic, ev, text):
        seq = ev.get("seq")
        if seq is None:
            self.queue.put_nowait(text)
            return
        if topic in self.cursor and seq == self.cursor[topic] + 1:
            self.cursor[topic] = seq
            self.queue.put_nowait(text)


async def handler(fake, ws):
    s = Session(fake, ws)

    async def writer():
        while True:
            text = await s.queue.get()
            await ws.send(text)

    w = asyncio.get_running_loop().create_task(writer())
    try:
        try:
            first = json.loads(await asyncio.wait_for(ws.recv(), 10))
        except (asyncio.TimeoutError, ValueError):
            await ws.close(4001, "authentication timed out")
            return
        who = TOKENS.get(first.get("token")) if first.get("type") == "hello" else None
        if not who:
            await ws.close(4001, "bad token")
            return
        s.principal, s.role = who
        fake.sessions.add(s)
        s.send({"type": "welcome", "principal": s.principal, "role": s.role, "protocol": "medic.v1"})
        if first.get("id"):
            s.send({"type": "ack", "id": first["id"]})
        async for text in ws:
            try:
                msg = json.loads(text)
            except ValueError:
                s.send({"type": "error", "code": "bad_json", "message": "not JSON"})
                continue
            try:
                ack = await fake.command(s, msg)
                if ack is not None:
                    out = {"type": "ack", **ack}
                    if msg.get("id") is not None:
                        out["id"] = msg["id"]
                    s.send(out)
            except Refusal as r:
                out = {"type": "error", "code": r.code, "message": r.message}
                if msg.get("id") is not None:
                    out["id"] = msg["id"]
                s.send(out)
    except ConnectionClosed:
        pass
    finally:
        fake.sessions.discard(s)
        for topic in list(s.cursor):
            fake.leave(s, topic)
        # Let queued frames go out before the socket closes (e.g. a close right after an error).
        await asyncio.sleep(0)
        w.cancel()


def static_response(path):
    rel = path.split("?", 1)[0].lstrip("/") or "index.html"
    full = os.path.normpath(os.path.join(ROOT, rel))
    if not full.startswith(ROOT) or not os.path.isfile(full):
        return Response(404, "Not Found", Headers({"Content-Type": "text/plain"}), b"not found")
    ctype = mimetypes.guess_type(full)[0] or "application/octet-stream"
    if full.endswith(".js"):
        ctype = "text/javascript"
    with open(full, "rb") as f:
        body = f.read()
    headers = Headers({"Content-Type": ctype, "Content-Length": str(len(body)), "Cache-Control": "no-cache",
                       "Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Connection": "close"})
    return Response(200, "OK", headers, body)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=8765)
    ap.add_argument("--quorum", type=int, default=1)
    ap.add_argument("--speed", type=float, default=1.0, help="multiplies every scripted delay")
    ap.add_argument("--demo", action="store_true", help="start a demo proposal (and a manual-mode one) at once")
    args = ap.parse_args()

    async def run():
        fake = Fake(args.quorum, args.speed)
        loop = asyncio.get_running_loop()
        ws_server = None

        async def process_request(connection, request):
            path = request.path
            if path.startswith("/ws"):
                return None
            if path.startswith("/api/v1/meta"):
                # Medic's own answer (MetaTests checks the file against the server, so it cannot drift).
                with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "meta.json"), "rb") as f:
                    body = f.read()
                return Response(200, "OK", Headers({"Content-Type": "application/json", "Content-Length": str(len(body)),
                                                    "Connection": "close"}), body)
            if path.startswith("/api/v1/bugs") or path.startswith("/api/v1/repos") or path.startswith("/api/v1/asks") \
                    or path.startswith("/api/v1/sources") or path.startswith("/api/v1/incidents"):
                from urllib.parse import parse_qs, urlsplit
                parts = urlsplit(path)
                auth = request.headers.get("Authorization", "")
                answer = (401, {"code": "unauthenticated", "message": "no valid token"}) \
                    if TOKENS.get(auth.removeprefix("Bearer ")) is None else \
                    (fake.bug_rest(parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()})
                     or fake.ask_rest(parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}))
                if answer is None and parts.path == "/api/v1/incidents":
                    answer = (200, {"incidents": []})   # the fake has no monitor: the page's banner stays hidden
                if answer is None:
                    answer = (404, {"code": "not_found", "message": "no such resource"})
                body = json.dumps(answer[1]).encode()
                return Response(answer[0], HTTPStatus(answer[0]).phrase, Headers({
                    "Content-Type": "application/json", "Content-Length": str(len(body)), "Connection": "close"}), body)
            if path.startswith("/_fake/"):
                from urllib.parse import parse_qs, urlsplit
                parts = urlsplit(path)
                q = {k: v[0] for k, v in parse_qs(parts.query).items()}
                result = {}
                if parts.path == "/_fake/propose":
                    p = await fake.create(q.get("author", "fixbot"), q.get("title", "Fix off-by-one in pager"),
                                          "Page 2 repeats the last row of page 1.", "demo-app",
                                          [{"path": "app/pager.py", "action": "modify", "content": BUGGY},
                                           {"path": "app/old_pager.py", "action": "create", "content": "OLD = True\n"}],
                                          manual=q.get("manual") == "1", unfixable=q.get("unfixable") == "1")
                    result = {"proposal": p["id"]}
                elif parts.path == "/_fake/bulk":
                    result = {"proposal": await fake.create_bulk(int(q.get("n", "2000")))}
                elif parts.path == "/_fake/bug":
                    b = await fake.create_bug(q.get("author", "fixbot"), q.get("repo", "demo-app"),
                                              q.get("title", "Any password signs in an active user"),
                                              q.get("description", "Signing in with a wrong password works for active users."),
                                              q.get("severity", "high"), [q["evidence"]] if "evidence" in q else [
                                                  "Traceback (most recent call last):\n  File \"app/auth.py\", line 45, in check"],
                                              int(q.get("approaches", "3")), q.get("script", "full"), q.get("hostile") == "1")
                    result = {"bug": b["id"]}
                elif parts.path == "/_fake/ask":
                    a = await fake.create_ask(q.get("author", "fixbot"), q.get("question", "How many users completed KYC?"),
                                              q.get("source", "users"))
                    result = {"ask": a["id"]}
                elif parts.path == "/_fake/asks":
                    result = {aid: {"status": a["status"], "mark": a["mark"], "head": len(fake.topics[a["topic"]])}
                              for aid, a in fake.asks.items()}
                elif parts.path == "/_fake/bugs":
                    result = {bid: {"status": b["status"], "proposal": b["proposal"], "chosen": b["chosen_approach"],
                                    "head": len(fake.topics[b["topic"]])} for bid, b in fake.bugs.items()}
                elif parts.path == "/_fake/drop":
                    for s in list(fake.sessions):
                        loop.create_task(s.ws.close(1001, "restarting"))
                    result = {"dropped": len(fake.sessions)}
                elif parts.path == "/_fake/pause":
                    fake.running.clear()
                elif parts.path == "/_fake/resume":
                    fake.running.set()
                elif parts.path == "/_fake/state":
                    result = {pid: {"status": p["status"], "revision": p["revision"], "head": len(fake.topics[p["topic"]])}
                              for pid, p in fake.proposals.items()}
                body = json.dumps(result).encode()
                return Response(200, "OK", Headers({"Content-Type": "application/json", "Content-Length": str(len(body)),
                                                    "Connection": "close"}), body)
            return static_response(path)

        ws_server = await serve(lambda ws: handler(fake, ws), "127.0.0.1", args.port,
                                subprotocols=["medic.v1"], process_request=process_request)
        print(f"fake medic on http://127.0.0.1:{args.port}/#token=tok-alice", flush=True)
        if args.demo:
            await fake.create("fixbot", "Fix off-by-one in pager", "Page 2 repeats the last row of page 1.", "demo-app",
                              [{"path": "app/pager.py", "action": "modify", "content": BUGGY},
                               {"path": "app/old_pager.py", "action": "create", "content": "OLD = True\n"}])
            await fake.create("fixbot", "Manual mode: wait for Auto-Fix", "Stops in tests_failed.", "demo-app",
                              [{"path": "app/pager.py", "action": "modify", "content": BUGGY}], manual=True)
        await ws_server.serve_forever()

    asyncio.run(run())


if __name__ == "__main__":
    main()
