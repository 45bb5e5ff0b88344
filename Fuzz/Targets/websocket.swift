// Fuzz target `websocket`: the RFC 6455 codec in both directions, and permessage-deflate (RFC 7692).
//
// The first decision byte picks a mode:
//   0 decode: arbitrary bytes into a server or client `WebSocketConnection`, with or without permessage-deflate
//     negotiated, whole vs split vs in place — the same messages, control replies and failure; text is valid
//     UTF-8; sizes within the limits (inflated ones too); nothing after `.close`.
//   1 round trip: the payload framed by one role (compressed or not, fragmented at fuzzer-chosen sizes, a ping in
//     between) and read by the other yields the same message (or, for invalid UTF-8 text, a 1007 failure), and
//     the ping's pong.
//   2 deflate: compress → inflate gives the payload back at each window size; one byte under the size is refused.
//   3 inflate: arbitrary bytes never inflate past the limit, and the limit is exact.
import WebSocket

/// An action with frames we send decoded (a client masks with a fresh random key, so raw bytes differ per run).
private enum Seen: Equatable {
    case message(UInt8, [UInt8])
    case send(UInt8, [UInt8])
    case pong([UInt8])
    case close
}

/// Reads the one frame of a `.send`: FIN + opcode, then the (unmasked) payload.
private func unframe(_ bytes: [UInt8]) -> (UInt8, [UInt8]) {
    require(bytes.count >= 2, "a sent frame shorter than its header")
    let opcode = bytes[0] & 0x0F
    require(bytes[0] & 0xF0 == 0x80, "a sent control frame without FIN or with RSV bits")
    let masked = bytes[1] & 0x80 != 0
    var length = Int(bytes[1] & 0x7F)
    var offset = 2
    if length == 126 { length = Int(bytes[2]) << 8 | Int(bytes[3]); offset = 4 }
    require(length != 127, "a control frame with a 64-bit length")
    var payload = Array(bytes[(offset + (masked ? 4 : 0))...])
    require(payload.count == length, "sent frame length \(length), payload \(payload.count)")
    if masked {
        let key = Array(bytes[offset..<offset + 4])
        for i in payload.indices { payload[i] ^= key[i & 3] }
    }
    return (opcode, payload)
}

private func seen(_ actions: [WebSocketAction], input: [UInt8]) -> [Seen] {
    actions.map { action in
        switch action {
        case .message(let op, let bytes): return .message(op.rawValue, bytes)
        case .messageInInput(let op, let range): return .message(op.rawValue, Array(input[range]))
        case .send(let bytes): let (op, payload) = unframe(bytes); return .send(op, payload)
        case .pong(let bytes): return .pong(bytes)
        case .close: return .close
        }
    }
}

private func decode(_ chunks: [[UInt8]], role: WebSocketRole, limits: WebSocketLimits, inPlace: Bool, deflate: Bool) -> [Seen] {
    var connection = WebSocketConnection(role: role, limits: limits)
    if deflate { connection.enablePerMessageDeflate() }
    let reader = deflate ? inflater : nil
    var all: [Seen] = []
    for var chunk in chunks {
        var actions: [WebSocketAction] = []
        if inPlace {
            chunk.withUnsafeMutableBytes { connection.receive(inPlace: $0, inflater: reader, into: &actions) }
        } else {
            connection.receive(chunk, inflater: reader, into: &actions)
        }
        all += seen(actions, input: chunk)
    }
    return all
}

private func checkDecode(_ input: inout FuzzInput) {
    let role: WebSocketRole = input.bool() ? .server : .client
    let limits = WebSocketLimits(maxFrameSize: 1 + input.int(below: 4096), maxMessageSize: 1 + input.int(below: 8192),
                                 maxFragments: input.bool() ? nil : 1 + input.int(below: 16))
    let point = input.int(below: 1 << 16)
    let drip = input.bool()
    let deflate = input.bool()
    let stream = input.rest

    let whole = decode([stream], role: role, limits: limits, inPlace: false, deflate: deflate)
    let split = decode(pieces(stream, cuts(count: stream.count, at: point, drip: drip)), role: role, limits: limits,
                       inPlace: false, deflate: deflate)
    let inPlace = decode([stream], role: role, limits: limits, inPlace: true, deflate: deflate)
    require(whole == split, "whole and split input disagree")
    require(whole == inPlace, "copied and in-place decoding disagree")
    for (i, action) in whole.enumerated() {
        if case .close = action { require(i == whole.count - 1, "actions after .close") }
        if case .message(let op, let bytes) = action {
            require(bytes.count <= limits.maxMessageSize, "message over the limit")
            if op == WebSocketOpcode.text.rawValue { require(String(validating: bytes, as: UTF8.self) != nil, "invalid UTF-8 text delivered") }
            require(op == WebSocketOpcode.text.rawValue || op == WebSocketOpcode.binary.rawValue, "message opcode \(op)")
        }
    }
}

private func checkRoundTrip(_ input: inout FuzzInput) {
    let senderRole: WebSocketRole = input.bool() ? .client : .server
    let text = input.bool()
    let fragment = 1 + input.int(below: 512)
    let pingAt = input.int(below: 64)
    let compress = input.bool()
    let payload = input.rest
    let sender = WebSocketConnection(role: senderRole)
    let opcode: WebSocketOpcode = text ? .text : .binary
    // Compressed (RFC 7692 §6): the whole message is deflated once, RSV1 on its first frame only, then fragmented.
    let onWire = compress ? payload.withUnsafeBytes { deflater.compress($0) } ?? [] : payload
    let key: UInt32? = senderRole == .client ? 0x3712_5A0F : nil
    var wire: [UInt8] = []
    var start = 0
    var frames = 0
    repeat {
        let end = min(onWire.count, start + fragment)
        wire += WebSocketFrame.encode(frames == 0 ? opcode : .continuation, payload: Array(onWire[start..<end]),
                                      fin: end == onWire.count, maskingKey: key, compressed: compress && frames == 0)
        if frames == pingAt { wire += sender.frame(.ping, payload: Array(onWire.prefix(min(end, 125)))) }
        frames += 1
        start = end
    } while start < onWire.count
    let receiverRole: WebSocketRole = senderRole == .client ? .server : .client
    let limits = WebSocketLimits(maxFrameSize: 1 << 20, maxMessageSize: 1 << 20, maxFragments: nil)
    let got = decode([wire], role: receiverRole, limits: limits, inPlace: false, deflate: compress)
    let pinged = Array(onWire.prefix(min(min(onWire.count, (pingAt + 1) * fragment), 125)))
    let ping: [Seen] = pingAt < frames ? [.send(WebSocketOpcode.pong.rawValue, pinged)] : []
    if text && String(validating: payload, as: UTF8.self) == nil {
        // Invalid text fails the connection with 1007 (RFC 6455 §8.1), possibly after the ping's pong.
        require(got.last == .close, "invalid UTF-8 did not close")
        require(got.contains(.send(WebSocketOpcode.close.rawValue, [0x03, 0xEF])), "invalid UTF-8 closed without 1007: \(got)")
        return
    }
    // The ping goes after frame `pingAt`: its pong precedes the message unless the ping follows the last frame.
    let message: [Seen] = [.message(opcode.rawValue, payload)]
    require(got == (pingAt < frames - 1 ? ping + message : message + ping),
            "round trip changed the message: \(got.count) actions")
}

// One of each for the whole run, as one per loop in the server: a state leaking from one message into the next
// (a missed reset) shows up as a failed round trip. libFuzzer calls the harness from one thread only.
nonisolated(unsafe) private let deflater = MessageDeflater()
nonisolated(unsafe) private let inflater = MessageInflater()

private func checkDeflate(_ input: inout FuzzInput) {
    let windowBits = 9 + input.int(below: 7)
    let payload = input.rest
    guard let compressed = payload.withUnsafeBytes({ deflater.compress($0, windowBits: windowBits) }) else {
        require(false, "compress refused window \(windowBits)")
        return
    }
    let back = compressed.withUnsafeBytes { bytes -> Result<[UInt8], InflateError> in
        do throws(InflateError) { return .success(try inflater.decompress(bytes, maxBytes: payload.count)) } catch { return .failure(error) }
    }
    require(back == .success(payload), "deflate round trip failed at window \(windowBits): \(back)")
    if !payload.isEmpty {
        let short = compressed.withUnsafeBytes { bytes -> Result<[UInt8], InflateError> in
            do throws(InflateError) { return .success(try inflater.decompress(bytes, maxBytes: payload.count - 1)) } catch { return .failure(error) }
        }
        require(short == .failure(.tooBig(limit: payload.count - 1)), "a message one byte over the limit was not refused")
    }
}

private func checkInflate(_ input: inout FuzzInput) {
    let limit = input.int(below: 1 << 16)
    let data = input.rest
    let result = data.withUnsafeBytes { bytes -> Result<[UInt8], InflateError> in
        do throws(InflateError) { return .success(try inflater.decompress(bytes, maxBytes: limit)) } catch { return .failure(error) }
    }
    switch result {
    case .success(let output):
        require(output.count <= limit, "inflated \(output.count) bytes past the limit \(limit)")
        // With room to spare the same bytes inflate the same way (the inflater was reset in between).
        let again = data.withUnsafeBytes { bytes -> Result<[UInt8], InflateError> in
            do throws(InflateError) { return .success(try inflater.decompress(bytes, maxBytes: limit + 1)) } catch { return .failure(error) }
        }
        require(again == result, "inflating twice differs")
    case .failure(.tooBig(let reported)):
        require(reported == limit, "tooBig reports \(reported), not \(limit)")
    case .failure(.invalidData):
        break
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzWebSocket(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    switch input.byte() % 4 {
    case 0: checkDecode(&input)
    case 1: checkRoundTrip(&input)
    case 2: checkDeflate(&input)
    default: checkInflate(&input)
    }
    return 0
}
