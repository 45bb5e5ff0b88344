// Tests for permessage-deflate in the connection state machine (RFC 7692 §6): RSV1 rules, compressed
// fragmented messages, inflation bounded by the message limit, UTF-8 after inflation; and SharedMessage.

import IOBytes
import Testing
@testable import WebSocket

/// A client frame with RSV1 set (the "Per-Message Compressed" bit), masked with `testKey`.
func compressedClientFrame(_ op: WebSocketOpcode, _ payload: [UInt8], fin: Bool = true) -> [UInt8] {
    var frame = clientFrame(op, payload, fin: fin)
    frame[0] |= 0x40
    return frame
}

/// `payload` compressed as one permessage-deflate message (no context takeover, tail removed).
func deflated(_ payload: [UInt8], windowBits: Int = 15) -> [UInt8] {
    payload.withUnsafeBytes { MessageDeflater().compress($0, windowBits: windowBits)! }
}

@Suite struct WebSocketDeflateConnectionTests {
    /// RFC 7692 §7.2.3.1: "Hello" compressed.
    static let hello: [UInt8] = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]

    @Test func aCompressedTextMessageIsInflated() {
        // Whole, byte by byte, split at every point, in place: the same message.
        let (actions, _) = drive(compressedClientFrame(.text, Self.hello), deflate: true)
        #expect(actions == [.message(.text, Array("Hello".utf8))])
    }

    @Test func anUncompressedMessageStillPassesWhenNegotiated() {
        // §6: RSV1 clear means this message is not compressed, whatever was negotiated.
        let (actions, _) = drive(clientFrame(.text, Array("plain".utf8)), deflate: true)
        #expect(actions == [.message(.text, Array("plain".utf8))])
    }

    @Test func rsv1WithoutNegotiationIsAProtocolError() {
        let (actions, connection) = drive(compressedClientFrame(.text, Self.hello), deflate: false)
        #expect(actions == failure(1002))
        #expect(connection.failure?.closeCode == 1002)
    }

    @Test(arguments: [UInt8(0x20), 0x10, 0x60, 0x70])
    func rsv2AndRsv3AreRefusedEvenWithDeflate(bits: UInt8) {
        let (actions, _) = drive(rawFrame(firstByte: 0x81 | bits, lengthBytes: [2], payload: Array("hi".utf8)), deflate: true)
        #expect(actions == failure(1002))
    }

    @Test(arguments: [WebSocketOpcode.ping, .pong, .close])
    func rsv1OnAControlFrameIsAProtocolError(opcode: WebSocketOpcode) {
        // §6: the bit MUST NOT be set on control frames; a receiver fails the connection.
        let payload: [UInt8] = opcode == .close ? [0x03, 0xE8] : [1, 2]
        let (actions, connection) = drive(compressedClientFrame(opcode, payload), deflate: true)
        #expect(actions == failure(1002))
        #expect(connection.failure?.description.contains("RFC 7692") == true)
    }

    @Test func rsv1OnAContinuationFrameIsAProtocolError() {
        // §6: only the first frame of a message carries it, even when the message is compressed.
        let compressed = deflated(Array("Hello, hello, hello".utf8))
        let input = compressedClientFrame(.text, Array(compressed[..<3]), fin: false)
            + compressedClientFrame(.continuation, Array(compressed[3...]))
        let (actions, _) = drive(input, deflate: true)
        #expect(actions == failure(1002))
    }

    @Test func aCompressedFragmentedMessageWithAnInterleavedPing() {
        let text = String(repeating: "Medic fans out test output €𝄞 ", count: 40)
        let compressed = deflated(Array(text.utf8))
        let third = compressed.count / 3
        // The split points fall inside the DEFLATE stream (and likely inside characters of the inflated text):
        // only the whole message is valid text, so validation waits for inflation.
        let input = compressedClientFrame(.text, Array(compressed[..<third]), fin: false)
            + clientFrame(.continuation, Array(compressed[third..<(2 * third)]), fin: false)
            + clientFrame(.ping, Array("p".utf8))
            + clientFrame(.continuation, Array(compressed[(2 * third)...]))
        let (actions, _) = drive(input, deflate: true)
        #expect(actions == [.send(WebSocketFrame.encode(.pong, payload: Array("p".utf8))), .message(.text, Array(text.utf8))])
    }

    @Test func anEmptyCompressedMessage() {
        // An empty message compresses to one empty stored block; a peer may also send no payload at all.
        let (emptyBlock, _) = drive(compressedClientFrame(.binary, deflated([])), deflate: true)
        #expect(emptyBlock == [.message(.binary, [])])
        let (noPayload, _) = drive(compressedClientFrame(.text, []), deflate: true)
        #expect(noPayload == [.message(.text, [])])
    }

    @Test func messagesAfterACompressedOneAreReadNormally() {
        let input = compressedClientFrame(.text, Self.hello) + clientFrame(.binary, [1, 2, 3])
            + compressedClientFrame(.binary, deflated([9, 9, 9, 9, 9, 9, 9, 9]))
        let (actions, _) = drive(input, deflate: true)
        #expect(actions == [.message(.text, Array("Hello".utf8)), .message(.binary, [1, 2, 3]), .message(.binary, [UInt8](repeating: 9, count: 8))])
    }

    @Test func aDecompressionBombClosesWith1009() {
        // 8 MiB of zeros compress to ~8 KB: far below the 1 MiB limit on the wire, far above it inflated.
        let bomb = deflated([UInt8](repeating: 0, count: 8 << 20))
        #expect(bomb.count < 16 << 10)
        let (actions, connection) = feed([compressedClientFrame(.binary, bomb)[...]], deflate: true)
        #expect(actions == failure(1009))
        #expect(connection.failure?.description.contains("inflates past") == true)
    }

    @Test(arguments: [(999, true), (1000, true), (1001, false)])
    func theInflatedSizeIsBoundedByTheMessageLimit(size: Int, fits: Bool) {
        let limits = WebSocketLimits(maxFrameSize: 1000, maxMessageSize: 1000)
        let payload = [UInt8](repeating: 0x61, count: size)
        let (actions, _) = drive(compressedClientFrame(.text, deflated(payload)), limits: limits, deflate: true)
        #expect(actions == (fits ? [.message(.text, payload)] : failure(1009)))
    }

    @Test func invalidUTF8AfterInflationCloses1007() {
        let bad: [UInt8] = Array("valid so far ".utf8) + [0xC0, 0xAF] + Array(" then more".utf8)
        let (text, _) = drive(compressedClientFrame(.text, deflated(bad)), deflate: true)
        #expect(text == failure(1007))
        // A text message inflating to a truncated character is invalid too.
        let (truncated, _) = drive(compressedClientFrame(.text, deflated([0x61, 0xE2, 0x82])), deflate: true)
        #expect(truncated == failure(1007))
        // The same bytes as a binary message are fine.
        let (binary, _) = drive(compressedClientFrame(.binary, deflated(bad)), deflate: true)
        #expect(binary == [.message(.binary, bad)])
    }

    @Test func invalidDeflateDataCloses1007() {
        // Block type 3 is reserved in DEFLATE (RFC 1951 §3.2.3): 0xff starts a BFINAL block of type 3.
        let (actions, connection) = drive(compressedClientFrame(.binary, [0xff, 0xff, 0xff, 0x00]), deflate: true)
        #expect(actions == failure(1007))
        #expect(connection.failure?.description.contains("DEFLATE") == true)
    }

    @Test func withoutAnInflaterACompressedMessageFailsCleanly() {
        var connection = WebSocketConnection(role: .server)
        connection.enablePerMessageDeflate()
        var actions: [WebSocketAction] = []
        connection.receive(compressedClientFrame(.text, Self.hello), into: &actions)
        #expect(actions.map { Act($0) } == failure(1011))
    }

    @Test func afterOurCloseCompressedDataIsSkippedNotInflated() {
        var connection = WebSocketConnection(role: .server)
        connection.enablePerMessageDeflate()
        _ = connection.initiateClose(code: 1000, reason: "")
        var actions: [WebSocketAction] = []
        // Invalid DEFLATE data: inflating it would fail the connection; after our Close it is ignored.
        connection.receive(compressedClientFrame(.binary, [0xff, 0xff, 0xff, 0x00]), inflater: MessageInflater(), into: &actions)
        #expect(actions.isEmpty)
        #expect(connection.state == .closeSent)
    }
}

@Suite struct SharedMessageTests {
    @Test func thePlainFrameIsByteIdenticalToEncodeShared() {
        let payload = Array("{\"type\":\"event\"}".utf8)
        let message = payload.withUnsafeBytes { SharedMessage(.text, payload: $0) }
        #expect(message.plain.array == payload.withUnsafeBytes { WebSocketFrame.encodeShared(.text, payload: $0) }.array)
    }

    @Test func compressedOnceForEverySubscriberOfAWindowSize() throws {
        let payload = Array(String(repeating: "{\"kind\":\"test_output\",\"line\":\"ok\"} ", count: 50).utf8)
        let message = payload.withUnsafeBytes { SharedMessage(.text, payload: $0) }
        let deflater = MessageDeflater()
        let first = message.frame(windowBits: 15, deflater: deflater, minimumSize: 64)
        for _ in 0..<100 {
            #expect(message.frame(windowBits: 15, deflater: deflater, minimumSize: 64) === first)
        }
        #expect(message.compressionCount == 1)
        // RSV1 + FIN + text, and it inflates back to the payload.
        let bytes = first.array
        #expect(bytes[0] == 0xC1)
        #expect(bytes.count < payload.count / 4)
        let header = bytes[1] & 0x7F == 126 ? 4 : 2
        let (actions, _) = feed([compressedClientFrame(.text, Array(bytes[header...]))[...]], deflate: true)
        #expect(actions == [.message(.text, payload)])
        // A subscriber with a smaller window gets its own frame, also made once.
        let small = message.frame(windowBits: 9, deflater: deflater, minimumSize: 64)
        #expect(small !== first)
        #expect(message.frame(windowBits: 9, deflater: deflater, minimumSize: 64) === small)
        #expect(message.compressionCount == 2)
    }

    @Test func shortOrIncompressibleMessagesShareThePlainFrame() {
        let deflater = MessageDeflater()
        let short = Array("tiny".utf8).withUnsafeBytes { SharedMessage(.text, payload: $0) }
        #expect(short.frame(windowBits: 15, deflater: deflater, minimumSize: 64) === short.plain)
        let random = bytes(count: 2000, seed: 7)
        let noise = random.withUnsafeBytes { SharedMessage(.binary, payload: $0) }
        #expect(noise.frame(windowBits: 15, deflater: deflater, minimumSize: 64) === noise.plain)
    }
}
