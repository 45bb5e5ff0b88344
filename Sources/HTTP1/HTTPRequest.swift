// HTTPRequest: one complete request as parsed from the wire (RFC 9112 §3, §6).

/// A complete request: request-line, header section and decoded body.
public struct HTTPRequest: Sendable, Equatable {
    /// The method token, case-sensitive (RFC 9110 §9.1), e.g. "GET".
    public var method: String
    /// The raw request-target exactly as received (RFC 9112 §3.2).
    public var target: String
    /// The raw, still percent-encoded path: for origin-form the part before `?`, for
    /// absolute-form the path after the authority ("/" if empty), "*" for asterisk-form,
    /// and the authority itself for authority-form (CONNECT).
    public var path: String
    /// The raw query (after the first `?`, without it), or nil if the target had none.
    public var query: String?
    public var versionMajor: Int
    public var versionMinor: Int
    public var headers: HTTPHeaders
    /// The body after chunked decoding; empty when the request had none.
    public var body: [UInt8]
    /// Whether the connection may carry another request after this one (RFC 9112 §9.3):
    /// HTTP/1.1 persists unless Connection lists "close"; HTTP/1.0 only with "keep-alive".
    public var keepAlive: Bool

    /// Builds a request, deriving `path`, `query` and `keepAlive` from the target and headers.
    public init(
        method: String, target: String, versionMajor: Int = 1, versionMinor: Int = 1,
        headers: HTTPHeaders = .init(), body: [UInt8] = []
    ) {
        self.method = method
        self.target = target
        (self.path, self.query) = Self.splitTarget(target, method: method)
        self.versionMajor = versionMajor
        self.versionMinor = versionMinor
        self.headers = headers
        self.body = body
        self.keepAlive = Self.persists(versionMajor: versionMajor, versionMinor: versionMinor, headers: headers)
    }

    /// The percent-decoded path, or nil when its percent-encoding is invalid or the
    /// decoded bytes are not UTF-8. Use `PathSanitizer` before touching the file system.
    public var decodedPath: String? {
        guard let bytes = PercentDecoding.decode(path, plusAsSpace: false) else { return nil }
        return String(validating: bytes, as: UTF8.self)
    }

    /// The query's name/value pairs in order, percent-decoded with `+` as space
    /// (application/x-www-form-urlencoded). A name without `=` gets an empty value;
    /// invalid escapes are kept literally rather than failing the whole query.
    public func queryItemList() -> [(name: String, value: String)] {
        guard let query, !query.isEmpty else { return [] }
        return query.split(separator: "&", omittingEmptySubsequences: true).map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = PercentDecoding.decodeLenient(parts[0])
            let value = parts.count > 1 ? PercentDecoding.decodeLenient(parts[1]) : ""
            return (name: name, value: value)
        }
    }

    /// The query as a dictionary; when a name repeats, the first value wins.
    public func queryItems() -> [String: String] {
        var result: [String: String] = [:]
        for item in queryItemList() where result[item.name] == nil { result[item.name] = item.value }
        return result
    }

    public static func == (lhs: HTTPRequest, rhs: HTTPRequest) -> Bool {
        lhs.method == rhs.method && lhs.target == rhs.target && lhs.versionMajor == rhs.versionMajor
            && lhs.versionMinor == rhs.versionMinor && lhs.headers == rhs.headers && lhs.body == rhs.body
            && lhs.keepAlive == rhs.keepAlive
    }

    /// RFC 9112 §9.3: "close" always ends the connection; otherwise HTTP/1.1 (and later
    /// 1.x) persists by default and HTTP/1.0 persists only when the client asked for it.
    static func persists(versionMajor: Int, versionMinor: Int, headers: HTTPHeaders) -> Bool {
        let connection = headers.tokens("Connection")
        if connection.contains("close") { return false }
        if versionMajor == 1 && versionMinor >= 1 { return true }
        return connection.contains("keep-alive")
    }

    /// Splits a request-target into raw path and query by its form (RFC 9112 §3.2).
    static func splitTarget(_ target: String, method: String) -> (path: String, query: String?) {
        if target == "*" { return ("*", nil) }  // asterisk-form, §3.2.4
        if method == "CONNECT" { return (target, nil) }  // authority-form, §3.2.3
        var rest = Substring(target)
        // absolute-form (§3.2.2): drop "scheme://authority", keep the path.
        if !rest.hasPrefix("/"), let schemeEnd = rest.firstRange(of: "://") {
            rest = rest[schemeEnd.upperBound...]
            let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" } ?? rest.endIndex
            rest = rest[authorityEnd...]
        }
        let path: Substring
        var query: String?
        if let q = rest.firstIndex(of: "?") {
            path = rest[..<q]
            query = String(rest[rest.index(after: q)...])
        } else {
            path = rest
        }
        return (path.isEmpty ? "/" : String(path), query)
    }
}

/// Percent-decoding (RFC 3986 §2.1).
enum PercentDecoding {
    /// Decodes `%XX` escapes; nil if an escape is truncated or not hexadecimal.
    static func decode<S: StringProtocol>(_ s: S, plusAsSpace: Bool) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(s.utf8.count)
        var it = s.utf8.makeIterator()
        while let b = it.next() {
            if b == ASCII.percent {
                guard let h = it.next().flatMap(ASCII.hexValue), let l = it.next().flatMap(ASCII.hexValue) else {
                    return nil
                }
                out.append(h << 4 | l)
            } else if plusAsSpace && b == 0x2B {
                out.append(ASCII.space)
            } else {
                out.append(b)
            }
        }
        return out
    }

    /// Form decoding that never fails: `+` is space, invalid escapes and invalid UTF-8
    /// are kept as-is (the latter repaired with U+FFFD).
    static func decodeLenient<S: StringProtocol>(_ s: S) -> String {
        if let bytes = decode(s, plusAsSpace: true) { return String(decoding: bytes, as: UTF8.self) }
        // Decode escape by escape so one bad "%zz" does not spoil the rest.
        var out: [UInt8] = []
        let bytes = Array(s.utf8)
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            if b == ASCII.percent, i + 2 < bytes.count, let h = ASCII.hexValue(bytes[i + 1]),
                let l = ASCII.hexValue(bytes[i + 2])
            {
                out.append(h << 4 | l)
                i += 3
            } else {
                out.append(b == 0x2B ? ASCII.space : b)
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
