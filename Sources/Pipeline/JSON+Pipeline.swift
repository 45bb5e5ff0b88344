// JSON+Pipeline: what the pipeline needs beyond Protocol's JSON model (it reads LLM replies, Anthropic
// responses and scripts with it, and writes event data and request bodies).
import Protocol

extension JSONParseLimits {
    /// For what the pipeline parses: a fix reply or script may carry whole files (the fix validator
    /// bounds them again), so more than the wire's 1 MiB; the depth stays bounded.
    static let pipeline = JSONParseLimits(maxBytes: 64 << 20, maxDepth: 64)
}

extension JSONValue {
    /// `.int` from a Swift `Int` (counts, revisions, durations).
    static func integer(_ value: Int) -> JSONValue { .int(Int64(value)) }

    /// The integer payload as a Swift `Int` (indices, token counts).
    var integerValue: Int? { intValue.map { Int(truncatingIfNeeded: $0) } }

    /// A short name of the value's type, for error messages ("string", "number" …).
    var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "boolean"
        case .int, .number: "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }
}
