// LoadgenTests: the load generator's pure parts — histogram buckets and percentiles, payload round trip,
// byte searches over medic.v1 JSON.
import CLoadgen
import Testing

@testable import loadgen

@Suite struct HistogramTests {
    @Test func exactBelow128AndWithinTwoPercentAbove() {
        for value: UInt64 in [0, 1, 63, 127] {
            #expect(Histogram.value(at: Histogram.index(value)) == value)
        }
        for value: UInt64 in [128, 1000, 12_345, 1_000_000, 987_654_321] {
            let back = Histogram.value(at: Histogram.index(value))
            #expect(abs(Double(back) - Double(value)) / Double(value) < 0.02, "\(value) → \(back)")
        }
    }

    @Test func bucketsAreMonotonic() {
        var last = -1
        var value: UInt64 = 1
        while value < 1 << 40 {
            let index = Histogram.index(value)
            #expect(index >= last)
            last = index
            value = value * 9 / 8 + 1
        }
    }

    @Test func percentilesOfAUniformRange() {
        var histogram = Histogram()
        for value in 1...1000 { histogram.record(UInt64(value)) }
        #expect(histogram.total == 1000)
        #expect(histogram.maximum == 1000)
        #expect(abs(Int(histogram.percentile(0.5)) - 500) <= 10)
        #expect(abs(Int(histogram.percentile(0.99)) - 990) <= 20)
        #expect(histogram.percentile(1.0) == 1000)
        #expect(Histogram().percentile(0.99) == 0)
    }
}

@Suite struct PayloadTests {
    @Test func roundTripInsideAWrapper() {
        var payload: [UInt8] = []
        Payload.write(into: &payload, size: 100, timestamp: 1_234_567_890_123, seq: 42)
        #expect(payload.count == 100)
        let wrapped = Array("{\"type\":\"event\",\"data\":{\"text\":\"".utf8) + payload + Array("\"}}".utf8)
        let parsed = wrapped.withUnsafeBytes { Payload.parse($0) }
        #expect(parsed?.timestamp == 1_234_567_890_123)
        #expect(parsed?.seq == 42)
    }

    @Test func absentOrCutMarkerIsNil() {
        var payload: [UInt8] = []
        Payload.write(into: &payload, size: 100, timestamp: 7, seq: 1)
        #expect(Array("{\"type\":\"ack\"}".utf8).withUnsafeBytes { Payload.parse($0) } == nil)
        #expect(Array(payload.prefix(Payload.headerLength - 1)).withUnsafeBytes { Payload.parse($0) } == nil)
    }
}

@Suite struct BytesTests {
    @Test func fieldsOfAnAck() {
        let ack = Array("{\"type\":\"ack\",\"id\":\"x\",\"proposal\":\"p_7Qx\",\"seq\":17,\"ts\":1795328040123}".utf8)
        ack.withUnsafeBytes { bytes in
            #expect(MedicWire.kind(of: bytes) == .ack)
            #expect(Bytes.string(after: "\"proposal\":\"", in: bytes) == "p_7Qx")
            #expect(Bytes.integer(after: "\"seq\":", in: bytes) == 17)
            #expect(Bytes.integer(after: "\"ts\":", in: bytes) == 1_795_328_040_123)
            #expect(Bytes.integer(after: "\"head\":", in: bytes) == nil)
        }
    }

    @Test func countsLineMarkers() {
        let event = Array("{\"type\":\"event\",\"kind\":\"test_output\",\"data\":{\"lines\":[\"L1\",\"L2\",\"L3\"]}}".utf8)
        event.withUnsafeBytes { #expect(Bytes.count($0, "\"L") == 3) }
    }
}

@Suite struct InflateTests {
    /// RFC 7692 §7.2.3.1: "Hello" compressed; the shim appends 00 00 ff ff itself.
    static let hello: [UInt8] = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]

    func inflate(_ input: [UInt8], capacity: Int = 64) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: capacity)
        let n = input.withUnsafeBytes { i in out.withUnsafeMutableBytes { lg_inflate_message(i.baseAddress, i.count, $0.baseAddress, $0.count) } }
        return n < 0 ? nil : Array(out[0..<n])
    }

    @Test func inflatesTheRFCExampleTwice() {
        #expect(inflate(Self.hello) == Array("Hello".utf8))
        #expect(inflate(Self.hello) == Array("Hello".utf8))  // the stream is reset between messages
    }

    @Test func garbageAndOverflowAreRefused() {
        #expect(inflate([0xff, 0xff, 0xff, 0x00]) == nil)
        #expect(inflate(Self.hello, capacity: 5) == nil)  // no room left: treated as too big
        #expect(inflate(Self.hello) == Array("Hello".utf8))
    }
}
