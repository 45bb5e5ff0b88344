// PipelineJSON: a strict RFC 8259 JSON value with a bounded parser and a deterministic encoder, so LLM output is checked exactly.

/// A JSON value. Objects keep their keys in a dictionary; the encoder sorts keys so output is deterministic.
public enum PipelineJSON: Sendable, Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([PipelineJSON])
    case object([String: PipelineJSON])

    /// The value as a string, if it is one.
    public var stringValue: String? { if case .string(let s) = self { return s } else { return nil } }
    /// The value as a bool, if it is one (numbers are not bools).
    public var boolValue: Bool? { if case .bool(let b) = self { return b } else { return nil } }
    /// The value as an integer, if it is a number with no fractional part.
    public var intValue: Int? {
        if case .number(let d) = self, d.rounded() == d, abs(d) < 9.0e15 { return Int(d) } else { return nil }
    }
    /// The members of an object.
    public var objectValue: [String: PipelineJSON]? { if case .object(let o) = self { return o } else { return nil } }
    /// The elements of an array.
    public var arrayValue: [PipelineJSON]? { if case .array(let a) = self { return a } else { return nil } }
    /// Member lookup on an object (nil for other values).
    public subscript(key: String) -> PipelineJSON? { objectValue?[key] }

    /// Builds a number from an integer.
    public static func int(_ value: Int) -> PipelineJSON { .number(Double(value)) }
    /// `.string(value)` or `.null`.
    public static func optional(_ value: String?) -> PipelineJSON { value.map(PipelineJSON.string) ?? .null }

    /// A short name of the value's type, for error messages ("string", "number" ...).
    public var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "boolean"
        case .number: "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }
}

// MARK: - Encoding

extension PipelineJSON {
    /// Compact UTF-8 JSON with sorted object keys (RFC 8259 §7 escapes for control characters).
    public func encoded() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        encode(into: &out)
        return out
    }

    /// The encoded value as a String.
    public func encodedString() -> String { String(decoding: encoded(), as: UTF8.self) }

    private func encode(into out: inout [UInt8]) {
        switch self {
        case .null: out.append(contentsOf: Array("null".utf8))
        case .bool(let b): out.append(contentsOf: Array((b ? "true" : "false").utf8))
        case .number(let d): out.append(contentsOf: Array(PipelineJSON.format(d).utf8))
        case .string(let s): PipelineJSON.encodeString(s, into: &out)
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (i, item) in items.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                item.encode(into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            for (i, key) in members.keys.sorted().enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                PipelineJSON.encodeString(key, into: &out)
                out.append(UInt8(ascii: ":"))
                members[key]!.encode(into: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    /// Integers print without a fraction; non-finite numbers (not representable in JSON) print as null.
    private static func format(_ d: Double) -> String {
        guard d.isFinite else { return "null" }
        if d.rounded() == d, abs(d) < 9.0e15 { return String(Int64(d)) }
        return String(d)
    }

    private static func encodeString(_ s: String, into out: inout [UInt8]) {
        let hex = Array("0123456789abcdef".utf8)
        out.append(UInt8(ascii: "\""))
        for byte in s.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(contentsOf: [92, 34])
            case UInt8(ascii: "\\"): out.append(contentsOf: [92, 92])
            case 0x0A: out.append(contentsOf: [92, UInt8(ascii: "n")])
            case 0x0D: out.append(contentsOf: [92, UInt8(ascii: "r")])
            case 0x09: out.append(contentsOf: [92, UInt8(ascii: "t")])
            case 0..<0x20:
                out.append(contentsOf: Array("\\u00".utf8))
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0xF)])
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}

// MARK: - Parsing

/// Why a JSON text was refused; `description` names the byte offset.
public struct PipelineJSONError: Error, Sendable, CustomStringConvertible {
    fileprivate enum Kind: Sendable {
        case unexpectedEnd
        case unexpectedByte(UInt8)
        case invalidNumber
        case invalidEscape
        case invalidUnicode
        case controlCharacterInString
        case tooDeep(Int)
        case duplicateKey(String)
        case trailingData
    }

    fileprivate let kind: Kind
    /// Byte offset in the input where the problem was found.
    public let offset: Int

    fileprivate static func make(_ kind: Kind, _ offset: Int) -> PipelineJSONError { PipelineJSONError(kind: kind, offset: offset) }
    fileprivate static func unexpectedEnd(_ o: Int) -> PipelineJSONError { make(.unexpectedEnd, o) }
    fileprivate static func unexpectedByte(_ b: UInt8, _ o: Int) -> PipelineJSONError { make(.unexpectedByte(b), o) }
    fileprivate static func invalidNumber(_ o: Int) -> PipelineJSONError { make(.invalidNumber, o) }
    fileprivate static func invalidEscape(_ o: Int) -> PipelineJSONError { make(.invalidEscape, o) }
    fileprivate static func invalidUnicode(_ o: Int) -> PipelineJSONError { make(.invalidUnicode, o) }
    fileprivate static func controlCharacter(_ o: Int) -> PipelineJSONError { make(.controlCharacterInString, o) }
    fileprivate static func tooDeep(_ d: Int, _ o: Int) -> PipelineJSONError { make(.tooDeep(d), o) }
    fileprivate static func duplicateKey(_ k: String, _ o: Int) -> PipelineJSONError { make(.duplicateKey(k), o) }
    fileprivate static func trailingData(_ o: Int) -> PipelineJSONError { make(.trailingData, o) }

    public var description: String {
        switch kind {
        case .unexpectedEnd: "JSON ends unexpectedly at byte \(offset)"
        case .unexpectedByte(let b):
            b >= 0x20 && b < 0x7F
                ? "unexpected character '\(Character(Unicode.Scalar(b)))' at byte \(offset)"
                : "unexpected byte 0x\(String(b, radix: 16)) at byte \(offset)"
        case .invalidNumber: "invalid number at byte \(offset)"
        case .invalidEscape: "invalid escape sequence at byte \(offset)"
        case .invalidUnicode: "invalid UTF-8 or unicode escape at byte \(offset)"
        case .controlCharacterInString: "unescaped control character in string at byte \(offset)"
        case .tooDeep(let d): "JSON nesting deeper than \(d) at byte \(offset)"
        case .duplicateKey(let k): "duplicate object key \"\(k)\" at byte \(offset)"
        case .trailingData: "unexpected data after the JSON value at byte \(offset)"
        }
    }
}

extension PipelineJSON {
    /// Parses exactly one JSON value (surrounding whitespace allowed). Duplicate keys are refused (RFC 8259 §4 leaves
    /// them undefined; we do not guess which one an attacker meant). `maxDepth` bounds recursion.
    public static func parse(_ bytes: some Collection<UInt8>, maxDepth: Int = 64) throws(PipelineJSONError) -> PipelineJSON {
        var parser = PipelineJSONParser(bytes: Array(bytes), maxDepth: maxDepth)
        return try parser.parseDocument()
    }

    /// Parses a JSON text held in a String.
    public static func parse(_ text: String, maxDepth: Int = 64) throws(PipelineJSONError) -> PipelineJSON {
        try parse(Array(text.utf8), maxDepth: maxDepth)
    }
}

/// A recursive-descent parser over a byte array.
private struct PipelineJSONParser {
    let bytes: [UInt8]
    let maxDepth: Int
    var i = 0

    init(bytes: [UInt8], maxDepth: Int) {
        self.bytes = bytes
        self.maxDepth = maxDepth
    }

    mutating func parseDocument() throws(PipelineJSONError) -> PipelineJSON {
        skipSpace()
        let v = try parseValue(depth: 0)
        skipSpace()
        guard i == bytes.count else { throw .trailingData(i) }
        return v
    }

    mutating func skipSpace() {
        while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09 { i += 1 }
    }

    mutating func parseValue(depth: Int) throws(PipelineJSONError) -> PipelineJSON {
        guard depth <= maxDepth else { throw .tooDeep(maxDepth, i) }
        guard i < bytes.count else { throw .unexpectedEnd(i) }
        switch bytes[i] {
        case UInt8(ascii: "{"): return try parseObject(depth: depth)
        case UInt8(ascii: "["): return try parseArray(depth: depth)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        default: throw .unexpectedByte(bytes[i], i)
        }
    }

    mutating func literal(_ word: String) throws(PipelineJSONError) {
        for b in word.utf8 {
            guard i < bytes.count else { throw .unexpectedEnd(i) }
            guard bytes[i] == b else { throw .unexpectedByte(bytes[i], i) }
            i += 1
        }
    }

    mutating func parseObject(depth: Int) throws(PipelineJSONError) -> PipelineJSON {
        i += 1
        var members: [String: PipelineJSON] = [:]
        skipSpace()
        if i < bytes.count, bytes[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
        while true {
            skipSpace()
            guard i < bytes.count else { throw .unexpectedEnd(i) }
            guard bytes[i] == UInt8(ascii: "\"") else { throw .unexpectedByte(bytes[i], i) }
            let keyOffset = i
            let key = try parseString()
            skipSpace()
            guard i < bytes.count else { throw .unexpectedEnd(i) }
            guard bytes[i] == UInt8(ascii: ":") else { throw .unexpectedByte(bytes[i], i) }
            i += 1
            skipSpace()
            let value = try parseValue(depth: depth + 1)
            guard members.updateValue(value, forKey: key) == nil else { throw .duplicateKey(key, keyOffset) }
            skipSpace()
            guard i < bytes.count else { throw .unexpectedEnd(i) }
            if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
            if bytes[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
            throw .unexpectedByte(bytes[i], i)
        }
    }

    mutating func parseArray(depth: Int) throws(PipelineJSONError) -> PipelineJSON {
        i += 1
        var items: [PipelineJSON] = []
        skipSpace()
        if i < bytes.count, bytes[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
        while true {
            skipSpace()
            items.append(try parseValue(depth: depth + 1))
            skipSpace()
            guard i < bytes.count else { throw .unexpectedEnd(i) }
            if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
            if bytes[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
            throw .unexpectedByte(bytes[i], i)
        }
    }

    mutating func parseNumber() throws(PipelineJSONError) -> PipelineJSON {
        let start = i
        func digits(_ p: inout PipelineJSONParser) -> Int {
            let s = p.i
            while p.i < p.bytes.count, p.bytes[p.i] >= 0x30, p.bytes[p.i] <= 0x39 { p.i += 1 }
            return p.i - s
        }
        if bytes[i] == UInt8(ascii: "-") { i += 1 }
        guard i < bytes.count else { throw .unexpectedEnd(i) }
        if bytes[i] == UInt8(ascii: "0") {
            i += 1
        } else if digits(&self) == 0 {
            throw .invalidNumber(start)
        }
        if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
            i += 1
            guard digits(&self) > 0 else { throw .invalidNumber(start) }
        }
        if i < bytes.count, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
            i += 1
            if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
            guard digits(&self) > 0 else { throw .invalidNumber(start) }
        }
        guard let d = Double(String(decoding: bytes[start..<i], as: UTF8.self)), d.isFinite else {
            throw .invalidNumber(start)
        }
        return .number(d)
    }

    mutating func parseString() throws(PipelineJSONError) -> String {
        i += 1
        var out: [UInt8] = []
        while true {
            guard i < bytes.count else { throw .unexpectedEnd(i) }
            let b = bytes[i]
            if b == UInt8(ascii: "\"") {
                i += 1
                guard let s = String(validating: out, as: UTF8.self) else { throw .invalidUnicode(i) }
                return s
            }
            if b < 0x20 { throw .controlCharacter(i) }
            if b != UInt8(ascii: "\\") { out.append(b); i += 1; continue }
            i += 1
            guard i < bytes.count else { throw .unexpectedEnd(i) }
            let e = bytes[i]
            i += 1
            switch e {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C)
            case UInt8(ascii: "/"): out.append(0x2F)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4()
                // RFC 8259 §7: characters outside the BMP are escaped as a UTF-16 surrogate pair.
                if scalar >= 0xD800, scalar < 0xDC00 {
                    guard i + 1 < bytes.count, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") else {
                        throw .invalidUnicode(i)
                    }
                    i += 2
                    let low = try hex4()
                    guard low >= 0xDC00, low < 0xE000 else { throw .invalidUnicode(i) }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if scalar >= 0xDC00, scalar < 0xE000 {
                    throw .invalidUnicode(i)
                }
                guard let u = Unicode.Scalar(scalar) else { throw .invalidUnicode(i) }
                out.append(contentsOf: Array(String(Character(u)).utf8))
            default: throw .invalidEscape(i - 1)
            }
        }
    }

    mutating func hex4() throws(PipelineJSONError) -> UInt32 {
        guard i + 4 <= bytes.count else { throw .unexpectedEnd(bytes.count) }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let b = bytes[i]
            let d: UInt32
            switch b {
            case 0x30...0x39: d = UInt32(b - 0x30)
            case 0x41...0x46: d = UInt32(b - 0x41 + 10)
            case 0x61...0x66: d = UInt32(b - 0x61 + 10)
            default: throw .invalidEscape(i)
            }
            v = v << 4 | d
            i += 1
        }
        return v
    }
}
