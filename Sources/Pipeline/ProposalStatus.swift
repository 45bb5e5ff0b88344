// ProposalStatus: where a proposal stands in the pipeline; raw values are the wire contract's status names.

/// The lifecycle status of a proposal (contract "Proposal statuses").
public enum ProposalStatus: String, Sendable, Codable, CaseIterable, Hashable {
    case proposed
    case deploying
    case testing
    case testsPassed = "tests_passed"
    case testsFailed = "tests_failed"
    case analyzing
    case fixing
    case awaitingReview = "awaiting_review"
    case approved
    case applying
    case applied
    case applyFailed = "apply_failed"
    case rejected
    case changesRequested = "changes_requested"
    case unfixable
    case rolledBack = "rolled_back"
    case interrupted

    /// True when no further pipeline work can happen without a new proposal.
    public var isTerminal: Bool {
        switch self {
        case .applyFailed, .rejected, .unfixable, .rolledBack, .interrupted: true
        case .proposed, .deploying, .testing, .testsPassed, .testsFailed, .analyzing, .fixing, .awaitingReview,
            .approved, .applying, .applied, .changesRequested:
            false
        }
    }
}
