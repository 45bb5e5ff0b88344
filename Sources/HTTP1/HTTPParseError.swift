// HTTPParseError: why a request was refused, and the status code to answer with.

/// A request the parser refuses. `status` is the response the server should send before
/// closing the connection (after a framing error the byte stream cannot be trusted, so the
/// connection must not be reused, RFC 9112 §6.3 and §9.6).
public struct HTTPParseError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The class of failure; each maps to exactly one status code in `status`.
    enum Kind: Sendable, Equatable {
        case badRequest            // 400, RFC 9110 §15.5.1
        case contentTooLarge       // 413, RFC 9110 §15.5.14
        case uriTooLong            // 414, RFC 9110 §15.5.15
        case headerFieldsTooLarge  // 431, RFC 6585 §5
        case notImplemented        // 501, RFC 9110 §15.6.2 (unknown transfer coding, RFC 9112 §6.1)
        case versionNotSupported   // 505, RFC 9110 §15.6.6
    }

    let kind: Kind
    /// A short human-readable reason, safe to put in a response body (it never echoes input).
    public var message: String

    init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    /// The HTTP status code to answer with: 400, 413, 414, 431, 501 or 505.
    public var status: Int {
        switch kind {
        case .badRequest: 400
        case .contentTooLarge: 413
        case .uriTooLong: 414
        case .headerFieldsTooLarge: 431
        case .notImplemented: 501
        case .versionNotSupported: 505
        }
    }

    public var description: String { "HTTP \(status): \(message)" }

    static func badRequest(_ message: String) -> HTTPParseError { .init(.badRequest, message) }
    static func tooLarge(_ message: String) -> HTTPParseError { .init(.contentTooLarge, message) }
    static func uriTooLong(_ message: String) -> HTTPParseError { .init(.uriTooLong, message) }
    static func headersTooLarge(_ message: String) -> HTTPParseError { .init(.headerFieldsTooLarge, message) }
    static func notImplemented(_ message: String) -> HTTPParseError { .init(.notImplemented, message) }
    static func versionNotSupported(_ message: String) -> HTTPParseError { .init(.versionNotSupported, message) }
}
