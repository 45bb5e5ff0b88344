// HTTPClientTypes: the values that cross the HTTP client's API — request, response head, error, transfer id.

/// One outbound request. Every limit is a field with a documented default.
public struct HTTPClientRequest: Sendable {
    /// `GET`, `POST`, `PUT`, `PATCH`, `DELETE`, `HEAD`, … (sent verbatim).
    public var method: String
    /// An absolute `http://` or `https://` URL; other schemes are refused by the transfer.
    public var url: String
    /// Request header fields in order. A field with an empty value is sent empty (not dropped).
    public var headers: [(String, String)]
    /// The request body (sent with `Content-Length`); empty for none.
    public var body: [UInt8]
    /// Whole transfer, connect to last body byte. Default 120 000 ms (LLM answers can be slow).
    public var timeoutMilliseconds: Int
    /// TCP + TLS connect phase only. Default 10 000 ms.
    public var connectTimeoutMilliseconds: Int
    /// Largest response body accepted before the transfer is aborted. Default 64 MiB.
    public var maxResponseBodyBytes: Int
    /// Largest response header block (all lines of the final response). Default 64 KiB.
    public var maxResponseHeaderBytes: Int

    public init(
        method: String = "GET", url: String, headers: [(String, String)] = [], body: [UInt8] = [],
        timeoutMilliseconds: Int = 120_000, connectTimeoutMilliseconds: Int = 10_000,
        maxResponseBodyBytes: Int = 64 << 20, maxResponseHeaderBytes: Int = 64 << 10
    ) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeoutMilliseconds = timeoutMilliseconds
        self.connectTimeoutMilliseconds = connectTimeoutMilliseconds
        self.maxResponseBodyBytes = maxResponseBodyBytes
        self.maxResponseHeaderBytes = maxResponseHeaderBytes
    }
}

/// The status line and header fields of the final (non-1xx) response.
public struct HTTPClientResponseHead: Sendable {
    public var status: Int
    /// Header fields in arrival order, names as sent by the server.
    public var headers: [(String, String)]

    public init(status: Int, headers: [(String, String)]) {
        self.status = status
        self.headers = headers
    }

    /// The first field named `name`, compared case-insensitively (RFC 9110 §5.1: field names are case-insensitive).
    public func header(_ name: String) -> String? {
        let wanted = name.lowercased()
        return headers.first { $0.0.lowercased() == wanted }?.1
    }
}

/// Names one transfer of one `HTTPClient`, for `cancel(_:)`.
public struct TransferID: Hashable, Sendable, CustomStringConvertible {
    public let raw: UInt64
    public var description: String { "transfer#\(raw)" }
}

/// A failed transfer: a coarse code to decide on (retry, report), curl's own error text, and context.
public struct HTTPClientError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure. A struct over a private enum so new kinds can be added without breaking callers' switches.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: Hashable, Sendable {
            case timeout, connect, tls, aborted, responseTooLarge, httpStatus, other
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The whole-transfer or connect timeout elapsed (curl's `CURLE_OPERATION_TIMEDOUT`).
        public static let timeout = Code(.timeout)
        /// Name resolution or TCP connect failed (nothing was sent).
        public static let connect = Code(.connect)
        /// TLS handshake or certificate verification failed.
        public static let tls = Code(.tls)
        /// Cancelled by `cancel(_:)` or `close()`.
        public static let aborted = Code(.aborted)
        /// The response exceeded `maxResponseBodyBytes` or `maxResponseHeaderBytes`.
        public static let responseTooLarge = Code(.responseTooLarge)
        /// Only from `executeWithRetry`: the server kept answering a retryable status until the policy gave up.
        public static let httpStatus = Code(.httpStatus)
        /// Anything else: connection reset or closed mid-body, protocol errors, …
        public static let other = Code(.other)

        public var description: String {
            switch base {
            case .timeout: "timeout"
            case .connect: "connect"
            case .tls: "tls"
            case .aborted: "aborted"
            case .responseTooLarge: "responseTooLarge"
            case .httpStatus: "httpStatus"
            case .other: "other"
            }
        }
    }

    public var code: Code
    /// curl's error buffer text (or ours, for codes curl does not produce).
    public var message: String
    /// curl's `CURLcode` number, 0 when the error did not come from curl.
    public var curlCode: Int
    /// The HTTP status, for `.httpStatus`.
    public var status: Int?

    public init(code: Code, message: String, curlCode: Int = 0, status: Int? = nil) {
        self.code = code
        self.message = message
        self.curlCode = curlCode
        self.status = status
    }

    public var description: String {
        var text = "HTTPClientError.\(code): \(message)"
        if curlCode != 0 { text += " (curl \(curlCode))" }
        return text
    }
}
