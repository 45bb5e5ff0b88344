// AnthropicStream: turns the Messages API's server-sent events into text deltas, stop and error signals.
import Protocol

/// What a streamed Messages API response means for the fix loop.
public enum AnthropicStreamEvent: Sendable, Hashable {
    /// More reply text (`content_block_delta` with a `text_delta`).
    case textDelta(String)
    /// The reply is complete (`message_stop`).
    case messageStop
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

    public init(parser: SSEParser = SSEParser()) { self.parser = parser }

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
        case "content_block_delta":
            guard let json = try? JSONValue.parse(event.data, limits: .pipeline) else {
                return [.error(type: "invalid_stream", message: "content_block_delta data is not JSON")]
            }
            guard let delta = json["delta"], delta["type"]?.stringValue == "text_delta" else { return [] }
            guard let piece = delta["text"]?.stringValue else {
                return [.error(type: "invalid_stream", message: "text_delta without text")]
            }
            text += piece
            return [.textDelta(piece)]
        case "message_delta":
            if let reason = (try? JSONValue.parse(event.data, limits: .pipeline))?["delta"]?["stop_reason"]?.stringValue { stopReason = reason }
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
