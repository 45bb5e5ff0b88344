// ModelConversation: what any caller says to a language model and what it answers — system prompt, turns of
// text / tool use / tool results, tool definitions, streamed deltas, usage. The fix loop is one caller; the
// coming bug analysis and plain-language questions (with tools) are others. Pure values: the host's
// `LanguageModel` executor sends them (Anthropic Messages API, or a scripted conversation offline).
public import Protocol

/// Who speaks a turn.
public enum ModelRole: String, Sendable, Hashable {
    case user
    case assistant
}

/// One block of a turn (Messages API content blocks).
public enum ModelContent: Sendable, Equatable {
    case text(String)
    /// The model asks to run a tool: `input` is the JSON object it wrote (never trusted: validate before use).
    case toolUse(id: String, name: String, input: JSONValue)
    /// The caller's answer to a `toolUse`, in the next user turn.
    case toolResult(toolUseID: String, content: String, isError: Bool)
}

/// One turn.
public struct ModelMessage: Sendable, Equatable {
    public var role: ModelRole
    public var content: [ModelContent]

    public init(role: ModelRole, content: [ModelContent]) {
        self.role = role
        self.content = content
    }

    /// A turn of plain text.
    public init(_ role: ModelRole, _ text: String) {
        self.init(role: role, content: [.text(text)])
    }
}

/// A tool the model may call: name, what it does, and the JSON Schema of its input.
public struct ModelTool: Sendable, Equatable {
    public var name: String
    public var description: String
    public var inputSchema: JSONValue

    public init(name: String, description: String, inputSchema: JSONValue) {
        self.name = name
        self.description = description
        self.inputSchema = inputSchema
    }
}

/// One request: everything the model sees.
public struct ModelRequest: Sendable, Equatable {
    public var system: String
    public var messages: [ModelMessage]
    public var tools: [ModelTool]
    /// Output token budget (nil: the executor's configured default).
    public var maxTokens: Int?
    /// What the request is for, e.g. `["purpose": "fix", "title": …, "attempt": "2"]`: logs, and the offline
    /// scripted model's lookup key. Never sent to the API.
    public var labels: [String: String]

    public init(system: String, messages: [ModelMessage], tools: [ModelTool] = [], maxTokens: Int? = nil, labels: [String: String] = [:]) {
        self.system = system
        self.messages = messages
        self.tools = tools
        self.maxTokens = maxTokens
        self.labels = labels
    }
}

/// Tokens spent by one request.
public struct ModelUsage: Sendable, Hashable {
    public var inputTokens: Int
    public var outputTokens: Int

    public init(inputTokens: Int = 0, outputTokens: Int = 0) {
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
    }
}

/// A complete answer.
public struct ModelResponse: Sendable, Equatable {
    public var content: [ModelContent]
    /// e.g. "end_turn", "tool_use", "max_tokens".
    public var stopReason: String?
    public var usage: ModelUsage

    public init(content: [ModelContent], stopReason: String? = nil, usage: ModelUsage = ModelUsage()) {
        self.content = content
        self.stopReason = stopReason
        self.usage = usage
    }

    /// The text blocks, joined.
    public var text: String {
        content.map { if case .text(let text) = $0 { text } else { "" } }.joined()
    }

    /// The tool calls, in order.
    public var toolUses: [(id: String, name: String, input: JSONValue)] {
        content.compactMap { if case .toolUse(let id, let name, let input) = $0 { (id, name, input) } else { nil } }
    }
}

/// Streamed progress of an answer.
public enum ModelDelta: Sendable, Hashable {
    /// More text of a text block.
    case text(String)
    /// The model started a tool call (its input follows as JSON pieces, complete in the response).
    case toolUseStarted(id: String, name: String)
}

/// Why a request produced no answer.
public struct ModelError: Error, Sendable, Hashable, CustomStringConvertible {
    public var description: String

    public init(_ description: String) { self.description = description }
}
