// ProposalMachine: the pure per-proposal state machine of the self-healing pipeline; executors perform its actions.
public import Protocol

/// Everything the machine needs to ask for a fix; the executor adds file contents and calls `FixPrompt.build`.
public struct FixContext: Sendable, Hashable, Codable {
    public var title: String
    public var description: String
    /// The revision being fixed (the new one will be `revision + 1`).
    public var revision: Int
    /// That revision's full patch.
    public var changes: [FileChange]
    /// Its failure analysis (nil when the fix was asked for by a reviewer on a passing revision).
    public var analysis: FailureAnalysis?
    /// The end of its failing run's output, as the executor summarised it.
    public var testOutput: String?
    /// Earlier attempts, oldest first.
    public var attempts: [AttemptRecord]
    /// request_changes comments, oldest first.
    public var reviewerComments: [String]
    /// This attempt's number.
    public var attempt: Int
    /// The highest attempt number allowed (see `ProposalMachine` on request_changes).
    public var maxAttempts: Int

    /// Files worth showing the LLM, most relevant first: the analysis locations' files, then the patch's
    /// created/modified files; deduplicated and bounded (default 10). The executor reads them from the sandbox.
    public func relevantPaths(limit: Int = 10) -> [String] {
        var out: [String] = []
        let candidates = (analysis?.locations.map(\.file) ?? []) + changes.filter { $0.action != .delete }.map(\.path)
        for path in candidates where !out.contains(path) && out.count < limit { out.append(path) }
        return out
    }
}

/// Why a command was refused; raw values are the contract's error codes.
public enum RejectCode: String, Sendable, Hashable, Codable {
    case forbidden
    case staleRevision = "stale_revision"
    case invalidState = "invalid_state"
    case alreadyReviewed = "already_reviewed"
}

/// An input to the machine: executor results and admin commands.
public enum ProposalEvent: Sendable, Hashable {
    /// The proposal was stored with its author's patch as revision 1.
    case created(Revision)
    /// The sandbox holds the current revision.
    case sandboxReady(isolation: String = "none", durationMs: Int = 0, warning: String? = nil, visible: [SandboxPath] = [], baseCommit: String? = nil)
    /// The sandbox could not be prepared (e.g. a modify of a missing file); handled like a failed run.
    case sandboxFailed(reason: String)
    /// The test run ended; `outputSummary` is the end of its output, kept for the fix prompt.
    case testsFinished(TestResult, outputSummary: String)
    /// The executor ran `FailureAnalyzer` on the current revision's output.
    case analyzed(FailureAnalysis)
    /// The LLM answered with a parsed, validated reply.
    case fixReceived(FixReply)
    /// The LLM call or its reply failed (after the executor's one re-ask on malformed JSON).
    case fixFailed(reason: String)
    /// approve / reject / request_changes from a principal, naming the revision they saw.
    case review(principal: String, role: Role, verdict: Verdict, revision: Int, comment: String?)
    /// An admin's `auto_fix` command.
    case autoFixRequested(principal: String, role: Role)
    /// The executor committed the approved revision.
    case applied(commit: String)
    /// The executor could not commit it.
    case applyFailed(reason: String)
    /// An admin's `rollback` command.
    case rollbackRequested(principal: String, role: Role)
    /// The author or an admin ends the proposal (any time before it is approved for applying).
    case withdrawRequested(principal: String, role: Role, reason: String?)
    /// The executor committed the revert.
    case rolledBack(revertCommit: String)
    /// The executor could not revert.
    case rollbackFailed(reason: String)
    /// The server restarted while work was in flight.
    case interrupted(reason: String)
}

/// What the executor must do, in order.
public enum ProposalAction: Sendable, Hashable {
    /// Persist the proposal's new status (the matching `status_changed` event follows as a `.publish`).
    case setStatus(ProposalStatus, reason: String?)
    /// Store and publish an event on `proposal:<id>` (and update the `proposals` topic).
    case publish(PipelineEvent)
    /// Prepare a sandbox with the repository plus this revision's patch; answer `.sandboxReady`/`.sandboxFailed`.
    case deploy(revision: Int)
    /// Run the tests in the sandbox; answer `.testsFinished`.
    case runTests(revision: Int)
    /// Run `FailureAnalyzer` on the revision's output; answer `.analyzed`.
    case analyze(revision: Int)
    /// Ask the LLM for a fix; answer `.fixReceived`/`.fixFailed`.
    case requestFix(attempt: Int, context: FixContext)
    /// Store a new revision: `changes` is the full patch (previous revision merged with the fix).
    case createRevision(number: Int, changes: [FileChange], explanation: String)
    /// Commit the revision to the repository; answer `.applied`/`.applyFailed`.
    case applyToRepository(revision: Int, approvers: [String])
    /// Revert the commit; answer `.rolledBack`/`.rollbackFailed`.
    case rollback(commit: String)
    /// Stop whatever runs for the proposal (its test run); its sandbox is released as for any finished proposal.
    case stopWork
    /// Refuse the command that caused this event with the contract error code.
    case reject(RejectCode, message: String)
    /// An executor result arrived in a state that no longer expects it (e.g. after an interruption); log only.
    case ignored(String)
}

/// The per-proposal state machine.
///
/// Rules:
/// - Fix loop: a failed run is analysed, then (auto mode) a fix is requested. Up to `maxAttempts` fix attempts;
///   the proposal becomes `unfixable` when they run out, when the LLM says so, or when two fix attempts in a row
///   fail with the same category at the same first location (the attempts are not making progress).
/// - Manual mode: after analysis the proposal waits in `tests_failed` until an admin's `auto_fix`.
/// - Reviews bind to the current revision: only admins review (`forbidden`); a review naming another revision is
///   `stale_revision`; outside `awaiting_review` it is `invalid_state`. The proposal's author may reject or
///   request changes but their approval is refused (`forbidden`): approval means someone else checked the work.
///   The same admin approving twice is `already_reviewed`. Quorum = that many distinct admins approved; any
///   reject ends in `rejected`. A new revision starts with no approvals.
/// - request_changes: the comment joins the fix context and a fix attempt starts (in manual mode too: the
///   reviewer asked for it). It opens a fresh budget: attempts keep counting (n+1, n+2 …) and the limit moves to
///   n + maxAttempts, reported as `max_attempts`. If that round gives up while the reviewed revision still passes,
///   the proposal returns to `awaiting_review` instead of `unfixable`.
/// - Persistence: the machine is `Codable`; the host may store a snapshot after each handled event and decode
///   it after a restart, then feed `.interrupted` so in-flight work is marked.
/// - Interruptions (server restart) end in-flight work in `interrupted`; an admin's `auto_fix` re-deploys the
///   current revision, unless the interruption hit `applying` (the commit may or may not exist; a human decides).
public struct ProposalMachine: Sendable, Codable {
    /// Whether fixes start by themselves.
    public enum FixMode: String, Sendable, Hashable, Codable {
        case auto
        case manual
    }

    /// Per-proposal settings. Every limit has a documented default.
    public struct Configuration: Sendable, Hashable, Codable {
        /// Fix attempts per round (default 3).
        public var maxAttempts: Int
        /// Distinct admin approvals needed (default 1).
        public var quorum: Int
        /// Auto or manual fixing (default auto).
        public var fixMode: FixMode

        public init(maxAttempts: Int = 3, quorum: Int = 1, fixMode: FixMode = .auto) {
            self.maxAttempts = max(0, maxAttempts)
            self.quorum = max(1, quorum)
            self.fixMode = fixMode
        }
    }

    /// Same category at the same place: the signal that attempts stopped making progress.
    private struct FailureSignature: Hashable, Codable {
        var category: FailureCategory
        var location: SourceLocation?
    }

    public let info: ProposalInfo
    public let configuration: Configuration
    public private(set) var status: ProposalStatus = .proposed
    /// All revisions, oldest first; the last is current.
    public private(set) var revisions: [Revision] = []
    /// Fix attempts started so far.
    public private(set) var attempt = 0
    /// The highest attempt number allowed in the current round.
    public private(set) var attemptLimit: Int
    /// Admins who approved the current revision, in order.
    public private(set) var approvals: [String] = []
    /// request_changes comments, oldest first.
    public private(set) var reviewerComments: [String] = []
    /// Earlier fix attempts as shown to the LLM.
    public private(set) var attemptRecords: [AttemptRecord] = []
    /// The commit that applied the proposal.
    public private(set) var commit: String?
    /// Approvers of the applied revision.
    public private(set) var appliedApprovers: [String] = []
    private var lastOutput: String?
    private var lastFixSignature: FailureSignature?
    private var rollbackPending = false
    private var interruptedFrom: ProposalStatus?

    public init(info: ProposalInfo, configuration: Configuration = Configuration()) {
        self.info = info
        self.configuration = configuration
        self.attemptLimit = configuration.maxAttempts
    }

    /// The revision under work (0 before `.created`).
    public var currentRevision: Int { revisions.last?.number ?? 0 }

    /// The `data` of the `proposal` event on topic `proposals` (contract), with the host's timestamp.
    public func summary(updatedAt: String) -> JSONValue {
        .object([
            "id": .string(info.id), "title": .string(info.title), "status": .string(status.rawValue),
            "revision": .integer(currentRevision), "attempt": .integer(attempt), "max_attempts": .integer(attemptLimit),
            "author": .string(info.author), "repo": .string(info.repo), "updated_at": .string(updatedAt),
        ])
    }

    /// Feeds one event and returns the actions to perform, in order.
    public mutating func handle(_ event: ProposalEvent) -> [ProposalAction] {
        switch event {
        case .created(let revision): return created(revision)
        case .sandboxReady(let isolation, let durationMs, let warning, let visible, let baseCommit):
            return sandboxReady(isolation, durationMs, warning, visible, baseCommit)
        case .sandboxFailed(let reason): return sandboxFailed(reason)
        case .testsFinished(let result, let output): return testsFinished(result, output)
        case .analyzed(let analysis): return analyzed(analysis)
        case .fixReceived(let reply): return fixReceived(reply)
        case .fixFailed(let reason): return fixFailed(reason)
        case .review(let principal, let role, let verdict, let revision, let comment):
            return review(principal, role, verdict, revision, comment)
        case .autoFixRequested(let principal, let role): return autoFixRequested(principal, role)
        case .applied(let commit): return applied(commit)
        case .applyFailed(let reason): return applyFailed(reason)
        case .rollbackRequested(let principal, let role): return rollbackRequested(principal, role)
        case .withdrawRequested(let principal, let role, let reason): return withdrawRequested(principal, role, reason)
        case .rolledBack(let revert): return rolledBack(revert)
        case .rollbackFailed(let reason): return rollbackFailed(reason)
        case .interrupted(let reason): return interrupted(reason)
        }
    }

    // MARK: Transitions

    private mutating func transition(_ to: ProposalStatus, reason: String? = nil) -> [ProposalAction] {
        status = to
        return [
            .setStatus(to, reason: reason),
            .publish(.statusChanged(to, revision: currentRevision, attempt: attempt, maxAttempts: attemptLimit, reason: reason)),
        ]
    }

    private func ignored(_ what: String) -> [ProposalAction] { [.ignored("\(what) while \(status.rawValue)")] }

    private mutating func created(_ revision: Revision) -> [ProposalAction] {
        guard status == .proposed, revisions.isEmpty else { return ignored("created") }
        var first = revision
        first.number = 1
        revisions = [first]
        return [.publish(.proposalCreated(info, status: .proposed, revision: first, maxAttempts: attemptLimit))]
            + deployCurrent()
    }

    private mutating func deployCurrent() -> [ProposalAction] {
        transition(.deploying) + [.deploy(revision: currentRevision)]
    }

    private mutating func sandboxReady(
        _ isolation: String, _ durationMs: Int, _ warning: String?, _ visible: [SandboxPath], _ baseCommit: String?
    ) -> [ProposalAction] {
        guard status == .deploying else { return ignored("sandbox_ready") }
        revisions[revisions.count - 1].baseCommit = baseCommit
        return [.publish(.sandboxReady(
            revision: currentRevision, isolation: isolation, durationMs: durationMs, warning: warning, visible: visible, baseCommit: baseCommit))]
            + transition(.testing) + [.runTests(revision: currentRevision)]
    }

    private mutating func sandboxFailed(_ reason: String) -> [ProposalAction] {
        guard status == .deploying else { return ignored("sandbox_failed") }
        let analysis = FailureAnalysis(
            category: .other, categories: [.other],
            rootCause: "The sandbox could not deploy revision \(currentRevision): \(reason)", locations: [], messages: [reason])
        lastOutput = reason
        return transition(.testsFailed, reason: "sandbox failed: \(reason)") + transition(.analyzing) + analyzed(analysis)
    }

    private mutating func testsFinished(_ result: TestResult, _ output: String) -> [ProposalAction] {
        guard status == .testing else { return ignored("tests_finished") }
        revisions[revisions.count - 1].testResult = result
        updateLastRecord { $0.testResult = result }
        var actions: [ProposalAction] = [.publish(.testFinished(revision: currentRevision, result))]
        if result.succeeded {
            lastFixSignature = nil
            lastOutput = nil
            approvals = []
            actions += transition(.testsPassed)
            actions += transition(.awaitingReview)
            return actions
        }
        lastOutput = output
        let reason = result.timedOut ? "timed out" : result.signal.map { "killed by signal \($0)" } ?? "exit code \(result.exitCode)"
        actions += transition(.testsFailed, reason: reason)
        actions += transition(.analyzing)
        actions.append(.analyze(revision: currentRevision))
        return actions
    }

    private mutating func analyzed(_ analysis: FailureAnalysis) -> [ProposalAction] {
        guard status == .analyzing else { return ignored("analyzed") }
        revisions[revisions.count - 1].analysis = analysis
        updateLastRecord { $0.analysis = analysis }
        let actions: [ProposalAction] = [.publish(.analysis(revision: currentRevision, analysis))]
        let signature = FailureSignature(category: analysis.category, location: analysis.locations.first)
        if revisions.last?.attempt != nil {
            if let previous = lastFixSignature, previous == signature {
                let place = signature.location.map { " at \($0.file):\($0.line)" } ?? ""
                return actions + giveUp(
                    reason: "fix attempts \(attempt - 1) and \(attempt) failed the same way (\(analysis.category.rawValue)\(place))",
                    explanation: analysis.rootCause)
            }
            lastFixSignature = signature
        }
        if attempt >= attemptLimit {
            return actions + giveUp(reason: "tests still fail after \(attempt) fix attempts", explanation: analysis.rootCause)
        }
        switch configuration.fixMode {
        case .auto: return actions + startFix()
        case .manual: return actions + transition(.testsFailed, reason: "waiting for auto_fix")
        }
    }

    private mutating func startFix() -> [ProposalAction] {
        attempt += 1
        let current = revisions[revisions.count - 1]
        let context = FixContext(
            title: info.title, description: info.description, revision: current.number, changes: current.changes,
            analysis: current.analysis, testOutput: current.testResult?.succeeded == true ? nil : lastOutput,
            attempts: attemptRecords, reviewerComments: reviewerComments, attempt: attempt, maxAttempts: attemptLimit)
        return transition(.fixing)
            + [
                .publish(.fixStarted(revision: current.number, attempt: attempt, maxAttempts: attemptLimit)),
                .requestFix(attempt: attempt, context: context),
            ]
    }

    private mutating func fixReceived(_ reply: FixReply) -> [ProposalAction] {
        guard status == .fixing else { return ignored("fix_received") }
        if reply.unfixable {
            return giveUp(reason: "the model judged the failure unfixable", explanation: reply.explanation)
        }
        let number = currentRevision + 1
        let merged = FileChange.merge(base: revisions[revisions.count - 1].changes, fix: reply.changes)
        revisions.append(Revision(number: number, changes: merged, explanation: reply.explanation, attempt: attempt))
        attemptRecords.append(AttemptRecord(number: attempt, changes: reply.changes, explanation: reply.explanation))
        approvals = []
        return [
            .createRevision(number: number, changes: merged, explanation: reply.explanation),
            .publish(.fixGenerated(attempt: attempt, revision: number, explanation: reply.explanation, changes: reply.changes)),
        ] + deployCurrent()
    }

    private mutating func fixFailed(_ reason: String) -> [ProposalAction] {
        guard status == .fixing else { return ignored("fix_failed") }
        let actions: [ProposalAction] = [.publish(.fixFailed(attempt: attempt, reason: reason))]
        if attempt >= attemptLimit {
            return actions + giveUp(reason: "no usable fix after \(attempt) attempts: \(reason)", explanation: nil)
        }
        let currentPasses = revisions.last?.testResult?.succeeded == true
        switch (configuration.fixMode, currentPasses) {
        case (.auto, _), (.manual, true): return actions + startFix()
        case (.manual, false): return actions + transition(.testsFailed, reason: "fix failed; waiting for auto_fix")
        }
    }

    /// Ends the fix loop: `unfixable`, or back to review when the current revision passes (a reviewer round).
    private mutating func giveUp(reason: String, explanation: String?) -> [ProposalAction] {
        if revisions.last?.testResult?.succeeded == true {
            approvals = []
            return [.publish(.fixFailed(attempt: attempt, reason: reason))]
                + transition(.awaitingReview, reason: "requested changes not made: \(reason)")
        }
        return [.publish(.unfixable(reason: reason, explanation: explanation))] + transition(.unfixable, reason: reason)
    }

    private mutating func updateLastRecord(_ update: (inout AttemptRecord) -> Void) {
        guard let last = revisions.last?.attempt, let i = attemptRecords.lastIndex(where: { $0.number == last }) else { return }
        update(&attemptRecords[i])
    }

    // MARK: Commands

    private mutating func review(_ principal: String, _ role: Role, _ verdict: Verdict, _ revision: Int, _ comment: String?)
        -> [ProposalAction]
    {
        guard role.mayReview else { return [.reject(.forbidden, message: "role \(role.rawValue) may not review")] }
        guard revision == currentRevision else {
            return [.reject(.staleRevision, message: "revision \(revision) is not the current revision \(currentRevision)")]
        }
        // A proposal that will not reach review by itself (the fix loop gave up, manual mode waits, a restart
        // interrupted it) can still be rejected, so that it never dead-ends; approval needs awaiting_review.
        guard status.isReviewable || (verdict == .reject && status.isRejectable) else {
            let allowed = verdict == .reject ? "awaiting_review, unfixable, tests_failed or interrupted" : "awaiting_review"
            return [.reject(.invalidState, message: "proposal is \(status.rawValue), not \(allowed)")]
        }
        switch verdict {
        case .approve:
            guard principal != info.author else {
                return [.reject(.forbidden, message: "the author of a proposal cannot approve it")]
            }
            guard !approvals.contains(principal) else {
                return [.reject(.alreadyReviewed, message: "\(principal) already approved revision \(revision)")]
            }
            approvals.append(principal)
            var actions: [ProposalAction] = [.publish(reviewEvent(principal, verdict, comment))]
            if approvals.count >= configuration.quorum {
                appliedApprovers = approvals
                actions += transition(.approved)
                actions += transition(.applying)
                actions.append(.applyToRepository(revision: currentRevision, approvers: approvals))
            }
            return actions
        case .reject:
            return [.publish(reviewEvent(principal, verdict, comment))]
                + transition(.rejected, reason: comment.map { "rejected by \(principal): \($0)" } ?? "rejected by \(principal)")
        case .requestChanges:
            let text = comment ?? ""
            if !text.isEmpty { reviewerComments.append(text) }
            let actions: [ProposalAction] = [.publish(reviewEvent(principal, verdict, comment))]
            attemptLimit = attempt + configuration.maxAttempts
            lastFixSignature = nil
            approvals = []
            guard configuration.maxAttempts > 0 else {
                return actions + transition(.changesRequested, reason: text) + transition(.awaitingReview, reason: "fixing is disabled")
            }
            return actions + transition(.changesRequested, reason: text) + startFix()
        }
    }

    private func reviewEvent(_ principal: String, _ verdict: Verdict, _ comment: String?) -> PipelineEvent {
        .review(
            revision: currentRevision, principal: principal, verdict: verdict, comment: comment, approvals: approvals,
            quorum: configuration.quorum)
    }

    private mutating func autoFixRequested(_ principal: String, _ role: Role) -> [ProposalAction] {
        guard role.mayReview else { return [.reject(.forbidden, message: "role \(role.rawValue) may not request fixes")] }
        switch status {
        case .testsFailed:
            guard revisions.last?.analysis != nil else {
                return [.reject(.invalidState, message: "the failure is still being analysed")]
            }
            return startFix()
        case .interrupted:
            guard interruptedFrom != .applying, interruptedFrom != .approved else {
                return [.reject(.invalidState, message: "interrupted while applying; check the repository by hand")]
            }
            interruptedFrom = nil
            return deployCurrent()
        case .proposed, .deploying, .testing, .testsPassed, .analyzing, .fixing, .awaitingReview, .approved, .applying,
            .applied, .applyFailed, .rejected, .changesRequested, .unfixable, .rolledBack, .withdrawn:
            return [.reject(.invalidState, message: "auto_fix is not possible while \(status.rawValue)")]
        }
    }

    private mutating func applied(_ commit: String) -> [ProposalAction] {
        guard status == .applying else { return ignored("applied") }
        self.commit = commit
        return [.publish(.applied(revision: currentRevision, commit: commit, approvers: appliedApprovers))] + transition(.applied)
    }

    private mutating func applyFailed(_ reason: String) -> [ProposalAction] {
        guard status == .applying else { return ignored("apply_failed") }
        return [.publish(.applyFailed(reason: reason))] + transition(.applyFailed, reason: reason)
    }

    private mutating func rollbackRequested(_ principal: String, _ role: Role) -> [ProposalAction] {
        guard role.mayReview else { return [.reject(.forbidden, message: "role \(role.rawValue) may not roll back")] }
        guard status == .applied, let commit else {
            return [.reject(.invalidState, message: "only an applied proposal can be rolled back (it is \(status.rawValue))")]
        }
        guard !rollbackPending else { return [.reject(.invalidState, message: "a rollback is already in progress")] }
        rollbackPending = true
        return [.rollback(commit: commit)]
    }

    private mutating func rolledBack(_ revert: String) -> [ProposalAction] {
        guard status == .applied, rollbackPending, let commit else { return ignored("rolled_back") }
        rollbackPending = false
        return [.publish(.rolledBack(commit: commit, revertCommit: revert))] + transition(.rolledBack, reason: "reverted by \(revert)")
    }

    private mutating func rollbackFailed(_ reason: String) -> [ProposalAction] {
        guard status == .applied, rollbackPending else { return ignored("rollback_failed") }
        rollbackPending = false
        return transition(.applied, reason: "rollback failed: \(reason)")
    }

    private mutating func withdrawRequested(_ principal: String, _ role: Role, _ reason: String?) -> [ProposalAction] {
        guard role == .admin || (role == .bot && principal == info.author) else {
            return [.reject(.forbidden, message: "only the proposal's author or an admin may withdraw it")]
        }
        guard status.isWithdrawable else {
            let message = switch status {
            case .approved, .applying: "the proposal is being applied; roll it back once applied"
            case .applied: "the proposal is applied; roll it back instead"
            default: "the proposal is already \(status.rawValue)"
            }
            return [.reject(.invalidState, message: message)]
        }
        approvals = []
        rollbackPending = false
        let why = reason.map { "withdrawn by \(principal): \($0)" } ?? "withdrawn by \(principal)"
        return transition(.withdrawn, reason: why) + [.stopWork]
    }

    private mutating func interrupted(_ reason: String) -> [ProposalAction] {
        guard status.isBusy else {
            // Nothing was in flight: the proposal waits for a person or is finished, and survives a restart as is.
            rollbackPending = false
            return ignored("interrupted")
        }
        interruptedFrom = status
        return transition(.interrupted, reason: reason)
    }
}
