// Test helpers: frame builders and a driver that feeds input whole, byte by byte and split at every point.

import Testing
@testable import WebSocket

/// An Equatable mirror of `WebSocketAction` for assertions.
enum Act: Equatable, CustomStringConvertible {
    case message(WebSocketOpcode, [UInt8])
    case send([UInt8])
    case pong([UInt8])
    case close

    init(_ action: WebSocketAction) { self.init(action, input: nil) }

    /// `input`: the buffer given to `receive(inPlace:)`, which `.messageInInput` ranges point into.
    init(_ action: WebSocketAction, input: UnsafeRawBufferPointer?) {
        switch action {
        case .message(let op, let bytes): self = .message(op, bytes)
        case .messageInInput(let op, let range): self = .message(op, Array(input![range]))
        case .send(let bytes): self = .send(bytes)
        case .pong(let bytes): self = .pong(bytes)
        case .close: self = .close
        }
    }

    var description: String {
        switch self {
        case .message(let op, let bytes): return "message(\(op), \(bytes.count) bytes)"
        case .send(let bytes): return "send(\(bytes.prefix(16)))"
        case .pong(let bytes): return "pong(\(bytes))"
        case .close: return "close"
        }
    }
}

/// A fixed masking key so client frames are reproducible.
let testKey: UInt32 = 0x3712_A5C9

/// A frame as a client sends it (masked).
func clientFrame(_ op: WebSocketOpcode, _ payload: [UInt8], fin: Bool = true) -> [UInt8] {
    WebSocketFrame.encode(op, payload: payload, fin: fin, maskingKey: testKey)
}

/// A frame with an arbitrary first byte and raw length field, masked with `testKey` (for malformed headers).
func rawFrame(firstByte: UInt8, lengthBytes: [UInt8], payload: [UInt8], masked: Bool = true) -> [UInt8] {
    var out: [UInt8] = [firstByte]
    var length = lengthBytes
    if masked { length[0] |= 0x80 }
    out += length
    if masked {
        let key: [UInt8] = [0x37, 0x12, 0xA5, 0xC9]
        out += key
        out += payload.enumerated().map { $0.element ^ key[$0.offset % 4] }
    } else {
        out += payload
    }
    return out
}

/// The server's expected close frame carrying `code`.
func serverClose(_ code: UInt16) -> [UInt8] {
    [0x88, 0x02, UInt8(code >> 8), UInt8(code & 0xFF)]
}

/// Expected actions when the server fails the connection with `code`.
func failure(_ code: UInt16) -> [Act] { [.send(serverClose(code)), .close] }

/// Feeds `chunks` in order to a fresh connection and returns the actions. `inPlace` uses
/// `receive(inPlace:into:)`, whose in-place messages are read back from each chunk's buffer.
/// `deflate`: permessage-deflate negotiated, compressed messages read with one shared inflater.
func feed(
    _ chunks: [ArraySlice<UInt8>], role: WebSocketRole = .server, limits: WebSocketLimits = .init(), inPlace: Bool = false,
    deflate: Bool = false
) -> ([Act], WebSocketConnection) {
    var connection = WebSocketConnection(role: role, limits: limits)
    if deflate { connection.enablePerMessageDeflate() }
    // One per feed, as a server keeps one per loop thread (tests run concurrently; a zlib stream is not shared).
    let inflater = deflate ? MessageInflater() : nil
    var acts: [Act] = []
    for chunk in chunks {
        var buffer = Array(chunk)
        var actions: [WebSocketAction] = []
        buffer.withUnsafeMutableBytes { raw in
            if inPlace {
                connection.receive(inPlace: raw, inflater: inflater, into: &actions)
            } else {
                connection.receive(UnsafeRawBufferPointer(raw), inflater: inflater, into: &actions)
            }
            acts += actions.map { Act($0, input: UnsafeRawBufferPointer(raw)) }
        }
    }
    return (acts, connection)
}

/// Feeds `input` whole, one byte at a time, and (when small enough) split in two at every point,
/// expecting identical actions each way. Returns the actions and the connection after the whole feed.
@discardableResult
func drive(
    _ input: [UInt8], role: WebSocketRole = .server, limits: WebSocketLimits = .init(), deflate: Bool = false,
    sourceLocation: SourceLocation = #_sourceLocation
) -> ([Act], WebSocketConnection) {
    let (whole, connection) = feed([input[...]], role: role, limits: limits, deflate: deflate)
    let (bytewise, _) = feed(input.indices.map { input[$0...$0] }, role: role, limits: limits, deflate: deflate)
    #expect(bytewise == whole, "byte-at-a-time differs", sourceLocation: sourceLocation)
    let (inPlaceWhole, _) = feed([input[...]], role: role, limits: limits, inPlace: true, deflate: deflate)
    #expect(inPlaceWhole == whole, "in-place parsing differs", sourceLocation: sourceLocation)
    if input.count <= 4096 {
        for split in 0...input.count {
            let (parts, _) = feed([input[..<split], input[split...]], role: role, limits: limits, deflate: deflate)
            let (inPlaceParts, _) = feed(
                [input[..<split], input[split...]], role: role, limits: limits, inPlace: true, deflate: deflate)
            if parts != whole || inPlaceParts != whole {
                Issue.record("split at \(split) differs: \(parts) / in place \(inPlaceParts) vs \(whole)", sourceLocation: sourceLocation)
                break
            }
        }
    } else {
        for split in [1, 2, 5, 9, 13, 14, 15, 100, 4095, input.count / 2, input.count - 1] {
            let (parts, _) = feed([input[..<split], input[split...]], role: role, limits: limits, deflate: deflate)
            #expect(parts == whole, "split at \(split) differs", sourceLocation: sourceLocation)
        }
    }
    return (whole, connection)
}

/// A small deterministic generator (xorshift64*) so randomized tests are reproducible.
struct TestRandom: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed == 0 ? 0x9E37_79B9_7F4A_7C15 : seed }
    mutating func next() -> UInt64 {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return state &* 0x2545_F491_4F6C_DD1D
    }
}

func bytes(count: Int, seed: UInt64 = 1) -> [UInt8] {
    var random = TestRandom(seed: seed)
    return (0..<count).map { _ in UInt8.random(in: 0...255, using: &random) }
}

