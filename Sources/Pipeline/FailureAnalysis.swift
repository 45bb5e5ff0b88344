// FailureAnalysis: the structured result of reading a failed run's output (contract event `analysis`).
public import Protocol

/// A position in a repository file.
public struct SourceLocation: Sendable, Codable, Hashable {
    /// Repository-relative path.
    public var file: String
    /// 1-based line number.
    public var line: Int

    public init(file: String, line: Int) {
        self.file = file
        self.line = line
    }

    /// Wire form `{file, line}`.
    public var json: JSONValue { .object(["file": .string(file), "line": .integer(line)]) }
}

/// What went wrong in a test run: the primary category, all categories seen, one root-cause sentence,
/// the repository locations involved and the distinct error lines.
/// Part of what is stored (proposal documents, revision rows), through its synthesized `Codable`: a field
/// added later must be optional, or stored documents stop loading (the `StoredRecordTests` fixtures catch it).
public struct FailureAnalysis: Sendable, Codable, Hashable {
    /// The category that most likely explains the failure.
    public var category: FailureCategory
    /// Every category seen, primary first, without duplicates.
    public var categories: [FailureCategory]
    /// One sentence naming the cause, including the specific error message.
    public var rootCause: String
    /// Repository locations, most relevant first, deduplicated and bounded.
    public var locations: [SourceLocation]
    /// The distinct error lines, bounded.
    public var messages: [String]

    public init(
        category: FailureCategory, categories: [FailureCategory], rootCause: String, locations: [SourceLocation],
        messages: [String]
    ) {
        self.category = category
        self.categories = categories
        self.rootCause = rootCause
        self.locations = locations
        self.messages = messages
    }
}
