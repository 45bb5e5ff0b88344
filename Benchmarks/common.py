"""Benchmarks/common.py: what the Python benchmark scripts share (imported from beside them: a script's directory
is first on sys.path when it is run as `python3 Benchmarks/x.py`)."""
import socket
import time


def free_port():
    """A loopback port nobody listens on now."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, deadline=30):
    """Returns once something accepts on the loopback port; RuntimeError after `deadline` seconds."""
    end = time.time() + deadline
    while time.time() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing on {port}")
