// ProposalStatus: what the pipeline derives from a proposal's status (the status is Protocol's; raw
// values are the wire contract's status names).
public import Protocol

extension ProposalStatus {
    /// True when no further pipeline work can happen without a new proposal.
    public var isTerminal: Bool {
        switch self {
        case .applyFailed, .rejected, .unfixable, .rolledBack, .interrupted, .withdrawn: true
        case .proposed, .deploying, .testing, .testsPassed, .testsFailed, .analyzing, .fixing, .awaitingReview,
            .approved, .applying, .applied, .changesRequested:
            false
        }
    }
}
