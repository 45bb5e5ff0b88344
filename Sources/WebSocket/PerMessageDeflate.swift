// PerMessageDeflate: RFC 7692 negotiation (pure) and the message compressor/decompressor over zlib.
import CZlib

/// What the server accepts of permessage-deflate (RFC 7692 §7) and how it compresses.
public struct DeflateConfiguration: Sendable, Equatable {
    /// Negotiate the extension at all (`--deflate on|off`).
    public var enabled: Bool
    /// Messages shorter than this go out uncompressed (RSV1 clear, allowed by §6: compression is per message).
    public var minimumSize: Int
    /// zlib level 1–9. Medic's traffic (JSON, test output, diffs) compresses well at a low level.
    public var level: Int32

    public init(enabled: Bool = true, minimumSize: Int = 64, level: Int32 = 6) {
        self.enabled = enabled
        self.minimumSize = minimumSize
        self.level = level
    }
}

/// The parameters of one connection's permessage-deflate, as agreed in its handshake.
///
/// The server always answers with `server_no_context_takeover` and `client_no_context_takeover`
/// (§7.1.1.1 and §7.1.1.2 let the server include both whatever the client offered): every message is
/// compressed and decompressed on its own, so no connection keeps a zlib window between messages (an idle
/// connection holds no zlib state) and a broadcast is compressed once for every subscriber whose window
/// allows it (encode once, DESIGN invariant 3).
public struct DeflateParameters: Sendable, Equatable {
    /// The LZ77 window the server may use when compressing (8–15). 15 unless the client asked for less.
    public var serverMaxWindowBits: Int
    /// The client's window when it offered `client_max_window_bits` with a value we echo; nil otherwise.
    public var clientMaxWindowBits: Int?

    public init(serverMaxWindowBits: Int = 15, clientMaxWindowBits: Int? = nil) {
        self.serverMaxWindowBits = serverMaxWindowBits
        self.clientMaxWindowBits = clientMaxWindowBits
    }

    /// The `Sec-WebSocket-Extensions` value of the 101 response.
    public var responseHeader: String {
        var text = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        if serverMaxWindowBits != 15 { text += "; server_max_window_bits=\(serverMaxWindowBits)" }
        if let clientMaxWindowBits { text += "; client_max_window_bits=\(clientMaxWindowBits)" }
        return text
    }

    /// zlib's raw deflate cannot produce a 256-byte window (zlib manual, deflateInit2: "windowBits 8 is
    /// changed to 9" for the zlib format and refused for raw deflate since 1.2.9). A connection that asked
    /// for 8 is still served, with every message uncompressed (§6 allows any message to be sent so).
    public var compressesOutbound: Bool { serverMaxWindowBits >= 9 }

    /// Chooses from the `Sec-WebSocket-Extensions` request header values (there may be several lines, each a
    /// comma-separated list, RFC 6455 §9.1) the first permessage-deflate offer whose parameters are all valid
    /// (§7.1: an unknown parameter, a duplicate, or an invalid value declines *that* offer, not the handshake).
    /// nil: no acceptable offer, the connection goes on without compression.
    public static func negotiate(offers values: [String], configuration: DeflateConfiguration) -> DeflateParameters? {
        guard configuration.enabled else { return nil }
        for value in values {
            guard let extensions = ExtensionHeaderParser.parse(value) else { continue }  // malformed line: ignored
            for (name, parameters) in extensions where name.lowercased() == "permessage-deflate" {
                if let accepted = accept(parameters) { return accepted }
            }
        }
        return nil
    }

    /// One offer's parameters → the response, or nil to decline it.
    static func accept(_ parameters: [(name: String, value: String?)]) -> DeflateParameters? {
        var seen: Set<String> = []
        var result = DeflateParameters()
        for (rawName, value) in parameters {
            let name = rawName.lowercased()
            guard seen.insert(name).inserted else { return nil }  // §7: "MUST NOT include ... more than one"
            switch name {
            case "server_no_context_takeover", "client_no_context_takeover":
                guard value == nil else { return nil }  // §7.1.1: these have no value
            case "server_max_window_bits":
                // §7.1.2.1: the offer's value is required, 8–15, no leading zeros.
                guard let value, let bits = windowBits(value) else { return nil }
                result.serverMaxWindowBits = bits
            case "client_max_window_bits":
                // §7.1.2.2: no value (the client merely supports it) or 8–15. We decompress with a 15-bit
                // window, which reads any smaller one; echoing the value is allowed and keeps it explicit.
                if let value {
                    guard let bits = windowBits(value) else { return nil }
                    result.clientMaxWindowBits = bits
                }
            default:
                return nil  // §7: an unknown parameter declines the offer
            }
        }
        return result
    }

    /// "8"…"15" without leading zeros (§7.1.2.1); anything else is invalid.
    static func windowBits(_ text: String) -> Int? {
        guard !text.isEmpty, text.count <= 2, text.first != "0", text.allSatisfy(\.isASCII), let n = Int(text),
            (8...15).contains(n)
        else { return nil }
        return n
    }
}

/// The grammar of RFC 6455 §9.1: `extension-list = 1#extension`, `extension = token *( ";" param )`,
/// `param = token [ "=" (token | quoted-string) ]` — where a quoted value must itself be a token.
enum ExtensionHeaderParser {
    static func parse(_ text: String) -> [(name: String, parameters: [(name: String, value: String?)])]? {
        var result: [(name: String, parameters: [(name: String, value: String?)])] = []
        for element in split(Array(text.utf8), on: UInt8(ascii: ",")) {
            let trimmedElement = trim(element)
            if trimmedElement.isEmpty { continue }  // RFC 9110 §5.6.1: empty list elements are ignored
            var parts = split(trimmedElement, on: UInt8(ascii: ";")).map(trim)
            guard let name = parts.first, isToken(name) else { return nil }
            parts.removeFirst()
            var parameters: [(name: String, value: String?)] = []
            for part in parts {
                if let equals = part.firstIndex(of: UInt8(ascii: "=")) {
                    let key = trim(Array(part[..<equals]))
                    var value = trim(Array(part[(equals + 1)...]))
                    if value.count >= 2, value.first == UInt8(ascii: "\""), value.last == UInt8(ascii: "\"") {
                        value = Array(value[1..<(value.count - 1)])
                    }
                    guard isToken(key), isToken(value) else { return nil }
                    parameters.append((String(decoding: key, as: UTF8.self), String(decoding: value, as: UTF8.self)))
                } else {
                    guard isToken(part) else { return nil }
                    parameters.append((String(decoding: part, as: UTF8.self), nil))
                }
            }
            result.append((String(decoding: name, as: UTF8.self), parameters))
        }
        return result
    }

    /// Splits on `separator` outside quoted strings.
    private static func split(_ bytes: [UInt8], on separator: UInt8) -> [[UInt8]] {
        var pieces: [[UInt8]] = [[]]
        var quoted = false
        for byte in bytes {
            if byte == UInt8(ascii: "\"") { quoted.toggle() }
            if byte == separator && !quoted { pieces.append([]) } else { pieces[pieces.count - 1].append(byte) }
        }
        return pieces
    }

    private static func trim(_ bytes: [UInt8]) -> [UInt8] {
        var start = 0
        var end = bytes.count
        while start < end, bytes[start] == 0x20 || bytes[start] == 0x09 { start += 1 }
        while end > start, bytes[end - 1] == 0x20 || bytes[end - 1] == 0x09 { end -= 1 }
        return Array(bytes[start..<end])
    }

    /// RFC 9110 §5.6.2 tchar.
    private static func isToken(_ bytes: [UInt8]) -> Bool {
        !bytes.isEmpty && bytes.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                true
            default:
                Array("!#$%&'*+-.^_`|~".utf8).contains(byte)
            }
        }
    }
}

/// Why a compressed message could not be decompressed.
public enum InflateError: Error, Sendable, Equatable {
    /// The decompressed message would exceed the limit (close 1009; nothing past the limit was produced).
    case tooBig(limit: Int)
    /// Not a valid DEFLATE stream (close 1007).
    case invalidData(String)
}

/// Compresses whole messages for permessage-deflate with no context takeover (RFC 7692 §7.2.1): each
/// message is one raw DEFLATE stream flushed with Z_SYNC_FLUSH, its trailing 0x00 0x00 0xff 0xff removed.
/// One instance per loop serves every connection (the zlib state is reset, not freed, between messages;
/// a stream per window size, and per small/large message, is made on first use), so connections hold no zlib
/// memory.
public final class MessageDeflater {
    private var streams: [Int: UnsafeMutablePointer<z_stream>] = [:]
    private let level: Int32

    public init(level: Int32 = 6) {
        self.level = max(1, min(9, level))
    }

    deinit {
        for stream in streams.values {
            deflateEnd(stream)
            stream.deallocate()
        }
    }

    /// Messages up to this size use a stream with a small hash table (memLevel 4: 2,048 heads). Resetting a
    /// stream clears its hash table (zlib's lm_init), 64 KiB at zlib's default memLevel 8 — ~3 µs, which was
    /// most of the cost of compressing a 100-byte echo (Benchmarks/README); 4 KiB here. Small messages lose
    /// next to nothing: they hold few strings to match.
    static let smallMessageLimit = 4096

    /// The compressed payload of one message (RSV1 set on its first frame), nil when zlib refused the window.
    public func compress(_ payload: UnsafeRawBufferPointer, windowBits: Int = 15) -> [UInt8]? {
        let memLevel: Int32 = payload.count <= Self.smallMessageLimit ? 4 : 8
        guard let stream = stream(windowBits: windowBits, memLevel: memLevel) else { return nil }
        defer { deflateReset(stream) }
        var output = [UInt8](repeating: 0, count: Int(deflateBound(stream, uLong(payload.count))) + 16)
        var produced = 0
        let ok: Bool = output.withUnsafeMutableBytes { out in
            // zlib's next_in is not const-qualified but deflate only reads it (zlib.h: "next_in ... not
            // modified"), so passing our read-only payload is safe.
            stream.pointee.next_in = UnsafeMutablePointer(mutating: payload.bindMemory(to: Bytef.self).baseAddress)
            stream.pointee.avail_in = uInt(payload.count)
            stream.pointee.next_out = out.bindMemory(to: Bytef.self).baseAddress
            stream.pointee.avail_out = uInt(out.count)
            let status = deflate(stream, Z_SYNC_FLUSH)
            produced = out.count - Int(stream.pointee.avail_out)
            return status == Z_OK && stream.pointee.avail_in == 0
        }
        guard ok, produced >= 4 else { return nil }
        output.removeSubrange((produced - 4)...)  // §7.2.1: remove the 0x00 0x00 0xff 0xff tail
        return output
    }

    private func stream(windowBits: Int, memLevel: Int32) -> UnsafeMutablePointer<z_stream>? {
        let key = windowBits << 4 | Int(memLevel)
        if let existing = streams[key] { return existing }
        let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        // memLevel 8 is zlib's default; the state is ~256 KiB per window size (less at memLevel 4), once per loop.
        guard czlib_deflate_init_raw(stream, level, Int32(windowBits), memLevel) == Z_OK else {
            stream.deallocate()
            return nil
        }
        streams[key] = stream
        return stream
    }
}

/// Decompresses whole messages (RFC 7692 §7.2.2): appends 0x00 0x00 0xff 0xff and inflates with a 15-bit
/// window (which reads any smaller one), stopping *before* the output passes `maxBytes` — a decompression
/// bomb costs at most the limit. One instance per loop; reset between messages.
public final class MessageInflater {
    private let stream: UnsafeMutablePointer<z_stream>
    private let ready: Bool

    public init() {
        stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        ready = czlib_inflate_init_raw(stream, 15) == Z_OK
    }

    deinit {
        if ready { inflateEnd(stream) }
        stream.deallocate()
    }

    public func decompress(_ compressed: UnsafeRawBufferPointer, maxBytes: Int) throws(InflateError) -> [UInt8] {
        guard ready else { throw .invalidData("zlib inflate could not be initialised") }
        defer { inflateReset(stream) }
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16 << 10)
        let tail: [UInt8] = [0x00, 0x00, 0xff, 0xff]
        var outcome = feed(compressed, into: &output, chunk: &chunk, maxBytes: maxBytes)
        // A message that ended with a final block (BFINAL) needs no tail; otherwise the tail completes it.
        if case .more = outcome { outcome = tail.withUnsafeBytes { feed($0, into: &output, chunk: &chunk, maxBytes: maxBytes) } }
        switch outcome {
        case .more, .ended: return output
        case .tooBig: throw .tooBig(limit: maxBytes)
        case .invalid(let message): throw .invalidData(message)
        }
    }

    private enum Outcome {
        case more, ended, tooBig
        case invalid(String)
    }

    /// Inflates all of `input` into `output`, never past `maxBytes`.
    private func feed(_ input: UnsafeRawBufferPointer, into output: inout [UInt8], chunk: inout [UInt8], maxBytes: Int) -> Outcome {
        guard input.count > 0 else { return .more }
        // As in `MessageDeflater.compress`: inflate reads next_in and never writes it.
        stream.pointee.next_in = UnsafeMutablePointer(mutating: input.bindMemory(to: Bytef.self).baseAddress)
        stream.pointee.avail_in = uInt(input.count)
        while true {
            let (status, produced): (Int32, Int) = chunk.withUnsafeMutableBytes { out in
                stream.pointee.next_out = out.bindMemory(to: Bytef.self).baseAddress
                stream.pointee.avail_out = uInt(out.count)
                let status = inflate(stream, Z_SYNC_FLUSH)
                return (status, out.count - Int(stream.pointee.avail_out))
            }
            if produced > 0 {
                guard output.count + produced <= maxBytes else { return .tooBig }
                output.append(contentsOf: chunk[0..<produced])
            }
            switch status {
            case Z_STREAM_END:
                // Bytes after the final block are not DEFLATE data (§7.2.2 allows none).
                return stream.pointee.avail_in == 0 ? .ended : .invalid("data after the final deflate block")
            case Z_OK, Z_BUF_ERROR:
                // Done when the input is used up and the output space was not (nothing is pending).
                if stream.pointee.avail_in == 0 && produced < chunk.count { return .more }
                if status == Z_BUF_ERROR && produced == 0 { return .more }
            default:
                return .invalid(stream.pointee.msg.map { String(cString: $0) } ?? "zlib error \(status)")
            }
        }
    }
}
