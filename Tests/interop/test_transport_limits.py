"""Attacks on a real `medic serve` over loopback, from the transport security issue: floods that must not grow
the server's memory (VmRSS of the server process, bounded in bytes and time), a protocol-relative redirect, and
an oversized message before authentication. No assertion is about speed."""
import os
import socket
import ssl
import struct
import time

import pytest

from interop_support import free_port, wait_for_port
from medic_server import Medic

STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "web-static")
KEY = "dGhlIHNhbXBsZSBub25jZQ=="


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def settled_rss_kib(pid, seconds=1.5):
    """The largest VmRSS seen over a short while (the server may still be working through what it read)."""
    peak = 0
    end = time.time() + seconds
    while time.time() < end:
        peak = max(peak, rss_kib(pid))
        time.sleep(0.1)
    return peak


def send_bounded(sock, data, seconds):
    """Sends as much of `data` as the peer accepts within `seconds` (the peer may stop reading). Returns bytes sent."""
    sock.settimeout(0.2)
    sent = 0
    end = time.time() + seconds
    while sent < len(data) and time.time() < end:
        try:
            sent += sock.send(data[sent:sent + 65536])
        except (socket.timeout, ssl.SSLWantWriteError, BlockingIOError):
            continue
    return sent


def recv_exact(sock, n):
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise EOFError("connection closed")
        out += chunk
    return out


def read_frame(sock):
    b0, b1 = recv_exact(sock, 2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", recv_exact(sock, 2))[0]
    elif n == 127:
        n = struct.unpack("!Q", recv_exact(sock, 8))[0]
    return b0 & 0x0F, recv_exact(sock, n)


def frame_header(opcode, length, fin=True):
    """A masked client frame header with the all-zero masking key (so the payload goes as is)."""
    first = (0x80 if fin else 0) | opcode
    if length < 126:
        head = struct.pack("!BB", first, 0x80 | length)
    elif length < 65536:
        head = struct.pack("!BBH", first, 0x80 | 126, length)
    else:
        head = struct.pack("!BBQ", first, 0x80 | 127, length)
    return head + b"\0\0\0\0"


def upgrade(sock, extra=""):
    sock.sendall((f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: medic.v1\r\n"
                  f"{extra}\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += recv_exact(sock, 1)
    assert head.startswith(b"HTTP/1.1 101"), head


@pytest.fixture
def medic(tmp_path, tls_files):
    cert, key = tls_files
    tls_port = free_port()
    server = Medic(str(tmp_path), extra=["--static", STATIC, "--tls-listen", f"127.0.0.1:{tls_port}",
                                         "--tls-cert", cert, "--tls-key", key]).start()
    server.tls_port = tls_port
    wait_for_port(tls_port)
    server.cert = cert
    try:
        yield server
    finally:
        server.stop()


def connect(medic, tls):
    if not tls:
        return socket.create_connection(("127.0.0.1", medic.port), timeout=10)
    context = ssl.create_default_context(cafile=medic.cert)
    raw = socket.create_connection(("127.0.0.1", medic.tls_port), timeout=10)
    return context.wrap_socket(raw, server_hostname="localhost")


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_pipelined_requests_that_are_never_read_do_not_grow_the_server(medic, tls):
    """Issue item 4: pipeline 512 KiB of `GET /js/app.js` (~13,800 requests, ~220 MB of responses) and never
    read. The server must stop reading (and parsing) while the connection's output is over its high-water mark."""
    pid = medic.proc.pid
    sock = connect(medic, tls)
    # Warm up (static cache, TLS buffers) so that the baseline includes them.
    sock.sendall(b"GET /js/app.js HTTP/1.1\r\nHost: x\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    length = int([l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")][0].split(b":")[1])
    recv_exact(sock, length)
    before = settled_rss_kib(pid, 0.5)
    request = b"GET /js/app.js HTTP/1.1\r\nHost: x\r\n\r\n"
    flood = request * ((512 << 10) // len(request))
    sent = send_bounded(sock, flood, 10)
    grown = settled_rss_kib(pid, 3) - before
    print(f"sent {sent} bytes of pipelined requests; server VmRSS grew {grown} KiB")
    assert grown < 16 << 10, f"server grew {grown} KiB for {sent} bytes of requests"
    # Reading resumes once the output drains: the first answers arrive whole.
    sock.settimeout(10)
    for _ in range(3):
        head = b""
        while b"\r\n\r\n" not in head:
            head += recv_exact(sock, 1)
        assert head.startswith(b"HTTP/1.1 200"), head[:80]
        recv_exact(sock, length)
    sock.close()
    # The server still serves others.
    other = connect(medic, tls)
    other.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert recv_exact(other, 12) == b"HTTP/1.1 200"
    other.close()


def test_pipelined_requests_behind_a_pending_response_are_not_buffered_without_limit(medic):
    """Item 4, second form: each request with an unknown token waits for a store lookup (an asynchronous response);
    meanwhile the server read on and kept every pipelined byte in its parser — 64 MiB of requests, +69 MB."""
    pid = medic.proc.pid
    sock = connect(medic, False)
    before = settled_rss_kib(pid, 0.5)
    request = b"GET /api/v1/proposals HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer nope\r\n\r\n"
    sent = send_bounded(sock, request * ((64 << 20) // len(request)), 10)
    grown = settled_rss_kib(pid, 3) - before
    print(f"sent {sent} bytes of pipelined requests behind pending responses; server VmRSS grew {grown} KiB")
    assert grown < 16 << 10, f"server grew {grown} KiB for {sent} bytes of requests"
    sock.settimeout(10)
    assert recv_exact(sock, 12) == b"HTTP/1.1 401"
    sock.close()


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_ping_flood_from_an_unauthenticated_client_does_not_grow_the_server(medic, tls):
    """Issue item 5: 64 MiB of 125-byte pings from a client that never reads (and never authenticates)."""
    pid = medic.proc.pid
    sock = connect(medic, tls)
    upgrade(sock)
    before = settled_rss_kib(pid, 0.5)
    ping = frame_header(0x9, 125) + b"p" * 125
    chunk = ping * ((1 << 20) // len(ping))
    sent = 0
    end = time.time() + 8  # inside the 10 s authentication timeout
    while sent < 64 << 20 and time.time() < end:
        n = send_bounded(sock, chunk, end - time.time())
        sent += n
        if n < len(chunk):
            break
    grown = settled_rss_kib(pid) - before
    print(f"sent {sent} bytes of pings; server VmRSS grew {grown} KiB")
    assert sent >= 8 << 20, f"only {sent} bytes of pings went out"
    assert grown < 24 << 10, f"server grew {grown} KiB for {sent} bytes of pings"
    # The latest ping is still answered (RFC 6455 §5.5.3 lets the server skip the earlier ones).
    sock.settimeout(10)
    opcode, payload = read_frame(sock)
    assert opcode == 0xA and payload == b"p" * 125
    sock.close()


@pytest.mark.parametrize("path", ["//js", "//js?x=1", "///js", "/js//", "//127.0.0.1/js"])
def test_no_redirect_to_a_protocol_relative_location(medic, path):
    """`GET //js` answered `301 Location: //js/`, which a browser reads as the host `js`."""
    sock = connect(medic, False)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    response = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        response += chunk
    head = response.split(b"\r\n\r\n")[0].decode()
    locations = [l.split(":", 1)[1].strip() for l in head.split("\r\n")[1:] if l.lower().startswith("location:")]
    print(head.split("\r\n")[0], locations)
    assert not any(l.startswith("//") or l.startswith("/\\") for l in locations), head


def test_large_message_before_authentication_closes_1009_before_it_is_buffered(medic):
    """A 7.6 MiB message before `hello` used to be buffered and JSON-parsed. Only its first 256 KiB are sent:
    the server must refuse it from the header alone (close 1009)."""
    sock = connect(medic, False)
    upgrade(sock)
    size = 7_600_000
    sock.sendall(frame_header(0x1, size) + b"[" * (256 << 10))
    sock.settimeout(10)
    opcode, payload = read_frame(sock)
    assert opcode == 0x8, (opcode, payload[:80])
    assert struct.unpack("!H", payload[:2])[0] == 1009
    sock.close()


def test_large_message_after_authentication_is_still_accepted(medic):
    token = medic.token("alice")
    sock = connect(medic, False)
    upgrade(sock)
    hello = f'{{"type":"hello","token":"{token}","id":"h"}}'.encode()
    sock.sendall(frame_header(0x1, len(hello)) + hello)
    sock.settimeout(10)
    assert b'"welcome"' in read_frame(sock)[1]
    assert b'"ack"' in read_frame(sock)[1]
    big = b'{"type":"stats","id":"s","pad":"' + b"x" * (1 << 20) + b'"}'
    sock.sendall(frame_header(0x1, len(big)) + big)
    opcode, payload = read_frame(sock)
    assert opcode == 0x1, (opcode, payload[:80])
    assert b'"id":"s"' in payload
    sock.close()
