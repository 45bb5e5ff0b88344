// Tests for the opening handshake: validation, rejections, origin policy, subprotocols, SHA-1/base64.

import Testing
@testable import WebSocket

@Suite struct WebSocketHandshakeTests {
    static let sampleKey = "dGhlIHNhbXBsZSBub25jZQ=="

    func request(
        replacing name: String? = nil, with value: String? = nil, adding extra: [(name: String, value: String)] = []
    ) -> [(name: String, value: String)] {
        var headers: [(name: String, value: String)] = [
            ("Host", "example.com"), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", Self.sampleKey), ("Sec-WebSocket-Version", "13"),
        ]
        if let name {
            headers.removeAll { $0.name == name }
            if let value { headers.append((name, value)) }
        }
        return headers + extra
    }

    func check(
        method: String = "GET", major: Int = 1, minor: Int = 1, _ headers: [(name: String, value: String)],
        origins: OriginPolicy = .any, subprotocols: [String] = []
    ) -> Result<WebSocketHandshake.Accepted, WebSocketHandshake.Rejected> {
        WebSocketHandshake.validate(
            method: method, versionMajor: major, versionMinor: minor, headers: headers, allowedOrigins: origins,
            supportedSubprotocols: subprotocols)
    }

    func status(_ result: Result<WebSocketHandshake.Accepted, WebSocketHandshake.Rejected>) -> Int {
        switch result {
        case .success: return 101
        case .failure(let rejected): return rejected.status
        }
    }

    @Test func rfcSampleKey() {
        // RFC 6455 §1.3 (SHA-1 b37a4f2c…c4ea; matches `sha1sum`).
        #expect(WebSocketHandshake.acceptValue(forKey: Self.sampleKey) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    }

    @Test func validRequestIsAccepted() throws {
        let accepted = try check(request()).get()
        #expect(accepted.acceptValue == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        #expect(accepted.subprotocol == nil)
        #expect(accepted.responseHeaders.map { $0.0 } == ["Upgrade", "Connection", "Sec-WebSocket-Accept"])
        #expect(accepted.responseHeaders.last?.1 == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        let text = String(decoding: accepted.responseBytes, as: UTF8.self)
        #expect(text.hasPrefix("HTTP/1.1 101 Switching Protocols\r\n"))
        #expect(text.contains("\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"))
        #expect(text.hasSuffix("\r\n\r\n"))
    }

    @Test func methodMustBeGET() {
        guard case .failure(let rejected) = check(method: "POST", request()) else {
            Issue.record("POST accepted")
            return
        }
        #expect(rejected.status == 405)
        #expect(rejected.headers.contains { $0.0 == "Allow" && $0.1 == "GET" })
        #expect(status(check(method: "get", request())) == 405)
    }

    @Test func httpVersionMustBeAtLeast11() {
        #expect(status(check(major: 1, minor: 0, request())) == 400)
        #expect(status(check(major: 0, minor: 9, request())) == 400)
        #expect(status(check(major: 2, minor: 0, request())) == 101)
    }

    @Test func hostIsRequired() {
        #expect(status(check(request(replacing: "Host"))) == 400)
        #expect(status(check(request(adding: [("host", "other.example")]))) == 400, "repeated Host")
    }

    @Test func rejectionResponseBytes() {
        guard case .failure(let rejected) = check(request(replacing: "Sec-WebSocket-Version", with: "8")) else {
            Issue.record("version 8 accepted")
            return
        }
        let text = String(decoding: rejected.responseBytes, as: UTF8.self)
        #expect(text.hasPrefix("HTTP/1.1 426 Upgrade Required\r\n"))
        #expect(text.contains("\r\nSec-WebSocket-Version: 13\r\n"))
        #expect(text.contains("\r\nConnection: close\r\n"))
        #expect(text.hasSuffix("\r\n\r\n" + rejected.reason + "\n"))
        #expect(text.contains("Content-Length: \(rejected.reason.utf8.count + 1)\r\n"))
    }

    @Test func upgradeTokenList() {
        #expect(status(check(request(replacing: "Upgrade"))) == 400)
        #expect(status(check(request(replacing: "Upgrade", with: "h2c"))) == 400)
        #expect(status(check(request(replacing: "Upgrade", with: "WebSocket"))) == 101)
        #expect(status(check(request(replacing: "Upgrade", with: "foo/1, WEBSOCKET"))) == 101)
        #expect(status(check(request(replacing: "Upgrade", with: "websockets"))) == 400)
    }

    @Test func connectionTokenList() {
        #expect(status(check(request(replacing: "Connection"))) == 400)
        #expect(status(check(request(replacing: "Connection", with: "keep-alive"))) == 400)
        #expect(status(check(request(replacing: "Connection", with: "keep-alive, Upgrade"))) == 101)
        #expect(status(check(request(replacing: "Connection", with: "keep-alive,upgrade"))) == 101)
        #expect(status(check(request(replacing: "Connection", with: "UPGRADE"))) == 101)
        #expect(status(check(request(replacing: "Connection", with: "upgraded"))) == 400)
        // Repeated fields form one list.
        let split = request(replacing: "Connection", with: "keep-alive", adding: [("connection", "Upgrade")])
        #expect(status(check(split)) == 101)
    }

    @Test func headerNamesAreCaseInsensitive() {
        let lower: [(name: String, value: String)] = [
            ("host", "a"), ("upgrade", "websocket"), ("CONNECTION", "upgrade"),
            ("sec-websocket-key", Self.sampleKey), ("SEC-WEBSOCKET-VERSION", "13"),
        ]
        #expect(status(check(lower)) == 101)
    }

    @Test func versionMustBe13() {
        for bad in ["8", "12", "14", "", "13, 8"] {
            guard case .failure(let rejected) = check(request(replacing: "Sec-WebSocket-Version", with: bad)) else {
                Issue.record("version \(bad) accepted")
                continue
            }
            #expect(rejected.status == 426)
            #expect(rejected.headers.contains { $0.0 == "Sec-WebSocket-Version" && $0.1 == "13" })
        }
        #expect(status(check(request(replacing: "Sec-WebSocket-Version"))) == 426)
        #expect(status(check(request(adding: [("Sec-WebSocket-Version", "13")]))) == 426, "repeated field")
    }

    @Test func keyMustBeBase64Of16Bytes() {
        #expect(status(check(request(replacing: "Sec-WebSocket-Key"))) == 400)
        #expect(status(check(request(replacing: "Sec-WebSocket-Key", with: "not base64!"))) == 400)
        // 15 and 17 bytes.
        #expect(status(check(request(replacing: "Sec-WebSocket-Key", with: "AAAAAAAAAAAAAAAAAAAA"))) == 400)
        #expect(status(check(request(replacing: "Sec-WebSocket-Key", with: "AAAAAAAAAAAAAAAAAAAAAAA="))) == 400)
        // Missing padding, and non-zero trailing bits.
        #expect(status(check(request(replacing: "Sec-WebSocket-Key", with: "dGhlIHNhbXBsZSBub25jZQ"))) == 400)
        #expect(status(check(request(replacing: "Sec-WebSocket-Key", with: "dGhlIHNhbXBsZSBub25jZR=="))) == 400)
        #expect(status(check(request(adding: [("Sec-WebSocket-Key", Self.sampleKey)]))) == 400, "repeated field")
        #expect(status(check(request(replacing: "Sec-WebSocket-Key", with: " \(Self.sampleKey) "))) == 101)
    }

    @Test func originAllowList() {
        let policy = OriginPolicy.allowList(["https://medic.example", "http://localhost:8080"])
        #expect(status(check(request(adding: [("Origin", "https://medic.example")]), origins: policy)) == 101)
        #expect(status(check(request(adding: [("Origin", "HTTPS://Medic.Example")]), origins: policy)) == 101)
        #expect(status(check(request(adding: [("origin", "http://localhost:8080")]), origins: policy)) == 101)
        #expect(status(check(request(adding: [("Origin", "http://localhost:8081")]), origins: policy)) == 403)
        #expect(status(check(request(adding: [("Origin", "https://evil.example")]), origins: policy)) == 403)
        #expect(status(check(request(adding: [("Origin", "null")]), origins: policy)) == 403)
        #expect(status(check(request(), origins: policy)) == 101, "no Origin: not a browser")
        #expect(status(check(request(adding: [("Origin", "https://evil.example")]), origins: .any)) == 101)
    }

    @Test func subprotocolNegotiation() throws {
        let supported = ["medic.v2", "medic.v1"]
        // The client's first offer that we support, in the client's order.
        let both = try check(request(adding: [("Sec-WebSocket-Protocol", "chat, medic.v1, medic.v2")]), subprotocols: supported).get()
        #expect(both.subprotocol == "medic.v1")
        #expect(both.responseHeaders.contains { $0.0 == "Sec-WebSocket-Protocol" && $0.1 == "medic.v1" })
        // Offers spread over several fields.
        let fields = try check(
            request(adding: [("Sec-WebSocket-Protocol", "chat"), ("sec-websocket-protocol", "medic.v2")]),
            subprotocols: supported
        ).get()
        #expect(fields.subprotocol == "medic.v2")
        // No match, or no offer: no header.
        for headers in [request(adding: [("Sec-WebSocket-Protocol", "chat")]), request()] {
            let accepted = try check(headers, subprotocols: supported).get()
            #expect(accepted.subprotocol == nil)
            #expect(!accepted.responseHeaders.contains { $0.0 == "Sec-WebSocket-Protocol" })
        }
    }

    @Test func clientRequestRoundTrip() throws {
        let key = WebSocketHandshake.randomKey()
        #expect(Base64.decode(key)?.count == 16)
        #expect(WebSocketHandshake.randomKey() != key)
        let bytes = WebSocketHandshake.clientRequest(
            host: "127.0.0.1:9000", path: "/ws?x=1", key: key, subprotocols: ["a", "b"], extraHeaders: [("Origin", "http://x")])
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.hasPrefix("GET /ws?x=1 HTTP/1.1\r\n"))
        #expect(text.hasSuffix("\r\n\r\n"))
        // Parse it back into header fields and validate it as a server would.
        let lines = text.split(separator: "\r\n").dropFirst()
        let headers: [(name: String, value: String)] = lines.map { line in
            let colon = line.firstIndex(of: ":")!
            return (String(line[..<colon]), String(line[line.index(after: colon)...]))
        }
        let accepted = try check(headers, origins: .allowList(["http://x"]), subprotocols: ["b"]).get()
        #expect(accepted.subprotocol == "b")
        // And the client accepts the server's response.
        let response = accepted.responseHeaders.map { (name: $0.0, value: $0.1) }
        let chosen = try WebSocketHandshake.validateResponse(status: 101, headers: response, key: key, offeredSubprotocols: ["a", "b"]).get()
        #expect(chosen == "b")
        let wrongKey = WebSocketHandshake.validateResponse(
            status: 101, headers: response, key: WebSocketHandshake.randomKey(), offeredSubprotocols: ["a", "b"])
        #expect((try? wrongKey.get()) == nil)
    }

    @Test func sha1Vectors() {
        func hex(_ bytes: [UInt8]) -> String {
            bytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
        }
        // FIPS 180-2 appendix A vectors, plus an empty message and a multi-block one.
        #expect(hex(SHA1.hash(Array("abc".utf8))) == "a9993e364706816aba3e25717850c26c9cd0d89d")
        #expect(hex(SHA1.hash([])) == "da39a3ee5e6b4b0d3255bfef95601890afd80709")
        #expect(
            hex(SHA1.hash(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)))
                == "84983e441c3bd26ebaae4aa1f95129e5e54670f1")
        #expect(hex(SHA1.hash([UInt8](repeating: 0x61, count: 1_000_000))) == "34aa973cd4c4daa4f61eeb2bdbad27316534016f")
    }

    @Test func base64RoundTrip() {
        for count in 0...20 {
            let data = bytes(count: count, seed: UInt64(count) + 11)
            let encoded = Base64.encode(data)
            #expect(encoded.utf8.count == (count + 2) / 3 * 4)
            #expect(Base64.decode(encoded) == data)
        }
        #expect(Base64.encode(Array("foobar".utf8)) == "Zm9vYmFy")
        #expect(Base64.encode(Array("fo".utf8)) == "Zm8=")
        #expect(Base64.decode("Zm8") == nil)
        #expect(Base64.decode("Z=8=") == nil)
        #expect(Base64.decode("Zm=9") == nil)
    }
}
