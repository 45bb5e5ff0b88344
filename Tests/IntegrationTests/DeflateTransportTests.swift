// DeflateTransportTests: permessage-deflate (RFC 7692) over real loopback sockets — negotiation at the upgrade,
// compressed echo both ways (plain and TLS), RSV1 refused when not negotiated, bombs, and the App's fan-out.
import Foundation
import MedicHost
import Protocol
import Server
import TLS
import TestSupport
import Testing
import WebSocket

/// What browsers send (Chromium, Firefox).
let browserOffer = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"
let agreedDeflate = "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover"

/// The client's side of RFC 7692 §7.2.1, done by hand with zlib through the server module's codec types.
func compress(_ payload: [UInt8]) -> [UInt8] {
    payload.withUnsafeBytes { MessageDeflater().compress($0)! }
}

func inflate(_ payload: [UInt8]) throws -> [UInt8] {
    try payload.withUnsafeBytes { try MessageInflater().decompress($0, maxBytes: 64 << 20) }
}

@Suite("permessage-deflate over loopback")
struct DeflateTransportTests {
    @Test(arguments: [false, true])
    func negotiatedAndEchoedCompressedBothWays(tls: Bool) throws {
        let (thread, port) = try startEchoServer(tls: tls)
        defer { thread.stop() }
        let context = tls ? try TLSContext.client(trustedCAPath: nil, verifyPeer: false) : nil
        let client = try TestClient(port: port, tls: context)
        let head = try client.upgrade(headers: [browserOffer])
        #expect(head.contains(agreedDeflate + "\r\n"))
        // A compressed message in (RSV1 set), compressed echo out.
        let text = String(repeating: "test_output: line ok\n", count: 200)
        try client.sendFrame(opcode: 1, payload: compress(Array(text.utf8)), rsv: 4)
        let echo = try client.readMessage()
        #expect(echo.rsv1 && echo.opcode == 1)
        #expect(echo.payload.count < text.utf8.count / 10)
        #expect(try inflate(echo.payload) == Array(text.utf8))
        // A plain message in; short, so its echo goes out plain (below the 64-byte threshold).
        try client.sendText("short")
        #expect(try client.readMessage() == TestFrame(fin: true, opcode: 1, payload: Array("short".utf8)))
        // A compressed message split over three frames (RSV1 on the first only), with a ping between.
        let big = Array(String(repeating: "fragmented and compressed €𝄞 ", count: 300).utf8)
        let deflated = compress(big)
        let third = deflated.count / 3
        try client.sendFrame(opcode: 1, payload: Array(deflated[..<third]), fin: false, rsv: 4)
        try client.sendFrame(opcode: 0, payload: Array(deflated[third..<(2 * third)]), fin: false)
        try client.sendFrame(opcode: 9, payload: Array("ping".utf8))
        try client.sendFrame(opcode: 0, payload: Array(deflated[(2 * third)...]), fin: true)
        let pong = try client.readFrame()
        #expect(pong.opcode == 10 && !pong.rsv1)
        let echoed = try client.readFrame()
        #expect(echoed.rsv1 && echoed.fin)
        #expect(try inflate(echoed.payload) == big)
    }

    @Test func switchedOffNegotiatesNothingAndRefusesRSV1() throws {
        let (thread, port) = try startEchoServer { $0.deflate.enabled = false }
        defer { thread.stop() }
        let client = try TestClient(port: port)
        let head = try client.upgrade(headers: [browserOffer])
        #expect(!head.lowercased().contains("sec-websocket-extensions"))
        let text = String(repeating: "x", count: 500)
        try client.sendText(text)
        // Frames without deflate are what they always were: no RSV1, the payload as sent.
        #expect(try client.readMessage() == TestFrame(fin: true, opcode: 1, payload: Array(text.utf8)))
        try client.sendFrame(opcode: 1, payload: compress(Array(text.utf8)), rsv: 4)
        #expect(try client.readFrame().closeCode == 1002)
        #expect(client.waitForEOF())
    }

    @Test func aClientThatOffersNothingGetsPlainFrames() throws {
        let (thread, port) = try startEchoServer()
        defer { thread.stop() }
        let client = try TestClient(port: port)
        let head = try client.upgrade()
        #expect(!head.lowercased().contains("sec-websocket-extensions"))
        let text = String(repeating: "y", count: 500)
        try client.sendText(text)
        #expect(try client.readMessage() == TestFrame(fin: true, opcode: 1, payload: Array(text.utf8)))
    }

    @Test func anInvalidOfferIsDeclinedAndTheNextOneTaken() throws {
        let (thread, port) = try startEchoServer()
        defer { thread.stop() }
        let client = try TestClient(port: port)
        let head = try client.upgrade(headers: [
            "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=16, permessage-deflate; server_max_window_bits=10"
        ])
        #expect(head.contains(agreedDeflate + "; server_max_window_bits=10\r\n"))
        let text = Array(String(repeating: "window ten ", count: 100).utf8)
        try client.sendText(String(decoding: text, as: UTF8.self))
        let echo = try client.readMessage()
        #expect(echo.rsv1)
        #expect(try inflate(echo.payload) == text)
    }

    @Test func aDecompressionBombIsClosedWith1009() throws {
        // The echo server's limit is 1 MiB: 8 MiB of zeros is ~8 KB on the wire.
        let (thread, port) = try startEchoServer()
        defer { thread.stop() }
        let client = try TestClient(port: port)
        try client.upgrade(headers: [browserOffer])
        try client.sendFrame(opcode: 2, payload: compress([UInt8](repeating: 0, count: 8 << 20)), rsv: 4)
        let close = try client.readFrame()
        #expect(close.opcode == 8 && close.closeCode == 1009)
        #expect(client.waitForEOF())
    }

    @Test func invalidUTF8AfterInflationCloses1007() throws {
        let (thread, port) = try startEchoServer()
        defer { thread.stop() }
        let client = try TestClient(port: port)
        try client.upgrade(headers: [browserOffer])
        try client.sendFrame(opcode: 1, payload: compress(Array("fine ".utf8) + [0xED, 0xA0, 0x80]), rsv: 4)
        #expect(try client.readFrame().closeCode == 1007)
    }

    @Test func rsv1OnAPingIsAProtocolError() throws {
        let (thread, port) = try startEchoServer()
        defer { thread.stop() }
        let client = try TestClient(port: port)
        try client.upgrade(headers: [browserOffer])
        try client.sendFrame(opcode: 9, payload: [1], rsv: 4)
        #expect(try client.readFrame().closeCode == 1002)
    }
}

@Suite("permessage-deflate in Medic's fan-out", .serialized)
struct DeflateFanOutTests {
    /// One plain and one deflate subscriber of the same topic receive the same event: the deflate one as a
    /// compressed frame (RSV1) that inflates to the same event.
    @Test func aBroadcastReachesPlainAndDeflateSubscribers() throws {
        let medic = try startReviewableMedic(quorum: 1)
        defer { medic.stop() }
        let admin = try medic.token("alice", role: "admin")
        let plain = try medic.session(admin)
        let proposed = try plain.call(["type": "propose", "title": "t", "description": "d", "changes": okChange])
        let id = try #require(proposed["proposal"]?.stringValue)
        let topic = "proposal:\(id)"
        #expect(try plain.call(["type": "subscribe", "topic": .string(topic), "since": 0])["type"]?.stringValue == "ack")

        let raw = try TestClient(port: medic.port, timeoutSeconds: 20)
        let head = try raw.upgrade(path: "/ws", headers: ["Authorization: Bearer \(admin)", browserOffer], subprotocols: ["medic.v1"])
        #expect(head.contains(agreedDeflate))
        /// The next data message of the deflate session, inflated when compressed; and whether it was.
        func nextMessage() throws -> (JSONValue, compressed: Bool, bytes: [UInt8]) {
            let frame = try raw.readMessage()
            let bytes = frame.rsv1 ? try inflate(frame.payload) : frame.payload
            return (try JSONValue.parse(bytes, limits: JSONParseLimits(maxBytes: 16 << 20)), frame.rsv1, bytes)
        }
        #expect(try nextMessage().0["type"]?.stringValue == "welcome")
        let subscribe: JSONValue = .object(["type": "subscribe", "id": "s1", "topic": .string(topic), "since": 0])
        try raw.sendFrame(opcode: 1, payload: subscribe.bytes)

        // A long comment: its event is well over the threshold.
        let text = String(repeating: "a comment long enough to be worth compressing. ", count: 20)
        var skipped: [JSONValue] = []
        #expect(try plain.call(["type": "comment", "proposal": .string(id), "text": .string(text)], skipped: &skipped)["type"]?.stringValue == "ack")
        // The event may arrive before or after the command's ack.
        let plainEvent = try skipped.first { $0["kind"]?.stringValue == "comment" }
            ?? plain.until { $0["kind"]?.stringValue == "comment" }.last!
        var deflateEvent: (JSONValue, compressed: Bool, bytes: [UInt8])
        repeat { deflateEvent = try nextMessage() } while deflateEvent.0["kind"]?.stringValue != "comment"
        #expect(deflateEvent.compressed)
        #expect(deflateEvent.0 == plainEvent)
        #expect(deflateEvent.0["data"]?["text"]?.stringValue == text)
    }
}

@Suite("permessage-deflate settings")
struct DeflateSettingsTests {
    func load(_ json: String) throws -> MedicConfiguration {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("deflate-\(UInt32.random(in: 0...UInt32.max)).json").path
        try json.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        var configuration = MedicConfiguration()
        try configuration.load(file: path)
        return configuration
    }

    @Test func theExampleAndTheFileKeys() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        var example = MedicConfiguration()
        try example.load(file: root + "/config/medic.example.json")
        #expect(example.deflate && example.deflateMinBytes == 64 && example.deflateLevel == 6)
        let off = try load(#"{"deflate": "off", "deflate_min_bytes": 0, "deflate_level": 1}"#)
        #expect(!off.deflate && off.deflateMinBytes == 0 && off.deflateLevel == 1)
    }

    @Test(arguments: [#"{"deflate": "yes"}"#, #"{"deflate": true}"#, #"{"deflate_level": 0}"#, #"{"deflate_level": 10}"#, #"{"deflate_min_bytes": -1}"#])
    func badValuesAreRefused(_ json: String) {
        #expect(throws: (any Error).self) { try load(json) }
    }

    @Test func medicServeWithDeflateOffNegotiatesNothing() throws {
        let medic = try MedicHarness { configuration, _ in configuration.deflate = false }
        defer { medic.stop() }
        let token = try medic.token("alice", role: "admin")
        let raw = try TestClient(port: medic.port, timeoutSeconds: 20)
        let head = try raw.upgrade(path: "/ws", headers: ["Authorization: Bearer \(token)", browserOffer], subprotocols: ["medic.v1"])
        #expect(!head.lowercased().contains("sec-websocket-extensions"))
        let welcome = try raw.readMessage()
        #expect(!welcome.rsv1 && welcome.text.contains("welcome"))
    }
}
