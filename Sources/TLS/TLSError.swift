// TLSError: what went wrong in OpenSSL, which call failed, and OpenSSL's own reason text.
internal import COpenSSL

/// An error from the TLS layer: a coarse `code` to branch on, the OpenSSL call that failed, and
/// the text of OpenSSL's (thread-local) error queue at the time, e.g.
/// `error:0A000086:SSL routines::certificate verify failed`.
public struct TLSError: Error, Sendable, CustomStringConvertible {
    /// The kind of failure; compare against the static members (`error.code == .handshake`).
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Base: Hashable, Sendable {
            case configuration, engineSetup, handshake, certificateVerification, protocolFailure, closed
        }
        fileprivate let base: Base

        /// Building a context failed: unreadable certificate/key/CA file, key not matching, bad option.
        public static let configuration = Code(base: .configuration)
        /// Creating the per-connection SSL object or its BIOs failed (out of memory, bad server name).
        public static let engineSetup = Code(base: .engineSetup)
        /// The handshake failed: garbage bytes, no common protocol version or cipher, a fatal alert.
        public static let handshake = Code(base: .handshake)
        /// This side rejected the peer's certificate chain or name (see `verificationResult`).
        public static let certificateVerification = Code(base: .certificateVerification)
        /// A record-layer failure after the handshake (bad MAC, fatal alert, unexpected message).
        public static let protocolFailure = Code(base: .protocolFailure)
        /// The engine was shut down or closed and cannot take more plaintext.
        public static let closed = Code(base: .closed)

        public var description: String {
            switch base {
            case .configuration: "configuration"
            case .engineSetup: "engine setup"
            case .handshake: "handshake"
            case .certificateVerification: "certificate verification"
            case .protocolFailure: "protocol failure"
            case .closed: "closed"
            }
        }
    }

    /// What kind of failure this is.
    public let code: Code
    /// The OpenSSL call (with its interesting argument, e.g. a file path) that failed.
    public let operation: String
    /// OpenSSL's error queue, oldest first, as `ERR_error_string_n` renders it. May be empty.
    public let openSSLErrors: [String]
    /// For certificate failures, `X509_verify_cert_error_string` of the verify result
    /// (e.g. "self-signed certificate"); otherwise nil.
    public let verificationResult: String?

    public var description: String {
        var text = "TLS \(code) error in \(operation)"
        if !openSSLErrors.isEmpty { text += ": " + openSSLErrors.joined(separator: "; ") }
        if let verificationResult { text += " (certificate: \(verificationResult))" }
        return text
    }

    init(_ code: Code, operation: String, openSSLErrors: [String], verificationResult: String? = nil) {
        self.code = code
        self.operation = operation
        self.openSSLErrors = openSSLErrors
        self.verificationResult = verificationResult
    }

    /// Builds an error and empties OpenSSL's thread-local error queue into it, so the next call
    /// on this thread starts clean (a stale entry would make `SSL_get_error` lie).
    static func drainingQueue(_ code: Code, operation: String, verificationResult: String? = nil) -> TLSError {
        TLSError(code, operation: operation, openSSLErrors: takeErrorQueue(), verificationResult: verificationResult)
    }

    /// Pops every entry of OpenSSL's error queue on this thread, rendered as text.
    static func takeErrorQueue() -> [String] {
        var messages: [String] = []
        while true {
            let packed = ERR_get_error()
            if packed == 0 { break }
            // 256 bytes is ample: OpenSSL documents a 120-byte minimum for ERR_error_string.
            let text = withUnsafeTemporaryAllocation(of: CChar.self, capacity: 256) { buffer -> String in
                ERR_error_string_n(packed, buffer.baseAddress, buffer.count)
                return String(cString: buffer.baseAddress!)
            }
            messages.append(text)
        }
        return messages
    }
}
