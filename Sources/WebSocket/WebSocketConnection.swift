// WebSocketConnection: the per-connection RFC 6455 frame parser and protocol state machine (no I/O).

/// Parses received bytes into frames and messages, answers pings and closes, and reports what
/// the executor must do as `WebSocketAction`s. Resumable at any byte: input may be split anywhere.
///
/// Payloads are unmasked and validated straight from the caller's buffer into the message
/// buffer; a complete single-frame message costs one allocation (its array, sized exactly).
public struct WebSocketConnection: Sendable {
    /// Where the closing handshake (RFC 6455 §7.1.2-§7.1.4) stands.
    public enum State: Sendable, Equatable {
        /// Data flows both ways.
        case open
        /// We sent a Close frame and wait for the peer's; incoming data frames are ignored.
        case closeSent
        /// The closing handshake finished or the connection was failed; all input is ignored.
        case closed
    }

    /// Position inside the frame header (RFC 6455 §5.2) or its payload.
    private enum ParseState {
        case firstByte
        case secondByte
        case extendedLength(remaining: UInt8)
        case maskingKey(remaining: UInt8)
        case payload
    }

    // Stored properties are ordered widest first so the struct packs tightly: a server keeps one per
    // WebSocket connection (Benchmarks: idle RSS per connection).

    // The frame being parsed.
    /// The extended payload length being read (RFC 6455 §5.2), then the frame's payload length.
    private var accumulator: UInt64 = 0
    private var frameLength = 0
    private var frameConsumed = 0

    // The data message being reassembled (RFC 6455 §5.4).
    private var message: [UInt8] = []
    private var messageLength = 0
    /// Payload of the control frame being read: at most 125 bytes (§5.5), reused across frames.
    private var control: [UInt8] = []
    private var sharedLimits: WebSocketLimits.Shared
    /// Why we failed the connection, if we did (for the executor's log line).
    public private(set) var failure: WebSocketProtocolError?
    // The two flags sit in the padding after `failure` (9 bytes) so the struct does not grow.
    /// permessage-deflate (RFC 7692) was negotiated in the handshake: RSV1 may mark a compressed message.
    public private(set) var perMessageDeflate = false
    /// The message being read had RSV1 on its first frame (RFC 7692 §6): inflate it before delivery.
    private var compressed = false
    private var fragmentCount: UInt32 = 0
    /// The 4 masking-key bytes as on the wire, wire byte 0 in the low bits (see `WebSocketMask`).
    private var maskingKey: UInt32 = 0
    /// The status code of the peer's Close frame, if it carried one.
    public private(set) var peerCloseCode: UInt16?
    private var utf8 = UTF8Validator()
    private var parseState: ParseState = .firstByte
    public let role: WebSocketRole
    public private(set) var state: State = .open
    private var fin = false
    private var opcode: WebSocketOpcode = .continuation
    private var lengthCode: UInt8 = 0
    private var masked = false
    /// `.text` or `.binary` while a fragmented message is in progress, nil between messages.
    private var messageOpcode: WebSocketOpcode?

    public var limits: WebSocketLimits { sharedLimits.value }

    public init(role: WebSocketRole, limits: WebSocketLimits = .init()) {
        self.init(role: role, limits: WebSocketLimits.Shared(limits))
    }

    /// With limits shared by every connection of a server (8 bytes per connection instead of 32).
    public init(role: WebSocketRole, limits: WebSocketLimits.Shared) {
        self.role = role
        self.sharedLimits = limits
    }

    /// permessage-deflate was agreed in the handshake (RFC 7692 §5): from now on RSV1 on the first frame of a
    /// data message marks it compressed. Pass a `MessageInflater` to `receive` to read such messages.
    public mutating func enablePerMessageDeflate() {
        perMessageDeflate = true
    }

    /// Replaces the limits (e.g. larger ones once the peer is authenticated). They apply from the next frame
    /// header on, including to the rest of a fragmented message in progress (checked against its size so far).
    public mutating func setLimits(_ limits: WebSocketLimits.Shared) {
        sharedLimits = limits
    }

    /// Feeds received bytes (split anywhere) and appends the resulting actions to `actions`.
    /// On a protocol error: `.send(close with the error's code)` then `.close`; later input is ignored.
    /// `inflater` (one per loop; the connection keeps no zlib state) reads compressed messages once
    /// permessage-deflate is enabled; without one a compressed message fails the connection (1011).
    public mutating func receive(
        _ bytes: UnsafeRawBufferPointer, inflater: MessageInflater? = nil, into actions: inout [WebSocketAction]
    ) {
        guard state != .closed, let base = bytes.baseAddress, bytes.count > 0 else { return }
        do {
            try parse(base, count: bytes.count, inPlace: nil, inflater: inflater, into: &actions)
        } catch {
            fail(error, into: &actions)
        }
    }

    /// Like `receive(_:into:)`, but a whole unfragmented data message lying entirely inside `bytes` is
    /// unmasked and validated in place and reported as `.messageInInput(opcode, range)` — a range of
    /// `bytes`, valid until the caller reuses that buffer — instead of being copied into a new array.
    /// Messages split across reads or fragmented (§5.4) are assembled and reported as `.message`.
    /// A compressed message is inflated into a new array and reported as `.message`.
    public mutating func receive(
        inPlace bytes: UnsafeMutableRawBufferPointer, inflater: MessageInflater? = nil,
        into actions: inout [WebSocketAction]
    ) {
        guard state != .closed, let base = bytes.baseAddress, bytes.count > 0 else { return }
        do {
            try parse(UnsafeRawPointer(base), count: bytes.count, inPlace: base, inflater: inflater, into: &actions)
        } catch {
            fail(error, into: &actions)
        }
    }

    /// Convenience overload of `receive(_:into:)` for arrays.
    public mutating func receive(
        _ bytes: [UInt8], inflater: MessageInflater? = nil, into actions: inout [WebSocketAction]
    ) {
        bytes.withUnsafeBytes { receive($0, inflater: inflater, into: &actions) }
    }

    /// Starts the closing handshake from our side (RFC 6455 §7.1.2) and returns the Close frame to
    /// send. Afterwards incoming data frames are ignored and the peer's Close yields `.close`.
    /// Returns no bytes if a Close was already sent or the connection is closed.
    public mutating func initiateClose(code: UInt16, reason: String) -> [UInt8] {
        // Codes such as 1005/1006/1015 must never be sent (§7.4.1); that would be our bug.
        assert(WebSocketCloseCode.isValidOnWire(code), "close code \(code) is not valid on the wire")
        guard state == .open else { return [] }
        state = .closeSent
        message = []  // §5.5.1: no more data is delivered; free the partial message now.
        return frame(.close, payload: WebSocketFrame.closePayload(code: code, reason: reason))
    }

    /// Encodes one frame for our role: unmasked as a server, masked with a fresh key as a client (§5.3).
    public func frame(_ opcode: WebSocketOpcode, payload: [UInt8], fin: Bool = true) -> [UInt8] {
        switch role {
        case .server: return WebSocketFrame.encode(opcode, payload: payload, fin: fin)
        case .client:
            return WebSocketFrame.encode(
                opcode, payload: payload, fin: fin, maskingKey: WebSocketFrame.randomMaskingKey())
        }
    }

    // MARK: - Parsing

    /// Runs the header/payload state machine over `count` bytes; stops early once closed.
    private mutating func parse(
        _ base: UnsafeRawPointer, count: Int, inPlace: UnsafeMutableRawPointer?, inflater: MessageInflater?,
        into actions: inout [WebSocketAction]
    ) throws(WebSocketProtocolError) {
        var index = 0
        while index < count && state != .closed {
            switch parseState {
            case .firstByte:
                try readFirstByte(base.load(fromByteOffset: index, as: UInt8.self))
                index += 1
            case .secondByte:
                let byte = base.load(fromByteOffset: index, as: UInt8.self)
                index += 1
                try readSecondByte(byte, inflater: inflater, into: &actions)
            case .extendedLength(let remaining):
                accumulator = accumulator << 8 | UInt64(base.load(fromByteOffset: index, as: UInt8.self))
                index += 1
                if remaining > 1 {
                    parseState = .extendedLength(remaining: remaining - 1)
                } else {
                    try readExtendedLength(inflater: inflater, into: &actions)
                }
            case .maskingKey(let remaining):
                let byte = UInt32(base.load(fromByteOffset: index, as: UInt8.self))
                index += 1
                maskingKey |= byte << UInt32(8 * (4 - Int(remaining)))
                if remaining > 1 {
                    parseState = .maskingKey(remaining: remaining - 1)
                } else {
                    try beginPayload(inflater: inflater, into: &actions)
                }
            case .payload:
                if let inPlace, frameConsumed == 0, fin, opcode != .continuation, !opcode.isControl, state == .open,
                    count - index >= frameLength
                {
                    try finishInPlace(inPlace + index, at: index, inflater: inflater, into: &actions)
                    index += frameLength
                    continue
                }
                let chunk = min(count - index, frameLength - frameConsumed)
                try consumePayload(UnsafeRawPointer(base + index), count: chunk)
                index += chunk
                frameConsumed += chunk
                if frameConsumed == frameLength { try finishFrame(inflater: inflater, into: &actions) }
            }
        }
    }

    /// FIN, RSV1-3 and opcode (RFC 6455 §5.2), with the fragmentation rules of §5.4.
    private mutating func readFirstByte(_ byte: UInt8) throws(WebSocketProtocolError) {
        // §5.2: RSV bits MUST be 0 unless an extension defines them. permessage-deflate defines RSV1 only
        // (RFC 7692 §6), and only when it was negotiated; RSV2 and RSV3 are never ours.
        let reserved = (byte >> 4) & 0x7
        let rsv1 = reserved & 0x4 != 0
        guard reserved & 0x3 == 0, !rsv1 || perMessageDeflate else { throw .init(.reservedBitsSet(reserved)) }
        guard let parsed = WebSocketOpcode(rawValue: byte & 0x0F) else {
            throw .init(.unknownOpcode(byte & 0x0F))
        }
        // RFC 7692 §6: "An endpoint MUST NOT set the "Per-Message Compressed" bit of control frames and
        // non-first fragments of a data message. An endpoint receiving such a frame MUST _Fail the
        // WebSocket Connection_."
        if rsv1 && (parsed.isControl || parsed == .continuation) {
            throw .init(.compressedBitOnControlOrContinuation)
        }
        fin = byte & 0x80 != 0
        opcode = parsed
        switch parsed {
        case .close, .ping, .pong:
            // §5.5: control frames MUST NOT be fragmented (but may sit between fragments, §5.4).
            guard fin else { throw .init(.fragmentedControlFrame) }
        case .continuation:
            guard messageOpcode != nil else { throw .init(.continuationWithoutMessage) }
        case .text, .binary:
            // §5.4: fragments of one message are not interleaved with another message.
            guard messageOpcode == nil else { throw .init(.dataFrameInsideFragmentedMessage) }
            // The first frame of a message says whether the whole message is compressed (RFC 7692 §6).
            compressed = rsv1
        }
        parseState = .secondByte
    }

    /// MASK and the 7-bit payload length (RFC 6455 §5.2).
    private mutating func readSecondByte(
        _ byte: UInt8, inflater: MessageInflater?, into actions: inout [WebSocketAction]
    ) throws(WebSocketProtocolError) {
        masked = byte & 0x80 != 0
        // §5.1: a server MUST fail on an unmasked client frame; a client on a masked server frame.
        let mustBeMasked = role == .server
        guard masked == mustBeMasked else { throw .init(.maskMismatch(expectedMasked: mustBeMasked)) }
        lengthCode = byte & 0x7F
        if opcode.isControl && lengthCode > 125 {
            // §5.5: control payloads are at most 125 bytes, so they never use extended lengths.
            throw .init(.controlFrameTooLong(Int(lengthCode)))
        }
        switch lengthCode {
        case 126:
            accumulator = 0
            parseState = .extendedLength(remaining: 2)
        case 127:
            accumulator = 0
            parseState = .extendedLength(remaining: 8)
        default:
            frameLength = Int(lengthCode)
            try lengthKnown(inflater: inflater, into: &actions)
        }
    }

    /// Checks the 16- or 64-bit length just read. §5.2: "the minimal number of bytes MUST be
    /// used to encode the length" and the 64-bit form's most significant bit MUST be 0.
    private mutating func readExtendedLength(
        inflater: MessageInflater?, into actions: inout [WebSocketAction]
    ) throws(WebSocketProtocolError) {
        if lengthCode == 126 {
            guard accumulator >= 126 else { throw .init(.nonMinimalLength) }
        } else {
            guard accumulator & (1 << 63) == 0 else { throw .init(.lengthMostSignificantBitSet) }
            guard accumulator > 0xFFFF else { throw .init(.nonMinimalLength) }
        }
        // Below 2^63, so it fits in Int on the 64-bit platforms we support.
        frameLength = Int(accumulator)
        try lengthKnown(inflater: inflater, into: &actions)
    }

    /// Enforces the limits before reading any payload, so an oversized frame costs nothing.
    private mutating func lengthKnown(
        inflater: MessageInflater?, into actions: inout [WebSocketAction]
    ) throws(WebSocketProtocolError) {
        if !opcode.isControl {
            guard frameLength <= limits.maxFrameSize else { throw .init(.frameTooBig(frameLength)) }
            // Written as a subtraction so a huge frame length cannot overflow the sum.
            guard frameLength <= limits.maxMessageSize - messageLength else {
                throw .init(.messageTooBig(messageLength + frameLength))
            }
            if fragmentCount < .max { fragmentCount += 1 }  // saturates: unlimited fragments must not trap
            if let maxFragments = limits.maxFragments, Int(fragmentCount) > maxFragments {
                throw .init(.tooManyFragments(Int(fragmentCount)))
            }
            messageLength += frameLength
            if opcode != .continuation { messageOpcode = opcode }
        }
        if masked {
            maskingKey = 0
            parseState = .maskingKey(remaining: 4)
        } else {
            try beginPayload(inflater: inflater, into: &actions)
        }
    }

    /// Header complete: start reading the payload (finishing at once when it is empty).
    private mutating func beginPayload(
        inflater: MessageInflater?, into actions: inout [WebSocketAction]
    ) throws(WebSocketProtocolError) {
        frameConsumed = 0
        parseState = .payload
        // An empty frame has no payload bytes to wait for.
        if frameLength == 0 { try finishFrame(inflater: inflater, into: &actions) }
    }

    /// A lone final data frame whose payload is all in the caller's buffer: unmask and validate it there.
    private mutating func finishInPlace(
        _ payload: UnsafeMutableRawPointer, at offset: Int, inflater: MessageInflater?,
        into actions: inout [WebSocketAction]
    ) throws(WebSocketProtocolError) {
        if masked { WebSocketMask.apply(maskingKey, phase: 0, to: payload, count: frameLength) }
        if compressed {
            // Inflated into a new array (the message grows), then delivered like an assembled one.
            let inflated = try inflate(UnsafeRawBufferPointer(start: payload, count: frameLength), with: inflater)
            try deliverInflated(opcode, inflated, into: &actions)
        } else if opcode == .text {
            // §8.1 with §5.6: the whole text message must be valid UTF-8, ending on a character boundary.
            guard utf8.consume(UnsafeRawPointer(payload), count: frameLength) else { throw .init(.invalidUTF8) }
            guard utf8.isComplete else { throw .init(.incompleteUTF8AtEndOfMessage) }
            utf8 = UTF8Validator()
        }
        if !compressed { actions.append(.messageInInput(opcode, offset..<offset + frameLength)) }
        compressed = false
        frameConsumed = frameLength
        parseState = .firstByte
        messageOpcode = nil
        messageLength = 0
        fragmentCount = 0
    }

    /// Copies (and unmasks, and for text validates) the next `count` payload bytes of the frame.
    private mutating func consumePayload(_ pointer: UnsafeRawPointer, count: Int) throws(WebSocketProtocolError) {
        let chunk = UnsafeRawBufferPointer(start: pointer, count: count)
        if opcode.isControl {
            control.append(contentsOf: chunk)  // unmasked whole in finishFrame
            return
        }
        // §7.1.2: after we sent Close, data is not delivered, so it is skipped rather than buffered.
        guard state == .open else { return }
        let start = message.count
        // A lone final frame is the whole message: size its buffer exactly once. Later fragments grow it
        // geometrically.
        if start == 0 && fin && frameConsumed == 0 { message.reserveCapacity(frameLength) }
        message.append(contentsOf: chunk)
        let ok = message.withUnsafeMutableBytes { buffer -> Bool in
            let tail = buffer.baseAddress! + start
            if masked { WebSocketMask.apply(maskingKey, phase: frameConsumed, to: tail, count: count) }
            // §8.1 with §5.6: validate as we go so bad text fails before the message completes. A compressed
            // message is validated after inflation (RFC 7692 §6.2: the payload is DEFLATE data, not text).
            return messageOpcode != .text || compressed || utf8.consume(UnsafeRawPointer(tail), count: count)
        }
        guard ok else { throw .init(.invalidUTF8) }
    }

    /// The whole frame has arrived: act on a control frame, or deliver the message on FIN.
    private mutating func finishFrame(
        inflater: MessageInflater?, into actions: inout [WebSocketAction]
    ) throws(WebSocketProtocolError) {
        parseState = .firstByte
        if opcode.isControl {
            if masked && !control.isEmpty {
                let key = maskingKey
                control.withUnsafeMutableBytes { WebSocketMask.apply(key, phase: 0, to: $0.baseAddress!, count: $0.count) }
            }
            defer { control.removeAll(keepingCapacity: true) }
            try handleControlFrame(into: &actions)
            return
        }
        guard fin else { return }
        let kind = messageOpcode ?? .binary
        if state == .open {
            if compressed {
                // `withUnsafeBytes` rethrows untyped errors, so the outcome crosses it as a Result.
                let inflated = message.withUnsafeBytes { bytes in
                    Result { () throws(WebSocketProtocolError) in try inflate(bytes, with: inflater) }
                }
                try deliverInflated(kind, inflated.get(), into: &actions)
            } else {
                // §8.1: the message must end on a character boundary.
                guard kind != .text || utf8.isComplete else { throw .init(.incompleteUTF8AtEndOfMessage) }
                actions.append(.message(kind, message))
            }
        }
        message = []
        compressed = false
        messageOpcode = nil
        messageLength = 0
        fragmentCount = 0
        utf8 = UTF8Validator()
    }

    /// RFC 7692 §6.2: the message's payload with 0x00 0x00 0xff 0xff appended, inflated — never past the
    /// message limit (a decompression bomb fails with 1009 having produced at most the limit).
    private func inflate(
        _ payload: UnsafeRawBufferPointer, with inflater: MessageInflater?
    ) throws(WebSocketProtocolError) -> [UInt8] {
        guard let inflater else { throw .init(.noInflater) }
        do {
            return try inflater.decompress(payload, maxBytes: limits.maxMessageSize)
        } catch {
            switch error {
            case .tooBig: throw .init(.inflatedMessageTooBig(limits.maxMessageSize))
            case .invalidData: throw .init(.invalidCompressedData)
            }
        }
    }

    /// An inflated message: text must be valid UTF-8 as a whole (RFC 6455 §8.1, after RFC 7692 §6.2).
    private mutating func deliverInflated(
        _ kind: WebSocketOpcode, _ inflated: [UInt8], into actions: inout [WebSocketAction]
    ) throws(WebSocketProtocolError) {
        if kind == .text {
            let valid = inflated.withUnsafeBytes { UTF8Validator.isValid($0) }
            guard valid else { throw .init(.invalidUTF8) }
        }
        actions.append(.message(kind, inflated))
    }

    /// Ping, pong and close (RFC 6455 §5.5), which may arrive between fragments of a message.
    private mutating func handleControlFrame(into actions: inout [WebSocketAction]) throws(WebSocketProtocolError) {
        switch opcode {
        case .ping:
            // §5.5.2: answer with a Pong carrying the same payload, as soon as practical. After we
            // sent Close we stay quiet; the peer's Close is what we wait for.
            if state == .open { actions.append(.send(frame(.pong, payload: control))) }
        case .pong:
            // §5.5.3: unsolicited pongs are allowed and need no answer.
            actions.append(.pong(control))
        case .close:
            try handleClose(into: &actions)
        case .continuation, .text, .binary:
            preconditionFailure("data opcode \(opcode) routed as control frame")
        }
    }

    /// The peer's Close (RFC 6455 §5.5.1): validate it, echo its status code if we have not sent
    /// our own Close yet, then close the TCP connection.
    private mutating func handleClose(into actions: inout [WebSocketAction]) throws(WebSocketProtocolError) {
        // §5.5.1: a body, if present, starts with a 2-byte code, so 1 byte is malformed.
        guard control.count != 1 else { throw .init(.closePayloadOfOneByte) }
        var reply: [UInt8] = []
        if control.count >= 2 {
            let code = UInt16(control[0]) << 8 | UInt16(control[1])
            // §7.4.1: 1005/1006/1015 and unassigned codes never appear on the wire.
            guard WebSocketCloseCode.isValidOnWire(code) else { throw .init(.invalidCloseCode(code)) }
            let reasonValid = control.withUnsafeBytes { UTF8Validator.isValid(UnsafeRawBufferPointer(rebasing: $0[2...])) }
            guard reasonValid else { throw .init(.invalidCloseReason) }
            peerCloseCode = code
            // §5.5.1: "the endpoint typically echos the status code it received".
            reply = [control[0], control[1]]
        }
        if state == .open {
            // A Close in the middle of a fragmented message is still a clean close (§5.4 lets
            // control frames interleave); the partial message is dropped.
            actions.append(.send(frame(.close, payload: reply)))
        }
        // §7.1.1: once both Close frames are exchanged, the server closes TCP first.
        actions.append(.close)
        closeDown()
    }

    /// Fails the connection (RFC 6455 §7.1.7): send a Close with the error's code unless we
    /// already sent one, then close TCP.
    private mutating func fail(_ error: WebSocketProtocolError, into actions: inout [WebSocketAction]) {
        failure = error
        if state == .open {
            let code = error.closeCode
            actions.append(.send(frame(.close, payload: [UInt8(code >> 8), UInt8(code & 0xFF)])))
        }
        actions.append(.close)
        closeDown()
    }

    /// Enters `.closed` and frees the buffers; nothing is parsed afterwards.
    private mutating func closeDown() {
        state = .closed
        message = []
        control = []
        messageOpcode = nil
        compressed = false
    }
}
