"""Helpers shared by the interop tests (a module of its own: every test folder has a conftest.py)."""
import os
import socket
import time

import pytest


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, deadline=20.0):
    end = time.time() + deadline
    while time.time() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


def binary(name):
    path = os.environ.get(name)
    if not path:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not set: run through scripts/test.sh")
        pytest.skip(f"{name} not set")
    return path
