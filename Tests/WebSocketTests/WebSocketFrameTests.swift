// Tests for frame encoding, masking, length encodings and encode→decode round trips.

import IOBytes
import Testing
@testable import WebSocket

@Suite struct WebSocketFrameTests {
    @Test(arguments: [0, 1, 125, 126, 127, 65535, 65536, 70000])
    func roundTripClientToServer(size: Int) {
        let payload = bytes(count: size, seed: UInt64(size) + 7)
        let frame = clientFrame(.binary, payload)
        #expect(frame.count == WebSocketFrame.headerSize(payloadCount: size, masked: true) + size)
        let (actions, connection) = drive(frame)
        #expect(actions == [.message(.binary, payload)])
        #expect(connection.state == .open)
    }

    @Test(arguments: [0, 125, 126, 65535, 65536, 70000])
    func roundTripServerToClient(size: Int) {
        let payload = bytes(count: size, seed: UInt64(size) + 9)
        let frame = WebSocketFrame.encode(.binary, payload: payload)
        #expect(frame.count == WebSocketFrame.headerSize(payloadCount: size, masked: false) + size)
        #expect(Array(frame.suffix(size)) == payload, "server frames are not masked")
        let (actions, _) = drive(frame, role: .client)
        #expect(actions == [.message(.binary, payload)])
    }

    @Test func lengthEncodingsAreMinimal() {
        // §5.2: 7-bit for 0-125, 126 + 16-bit up to 65535, 127 + 64-bit above.
        #expect(WebSocketFrame.encode(.binary, payload: bytes(count: 125))[1] == 125)
        let f126 = WebSocketFrame.encode(.binary, payload: bytes(count: 126))
        #expect(Array(f126[1...3]) == [126, 0, 126])
        let f65535 = WebSocketFrame.encode(.binary, payload: bytes(count: 65535))
        #expect(Array(f65535[1...3]) == [126, 0xFF, 0xFF])
        let f65536 = WebSocketFrame.encode(.binary, payload: bytes(count: 65536))
        #expect(Array(f65536[1...9]) == [127, 0, 0, 0, 0, 0, 1, 0, 0])
        #expect(WebSocketFrame.headerSize(payloadCount: 0, masked: false) == 2)
        #expect(WebSocketFrame.headerSize(payloadCount: 125, masked: true) == 6)
        #expect(WebSocketFrame.headerSize(payloadCount: 126, masked: false) == 4)
        #expect(WebSocketFrame.headerSize(payloadCount: 65535, masked: true) == 8)
        #expect(WebSocketFrame.headerSize(payloadCount: 65536, masked: false) == 10)
        #expect(WebSocketFrame.headerSize(payloadCount: 65536, masked: true) == 14)
    }

    @Test func firstByteCarriesFinAndOpcode() {
        #expect(WebSocketFrame.encode(.text, payload: [])[0] == 0x81)
        #expect(WebSocketFrame.encode(.text, payload: [], fin: false)[0] == 0x01)
        #expect(WebSocketFrame.encode(.continuation, payload: [])[0] == 0x80)
        #expect(WebSocketFrame.encode(.pong, payload: [1])  == [0x8A, 0x01, 0x01])
    }

    @Test func maskingMatchesRFCExample() {
        // RFC 6455 §5.7: masked "Hello" with key 37 fa 21 3d.
        let frame = WebSocketFrame.encode(.text, payload: Array("Hello".utf8), maskingKey: 0x37FA_213D)
        #expect(frame == [0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58])
        let (actions, _) = drive(frame)
        #expect(actions == [.message(.text, Array("Hello".utf8))])
    }

    @Test func unmaskedRFCExampleDecodesAsClient() {
        // RFC 6455 §5.7: a single-frame unmasked text message and a fragmented one.
        let (single, _) = drive([0x81, 0x05, 0x48, 0x65, 0x6C, 0x6C, 0x6F], role: .client)
        #expect(single == [.message(.text, Array("Hello".utf8))])
        let (fragmented, _) = drive([0x01, 0x03, 0x48, 0x65, 0x6C, 0x80, 0x02, 0x6C, 0x6F], role: .client)
        #expect(fragmented == [.message(.text, Array("Hello".utf8))])
    }

    @Test func maskApplicationAtEveryPhaseMatchesNaive() {
        let key: UInt32 = 0xA1B2_C3D4
        let wire: [UInt8] = [0xA1, 0xB2, 0xC3, 0xD4]
        for count in 0...40 {
            for phase in 0..<4 {
                let original = bytes(count: count, seed: UInt64(count * 4 + phase + 1))
                var data = original
                data.withUnsafeMutableBytes { buffer in
                    if let base = buffer.baseAddress {
                        WebSocketMask.apply(WebSocketFrame.wireKey(key), phase: phase, to: base, count: count)
                    }
                }
                let expected = original.enumerated().map { $0.element ^ wire[($0.offset + phase) % 4] }
                #expect(data == expected, "count \(count) phase \(phase)")
            }
        }
    }

    @Test func encodeSharedMatchesEncode() {
        for size in [0, 10, 200, 70000] {
            let payload = bytes(count: size, seed: 3)
            let shared = payload.withUnsafeBytes { WebSocketFrame.encodeShared(.text, payload: $0) }
            #expect(shared.array == WebSocketFrame.encode(.text, payload: payload))
        }
    }

    @Test func closePayloadTruncatesOnCharacterBoundary() {
        #expect(WebSocketFrame.closePayload(code: 1001, reason: "bye") == [0x03, 0xE9] + Array("bye".utf8))
        // 61 two-byte characters = 122 bytes fit; 62 = 124 bytes do not, cut back to 122.
        let reason = String(repeating: "é", count: 62)
        let payload = WebSocketFrame.closePayload(code: 1000, reason: reason)
        #expect(payload.count == 2 + 122)
        #expect(String(validating: payload[2...], as: UTF8.self) == String(repeating: "é", count: 61))
        let ascii = WebSocketFrame.closePayload(code: 1000, reason: String(repeating: "x", count: 200))
        #expect(ascii.count == 125)
    }

    @Test func randomMaskingKeysDiffer() {
        let keys = Set((0..<8).map { _ in WebSocketFrame.randomMaskingKey() })
        #expect(keys.count > 1)
    }
}
