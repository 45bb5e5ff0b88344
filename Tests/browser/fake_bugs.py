"""fake_bugs.py: the bug workflow of fake_server.py (bug-spec: `report_bug`, `choose_approach`, `resume_bug`, the
`bugs` and `bug:<id>` topics, GET /api/v1/bugs[/<id>[/events]]) and scripted bug runs.

A mixin of fake_server.Fake: it uses the fake's `topics`, `publish`, `pause`, `proposals` and `set_status`.

Scripts (`/_fake/bug?script=…`, and `report_bug` with a title holding `[unreproduced]` or `[interrupt]`):
- `full`: analysed (location app/auth.py:45), reproduced, three approaches that overlap in time — #1 fails its tests,
  writes a second attempt (streamed as fix_delta) that breaks `tests/test_session.py::test_logout_clears_token`
  and fails; #2 qualifies with the smallest change; #3 qualifies with a bigger one — ranked, #2 wins and is
  proposed (a proposal awaiting review).
- `unreproduced`: the reproducer is rejected twice (flagged not reproduced), every approach fails: `bug_unfixed`.
- `interrupt`: stops while reproducing as `interrupted` (a restart); `resume_bug` continues as `full` does.
With `hostile=1`, the analysis, a strategy, the test output and the streamed fix carry `<img src=x onerror=…>`.
"""

import asyncio
import json
import random
import string
import time

REPOS = ["demo-app", "billing"]
HOSTILE = '<img src=x onerror="window.pwned=1">'
AUTH_BUGGY = "def check(user, password):\n    if user.password_hash == hash(password):\n        return True\n    return user.active\n"
AUTH_MIN = "def check(user, password):\n    if user.password_hash == hash(password):\n        return user.active\n    return False\n"
AUTH_BIG = ("def check(user, password):\n    if not user.active:\n        return False\n"
            "    return user.password_hash == hash(password)\n")
SESSION_BIG = "def logout(session):\n    session.token = None\n    session.user = None\n"
REPRO_TEST = ("from app.auth import check\n\n\ndef test_wrong_password_is_refused():\n"
              "    assert not check(User(active=True), 'wrong')\n")


def now_ms():
    return int(time.time() * 1000)


class BugRefusal(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


APPROACHES = {
    1: {"strategy": "Reset the session token on every check", "summary": "Clear the token in check() and logout()", "outcome": "fail", "files": 2, "lines": 9,
        "changes": [{"path": "app/auth.py", "action": "modify", "content": AUTH_MIN},
                    {"path": "app/session.py", "action": "modify", "content": "def logout(session):\n    pass\n"}]},
    2: {"strategy": "Return the active flag only after the password matched", "summary": "Move the active check under the password check", "outcome": "pass", "files": 1, "lines": 2,
        "changes": [{"path": "app/auth.py", "action": "modify", "content": AUTH_MIN}]},
    3: {"strategy": "Check the account first, then the password; clear the session on logout", "summary": "Reorder the checks and harden logout", "outcome": "pass",
        "files": 3, "lines": 14,
        "changes": [{"path": "app/auth.py", "action": "modify", "content": AUTH_BIG},
                    {"path": "app/session.py", "action": "modify", "content": SESSION_BIG},
                    {"path": "tests/test_auth_inactive.py", "action": "create",
                     "content": "def test_inactive_user_is_refused():\n    assert True\n"}]},
}


class BugScripts:
    """Mixed into fake_server.Fake."""

    # ---- state ----

    def bug_summary(self, b):
        return {k: b[k] for k in ("id", "title", "repo", "severity", "status", "reproduced", "approaches", "proposal",
                                  "chosen_approach", "author", "created_at", "updated_at")}

    def approach_row(self, b, n):
        """An approach as Medic's BugMachine.approachJSON writes it (detail `approach_details`, ranking rows)."""
        a = b["approach_state"][n]
        plan = APPROACHES[n]
        done = a["status"] in ("qualified", "failed")
        ok = a["status"] == "qualified"
        final = {}
        for _, changes in sorted(a["revisions"].items()):
            for c in changes:
                final[c["path"]] = c
        return {"approach": n, "strategy": a["strategy"], "summary": plan["summary"], "status": a["status"], "qualified": ok,
                "reason": a.get("reason"), "duplicate_of": None, "files": plan["files"] if done else None,
                "lines": plan["lines"] if done else None, "attempts": a["attempt"], "max_attempts": 2,
                "tests_passed": (12 if ok else 11) if done else None, "tests_failed": (0 if ok else 1) if done else None,
                "duration_ms": {1: 910, 2: 840, 3: 1010}[n] if ok else None, "base_duration_ms": 800,
                "reproducer_passes": ok if b["reproduced"] else None,
                "breaking": [] if ok or not done else ["tests/test_session.py::test_logout_clears_token"],
                "changes": list(final.values())}

    def bug_detail(self, b):
        return self.bug_summary(b) | {"report": b["report"], "analysis": b["analysis"], "reproducer": b["reproducer"],
                                      "reproducer_reason": b.get("reproducer_reason"), "base_duration_ms": 800,
                                      "approach_details": [self.approach_row(b, n) for n in sorted(b["approach_state"])],
                                      "ranking": b["ranking"], "proposals": b.get("proposals", [])}

    async def bug_status(self, b, status, reason=None):
        b["status"] = status
        b["updated_at"] = now_ms()
        data = {"status": status}
        if reason:
            data["reason"] = reason
        await self.publish(b["topic"], "status_changed", data)
        await self.publish("bugs", "bug", self.bug_summary(b))

    async def create_bug(self, author, repo, title, description, severity="medium", evidence=(), approaches=3,
                         script="full", hostile=False):
        bid = "b-" + "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(10))
        topic = f"bug:{bid}"
        self.topics[topic] = []
        report = {"id": bid, "repo": repo, "title": title, "description": description, "severity": severity,
                  "evidence": list(evidence), "approaches": approaches, "author": author}
        b = {"id": bid, "topic": topic, "title": title, "repo": repo, "severity": severity, "status": "analyzing",
             "reproduced": None, "approaches": approaches, "proposal": None, "chosen_approach": None, "author": author,
             "created_at": now_ms(), "updated_at": now_ms(), "report": report, "analysis": None, "reproducer": None,
             "ranking": None, "approach_state": {}, "script": script, "hostile": hostile}
        self.bugs[bid] = b
        await self.publish(topic, "bug_reported", report)
        await self.publish(topic, "status_changed", {"status": "analyzing"})
        await self.publish("bugs", "bug", self.bug_summary(b))
        asyncio.get_running_loop().create_task(self.run_bug(b))
        return b

    # ---- the scripted run ----

    async def run_bug(self, b, resume=False):
        t = b["topic"]
        h = b["hostile"]
        if not resume:
            await self.pause(0.5)
            b["analysis"] = {
                "summary": "check() returns the account's active flag when the password is wrong, so any active user "
                           "signs in with any password." + (f" {HOSTILE}" if h else ""),
                "locations": [{"file": "app/auth.py", "line": 45, "why": "the fall-through returns user.active"},
                              {"file": "app/session.py", "line": 12, "why": "the session trusts check()"}],
                "causes": ["the fall-through branch returns user.active instead of False"],
                "located": ["app/auth.py", "app/session.py"]}
            # Like Medic, the model's reply streams first (ephemeral fix_delta with a purpose), then the event.
            reply = json.dumps({k: b["analysis"][k] for k in ("summary", "locations", "causes")})
            for i in range(0, len(reply), 24):
                await self.pause(0.02)
                await self.publish(t, "fix_delta", {"purpose": "bug_analysis", "attempt": 1, "text": reply[i:i + 24]}, ephemeral=True)
            await self.publish(t, "bug_analysis", b["analysis"])
            await self.pause(0.3)
            await self.bug_status(b, "reproducing")
            await self.publish(t, "reproducer_written", {"attempt": 1, "path": "tests/test_bug_repro.py",
                                                         "explanation": "Signs in with a wrong password."})
            await self.pause(0.5)
            if b["script"] == "interrupt":
                b["script"] = "full"
                await self.bug_status(b, "interrupted", "the server restarted")
                return
        if b["script"] == "unreproduced":
            await self.publish(t, "reproducer_rejected", {"path": "tests/test_bug_repro.py", "attempt": 1,
                                                          "reason": "the test passed on the unchanged repository"})
            await self.publish(t, "reproducer_written", {"attempt": 2, "path": "tests/test_bug_repro.py",
                                                         "explanation": "A second try with an inactive user."})
            await self.pause(0.3)
            b["reproducer"] = None
            b["reproducer_reason"] = "the test passed on the unchanged repository"
            await self.publish(t, "reproducer_rejected", {"path": "tests/test_bug_repro.py", "attempt": 2,
                                                          "reason": b["reproducer_reason"]})
            b["reproduced"] = False
        else:
            b["reproducer"] = {"path": "tests/test_bug_repro.py", "fails_on_base": True,
                               "output": "FAILED tests/test_bug_repro.py::test_wrong_password_is_refused\nassert not True"}
            await self.publish(t, "reproducer_verified", b["reproducer"])
            b["reproduced"] = True
        await self.bug_status(b, "fixing")
        n_approaches = min(3, b["approaches"])
        for n in range(1, n_approaches + 1):
            plan = APPROACHES[n]
            strategy = plan["strategy"] + (f" {HOSTILE}" if h and n == 1 else "")
            b["approach_state"][n] = {"strategy": strategy, "status": "queued", "attempt": 0,
                                      "revisions": {1: plan["changes"]}}
            reply = json.dumps({"unfixable": False, "explanation": plan["summary"], "changes": plan["changes"]})
            for i in range(0, len(reply), 40):
                await self.pause(0.02)
                await self.publish(t, "fix_delta", {"approach": n, "attempt": 1, "text": reply[i:i + 40]}, ephemeral=True)
            # As Medic sends it: the changes with their content, strategy and summary (the size comes with the ranking
            # and the REST detail).
            await self.publish(t, "approach_started", {
                "approach": n, "strategy": strategy, "summary": plan["summary"],
                "explanation": plan["summary"] + "\nDetails follow in the diff.", "changes": plan["changes"]})
            await self.publish(t, "approach_status", {"approach": n, "status": "queued", "attempt": 0, "max_attempts": 2})
            await self.pause(0.15)
        fail_all = b["script"] == "unreproduced"
        await asyncio.gather(*(self.run_approach(b, n, fail_all) for n in range(1, n_approaches + 1)))
        rows = [self.approach_row(b, n) for n in range(1, n_approaches + 1)]
        for row in rows:
            row["duration_ms"] = {1: 910, 2: 840, 3: 1010}[row["approach"]]
        winner = 2 if not fail_all and n_approaches >= 2 else None
        b["ranking"] = {"approaches": rows, "winner": winner,
                        "why": "#2 passes every test and the reproducer with the smallest change (1 file, 2 lines)."
                        if winner else "no approach passed the tests"}
        await self.publish(t, "approaches_ranked", b["ranking"])
        if winner is None:
            await self.publish(t, "bug_unfixed", {"reasons": [{"approach": r["approach"], "reason": r["reason"] or r["status"]} for r in rows]})
            await self.bug_status(b, "unfixed")
            return
        await self.propose_approach(b, winner)

    async def run_approach(self, b, n, fail_all):
        t = b["topic"]
        a = b["approach_state"][n]
        fails = fail_all or APPROACHES[n]["outcome"] == "fail"

        async def status(st, **extra):
            a["status"] = st
            await self.publish(t, "approach_status", {"approach": n, "status": st, "attempt": a["attempt"], "max_attempts": 2, **extra})

        async def tests(rev, ok):
            await status("testing")
            await self.publish(t, "test_started", {"approach": n, "revision": rev, "command": "python -m pytest -q"})
            for i in range(4):
                await self.pause(0.2)
                lines = [f"tests/test_auth.py::test_case_{i} PASSED   [fix #{n}, revision {rev}]"]
                if b["hostile"] and i == 1:
                    lines.append(f"captured: {HOSTILE}")
                await self.publish(t, "test_output", {"approach": n, "revision": rev, "stream": "stdout", "lines": lines})
            if not ok:
                await self.publish(t, "test_output", {"approach": n, "revision": rev, "stream": "stderr", "lines": [
                    "FAILED tests/test_session.py::test_logout_clears_token - AssertionError"]})
            await self.publish(t, "test_finished", {"approach": n, "revision": rev, "exit_code": 0 if ok else 1,
                                                    "passed": 12 if ok else 11, "failed": 0 if ok else 1,
                                                    "duration_ms": {1: 910, 2: 840, 3: 1010}[n], "timed_out": False,
                                                    "truncated": False})

        await self.pause(0.3 * n)
        a["attempt"] = 1
        await status("deploying")
        await self.pause(0.2)
        await self.publish(t, "sandbox_ready", {"approach": n, "revision": 1, "isolation": "bwrap", "duration_ms": 30})
        await tests(1, not fails)
        if not fails:
            await status("qualified")
            return
        await status("analyzing")
        await self.publish(t, "analysis", {"approach": n, "revision": 1, "category": "assertion", "categories": ["assertion"],
                                           "root_cause": "logout() no longer clears the token", "locations": [], "messages": []})
        await self.pause(0.2)
        a["attempt"] = 2
        await status("fixing")
        await self.publish(t, "fix_started", {"approach": n, "revision": 1, "attempt": 2, "max_attempts": 2})
        changes = [{"path": "app/session.py", "action": "modify", "content": "def logout(session):\n    session.token = ''\n"}]
        reply = json.dumps({"unfixable": False, "explanation": "Keep the token reset in logout." +
                            (f" {HOSTILE}" if b["hostile"] else ""), "changes": changes})
        for i in range(0, len(reply), 16):
            await self.pause(0.03)
            await self.publish(t, "fix_delta", {"approach": n, "attempt": 2, "text": reply[i:i + 16]}, ephemeral=True)
        a["revisions"][2] = changes
        await self.publish(t, "fix_generated", {"approach": n, "attempt": 2, "revision": 2,
                                                "explanation": "Keep the token reset in logout.", "changes": changes})
        await tests(2, False)
        a["reason"] = "breaks tests/test_session.py::test_logout_clears_token"
        await status("failed", reason=a["reason"], breaking=["tests/test_session.py::test_logout_clears_token"])

    async def propose_approach(self, b, n):
        """A proposal from approach n (awaiting review: its tests already ran) and `bug_proposed`."""
        pid = "p_" + "".join(random.choice(string.ascii_letters + string.digits) for _ in range(8))
        topic = f"proposal:{pid}"
        self.topics[topic] = []
        changes = APPROACHES[n]["changes"]
        p = {"id": pid, "topic": topic, "title": f"Fix: {b['title']}", "description": b["approach_state"][n]["strategy"],
             "repo": b["repo"], "author": b["author"], "status": "awaiting_review", "revision": 1, "attempt": 0,
             "max_attempts": 3, "created_at": now_ms(), "updated_at": now_ms(), "reviews": {}, "manual": True,
             "unfixable": False, "files": {c["path"]: c.get("content") for c in changes}}
        self.proposals[pid] = p
        info = {k: p[k] for k in ("id", "title", "description", "repo", "author", "status", "revision", "max_attempts", "created_at")}
        await self.publish(topic, "proposal_created", {"proposal": info | {"status": "proposed"},
                                                       "revision": {"number": 1, "changes": changes}})
        await self.set_status(p, "awaiting_review")
        b["proposal"] = pid
        b["chosen_approach"] = n
        b.setdefault("proposals", []).append(pid)
        await self.publish(b["topic"], "bug_proposed", {"proposal": pid, "approach": n})
        await self.bug_status(b, "proposed", f"approach #{n} is proposal {pid}")
        # Like Medic, the proposal is tested once more on its own before it awaits review.
        await self.publish(b["topic"], "proposal_status", {"proposal": pid, "status": "testing"})
        await self.pause(0.4)
        await self.publish(b["topic"], "proposal_status", {"proposal": pid, "status": "awaiting_review"})
        return pid

    # ---- commands ----

    async def bug_command(self, s, msg):
        t = msg.get("type")
        if t == "report_bug":
            if s.role not in ("admin", "bot"):
                raise BugRefusal("forbidden", f"role {s.role} may not report bugs")
            repo = msg.get("repo")
            if repo not in REPOS:
                raise BugRefusal("invalid_message", f"unknown repo '{repo}'; configured: {', '.join(REPOS)}")
            title = msg.get("title")
            if not isinstance(title, str) or not title.strip():
                raise BugRefusal("invalid_message", "field 'title' must be a non-empty string")
            if len(title) > 200:
                raise BugRefusal("invalid_message", "field 'title' is longer than 200 characters")
            description = msg.get("description", "")
            if not isinstance(description, str) or len(description) > 20000:
                raise BugRefusal("invalid_message", "field 'description' must be a string of at most 20000 characters")
            severity = msg.get("severity", "medium")
            if severity not in ("low", "medium", "high", "critical"):
                raise BugRefusal("invalid_message", "field 'severity' must be low, medium, high or critical")
            evidence = msg.get("evidence", [])
            if not isinstance(evidence, list) or not all(isinstance(e, str) for e in evidence):
                raise BugRefusal("invalid_message", "field 'evidence' must be an array of strings")
            if len(evidence) > 20:
                raise BugRefusal("invalid_message", f"evidence has {len(evidence)} items; at most 20")
            if any(len(e.encode()) > 64 << 10 for e in evidence) or sum(len(e.encode()) for e in evidence) > 256 << 10:
                raise BugRefusal("invalid_message", "evidence is too large (64 KiB per item, 256 KiB in all)")
            approaches = msg.get("approaches", 3)
            if not isinstance(approaches, int) or not 1 <= approaches <= 5:
                raise BugRefusal("invalid_message", "field 'approaches' must be an integer from 1 to 5")
            script = "unreproduced" if "[unreproduced]" in title else ("interrupt" if "[interrupt]" in title else "full")
            b = await self.create_bug(s.principal, repo, title.strip(), description, severity, evidence, approaches, script)
            return {"bug": b["id"], "status": "analyzing"}
        b = self.bugs.get(msg.get("bug"))
        if s.role != "admin":
            raise BugRefusal("forbidden", f"role {s.role} may not {t}")
        if b is None:
            raise BugRefusal("not_found", f"no bug '{msg.get('bug')}'")
        if t == "resume_bug":
            if b["status"] != "interrupted":
                raise BugRefusal("invalid_state", f"resume_bug does not apply in status {b['status']}")
            await self.bug_status(b, "reproducing")
            asyncio.get_running_loop().create_task(self.run_bug(b, resume=True))
            return {"bug": b["id"], "status": "reproducing"}
        n = msg.get("approach")
        if b["status"] != "proposed":
            raise BugRefusal("invalid_state", f"choose_approach does not apply in status {b['status']}")
        a = b["approach_state"].get(n) if isinstance(n, int) else None
        if a is None or a["status"] != "qualified":
            raise BugRefusal("invalid_state", f"approach {n} is not a qualified approach")
        if n == b["chosen_approach"]:
            raise BugRefusal("invalid_state", f"approach {n} is already the chosen one")
        await self.publish(b["topic"], "approach_chosen", {"approach": n, "principal": s.principal, "replaces": b["proposal"]})
        old = self.proposals.get(b["proposal"])
        if old:
            await self.set_status(old, "withdrawn")
        pid = await self.propose_approach(b, n)
        return {"bug": b["id"], "approach": n, "proposal": pid}

    # ---- REST ----

    def bug_rest(self, path, query):
        """(status, body) for GET /api/v1/bugs…, or None when the path is not ours."""
        parts = path.split("/")[3:]   # ['bugs', id?, 'events'?]
        if parts == ["bugs"]:
            bugs = sorted(self.bugs.values(), key=lambda b: b["created_at"], reverse=True)
            if query.get("status"):
                bugs = [b for b in bugs if b["status"] == query["status"]]
            return 200, {"bugs": [self.bug_summary(b) for b in bugs[:int(query.get("limit", "50"))]]}
        if len(parts) >= 2 and parts[0] == "bugs":
            b = self.bugs.get(parts[1])
            if b is None:
                return 404, {"code": "not_found", "message": f"no bug '{parts[1]}'"}
            if len(parts) == 2:
                return 200, self.bug_detail(b)
            if parts[2:] == ["events"]:
                since = int(query.get("since", "0"))
                events = self.topics[b["topic"]]
                return 200, {"events": events[since:since + int(query.get("limit", "1000"))], "head": len(events)}
        if parts == ["repos"]:
            return 200, {"repos": REPOS}
        return None
