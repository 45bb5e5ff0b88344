// AnthropicResponse: reads the text of a non-streaming Messages API response, or its error.
import Protocol

/// An error reported by the Messages API (`{"type":"error","error":{"type","message"}}`) or an unreadable body.
public struct AnthropicError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The API's error type (e.g. "overloaded_error", "invalid_request_error"), or "invalid_response".
    public let type: String
    /// The API's message.
    public let message: String

    public init(type: String, message: String) {
        self.type = type
        self.message = message
    }

    /// Overload and rate-limit errors are worth retrying later; others are not.
    public var isRetryable: Bool { type == "overloaded_error" || type == "rate_limit_error" || type == "api_error" }

    public var description: String { "\(type): \(message)" }
}

/// Helpers for non-streaming responses.
public enum AnthropicResponse {
    /// The concatenated `text` blocks of a Messages API response body.
    public static func text(fromNonStreamingBody body: [UInt8]) throws(AnthropicError) -> String {
        let json: JSONValue
        do { json = try JSONValue.parse(body, limits: .pipeline) } catch {
            throw AnthropicError(type: "invalid_response", message: "response body is not JSON: \(error.description)")
        }
        if json["type"]?.stringValue == "error" {
            throw AnthropicError(
                type: json["error"]?["type"]?.stringValue ?? "error", message: json["error"]?["message"]?.stringValue ?? "unknown error")
        }
        guard let blocks = json["content"]?.arrayValue else {
            throw AnthropicError(type: "invalid_response", message: "response has no content array")
        }
        return blocks.compactMap { $0["type"]?.stringValue == "text" ? $0["text"]?.stringValue : nil }.joined()
    }
}
