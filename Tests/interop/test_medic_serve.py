"""`medic serve` as a user runs it: third-party WebSocket clients over ws:// and wss://, kill -9 durability,
`medic watch` resuming across a restart, and 10,000 subscribers on one topic in a separate process."""
import asyncio
import base64
import json
import os
import resource
import ssl
import subprocess
import threading
import time

import pytest
import websockets

from interop_support import binary
from medic_server import Medic


def run(coro, timeout=120):
    return asyncio.run(asyncio.wait_for(coro, timeout=timeout))


def propose(medic, token):
    ack = medic.rest("POST", "/api/v1/proposals", token,
                     {"title": "interop", "description": "d", "changes": [{"path": "a.txt", "action": "create", "content": "x"}]})
    return ack["proposal"]


def test_third_party_client_over_ws_and_wss(tmp_path, tls_files):
    cert, key = tls_files
    from interop_support import free_port
    tls_port = free_port()
    medic = Medic(str(tmp_path), extra=["--tls-listen", f"127.0.0.1:{tls_port}", "--tls-cert", cert, "--tls-key", key]).start()
    try:
        token = medic.token("alice")

        async def session(uri, context=None):
            async with websockets.connect(uri, ssl=context, subprotocols=["medic.v1"],
                                          additional_headers={"Authorization": f"Bearer {token}"}) as ws:
                assert ws.subprotocol == "medic.v1"
                welcome = json.loads(await ws.recv())
                assert welcome == {"type": "welcome", "principal": "alice", "role": "admin", "protocol": "medic.v1"}
                await ws.send(json.dumps({"type": "stats", "id": "s1"}))
                ack = json.loads(await ws.recv())
                assert ack["type"] == "ack" and ack["id"] == "s1" and "total_failures" in ack
                await ws.send("{broken")
                assert json.loads(await ws.recv())["code"] == "bad_json"

        run(session(f"ws://127.0.0.1:{medic.port}/ws"))
        context = ssl.create_default_context(cafile=cert)
        run(session(f"wss://localhost:{tls_port}/ws", context))
        # A browser Origin from another site is refused (same origin by default).
        async def foreign():
            with pytest.raises(websockets.InvalidStatus) as refused:
                async with websockets.connect(f"ws://127.0.0.1:{medic.port}/ws", origin="http://evil.example"):
                    pass
            assert refused.value.response.status_code == 403
        run(foreign())
    finally:
        medic.stop()


def test_kill_minus_9_loses_no_acknowledged_event(tmp_path):
    medic = Medic(str(tmp_path)).start()
    token = medic.token("alice")
    proposal = propose(medic, token)
    acked = []

    async def stream():
        try:
            async with websockets.connect(f"ws://127.0.0.1:{medic.port}/ws", subprotocols=["medic.v1"],
                                          additional_headers={"Authorization": f"Bearer {token}"}) as ws:
                await ws.recv()  # welcome
                n = 0
                while True:
                    n += 1
                    await ws.send(json.dumps({"type": "comment", "id": f"c{n}", "proposal": proposal, "text": f"comment {n}"}))
                    while True:
                        reply = json.loads(await ws.recv())
                        if reply.get("id") == f"c{n}":
                            break
                    if reply["type"] == "ack":
                        acked.append(f"comment {n}")
                    if n == 150:
                        threading.Thread(target=medic.kill9).start()
        except (websockets.ConnectionClosed, OSError):
            return

    run(stream())
    assert len(acked) >= 150
    medic.start()
    try:
        events = medic.rest("GET", f"/api/v1/proposals/{proposal}/events?since=0&limit=5000", token)["events"]
        seqs = [e["seq"] for e in events]
        assert seqs == list(range(1, len(seqs) + 1)), "seq must stay dense across the crash"
        texts = [e["data"]["text"] for e in events if e["kind"] == "comment"]
        for text in acked:
            assert texts.count(text) == 1, f"{text} acknowledged but stored {texts.count(text)} times"
    finally:
        medic.stop()


def test_medic_watch_resumes_across_a_restart(tmp_path):
    medic = Medic(str(tmp_path)).start()
    try:
        token = medic.token("alice")
        bot = medic.token("watcher", role="bot")
        proposal = propose(medic, token)
        head = len(medic.rest("GET", f"/api/v1/proposals/{proposal}/events?since=0", token)["events"])
        total = head + 40
        watch = subprocess.Popen([medic.bin, "watch", proposal, "--url", f"http://127.0.0.1:{medic.port}", "--token", bot,
                                  "--count", str(total)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for n in range(20):
            post_comment(medic, token, proposal, f"before {n}")
        time.sleep(0.5)
        medic.stop()
        medic.start()
        for n in range(20):
            post_comment(medic, token, proposal, f"after {n}")
        out, err = watch.communicate(timeout=60)
        seqs = [int(line.split("\t")[0]) for line in out.splitlines()]
        assert seqs == list(range(1, total + 1)), err
        assert "reconnecting" in err
    finally:
        medic.stop()


def post_comment(medic, token, proposal, text):
    async def go():
        async with websockets.connect(f"ws://127.0.0.1:{medic.port}/ws", subprotocols=["medic.v1"],
                                      additional_headers={"Authorization": f"Bearer {token}"}) as ws:
            await ws.recv()
            # A fresh id per comment: a repeated id would (rightly) be applied only once.
            command_id = os.urandom(8).hex()
            await ws.send(json.dumps({"type": "comment", "id": command_id, "proposal": proposal, "text": text}))
            while json.loads(await ws.recv()).get("id") != command_id:
                pass
    run(go())


# Up to 19,000: this machine allows 20,000 open files per process (README: Limits), and the server and
# this process each hold one fd per subscriber.
SUBSCRIBERS = 19_000


async def raw_subscriber(port, token, topic, count, ready, results, index):
    """A minimal RFC 6455 client (the websockets library is too heavy for 19,000 sockets in one process)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write((f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: medic.v1\r\n"
                  f"Authorization: Bearer {token}\r\n\r\n").encode())
    await reader.readuntil(b"\r\n\r\n")
    payload = json.dumps({"type": "subscribe", "topic": topic}).encode()
    mask = os.urandom(4)
    writer.write(bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
    texts = []
    subscribed = False
    while len(texts) < count:
        head = await reader.readexactly(2)
        length = head[1] & 0x7F
        if length == 126:
            length = int.from_bytes(await reader.readexactly(2), "big")
        elif length == 127:
            length = int.from_bytes(await reader.readexactly(8), "big")
        body = await reader.readexactly(length)
        if head[0] & 0x0F != 1:
            continue
        message = json.loads(body)
        if message.get("type") == "ack" and not subscribed:
            subscribed = True
            ready.release()
        elif message.get("kind") == "comment":
            texts.append(message["data"]["text"])
    results[index] = texts
    writer.close()


def test_nineteen_thousand_subscribers_receive_a_burst_complete_and_in_order(tmp_path):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < SUBSCRIBERS + 200:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} is below {SUBSCRIBERS + 200}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    medic = Medic(str(tmp_path)).start()
    try:
        token = medic.token("alice")
        proposal = propose(medic, token)
        burst = 20

        async def main():
            ready = asyncio.Semaphore(0)
            results = [None] * SUBSCRIBERS
            tasks = []
            for i in range(SUBSCRIBERS):
                tasks.append(asyncio.create_task(raw_subscriber(medic.port, token, f"proposal:{proposal}", burst, ready, results, i)))
                if i % 500 == 499:
                    await asyncio.sleep(0)
            for _ in range(SUBSCRIBERS):
                await ready.acquire()
            async with websockets.connect(f"ws://127.0.0.1:{medic.port}/ws", subprotocols=["medic.v1"],
                                          additional_headers={"Authorization": f"Bearer {token}"}) as ws:
                await ws.recv()
                for n in range(burst):
                    await ws.send(json.dumps({"type": "comment", "proposal": proposal, "text": f"burst {n}"}))
                await asyncio.gather(*tasks)
            return results

        results = run(main(), timeout=300)
        expected = [f"burst {n}" for n in range(burst)]
        assert all(r == expected for r in results)
    finally:
        medic.stop()


def test_serve_outside_the_checkout_without_a_model_says_how_to_choose_one(tmp_path):
    """`medic serve --repo … --no-demo` run from another directory, with no --llm and no API key: the default model
    is the demo's script (relative to the checkout) — the error names the file and the two ways out, exit non-zero."""
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "-C", str(repo), "init", "-q"], check=True)
    env = {k: v for k, v in os.environ.items() if k != "ANTHROPIC_API_KEY"}
    done = subprocess.run([binary("MEDIC_BIN"), "serve", "--no-demo", "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "data"),
                           "--repo", str(repo), "--test-command", "true"],
                          cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=30)
    out = done.stdout + done.stderr
    assert done.returncode != 0, out
    assert "scripted conversation file not found: examples/demo-conversation.json" in out, out
    assert "--llm anthropic" in out and "--llm scripted:FILE" in out, out
