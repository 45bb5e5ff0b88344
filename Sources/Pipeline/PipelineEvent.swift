// PipelineEvent: the typed events a proposal publishes on `proposal:<id>`, with their contract kind and data.
public import Protocol

/// The facts a new proposal starts with. `createdAt` is supplied by the host (time is injected).
/// Part of what is stored (proposal documents, revision rows), through its synthesized `Codable`: a field
/// added later must be optional, or stored documents stop loading (the `StoredRecordTests` fixtures catch it).
public struct ProposalInfo: Sendable, Hashable, Codable {
    public var id: String
    public var title: String
    public var description: String
    public var repo: String
    /// The proposing principal; never counts as an approver.
    public var author: String
    /// Creation time as the host formats it for the wire.
    public var createdAt: String
    /// The bug report this proposal fixes (made by the bug workflow), if any.
    public var bug: String?

    public init(id: String, title: String, description: String, repo: String, author: String, createdAt: String, bug: String? = nil) {
        self.id = id
        self.title = title
        self.description = description
        self.repo = repo
        self.author = author
        self.createdAt = createdAt
        self.bug = bug
    }
}

/// A path the code under test can see in its sandbox (`sandbox_ready.visible`).
public struct SandboxPath: Sendable, Hashable {
    public var path: String
    public var writable: Bool

    public init(path: String, writable: Bool) {
        self.path = path
        self.writable = writable
    }
}

/// An event for topic `proposal:<id>`. `kind` and `data` follow the wire contract exactly. Executors publish
/// `test_started`, `test_output`, `fix_delta` and `comment` themselves (they hold that data); the machine publishes
/// the rest.
public enum PipelineEvent: Sendable, Hashable {
    case proposalCreated(ProposalInfo, status: ProposalStatus, revision: Revision, maxAttempts: Int)
    case statusChanged(ProposalStatus, revision: Int, attempt: Int, maxAttempts: Int, reason: String?)
    case sandboxReady(revision: Int, isolation: String, durationMs: Int, warning: String?, visible: [SandboxPath] = [], baseCommit: String? = nil)
    case testFinished(revision: Int, TestResult)
    case analysis(revision: Int, FailureAnalysis)
    case fixStarted(revision: Int, attempt: Int, maxAttempts: Int)
    case fixGenerated(attempt: Int, revision: Int, explanation: String, changes: [FileChange])
    case fixFailed(attempt: Int, reason: String)
    case unfixable(reason: String, explanation: String?)
    case review(revision: Int, principal: String, verdict: Verdict, comment: String?, approvals: [String], quorum: Int)
    case applied(revision: Int, commit: String, approvers: [String])
    case applyFailed(reason: String)
    case rolledBack(commit: String, revertCommit: String)

    /// The contract's event kind.
    public var kind: String {
        switch self {
        case .proposalCreated: "proposal_created"
        case .statusChanged: "status_changed"
        case .sandboxReady: "sandbox_ready"
        case .testFinished: "test_finished"
        case .analysis: "analysis"
        case .fixStarted: "fix_started"
        case .fixGenerated: "fix_generated"
        case .fixFailed: "fix_failed"
        case .unfixable: "unfixable"
        case .review: "review"
        case .applied: "applied"
        case .applyFailed: "apply_failed"
        case .rolledBack: "rolled_back"
        }
    }

    /// The contract's `data` object. Optional fields are omitted when absent, except `passed`/`failed`, which are null.
    public var data: JSONValue {
        switch self {
        case .proposalCreated(let p, let status, let revision, let maxAttempts):
            var proposal: JSONObject = [
                "id": .string(p.id), "title": .string(p.title), "description": .string(p.description),
                "repo": .string(p.repo), "author": .string(p.author), "status": .string(status.rawValue),
                "revision": .integer(revision.number), "max_attempts": .integer(maxAttempts), "created_at": .string(p.createdAt),
            ]
            if let bug = p.bug { proposal["bug"] = .string(bug) }
            return .object([
                "proposal": .object(proposal),
                "revision": .object(["number": .integer(revision.number), "changes": .array(revision.changes.map(\.json))]),
            ])
        case .statusChanged(let status, let revision, let attempt, let maxAttempts, let reason):
            var o: JSONObject = [
                "status": .string(status.rawValue), "revision": .integer(revision), "attempt": .integer(attempt),
                "max_attempts": .integer(maxAttempts),
            ]
            if let reason { o["reason"] = .string(reason) }
            return .object(o)
        case .sandboxReady(let revision, let isolation, let durationMs, let warning, let visible, let baseCommit):
            var o: JSONObject = ["revision": .integer(revision), "isolation": .string(isolation), "duration_ms": .integer(durationMs)]
            if let warning { o["warning"] = .string(warning) }
            if let baseCommit { o["base_commit"] = .string(baseCommit) }
            o["visible"] = .array(visible.map { .object(["path": .string($0.path), "mode": .string($0.writable ? "rw" : "ro")]) })
            return .object(o)
        case .testFinished(let revision, let r):
            var o: JSONObject = [
                "revision": .integer(revision), "exit_code": .integer(Int(r.exitCode)), "passed": r.passed.map(JSONValue.integer) ?? .null,
                "failed": r.failed.map(JSONValue.integer) ?? .null, "duration_ms": .integer(r.durationMs), "timed_out": .bool(r.timedOut),
                "truncated": .bool(r.truncated),
            ]
            if let signal = r.signal { o["signal"] = .integer(Int(signal)) }
            if r.diskQuotaExceeded == true { o["disk_quota_exceeded"] = .bool(true) }
            return .object(o)
        case .analysis(let revision, let a):
            return .object([
                "revision": .integer(revision), "category": .string(a.category.rawValue),
                "categories": .array(a.categories.map { .string($0.rawValue) }), "root_cause": .string(a.rootCause),
                "locations": .array(a.locations.map(\.json)), "messages": .array(a.messages.map(JSONValue.string)),
            ])
        case .fixStarted(let revision, let attempt, let maxAttempts):
            return .object(["revision": .integer(revision), "attempt": .integer(attempt), "max_attempts": .integer(maxAttempts)])
        case .fixGenerated(let attempt, let revision, let explanation, let changes):
            return .object([
                "attempt": .integer(attempt), "revision": .integer(revision), "explanation": .string(explanation),
                "changes": .array(changes.map(\.json)),
            ])
        case .fixFailed(let attempt, let reason):
            return .object(["attempt": .integer(attempt), "reason": .string(reason)])
        case .unfixable(let reason, let explanation):
            var o: JSONObject = ["reason": .string(reason)]
            if let explanation { o["explanation"] = .string(explanation) }
            return .object(o)
        case .review(let revision, let principal, let verdict, let comment, let approvals, let quorum):
            var o: JSONObject = [
                "revision": .integer(revision), "principal": .string(principal), "verdict": .string(verdict.rawValue),
                "approvals": .array(approvals.map(JSONValue.string)), "quorum": .integer(quorum),
            ]
            if let comment { o["comment"] = .string(comment) }
            return .object(o)
        case .applied(let revision, let commit, let approvers):
            return .object(["revision": .integer(revision), "commit": .string(commit), "approvers": .array(approvers.map(JSONValue.string))])
        case .applyFailed(let reason):
            return .object(["reason": .string(reason)])
        case .rolledBack(let commit, let revertCommit):
            return .object(["commit": .string(commit), "revert_commit": .string(revertCommit)])
        }
    }
}
