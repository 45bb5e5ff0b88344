#!/usr/bin/env python3
"""Benchmarks/bugs.py: the bug workflow's timings.

    MEDIC_BIN=.build/release/medic python3 Benchmarks/bugs.py [RUNS]

1. demo: `medic serve` on its embedded defaults (the bundled demo repository and scripted conversation),
   the demo bug (examples/demo-bug.json) reported over REST; report → proposal is the time between the
   bug's `bug_reported` and `bug_proposed` events (their stored `ts`). The scripted replies take the
   `delay_ms` the script gives them (2.5–4 s each, so a person can read them stream): most of the time.
2. parallel vs sequential: a generated Python repository whose suite takes ~5 s (2.5 s of CPU, 2.5 s
   asleep), a scripted conversation with three different passing approaches answered at once (delay 0),
   run with max_parallel_sandboxes 3 and then 1. Wall: `approach_started` of #1 → `approaches_ranked`;
   CPU: the approaches' test processes (the test command ends with the shell's `times`, whose second line
   is its children's user and system time, read back from the `test_output` events — getrusage cannot see
   them: bubblewrap's pid-namespace init does not pass its children's usage up) plus medic's own
   (/proc/PID/stat utime+stime) over the run.

Prints RESULT lines and medians. Loopback only; every wait bounded.
"""
import json
import re
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

from common import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MEDIC = os.environ.get("MEDIC_BIN", os.path.join(ROOT, ".build/release/medic"))
RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 3


def request(port, token, method, path, body=None, key=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method)
    req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if key:
        req.add_header("Idempotency-Key", key)
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)


def start(args, data_dir):
    port = free_port()
    log = open(os.path.join(data_dir, "log"), "w+")
    proc = subprocess.Popen([MEDIC, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", os.path.join(data_dir, "data"), "--no-demo"] + args,
                            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    deadline = time.monotonic() + 60
    token = None
    while time.monotonic() < deadline and token is None:
        time.sleep(0.2)
        log.seek(0)
        for line in log.read().splitlines():
            if "#token=" in line:
                token = line.split("#token=")[1].split()[0]
        if proc.poll() is not None:
            raise SystemExit(f"medic exited:\n{open(log.name).read()[-2000:]}")
    if token is None:
        raise SystemExit("no admin token printed")
    return proc, port, token


def events_until(port, token, bug, kind, timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = request(port, token, "GET", f"/api/v1/bugs/{bug}/events?since=0&limit=1000")["events"]
        if any(e["kind"] == kind for e in events):
            return events
        if any(e["kind"] == "bug_unfixed" for e in events):
            raise SystemExit(f"bug {bug} ended unfixed")
        time.sleep(0.2)
    raise SystemExit(f"no {kind} within {timeout}s")


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)


def ts(events, kind):
    return next(e["ts"] for e in events if e["kind"] == kind)


def demo():
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as d:
        proc, port, token = start([], d)
        try:
            report = json.load(open(os.path.join(ROOT, "examples/demo-bug.json")))
            bug = request(port, token, "POST", "/api/v1/bugs", report, key="bench")["bug"]
            events = events_until(port, token, bug, "bug_proposed")
            return (ts(events, "bug_proposed") - ts(events, "bug_reported")) / 1000
        finally:
            stop(proc)


SUITE = '''import time, unittest
class Slow(unittest.TestCase):
    def test_work(self):
        end = time.process_time() + 2.5
        n = 0
        while time.process_time() < end:
            n += 1
        time.sleep(2.5)
        from app import value
        self.assertEqual(value(), 42)
'''


def approach(n):
    body = "def value():\n" + "".join(f"    x{i} = {i}\n" for i in range(n)) + "    return 42\n"
    return {"unfixable": False, "explanation": f"Approach {n}: return 42 ({n} extra lines).", "changes": [{"path": "app.py", "action": "modify", "content": body}]}


def parallel(slots):
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as d:
        repo = os.path.join(d, "repo")
        os.makedirs(os.path.join(repo, "tests"))
        open(os.path.join(repo, "app.py"), "w").write("def value():\n    return 41\n")
        open(os.path.join(repo, "tests", "test_slow.py"), "w").write(SUITE)
        for cmd in (["git", "init", "-q"], ["git", "add", "."], ["git", "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "init"]):
            subprocess.run(cmd, cwd=repo, check=True)
        script = {"replies": [
            {"match": "slow", "purpose": "bug_analysis", "reply": {"summary": "value() returns 41", "locations": [{"file": "app.py", "line": 2, "why": "off by one"}], "causes": ["off by one"]}},
            {"match": "slow", "purpose": "bug_reproducer", "reply": {"path": "tests/test_bug.py", "content": "import unittest\nfrom app import value\nclass Bug(unittest.TestCase):\n    def test_value(self):\n        self.assertEqual(value(), 42)\n", "explanation": "value() must be 42"}},
        ] + [{"match": "slow", "purpose": "bug_approach", "approach": n, "reply": approach(n)} for n in (1, 2, 3)]}
        script_path = os.path.join(d, "script.json")
        json.dump(script, open(script_path, "w"))
        config = {"repositories": [{"name": "slow", "path": repo, "test_command": "python3 -m unittest discover -s tests; s=$?; times; exit $s"}], "max_parallel_sandboxes": slots}
        config_path = os.path.join(d, "medic.json")
        json.dump(config, open(config_path, "w"))
        proc, port, token = start(["--config", config_path, "--llm", f"scripted:{script_path}"], d)
        try:
            bug = request(port, token, "POST", "/api/v1/bugs", {"repo": "slow", "title": "slow value is wrong", "description": "value() should be 42"}, key="b")["bug"]
            medic_before = own_cpu(proc.pid)
            events = events_until(port, token, bug, "approaches_ranked")
            medic_cpu = own_cpu(proc.pid) - medic_before
            wall = (ts(events, "approaches_ranked") - ts(events, "approach_started")) / 1000
            tests_cpu = 0.0
            for e in events:
                if e["kind"] == "test_output" and "approach" in e["data"]:
                    times = [l for l in e["data"]["lines"] if re.fullmatch(r"\d+m[\d.]+s \d+m[\d.]+s", l.strip())]
                    if len(times) >= 2:  # the shell's own line, then its children's
                        user, system = (float(m) * 60 + float(s) for m, s in re.findall(r"(\d+)m([\d.]+)s", times[1]))
                        tests_cpu += user + system
        finally:
            stop(proc)
        return wall, tests_cpu + medic_cpu


def own_cpu(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    demos = []
    for i in range(RUNS):
        seconds = demo()
        demos.append(seconds)
        print(f"RESULT demo report->proposal {seconds:.2f} s")
    print(f"MEDIAN demo report->proposal {statistics.median(demos):.2f} s")
    for slots in (3, 1):
        walls, cpus = [], []
        for i in range(RUNS):
            wall, cpu = parallel(slots)
            walls.append(wall)
            cpus.append(cpu)
            print(f"RESULT approaches max_parallel_sandboxes={slots} wall {wall:.2f} s cpu {cpu:.2f} s")
        print(f"MEDIAN approaches max_parallel_sandboxes={slots} wall {statistics.median(walls):.2f} s cpu {statistics.median(cpus):.2f} s")


if __name__ == "__main__":
    main()
