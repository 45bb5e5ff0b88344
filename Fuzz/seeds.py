#!/usr/bin/env python3
"""seeds.py: writes the committed seed corpora Fuzz/corpus/<target>/seed-* (run from anywhere; idempotent).

Each harness reads decision bytes first (limits, split points, modes; see FuzzInput.swift and the target's
header comment), then the payload. A seed is a decision prefix that gives roomy limits plus a realistic payload,
so the fuzzer starts from inputs that reach deep into the parser. Regression inputs (regress-*) are not written
here: they are the fuzzer's own findings, kept as found.
"""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def u16(n):
    return bytes([(n >> 8) & 0xFF, n & 0xFF])


def write(target, name, data):
    folder = os.path.join(HERE, "corpus", target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "seed-" + name), "wb") as f:
        f.write(data)


# http: 5 limits (u16 each), split point (u16), drip (1 byte), then the stream.
HTTP = u16(1000) + u16(2000) + u16(30) + u16(4000) + u16(100) + u16(20) + b"\x00"
for name, stream in {
    "get": b"GET /index.html?x=1 HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n",
    "post-length": b"POST /api/v1/proposals HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
    "chunked": b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nTrailer: t\r\n\r\n",
    "pipelined-bare-lf": b"\n\r\nGET / HTTP/1.1\nHost: a\n\nGET /b HTTP/1.0\r\n\r\n",
    "expect-continue": b"PUT /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
    "upgrade": b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
               b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n\x81\x85",
}.items():
    write("http", name, HTTP + stream)

# websocket: mode byte, then per mode (see websocket.swift).
# decode: role, 3 limits, split point, drip, deflate negotiated; round trip: sender, text, fragment, ping, compress.
decode_server = b"\x00" + b"\x01" + u16(4000) + u16(8000) + b"\x00" + u16(15) + u16(7) + b"\x00" + b"\x00"
decode_client = b"\x00" + b"\x00" + u16(4000) + u16(8000) + b"\x00" + u16(15) + u16(3) + b"\x00" + b"\x00"
decode_client_deflate = decode_client[:-1] + b"\x01"
masked_hello = bytes([0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58])  # RFC 6455 §5.7
write("websocket", "decode-masked-hello", decode_server + masked_hello)
write("websocket", "decode-fragments-ping-close", decode_server
      + bytes([0x01, 0x83, 0, 0, 0, 0]) + b"Hel" + bytes([0x89, 0x82, 1, 2, 3, 4, ord("p") ^ 1, ord("g") ^ 2])
      + bytes([0x80, 0x82, 0, 0, 0, 0]) + b"lo" + bytes([0x88, 0x82, 0, 0, 0, 0, 0x03, 0xE8]))
write("websocket", "decode-client-unmasked", decode_client + bytes([0x81, 0x05]) + b"Hello"
      + bytes([0x82, 0x7E, 0x00, 0x80]) + bytes(range(128)))
# RFC 7692 §7.2.3.1 and §7.2.3.2: "Hello" compressed in one frame, then the same split over two fragments.
hello = bytes([0xF2, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00])
write("websocket", "decode-deflate-hello", decode_client_deflate + bytes([0xC1, 0x07]) + hello
      + bytes([0x41, 0x03, 0xF2, 0x48, 0xCD, 0x80, 0x04, 0xC9, 0xC9, 0x07, 0x00]))
write("websocket", "roundtrip-text", b"\x01" + b"\x01\x01" + u16(7) + u16(1) + b"\x00" + "Grüße, Medic — ✓".encode())
write("websocket", "roundtrip-binary", b"\x01" + b"\x00\x00" + u16(300) + u16(0) + b"\x00" + bytes(range(256)) * 3)
write("websocket", "roundtrip-compressed", b"\x01" + b"\x01\x01" + u16(9) + u16(2) + b"\x01"
      + b'{"type":"event","topic":"proposals","seq":1,"kind":"proposal","data":{"title":"Fix pager","status":"proposed"}}' * 4)
write("websocket", "deflate-json", b"\x02" + u16(6)
      + b'{"type":"event","topic":"proposal:p_1","seq":7,"kind":"test_output","data":{"lines":["ok","ok","ok"]}}')
write("websocket", "inflate-rfc7692-hello", b"\x03" + u16(100) + bytes([0xF2, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00]))

# json: max depth (u16), small-limits flag, then the document: every client example of the protocol.
examples = os.path.join(ROOT, "protocol", "examples")
for name in sorted(os.listdir(examples)):
    if name.startswith("client.") and name.endswith(".json"):
        with open(os.path.join(examples, name), "rb") as f:
            write("json", name[len("client."):-len(".json")], u16(32) + b"\x00" + f.read())
write("json", "numbers-escapes", u16(32) + b"\x00"
      + json.dumps({"a": [0, -0.0, 1.5e300, -12345678901234567890, "\u00e9\ud83d\ude00\n\"", None, True]}).encode())

# sse: max line (u16), max event (u16), split point (u16), drip, then the body.
SSE = u16(2000) + u16(4000) + u16(120) + b"\x00"
write("sse", "anthropic-stream", SSE + (
    'event: message_start\r\ndata: {"type":"message_start","message":{"id":"m","type":"message","role":"assistant",'
    '"content":[],"usage":{"input_tokens":10}}}\r\n\r\n: keep-alive\n'
    'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\n'
    'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"{\\"unfix"}}\n\n'
    'event: content_block_start\ndata: {"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"t","name":"read","input":{}}}\n\n'
    'event: content_block_delta\ndata: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\\"path\\":"}}\n\n'
    'event: content_block_delta\ndata: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"\\"a.py\\"}"}}\n\n'
    'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":5}}\n\n'
    'event: message_stop\ndata: {"type":"message_stop"}\n\n').encode())
write("sse", "fields", SSE + "\ufeffid: 1\rdata: a\rdata\r\rretry: 5\r\nevent: x\r\ndata:  b\r\n\r\nid: a\x00b\n: c\n\n".encode())

# summary: exit code (u16, minus 20), timed out, signal, use-files, 4 limits (u16), then the output.
SUMMARY = u16(21) + b"\x01" + b"\x01" + b"\x01" + u16(20) + u16(20) + u16(300) + u16(8000)
for name, output in {
    "pytest": "tests/test_pager.py:12: in test_page\n    assert page(1) == [3, 4, 5]\nE   AssertionError: assert [3, 4, 5, 6] == [3, 4, 5]\n"
              "app/pager.py:4: AssertionError\n==== 1 failed, 3 passed in 0.12s ====\n",
    "python-import": 'Traceback (most recent call last):\n  File "/work/ws/app/main.py", line 3, in <module>\n    import missing_mod\n'
                     "ModuleNotFoundError: No module named 'missing_mod'\n",
    "unittest": "Ran 5 tests in 0.010s\n\nFAILED (failures=1, errors=2)\n",
    "node": "/work/ws/src/a.js:10\n  x.y()\n    ^\nTypeError: Cannot read properties of undefined (reading 'y')\n"
            "    at f (/work/ws/src/a.js:10:5)\n\u2139 pass 3\n\u2139 fail 1\nNode.js v20.1.0\n",
    "swift": "/work/ws/Sources/A/a.swift:7:9: error: cannot find 'foo' in scope\nTest run with 4 tests in 1 suite failed after 0.1 seconds with 1 issue.\n",
    "go": "--- FAIL: TestX (0.00s)\n    x_test.go:9: got 1 want 2\n--- PASS: TestY (0.00s)\nFAIL\n./main.go:3:1: undefined: v\n",
    "jest": "Tests:       1 failed, 2 passed, 3 total\n",
}.items():
    write("summary", name, SUMMARY + output.encode())

# patch: mode, 4 limits (u16), then a reply (mode 0) or NUL-separated change records (mode 1).
PATCH = u16(6) + u16(250) + u16(500) + u16(60)
reply = {"unfixable": False, "explanation": "The slice end was one past the page.",
         "changes": [{"path": "app/pager.py", "action": "modify", "content": "def page(n):\n    return n\n"},
                     {"path": "app/old.py", "action": "delete"}]}
write("patch", "reply-fenced", b"\x00" + PATCH + ("Here is the fix:\n```json\n" + json.dumps(reply) + "\n```\n").encode())
write("patch", "reply-unfixable", b"\x00" + PATCH + b'{"unfixable": true, "explanation": "needs a network"}')
write("patch", "reply-hostile", b"\x00" + PATCH + json.dumps({"unfixable": False, "explanation": "x", "changes": [
    {"path": "../etc/passwd", "action": "create", "content": "x"}, {"path": ".GIT/config", "action": "modify", "content": ""}]}).encode())
write("patch", "records", b"\x01" + PATCH + b"\x00app/a.py\x01print(1)\n\x00\x01tests/t.py\x01x\x00\x02old.py")
