"""permessage-deflate (RFC 7692) with a third-party client: the Python `websockets` library, whose compression is on
by default, against medic-echo (ws:// and wss://) and `medic serve`, in both directions; `--deflate off` negotiates
nothing. Which frames the server compressed is read off the client's extension (RSV1 of each received frame)."""
import asyncio
import json
import ssl
import subprocess

import websockets

from interop_support import binary, free_port, wait_for_port
from medic_server import Medic


def run(coro, timeout=90):
    return asyncio.run(asyncio.wait_for(coro, timeout=timeout))


def record_rsv1(ws):
    """Wraps the negotiated permessage-deflate extension so every frame the server sent is recorded: (opcode, rsv1)."""
    [extension] = ws.protocol.extensions
    seen = []
    decode = extension.decode

    def recording(frame, *args, **kwargs):
        seen.append((frame.opcode.name, frame.rsv1))
        return decode(frame, *args, **kwargs)

    extension.decode = recording
    return seen


def record_sent_rsv1(ws):
    """Likewise for the frames the client sent (after its extension compressed them)."""
    [extension] = ws.protocol.extensions
    sent = []
    encode = extension.encode

    def recording(frame):
        out = encode(frame)
        sent.append((out.opcode.name, out.rsv1))
        return out

    extension.encode = recording
    return sent


async def echo_with_deflate(uri, ssl_context=None):
    async with websockets.connect(uri, ssl=ssl_context, max_size=None) as ws:  # compression="deflate" by default
        header = ws.response.headers["Sec-WebSocket-Extensions"]
        assert header.startswith("permessage-deflate")
        assert "server_no_context_takeover" in header and "client_no_context_takeover" in header
        received = record_rsv1(ws)
        sent = record_sent_rsv1(ws)
        big_text = "test_output: ok ü€𝄞\n" * 50_000
        messages = ["hello", big_text, b"\x00\x01\x02binary" * 1000, "x" * (4 << 20), bytes(range(256)) * 40]
        for message in messages:
            await ws.send(message)
            assert await ws.recv() == message
        # The client compressed what it sent (its default), the server compressed its long echoes and sent the
        # 5-byte "hello" plain (below the 64-byte threshold; RFC 7692 §6 lets each message choose).
        assert sent[0] == ("TEXT", True)
        assert received[0] == ("TEXT", False)
        assert received[1] == ("TEXT", True) and received[2] == ("BINARY", True) and received[3] == ("TEXT", True)
        # Random-looking bytes that do not shrink go out uncompressed.
        # (bytes(range(256)) repeated does shrink; it is compressed.)
        assert received[4] == ("BINARY", True)
        # A fragmented message from the client: compressed as one message, RSV1 on its first frame only.
        await ws.send(["frag", "mented ", "message " * 30])
        assert await ws.recv() == "fragmented " + "message " * 30
        pong = await ws.ping(b"are you there")
        await asyncio.wait_for(pong, 5)
        await ws.close(code=1000, reason="done")
        assert ws.close_code == 1000


def test_ws_echo_with_deflate(echo_server):
    run(echo_with_deflate(f"ws://127.0.0.1:{echo_server}/"))


def test_wss_echo_with_deflate(echo_tls_server):
    port, cert = echo_tls_server
    run(echo_with_deflate(f"wss://localhost:{port}/", ssl.create_default_context(cafile=cert)))


def test_a_small_server_window_is_honoured(echo_server):
    """The client asks the server to compress with a 512-byte window (server_max_window_bits=9)."""
    from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

    async def go():
        factory = ClientPerMessageDeflateFactory(server_max_window_bits=9, client_max_window_bits=True)
        async with websockets.connect(f"ws://127.0.0.1:{echo_server}/", extensions=[factory]) as ws:
            assert "server_max_window_bits=9" in ws.response.headers["Sec-WebSocket-Extensions"]
            received = record_rsv1(ws)
            text = "window of nine bits " * 2000
            await ws.send(text)
            assert await ws.recv() == text
            assert received == [("TEXT", True)]

    run(go())


def test_deflate_off_negotiates_nothing():
    port = free_port()
    proc = subprocess.Popen([binary("MEDIC_ECHO_BIN"), "--listen", f"127.0.0.1:{port}", "--deflate", "off"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for_port(port)

        async def go():
            async with websockets.connect(f"ws://127.0.0.1:{port}/") as ws:  # offers permessage-deflate
                assert "Sec-WebSocket-Extensions" not in ws.response.headers
                assert ws.protocol.extensions == []
                text = "plain " * 1000
                await ws.send(text)
                assert await ws.recv() == text

        run(go())
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_compressed_bomb_is_closed_with_1009(echo_server):
    """A ~16 KB compressed message that inflates to 64 MiB (over medic-echo's 16 MiB limit): 1009, and the server stays small."""
    import zlib

    async def go():
        async with websockets.connect(f"ws://127.0.0.1:{echo_server}/", max_size=None) as ws:
            assert ws.protocol.extensions
            compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
            payload = compressor.compress(bytes(64 << 20)) + compressor.flush(zlib.Z_SYNC_FLUSH)
            payload = payload[:-4]  # RFC 7692 §7.2.1: drop 00 00 ff ff
            assert len(payload) < 100_000
            # A raw masked frame with RSV1 set, written under the library (it would compress the bytes itself).
            key = b"\x01\x02\x03\x04"
            n = len(payload)  # RFC 6455 §5.2: the minimal length encoding
            length = bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + n.to_bytes(2, "big") if n < 65536 \
                else bytes([0x80 | 127]) + n.to_bytes(8, "big")
            header = bytes([0xC2]) + length + key
            masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
            ws.transport.write(header + masked)
            try:
                await asyncio.wait_for(ws.recv(), 10)
            except websockets.ConnectionClosed:
                pass
            assert ws.protocol.close_rcvd is not None and ws.protocol.close_rcvd.code == 1009

    run(go())


def test_medic_serve_both_directions_compressed(tmp_path):
    medic = Medic(str(tmp_path)).start()
    try:
        token = medic.token("alice")
        proposal = medic.rest("POST", "/api/v1/proposals", token,
                              {"title": "deflate", "description": "d",
                               "changes": [{"path": "a.txt", "action": "create", "content": "x"}]})["proposal"]

        async def session():
            async with websockets.connect(f"ws://127.0.0.1:{medic.port}/ws", subprotocols=["medic.v1"],
                                          additional_headers={"Authorization": f"Bearer {token}"}) as ws:
                assert ws.response.headers["Sec-WebSocket-Extensions"].startswith("permessage-deflate")
                received = record_rsv1(ws)
                sent = record_sent_rsv1(ws)
                assert json.loads(await ws.recv())["type"] == "welcome"
                await ws.send(json.dumps({"type": "subscribe", "id": "s1", "topic": f"proposal:{proposal}", "since": 0}))
                text = "a long review comment, compressed both ways. " * 100
                await ws.send(json.dumps({"type": "comment", "id": "c1", "proposal": proposal, "text": text}))
                acked, event = False, None
                while not (acked and event):
                    message = json.loads(await ws.recv())
                    acked = acked or (message.get("id") == "c1" and message["type"] == "ack")
                    if message.get("kind") == "comment":
                        event = message
                assert event["data"]["text"] == text
                # What the client sent went compressed; the comment event (a fan-out frame) came back compressed.
                assert ("TEXT", True) in sent
                assert ("TEXT", True) in received
                return len(received)

        assert run(session()) > 2
    finally:
        medic.stop()


def test_medic_serve_deflate_off(tmp_path):
    medic = Medic(str(tmp_path), extra=["--deflate", "off"]).start()
    try:
        token = medic.token("alice")

        async def session():
            async with websockets.connect(f"ws://127.0.0.1:{medic.port}/ws", subprotocols=["medic.v1"],
                                          additional_headers={"Authorization": f"Bearer {token}"}) as ws:
                assert "Sec-WebSocket-Extensions" not in ws.response.headers
                assert ws.protocol.extensions == []
                assert json.loads(await ws.recv())["type"] == "welcome"

        run(session())
    finally:
        medic.stop()
