"""Attacks on authentication, authorization and the REST layer of a real `medic serve` (SECURITY.md):
revoked tokens and changed roles, admin-only endpoints, data accepted over WebSocket read back over REST."""
import asyncio
import os
import json
import subprocess
import time
import urllib.error
import urllib.request

import websockets

import pytest

from medic_server import Medic


@pytest.fixture
def medic(tmp_path):
    """A started `medic serve` (test command `true`), stopped after the test."""
    server = Medic(str(tmp_path)).start()
    yield server
    server.stop()


def run(coro, timeout=60):
    return asyncio.run(asyncio.wait_for(coro, timeout=timeout))


def http(medic, method, path, token, body=None, raw=None):
    """(status, parsed JSON body) — errors included, unlike Medic.rest."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(f"http://127.0.0.1:{medic.port}{path}", method=method, data=data,
                                 headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def cli(medic, *args):
    return subprocess.run([medic.bin, "token", *args, "--data-dir", medic.data_dir], check=True,
                          capture_output=True, text=True).stdout


def connect(medic, token):
    return websockets.connect(f"ws://127.0.0.1:{medic.port}/ws", subprotocols=["medic.v1"], max_size=64 << 20,
                              additional_headers={"Authorization": f"Bearer {token}"})


async def reply_to(ws, command_id):
    """The ack or error answering `command_id` (events in between are skipped)."""
    while True:
        message = json.loads(await ws.recv())
        if message.get("id") == command_id and message["type"] in ("ack", "error"):
            return message


async def wait_for_status(ws, proposal, status):
    await ws.send(json.dumps({"type": "subscribe", "id": "sub", "topic": f"proposal:{proposal}", "since": 0}))
    while True:
        message = json.loads(await ws.recv())
        if message.get("kind") == "status_changed" and message["data"]["status"] == status:
            return


async def close_code(ws, within):
    """Reads until the server closes the connection; returns the close code (None: still open)."""
    try:
        async with asyncio.timeout(within):
            while True:
                await ws.recv()
    except websockets.ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None
    except TimeoutError:
        return None


def commits(repo):
    return int(subprocess.run(["git", "-C", repo, "rev-list", "--count", "HEAD"], check=True, capture_output=True,
                              text=True).stdout)


def awaiting_review_proposal(medic, bot):
    status, ack = http(medic, "POST", "/api/v1/proposals", bot,
                       {"title": "t", "description": "d", "changes": [{"path": "a.txt", "action": "create", "content": "x\n"}]})
    assert status == 201, ack
    proposal = ack["proposal"]

    async def wait():
        async with connect(medic, bot) as ws:
            await ws.recv()
            await wait_for_status(ws, proposal, "awaiting_review")
    run(wait())
    return proposal


def test_a_revoked_token_stops_at_once_and_its_live_sessions_close(medic):
    alice = medic.token("alice", "admin")
    bot = medic.token("bot", "bot")
    proposal = awaiting_review_proposal(medic, bot)
    before = commits(medic.repo)

    async def attack():
        async with connect(medic, alice) as watching, connect(medic, alice) as approving:
            for ws in (watching, approving):
                assert json.loads(await ws.recv())["type"] == "welcome"
            await watching.send(json.dumps({"type": "subscribe", "id": "s", "topic": "proposals"}))
            assert (await reply_to(watching, "s"))["type"] == "ack"
            cli(medic, "revoke", "alice")
            # The very next command of a session opened before the revocation is refused...
            await approving.send(json.dumps({"type": "approve", "id": "late-approve", "proposal": proposal, "revision": 1}))
            refused = await reply_to(approving, "late-approve")
            assert refused["type"] == "error" and refused["code"] == "unauthenticated", refused
            # ...and every live session of the token is closed with 4003, the idle one included.
            assert await close_code(approving, within=10) == 4003
            assert await close_code(watching, within=10) == 4003
    run(attack())

    # New requests fail at once: REST and a new WebSocket.
    status, body = http(medic, "GET", "/api/v1/proposals", alice)
    assert status == 401 and body["error"]["code"] == "unauthenticated"

    async def new_session():
        async with connect(medic, alice) as ws:
            return await close_code(ws, within=10)
    assert run(new_session()) == 4001
    assert commits(medic.repo) == before, "a revoked admin's approve reached the repository"


def test_a_lowered_role_applies_to_open_sessions(medic):
    carol = medic.token("carol", "admin")
    bot = medic.token("bot", "bot")
    proposal = awaiting_review_proposal(medic, bot)
    before = commits(medic.repo)

    async def attack():
        async with connect(medic, carol) as ws:
            assert json.loads(await ws.recv())["role"] == "admin"
            cli(medic, "role", "carol", "viewer")
            await ws.send(json.dumps({"type": "approve", "id": "a1", "proposal": proposal, "revision": 1}))
            refused = await reply_to(ws, "a1")
            assert refused["type"] == "error" and refused["code"] == "forbidden", refused
            assert await close_code(ws, within=10) == 4003
        async with connect(medic, carol) as ws:
            welcome = json.loads(await ws.recv())
            assert welcome["role"] == "viewer"
            await ws.send(json.dumps({"type": "approve", "id": "a2", "proposal": proposal, "revision": 1}))
            assert (await reply_to(ws, "a2"))["code"] == "forbidden"
    run(attack())
    assert commits(medic.repo) == before
    assert "carol\tviewer\tactive" in cli(medic, "list")


def test_a_session_opened_right_after_a_role_change_does_not_keep_the_old_role_alive(medic):
    dave = medic.token("dave", "admin")

    async def attack():
        async with connect(medic, dave) as idle:
            assert json.loads(await idle.recv())["role"] == "admin"
            cli(medic, "role", "dave", "viewer")
            # Before any periodic recheck: the new session takes over the token's principal …
            async with connect(medic, dave) as fresh:
                assert json.loads(await fresh.recv())["role"] == "viewer"
                # … and the idle admin session of the same token is closed, not forgotten.
                assert await close_code(idle, within=10) == 4003
    run(attack())


def test_admin_endpoints_refuse_viewers_and_bots(medic):
    admin = medic.token("admin1", "admin")
    bot = medic.token("bot", "bot")
    viewer = medic.token("viewer", "viewer")
    proposal = awaiting_review_proposal(medic, bot)
    path = f"/api/v1/admin/proposals/auto-fix/status/{proposal}"
    for token in (viewer, bot):
        status, body = http(medic, "GET", path, token)
        assert status == 403 and body["error"]["code"] == "forbidden", (status, body)
        assert "needs_auto_fix" not in json.dumps(body)
    status, body = http(medic, "GET", path, admin)
    assert status == 200 and body["proposal"] == proposal


def test_what_was_accepted_is_returned_intact_over_rest(tmp_path):
    """A 1.4 MB proposal accepted over WebSocket comes back whole: state and revisions as JSON, events' data
    as objects; REST accepts the same body and refuses the same nesting as the WebSocket."""
    medic = Medic(str(tmp_path)).start()
    try:
        admin = medic.token("admin1", "admin")
        bot = medic.token("bot", "bot")
        contents = {f"big{i}.txt": (chr(ord("a") + i) * 99 + "\n") * 7_000 for i in range(2)}  # 2 × 700 KB
        changes = [{"path": path, "action": "create", "content": content} for path, content in contents.items()]

        async def propose():
            async with connect(medic, bot) as ws:
                await ws.recv()
                await ws.send(json.dumps({"type": "propose", "id": "big", "title": "big", "description": "d", "changes": changes}))
                ack = await reply_to(ws, "big")
                assert ack["type"] == "ack", ack
                await wait_for_status(ws, ack["proposal"], "awaiting_review")
                return ack["proposal"]
        proposal = run(propose())

        status, detail = http(medic, "GET", f"/api/v1/proposals/{proposal}", admin)
        assert status == 200
        assert isinstance(detail["state"], dict), "stored state came back as a string"
        revision = detail["revisions"][0]
        stored = {change["path"]: change["content"] for change in revision["changes"]}
        assert stored == contents
        status, page = http(medic, "GET", f"/api/v1/proposals/{proposal}/events?since=0", admin)
        assert status == 200 and page["events"]
        for event in page["events"]:
            assert isinstance(event["data"], dict), event["kind"]

        # The same 1.4 MB body is accepted over REST (one input limit for both transports).
        status, ack = http(medic, "POST", "/api/v1/proposals", bot,
                           {"title": "big over REST", "description": "d", "changes": changes})
        assert status == 201, ack
        # Nesting beyond the documented 32 is refused over REST as over the WebSocket.
        deep = {"title": "t", "description": "d", "changes": [], "x": json.loads("[" * 40 + "]" * 40)}
        status, body = http(medic, "POST", "/api/v1/proposals", bot, deep)
        assert status == 400 and body["error"]["code"] == "bad_json", (status, body)
    finally:
        medic.stop()


def test_rest_allow_header_and_applied_time_survive_a_rollback(medic):
    admin = medic.token("admin1", "admin")
    bot = medic.token("bot", "bot")
    proposal = awaiting_review_proposal(medic, bot)
    req = urllib.request.Request(f"http://127.0.0.1:{medic.port}/api/v1/admin/proposals/auto-fix/{proposal}",
                                 method="GET", headers={"Authorization": f"Bearer {admin}"})
    try:
        urllib.request.urlopen(req, timeout=10)
        raise AssertionError("GET on a POST-only endpoint succeeded")
    except urllib.error.HTTPError as error:
        assert error.code == 405 and error.headers["Allow"] == "POST"

    async def approve_then_roll_back():
        async with connect(medic, admin) as ws:
            await ws.recv()
            await ws.send(json.dumps({"type": "approve", "id": "ap", "proposal": proposal, "revision": 1}))
            assert (await reply_to(ws, "ap"))["type"] == "ack"
            await wait_for_status(ws, proposal, "applied")
            applied = http(medic, "GET", f"/api/v1/proposals/{proposal}", admin)[1]["applied"]
            await asyncio.sleep(0.05)
            await ws.send(json.dumps({"type": "rollback", "id": "rb", "proposal": proposal}))
            assert (await reply_to(ws, "rb"))["type"] == "ack"
            await ws.send(json.dumps({"type": "unsubscribe", "id": "u", "topic": f"proposal:{proposal}"}))
            await wait_for_status(ws, proposal, "rolled_back")
            return applied
    applied = run(approve_then_roll_back())
    after = http(medic, "GET", f"/api/v1/proposals/{proposal}", admin)[1]["applied"]
    assert len(after) == 1 and after[0]["reverted_by"]
    assert after[0]["ts"] == applied[0]["ts"], "the apply time was overwritten by the rollback"
    assert after[0]["revision"] == applied[0]["revision"]


def test_medic_watch_ends_on_a_bad_or_revoked_token_and_prints_local_time(medic):
    admin = medic.token("admin1", "admin")
    proposal = awaiting_review_proposal(medic, medic.token("bot", "bot"))
    url = f"http://127.0.0.1:{medic.port}"
    bad = subprocess.run([medic.bin, "watch", proposal, "--url", url, "--token", "mdc_not-a-token"],
                         capture_output=True, text=True, timeout=30)
    assert bad.returncode != 0 and "4001" in bad.stderr and "reconnecting" not in bad.stderr, bad.stderr

    watch = subprocess.Popen([medic.bin, "watch", proposal, "--url", url, "--token", admin],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1)
    cli(medic, "revoke", "admin1")
    out, err = watch.communicate(timeout=30)
    assert watch.returncode != 0 and "4003" in err and "revoked" in err, err
    first = out.splitlines()[0].split("\t")
    assert first[0] == "1" and time.strftime("%Y-%m-%d ") in first[1] + " " and ":" in first[1], first

    machine = subprocess.run([medic.bin, "watch", proposal, "--url", url, "--token", medic.token("viewer", "viewer"),
                              "--json", "--count", "1"], capture_output=True, text=True, timeout=30)
    event = json.loads(machine.stdout.splitlines()[0])
    assert event["seq"] == 1 and isinstance(event["ts"], int) and event["kind"] == "proposal_created"


def test_sign_in_links_are_single_use_and_die_with_their_principal(medic):
    medic.token("alice", "admin")

    def link(*extra):
        out = subprocess.run([medic.bin, "login", "--data-dir", medic.data_dir, "--url", f"http://127.0.0.1:{medic.port}", *extra],
                             check=True, capture_output=True, text=True).stdout
        return out.strip().splitlines()[-1].split("#login=")[1]

    def exchange(code):
        req = urllib.request.Request(f"http://127.0.0.1:{medic.port}/api/v1/session", method="POST",
                                     data=json.dumps({"code": code}).encode())
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    code = link("--name", "alice")
    status, session = exchange(code)
    assert status == 200 and session["principal"] == "alice" and session["role"] == "admin"
    assert http(medic, "GET", "/api/v1/proposals", session["token"])[0] == 200
    # Single use; forged codes and missing fields are refused without a token.
    assert exchange(code)[0] == 401
    assert exchange("mdc_forged")[0] == 401
    assert exchange("")[0] == 400
    # Revoking the principal ends its sessions (and unused links) at once.
    unused = link("--name", "alice")
    cli(medic, "revoke", "alice")
    assert http(medic, "GET", "/api/v1/proposals", session["token"])[0] == 401
    assert exchange(unused)[0] == 401
    # A principal re-created under the same name does not inherit the old session.
    medic.token("alice", "admin")
    assert http(medic, "GET", "/api/v1/proposals", session["token"])[0] == 401


def test_withdraw_stops_a_running_test_and_dead_ends_can_be_closed(tmp_path):
    # A command line no other process on the machine has, so pgrep finds only this test's run.
    sleeper = f"sleep 59.{os.getpid():06d}"
    medic = Medic(str(tmp_path), test_command=sleeper).start()
    try:
        admin = medic.token("admin1", "admin")
        bot = medic.token("bot", "bot")
        other = medic.token("otherbot", "bot")
        viewer = medic.token("viewer", "viewer")
        status, ack = http(medic, "POST", "/api/v1/proposals", bot,
                           {"title": "t", "description": "d", "changes": [{"path": "a.txt", "action": "create", "content": "x\n"}]})
        proposal = ack["proposal"]

        async def wait_testing():
            async with connect(medic, bot) as ws:
                await ws.recv()
                await wait_for_status(ws, proposal, "testing")
        run(wait_testing())
        sandboxes = os.path.join(medic.data_dir, "sandboxes", proposal)
        assert os.listdir(sandboxes), "no sandbox while testing"
        for token, code in ((viewer, 403), (other, 403)):
            assert http(medic, "POST", f"/api/v1/proposals/{proposal}/withdraw", token, {})[0] == code
        status, ack = http(medic, "POST", f"/api/v1/proposals/{proposal}/withdraw", bot, {"reason": "superseded"})
        assert status == 200 and ack["status"] == "withdrawn", ack
        # The 60 s test is stopped and its sandbox removed, well before it would have ended.
        deadline = time.time() + 20
        while time.time() < deadline and os.path.exists(sandboxes) and os.listdir(sandboxes):
            time.sleep(0.1)
        assert not (os.path.exists(sandboxes) and os.listdir(sandboxes)), "the sandbox outlived the withdrawal"
        # `pgrep -x -f`: the whole command line is exactly the test's sleeper (not medic serve's own arguments).
        while time.time() < deadline and subprocess.run(["pgrep", "-x", "-f", sleeper], capture_output=True).returncode == 0:
            time.sleep(0.1)
        assert subprocess.run(["pgrep", "-x", "-f", sleeper], capture_output=True).returncode != 0, "the test command still runs"
        assert http(medic, "POST", f"/api/v1/proposals/{proposal}/withdraw", admin, {})[0] == 409
        detail = http(medic, "GET", f"/api/v1/proposals/{proposal}", admin)[1]
        assert detail["status"] == "withdrawn"
    finally:
        medic.stop()
