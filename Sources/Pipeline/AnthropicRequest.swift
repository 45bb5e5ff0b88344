// AnthropicRequest: builds the Messages API request (path, headers, JSON body) for a fix prompt.
import Protocol

/// Request pieces for `POST /v1/messages`. The HTTP client executor sends them; nothing here does I/O.
public enum AnthropicRequest {
    /// Request path.
    public static let path = "/v1/messages"
    /// The API version header value this body format follows.
    public static let version = "2023-06-01"

    /// The JSON body: `{model, max_tokens, system, messages: [{role: "user", content}], stream}`.
    public static func body(model: String, system: String, user: String, maxTokens: Int, stream: Bool) -> [UInt8] {
        body(model: model, system: system, messages: [(role: "user", content: user)], maxTokens: maxTokens, stream: stream)
    }

    /// The JSON body for a multi-turn conversation, e.g. the one re-ask after a malformed reply:
    /// `[("user", prompt), ("assistant", badReply), ("user", FixPrompt.retryMessage(error:))]`.
    public static func body(
        model: String, system: String, messages: [(role: String, content: String)], maxTokens: Int, stream: Bool
    ) -> [UInt8] {
        JSONValue.object([
            "model": .string(model),
            "max_tokens": .integer(maxTokens),
            "system": .string(system),
            "messages": .array(messages.map { .object(["role": .string($0.role), "content": .string($0.content)]) }),
            "stream": .bool(stream),
        ]).bytes
    }

    /// Headers to send with the body.
    public static func headers(apiKey: String) -> [(name: String, value: String)] {
        [("x-api-key", apiKey), ("anthropic-version", version), ("content-type", "application/json")]
    }
}
