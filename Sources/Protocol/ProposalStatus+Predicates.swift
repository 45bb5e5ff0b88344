// ProposalStatus+Predicates: the one place that says what a status means — used by the machine, the host
// (recovery, stats, REST), and sent to clients (`GET /api/v1/meta`) so the page copies no status lists.

extension ProposalStatus {
    /// Work is in flight (a sandbox, a test run, an analysis, a model request, an apply): a restart
    /// interrupts it and the proposal becomes `interrupted`.
    public var isBusy: Bool {
        switch self {
        case .proposed, .deploying, .testing, .testsPassed, .analyzing, .fixing, .approved, .applying, .changesRequested: true
        case .testsFailed, .awaitingReview, .applied, .applyFailed, .rejected, .unfixable, .rolledBack, .interrupted, .withdrawn:
            false
        }
    }

    /// No further pipeline work happens by itself (a person may still act: reject, withdraw, auto_fix after an
    /// interruption); the sandbox is no longer needed.
    public var isTerminal: Bool {
        switch self {
        case .applyFailed, .rejected, .unfixable, .rolledBack, .interrupted, .withdrawn: true
        case .proposed, .deploying, .testing, .testsPassed, .testsFailed, .analyzing, .fixing, .awaitingReview,
            .approved, .applying, .applied, .changesRequested:
            false
        }
    }

    /// The proposal's sandboxes are never used again (a rollback reverts in the repository itself); an
    /// `interrupted` proposal keeps its own until it finishes.
    public var releasesSandbox: Bool {
        switch self {
        case .applied, .applyFailed, .rejected, .unfixable, .rolledBack, .withdrawn: true
        case .proposed, .deploying, .testing, .testsPassed, .testsFailed, .analyzing, .fixing, .awaitingReview, .approved,
            .applying, .changesRequested, .interrupted:
            false
        }
    }

    /// Admins may approve or request changes.
    public var isReviewable: Bool { self == .awaitingReview }

    /// Admins may reject: in review, and where the proposal would otherwise dead-end.
    public var isRejectable: Bool {
        switch self {
        case .awaitingReview, .unfixable, .testsFailed, .interrupted: true
        default: false
        }
    }

    /// `auto_fix` may start a fix attempt (manual mode waiting, or a redeploy after an interruption).
    public var acceptsAutoFix: Bool { self == .testsFailed || self == .interrupted }

    /// The author or an admin may `withdraw`.
    public var isWithdrawable: Bool {
        switch self {
        case .proposed, .deploying, .testing, .testsPassed, .testsFailed, .analyzing, .fixing, .awaitingReview,
            .changesRequested, .unfixable, .interrupted, .applyFailed:
            true
        case .approved, .applying, .applied, .rolledBack, .rejected, .withdrawn:
            false
        }
    }

    /// `rollback` applies.
    public var isRollbackable: Bool { self == .applied }

    /// The current revision's tests passed on the way here (the pipeline's success statistics).
    public var hasPassingTests: Bool {
        switch self {
        case .testsPassed, .awaitingReview, .approved, .applying, .applied, .applyFailed, .rolledBack: true
        default: false
        }
    }

    /// Every status with its predicates, as `GET /api/v1/meta` sends them.
    public static var predicatesJSON: JSONValue {
        var object = JSONObject()
        for status in allCases {
            object[status.rawValue] = .object([
                "busy": .bool(status.isBusy), "terminal": .bool(status.isTerminal), "reviewable": .bool(status.isReviewable),
                "rejectable": .bool(status.isRejectable), "auto_fix": .bool(status.acceptsAutoFix),
                "withdrawable": .bool(status.isWithdrawable), "rollbackable": .bool(status.isRollbackable),
            ])
        }
        return .object(object)
    }
}
