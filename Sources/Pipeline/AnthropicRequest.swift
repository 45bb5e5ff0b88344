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

    /// The JSON body of a general request: system, turns of text / tool_use / tool_result blocks, and tools
    /// (`{name, description, input_schema}`), per the Messages API.
    public static func body(model: String, request: ModelRequest, defaultMaxTokens: Int, stream: Bool) -> [UInt8] {
        var object: JSONObject = [
            "model": .string(model),
            "max_tokens": .integer(request.maxTokens ?? defaultMaxTokens),
            "system": .string(request.system),
            "messages": .array(request.messages.map { message in
                .object(["role": .string(message.role.rawValue), "content": .array(message.content.map(block))])
            }),
            "stream": .bool(stream),
        ]
        if !request.tools.isEmpty {
            object["tools"] = .array(request.tools.map { tool in
                .object(["name": .string(tool.name), "description": .string(tool.description), "input_schema": tool.inputSchema])
            })
        }
        return JSONValue.object(object).bytes
    }

    private static func block(_ content: ModelContent) -> JSONValue {
        switch content {
        case .text(let text): .object(["type": .string("text"), "text": .string(text)])
        case .toolUse(let id, let name, let input):
            .object(["type": .string("tool_use"), "id": .string(id), "name": .string(name), "input": input])
        case .toolResult(let id, let content, let isError):
            .object(["type": .string("tool_result"), "tool_use_id": .string(id), "content": .string(content), "is_error": .bool(isError)])
        }
    }

    /// Headers to send with the body.
    public static func headers(apiKey: String) -> [(name: String, value: String)] {
        [("x-api-key", apiKey), ("anthropic-version", version), ("content-type", "application/json")]
    }
}
