#!/usr/bin/env python3
"""Benchmarks/startup.py: time `medic serve` from exec to its first /healthz answer on a SQLite store that
already holds N proposals (default 100,000), and its RSS then.

    MEDIC_BIN=.build/release/medic python3 Benchmarks/startup.py [N] [RUNS]

The store is made by the server itself (schema and migrations), then filled with N proposals whose stored
documents are today's records in the committed fixtures (Tests/PipelineTests/Fixtures/records-v*/), with
ids made unique, and one revision row each. Mostly finished proposals (applied, rejected, rolled back,
unfixable), a few waiting for review, one in twenty interrupted-while-testing: what a store looks like after
a long time. Prints one RESULT line per run and the median. Loopback only; bounded in time.
"""
import glob
import json
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MEDIC = os.environ.get("MEDIC_BIN", os.path.join(ROOT, ".build/release/medic"))
N = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 3


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def serve(data_dir, port):
    return subprocess.Popen(
        [MEDIC, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", data_dir, "--no-demo", "--log-level", "warning"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_healthy(proc, port, timeout=600):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"medic exited: {proc.stderr.read().decode(errors='replace')[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.005)
    raise SystemExit("medic did not answer /healthz in time")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def fill(db_path):
    fixtures = {}
    for path in sorted(glob.glob(os.path.join(ROOT, "Tests/PipelineTests/Fixtures/records-v1/*.json"))):
        fixtures[os.path.basename(path)[:-5]] = json.load(open(path))
    mix = (["applied"] * 6 + ["rejected"] * 4 + ["rolled-back"] * 3 + ["unfixable"] * 3
           + ["awaiting-review-after-two-fixes"] * 2 + ["manual-tests-failed", "interrupted-while-testing"])
    db = sqlite3.connect(db_path)
    now = int(time.time() * 1000)
    rows, revisions = [], []
    for i in range(N):
        name = mix[i % len(mix)]
        doc = json.loads(json.dumps(fixtures[name]))
        pid = f"p-bench{i:07d}"
        doc["info"]["id"] = pid
        status = doc["status"]
        rows.append((pid, doc["info"]["title"], doc["info"]["description"], doc["info"]["repo"], status,
                     len(doc["revisions"]), doc["info"]["author"], now - (N - i) * 1000, now - (N - i) * 1000,
                     doc["attempt"], json.dumps(doc, sort_keys=True, separators=(",", ":"))))
        for rev in doc["revisions"]:
            revisions.append((pid, rev["number"], json.dumps(rev, sort_keys=True, separators=(",", ":")), now))
    db.executemany("INSERT INTO proposals (id, title, description, repo, status, current_revision, author, created_at, "
                   "updated_at, attempts, doc) VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
    db.executemany("INSERT INTO revisions (proposal_id, number, doc, created_at) VALUES (?,?,?,?)", revisions)
    db.commit()
    db.close()


def main():
    work = tempfile.mkdtemp(prefix="medic-startup-")
    data = os.path.join(work, "data")
    port = free_port()
    proc = serve(data, port)
    wait_healthy(proc, port)
    stop(proc)
    db = glob.glob(os.path.join(data, "*.sqlite*"))
    db = [p for p in db if not p.endswith(("-wal", "-shm"))]
    if not db:
        raise SystemExit(f"no SQLite file under {data}")
    fill(db[0])
    times = []
    for run in range(RUNS):
        port = free_port()
        start = time.monotonic()
        proc = serve(data, port)
        wait_healthy(proc, port)
        elapsed = time.monotonic() - start
        time.sleep(0.5)  # work scheduled right after start (interruptions) settles
        rss = rss_kib(proc.pid)
        stop(proc)
        times.append(elapsed)
        print(f"RESULT startup proposals={N} run={run + 1} seconds={elapsed:.3f} rss_kib={rss}", flush=True)
    print(f"startup with {N} proposals: median {statistics.median(times):.3f} s over {RUNS} runs ({MEDIC})")
    subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
