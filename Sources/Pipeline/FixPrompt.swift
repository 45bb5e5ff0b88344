// FixPrompt: builds the system and user prompts that ask the LLM for a JSON fix, within a byte budget.
public import Protocol

/// One earlier fix attempt, shown to the LLM so it does not repeat itself.
/// Part of what is stored (proposal documents, revision rows), through its synthesized `Codable`: a field
/// added later must be optional, or stored documents stop loading (the `StoredRecordTests` fixtures catch it).
public struct AttemptRecord: Sendable, Hashable, Codable {
    /// Fix attempt number (1-based).
    public var number: Int
    /// The patch the attempt proposed (as the LLM returned it).
    public var changes: [FileChange]
    /// The LLM's explanation for it.
    public var explanation: String
    /// How the attempt's revision fared, once tested.
    public var testResult: TestResult?
    /// Its failure analysis, if it failed.
    public var analysis: FailureAnalysis?

    public init(number: Int, changes: [FileChange], explanation: String, testResult: TestResult? = nil, analysis: FailureAnalysis? = nil) {
        self.number = number
        self.changes = changes
        self.explanation = explanation
        self.testResult = testResult
        self.analysis = analysis
    }
}

/// Bounds on prompt size. Every limit has a documented default.
public struct PromptBudget: Sendable, Hashable {
    /// Bytes of one file's content shown (default 24 KiB); longer files are cut with a marker.
    public var maxFileBytes: Int
    /// Bytes of all file contents shown (default 96 KiB); files past it are listed by path only.
    public var maxTotalFileBytes: Int
    /// Bytes of test output shown, from its end (default 8 KiB).
    public var maxOutputBytes: Int
    /// Bytes of one earlier attempt's file content shown (default 2 KiB).
    public var maxAttemptFileBytes: Int
    /// Bytes of the proposal description and of each reviewer comment (default 4 KiB).
    public var maxTextBytes: Int

    public init(
        maxFileBytes: Int = 24 << 10, maxTotalFileBytes: Int = 96 << 10, maxOutputBytes: Int = 8 << 10,
        maxAttemptFileBytes: Int = 2 << 10, maxTextBytes: Int = 4 << 10
    ) {
        self.maxFileBytes = maxFileBytes
        self.maxTotalFileBytes = maxTotalFileBytes
        self.maxOutputBytes = maxOutputBytes
        self.maxAttemptFileBytes = maxAttemptFileBytes
        self.maxTextBytes = maxTextBytes
    }
}

/// Builds fix prompts. The reply format is strict JSON so `FixReply.parse` can check every field.
public enum FixPrompt {
    /// The system prompt: role, rules and the exact reply schema.
    public static func system(maxAttempts: Int) -> String {
        """
        You are Medic, an automated repair engineer. A proposed change to a repository fails its tests. \
        Find the root cause and return a corrected patch. You have at most \(maxAttempts) attempts in total.

        Reply with exactly one JSON object and nothing else:
        {"unfixable": false, "explanation": "<what went wrong and what you changed>", \
        "changes": [{"path": "<repository-relative path>", "action": "create" | "modify" | "delete", \
        "content": "<the complete new file content>"}]}

        Rules:
        - "content" is the whole file after your change, not a diff; omit it for "delete".
        - Paths are relative to the repository root: no leading "/", no "..", nothing under ".git/".
        - Change only what the fix needs; keep the author's intent.
        - Do not weaken, skip or delete tests to make them pass.
        - If the failure cannot be fixed by editing repository files (a missing system package, no network, \
        an impossible requirement), reply {"unfixable": true, "explanation": "<why>", "changes": []}.
        """
    }

    /// Builds `(system, user)` for one fix attempt.
    /// - Parameters:
    ///   - relevantFiles: current contents of the files involved (the caller picks them, e.g. the analysis
    ///     locations and the patch's files); shown in order within `budget`.
    ///   - attempts: earlier attempts, oldest first.
    ///   - reviewerComments: request_changes comments, oldest first.
    ///   - testOutput: the end of the failing run's output, if any.
    ///   - fileNotes: one line per relevant file whose content is not shown and why (e.g. "app/x.py is a
    ///     symbolic link (not followed)"), listed after the files.
    public static func build(
        title: String, description: String, analysis: FailureAnalysis?, relevantFiles: [(path: String, content: String)],
        attempts: [AttemptRecord], reviewerComments: [String], maxAttempts: Int, attempt: Int? = nil,
        testOutput: String? = nil, fileNotes: [String] = [], budget: PromptBudget = PromptBudget()
    ) -> (system: String, user: String) {
        var u = "# Proposal\nTitle: \(title)\n\n\(prefix(description, budget.maxTextBytes))\n"
        if let attempt { u += "\nThis is fix attempt \(attempt) of \(maxAttempts).\n" }
        if let analysis {
            u += "\n# Failure analysis\nCategory: \(analysis.category.rawValue)"
            if analysis.categories.count > 1 { u += " (also: \(analysis.categories.dropFirst().map(\.rawValue).joined(separator: ", ")))" }
            u += "\nRoot cause: \(analysis.rootCause)\n"
            if !analysis.locations.isEmpty {
                u += "Locations: " + analysis.locations.map { "\($0.file):\($0.line)" }.joined(separator: ", ") + "\n"
            }
            if !analysis.messages.isEmpty { u += "Error messages:\n" + analysis.messages.map { "- \($0)" }.joined(separator: "\n") + "\n" }
        }
        if let testOutput, !testOutput.isEmpty {
            u += "\n# Test output (last part)\n```\n\(suffix(testOutput, budget.maxOutputBytes))\n```\n"
        }
        if !reviewerComments.isEmpty {
            u += "\n# Reviewer requests (address these)\n"
            u += reviewerComments.map { "- " + prefix($0, budget.maxTextBytes) }.joined(separator: "\n") + "\n"
        }
        if !attempts.isEmpty {
            u += "\n# Earlier attempts (do not repeat what failed)\n"
            for a in attempts {
                u += "\n## Attempt \(a.number)\nExplanation: \(prefix(a.explanation, budget.maxTextBytes))\n"
                u += "Files: " + a.changes.map { "\($0.action.rawValue) \($0.path)" }.joined(separator: ", ") + "\n"
                for change in a.changes {
                    if let content = change.content {
                        u += "```\(change.path)\n\(fenced(prefix(content, budget.maxAttemptFileBytes)))```\n"
                    }
                }
                if let r = a.testResult {
                    u += "Result: exit code \(r.exitCode)\(r.timedOut ? ", timed out" : "")"
                    if let f = r.failed { u += ", \(f) failed" }
                    u += "\n"
                }
                if let an = a.analysis { u += "Failure: \(an.category.rawValue): \(an.rootCause)\n" }
            }
        }
        if !relevantFiles.isEmpty {
            u += "\n# Current files\n"
            var used = 0
            var omitted: [String] = []
            for file in relevantFiles {
                let room = min(budget.maxFileBytes, budget.maxTotalFileBytes - used)
                guard room > 0 else { omitted.append(file.path); continue }
                used += min(room, file.content.utf8.count)
                u += "\n```\(file.path)\n\(fenced(prefix(file.content, room)))```\n"
            }
            if !omitted.isEmpty { u += "\n(Not shown for space: \(omitted.joined(separator: ", ")))\n" }
        }
        if !fileNotes.isEmpty {
            u += "\n# Files not shown\n" + fileNotes.map { "- " + prefix($0, budget.maxTextBytes) }.joined(separator: "\n") + "\n"
        }
        u += "\nReply with the JSON object only."
        return (system(maxAttempts: maxAttempts), u)
    }

    /// Builds the prompt from a machine's `FixContext`.
    public static func build(
        context: FixContext, relevantFiles: [(path: String, content: String)], fileNotes: [String] = [],
        budget: PromptBudget = PromptBudget()
    ) -> (system: String, user: String) {
        build(
            title: context.title, description: context.description, analysis: context.analysis, relevantFiles: relevantFiles,
            attempts: context.attempts, reviewerComments: context.reviewerComments, maxAttempts: context.maxAttempts,
            attempt: context.attempt, testOutput: context.testOutput, fileNotes: fileNotes, budget: budget)
    }

    /// The re-ask sent once after a malformed reply.
    public static func retryMessage(error: FixReplyError) -> String {
        "Your previous reply was refused: \(error.description). Reply again with exactly one JSON object in the required format."
    }

    /// Text ending in exactly one newline, so the closing fence sits on its own line.
    static func fenced(_ s: String) -> String { s.hasSuffix("\n") ? s : s + "\n" }

    /// At most `limit` UTF-8 bytes from the start, cut on a character boundary, with a marker when cut.
    static func prefix(_ s: String, _ limit: Int) -> String {
        guard s.utf8.count > limit else { return s }
        var out = ""
        var used = 0
        for ch in s {
            let n = ch.utf8.count
            if used + n > limit { break }
            out.append(ch)
            used += n
        }
        return out + "\n… [truncated: \(s.utf8.count - used) more bytes]"
    }

    /// At most `limit` UTF-8 bytes from the end, cut on a character boundary, with a marker when cut.
    static func suffix(_ s: String, _ limit: Int) -> String {
        guard s.utf8.count > limit else { return s }
        var kept: [Character] = []
        var used = 0
        for ch in s.reversed() {
            let n = ch.utf8.count
            if used + n > limit { break }
            kept.append(ch)
            used += n
        }
        return "[truncated: \(s.utf8.count - used) earlier bytes] …\n" + String(kept.reversed())
    }
}
