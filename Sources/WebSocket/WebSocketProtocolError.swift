// WebSocketProtocolError: why a connection was failed, and the one mapping to close codes.

/// A peer's violation of RFC 6455 (or of our limits) that fails the connection (§7.1.7).
public struct WebSocketProtocolError: Error, Sendable, Equatable, CustomStringConvertible {
    enum Kind: Sendable, Equatable {
        case reservedBitsSet(UInt8)
        case unknownOpcode(UInt8)
        case fragmentedControlFrame
        case controlFrameTooLong(Int)
        case maskMismatch(expectedMasked: Bool)
        case nonMinimalLength
        case lengthMostSignificantBitSet
        case continuationWithoutMessage
        case dataFrameInsideFragmentedMessage
        case invalidUTF8
        case incompleteUTF8AtEndOfMessage
        case closePayloadOfOneByte
        case invalidCloseCode(UInt16)
        case invalidCloseReason
        case frameTooBig(Int)
        case messageTooBig(Int)
        case tooManyFragments(Int)
        case compressedBitOnControlOrContinuation
        case inflatedMessageTooBig(Int)
        // No zlib message kept: a String payload would widen every connection's `failure` field by 8 bytes.
        case invalidCompressedData
        case noInflater
    }

    let kind: Kind

    init(_ kind: Kind) { self.kind = kind }

    /// The status code to send in our Close frame. The only place errors map to wire codes.
    public var closeCode: UInt16 {
        switch kind {
        case .reservedBitsSet, .unknownOpcode, .fragmentedControlFrame, .controlFrameTooLong, .maskMismatch,
            .nonMinimalLength, .lengthMostSignificantBitSet, .continuationWithoutMessage,
            .dataFrameInsideFragmentedMessage, .closePayloadOfOneByte, .invalidCloseCode,
            .compressedBitOnControlOrContinuation:
            return WebSocketCloseCode.protocolError
        case .invalidUTF8, .incompleteUTF8AtEndOfMessage, .invalidCloseReason:
            return WebSocketCloseCode.invalidPayload
        case .invalidCompressedData:
            // RFC 7692 names no code for undecodable DEFLATE data; it is a payload inconsistent with the
            // message (1007, RFC 6455 §7.4.1), as invalid UTF-8 is.
            return WebSocketCloseCode.invalidPayload
        case .frameTooBig, .messageTooBig, .tooManyFragments, .inflatedMessageTooBig:
            return WebSocketCloseCode.messageTooBig
        case .noInflater:
            return WebSocketCloseCode.internalError
        }
    }

    public var description: String {
        switch kind {
        case .reservedBitsSet(let bits): return "RSV bits \(bits) set without an extension (RFC 6455 §5.2)"
        case .unknownOpcode(let opcode): return "unknown opcode \(opcode) (RFC 6455 §5.2)"
        case .fragmentedControlFrame: return "control frame without FIN (RFC 6455 §5.5)"
        case .controlFrameTooLong(let length): return "control frame payload \(length) > 125 (RFC 6455 §5.5)"
        case .maskMismatch(let expected):
            return expected ? "unmasked frame from client (RFC 6455 §5.1)" : "masked frame from server (RFC 6455 §5.1)"
        case .nonMinimalLength: return "payload length not minimally encoded (RFC 6455 §5.2)"
        case .lengthMostSignificantBitSet: return "64-bit payload length with MSB set (RFC 6455 §5.2)"
        case .continuationWithoutMessage: return "continuation frame with no message in progress (RFC 6455 §5.4)"
        case .dataFrameInsideFragmentedMessage: return "new data frame inside a fragmented message (RFC 6455 §5.4)"
        case .invalidUTF8: return "invalid UTF-8 in text message (RFC 6455 §8.1)"
        case .incompleteUTF8AtEndOfMessage: return "text message ends inside a UTF-8 sequence (RFC 6455 §8.1)"
        case .closePayloadOfOneByte: return "close frame payload of 1 byte (RFC 6455 §5.5.1)"
        case .invalidCloseCode(let code): return "invalid close code \(code) (RFC 6455 §7.4)"
        case .invalidCloseReason: return "close reason is not valid UTF-8 (RFC 6455 §5.5.1)"
        case .frameTooBig(let length): return "frame payload \(length) exceeds limit"
        case .messageTooBig(let length): return "message size \(length) exceeds limit"
        case .tooManyFragments(let count): return "message split into \(count) fragments exceeds limit"
        case .compressedBitOnControlOrContinuation:
            return "RSV1 on a control frame or a continuation frame (RFC 7692 §6)"
        case .inflatedMessageTooBig(let limit): return "compressed message inflates past the \(limit)-byte limit"
        case .invalidCompressedData: return "invalid DEFLATE data in a compressed message (RFC 7692 §6.2)"
        case .noInflater: return "compressed message with no inflater configured"
        }
    }
}
