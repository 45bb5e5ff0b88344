"""What a reviewer diffs against: each revision's sandbox_ready names the commit its sandbox was copied from,
and GET /api/v1/proposals/{id}/revisions/{n}/base returns the files the revision modifies or deletes there."""
import json
import time
import subprocess
import urllib.error
import urllib.request

from medic_server import Medic


def get(medic, path, token):
    req = urllib.request.Request(f"http://127.0.0.1:{medic.port}{path}", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_base_files_are_the_repository_at_the_sandbox_commit(tmp_path):
    medic = Medic(str(tmp_path)).start()
    try:
        bot = medic.token("bot", "bot")
        head = subprocess.run(["git", "-C", medic.repo, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
        ack = medic.rest("POST", "/api/v1/proposals", bot, {"title": "t", "description": "d", "changes": [
            {"path": "README", "action": "modify", "content": "changed\n"},
            {"path": "new.txt", "action": "create", "content": "n\n"},
        ]})
        proposal = ack["proposal"]
        events = []
        for _ in range(200):
            events = medic.rest("GET", f"/api/v1/proposals/{proposal}/events?since=0", bot)["events"]
            if any(e["kind"] == "status_changed" and e["data"]["status"] == "awaiting_review" for e in events):
                break
            time.sleep(0.1)
        ready = [e for e in events if e["kind"] == "sandbox_ready"]
        assert ready and ready[0]["data"]["base_commit"] == head
        status, base = get(medic, f"/api/v1/proposals/{proposal}/revisions/1/base", bot)
        assert status == 200, base
        assert base == {"revision": 1, "base_commit": head, "files": {"README": "base\n"}, "omitted": []}
        assert get(medic, f"/api/v1/proposals/{proposal}/revisions/9/base", bot)[0] == 404
        assert get(medic, f"/api/v1/proposals/{proposal}/revisions/1/base", "mdc_wrong")[0] == 401
    finally:
        medic.stop()
