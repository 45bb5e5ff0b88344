// WebSocket vocabulary: roles, opcodes, limits, close codes and the actions the executor performs.

/// Which end of the connection we are. RFC 6455 §5.1: a client MUST mask every frame it
/// sends and a server MUST NOT; each side fails the connection when the peer breaks that rule.
public enum WebSocketRole: Sendable {
    /// Incoming frames must be masked; outgoing frames are not.
    case server
    /// Incoming frames must be unmasked; outgoing frames are masked with a fresh random key.
    case client
}

/// Frame opcodes defined by RFC 6455 §5.2 (%x3-7 and %xB-F are reserved and fail the connection).
public enum WebSocketOpcode: UInt8, Sendable {
    case continuation = 0
    case text = 1
    case binary = 2
    case close = 8
    case ping = 9
    case pong = 10

    /// Control frames have the high bit of the opcode set (RFC 6455 §5.5).
    @inlinable public var isControl: Bool { rawValue & 0x8 != 0 }
}

/// Resource limits for one connection. Exceeding any of them fails the connection with
/// 1009 (message too big, RFC 6455 §7.4.1).
public struct WebSocketLimits: Sendable {
    /// Largest payload of a single frame, in bytes. Default 1 MiB.
    public var maxFrameSize: Int
    /// Largest reassembled message (sum of its fragments' payloads), in bytes. Default 1 MiB.
    public var maxMessageSize: Int
    /// Most frames one message may be split into; `nil` means unlimited. Default 1024.
    /// Bounds the work a peer can cause with floods of tiny (even empty) continuation frames.
    public var maxFragments: Int?

    public init(maxFrameSize: Int = 1 << 20, maxMessageSize: Int = 1 << 20, maxFragments: Int? = 1024) {
        self.maxFrameSize = maxFrameSize
        self.maxMessageSize = maxMessageSize
        self.maxFragments = maxFragments
    }

    /// Limits shared by reference among many connections.
    public final class Shared: Sendable {
        public let value: WebSocketLimits
        public init(_ value: WebSocketLimits) { self.value = value }
    }
}

/// What the executor must do after feeding bytes, performed in order.
public enum WebSocketAction: Sendable {
    /// A complete message: `.text` (already validated as UTF-8) or `.binary`.
    case message(WebSocketOpcode, [UInt8])
    /// A complete message whose payload is `range` of the buffer given to `receive(inPlace:into:)`,
    /// unmasked (and for text validated) there: no copy. Valid until that buffer is reused.
    case messageInInput(WebSocketOpcode, Range<Int>)
    /// Bytes to write, already framed (and masked when our role is `.client`): pong replies, close frames.
    case send([UInt8])
    /// A pong arrived with this payload (keepalive bookkeeping).
    case pong([UInt8])
    /// Close the TCP connection now, after writing any earlier `.send` bytes.
    case close
}

/// Close status codes (RFC 6455 §7.4).
public enum WebSocketCloseCode {
    /// 1000: normal closure.
    public static let normalClosure: UInt16 = 1000
    /// 1001: going away (server shutting down, page navigated away).
    public static let goingAway: UInt16 = 1001
    /// 1002: protocol error.
    public static let protocolError: UInt16 = 1002
    /// 1003: received a data type it cannot accept.
    public static let unsupportedData: UInt16 = 1003
    /// 1007: payload inconsistent with the message type (e.g. invalid UTF-8 in text).
    public static let invalidPayload: UInt16 = 1007
    /// 1008: policy violation.
    public static let policyViolation: UInt16 = 1008
    /// 1009: message too big.
    public static let messageTooBig: UInt16 = 1009
    /// 1011: unexpected server condition.
    public static let internalError: UInt16 = 1011
    /// 1013: try again later (IANA registry).
    public static let tryAgainLater: UInt16 = 1013

    /// Whether `code` may appear in a Close frame on the wire.
    ///
    /// RFC 6455 §7.4.1 defines 1000-1003 and 1007-1011; 1012-1014 were registered later in the
    /// IANA registry (§11.7). 1004 is reserved, and 1005, 1006 and 1015 are "MUST NOT be set as
    /// a status code in a Close control frame". §7.4.2: 0-999 are unused, 1000-2999 are reserved
    /// for this protocol (so unassigned ones are invalid), 3000-3999 are registered and 4000-4999
    /// are private use; anything above 4999 is undefined.
    public static func isValidOnWire(_ code: UInt16) -> Bool {
        switch code {
        case 1000...1003, 1007...1014, 3000...4999: return true
        default: return false
        }
    }
}
