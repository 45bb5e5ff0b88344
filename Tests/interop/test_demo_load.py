"""examples/demo-load.py, the demo app's traffic: the users whose passwords need normalising fail with
'wrong password' in `plain` log lines the monitor reads; a fix written into the repository while it runs takes
effect within about a second; a broken module is logged, not fatal; it writes nothing into the repository, refuses
bad arguments and stops when its parent does."""
import os
import re
import shutil
import signal
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SCRIPT = os.path.join(ROOT, "examples", "demo-load.py")
LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (INFO|ERROR) auth: (login ok|login failed|service unavailable) user=([a-z.]+)")
BROKEN = {"juergen.mueller", "zoe.dupont", "amelie.roux", "linus.berg"}


def repo_copy(tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(os.path.join(ROOT, "examples", "demo-repo"), repo)
    return repo


def lines(log):
    with open(log, encoding="utf-8") as f:
        return [LINE.match(line).groups() for line in f.read().splitlines()]


def wait_until(probe, deadline=15.0):
    end = time.time() + deadline
    while time.time() < end:
        if probe():
            return True
        time.sleep(0.1)
    return False


def test_the_normalising_users_fail_and_a_fix_written_while_it_runs_stops_the_errors(tmp_path):
    repo = repo_copy(tmp_path)
    before = sorted(p.relative_to(repo).as_posix() for p in repo.rglob("*"))
    log = tmp_path / "app.log"
    proc = subprocess.Popen([sys.executable, SCRIPT, "--repo", str(repo), "--log", str(log), "--rate", "100", "--duration", "30", "--seed", "3"])
    try:
        assert wait_until(lambda: log.exists() and len(log.read_text().splitlines()) >= 200)
        seen = lines(log)   # every line has the documented shape (LINE.match would be None otherwise)
        failed = {user for (level, what, user) in seen if what == "login failed"}
        ok = {user for (level, what, user) in seen if what == "login ok"}
        assert failed == BROKEN and ok == {"grace.hopper", "ada.lovelace"}
        assert all(level == "ERROR" for (level, what, _) in seen if what == "login failed")
        # A broken module is logged as the service failing, and the script keeps going.
        auth = repo / "app" / "auth.py"
        original = auth.read_text()
        auth.write_text("def register(:\n")
        mark = len(log.read_text().splitlines())
        assert wait_until(lambda: any(w == "service unavailable" for (_, w, _) in lines(log)[mark:]))
        # The fix (check_password normalises as register does) is picked up: only successes after it.
        auth.write_text(original.replace("return hmac.compare_digest(_hash(password, salt), expected)",
                                         "return hmac.compare_digest(_hash(unicodedata.normalize(\"NFKC\", password).strip(), salt), expected)"))
        mark = len(log.read_text().splitlines())
        assert wait_until(lambda: len(lines(log)) > mark + 300)
        after = lines(log)[mark + 150:]   # > 1 s after the fix at 100/s: the module was re-read
        assert after and all(what == "login ok" for (_, what, _) in after), after[:3]
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait(timeout=10)
    # Nothing was written into the repository (no __pycache__, no stray files).
    assert sorted(p.relative_to(repo).as_posix() for p in repo.rglob("*")) == before


def test_it_stops_with_its_parent(tmp_path):
    repo = repo_copy(tmp_path)
    log = tmp_path / "app.log"
    pidfile = tmp_path / "pid"
    # A parent shell that starts the load in the background, records its pid and is then killed.
    parent = subprocess.Popen(["/bin/sh", "-c", f"'{sys.executable}' '{SCRIPT}' --repo '{repo}' --log '{log}' --duration 60 & echo $! > '{pidfile}'; wait"])
    try:
        assert wait_until(lambda: pidfile.exists() and pidfile.read_text().strip() and log.exists())
        child = int(pidfile.read_text())
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        assert wait_until(lambda: not os.path.exists(f"/proc/{child}") or open(f"/proc/{child}/stat").read().split()[2] == "Z", 10), \
            "the load outlived its parent"
    finally:
        if parent.poll() is None:
            parent.kill()
        if pidfile.exists() and pidfile.read_text().strip():
            try:
                os.kill(int(pidfile.read_text()), signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_bad_arguments_are_refused(tmp_path):
    for args in (["--repo", str(tmp_path), "--log", str(tmp_path / "l")],                    # no app/auth.py
                 ["--repo", os.path.join(ROOT, "examples", "demo-repo"), "--log", str(tmp_path / "l"), "--rate", "0"],
                 ["--repo", os.path.join(ROOT, "examples", "demo-repo"), "--log", str(tmp_path / "l"), "--duration", "1e9"],
                 ["--log", str(tmp_path / "l")]):
        out = subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True, timeout=30)
        assert out.returncode == 2 and "error:" in out.stderr, (args, out.stderr)
    assert not (tmp_path / "l").exists()
