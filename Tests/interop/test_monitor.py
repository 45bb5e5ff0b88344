"""The monitor against a real `medic serve`: ingest over HTTP (per-line errors, the rate limit, who may use it),
tailed files through rotation and hostile lines, incidents opened from anomalies with their commands, the storm
limit, and history kept across a restart. Buckets are 1 s so every wait is short and bounded."""
import asyncio
import json
import os
import subprocess
import time
import urllib.error
import urllib.request

import pytest
import websockets

from medic_server import Medic, wait_for_port


def config(tmp_path, **monitor):
    m = {
        "files": [{"path": str(tmp_path / "app.log"), "service": "app", "format": "plain"}],
        "bucket_seconds": 1,
        "detection": {"warmup_buckets": 2, "new_fingerprint_min_count": 5, "spike_min_count": 5},
        "ingest": {"max_lines_per_second": 2000, "burst_lines": 3000},
        "policy": {"max_auto_bugs_per_hour": 1, "critical": {"keywords": ["password"]}},
        "healing": {"window_seconds": 2, "grace_seconds": 1},
    }
    m.update(monitor)
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"monitor": m}))
    return str(path)


@pytest.fixture
def medic(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    server = Medic(str(data), extra=["--config", config(tmp_path)])
    server.start()
    yield server
    server.stop()


def post(medic, path, token, body, headers=None):
    req = urllib.request.Request(f"http://127.0.0.1:{medic.port}{path}", method="POST", data=body,
                                 headers={"Authorization": f"Bearer {token}", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, dict(resp.headers), json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), json.loads(e.read() or b"{}")


def get(medic, path, token):
    try:
        return 200, medic.rest("GET", path, token)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def wait_for(what, probe, deadline=20.0):
    end = time.time() + deadline
    while time.time() < end:
        value = probe()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def ndjson(events):
    return "".join(json.dumps(e) + "\n" for e in events).encode()


def incidents(medic, token):
    return medic.rest("GET", "/api/v1/incidents", token)["incidents"]


def test_ingest_reports_each_bad_line_and_counts_the_good_ones(medic):
    token = medic.token("shipper", "ingest")
    body = ndjson([{"service": "api", "message": "ok", "level": "info"}] * 3) + b"not json\n" + \
        ndjson([{"service": "api"}, {"service": "api", "message": "x", "level": "apocalyptic"}]) + \
        ndjson([{"service": "api", "message": "from the future", "ts": 4102444800000}]) + b"\n   \n" + b"{" * 10000 + b"\n"
    status, _, answer = post(medic, "/api/v1/ingest", token, body)
    assert status == 200
    assert answer["accepted"] == 4 and answer["rejected"] == 4 and answer["skewed"] == 1
    assert [e["line"] for e in answer["errors"]] == [4, 5, 6, 10]
    assert "message" in answer["errors"][1]["reason"] and "level" in answer["errors"][2]["reason"]
    admin = medic.token("boss")
    status, monitor = get(medic, "/api/v1/monitor", admin)
    assert monitor["ingested"] == 4 and monitor["rejected"] == 4 and monitor["skewed"] == 1


def test_ingest_over_the_rate_is_429_with_retry_after_and_counts_nothing(medic):
    token = medic.token("shipper", "ingest")
    line = {"service": "api", "message": "tick", "level": "info"}
    status, _, _ = post(medic, "/api/v1/ingest", token, ndjson([line] * 2500))
    assert status == 200
    status, headers, answer = post(medic, "/api/v1/ingest", token, ndjson([line] * 2000))
    assert status == 429 and answer["error"]["code"] == "rate_limited"
    assert int(headers["Retry-After"]) >= 1
    # Another token has its own bucket; the server keeps serving.
    other = medic.token("shipper2", "ingest")
    assert post(medic, "/api/v1/ingest", other, ndjson([line] * 10))[0] == 200
    admin = medic.token("boss")
    assert get(medic, "/api/v1/monitor", admin)[1]["ingested"] == 2510


def test_a_body_of_more_lines_than_the_burst_is_413_to_split_not_429_to_retry(medic):
    token = medic.token("shipper", "ingest")
    line = {"service": "api", "message": "tick", "level": "info"}
    # 3001 lines can never fit a bucket of 3000: waiting would not help, so no Retry-After — split the body.
    status, headers, answer = post(medic, "/api/v1/ingest", token, ndjson([line] * 3001))
    assert status == 413 and answer["error"]["code"] == "too_large", (status, answer)
    assert "split" in answer["error"]["message"] and "3000" in answer["error"]["message"]
    assert "Retry-After" not in headers
    # Blank lines count against the rate too (documented): 2999 events and 2 blank lines are 3001 lines.
    assert post(medic, "/api/v1/ingest", token, ndjson([line] * 2999) + b"\n  \n")[0] == 413
    # Nothing of them was counted, and the bucket is still full: exactly burst_lines fits at once.
    assert post(medic, "/api/v1/ingest", token, ndjson([line] * 3000))[0] == 200
    admin = medic.token("boss")
    monitor = get(medic, "/api/v1/monitor", admin)[1]
    assert monitor["ingested"] == 3000 and monitor["rate_limited"] == 0


def test_ingest_tokens_reach_nothing_else_and_others_need_a_token(medic):
    token = medic.token("shipper", "ingest")
    assert get(medic, "/api/v1/incidents", token)[0] == 403
    assert get(medic, "/api/v1/proposals", token)[0] == 403
    assert post(medic, "/api/v1/ingest", "nope", b"{}\n")[0] == 401
    viewer = medic.token("watcher", "viewer")
    assert post(medic, "/api/v1/ingest", viewer, ndjson([{"service": "a", "message": "m"}]))[0] == 403
    # Too large a body: 413, and the server goes on.
    big = b"x" * (9 << 20)
    try:
        status = post(medic, "/api/v1/ingest", token, big)[0]
    except (urllib.error.URLError, ConnectionError):
        status = 413  # the server may close before reading it all; it answered 413 first
    assert status == 413
    assert post(medic, "/api/v1/ingest", token, ndjson([{"service": "a", "message": "m"}]))[0] == 200


def test_an_ingest_token_cannot_open_a_websocket_session(medic):
    token = medic.token("shipper", "ingest")

    async def attempt():
        async with websockets.connect(f"ws://127.0.0.1:{medic.port}/ws", subprotocols=["medic.v1"]) as ws:
            await ws.send(json.dumps({"type": "hello", "id": "h", "token": token}))
            reply = json.loads(await ws.recv())
            try:
                await asyncio.wait_for(ws.recv(), 5)
            except websockets.ConnectionClosed as closed:
                return reply, closed.rcvd.code if closed.rcvd else None
            return reply, None

    reply, code = asyncio.run(asyncio.wait_for(attempt(), 20))
    assert reply["type"] == "error" and reply["code"] == "forbidden"
    assert code == 1008


def test_a_new_error_opens_one_incident_and_admins_act_on_it(medic):
    admin = medic.token("boss")
    token = medic.token("shipper", "ingest")
    events = [{"service": "api", "message": f"cache miss storm on shard {i % 3}", "user": f"u{i}"} for i in range(30)]
    assert post(medic, "/api/v1/ingest", token, ndjson(events))[0] == 200
    incident = wait_for("the incident", lambda: next(iter(incidents(medic, admin)), None))
    assert incident["kind"] == "new_error" and incident["title"] == "cache miss storm on shard <n>"
    assert incident["affected_users"] == 30 and incident["value"] == 30
    # The same error spiking again later merges into it: one open incident per fingerprint.
    time.sleep(2.5)
    assert post(medic, "/api/v1/ingest", token, ndjson(events * 5))[0] == 200
    wait_for("the spike merged", lambda: next((i for i in incidents(medic, admin) if i["occurrences"] == 2), None))
    listed = incidents(medic, admin)
    assert len([i for i in listed if i["key"] == incident["key"]]) == 1 and len(listed) == 1
    viewer = medic.token("watcher", "viewer")
    status, _, answer = post(medic, f"/api/v1/incidents/{incident['id']}/resolve", viewer, b"{}")
    assert status == 403 and answer["error"]["code"] == "forbidden"
    bot = medic.token("robot", "bot")
    assert post(medic, f"/api/v1/incidents/{incident['id']}/mute", bot, b'{"duration_seconds": 600}')[0] == 403
    status, _, answer = post(medic, f"/api/v1/incidents/{incident['id']}/mute", admin, b'{"duration_seconds": 5}')
    assert status == 400 and "duration_seconds" in answer["error"]["message"]
    status, _, answer = post(medic, f"/api/v1/incidents/{incident['id']}/mute", admin, b'{"duration_seconds": 600}')
    assert status == 200 and answer["status"] == "muted"
    status, _, answer = post(medic, f"/api/v1/incidents/{incident['id']}/resolve", admin, b'{"reason": "known, deploy pending"}')
    assert status == 200 and answer["status"] == "resolved"
    assert post(medic, f"/api/v1/incidents/{incident['id']}/resolve", admin, b"{}")[0] == 409
    assert post(medic, "/api/v1/incidents/i-nothere/resolve", admin, b"{}")[0] == 404
    detail = medic.rest("GET", f"/api/v1/incidents/{incident['id']}", admin)
    kinds = [e["kind"] for e in detail["events"]]
    assert kinds[0] == "incident_opened" and "anomaly" in kinds and "incident_muted" in kinds and kinds[-1] == "incident_resolved"
    assert detail["incident"]["resolved_by"] == "boss" and detail["incident"]["reason"] == "known, deploy pending"
    assert detail["incident"]["series"] and all(len(p) == 2 for p in detail["incident"]["series"])


def test_the_list_puts_open_incidents_first_before_its_limit(medic):
    admin = medic.token("boss")
    token = medic.token("shipper", "ingest")
    # Three new errors (medium: they wait open); all but the one listed last are resolved.
    events = [{"service": "api", "message": f"{what} failed for order {i}", "user": f"u{i}"}
              for what in ("checkout", "refund", "invoice") for i in range(8)]
    assert post(medic, "/api/v1/ingest", token, ndjson(events))[0] == 200
    listed = wait_for("three incidents", lambda: (lambda l: l if len(l) == 3 else None)(incidents(medic, admin)))
    assert all(i["status"] == "open" and i["severity"] == "medium" for i in listed), listed
    kept = listed[-1]
    for i in listed[:-1]:
        assert post(medic, f"/api/v1/incidents/{i['id']}/resolve", admin, b"{}")[0] == 200
    # The open one comes first even when the newer closed ones would fill the limit.
    assert [i["id"] for i in medic.rest("GET", "/api/v1/incidents?limit=1", admin)["incidents"]] == [kept["id"]]
    whole = medic.rest("GET", "/api/v1/incidents?limit=3", admin)["incidents"]
    assert whole[0]["id"] == kept["id"] and [i["status"] for i in whole] == ["open", "resolved", "resolved"]
    assert [i["id"] for i in whole[1:]] == [i["id"] for i in listed[:-1]]  # newest first within the closed ones


def test_the_incident_detail_carries_its_newest_events_and_the_head(medic):
    admin = medic.token("boss")
    token = medic.token("shipper", "ingest")
    events = [{"service": "api", "message": "queue stalled on partition 4", "user": f"u{i}"} for i in range(8)]
    assert post(medic, "/api/v1/ingest", token, ndjson(events))[0] == 200
    incident = wait_for("the incident", lambda: next(iter(incidents(medic, admin)), None))
    path = f"/api/v1/incidents/{incident['id']}"
    # A long life: many events (as a long-lived incident's `bucket` events would be).
    for _ in range(130):
        assert post(medic, f"{path}/acknowledge", admin, b"{}")[0] == 200
        assert post(medic, f"{path}/mute", admin, b'{"duration_seconds": 600}')[0] == 200
    detail = medic.rest("GET", path, admin)
    seqs = [e["seq"] for e in detail["events"]]
    assert 0 < len(seqs) <= 200 and seqs == sorted(seqs) and seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    assert detail["head"] >= seqs[-1] and seqs[0] > 1
    assert detail["events"][-1]["kind"] == "incident_muted" or detail["events"][-1]["kind"] == "bucket"
    assert detail["incident"]["status"] == "muted"
    # The earlier ones page back through /events.
    earlier = medic.rest("GET", f"{path}/events?since=0&limit={seqs[0] - 1}", admin)["events"]
    assert [e["seq"] for e in earlier] == list(range(1, seqs[0])) and earlier[0]["kind"] == "incident_opened"


def test_the_storm_limit_defers_automatic_bugs_and_an_admin_files_one(medic):
    admin = medic.token("boss")
    token = medic.token("shipper", "ingest")
    for message in ("wrong password for account", "password hash mismatch in login"):
        events = [{"service": "auth", "message": message, "user": f"u{i}"} for i in range(30)]
        assert post(medic, "/api/v1/ingest", token, ndjson(events))[0] == 200
    both = wait_for("two incidents", lambda: (lambda l: l if len(l) >= 2 else None)(incidents(medic, admin)))
    assert all(i["severity"] == "critical" for i in both)

    def deferred_one():
        listed = incidents(medic, admin)
        for i in listed:
            events = medic.rest("GET", f"/api/v1/incidents/{i['id']}/events", admin)["events"]
            if any(e["kind"] == "auto_bug_deferred" for e in events):
                return i
        return None

    deferred = wait_for("one deferred", deferred_one)
    filed = wait_for("the other's bug", lambda: next((i for i in incidents(medic, admin) if i["id"] != deferred["id"] and i["bug"]), None))
    assert filed["automatic"] is True
    time.sleep(1.5)  # later buckets change nothing: still one automatic bug in the hour
    assert next(i for i in incidents(medic, admin) if i["id"] == deferred["id"])["bug"] is None
    status, _, answer = post(medic, f"/api/v1/incidents/{deferred['id']}/file_bug", admin, b"{}", {"Idempotency-Key": "fb-1"})
    # The ack comes once the bug is filed, and names it.
    assert status == 200 and answer["status"] == "fixing" and answer["bug"].startswith("b-"), answer
    bug = answer["bug"]
    assert next(i for i in incidents(medic, admin) if i["id"] == deferred["id"])["bug"] == bug
    assert medic.rest("GET", f"/api/v1/bugs/{bug}", admin)["title"].startswith("Error spike in auth:")
    # A repeat of the command answers the same ack and files nothing more.
    again = post(medic, f"/api/v1/incidents/{deferred['id']}/file_bug", admin, b"{}", {"Idempotency-Key": "fb-1"})
    assert again[0] == 200 and again[2] == answer
    events = medic.rest("GET", f"/api/v1/incidents/{deferred['id']}/events", admin)["events"]
    assert [e["data"]["bug"] for e in events if e["kind"] == "bug_filed"] == [bug]
    assert len([e for e in events if e["kind"] == "auto_bug_deferred"]) == 1


class MedicWithoutRepository(Medic):
    """A server with no repository: the monitor has nowhere to file its bugs."""

    def start(self):
        self.proc = subprocess.Popen(
            [self.bin, "serve", "--no-demo", "--listen", f"127.0.0.1:{self.port}", "--data-dir", self.data_dir,
             "--llm", f"scripted:{self.script}"] + self.extra, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        wait_for_port(self.port)
        return self


def test_a_bug_that_cannot_be_filed_answers_file_bug_with_an_error(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    server = MedicWithoutRepository(str(data), extra=["--config", config(tmp_path)])
    server.start()
    try:
        admin = server.token("boss")
        token = server.token("shipper", "ingest")
        events = [{"service": "api", "message": "disk quota exceeded on volume 3", "user": f"u{i}"} for i in range(8)]
        assert post(server, "/api/v1/ingest", token, ndjson(events))[0] == 200
        incident = wait_for("the incident", lambda: next(iter(incidents(server, admin)), None))
        assert incident["status"] == "open"
        path = f"/api/v1/incidents/{incident['id']}"
        for _ in range(2):  # refused each time: the incident is not left "being filed"
            status, _, answer = post(server, f"{path}/file_bug", admin, b"{}")
            assert status >= 400 and "no bug was filed" in answer["error"]["message"], (status, answer)
        detail = server.rest("GET", path, admin)
        assert detail["incident"]["status"] == "open" and detail["incident"]["bug"] is None
        assert "no repository" in detail["incident"]["reason"]
        assert [e["kind"] for e in detail["events"]].count("auto_bug_deferred") == 2
    finally:
        server.stop()


def test_tailed_file_survives_rotation_truncation_and_a_huge_line(medic, tmp_path):
    admin = medic.token("boss")
    log = tmp_path / "app.log"

    def lines(n, text="ERROR worker crashed user=u{i}"):
        with open(log, "a") as f:
            for i in range(n):
                f.write(text.format(i=i) + "\n")

    def tailed():
        return get(medic, "/api/v1/monitor", admin)[1]["tailed"]

    lines(10, "INFO all good {i}")
    wait_for("10 lines", lambda: tailed() >= 10)
    with open(log, "ab") as f:
        f.write(b"E" * (64 << 20) + b"\n")  # a 64 MiB line: dropped, reported, not buffered
    lines(5, "INFO after the huge line {i}")
    wait_for("the lines after the huge one", lambda: tailed() >= 15, deadline=30)
    os.rename(log, str(log) + ".1")
    lines(5, "INFO rotated {i}")
    wait_for("the rotated file's lines", lambda: tailed() >= 20)
    with open(log, "w") as f:
        f.write("INFO truncated\n")
    wait_for("the truncated file's line", lambda: tailed() >= 21)
    os.remove(log)
    time.sleep(0.5)
    lines(2, "INFO back {i}")
    wait_for("the new file's lines", lambda: tailed() >= 23)
    status = get(medic, "/api/v1/monitor", admin)[1]
    assert status["files"][0]["state"] == "following"
    assert status["rejected"] == 0


def test_history_survives_a_restart(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    server = Medic(str(data), extra=["--config", config(tmp_path)])
    server.start()
    try:
        admin = server.token("boss")
        token = server.token("shipper", "ingest")
        for _ in range(3):
            assert post(server, "/api/v1/ingest", token, ndjson([{"service": "api", "message": "slow disk on node 7"}] * 3))[0] == 200
            time.sleep(1.1)
        time.sleep(1.5)
        before = wait_for("the fingerprint stored", lambda: next(iter(server.rest("GET", "/api/v1/monitor/fingerprints", admin)["fingerprints"]), None))
        assert before["total"] == 9 and before["key"] == "slow disk on node <n>"
    finally:
        server.stop()
    server.start()
    try:
        after = server.rest("GET", "/api/v1/monitor/fingerprints", admin)["fingerprints"][0]
        assert after["total"] == 9 and after["samples"] == ["slow disk on node 7"]
        log = server.proc.stdout
    finally:
        server.stop()
    assert "baselines restored from" in log.read()
