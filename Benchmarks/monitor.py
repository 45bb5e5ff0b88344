#!/usr/bin/env python3
"""Benchmarks/monitor.py: the monitor's intake on one core — JSON lines/s through POST /api/v1/ingest, lines/s from a
tailed file, and the server's memory with 100,000 distinct fingerprints.

    Benchmarks/monitor.py [--medic .build/release/medic] [--seconds 10] [--file-lines 1000000]

Starts a release `medic serve --no-demo` on a fresh data directory (SQLite), pinned to core 1 with taskset when
there are two cores or more (the client runs on core 0), with a config that tails one file (`json` format) and lifts
the ingest rate limit out of the way (the limit is per token, 200,000 lines/s by default: a measurement of the
parser, not of the limit). Bounded in time and count; loopback only; standard library only.

1. HTTP: bodies of 10,000 NDJSON lines (service, level, message with a number, user, ts absent) posted over one
   keep-alive connection for --seconds; lines/s = lines accepted / wall time; the server's CPU time per line.
2. File: --file-lines lines appended to the tailed file in 4 MiB writes; lines/s = lines / time until GET
   /api/v1/monitor reports them all `tailed`.
3. Memory: VmRSS after 100,000 errors with distinct fingerprints (distinct words: numbers are normalised away),
   minus VmRSS before them.
"""
import argparse
import http.client
import json
import os
import random
import shutil
import string
import subprocess
import sys
import tempfile
import time

from common import free_port, wait_port

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--medic", default=os.path.join(ROOT, ".build", "release", "medic"))
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--file-lines", type=int, default=1_000_000)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="medic-bench-monitor-")
    tailed = os.path.join(work, "app.log")
    open(tailed, "w").close()
    config = os.path.join(work, "config.json")
    with open(config, "w") as f:
        json.dump({"monitor": {"files": [{"path": tailed, "service": "tailed", "format": "json"}],
                               "ingest": {"max_lines_per_second": 100_000_000, "burst_lines": 200_000_000}}}, f)
    port = free_port()
    pin = ["taskset", "-c", "1"] if os.cpu_count() and os.cpu_count() >= 2 and shutil.which("taskset") else []
    data = os.path.join(work, "data")
    token = subprocess.run([args.medic, "token", "create", "--name", "shipper", "--role", "ingest", "--data-dir", data],
                           capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
    admin = subprocess.run([args.medic, "token", "create", "--name", "bench", "--role", "admin", "--data-dir", data],
                           capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
    log = open(os.path.join(work, "serve.log"), "w")
    proc = subprocess.Popen(pin + [args.medic, "serve", "--no-demo", "--listen", f"127.0.0.1:{port}", "--data-dir", data,
                                   "--config", config], stdout=log, stderr=subprocess.STDOUT)
    if pin:
        os.sched_setaffinity(0, {0})
    try:
        wait_port(port)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

        def monitor():
            conn.request("GET", "/api/v1/monitor", headers={"Authorization": f"Bearer {admin}"})
            return json.loads(conn.getresponse().read())

        def post(body):
            conn.request("POST", "/api/v1/ingest", body=body, headers={"Authorization": f"Bearer {token}"})
            response = conn.getresponse()
            out = json.loads(response.read())
            if response.status != 200:
                raise RuntimeError(f"ingest answered {response.status}: {out}")
            return out

        # 1. HTTP ingest.
        lines = [json.dumps({"service": "api", "level": "error" if i % 4 == 0 else "info",
                             "message": f"GET /orders/{i} failed: upstream timeout after {i % 997} ms", "user": f"u{i % 500}"})
                 for i in range(10_000)]
        body = ("\n".join(lines) + "\n").encode()
        post(body)   # warm-up
        cpu0, start, accepted = cpu_seconds(proc.pid), time.time(), 0
        while time.time() - start < args.seconds:
            accepted += post(body)["accepted"]
        elapsed, cpu = time.time() - start, cpu_seconds(proc.pid) - cpu0
        print(f"RESULT http_ingest lines_per_s={accepted / elapsed:,.0f} lines={accepted:,} seconds={elapsed:.2f} "
              f"server_cpu_us_per_line={cpu / accepted * 1e6:.2f} body_bytes={len(body):,}")

        # 2. Tailed file.
        before = monitor()["tailed"]
        record = [json.dumps({"service": "tailed", "level": "error" if i % 4 == 0 else "info",
                              "message": f"job {i} failed: disk quota exceeded on volume {i % 31}"}) for i in range(10_000)]
        chunk = ("\n".join(record) + "\n").encode()
        start = time.time()
        with open(tailed, "ab") as f:
            written = 0
            while written < args.file_lines:
                f.write(chunk)
                written += len(record)
        target = before + written
        deadline = time.time() + 120
        while monitor()["tailed"] < target:
            if time.time() > deadline:
                raise RuntimeError(f"tailed {monitor()['tailed'] - before} of {written} lines in 120 s")
            time.sleep(0.02)
        elapsed = time.time() - start
        print(f"RESULT tailed_file lines_per_s={written / elapsed:,.0f} lines={written:,} seconds={elapsed:.2f}")

        # 3. Memory with 100,000 distinct fingerprints.
        rss0 = rss_kb(proc.pid)
        rng = random.Random(7)
        word = lambda: "".join(rng.choice(string.ascii_lowercase) for _ in range(10))
        distinct = [json.dumps({"service": "api", "level": "error", "message": f"{word()} {word()} failed in {word()}"})
                    for _ in range(100_000)]
        for i in range(0, len(distinct), 10_000):
            post(("\n".join(distinct[i:i + 10_000]) + "\n").encode())
        time.sleep(1.5)   # the open bucket closes; its fingerprints are tracked
        rss1 = rss_kb(proc.pid)
        print(f"RESULT fingerprints tracked={monitor()['fingerprints']:,} rss_before_kb={rss0:,} rss_after_kb={rss1:,} "
              f"delta_mb={(rss1 - rss0) / 1024:.1f} bytes_per_fingerprint={(rss1 - rss0) * 1024 / 100_000:,.0f}")
    finally:
        proc.kill()
        proc.wait()
        log.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
