// WebSocketHandshake: server-side validation of the opening handshake, plus client helpers.
import HTTP1

/// Which browser origins may open a WebSocket (RFC 6455 §4.2.2 step 4, §10.2).
public enum OriginPolicy: Sendable {
    /// Accept any origin.
    case any
    /// Accept only these origins, compared exactly but case-insensitively as `scheme://host[:port]`.
    /// A request with no Origin header (a non-browser client) is allowed: the check protects
    /// browsers from cross-site use, and non-browser clients can send any Origin anyway.
    case allowList([String])
}

/// The opening handshake (RFC 6455 §4). Pure: the HTTP parser hands us the request line's
/// pieces and header fields; we decide accept or reject and produce the response headers.
public struct WebSocketHandshake {
    /// A valid upgrade request. The executor sends `101 Switching Protocols` with `responseHeaders`.
    public struct Accepted: Sendable {
        /// The Sec-WebSocket-Accept value (§4.2.2 step 5.4).
        public var acceptValue: String
        /// The selected subprotocol, if any (§4.2.2 step 5.5).
        public var subprotocol: String?
        /// Upgrade, Connection, Sec-WebSocket-Accept and (when selected) Sec-WebSocket-Protocol.
        public var responseHeaders: [(String, String)]

        /// The full `HTTP/1.1 101 Switching Protocols` response head, ready to write.
        public var responseBytes: [UInt8] {
            WebSocketHandshake.serialize(status: 101, reason: "Switching Protocols", headers: responseHeaders)
        }
    }

    /// A request that is not an acceptable WebSocket upgrade (§4.2.1, §4.4).
    public struct Rejected: Error, Sendable {
        /// 400 malformed, 403 origin refused, 405 not GET, 426 unsupported version.
        public var status: Int
        /// Headers the response must carry (Allow for 405, Sec-WebSocket-Version for 426).
        public var headers: [(String, String)]
        /// Why, for logs and the response body.
        public var reason: String

        /// A complete response (`Connection: close`, the reason as a text body), ready to write.
        public var responseBytes: [UInt8] {
            let body = Array((reason + "\n").utf8)
            let phrase: String
            switch status {
            case 400: phrase = "Bad Request"
            case 403: phrase = "Forbidden"
            case 405: phrase = "Method Not Allowed"
            case 426: phrase = "Upgrade Required"
            default: phrase = "Error"
            }
            let fields = headers + [
                ("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", String(body.count)),
                ("Connection", "close"),
            ]
            return WebSocketHandshake.serialize(status: status, reason: phrase, headers: fields) + body
        }
    }

    /// RFC 6455 §1.3 / §4.2.2: the GUID appended to the client's key before hashing.
    static let guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    /// Validates a client's opening handshake (RFC 6455 §4.2.1) and negotiates a subprotocol.
    ///
    /// - Parameters:
    ///   - headers: the request's header fields in order, names as received (compared case-insensitively).
    ///   - supportedSubprotocols: ours; the first *client-offered* one we support is chosen
    ///     (§4.2.2 step 5.5 lets the server pick; we honour the client's preference order).
    public static func validate(
        method: String, versionMajor: Int, versionMinor: Int, headers: [(name: String, value: String)],
        allowedOrigins: OriginPolicy, supportedSubprotocols: [String]
    ) -> Result<Accepted, Rejected> {
        // §4.1 / §4.2.1 item 1: "an HTTP/1.1 or higher GET request". Method names are case-sensitive (RFC 9110 §9.1).
        guard method == "GET" else {
            return .failure(Rejected(status: 405, headers: [("Allow", "GET")], reason: "method \(method) is not GET"))
        }
        guard versionMajor > 1 || (versionMajor == 1 && versionMinor >= 1) else {
            return .failure(bad("HTTP/\(versionMajor).\(versionMinor) is older than HTTP/1.1"))
        }
        // §4.2.1 item 2: a Host header field; RFC 9112 §3.2: exactly one, else 400.
        let hosts = values(of: "host", in: headers)
        guard hosts.count == 1 else { return .failure(bad(hosts.isEmpty ? "missing Host" : "multiple Host fields")) }
        // §4.2.1 items 3-4: Upgrade contains "websocket", Connection contains "Upgrade",
        // both as ASCII case-insensitive tokens in comma-separated lists.
        guard tokens(of: "upgrade", in: headers).contains(where: { HTTPHeaders.equalsIgnoringCase($0, "websocket") }) else {
            return .failure(bad("Upgrade does not include websocket"))
        }
        guard tokens(of: "connection", in: headers).contains(where: { HTTPHeaders.equalsIgnoringCase($0, "upgrade") }) else {
            return .failure(bad("Connection does not include Upgrade"))
        }
        // §4.2.1 item 6 and §4.4: version 13, else 426 naming the versions we speak.
        // §11.3.5: the header MUST NOT appear more than once in a request.
        let versions = values(of: "sec-websocket-version", in: headers)
        guard versions.count == 1, trim(versions[0]) == "13" else {
            return .failure(
                Rejected(
                    status: 426, headers: [("Sec-WebSocket-Version", "13")],
                    reason: "unsupported Sec-WebSocket-Version \(versions)"))
        }
        // §4.2.1 item 5: a base64 value that decodes to 16 bytes; §11.3.1: only once.
        let keys = values(of: "sec-websocket-key", in: headers)
        guard keys.count == 1 else { return .failure(bad("expected one Sec-WebSocket-Key, got \(keys.count)")) }
        let key = trim(keys[0])
        guard let decoded = Base64.decode(key), decoded.count == 16 else {
            return .failure(bad("Sec-WebSocket-Key is not base64 of 16 bytes"))
        }
        // §4.2.2 step 4 / §10.2: refuse browsers from origins we do not serve.
        if case .allowList(let allowed) = allowedOrigins {
            let origins = values(of: "origin", in: headers)
            if origins.count > 1 { return .failure(bad("multiple Origin headers")) }
            if let origin = origins.first.map(trim), !allowed.contains(where: { HTTPHeaders.equalsIgnoringCase($0, origin) }) {
                return .failure(Rejected(status: 403, headers: [], reason: "origin \(origin) not allowed"))
            }
        }
        // §4.2.2 step 5.5: pick one of the client's offers (it may list them in several fields).
        let offered = tokens(of: "sec-websocket-protocol", in: headers)
        let subprotocol = offered.first(where: { supportedSubprotocols.contains($0) })

        let accept = acceptValue(forKey: key)
        var response: [(String, String)] = [
            ("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Accept", accept),
        ]
        if let subprotocol { response.append(("Sec-WebSocket-Protocol", subprotocol)) }
        return .success(Accepted(acceptValue: accept, subprotocol: subprotocol, responseHeaders: response))
    }

    /// base64(SHA-1(key + GUID)) (RFC 6455 §4.2.2 step 5.4). The key is used as sent, trimmed of spaces.
    public static func acceptValue(forKey key: String) -> String {
        Base64.encode(SHA1.hash(Array((trim(key) + guid).utf8)))
    }

    /// A client's opening handshake request (RFC 6455 §4.1), for tests and load generators.
    public static func clientRequest(
        host: String, path: String, key: String, subprotocols: [String], extraHeaders: [(String, String)]
    ) -> [UInt8] {
        var text = "GET \(path) HTTP/1.1\r\nHost: \(host)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        text += "Sec-WebSocket-Key: \(key)\r\nSec-WebSocket-Version: 13\r\n"
        if !subprotocols.isEmpty { text += "Sec-WebSocket-Protocol: \(subprotocols.joined(separator: ", "))\r\n" }
        for (name, value) in extraHeaders { text += "\(name): \(value)\r\n" }
        text += "\r\n"
        return Array(text.utf8)
    }

    /// A fresh Sec-WebSocket-Key: 16 random bytes, base64 (RFC 6455 §4.1 item 7).
    public static func randomKey() -> String {
        var generator = SystemRandomNumberGenerator()
        return Base64.encode((0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }

    /// Client side (RFC 6455 §4.1, the server's response checks): whether a response's status and
    /// headers complete the handshake for `key`. Returns the selected subprotocol on success.
    public static func validateResponse(
        status: Int, headers: [(name: String, value: String)], key: String, offeredSubprotocols: [String]
    ) -> Result<String?, Rejected> {
        guard status == 101 else { return .failure(Rejected(status: status, headers: [], reason: "status \(status)")) }
        guard tokens(of: "upgrade", in: headers).contains(where: { HTTPHeaders.equalsIgnoringCase($0, "websocket") }),
            tokens(of: "connection", in: headers).contains(where: { HTTPHeaders.equalsIgnoringCase($0, "upgrade") })
        else { return .failure(bad("missing Upgrade/Connection")) }
        let accepts = values(of: "sec-websocket-accept", in: headers)
        guard accepts.count == 1, trim(accepts[0]) == acceptValue(forKey: key) else {
            return .failure(bad("wrong Sec-WebSocket-Accept"))
        }
        let selected = values(of: "sec-websocket-protocol", in: headers).map(trim)
        guard selected.count <= 1 else { return .failure(bad("multiple Sec-WebSocket-Protocol")) }
        if let chosen = selected.first, !offeredSubprotocols.contains(chosen) {
            return .failure(bad("server chose subprotocol \(chosen) we did not offer"))
        }
        return .success(selected.first)
    }

    // MARK: - Helpers

    static func serialize(status: Int, reason: String, headers: [(String, String)]) -> [UInt8] {
        var text = "HTTP/1.1 \(status) \(reason)\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        text += "\r\n"
        return Array(text.utf8)
    }

    private static func bad(_ reason: String) -> Rejected {
        Rejected(status: 400, headers: [], reason: reason)
    }

    /// Every value of the named field, in order.
    private static func values(of lowercasedName: String, in headers: [(name: String, value: String)]) -> [String] {
        headers.compactMap { HTTPHeaders.equalsIgnoringCase($0.name, lowercasedName) ? $0.value : nil }
    }

    /// The comma-separated tokens of every field with this name (RFC 9110 §5.3: repeated
    /// fields combine as one list), trimmed, empty elements dropped.
    private static func tokens(of lowercasedName: String, in headers: [(name: String, value: String)]) -> [String] {
        values(of: lowercasedName, in: headers).flatMap { value in
            value.split(separator: ",").map { trim(String($0)) }.filter { !$0.isEmpty }
        }
    }

    /// Strips optional whitespace (SP / HTAB, RFC 9110 §5.6.3).
    static func trim(_ text: String) -> String {
        var scalars = Substring(text)
        while let first = scalars.first, first == " " || first == "\t" { scalars.removeFirst() }
        while let last = scalars.last, last == " " || last == "\t" { scalars.removeLast() }
        return String(scalars)
    }

}
