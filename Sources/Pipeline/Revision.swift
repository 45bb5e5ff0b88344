// Revision: one version of a proposal's patch together with what happened when it was tested.
public import Protocol

/// A numbered, full patch against the repository (revision 1 is the author's; each fix adds one).
/// Part of what is stored (proposal documents, revision rows), through its synthesized `Codable`: a field
/// added later must be optional, or stored documents stop loading (the `StoredRecordTests` fixtures catch it).
public struct Revision: Sendable, Codable, Hashable {
    /// 1-based revision number.
    public var number: Int
    /// The full patch (not a delta against the previous revision).
    public var changes: [FileChange]
    /// The LLM's explanation, for revisions produced by a fix.
    public var explanation: String?
    /// The failure analysis of this revision's test run, if it failed.
    public var analysis: FailureAnalysis?
    /// This revision's test result, once tested.
    public var testResult: TestResult?
    /// The fix attempt that produced this revision (nil for the author's revision 1).
    public var attempt: Int?
    /// The repository commit its sandbox was copied from (what its diffs and its commit are against).
    public var baseCommit: String?

    public init(
        number: Int, changes: [FileChange], explanation: String? = nil, analysis: FailureAnalysis? = nil,
        testResult: TestResult? = nil, attempt: Int? = nil
    ) {
        self.number = number
        self.changes = changes
        self.explanation = explanation
        self.analysis = analysis
        self.testResult = testResult
        self.attempt = attempt
    }
}
