"""Starting and stopping a real `medic serve` process for the interop tests."""
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request

from interop_support import binary, free_port, wait_for_port


def make_repo(path):
    """A tiny git repository whose test command (`true`) always passes."""
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "README"), "w") as f:
        f.write("base\n")
    for args in (["init", "-q", "-b", "main"], ["add", "-A"],
                 ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "base"]):
        subprocess.run(["git", "-C", path] + args, check=True)
    return path


class Medic:
    """One `medic serve` on a free loopback port with its own data directory."""

    def __init__(self, data_dir, port=None, extra=(), test_command="true"):
        self.bin = binary("MEDIC_BIN")
        self.data_dir = data_dir
        self.port = port or free_port()
        self.extra = list(extra)
        self.test_command = test_command
        self.proc = None
        self.script = os.path.join(data_dir, "script.json")
        with open(self.script, "w") as f:
            f.write('{"replies": []}')
        self.repo = make_repo(os.path.join(data_dir, "repo")) if not os.path.exists(os.path.join(data_dir, "repo")) else os.path.join(data_dir, "repo")

    def start(self):
        args = [self.bin, "serve", "--no-demo", "--listen", f"127.0.0.1:{self.port}", "--data-dir", self.data_dir,
                "--repo", self.repo, "--test-command", self.test_command, "--llm", f"scripted:{self.script}"] + self.extra
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        wait_for_port(self.port)
        return self

    def token(self, name, role="admin"):
        out = subprocess.run([self.bin, "token", "create", "--name", name, "--role", role, "--data-dir", self.data_dir],
                             check=True, capture_output=True, text=True).stdout
        return out.strip().splitlines()[-1]

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def rest(self, method, path, token, body=None):
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())
