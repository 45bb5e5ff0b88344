// UTF8Validator: incremental, fail-fast UTF-8 validation for text messages split across frames.

/// Validates UTF-8 as bytes arrive, carrying a partial character across calls.
///
/// RFC 6455 §8.1: a text message whose data is not valid UTF-8 fails the connection (1007), and
/// §5.6 allows a character to be split across fragments, so validation is incremental. It fails
/// on the first byte that cannot continue a well-formed sequence (RFC 3629 §4 table: no
/// overlongs, no surrogates U+D800-DFFF, nothing above U+10FFFF), not at the end of the message.
public struct UTF8Validator: Sendable {
    /// Continuation bytes still expected for the current character.
    private var needed: UInt8 = 0
    /// Allowed range of the next continuation byte; the first one is narrowed for
    /// E0 (overlong), ED (surrogates), F0 (overlong) and F4 (> U+10FFFF).
    private var lower: UInt8 = 0x80
    private var upper: UInt8 = 0xBF

    public init() {}

    /// True when no character is partially consumed: the bytes so far are complete UTF-8.
    public var isComplete: Bool { needed == 0 }

    /// Consumes `bytes`; returns false as soon as an ill-formed sequence is seen. After a false
    /// result the validator's state is meaningless (the connection is being failed).
    @inlinable
    public mutating func consume(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let base = bytes.baseAddress else { return true }
        return consume(base, count: bytes.count)
    }

    /// Consumes `count` bytes at `base`; see `consume(_:)`.
    public mutating func consume(_ base: UnsafeRawPointer, count: Int) -> Bool {
        var index = 0
        while index < count {
            if needed == 0 {
                // ASCII fast path: skip 8 bytes at a time while none has the high bit set.
                while index + 8 <= count
                    && base.loadUnaligned(fromByteOffset: index, as: UInt64.self) & 0x8080_8080_8080_8080 == 0
                {
                    index += 8
                }
                if index >= count { break }
                let byte = base.load(fromByteOffset: index, as: UInt8.self)
                index += 1
                switch byte {
                case 0x00...0x7F: continue
                case 0xC2...0xDF: needed = 1
                case 0xE0: needed = 2; lower = 0xA0
                case 0xE1...0xEC, 0xEE...0xEF: needed = 2
                case 0xED: needed = 2; upper = 0x9F
                case 0xF0: needed = 3; lower = 0x90
                case 0xF1...0xF3: needed = 3
                case 0xF4: needed = 3; upper = 0x8F
                default: return false  // 80-C1 (stray continuation, overlong 2-byte lead), F5-FF
                }
            } else {
                let byte = base.load(fromByteOffset: index, as: UInt8.self)
                index += 1
                guard byte >= lower && byte <= upper else { return false }
                lower = 0x80
                upper = 0xBF
                needed -= 1
            }
        }
        return true
    }

    /// Validates a whole buffer at once (e.g. a close reason).
    public static func isValid(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var validator = UTF8Validator()
        return validator.consume(bytes) && validator.isComplete
    }
}
