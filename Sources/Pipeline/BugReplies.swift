// BugReplies: the bug workflow's data (report, analysis, reproducer) and the strict parsers of the model's
// answers for it. Every reply is untrusted (DESIGN invariant 6): type-checked, bounded, paths validated.
public import Protocol

/// How bad a reported bug is (`report_bug.severity`).
public enum BugSeverity: String, Sendable, Hashable, Codable, CaseIterable {
    case low, medium, high, critical
}

/// What was reported: the bug's fixed data, as stored and shown.
public struct BugReport: Sendable, Hashable, Codable {
    public var id: String
    public var repo: String
    public var title: String
    public var description: String
    public var severity: BugSeverity
    /// Pasted logs or stack traces.
    public var evidence: [String]
    /// How many fix approaches to try.
    public var approaches: Int
    /// The reporting principal.
    public var author: String
    /// Suite runs per approach (and for the base) when comparing durations: the median counts (nil: 1, the
    /// approach's own passing run).
    public var perfRuns: Int?

    public var runs: Int { perfRuns ?? 1 }

    public init(
        id: String, repo: String, title: String, description: String, severity: BugSeverity, evidence: [String], approaches: Int, author: String,
        perfRuns: Int? = nil
    ) {
        self.id = id
        self.repo = repo
        self.title = title
        self.description = description
        self.severity = severity
        self.evidence = evidence
        self.approaches = approaches
        self.author = author
        self.perfRuns = perfRuns
    }

    /// The limits of a report (protocol/README.md, "Bug reports").
    public enum Limits {
        public static let titleCharacters = 200
        public static let descriptionCharacters = 20_000
        public static let evidenceItems = 20
        public static let evidenceItemBytes = 64 << 10
        public static let evidenceTotalBytes = 256 << 10
        public static let maxApproaches = 5
        public static let maxPerfRuns = 5
    }

    public var json: JSONValue {
        .object([
            "id": .string(id), "repo": .string(repo), "title": .string(title), "description": .string(description),
            "severity": .string(severity.rawValue), "evidence": .array(evidence.map { .string($0) }),
            "approaches": .integer(approaches), "author": .string(author), "perf_runs": .integer(runs),
        ])
    }
}

/// A place the analysis suspects, with the model's reason.
public struct SuspectedLocation: Sendable, Hashable, Codable {
    public var file: String
    public var line: Int
    public var why: String

    public init(file: String, line: Int, why: String) {
        self.file = file
        self.line = line
        self.why = why
    }
}

/// The analysis of a bug report (event `bug_analysis`).
public struct BugAnalysis: Sendable, Hashable, Codable {
    public var summary: String
    public var locations: [SuspectedLocation]
    public var causes: [String]
    /// What the code navigator located from the report before the model was asked (repository paths).
    public var located: [String]

    public init(summary: String, locations: [SuspectedLocation], causes: [String], located: [String]) {
        self.summary = summary
        self.locations = locations
        self.causes = causes
        self.located = located
    }

    /// The suspected files, deduplicated, in order.
    public var suspectedFiles: [String] {
        var out: [String] = []
        for file in locations.map(\.file) + located where !out.contains(file) { out.append(file) }
        return out
    }

    public var json: JSONValue {
        .object([
            "summary": .string(summary),
            "locations": .array(locations.map { .object(["file": .string($0.file), "line": .integer($0.line), "why": .string($0.why)]) }),
            "causes": .array(causes.map { .string($0) }), "located": .array(located.map { .string($0) }),
        ])
    }
}

/// A test written to reproduce the bug: one new file.
public struct Reproducer: Sendable, Hashable, Codable {
    public var path: String
    public var content: String
    public var explanation: String

    public init(path: String, content: String, explanation: String) {
        self.path = path
        self.content = content
        self.explanation = explanation
    }

    public var change: FileChange { FileChange(path: path, action: .create, content: content) }
}

/// Why a bug-workflow reply was refused (a sentence for events and the re-ask).
public struct BugReplyError: Error, Sendable, Hashable, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}

/// The parsers of the bug workflow's model replies. The fix-format replies (approaches, fix attempts) use
/// `FixReply.parse`.
public enum BugReplies {
    static let maxText = 4_000
    static let maxLocations = 20

    /// `{"summary", "locations": [{"file", "line", "why"}], "causes": [string]}`. Locations must be relative
    /// repository paths (the same rule as patches); at most 20 are kept.
    public static func analysis(_ text: String, located: [String]) throws(BugReplyError) -> BugAnalysis {
        let object = try object(text)
        let summary = try string(object, "summary")
        guard let items = object["locations"]?.arrayValue else { throw BugReplyError("\"locations\" must be an array") }
        var locations: [SuspectedLocation] = []
        for (i, item) in items.prefix(maxLocations).enumerated() {
            guard let o = item.objectValue, let file = o["file"]?.stringValue else {
                throw BugReplyError("locations[\(i)] needs a string \"file\"")
            }
            guard PatchValidator.pathError(file) == nil else { throw BugReplyError("locations[\(i)].file is not a repository path: \(clip(file))") }
            let line = o["line"]?.intValue.map(Int.init) ?? 1
            locations.append(SuspectedLocation(file: file, line: max(1, min(line, 10_000_000)), why: clip(o["why"]?.stringValue ?? "")))
        }
        guard let causeValues = object["causes"]?.arrayValue else { throw BugReplyError("\"causes\" must be an array") }
        let causes = causeValues.prefix(maxLocations).compactMap { $0.stringValue.map(clip) }
        return BugAnalysis(summary: clip(summary), locations: locations, causes: causes, located: located)
    }

    /// `{"path", "content", "explanation"}`: one new test file, validated like a patch of one `create`.
    public static func reproducer(_ text: String, limits: PatchLimits = PatchLimits()) throws(BugReplyError) -> Reproducer {
        let object = try object(text)
        let path = try string(object, "path")
        let content = try string(object, "content")
        let explanation = try string(object, "explanation")
        switch PatchValidator.validate([FileChange(path: path, action: .create, content: content)], limits: limits) {
        case .success: break
        case .failure(let error): throw BugReplyError("the reproducer was refused: \(error.description)")
        }
        return Reproducer(path: path, content: content, explanation: clip(explanation))
    }

    private static func object(_ text: String) throws(BugReplyError) -> JSONObject {
        guard let inner = FixReply.extractObject(text) else { throw BugReplyError("the reply holds no JSON object") }
        let value: JSONValue
        do { value = try JSONValue.parse(inner, limits: .pipeline) } catch { throw BugReplyError("the reply is not valid JSON: \(error.description)") }
        guard let object = value.objectValue else { throw BugReplyError("the reply is not a JSON object") }
        return object
    }

    private static func string(_ object: JSONObject, _ key: String) throws(BugReplyError) -> String {
        guard let value = object[key] else { throw BugReplyError("\"\(key)\" is missing") }
        guard let s = value.stringValue else { throw BugReplyError("\"\(key)\" must be a string, not \(value.typeName)") }
        return s
    }

    static func clip(_ s: String) -> String { s.utf8.count <= maxText ? s : String(s.prefix(maxText)) + "…" }

    /// The first line of an explanation (an approach's one-line summary), at most 200 characters.
    public static func summaryLine(_ explanation: String) -> String {
        let line = explanation.split(separator: "\n", omittingEmptySubsequences: true).first.map(String.init) ?? ""
        return line.count <= 200 ? line : String(line.prefix(200)) + "…"
    }
}

/// Changed-line counts of a patch against the files it changes.
public enum LineDiff {
    /// Lines removed + lines added between `old` and `new` (a longest-common-subsequence diff; above
    /// `maxCells` line pairs, the common prefix and suffix are dropped and the rest counted as replaced).
    public static func changedLines(old: String, new: String, maxCells: Int = 4_000_000) -> Int {
        var a = (old.isEmpty ? [] : old.split(separator: "\n", omittingEmptySubsequences: false))[...]
        var b = (new.isEmpty ? [] : new.split(separator: "\n", omittingEmptySubsequences: false))[...]
        while let x = a.first, let y = b.first, x == y { a = a.dropFirst(); b = b.dropFirst() }
        while let x = a.last, let y = b.last, x == y { a = a.dropLast(); b = b.dropLast() }
        guard !a.isEmpty, !b.isEmpty else { return a.count + b.count }
        guard a.count * b.count <= maxCells else { return a.count + b.count }
        let x = Array(a), y = Array(b)
        var previous = [Int](repeating: 0, count: y.count + 1)
        var current = previous
        for i in 1...x.count {
            for j in 1...y.count {
                current[j] = x[i - 1] == y[j - 1] ? previous[j - 1] + 1 : max(previous[j], current[j - 1])
            }
            swap(&previous, &current)
        }
        let common = previous[y.count]
        return (x.count - common) + (y.count - common)
    }

    /// Files and changed lines of `changes` against `base` (path → content; a missing path is a new file).
    public static func figures(_ changes: [FileChange], base: [String: String]) -> (files: Int, lines: Int) {
        var lines = 0
        for change in changes {
            let old = base[change.path] ?? ""
            switch change.action {
            case .create, .modify: lines += changedLines(old: old, new: change.content ?? "")
            case .delete: lines += old.isEmpty ? 0 : old.split(separator: "\n", omittingEmptySubsequences: false).count
            }
        }
        return (changes.count, lines)
    }
}
