// HTTPHeaders: an ordered list of header fields with case-insensitive lookup (RFC 9110 §5).

/// Header fields in the order received, names kept exactly as sent.
///
/// Field names are case-insensitive (RFC 9110 §5.1), so every lookup compares ASCII
/// case-insensitively; repeated fields are kept as separate entries, and `tokens(_:)`
/// combines them as a comma-separated list would be (RFC 9110 §5.3).
public struct HTTPHeaders: Sendable, Sequence, Equatable, ExpressibleByDictionaryLiteral, CustomStringConvertible {
    public typealias Element = (name: String, value: String)

    /// Every field, in order.
    public var fields: [(name: String, value: String)]

    /// An empty header list.
    public init() { fields = [] }

    /// Fields in the given order.
    public init(_ fields: [(String, String)]) {
        self.fields = fields.map { (name: $0.0, value: $0.1) }
    }

    public init(dictionaryLiteral elements: (String, String)...) {
        self.init(elements)
    }

    /// The first value of the field `name` (case-insensitive), or nil.
    public subscript(_ name: String) -> String? {
        fields.first { Self.equalsIgnoringCase($0.name, name) }?.value
    }

    /// Every value of the field `name`, in order.
    public func values(_ name: String) -> [String] {
        fields.compactMap { Self.equalsIgnoringCase($0.name, name) ? $0.value : nil }
    }

    /// Whether at least one field is named `name`.
    public func contains(_ name: String) -> Bool {
        fields.contains { Self.equalsIgnoringCase($0.name, name) }
    }

    /// The comma-separated list elements of every `name` field, trimmed of optional
    /// whitespace, lowercased, empty elements dropped (RFC 9110 §5.6.1 lets recipients
    /// ignore empty list elements). Suited to token lists such as Connection,
    /// Transfer-Encoding and Upgrade, whose tokens are case-insensitive.
    public func tokens(_ name: String) -> [String] {
        var result: [String] = []
        for value in values(name) {
            for element in value.split(separator: ",", omittingEmptySubsequences: true) {
                let trimmed = Self.trimOWS(Substring(element))
                if !trimmed.isEmpty { result.append(trimmed.lowercased()) }
            }
        }
        return result
    }

    /// Whether the token list of `name` contains `token` (case-insensitive).
    public func hasToken(_ name: String, _ token: String) -> Bool {
        tokens(name).contains(token.lowercased())
    }

    /// Appends a field, keeping any existing ones with the same name.
    public mutating func add(_ name: String, _ value: String) {
        fields.append((name: name, value: value))
    }

    /// Replaces every field named `name` with a single one (appended at the end).
    public mutating func set(_ name: String, _ value: String) {
        remove(name)
        add(name, value)
    }

    /// Removes every field named `name`.
    public mutating func remove(_ name: String) {
        fields.removeAll { Self.equalsIgnoringCase($0.name, name) }
    }

    /// The number of fields (repeated names counted separately).
    public var count: Int { fields.count }

    public func makeIterator() -> IndexingIterator<[(name: String, value: String)]> {
        fields.makeIterator()
    }

    public static func == (lhs: HTTPHeaders, rhs: HTTPHeaders) -> Bool {
        lhs.fields.elementsEqual(rhs.fields) { $0.name == $1.name && $0.value == $1.value }
    }

    public var description: String {
        fields.map { "\($0.name): \($0.value)" }.joined(separator: "\n")
    }

    /// ASCII case-insensitive equality: field names, tokens and origins are ASCII, and Unicode case
    /// folding must not make distinct strings match. (The WebSocket handshake uses it too.)
    public static func equalsIgnoringCase(_ a: String, _ b: String) -> Bool {
        let x = a.utf8, y = b.utf8
        guard x.count == y.count else { return false }  // O(1) for native strings: most names differ in length
        // Native strings are contiguous UTF-8: compare bytes directly instead of through two iterators.
        if let equal = x.withContiguousStorageIfAvailable({ p in
            y.withContiguousStorageIfAvailable { q in
                for i in 0..<p.count where p[i] != q[i] && ASCII.lower(p[i]) != ASCII.lower(q[i]) { return false }
                return true
            }
        }), let equal { return equal }
        return zip(x, y).allSatisfy { $0 == $1 || ASCII.lower($0) == ASCII.lower($1) }
    }

    /// Strips optional whitespace (SP / HTAB, RFC 9110 §5.6.3) from both ends.
    static func trimOWS(_ s: Substring) -> String {
        var view = s.utf8[...]
        while let first = view.first, first == ASCII.space || first == ASCII.tab { view = view.dropFirst() }
        while let last = view.last, last == ASCII.space || last == ASCII.tab { view = view.dropLast() }
        return String(Substring(view))
    }
}

/// Byte constants and character classes from RFC 9110 §5.6 and RFC 3986 §2.
enum ASCII {
    static let tab: UInt8 = 0x09
    static let lf: UInt8 = 0x0A
    static let cr: UInt8 = 0x0D
    static let space: UInt8 = 0x20
    static let colon: UInt8 = 0x3A
    static let semicolon: UInt8 = 0x3B
    static let percent: UInt8 = 0x25
    static let slash: UInt8 = 0x2F
    static let question: UInt8 = 0x3F

    static func lower(_ b: UInt8) -> UInt8 { (b >= 0x41 && b <= 0x5A) ? b | 0x20 : b }

    /// tchar (RFC 9110 §5.6.2): the characters of a token (methods, field names, codings).
    static func isTokenChar(_ b: UInt8) -> Bool { tokenTable[Int(b)] }

    private static let tokenTable: [Bool] = (0..<256).map { i in
        let b = UInt8(i)
        switch b {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: return true
        default: return "!#$%&'*+-.^_`|~".utf8.contains(b)
        }
    }

    /// field-vchar / SP / HTAB / obs-text (RFC 9110 §5.5): what a field value may contain.
    /// CR, LF and NUL are excluded, as §5.5 requires them to be refused.
    static func isFieldValueChar(_ b: UInt8) -> Bool {
        b == tab || (b >= 0x20 && b != 0x7F)
    }

    /// A byte of a request-target: visible ASCII (RFC 9112 §3.2 with RFC 3986 §2; we do not
    /// police the finer URI grammar here, only what could break framing or logging).
    static func isTargetChar(_ b: UInt8) -> Bool { b > 0x20 && b < 0x7F }

    static func hexValue(_ b: UInt8) -> UInt8? {
        switch b {
        case 0x30...0x39: b - 0x30
        case 0x41...0x46: b - 0x41 + 10
        case 0x61...0x66: b - 0x61 + 10
        default: nil
        }
    }
}
