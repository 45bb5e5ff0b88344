// JSONValue: the JSON data model (RFC 8259) used for every wire message, with ordered object keys.

/// A JSON value. Integers that fit in `Int64` parse as `.int`; every other number is `.number`.
///
/// Equality is JSON-semantic: object key order is ignored and `.int(3) == .number(3.0)`,
/// so a message re-encoded with a different key order still compares equal.
public enum JSONValue: Sendable {
    case null
    case bool(Bool)
    case int(Int64)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)
}

/// A JSON object that keeps its keys in insertion (or document) order.
///
/// Lookups are linear: wire messages have a handful of keys, where a scan beats hashing.
public struct JSONObject: Sendable, ExpressibleByDictionaryLiteral {
    /// The members in order. Keys are unique (the parser rejects duplicates).
    public private(set) var members: [(key: String, value: JSONValue)]

    public init() { members = [] }

    public init(_ members: [(key: String, value: JSONValue)]) {
        self.members = []
        self.members.reserveCapacity(members.count)
        for member in members { self[member.key] = member.value }
    }

    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self.init(elements.map { (key: $0.0, value: $0.1) })
    }

    public var count: Int { members.count }
    public var keys: [String] { members.map(\.key) }

    /// Reads a member; assigning `nil` removes it, assigning a value replaces in place or appends.
    public subscript(key: String) -> JSONValue? {
        get {
            for member in members where member.key == key { return member.value }
            return nil
        }
        set {
            if let index = members.firstIndex(where: { $0.key == key }) {
                if let newValue { members[index].value = newValue } else { members.remove(at: index) }
            } else if let newValue {
                members.append((key: key, value: newValue))
            }
        }
    }

    /// Appends without checking for an existing key; the caller guarantees uniqueness.
    mutating func appendUnchecked(key: String, value: JSONValue) {
        members.append((key: key, value: value))
    }
}

extension JSONObject: Equatable {
    /// Key order does not matter (RFC 8259 §4: objects are unordered collections).
    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        guard lhs.members.count == rhs.members.count else { return false }
        for member in lhs.members {
            guard let other = rhs[member.key], other == member.value else { return false }
        }
        return true
    }
}

extension JSONValue: Equatable {
    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case (.bool(let a), .bool(let b)): return a == b
        case (.int(let a), .int(let b)): return a == b
        case (.number(let a), .number(let b)): return a == b
        case (.int(let a), .number(let b)), (.number(let b), .int(let a)): return Double(a) == b && b.rounded() == b
        case (.string(let a), .string(let b)): return a == b
        case (.array(let a), .array(let b)): return a == b
        case (.object(let a), .object(let b)): return a == b
        default: return false
        }
    }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral, ExpressibleByFloatLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .number(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(JSONObject(elements.map { (key: $0.0, value: $0.1) }))
    }
    public init(nilLiteral: ()) { self = .null }
}

extension JSONValue {
    /// The string payload, or nil for any other kind.
    public var stringValue: String? { if case .string(let s) = self { s } else { nil } }
    /// The integer payload; a `.number` with an exact integral value in range also qualifies.
    public var intValue: Int64? {
        switch self {
        case .int(let i): return i
        case .number(let d):
            guard d.rounded() == d, d >= -9.223372036854775808e18, d < 9.223372036854775808e18 else { return nil }
            return Int64(d)
        default: return nil
        }
    }
    public var boolValue: Bool? { if case .bool(let b) = self { b } else { nil } }
    public var arrayValue: [JSONValue]? { if case .array(let a) = self { a } else { nil } }
    public var objectValue: JSONObject? { if case .object(let o) = self { o } else { nil } }
    /// Member lookup on an object; nil for non-objects.
    public subscript(key: String) -> JSONValue? { objectValue?[key] }

    /// The kind's name as used in error messages ("a string", "an object", …).
    var kindDescription: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .int, .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }
}
