// PerMessageDeflateTests: RFC 7692 negotiation rules (§7) and the message codec (§7.2) over zlib.
import Testing

@testable import WebSocket

@Suite struct DeflateNegotiationTests {
    let on = DeflateConfiguration()

    func negotiate(_ values: String...) -> DeflateParameters? {
        DeflateParameters.negotiate(offers: values, configuration: on)
    }

    @Test func aPlainOfferIsAcceptedWithNoContextTakeoverBothWays() {
        let accepted = negotiate("permessage-deflate")
        #expect(accepted == DeflateParameters())
        #expect(accepted?.responseHeader == "permessage-deflate; server_no_context_takeover; client_no_context_takeover")
    }

    @Test func whatBrowsersSendIsAccepted() {
        // Chromium and Firefox: client_max_window_bits with no value.
        let accepted = negotiate("permessage-deflate; client_max_window_bits")
        #expect(accepted == DeflateParameters(serverMaxWindowBits: 15, clientMaxWindowBits: nil))
    }

    @Test func windowBitsAreHonouredAndEchoed() {
        let accepted = negotiate("permessage-deflate; server_max_window_bits=10; client_max_window_bits=12")
        #expect(accepted == DeflateParameters(serverMaxWindowBits: 10, clientMaxWindowBits: 12))
        #expect(accepted?.responseHeader
            == "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=12")
        #expect(negotiate("permessage-deflate; server_max_window_bits=\"9\"")?.serverMaxWindowBits == 9, "quoted token value")
    }

    @Test func eightBitWindowIsAcceptedButNeverCompressedTo() {
        let accepted = negotiate("permessage-deflate; server_max_window_bits=8")
        #expect(accepted?.serverMaxWindowBits == 8 && accepted?.compressesOutbound == false)
    }

    @Test(arguments: [
        "permessage-deflate; server_max_window_bits",  // value required in an offer
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=09",  // leading zero
        "permessage-deflate; server_max_window_bits=1a",
        "permessage-deflate; client_max_window_bits=0",
        "permessage-deflate; client_max_window_bits=",
        "permessage-deflate; server_no_context_takeover=1",  // no value allowed
        "permessage-deflate; client_no_context_takeover; client_no_context_takeover",  // duplicate
        "permessage-deflate; server_max_window_bits=10; server_max_window_bits=11",
        "permessage-deflate; mystery_param",
        "permessage-deflate; client_max_window_bits=\"1 5\"",
        "x-webkit-deflate-frame",
        "",
    ])
    func invalidOffersAreDeclined(_ offer: String) {
        #expect(negotiate(offer) == nil)
    }

    @Test func aDeclinedOfferFallsBackToTheNextOne() {
        let header = "permessage-deflate; server_max_window_bits=99, permessage-deflate; client_max_window_bits"
        #expect(negotiate(header) == DeflateParameters(serverMaxWindowBits: 15, clientMaxWindowBits: nil))
        #expect(negotiate("foo, permessage-deflate; bogus", "permessage-deflate; server_max_window_bits=12")?.serverMaxWindowBits == 12)
    }

    @Test func namesAreCaseInsensitiveAndSpacingIsFree() {
        #expect(negotiate("Permessage-Deflate ;\tServer_No_Context_Takeover ;CLIENT_MAX_WINDOW_BITS=9") != nil)
    }

    @Test func switchedOffNegotiatesNothing() {
        #expect(DeflateParameters.negotiate(offers: ["permessage-deflate"], configuration: DeflateConfiguration(enabled: false)) == nil)
    }
}

@Suite struct DeflateCodecTests {
    /// RFC 7692 §7.2.3.1: "Hello" as one compressed message.
    static let helloCompressed: [UInt8] = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]

    @Test func inflatesTheRFCExample() throws {
        let out = try Self.helloCompressed.withUnsafeBytes { try MessageInflater().decompress($0, maxBytes: 100) }
        #expect(out == Array("Hello".utf8))
    }

    @Test func inflatesAMessageEndingWithAFinalBlock() throws {
        // §7.2.3.3 "Hello" in a BFINAL stored block: 0x01 LEN NLEN "Hello".
        let stored: [UInt8] = [0x01, 0x05, 0x00, 0xfa, 0xff] + Array("Hello".utf8)
        let out = try stored.withUnsafeBytes { try MessageInflater().decompress($0, maxBytes: 100) }
        #expect(out == Array("Hello".utf8))
    }

    @Test func compressesTheRFCExampleExactly() {
        let deflater = MessageDeflater()
        let out = Array("Hello".utf8).withUnsafeBytes { deflater.compress($0) }
        #expect(out == Self.helloCompressed)
        // No context takeover: the same message compresses the same way again.
        #expect(Array("Hello".utf8).withUnsafeBytes { deflater.compress($0) } == Self.helloCompressed)
    }

    @Test(arguments: [9, 10, 12, 15])
    func roundTripsAtEveryWindow(_ bits: Int) throws {
        let deflater = MessageDeflater()
        let inflater = MessageInflater()
        var generator = SystemRandomNumberGenerator()
        for size in [1, 100, 4_000, 70_000, 300_000] {
            let text = (0..<size).map { _ in UInt8.random(in: 97...102, using: &generator) }
            let compressed = try #require(text.withUnsafeBytes { deflater.compress($0, windowBits: bits) })
            #expect(compressed.count < text.count || size < 10)
            #expect(try compressed.withUnsafeBytes { try inflater.decompress($0, maxBytes: size) } == text)
        }
    }

    @Test func aDecompressionBombStopsAtTheLimit() throws {
        let zeros = [UInt8](repeating: 0, count: 8 << 20)
        let bomb = try #require(zeros.withUnsafeBytes { MessageDeflater().compress($0) })
        #expect(bomb.count < 16 << 10)
        let inflater = MessageInflater()
        #expect(throws: InflateError.tooBig(limit: 1 << 20)) { try bomb.withUnsafeBytes { try inflater.decompress($0, maxBytes: 1 << 20) } }
        // The inflater is reset and still works.
        #expect(try Self.helloCompressed.withUnsafeBytes { try inflater.decompress($0, maxBytes: 5) } == Array("Hello".utf8))
        #expect(throws: InflateError.tooBig(limit: 4)) { try Self.helloCompressed.withUnsafeBytes { try inflater.decompress($0, maxBytes: 4) } }
    }

    @Test func garbageIsInvalidData() {
        let inflater = MessageInflater()
        let garbage: [UInt8] = [0xff, 0xff, 0xff, 0x00, 0x12]
        #expect(throws: InflateError.self) { try garbage.withUnsafeBytes { try inflater.decompress($0, maxBytes: 1000) } }
        let trailing: [UInt8] = [0x01, 0x05, 0x00, 0xfa, 0xff] + Array("Hello".utf8) + [0x42]
        #expect(throws: InflateError.invalidData("data after the final deflate block")) {
            try trailing.withUnsafeBytes { try inflater.decompress($0, maxBytes: 1000) }
        }
    }
}
