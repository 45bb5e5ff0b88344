// JSONWriter: appends compact RFC 8259 JSON to a byte array (the encoder behind every server frame).

extension JSONValue {
    /// Appends this value as compact JSON to `out`.
    public func write(to out: inout [UInt8]) {
        switch self {
        case .null: JSONWriter.appendLiteral("null", to: &out)
        case .bool(let b): JSONWriter.appendLiteral(b ? "true" : "false", to: &out)
        case .int(let i): JSONWriter.appendInt(i, to: &out)
        case .number(let d): JSONWriter.appendDouble(d, to: &out)
        case .string(let s): JSONWriter.appendString(s, to: &out)
        case .array(let elements):
            out.append(UInt8(ascii: "["))
            for (i, element) in elements.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                element.write(to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let object): object.write(to: &out)
        }
    }

    /// This value as compact JSON bytes.
    public var bytes: [UInt8] {
        var out: [UInt8] = []
        write(to: &out)
        return out
    }

    /// This value as a compact JSON string (tests, logs).
    public var jsonString: String { String(decoding: bytes, as: UTF8.self) }
}

extension JSONObject {
    /// Appends `{…}` with members in their stored order.
    public func write(to out: inout [UInt8]) {
        out.append(UInt8(ascii: "{"))
        for (i, member) in members.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            JSONWriter.appendString(member.key, to: &out)
            out.append(UInt8(ascii: ":"))
            member.value.write(to: &out)
        }
        out.append(UInt8(ascii: "}"))
    }
}

/// Low-level appenders, public so encoders can build frames field by field without an
/// intermediate `JSONValue` tree.
public enum JSONWriter {
    @inline(__always)
    public static func appendLiteral(_ literal: StaticString, to out: inout [UInt8]) {
        out.append(contentsOf: UnsafeBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount))
    }

    /// Appends a decimal integer (no ".0", no exponent).
    public static func appendInt(_ value: Int64, to out: inout [UInt8]) {
        if value == 0 {
            out.append(UInt8(ascii: "0"))
            return
        }
        // Work on the magnitude as UInt64 so Int64.min does not overflow; write the digits
        // least significant first, then reverse them in place (no temporary buffer).
        if value < 0 { out.append(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        let first = out.count
        while magnitude > 0 {
            out.append(UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: magnitude % 10))
            magnitude /= 10
        }
        out[first...].reverse()
    }

    /// Appends a double. Integral values in ±2^53 print without ".0"; non-finite values
    /// (not representable in JSON, RFC 8259 §6) print as `null`.
    public static func appendDouble(_ value: Double, to out: inout [UInt8]) {
        guard value.isFinite else {
            appendLiteral("null", to: &out)
            return
        }
        if value.rounded() == value, abs(value) < 9_007_199_254_740_992 {
            appendInt(Int64(value), to: &out)
            return
        }
        // Swift's description is the shortest round-tripping form and always valid JSON
        // ("1.5", "1e-07", "1.0e+20" style is not produced: it writes "1e+20").
        out.append(contentsOf: value.description.utf8)
    }

    /// Appends a quoted string, escaping `"`, `\` and C0 controls (RFC 8259 §7). Everything
    /// else, including non-ASCII, is written as raw UTF-8.
    public static func appendString(_ string: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        var string = string
        string.withUTF8 { utf8 in
            var runStart = 0
            for i in 0..<utf8.count {
                let byte = utf8[i]
                guard byte < 0x20 || byte == 0x22 || byte == 0x5C else { continue }
                if runStart < i { out.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<i])) }
                runStart = i + 1
                switch byte {
                case 0x22: appendLiteral("\\\"", to: &out)
                case 0x5C: appendLiteral("\\\\", to: &out)
                case 0x0A: appendLiteral("\\n", to: &out)
                case 0x0D: appendLiteral("\\r", to: &out)
                case 0x09: appendLiteral("\\t", to: &out)
                case 0x08: appendLiteral("\\b", to: &out)
                case 0x0C: appendLiteral("\\f", to: &out)
                default:
                    appendLiteral("\\u00", to: &out)
                    out.append(hexDigit(byte >> 4))
                    out.append(hexDigit(byte & 0x0F))
                }
            }
            if runStart < utf8.count { out.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart...])) }
        }
        out.append(UInt8(ascii: "\""))
    }

    @inline(__always) private static func hexDigit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
    }
}
