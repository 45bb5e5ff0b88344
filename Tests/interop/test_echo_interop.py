"""A third-party client (the Python `websockets` library, and curl) against medic-echo over ws:// and wss://."""
import asyncio
import base64
import os
import resource
import socket
import ssl
import subprocess

import websockets

from interop_support import binary, free_port, wait_for_port


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, timeout=60))


async def echo_roundtrips(uri, ssl_context=None):
    async with websockets.connect(uri, ssl=ssl_context, max_size=None, compression=None) as ws:
        for message in ["hello", "ü€𝄞" * 5000, b"\x00\x01\x02binary", "x" * (4 << 20)]:
            await ws.send(message)
            assert await ws.recv() == message
        # Fragmented message from the client side.
        await ws.send(["frag", "mented ", "message"])
        assert await ws.recv() == "fragmented message"
        pong = await ws.ping(b"are you there")
        await asyncio.wait_for(pong, 5)
        await ws.close(code=1000, reason="done")
        assert ws.close_code == 1000


def test_ws_echo(echo_server):
    run(echo_roundtrips(f"ws://127.0.0.1:{echo_server}/"))


def test_wss_echo(echo_tls_server):
    port, cert = echo_tls_server
    context = ssl.create_default_context(cafile=cert)
    run(echo_roundtrips(f"wss://localhost:{port}/", context))


def test_many_clients_concurrently(echo_server):
    async def one(i):
        async with websockets.connect(f"ws://127.0.0.1:{echo_server}/", compression=None) as ws:
            for j in range(5):
                await ws.send(f"{i}:{j}")
                assert await ws.recv() == f"{i}:{j}"

    async def all_clients():
        await asyncio.gather(*(one(i) for i in range(200)))

    run(all_clients())


def test_invalid_utf8_is_closed_with_1007(echo_server):
    async def go():
        async with websockets.connect(f"ws://127.0.0.1:{echo_server}/", compression=None) as ws:
            # websockets validates what it sends, so write a raw frame with invalid UTF-8 through its transport.
            ws.transport.write(bytes([0x81, 0x82, 1, 2, 3, 4, 0xC3 ^ 1, 0x28 ^ 2]))
            try:
                await ws.recv()
            except websockets.ConnectionClosed as closed:
                return closed.rcvd.code if closed.rcvd else None
    assert run(go()) == 1007


def test_curl_http(echo_server):
    out = subprocess.run(["curl", "-s", "-i", f"http://127.0.0.1:{echo_server}/healthz"], capture_output=True, text=True, timeout=10)
    assert out.stdout.startswith("HTTP/1.1 200")
    assert out.stdout.endswith("ok\n")


def test_curl_https(echo_tls_server):
    port, cert = echo_tls_server
    out = subprocess.run(["curl", "-s", "--cacert", cert, f"https://localhost:{port}/healthz"], capture_output=True, text=True, timeout=10)
    assert out.stdout == "ok\n"


def upgrade_request(port):
    key = base64.b64encode(os.urandom(16)).decode()
    return (f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()


def test_out_of_file_descriptors_refuses_at_once_and_recovers():
    """At its fd limit medic-echo refuses further connections at once (the client sees the connection
    closed, not a hang, and the still-readable listener does not spin the loop), and it serves again
    once connections go away."""
    port = free_port()
    proc = subprocess.Popen([binary("MEDIC_ECHO_BIN"), "--listen", f"127.0.0.1:{port}", "--log-level", "error"],
                            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    held = []
    try:
        wait_for_port(port)
        refused = 0
        for _ in range(90):
            client = socket.create_connection(("127.0.0.1", port), timeout=5)
            client.sendall(upgrade_request(port))
            try:
                reply = client.recv(4096)  # a hang here (socket.timeout) is the bug this test is about
            except ConnectionResetError:
                reply = b""
            if reply.startswith(b"HTTP/1.1 101"):
                held.append(client)
            else:
                refused += 1
                client.close()
        assert 30 <= len(held) < 64 and refused == 90 - len(held)
        for client in held:
            client.close()
        held.clear()

        async def echo_again():
            for _ in range(100):  # the server frees the closed connections' fds within a tick or two
                try:
                    async with websockets.connect(f"ws://127.0.0.1:{port}/", compression=None) as ws:
                        await ws.send("back")
                        return await ws.recv()
                except (OSError, websockets.InvalidHandshake, websockets.ConnectionClosed):
                    await asyncio.sleep(0.05)
        assert run(echo_again()) == "back"
        assert proc.poll() is None
    finally:
        for client in held:
            client.close()
        proc.terminate()
        proc.wait(timeout=10)
