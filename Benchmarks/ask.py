#!/usr/bin/env python3
"""Benchmarks/ask.py: Ask's latencies on the demo users database (50,000 rows, SQLite).

    MEDIC_BIN=.build/release/medic .venv/bin/python Benchmarks/ask.py [N]

1. Structured queries (`POST /api/v1/sources/users/query`, no LLM): N runs (default 200) of each of four
   queries shaped like the customer's questions; p50/p99 of the HTTP round trip on loopback.
2. Time to the first streamed token of an answer: Medic on the fake Anthropic server
   (Tests/IntegrationTests/fixtures/fake_anthropic.py, answering at once with a streamed final answer); an admin
   asks over the WebSocket and the time from sending `ask` to the first `ask_thinking` event is taken, N/10 runs
   (the fake writes its first delta FAKE_DELAY_MS after the request; Medic's own share is the rest).

Prints RESULT lines. Loopback only; every wait bounded.
"""
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

import websockets

from common import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MEDIC = os.environ.get("MEDIC_BIN", os.path.join(ROOT, ".build/release/medic"))
N = int(sys.argv[1]) if len(sys.argv) > 1 else 200


def call(port, token, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method)
    req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)


def start(data_dir, extra, env=None):
    port = free_port()
    log = open(os.path.join(data_dir, "log"), "w+")
    proc = subprocess.Popen([MEDIC, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", os.path.join(data_dir, "data"), "--no-demo"] + extra,
                            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        time.sleep(0.2)
        log.seek(0)
        text = log.read()
        if "#token=" in text:
            token = text.split("#token=")[1].split()[0]
            # The demo users database is made at the first start (under a second).
            while time.monotonic() < deadline:
                try:
                    sources = call(port, token, "GET", "/api/v1/sources")["sources"]
                    if any(s["name"] == "users" for s in sources):
                        return proc, port, token
                except Exception:
                    pass
                time.sleep(0.2)
        if proc.poll() is not None:
            raise SystemExit(f"medic exited:\n{text[-2000:]}")
    raise SystemExit("medic did not come up with the users source")


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


QUERIES = {
    "tokyo count": {"table": "users", "where": {"gender": "female", "is_active": 1, "city": "Tokyo", "wallet_balance_usd": {"min": 500, "max": 1950}}, "aggregate": "count"},
    "avg balance by region": {"table": "users", "group_by": "region", "aggregate": "avg", "of": "wallet_balance_usd"},
    "kyc count": {"table": "users", "where": {"kyc_verified": 1}, "aggregate": "count"},
    "top 10 active": {"table": "users", "order_by": "activity_score", "descending": True, "limit": 10},
}


def structured():
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as d:
        proc, port, token = start(d, [])
        try:
            for name, query in QUERIES.items():
                try:
                    call(port, token, "POST", "/api/v1/sources/users/query", query)
                except urllib.error.HTTPError as e:
                    print(f"SKIP {name}: {e.code} {e.read().decode()[:200]}")
                    continue
                times = []
                for _ in range(N):
                    t = time.perf_counter()
                    call(port, token, "POST", "/api/v1/sources/users/query", query)
                    times.append((time.perf_counter() - t) * 1000)
                print(f"RESULT structured '{name}' p50 {pct(times, 50):.2f} ms p99 {pct(times, 99):.2f} ms ({N} runs)")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)


async def first_token(port, token, question):
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws", subprotocols=["medic.v1"], open_timeout=10) as ws:
        await ws.send(json.dumps({"type": "hello", "id": "h", "token": token}))
        while json.loads(await asyncio.wait_for(ws.recv(), 10)).get("id") != "h":
            pass
        await ws.send(json.dumps({"type": "subscribe", "id": "s", "topic": "asks"}))
        t = time.perf_counter()
        command_id = f"ask-{time.time_ns()}"  # a repeated id would answer with the first ask (idempotency)
        await ws.send(json.dumps({"type": "ask", "id": command_id, "question": question, "source": "users"}))
        ask_id = None
        while True:
            msg = json.loads(await asyncio.wait_for(ws.recv(), 30))
            if os.environ.get("ASK_BENCH_DEBUG"): print(msg)
            if msg.get("id") == command_id:
                if msg.get("type") != "ack":
                    raise SystemExit(f"ask refused: {msg}")
                ask_id = msg["ask"]
                await ws.send(json.dumps({"type": "subscribe", "id": "s2", "topic": f"ask:{ask_id}"}))
            if msg.get("type") == "event" and msg.get("kind") == "ask_thinking":
                return (time.perf_counter() - t) * 1000


# The fake writes each delta this long after the previous one (the first after the request): the page and this
# script subscribe to ask:<id> once the ack names it, and ask_thinking is ephemeral — a delta sent before the
# subscription is not replayed (the stored answer is).
FAKE_DELAY_MS = 100


def streaming():
    fake = subprocess.Popen([sys.executable, os.path.join(ROOT, "Tests/IntegrationTests/fixtures/fake_anthropic.py")],
                            stdout=subprocess.PIPE, stdin=subprocess.PIPE)
    fake_port = int(fake.stdout.readline())
    answer = json.dumps({"answer": "This counts the users asked about.", "sql": "SELECT count(*) FROM users"})
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as d:
        env = dict(os.environ, ANTHROPIC_API_KEY="bench")
        proc, port, token = start(d, ["--llm", "anthropic", "--llm-url", f"http://127.0.0.1:{fake_port}"], env=env)
        try:
            times = []
            for i in range(max(5, N // 10)):
                req = urllib.request.Request(f"http://127.0.0.1:{fake_port}/control/script", method="POST",
                                             data=json.dumps([{"status": 200, "sse_text": answer, "chunk_size": 16, "chunk_delay_ms": FAKE_DELAY_MS}]).encode())
                urllib.request.urlopen(req, timeout=10).read()
                times.append(asyncio.run(first_token(port, token, f"How many users are there? ({i})")))
            print(f"RESULT first streamed token p50 {pct(times, 50):.1f} ms p99 {pct(times, 99):.1f} ms ({len(times)} asks, fake Anthropic on loopback "
                  f"writing its first delta {FAKE_DELAY_MS} ms after the request: Medic's own share is the rest)")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
            fake.kill()


if __name__ == "__main__":
    structured()
    streaming()
