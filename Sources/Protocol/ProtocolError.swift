// ProtocolError: the wire's error codes, close codes and the error value sent in `error` frames.

/// Every `error.code` the server sends (protocol/README.md, "Error codes"). Names are fixed.
public enum ErrorCode: String, Sendable, CaseIterable, Hashable {
    case badJSON = "bad_json"
    case unknownType = "unknown_type"
    case invalidMessage = "invalid_message"
    case tooLarge = "too_large"
    case unauthenticated
    case forbidden
    case notFound = "not_found"
    case staleRevision = "stale_revision"
    case invalidState = "invalid_state"
    case alreadyReviewed = "already_reviewed"
    case sinceBeyondHead = "since_beyond_head"
    case storeUnavailable = "store_unavailable"
    case rateLimited = "rate_limited"
    case `internal`

    /// The HTTP status the REST API answers with for this code.
    public var httpStatus: Int {
        switch self {
        case .badJSON, .unknownType, .invalidMessage, .sinceBeyondHead: 400
        case .tooLarge: 413
        case .unauthenticated: 401
        case .forbidden: 403
        case .notFound: 404
        case .staleRevision, .invalidState, .alreadyReviewed: 409
        case .rateLimited: 429
        case .storeUnavailable: 503
        case .internal: 500
        }
    }
}

/// WebSocket close codes the server uses (RFC 6455 §7.4.1, plus 4001 from the private range §7.4.2).
public enum CloseCode: UInt16, Sendable, CaseIterable {
    case normal = 1000
    case goingAway = 1001
    case protocolError = 1002
    /// A text frame that is not valid UTF-8 (RFC 6455 §8.1).
    case invalidPayload = 1007
    /// Policy: the connection's outbound queue exceeded its limit. Reconnect and resume with `since`.
    case policyViolation = 1008
    case messageTooBig = 1009
    case internalError = 1011
    /// No or bad credentials, or no `hello` within the authentication timeout.
    case authenticationFailed = 4001
    /// The session's token was revoked or its principal's role changed: reconnect with a valid token
    /// (a changed role applies from the new session on).
    case credentialsChanged = 4003
}

/// A refusal sent to a client as `{"type":"error","id":…,"code":…,"message":…}`.
///
/// `message` is for humans; clients branch on `code`. `id` echoes the command's id when the
/// command carried one (and could be read).
public struct ProtocolError: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: ErrorCode
    public var message: String
    public var id: String?

    public init(code: ErrorCode, message: String, id: String? = nil) {
        self.code = code
        self.message = message
        self.id = id
    }

    public var description: String { "\(code.rawValue): \(message)" }

    /// `invalid_message` naming the field and what it must be: "field 'revision' must be an integer".
    static func field(_ name: String, must requirement: String, id: String?) -> ProtocolError {
        ProtocolError(code: .invalidMessage, message: "field '\(name)' must be \(requirement)", id: id)
    }

    static func missing(_ name: String, _ requirement: String, id: String?) -> ProtocolError {
        ProtocolError(code: .invalidMessage, message: "missing field '\(name)' (\(requirement))", id: id)
    }
}

extension ProtocolError {
    /// The REST error body: `{"error":{"code":…,"message":…}}` (send with `code.httpStatus`).
    public var restBody: [UInt8] {
        JSONValue.object(["error": ["code": .string(code.rawValue), "message": .string(message)]]).bytes
    }
}
