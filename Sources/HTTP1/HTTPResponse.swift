// HTTPResponse: a response and its HTTP/1.1 serialization (RFC 9112 §4, §6).

/// A complete response with an in-memory body.
public struct HTTPResponse: Sendable, Equatable {
    public var status: Int
    public var headers: HTTPHeaders
    public var body: [UInt8]

    public init(status: Int, headers: HTTPHeaders = .init(), body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A `text/plain; charset=utf-8` response.
    public static func text(_ status: Int, _ text: String) -> HTTPResponse {
        HTTPResponse(status: status, headers: ["Content-Type": "text/plain; charset=utf-8"], body: Array(text.utf8))
    }

    /// An `application/json` response around already-encoded JSON.
    public static func json(_ status: Int, _ json: [UInt8]) -> HTTPResponse {
        HTTPResponse(status: status, headers: ["Content-Type": "application/json"], body: json)
    }

    /// The answer to a parse error: its status and message as text; the caller closes the
    /// connection afterwards (encode with `keepAlive: false`).
    public static func error(_ error: HTTPParseError) -> HTTPResponse {
        .text(error.status, error.message + "\n")
    }

    /// Whether a response with this status never has content (RFC 9110 §6.4.1: 1xx, 204, 304).
    public static func statusForbidsBody(_ status: Int) -> Bool {
        (100..<200).contains(status) || status == 204 || status == 304
    }

    /// Serializes status line + headers (+ Content-Length unless present or status is
    /// 1xx/204/304) + body. `headOnly` omits the body but keeps Content-Length (RFC 9110
    /// §9.3.2: HEAD gets the headers GET would). `keepAlive: false` adds Connection: close
    /// (RFC 9112 §9.6). `date`, if given and no Date field is present, adds Date (RFC 9110 §6.6.1).
    ///
    /// CR, LF and NUL in names or values are replaced by spaces, so a value that came from
    /// input can never split the response (RFC 9110 §5.5).
    public func encode(headOnly: Bool = false, keepAlive: Bool = true, date: String? = nil) -> [UInt8] {
        let noBody = Self.statusForbidsBody(status)
        var out: [UInt8] = []
        out.reserveCapacity(128 + headers.count * 40 + (headOnly || noBody ? 0 : body.count))
        out.append(contentsOf: "HTTP/1.1 \(status) \(HTTPStatus.reason(status))\r\n".utf8)
        if let date, !headers.contains("Date") { Self.appendField(&out, "Date", date) }
        for field in headers { Self.appendField(&out, field.name, field.value) }
        if !noBody && !headers.contains("Content-Length") {
            Self.appendField(&out, "Content-Length", String(body.count))
        }
        if !keepAlive && !headers.hasToken("Connection", "close") { Self.appendField(&out, "Connection", "close") }
        out.append(ASCII.cr)
        out.append(ASCII.lf)
        if !headOnly && !noBody { out.append(contentsOf: body) }
        return out
    }

    private static func appendField(_ out: inout [UInt8], _ name: String, _ value: String) {
        appendSanitized(&out, name)
        out.append(ASCII.colon)
        out.append(ASCII.space)
        appendSanitized(&out, value)
        out.append(ASCII.cr)
        out.append(ASCII.lf)
    }

    private static func appendSanitized(_ out: inout [UInt8], _ s: String) {
        let start = out.count
        out.append(contentsOf: s.utf8)  // bulk copy, then patch the rare CR/LF/NUL in place
        for i in start..<out.count where out[i] == ASCII.cr || out[i] == ASCII.lf || out[i] == 0 { out[i] = ASCII.space }
    }
}

/// Reason phrases (RFC 9110 §15). They are informational only (RFC 9112 §4).
public enum HTTPStatus {
    /// The registered reason phrase for `code`, or a generic one for its class.
    public static func reason(_ code: Int) -> String {
        switch code {
        case 100: "Continue"
        case 101: "Switching Protocols"
        case 200: "OK"
        case 201: "Created"
        case 202: "Accepted"
        case 204: "No Content"
        case 206: "Partial Content"
        case 301: "Moved Permanently"
        case 302: "Found"
        case 303: "See Other"
        case 304: "Not Modified"
        case 307: "Temporary Redirect"
        case 308: "Permanent Redirect"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 406: "Not Acceptable"
        case 408: "Request Timeout"
        case 409: "Conflict"
        case 410: "Gone"
        case 411: "Length Required"
        case 412: "Precondition Failed"
        case 413: "Content Too Large"
        case 414: "URI Too Long"
        case 415: "Unsupported Media Type"
        case 416: "Range Not Satisfiable"
        case 417: "Expectation Failed"
        case 422: "Unprocessable Content"
        case 426: "Upgrade Required"
        case 428: "Precondition Required"
        case 429: "Too Many Requests"
        case 431: "Request Header Fields Too Large"
        case 500: "Internal Server Error"
        case 501: "Not Implemented"
        case 502: "Bad Gateway"
        case 503: "Service Unavailable"
        case 504: "Gateway Timeout"
        case 505: "HTTP Version Not Supported"
        case 100..<200: "Informational"
        case 200..<300: "Success"
        case 300..<400: "Redirection"
        case 400..<500: "Client Error"
        default: "Server Error"
        }
    }
}
