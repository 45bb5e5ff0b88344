// SharedMessage: one server data message framed once for every subscriber — plain, and compressed once on demand.
public import IOBytes

/// A message the server sends to many connections (a Hub fan-out): framed once as a plain frame, and — the
/// first time a subscriber that negotiated permessage-deflate needs it — compressed once into a second shared
/// frame (RSV1 set). Every plain subscriber's queue holds `plain`; every deflate subscriber's queue holds the
/// same compressed bytes (DESIGN invariant 3, "encode once").
///
/// Sharing one compressed frame is correct only because Medic always answers `server_no_context_takeover`
/// (RFC 7692 §7.1.1.1): the server compresses each message with a fresh LZ77 window, so the compressed bytes
/// depend on the message alone, never on what was sent before on that connection, and every such subscriber
/// inflates them the same way (§7.2.2, with an empty window). Subscribers that asked for a smaller window
/// (`server_max_window_bits`, §7.1.2.1) get a frame compressed with that window, again once per window size.
///
/// Loop-bound (not `Sendable`): the compressed frames are filled in lazily on the loop thread.
public final class SharedMessage {
    /// The frame without compression, byte-identical to `WebSocketFrame.encodeShared(opcode, payload:)`.
    public let plain: SharedBytes
    /// Compressed frames made so far, by server window bits; `nil` frame: the message is not worth
    /// compressing (below the threshold or no smaller), plain subscribers and deflate ones share `plain`.
    private var compressed: [(bits: Int, frame: SharedBytes?)] = []

    /// Frames `payload` once (unmasked, FIN: a server's message).
    public init(_ opcode: WebSocketOpcode, payload: UnsafeRawBufferPointer) {
        plain = WebSocketFrame.encodeShared(opcode, payload: payload)
    }

    /// How many compressed frames have been made (tests: once per window size, not per subscriber).
    public var compressionCount: Int { compressed.count }

    /// The frame for a subscriber that negotiated permessage-deflate with this server window (9–15): the
    /// compressed frame (made on first use), or `plain` when the payload is shorter than `minimumSize` or
    /// does not shrink (RFC 7692 §6: compression is chosen per message; RSV1 clear means uncompressed).
    public func frame(windowBits: Int, deflater: MessageDeflater, minimumSize: Int) -> SharedBytes {
        for entry in compressed where entry.bits == windowBits { return entry.frame ?? plain }
        let made = makeCompressed(windowBits: windowBits, deflater: deflater, minimumSize: minimumSize)
        compressed.append((windowBits, made))
        return made ?? plain
    }

    private func makeCompressed(windowBits: Int, deflater: MessageDeflater, minimumSize: Int) -> SharedBytes? {
        plain.withUnsafeBytes { frame -> SharedBytes? in
            // The plain frame's header: 2 bytes, +2 or +8 for the extended length (RFC 6455 §5.2; unmasked).
            let lengthCode = frame[1] & 0x7F
            let header = lengthCode == 126 ? 4 : lengthCode == 127 ? 10 : 2
            let payload = UnsafeRawBufferPointer(rebasing: frame[header...])
            guard payload.count >= minimumSize,
                let opcode = WebSocketOpcode(rawValue: frame[0] & 0x0F),
                let deflated = deflater.compress(payload, windowBits: windowBits),
                deflated.count < payload.count
            else { return nil }
            return deflated.withUnsafeBytes { WebSocketFrame.encodeShared(opcode, payload: $0, compressed: true) }
        }
    }
}
