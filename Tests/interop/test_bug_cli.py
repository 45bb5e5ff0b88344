"""`medic bug report|list|show`: argument handling, and the requests it sends, against a small fake REST server
(the real routes are the lead's; bug-spec.md "Commands" and "Reads")."""
import http.server
import json
import subprocess
import threading

import pytest

from interop_support import binary


DETAIL = {"id": "b-0123456789", "status": "fixing", "reproduced": True, "chosen_approach": None, "approaches": 3,
          "analysis": {"causes": ["one side"], "locations": [{"file": "app/auth.py", "line": 43, "why": "raw input"}]},
          "ranking": {"winner": 2, "approaches": [{"approach": 1, "qualified": False, "duration_ms": 1234}]}}


class FakeBugs(http.server.BaseHTTPRequestHandler):
    requests = []

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
        FakeBugs.requests.append(("POST", self.path, dict(self.headers), body))
        if self.headers.get("Authorization") != "Bearer good":
            return self.answer(401, {"error": {"code": "unauthenticated", "message": "Authorization: Bearer TOKEN required"}})
        if body["repo"] != "demo-repo":
            return self.answer(400, {"error": {"code": "invalid_message", "message": "unknown repo 'nope'; configured: demo-repo"}})
        self.answer(201, {"type": "ack", "id": self.headers.get("Idempotency-Key"), "bug": "b-0123456789", "status": "analyzing"})

    def do_GET(self):
        FakeBugs.requests.append(("GET", self.path, dict(self.headers), None))
        if self.path.startswith("/api/v1/bugs?") or self.path == "/api/v1/bugs":
            return self.answer(200, {"bugs": [{"id": "b-0123456789", "title": "Wrong password", "repo": "demo-repo",
                                               "severity": "high", "status": "proposed", "reproduced": True,
                                               "approaches": 3, "proposal": "p-1", "chosen_approach": 2}]})
        if self.path == "/api/v1/bugs/b-0123456789":
            return self.answer(200, DETAIL)
        self.answer(404, {"error": {"code": "not_found", "message": "no bug b-missing"}})


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeBugs)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def medic(*args, env=None):
    return subprocess.run([binary("MEDIC_BIN"), "bug", *args], capture_output=True, text=True, timeout=30, env=env)


def test_report_posts_the_bug_with_an_idempotency_key_and_prints_the_page(server, tmp_path):
    description = tmp_path / "description.txt"
    description.write_text("Users are refused.\n")
    log = tmp_path / "auth.log"
    log.write_text("WARN auth: login failed reason=wrong_password\n")
    FakeBugs.requests.clear()
    out = medic("report", "--repo", "demo-repo", "--title", "Wrong password", "--description-file", str(description),
                "--severity", "high", "--evidence-file", str(log), "--evidence-file", str(log), "--approaches", "2",
                "--url", server + "/", "--token", "good")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["bug b-0123456789 (analyzing)", f"{server}/#/bugs/b-0123456789"]
    method, path, headers, body = FakeBugs.requests[-1]
    assert (method, path) == ("POST", "/api/v1/bugs")
    assert body == {"repo": "demo-repo", "title": "Wrong password", "description": "Users are refused.\n",
                    "severity": "high", "evidence": [log.read_text()] * 2, "approaches": 2}
    key = headers["Idempotency-Key"]
    assert 1 <= len(key) <= 128
    # A second report gets a fresh key: two reports are two bugs, not a repeat.
    assert medic("report", "--repo", "demo-repo", "--title", "t", "--url", server, "--token", "good").returncode == 0
    assert FakeBugs.requests[-1][2]["Idempotency-Key"] != key
    assert FakeBugs.requests[-1][3] == {"repo": "demo-repo", "title": "t", "description": ""}


def test_an_error_answer_prints_the_servers_code_and_message_and_exits_1(server):
    out = medic("report", "--repo", "nope", "--title", "t", "--url", server, "--token", "good")
    assert out.returncode == 1 and out.stdout == ""
    assert "invalid_message: unknown repo 'nope'; configured: demo-repo" in out.stderr
    out = medic("report", "--repo", "demo-repo", "--title", "t", "--url", server, "--token", "bad")
    assert out.returncode == 1 and "unauthenticated" in out.stderr
    out = medic("show", "b-missing", "--url", server, "--token", "good")
    assert out.returncode == 1 and "not_found: no bug b-missing" in out.stderr


def test_list_and_show(server):
    out = medic("list", "--status", "proposed", "--limit", "5", "--url", server, "--token", "good")
    assert out.returncode == 0, out.stderr
    assert FakeBugs.requests[-1][1] == "/api/v1/bugs?status=proposed&limit=5"
    assert out.stdout.split("\t")[:6] == ["b-0123456789", "proposed", "high", "demo-repo", "reproduced", "p-1"]
    out = medic("show", "b-0123456789", "--url", server, "--token", "good")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == DETAIL
    assert "\n  " in out.stdout  # indented


@pytest.mark.parametrize("args, message", [
    (["report", "--repo", "demo-repo", "--title", "t", "--description-file", "/nonexistent/d.txt"],
     "--description-file /nonexistent/d.txt: no such file"),
    (["report", "--repo", "demo-repo", "--title", "t", "--evidence-file", "/nonexistent/e.log"],
     "--evidence-file /nonexistent/e.log: no such file"),
    (["report", "--repo", "demo-repo", "--title", "t", "--description", "d", "--description-file", "/etc/hostname"],
     "give --description or --description-file, not both"),
    (["report", "--repo", "demo-repo", "--title", "   "], "--title must not be empty"),
    (["report", "--repo", "demo-repo", "--title", "x" * 201], "--title has 201 characters; at most 200"),
    (["report", "--repo", "demo-repo", "--title", "t", "--severity", "urgent"], "--severity must be one of low, medium, high, critical"),
    (["report", "--repo", "demo-repo", "--title", "t", "--approaches", "6"], "--approaches must be 1…5"),
    (["report", "--title", "t"], "Missing expected argument '--repo <repo>'"),
    (["report", "--repo", "demo-repo", "--title", "t", "--url", "ftp://host"], "--url must be http(s)://HOST[:PORT]"),
    (["show", "../etc", "--token", "good"], "'../etc' is not a bug id"),
    (["list", "--status", "a&b=c"], "--status must be a status name"),
])
def test_argument_mistakes_are_named_before_anything_is_sent(args, message):
    FakeBugs.requests.clear()
    extra = ([] if "--token" in args else ["--token", "good"]) + ([] if "--url" in args else ["--url", "http://127.0.0.1:9"])
    out = medic(*args, *extra)
    assert out.returncode == 64, (out.stdout, out.stderr)
    assert message in out.stderr
    assert FakeBugs.requests == []


def test_a_token_is_required():
    out = medic("list", "--url", "http://127.0.0.1:9", env={"PATH": "/usr/bin:/bin"})
    assert out.returncode == 64 and "--token or MEDIC_TOKEN is required" in out.stderr
