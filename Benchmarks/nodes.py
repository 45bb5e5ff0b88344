#!/usr/bin/env python3
"""Benchmarks/nodes.py: cross-node delivery on one PostgreSQL — latency from a commit on node A to receipt by a
subscriber of node B, against the same subscriber on node A, and fan-out throughput with subscribers spread over 3
nodes against all on 1.

    Benchmarks/nodes.py [--medic .build/release/medic] [--messages 2000] [--subscribers 300]
                        [--loadgen Benchmarks/loadgen/.build/release/loadgen] [--loadgen-subscribers 1500] [--duration 5]

Starts a throwaway PostgreSQL (scripts/postgres.sh), 3 `medic serve --node-id …` on loopback, one admin token.
Latency: a publisher on node1 sends `comment` commands one at a time (each acked before the next); subscribers on
node1 and node2 record receive time − the event's `ts` (the server's clock when the command was stored; same host,
same clock). Fan-out: N subscribers of one proposal, all on node1 or spread over the 3 nodes; the publisher keeps
at most 16 comments unacknowledged; deliveries/s counted until every subscriber has every comment. Bounded in time
and count; loopback only. Needs python3 with the `websockets` package (the test venv: .venv/bin/python).
"""
import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time

import websockets

from common import free_port, wait_port

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))] if values else float("nan")


async def session(port, token):
    ws = await websockets.connect(f"ws://127.0.0.1:{port}/ws", subprotocols=["medic.v1"], max_size=None, open_timeout=10)
    await ws.send(json.dumps({"type": "hello", "id": "h", "token": token}))
    assert json.loads(await ws.recv())["type"] == "welcome"
    return ws


async def latency(ports, token, proposal, messages):
    topic = f"proposal:{proposal}"
    received = {"same": [], "cross": []}
    done = asyncio.Event()

    async def watch(port, key):
        ws = await session(port, token)
        await ws.send(json.dumps({"type": "subscribe", "topic": topic}))
        async for text in ws:
            now = time.time() * 1000
            msg = json.loads(text)
            if msg.get("type") == "event" and msg.get("kind") == "comment":
                received[key].append(now - msg["ts"])
                if len(received[key]) >= messages:
                    break
        await ws.close()

    watchers = [asyncio.ensure_future(watch(ports[0], "same")), asyncio.ensure_future(watch(ports[1], "cross"))]
    await asyncio.sleep(0.5)
    pub = await session(ports[0], token)
    for i in range(messages):
        await pub.send(json.dumps({"type": "comment", "id": f"l{i}", "proposal": proposal, "text": f"latency {i}"}))
        while True:
            msg = json.loads(await pub.recv())
            if msg.get("id") == f"l{i}":
                break
    await asyncio.wait_for(asyncio.gather(*watchers), 60)
    await pub.close()
    return received


async def fanout(ports, token, proposal, subscribers, messages, window=16):
    topic = f"proposal:{proposal}"
    run = f"f{len(ports)}-"   # command ids are idempotent per principal: each run its own
    counts = [0] * subscribers
    sockets = []
    for i in range(subscribers):
        ws = await session(ports[i % len(ports)], token)
        await ws.send(json.dumps({"type": "subscribe", "topic": topic}))
        sockets.append(ws)
    await asyncio.sleep(1.0)

    async def read(i, ws):
        async for text in ws:
            if '"kind":"comment"' in text:
                counts[i] += 1
                if counts[i] >= messages:
                    break

    readers = [asyncio.ensure_future(read(i, ws)) for i, ws in enumerate(sockets)]
    pub = await session(ports[0], token)
    start = time.time()
    inflight = 0
    sent = 0
    acked = 0
    while acked < messages:
        while sent < messages and inflight < window:
            await pub.send(json.dumps({"type": "comment", "id": f"{run}{sent}", "proposal": proposal, "text": f"fan {sent}"}))
            sent += 1
            inflight += 1
        msg = json.loads(await pub.recv())
        if msg.get("type") == "error":
            raise RuntimeError(f"the publisher's comment was refused: {msg}")
        if msg.get("type") == "ack" and str(msg.get("id", "")).startswith(run):
            acked += 1
            inflight -= 1
    try:
        await asyncio.wait_for(asyncio.gather(*readers), 120)
    except asyncio.TimeoutError:
        raise RuntimeError(f"subscribers did not get all {messages} comments: {sorted(set(counts))}")
    elapsed = time.time() - start
    await pub.close()
    for ws in sockets:
        await ws.close()
    return subscribers * messages / elapsed, elapsed


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--medic", default=os.path.join(ROOT, ".build", "release", "medic"))
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--subscribers", type=int, default=300)
    parser.add_argument("--loadgen", default=os.path.join(ROOT, "Benchmarks", "loadgen", ".build", "release", "loadgen"),
                        help="the Swift load generator (cd Benchmarks/loadgen && swift build -c release); skipped when missing")
    parser.add_argument("--loadgen-subscribers", type=int, default=1500)
    parser.add_argument("--duration", type=float, default=5)
    args = parser.parse_args()
    env = subprocess.run([os.path.join(ROOT, "scripts", "postgres.sh"), "start"], capture_output=True, text=True, check=True).stdout
    pg = dict(line.removeprefix("export ").split("=", 1) for line in env.strip().splitlines())
    url = pg["MEDIC_TEST_POSTGRES_URL"].rsplit("/", 1)[0] + "/bench_nodes"
    work = tempfile.mkdtemp(prefix="medic-bench-nodes-")
    repo = os.path.join(work, "repo")
    os.makedirs(repo)
    with open(os.path.join(repo, "README"), "w") as f:
        f.write("x\n")
    for a in (["init", "-q", "-b", "main"], ["add", "-A"], ["-c", "user.name=b", "-c", "user.email=b@b", "commit", "-q", "-m", "x"]):
        subprocess.run(["git", "-C", repo, *a], check=True)
    script = os.path.join(work, "script.json")
    with open(script, "w") as f:
        f.write('{"replies": []}')
    procs = []
    try:
        ports = []
        for i in range(3):
            port = free_port()
            data = os.path.join(work, f"node{i + 1}")
            os.makedirs(data)
            log = open(os.path.join(data, "serve.log"), "w")
            procs.append(subprocess.Popen([args.medic, "serve", "--no-demo", "--listen", f"127.0.0.1:{port}", "--store", url,
                                           "--node-id", f"node{i + 1}", "--data-dir", data, "--repo", repo, "--test-command", "true",
                                           "--llm", f"scripted:{script}"], stdout=log, stderr=subprocess.STDOUT))
            wait_port(port)
            ports.append(port)
        token = subprocess.run([args.medic, "token", "create", "--name", "bench", "--role", "admin", "--store", url],
                               capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]

        async def run():
            ws = await session(ports[0], token)
            await ws.send(json.dumps({"type": "propose", "id": "p", "repo": "repo", "title": "bench", "description": "d",
                                      "changes": [{"path": "b.txt", "action": "create", "content": "b\n"}]}))
            while True:
                msg = json.loads(await ws.recv())
                if msg.get("id") == "p":
                    proposal = msg["proposal"]
                    break
            await ws.close()
            lat = await latency(ports, token, proposal, args.messages)
            one = await fanout(ports[:1], token, proposal, args.subscribers, 200)
            three = await fanout(ports, token, proposal, args.subscribers, 200)
            return lat, one, three

        lat, one, three = asyncio.run(run())
        for key, label in (("same", "same node (node1 → node1)"), ("cross", "cross node (node1 → node2)")):
            v = lat[key]
            print(f"RESULT latency {label}: n={len(v)} p50={percentile(v, 0.5):.2f} ms p99={percentile(v, 0.99):.2f} ms max={max(v):.2f} ms")
        print(f"RESULT fanout {args.subscribers} subscribers on 1 node: {one[0]:,.0f} deliveries/s ({one[1]:.2f} s)")
        print(f"RESULT fanout {args.subscribers} subscribers over 3 nodes: {three[0]:,.0f} deliveries/s ({three[1]:.2f} s)")
        # The Swift load generator (one epoll thread, not the Python client's ceiling): fan-out through the durable
        # path with every subscriber on node1, then spread over the 3 nodes; server CPU summed over the nodes.
        if os.path.exists(args.loadgen):
            pids = [str(p.pid) for p in procs]
            for label, extra in (("1 node", []), ("3 nodes", ["--spread", f"{ports[1]},{ports[2]}", "--also-pids", ",".join(pids[1:])])):
                out = subprocess.run([args.loadgen, "--mode", "fanout", "--target", "medic", "--token", token, "--repo", "repo",
                                      "--port", str(ports[0]), "--server-pid", pids[0], "--subscribers", str(args.loadgen_subscribers),
                                      "--window", "16", "--duration", str(args.duration), "--label", label, *extra],
                                     capture_output=True, text=True, timeout=300).stdout
                result = [line for line in out.splitlines() if line.startswith("RESULT")]
                print(f"RESULT loadgen fanout {args.loadgen_subscribers} subscribers, {label}: " + (result[0] if result else out[-500:]))
        else:
            print(f"(no {args.loadgen}: the loadgen fan-out is skipped)")
    finally:
        for p in procs:
            p.kill()
            p.wait()
        subprocess.run([os.path.join(ROOT, "scripts", "postgres.sh"), "stop", pg["MEDIC_TEST_POSTGRES_DIR"]], capture_output=True)


if __name__ == "__main__":
    sys.exit(main())
