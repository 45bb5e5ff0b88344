// WebSocketFrame: stateless frame encoding and the XOR masking shared by encoder and decoder.

public import IOBytes

/// Encodes frames (RFC 6455 §5.2). Servers send unmasked frames (`maskingKey: nil`);
/// clients pass a fresh random key per frame (§5.3).
public enum WebSocketFrame {
    /// Bytes of header (2 + extended length + optional 4-byte masking key) for a payload of this size.
    /// §5.2: the minimal length encoding is mandatory, so 0-125 fit in 7 bits, up to 65535 in 16.
    @inlinable
    public static func headerSize(payloadCount: Int, masked: Bool) -> Int {
        let base: Int
        if payloadCount < 126 {
            base = 2
        } else if payloadCount <= 0xFFFF {
            base = 4
        } else {
            base = 10
        }
        return masked ? base + 4 : base
    }

    /// Writes the frame header at `out` (which must have `headerSize` bytes) and returns its size.
    /// The masking key goes on the wire in big-endian order, so byte `i` of the payload is XORed
    /// with byte `i % 4` of `key.bigEndian`. `compressed` sets RSV1, permessage-deflate's "Per-Message
    /// Compressed" bit (RFC 7692 §6): only on the first frame of a data message whose payload is compressed.
    public static func writeHeader(
        _ out: UnsafeMutableRawPointer, opcode: WebSocketOpcode, fin: Bool, payloadCount: Int, maskingKey: UInt32?,
        compressed: Bool = false
    ) -> Int {
        out.storeBytes(of: (fin ? 0x80 : 0) | (compressed ? 0x40 : 0) | opcode.rawValue, as: UInt8.self)
        let maskBit: UInt8 = maskingKey == nil ? 0 : 0x80
        var offset: Int
        if payloadCount < 126 {
            out.storeBytes(of: maskBit | UInt8(payloadCount), toByteOffset: 1, as: UInt8.self)
            offset = 2
        } else if payloadCount <= 0xFFFF {
            out.storeBytes(of: maskBit | 126, toByteOffset: 1, as: UInt8.self)
            out.storeBytes(of: UInt16(payloadCount).bigEndian, toByteOffset: 2, as: UInt16.self)
            offset = 4
        } else {
            // §5.2: 64-bit length with the most significant bit 0; an Int count is never negative.
            out.storeBytes(of: maskBit | 127, toByteOffset: 1, as: UInt8.self)
            out.storeBytes(of: UInt64(payloadCount).bigEndian, toByteOffset: 2, as: UInt64.self)
            offset = 10
        }
        if let key = maskingKey {
            out.storeBytes(of: key.bigEndian, toByteOffset: offset, as: UInt32.self)
            offset += 4
        }
        return offset
    }

    /// Encodes one frame into a new array. Pass `maskingKey` for client-to-server frames.
    public static func encode(
        _ opcode: WebSocketOpcode, payload: UnsafeRawBufferPointer, fin: Bool = true, maskingKey: UInt32? = nil,
        compressed: Bool = false
    ) -> [UInt8] {
        let count = payload.count
        let total = headerSize(payloadCount: count, masked: maskingKey != nil) + count
        return [UInt8](unsafeUninitializedCapacity: total) { buffer, initialized in
            let base = UnsafeMutableRawPointer(buffer.baseAddress!)
            let header = writeHeader(
                base, opcode: opcode, fin: fin, payloadCount: count, maskingKey: maskingKey, compressed: compressed)
            if count > 0 {
                (base + header).copyMemory(from: payload.baseAddress!, byteCount: count)
                if let key = maskingKey {
                    WebSocketMask.apply(wireKey(key), phase: 0, to: base + header, count: count)
                }
            }
            initialized = total
        }
    }

    /// Convenience overload of `encode(_:payload:fin:maskingKey:)` for arrays.
    public static func encode(
        _ opcode: WebSocketOpcode, payload: [UInt8], fin: Bool = true, maskingKey: UInt32? = nil,
        compressed: Bool = false
    ) -> [UInt8] {
        payload.withUnsafeBytes { encode(opcode, payload: $0, fin: fin, maskingKey: maskingKey, compressed: compressed) }
    }

    /// Builds an unmasked, final server frame once, to be shared by every subscriber's write queue
    /// (DESIGN invariant 3, "encode once").
    public static func encodeShared(
        _ opcode: WebSocketOpcode, payload: UnsafeRawBufferPointer, compressed: Bool = false
    ) -> SharedBytes {
        let count = payload.count
        let total = headerSize(payloadCount: count, masked: false) + count
        return SharedBytes(count: total) { out in
            let base = out.baseAddress!
            let header = writeHeader(
                base, opcode: opcode, fin: true, payloadCount: count, maskingKey: nil, compressed: compressed)
            if count > 0 {
                (base + header).copyMemory(from: payload.baseAddress!, byteCount: count)
            }
        }
    }

    /// The payload of a Close frame (RFC 6455 §5.5.1): a 2-byte big-endian status code followed by
    /// a UTF-8 reason. Control payloads are at most 125 bytes (§5.5), so the reason is cut to 123
    /// bytes, backing up to a character boundary so the result stays valid UTF-8.
    public static func closePayload(code: UInt16, reason: String) -> [UInt8] {
        var payload: [UInt8] = [UInt8(code >> 8), UInt8(code & 0xFF)]
        var utf8 = Array(reason.utf8)
        if utf8.count > 123 {
            var end = 123
            // Back up over continuation bytes (10xxxxxx) to the start of the cut character.
            while end > 0 && utf8[end] & 0xC0 == 0x80 { end -= 1 }
            utf8.removeSubrange(end...)
        }
        payload.append(contentsOf: utf8)
        return payload
    }

    /// A masking key from the system's secure generator. RFC 6455 §5.3 requires the key to be
    /// unpredictable, freshly chosen for every frame.
    public static func randomMaskingKey() -> UInt32 {
        var generator = SystemRandomNumberGenerator()
        return generator.next()
    }

    /// The key as the 4 wire bytes packed little-endian, the form `WebSocketMask` works with.
    @usableFromInline
    static func wireKey(_ key: UInt32) -> UInt32 {
        // Wire byte i is (key >> (24 - 8i)); packing wire byte i at bit 8i is a byte swap.
        key.byteSwapped
    }
}

/// XOR masking (RFC 6455 §5.3): octet i of the payload is XORed with octet (i mod 4) of the key.
/// Masking and unmasking are the same operation.
@usableFromInline
enum WebSocketMask {
    /// XORs `count` bytes at `pointer` in place. `key` holds the 4 wire bytes with wire byte 0 in
    /// the low bits; `phase` is how many payload bytes precede `pointer` in the frame (mod 4 matters).
    /// Works a machine word at a time, since this is on the receive path of every client frame.
    @usableFromInline
    static func apply(_ key: UInt32, phase: Int, to pointer: UnsafeMutableRawPointer, count: Int) {
        let shift = UInt32((phase & 3) * 8)
        // Rotate so that the low byte is the key byte for pointer[0].
        let rotated = shift == 0 ? key : (key >> shift) | (key << (32 - shift))
        let wide = UInt64(rotated) | (UInt64(rotated) << 32)
        var index = 0
        while index + 8 <= count {
            let word = UInt64(littleEndian: pointer.loadUnaligned(fromByteOffset: index, as: UInt64.self))
            pointer.storeBytes(of: (word ^ wide).littleEndian, toByteOffset: index, as: UInt64.self)
            index += 8
        }
        // 8 is a multiple of 4, so the tail starts at the same key phase as the words did.
        var tailKey = rotated
        while index < count {
            let byte = pointer.load(fromByteOffset: index, as: UInt8.self)
            pointer.storeBytes(of: byte ^ UInt8(truncatingIfNeeded: tailKey), toByteOffset: index, as: UInt8.self)
            tailKey = (tailKey >> 8) | (tailKey << 24)
            index += 1
        }
    }
}
