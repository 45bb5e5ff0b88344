"""The monitor's loop end to end on a real `medic serve`, git and bubblewrap, with the scripted model: errors in a
tailed log → a critical incident → a bug filed automatically → its approach runs → the proposal is approved and
applied → the errors stop → healed (and, when they do not stop, regressed → rolled back → open again)."""
import asyncio
import json
import os
import shutil
import subprocess
import threading
import time

import pytest
import websockets

from medic_server import Medic

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def script(path):
    """The demo conversation's bug replies (the minimal approach #2), answering the incident's bug by its title."""
    demo = json.load(open(os.path.join(ROOT, "examples", "demo-conversation.json")))
    replies = []
    for entry in demo["replies"]:
        if entry.get("purpose") in ("bug_analysis", "bug_reproducer") or (entry.get("purpose") == "bug_approach" and entry.get("approach") == 2):
            entry = {k: v for k, v in entry.items() if k not in ("approach", "delay_ms")}
            entry["match"] = "login failed"
            replies.append(entry)
    with open(path, "w") as f:
        json.dump({"replies": replies}, f)


class Writer:
    """Appends `ERROR auth: login failed …` lines to the log at ~40/s until stopped."""

    def __init__(self, log):
        self.log = log
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        n = 0
        while not self.stopped.is_set():
            with open(self.log, "a") as f:
                for _ in range(4):
                    n += 1
                    f.write(f"2026-12-05T01:02:03Z ERROR auth: login failed user=user{n % 50} reason=wrong_password\n")
            time.sleep(0.1)

    def stop(self):
        self.stopped.set()
        self.thread.join(5)


@pytest.fixture
def medic(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    repo = data / "repo"
    shutil.copytree(os.path.join(ROOT, "examples", "demo-repo"), repo)
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "base"]):
        subprocess.run(["git", "-C", str(repo)] + args, check=True)
    log = tmp_path / "app.log"
    config = {"monitor": {
        "files": [{"path": str(log), "service": "demo-app", "format": "plain"}],
        "bucket_seconds": 1,
        "detection": {"warmup_buckets": 2, "new_fingerprint_min_count": 5, "spike_min_count": 5},
        "policy": {"critical": {"keywords": ["password"]}, "auto_bug_approaches": 1},
        "healing": {"window_seconds": 3, "grace_seconds": 1},
    }}
    (tmp_path / "config.json").write_text(json.dumps(config))
    server = Medic(str(data), extra=["--config", str(tmp_path / "config.json")], test_command="python3 -m unittest discover -s tests -v")
    script(server.script)
    server.start()
    server.log = str(log)
    yield server
    server.stop()


def wait_for(what, probe, deadline=120.0):
    end = time.time() + deadline
    while time.time() < end:
        value = probe()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def incident(medic, admin):
    listed = medic.rest("GET", "/api/v1/incidents", admin)["incidents"]
    return listed[0] if listed else None


def fixed_by_an_approved_proposal(medic, admin, writer_stops):
    """Runs the loop up to the applied fix; returns the incident."""
    writer = Writer(medic.log)
    try:
        opened = wait_for("the incident", lambda: incident(medic, admin), 30)
        assert opened["severity"] == "critical" and opened["kind"] == "new_error"
        assert opened["title"] == "auth: login failed user=<v> reason=wrong_password"
        assert opened["affected_users"] >= 5
        filed = wait_for("the automatic bug", lambda: (lambda i: i if i and i["bug"] else None)(incident(medic, admin)), 30)
        assert filed["automatic"] is True and filed["status"] in ("fixing", "open")
        bug = medic.rest("GET", f"/api/v1/bugs/{filed['bug']}", admin)
        assert bug["title"] == "Error spike in demo-app: auth: login failed user=<v> reason=wrong_password"
        assert bug["severity"] == "critical"
        proposal = wait_for("the bug's proposal", lambda: (lambda i: i["proposal"] if i and i["proposal"] else None)(incident(medic, admin)))
        wait_for("awaiting review", lambda: medic.rest("GET", f"/api/v1/proposals/{proposal}", admin)["status"] == "awaiting_review")
        revision = medic.rest("GET", f"/api/v1/proposals/{proposal}", admin)["revision"]
        # Approval is never skipped: the incident waits in `fixing` until an admin approves.
        assert incident(medic, admin)["status"] == "fixing"
        medic.rest("POST", f"/api/v1/proposals/{proposal}/review", admin, {"verdict": "approve", "revision": revision})
        wait_for("applied", lambda: medic.rest("GET", f"/api/v1/proposals/{proposal}", admin)["status"] == "applied")
        if writer_stops:
            writer.stop()  # the fixed code no longer fails: the errors stop
        wait_for("watching", lambda: incident(medic, admin)["status"] in ("watching", "healed", "regressed"), 30)
        return proposal, writer
    except BaseException:
        writer.stop()
        raise


def test_errors_stop_after_the_approved_fix_and_the_incident_heals(medic):
    admin = medic.token("boss")
    proposal, _ = fixed_by_an_approved_proposal(medic, admin, writer_stops=True)
    healed = wait_for("healed", lambda: (lambda i: i if i["status"] == "healed" else None)(incident(medic, admin)), 30)
    assert healed["time_to_heal_ms"] > 0 and healed["proposal"] == proposal and healed["applied_at"] <= healed["healed_at"]
    events = medic.rest("GET", f"/api/v1/incidents/{healed['id']}", admin)["events"]
    kinds = [e["kind"] for e in events]
    for kind in ("incident_opened", "bug_filed", "bug_status", "fix_applied", "healed"):
        assert kind in kinds, kind
    assert kinds.index("bug_filed") < kinds.index("fix_applied") < kinds.index("healed")
    done = next(e for e in events if e["kind"] == "healed")["data"]
    assert done["window_ms"] == 3000 and done["fix_to_heal_ms"] >= 3000
    # Every event once, in seq order.
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(1, len(seqs) + 1))


def test_errors_that_go_on_after_the_fix_regress_and_a_rollback_reopens(medic):
    admin = medic.token("boss")
    proposal, writer = fixed_by_an_approved_proposal(medic, admin, writer_stops=False)
    try:
        regressed = wait_for("regressed", lambda: (lambda i: i if i["status"] == "regressed" else None)(incident(medic, admin)), 30)
        assert regressed["proposal"] == proposal

        async def rollback():
            async with websockets.connect(f"ws://127.0.0.1:{medic.port}/ws", subprotocols=["medic.v1"],
                                          additional_headers={"Authorization": f"Bearer {admin}"}) as ws:
                await ws.recv()
                await ws.send(json.dumps({"type": "rollback", "id": "rb", "proposal": proposal}))
                while True:
                    message = json.loads(await ws.recv())
                    if message.get("id") == "rb":
                        return message

        ack = asyncio.run(asyncio.wait_for(rollback(), 60))
        assert ack["type"] == "ack", ack
        reopened = wait_for("open again", lambda: (lambda i: i if i["status"] == "open" else None)(incident(medic, admin)), 60)
        detail = medic.rest("GET", f"/api/v1/incidents/{reopened['id']}", admin)
        assert "rolled back" in detail["incident"]["reason"]
        assert [e["kind"] for e in detail["events"]].count("regressed") == 1
    finally:
        writer.stop()
