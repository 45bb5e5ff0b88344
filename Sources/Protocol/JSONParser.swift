// JSONParser: a strict, single-pass RFC 8259 parser over raw bytes (no Foundation on the hot path).

/// Limits applied while parsing. Every limit is explicit so callers can size them to their input.
public struct JSONParseLimits: Sendable, Equatable {
    /// Maximum input size in bytes. Default 1 MiB, the wire's maximum inbound message size.
    public var maxBytes: Int
    /// Maximum nesting of arrays/objects. Default 64: wire messages nest 4 deep; the limit
    /// keeps recursion (and a hostile `[[[[…` input) far from the stack's end.
    public var maxDepth: Int

    public init(maxBytes: Int = 1 << 20, maxDepth: Int = 64) {
        self.maxBytes = maxBytes
        self.maxDepth = maxDepth
    }
}

/// Why a JSON text was refused, and at which byte offset.
public struct JSONParseError: Error, Sendable, Equatable, CustomStringConvertible {
    enum Kind: Equatable, Sendable {
        case tooLarge(limit: Int)
        case tooDeep(limit: Int)
        case unexpectedEnd
        case unexpectedByte(UInt8)
        case trailingGarbage
        case invalidNumber
        case numberOutOfRange
        case controlCharacterInString
        case invalidEscape
        case loneSurrogate
        case invalidUTF8
        case duplicateKey(String)
    }

    let kind: Kind
    /// Byte offset of the offending input.
    public let offset: Int

    /// True when the input was refused for its size alone (maps to `too_large`, not `bad_json`).
    public var isTooLarge: Bool { if case .tooLarge = kind { true } else { false } }

    public var description: String {
        switch kind {
        case .tooLarge(let limit): "JSON text larger than \(limit) bytes"
        case .tooDeep(let limit): "JSON nested deeper than \(limit) levels at byte \(offset)"
        case .unexpectedEnd: "unexpected end of JSON text at byte \(offset)"
        case .unexpectedByte(let b): "unexpected byte 0x\(String(b, radix: 16)) at byte \(offset)"
        case .trailingGarbage: "trailing data after the JSON value at byte \(offset)"
        case .invalidNumber: "malformed number at byte \(offset)"
        case .numberOutOfRange: "number out of range at byte \(offset)"
        case .controlCharacterInString: "unescaped control character in string at byte \(offset)"
        case .invalidEscape: "invalid escape sequence at byte \(offset)"
        case .loneSurrogate: "unpaired UTF-16 surrogate in \\u escape at byte \(offset)"
        case .invalidUTF8: "invalid UTF-8 in string at byte \(offset)"
        case .duplicateKey(let key): "duplicate object key '\(key)' at byte \(offset)"
        }
    }
}

extension JSONValue {
    /// Parses exactly one JSON value (RFC 8259 §2), surrounded only by optional whitespace.
    ///
    /// Strict: rejects trailing garbage, trailing commas, leading zeros, NaN/Infinity, numbers
    /// that overflow a Double, unescaped control characters (§7), unpaired surrogates in
    /// `\u` escapes (§8.2), invalid UTF-8 (§8.1) and duplicate object keys (§4 says names
    /// SHOULD be unique; refusing them removes any ambiguity about which one wins).
    public static func parse(
        _ bytes: UnsafeRawBufferPointer, limits: JSONParseLimits = JSONParseLimits()
    ) throws(JSONParseError) -> JSONValue {
        guard bytes.count <= limits.maxBytes else {
            throw JSONParseError(kind: .tooLarge(limit: limits.maxBytes), offset: 0)
        }
        var parser = JSONParser(bytes: bytes, maxDepth: limits.maxDepth)
        parser.skipWhitespace()
        let value = try parser.parseValue(depth: 0)
        parser.skipWhitespace()
        guard parser.index == bytes.count else {
            throw JSONParseError(kind: .trailingGarbage, offset: parser.index)
        }
        return value
    }

    /// Parses a byte array; see `parse(_: UnsafeRawBufferPointer, limits:)`.
    public static func parse(_ bytes: [UInt8], limits: JSONParseLimits = JSONParseLimits()) throws(JSONParseError)
        -> JSONValue
    {
        let result: Result<JSONValue, JSONParseError> = bytes.withUnsafeBytes { raw in
            do throws(JSONParseError) { return .success(try parse(raw, limits: limits)) } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    /// Parses the UTF-8 of a string (tests and configuration; not the hot path).
    public static func parse(_ text: String, limits: JSONParseLimits = JSONParseLimits()) throws(JSONParseError)
        -> JSONValue
    {
        try parse(Array(text.utf8), limits: limits)
    }
}

/// The cursor over the input. A recursive-descent parser: depth is bounded by `maxDepth`.
struct JSONParser {
    let bytes: UnsafeRawBufferPointer
    let maxDepth: Int
    var index = 0

    init(bytes: UnsafeRawBufferPointer, maxDepth: Int) {
        self.bytes = bytes
        self.maxDepth = maxDepth
    }

    private func fail(_ kind: JSONParseError.Kind, at offset: Int? = nil) -> JSONParseError {
        JSONParseError(kind: kind, offset: offset ?? index)
    }

    /// RFC 8259 §2: whitespace is space, tab, LF and CR only.
    mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    private func peek() throws(JSONParseError) -> UInt8 {
        guard index < bytes.count else { throw fail(.unexpectedEnd) }
        return bytes[index]
    }

    private mutating func expectLiteral(_ literal: StaticString) throws(JSONParseError) {
        let count = literal.utf8CodeUnitCount
        guard index + count <= bytes.count else { throw fail(.unexpectedEnd, at: bytes.count) }
        let start = literal.utf8Start
        for i in 0..<count where bytes[index + i] != start[i] {
            throw fail(.unexpectedByte(bytes[index + i]), at: index + i)
        }
        index += count
    }

    mutating func parseValue(depth: Int) throws(JSONParseError) -> JSONValue {
        switch try peek() {
        case UInt8(ascii: "{"): return try parseObject(depth: depth + 1)
        case UInt8(ascii: "["): return try parseArray(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"):
            try expectLiteral("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try expectLiteral("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try expectLiteral("null")
            return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        case let byte: throw fail(.unexpectedByte(byte))
        }
    }

    private mutating func parseObject(depth: Int) throws(JSONParseError) -> JSONValue {
        guard depth <= maxDepth else { throw fail(.tooDeep(limit: maxDepth)) }
        index += 1  // '{'
        var object = JSONObject()
        var seenKeys: Set<String>? = nil
        skipWhitespace()
        if try peek() == UInt8(ascii: "}") {
            index += 1
            return .object(object)
        }
        while true {
            skipWhitespace()
            let keyOffset = index
            guard try peek() == UInt8(ascii: "\"") else { throw fail(.unexpectedByte(bytes[index])) }
            let key = try parseString()
            // Small objects (every wire message) scan; large ones switch to a set so a hostile
            // object with 100k keys costs O(n), not O(n²).
            if seenKeys != nil {
                // Mutate in place through the optional (a local copy would copy the set each time).
                guard seenKeys!.insert(key).inserted else { throw fail(.duplicateKey(key), at: keyOffset) }
            } else {
                if object[key] != nil { throw fail(.duplicateKey(key), at: keyOffset) }
                if object.count == 15 { seenKeys = Set(object.keys + [key]) }
            }
            skipWhitespace()
            guard try peek() == UInt8(ascii: ":") else { throw fail(.unexpectedByte(bytes[index])) }
            index += 1
            skipWhitespace()
            let value = try parseValue(depth: depth)
            object.appendUnchecked(key: key, value: value)
            skipWhitespace()
            switch try peek() {
            case UInt8(ascii: ","): index += 1  // a following '}' is refused by the key check
            case UInt8(ascii: "}"):
                index += 1
                return .object(object)
            case let byte: throw fail(.unexpectedByte(byte))
            }
        }
    }

    private mutating func parseArray(depth: Int) throws(JSONParseError) -> JSONValue {
        guard depth <= maxDepth else { throw fail(.tooDeep(limit: maxDepth)) }
        index += 1  // '['
        var elements: [JSONValue] = []
        skipWhitespace()
        if try peek() == UInt8(ascii: "]") {
            index += 1
            return .array(elements)
        }
        while true {
            skipWhitespace()
            elements.append(try parseValue(depth: depth))
            skipWhitespace()
            switch try peek() {
            case UInt8(ascii: ","): index += 1  // a following ']' is refused by parseValue
            case UInt8(ascii: "]"):
                index += 1
                return .array(elements)
            case let byte: throw fail(.unexpectedByte(byte))
            }
        }
    }

    /// RFC 8259 §6 grammar: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    private mutating func parseNumber() throws(JSONParseError) -> JSONValue {
        let start = index
        var negative = false
        if bytes[index] == UInt8(ascii: "-") {
            negative = true
            index += 1
        }
        guard index < bytes.count, isDigit(bytes[index]) else { throw fail(.invalidNumber, at: start) }
        // Accumulate as a negative magnitude so Int64.min fits.
        var magnitude: Int64 = 0
        var fitsInt = true
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
            if index < bytes.count, isDigit(bytes[index]) { throw fail(.invalidNumber, at: start) }  // leading zero
        } else {
            while index < bytes.count, isDigit(bytes[index]) {
                let digit = Int64(bytes[index] &- UInt8(ascii: "0"))
                if fitsInt {
                    let (m1, o1) = magnitude.multipliedReportingOverflow(by: 10)
                    let (m2, o2) = m1.subtractingReportingOverflow(digit)
                    if o1 || o2 { fitsInt = false } else { magnitude = m2 }
                }
                index += 1
            }
        }
        var isInteger = true
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            isInteger = false
            index += 1
            guard index < bytes.count, isDigit(bytes[index]) else { throw fail(.invalidNumber, at: start) }
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            isInteger = false
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") {
                index += 1
            }
            guard index < bytes.count, isDigit(bytes[index]) else { throw fail(.invalidNumber, at: start) }
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        }
        if isInteger && fitsInt {
            if negative { return .int(magnitude) }
            if magnitude != .min { return .int(-magnitude) }
        }
        // Fractions, exponents and out-of-Int64 integers: let the standard library round.
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
        guard let double = Double(text), double.isFinite else { throw fail(.numberOutOfRange, at: start) }
        return .number(double)
    }

    @inline(__always) private func isDigit(_ byte: UInt8) -> Bool {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
    }

    /// Parses a string starting at its opening quote. Fast path: a run with no escapes is
    /// validated as UTF-8 and copied once.
    mutating func parseString() throws(JSONParseError) -> String {
        index += 1  // opening quote
        let start = index
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                let result = try makeString(start..<index)
                index += 1
                return result
            }
            if byte == UInt8(ascii: "\\") { return try parseEscapedString(from: start) }
            if byte < 0x20 { throw fail(.controlCharacterInString) }  // §7
            index += 1
        }
        throw fail(.unexpectedEnd)
    }

    private func makeString(_ range: Range<Int>) throws(JSONParseError) -> String {
        let slice = UnsafeRawBufferPointer(rebasing: bytes[range])
        // ASCII (the common case) needs no validation beyond the scan already done.
        var ascii = true
        for byte in slice where byte >= 0x80 {
            ascii = false
            break
        }
        if ascii { return String(decoding: slice, as: UTF8.self) }
        guard let string = String(validating: slice, as: UTF8.self) else {
            throw fail(.invalidUTF8, at: range.lowerBound)
        }
        return string
    }

    /// Slow path once an escape is seen: decode into a scratch buffer, then validate.
    private mutating func parseEscapedString(from start: Int) throws(JSONParseError) -> String {
        var scratch: [UInt8] = []
        scratch.reserveCapacity(index - start + 16)
        scratch.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[start..<index]))
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\""):
                index += 1
                guard let string = String(validating: scratch, as: UTF8.self) else {
                    throw fail(.invalidUTF8, at: start)
                }
                return string
            case UInt8(ascii: "\\"):
                index += 1
                guard index < bytes.count else { throw fail(.unexpectedEnd) }
                let escape = bytes[index]
                index += 1
                switch escape {
                case UInt8(ascii: "\""): scratch.append(0x22)
                case UInt8(ascii: "\\"): scratch.append(0x5C)
                case UInt8(ascii: "/"): scratch.append(0x2F)
                case UInt8(ascii: "b"): scratch.append(0x08)
                case UInt8(ascii: "f"): scratch.append(0x0C)
                case UInt8(ascii: "n"): scratch.append(0x0A)
                case UInt8(ascii: "r"): scratch.append(0x0D)
                case UInt8(ascii: "t"): scratch.append(0x09)
                case UInt8(ascii: "u"): try appendUnicodeEscape(into: &scratch)
                default: throw fail(.invalidEscape, at: index - 2)
                }
            case 0..<0x20:
                throw fail(.controlCharacterInString)
            default:
                scratch.append(byte)
                index += 1
            }
        }
        throw fail(.unexpectedEnd)
    }

    /// `\uXXXX`, with §7's surrogate-pair form for characters outside the BMP.
    private mutating func appendUnicodeEscape(into scratch: inout [UInt8]) throws(JSONParseError) {
        let escapeStart = index - 2
        let unit = try readHex4()
        var scalarValue: UInt32
        switch unit {
        case 0xD800...0xDBFF:
            guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u")
            else { throw fail(.loneSurrogate, at: escapeStart) }
            index += 2
            let low = try readHex4()
            guard (0xDC00...0xDFFF).contains(low) else { throw fail(.loneSurrogate, at: escapeStart) }
            scalarValue = 0x10000 + ((UInt32(unit) - 0xD800) << 10) + (UInt32(low) - 0xDC00)
        case 0xDC00...0xDFFF:
            throw fail(.loneSurrogate, at: escapeStart)
        default:
            scalarValue = UInt32(unit)
        }
        guard let scalar = Unicode.Scalar(scalarValue) else { throw fail(.loneSurrogate, at: escapeStart) }
        scratch.append(contentsOf: UTF8.encode(scalar)!)
    }

    private mutating func readHex4() throws(JSONParseError) -> UInt16 {
        guard index + 4 <= bytes.count else { throw fail(.unexpectedEnd, at: bytes.count) }
        var value: UInt16 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw fail(.invalidEscape)
            }
            value = value << 4 | UInt16(digit)
            index += 1
        }
        return value
    }
}
