// AnthropicStream: turns the Messages API's server-sent events into text deltas, stop and error signals.
import Protocol

/// What a streamed Messages API response means for the fix loop.
public enum AnthropicStreamEvent: Sendable, Hashable {
    /// More reply text (`content_block_delta` with a `text_delta`).
    case textDelta(String)
    /// The reply is complete (`message_stop`).
    case messageStop
    /// The model started a tool call (`content_block_start` of type `tool_use`); its input arrives as JSON
    /// pieces and is complete in `response` after its `content_block_stop`.
    case toolUseStarted(id: String, name: String)
    /// The API reported an error mid-stream (e.g. `overloaded_error`), or the stream itself was malformed
    /// (type `invalid_stream`).
    case error(type: String, message: String)
}

/// Incremental decoder for a streamed Messages API response: feed raw body bytes at any split.
public struct AnthropicStream: Sendable {
    private var parser: SSEParser
    /// All text received so far.
    public private(set) var text = ""
    /// True once `message_stop` was seen.
    public private(set) var finished = false
    /// The `stop_reason` from `message_delta`, if one was sent (e.g. "end_turn", "max_tokens").
    public private(set) var stopReason: String?

    /// Content blocks by index as they arrive (text, or a tool call with its input JSON so far).
    private var blocks: [Int: Block] = [:]
    /// Tokens reported by `message_start` (input) and `message_delta` (output).
    public private(set) var usage = ModelUsage()

    private enum Block {
        case text(String)
        case toolUse(id: String, name: String, json: String, input: JSONValue?)
    }

    public init(parser: SSEParser = SSEParser()) { self.parser = parser }

    /// The answer so far, blocks in index order (a tool call whose input has not completed has `{}`).
    public var response: ModelResponse {
        let content = blocks.keys.sorted().map { index -> ModelContent in
            switch blocks[index]! {
            case .text(let text): .text(text)
            case .toolUse(let id, let name, _, let input): .toolUse(id: id, name: name, input: input ?? .object([:]))
            }
        }
        return ModelResponse(content: content, stopReason: stopReason, usage: usage)
    }

    /// Consumes body bytes and returns the resulting events in order.
    public mutating func feed(_ bytes: some Sequence<UInt8>) -> [AnthropicStreamEvent] {
        do {
            return try parser.feed(bytes).flatMap { consume($0) }
        } catch {
            return [.error(type: "invalid_stream", message: error.description)]
        }
    }

    /// Interprets one SSE event. Unknown event types (`ping`, `message_start`, `content_block_start` …) yield nothing.
    public mutating func consume(_ event: SSEEvent) -> [AnthropicStreamEvent] {
        switch event.event {
        case "message_start":
            if let tokens = (try? JSONValue.parse(event.data, limits: .pipeline))?["message"]?["usage"] {
                usage.inputTokens = tokens["input_tokens"]?.integerValue ?? usage.inputTokens
                usage.outputTokens = tokens["output_tokens"]?.integerValue ?? usage.outputTokens
            }
            return []
        case "content_block_start":
            guard let json = try? JSONValue.parse(event.data, limits: .pipeline), let index = json["index"]?.integerValue,
                let block = json["content_block"]
            else {
                return [.error(type: "invalid_stream", message: "content_block_start without index or content_block")]
            }
            switch block["type"]?.stringValue {
            case "tool_use":
                guard let id = block["id"]?.stringValue, let name = block["name"]?.stringValue else {
                    return [.error(type: "invalid_stream", message: "tool_use block without id or name")]
                }
                blocks[index] = .toolUse(id: id, name: name, json: "", input: nil)
                return [.toolUseStarted(id: id, name: name)]
            case "text":
                blocks[index] = .text(block["text"]?.stringValue ?? "")
                return []
            default:
                return []  // thinking and future block types are not part of the answer
            }
        case "content_block_delta":
            guard let json = try? JSONValue.parse(event.data, limits: .pipeline) else {
                return [.error(type: "invalid_stream", message: "content_block_delta data is not JSON")]
            }
            let index = json["index"]?.integerValue ?? 0
            guard let delta = json["delta"] else { return [] }
            switch delta["type"]?.stringValue {
            case "text_delta":
                guard let piece = delta["text"]?.stringValue else {
                    return [.error(type: "invalid_stream", message: "text_delta without text")]
                }
                text += piece
                if case .toolUse = blocks[index] {
                    return [.error(type: "invalid_stream", message: "text_delta for tool_use block \(index)")]
                }
                if case .text(let sofar) = blocks[index] { blocks[index] = .text(sofar + piece) } else { blocks[index] = .text(piece) }
                return [.textDelta(piece)]
            case "input_json_delta":
                guard case .toolUse(let id, let name, let sofar, _) = blocks[index], let piece = delta["partial_json"]?.stringValue else {
                    return [.error(type: "invalid_stream", message: "input_json_delta without a tool_use block \(index)")]
                }
                blocks[index] = .toolUse(id: id, name: name, json: sofar + piece, input: nil)
                return []
            default:
                return []
            }
        case "content_block_stop":
            guard let index = (try? JSONValue.parse(event.data, limits: .pipeline))?["index"]?.integerValue,
                case .toolUse(let id, let name, let json, _) = blocks[index]
            else { return [] }
            // The tool's input is the model's output: parsed under the pipeline's limits, an object or nothing.
            let source = json.isEmpty ? "{}" : json
            guard let input = try? JSONValue.parse(Array(source.utf8), limits: .pipeline), case .object = input else {
                return [.error(type: "invalid_stream", message: "tool_use \(name) input is not a JSON object")]
            }
            blocks[index] = .toolUse(id: id, name: name, json: json, input: input)
            return []
        case "message_delta":
            let json = try? JSONValue.parse(event.data, limits: .pipeline)
            if let reason = json?["delta"]?["stop_reason"]?.stringValue { stopReason = reason }
            if let tokens = json?["usage"]?["output_tokens"]?.integerValue { usage.outputTokens = tokens }
            return []
        case "message_stop":
            finished = true
            return [.messageStop]
        case "error":
            let json = try? JSONValue.parse(event.data, limits: .pipeline)
            let type = json?["error"]?["type"]?.stringValue ?? "error"
            let message = json?["error"]?["message"]?.stringValue ?? event.data
            return [.error(type: type, message: message)]
        default:
            return []
        }
    }
}
