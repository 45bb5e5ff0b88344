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
    /// The LLM call or its reply failed.
    case fixFailed(reason: String)
    /// The model answered a fix request with this text (raw: the machine parses it, and asks once more with
    /// the parser's complaint when it is malformed).
    case modelReplied(text: String)
    /// The model request failed (network, API error, timeout).
    case modelFailed(reason: String)
    /// approve / reject / request_changes from a principal, naming the revision they saw.
    case review(principal: String, role: Role, verdict: Verdict, revision: Int, comment: String?)
    /// An admin's `auto_fix` command.
    case autoFixRequested(principal: String, role: Role)
    /// The repository's HEAD when the approved revision is about to be committed (nil: not a git repository
    /// or unknown; the revision is committed as is).
    case baseChecked(head: String?)
    /// The revision's tests on the repository's new HEAD (it moved since the sandbox was made) ended.
    case preApplyTestsFinished(passed: Bool, detail: String)
    /// The executor committed the approved revision; `postApply`: the repository has a post-apply command to
    /// run now (its failure reverts the commit).
    case committed(commit: String, postApply: Bool)
    /// The post-apply command ended.
    case postApplyFinished(passed: Bool, detail: String)
    /// The executor reverted a commit whose post-apply command failed.
    case reverted(revertCommit: String)
    /// … or could not revert it.
    case revertFailed(reason: String)
    /// The executor committed the approved revision and nothing runs after it (= `committed` without post-apply).
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
    /// Ask the LLM for a fix; answer `.modelReplied`/`.modelFailed` (or, parsed by the executor,
    /// `.fixReceived`/`.fixFailed`).
    case requestFix(attempt: Int, context: FixContext)
    /// Ask again, once, after a malformed reply: the same request plus `previousReply` and the parser's
    /// `complaint` as the next turns; answer as for `requestFix`.
    case reaskFix(attempt: Int, context: FixContext, previousReply: String, complaint: String)
    /// Read the repository's HEAD before committing; answer `.baseChecked`.
    case checkBase(revision: Int)
    /// The repository moved since the revision's sandbox was made: run the revision's tests on a fresh copy
    /// of `baseCommit` (output streamed like any run); answer `.preApplyTestsFinished`.
    case runPreApplyTests(revision: Int, baseCommit: String)
    /// Commit the revision to the repository; answer `.committed`/`.applied`/`.applyFailed`.
    case applyToRepository(revision: Int, approvers: [String])
    /// Run the repository's post-apply command in the repository; answer `.postApplyFinished`.
    case runPostApply(commit: String)
    /// Revert `commit` (its post-apply command failed); answer `.reverted`/`.revertFailed`.
    case revert(commit: String)
    /// A row the handled event writes besides the proposal's own row (which every handled input rewrites:
    /// the machine's document changes with it).
    case record(RecordRow)
    /// Revert the commit; answer `.rolledBack`/`.rollbackFailed`.
    case rollback(commit: String)
    /// Stop whatever runs for the proposal (its test run); its sandbox is released as for any finished proposal.
    case stopWork
    /// Refuse the command that caused this event with the contract error code.
    case reject(RejectCode, message: String)
    /// An executor result arrived in a state that no longer expects it (e.g. after an interruption); log only.
    case ignored(String)
}

/// A row an event writes, besides the proposal row.
public enum RecordRow: Sendable, Hashable {
    /// A revision as it is now: new (the author's patch, a fix merged into the previous one) or with a result
    /// attached (its sandbox's base commit, its test result, its analysis).
    case revision(Revision)
    case review(revision: Int, principal: String, verdict: Verdict, comment: String?)
    case applied(revision: Int, commit: String)
    case reverted(revision: Int, commit: String, revertCommit: String)
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
/// - Applying (a nested step machine, `ApplyStep`): HEAD is read first; if the repository moved since the
///   revision's sandbox was made, the revision is tested again on the new HEAD (output streamed like any
///   run) and committed only if that passes; after the commit the post-apply command, if any, runs, and its
///   failure reverts the commit — all of it `apply_failed` with the reason when it goes wrong.
/// - Fix replies: the machine parses the model's text; a malformed reply is asked again once with the
///   parser's complaint, a second malformed or a refused reply counts as a failed attempt.
/// - Persistence: `record` is an explicit, versioned document (`ProposalMachine+Record.swift`) without the
///   revisions (they are their own rows); `load` reads it and every earlier version.
/// - Interruptions (server restart) end in-flight work in `interrupted`; an admin's `auto_fix` re-deploys the
///   current revision, unless the interruption hit `applying` (the commit may or may not exist; a human decides).
public struct ProposalMachine: Sendable {
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
    struct FailureSignature: Hashable, Codable, Sendable {
        var category: FailureCategory
        var location: SourceLocation?
    }

    /// Where the proposal is, with the data only that phase has. The public `status` is derived from it;
    /// the passing statuses (`tests_passed`, `approved`, `changes_requested`, `tests_failed` before an
    /// analysis) are published as they are passed through, never rested in.
    public enum Phase: Sendable, Hashable {
        case proposed
        case deploying
        case testing
        case analyzing
        /// A fix request is out; `reasked`: the one re-ask after a malformed reply was made.
        case fixing(reasked: Bool)
        /// Tests failed and the proposal waits (manual mode, or a failed fix in manual mode) for `auto_fix`.
        case testsFailed
        case awaitingReview
        case applying(ApplyStep)
        case applied(commit: String, rollingBack: Bool)
        case applyFailed
        case rejected
        case unfixable
        case rolledBack(commit: String)
        case withdrawn
        case interrupted(from: ProposalStatus)
    }

    /// The kind of result a phase waits for. Results of any other kind are late or stray and are ignored.
    enum Awaited: Equatable {
        case nothing, sandbox, testRun, analysis, modelReply, applyStep, rollback
    }

    /// The steps of applying an approved revision (a nested machine owned by `.applying`).
    public enum ApplyStep: Sendable, Hashable {
        /// Waiting for the repository's HEAD.
        case checkingBase
        /// The repository moved to `head`: the revision's tests run there first.
        case retesting(head: String)
        /// Waiting for the commit.
        case committing
        /// Committed; the post-apply command runs.
        case smokeTesting(commit: String)
        /// The post-apply command failed (`detail`): the commit is being reverted.
        case reverting(commit: String, detail: String)
    }

    public let info: ProposalInfo
    public let configuration: Configuration
    public internal(set) var phase: Phase = .proposed
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
    public internal(set) var commit: String?
    /// Approvers of the applied revision.
    public private(set) var appliedApprovers: [String] = []
    var lastOutput: String?
    var lastFixSignature: FailureSignature?

    public init(info: ProposalInfo, configuration: Configuration = Configuration()) {
        self.info = info
        self.configuration = configuration
        self.attemptLimit = configuration.maxAttempts
    }

    /// The public status of the phase.
    public var status: ProposalStatus {
        switch phase {
        case .proposed: .proposed
        case .deploying: .deploying
        case .testing: .testing
        case .analyzing: .analyzing
        case .fixing: .fixing
        case .testsFailed: .testsFailed
        case .awaitingReview: .awaitingReview
        case .applying: .applying
        case .applied: .applied
        case .applyFailed: .applyFailed
        case .rejected: .rejected
        case .unfixable: .unfixable
        case .rolledBack: .rolledBack
        case .withdrawn: .withdrawn
        case .interrupted: .interrupted
        }
    }

    /// What the phase waits for: one exhaustive switch, so a new phase makes the compiler ask which results
    /// it takes (each result's handler checks it instead of matching one phase and ignoring the rest).
    var awaited: Awaited {
        switch phase {
        case .deploying: .sandbox
        case .testing: .testRun
        case .analyzing: .analysis
        case .fixing: .modelReply
        case .applying: .applyStep
        case .applied(_, rollingBack: true): .rollback
        case .applied(_, rollingBack: false), .proposed, .testsFailed, .awaitingReview, .applyFailed, .rejected, .unfixable, .rolledBack,
            .withdrawn, .interrupted:
            .nothing
        }
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
        case .modelReplied(let text): return modelReplied(text)
        case .modelFailed(let reason): return fixFailed(reason)
        case .review(let principal, let role, let verdict, let revision, let comment):
            return review(principal, role, verdict, revision, comment)
        case .autoFixRequested(let principal, let role): return autoFixRequested(principal, role)
        // Applying: the nested machine (ProposalMachine+Apply.swift) decides; the parent routes.
        case .baseChecked(let head):
            let testedBase = revisions.last?.baseCommit
            return routeApply("base_checked") { $0.baseChecked(head: head, testedBase: testedBase) }
        case .preApplyTestsFinished(let passed, let detail):
            return routeApply("pre_apply_tests_finished") { $0.preApplyTestsFinished(passed: passed, detail: detail) }
        case .committed(let commit, let postApply): return routeApply("committed") { $0.committed(commit, postApply: postApply) }
        case .applied(let commit): return routeApply("committed") { $0.committed(commit, postApply: false) }
        case .postApplyFinished(let passed, let detail):
            return routeApply("post_apply_finished") { $0.postApplyFinished(passed: passed, detail: detail) }
        case .reverted(let revert): return routeApply("reverted") { $0.reverted(revert) }
        case .revertFailed(let reason): return routeApply("revert_failed") { $0.revertFailed(reason) }
        case .applyFailed(let reason): return routeApply("apply_failed") { $0.commitFailed(reason) }
        case .rollbackRequested(let principal, let role): return rollbackRequested(principal, role)
        case .withdrawRequested(let principal, let role, let reason): return withdrawRequested(principal, role, reason)
        case .rolledBack(let revert): return rolledBack(revert)
        case .rollbackFailed(let reason): return rollbackFailed(reason)
        case .interrupted(let reason): return interrupted(reason)
        }
    }

    // MARK: Transitions

    /// Publishes passing through `status` (the proposal row is written with the phase's status).
    func pass(_ status: ProposalStatus, reason: String? = nil) -> [ProposalAction] {
        [
            .setStatus(status, reason: reason),
            .publish(.statusChanged(status, revision: currentRevision, attempt: attempt, maxAttempts: attemptLimit, reason: reason)),
        ]
    }

    /// Moves to `phase` and publishes its status.
    mutating func enter(_ phase: Phase, reason: String? = nil) -> [ProposalAction] {
        self.phase = phase
        return pass(status, reason: reason)
    }

    private func ignored(_ what: String) -> [ProposalAction] { [.ignored("\(what) while \(status.rawValue)")] }

    private mutating func created(_ revision: Revision) -> [ProposalAction] {
        guard case .proposed = phase, revisions.isEmpty else { return ignored("created") }
        var first = revision
        first.number = 1
        revisions = [first]
        return [.record(.revision(first)), .publish(.proposalCreated(info, status: .proposed, revision: first, maxAttempts: attemptLimit))] + deployCurrent()
    }

    private mutating func deployCurrent() -> [ProposalAction] {
        enter(.deploying) + [.deploy(revision: currentRevision)]
    }

    private mutating func sandboxReady(
        _ isolation: String, _ durationMs: Int, _ warning: String?, _ visible: [SandboxPath], _ baseCommit: String?
    ) -> [ProposalAction] {
        guard awaited == .sandbox else { return ignored("sandbox_ready") }
        let row = updateCurrentRevision { $0.baseCommit = baseCommit }
        return [row, .publish(.sandboxReady(
            revision: currentRevision, isolation: isolation, durationMs: durationMs, warning: warning, visible: visible, baseCommit: baseCommit))]
            + enter(.testing) + [.runTests(revision: currentRevision)]
    }

    private mutating func sandboxFailed(_ reason: String) -> [ProposalAction] {
        guard awaited == .sandbox else { return ignored("sandbox_failed") }
        let analysis = FailureAnalysis(
            category: .other, categories: [.other],
            rootCause: "The sandbox could not deploy revision \(currentRevision): \(reason)", locations: [], messages: [reason])
        lastOutput = reason
        return pass(.testsFailed, reason: "sandbox failed: \(reason)") + enter(.analyzing) + analyzed(analysis)
    }

    private mutating func testsFinished(_ result: TestResult, _ output: String) -> [ProposalAction] {
        guard awaited == .testRun else { return ignored("tests_finished") }
        let row = updateCurrentRevision { $0.testResult = result }
        updateLastRecord { $0.testResult = result }
        var actions: [ProposalAction] = [row, .publish(.testFinished(revision: currentRevision, result))]
        if result.succeeded {
            lastFixSignature = nil
            lastOutput = nil
            approvals = []
            return actions + pass(.testsPassed) + enter(.awaitingReview)
        }
        lastOutput = output
        let reason = result.timedOut ? "timed out" : result.signal.map { "killed by signal \($0)" } ?? "exit code \(result.exitCode)"
        actions += pass(.testsFailed, reason: reason)
        actions += enter(.analyzing)
        actions.append(.analyze(revision: currentRevision))
        return actions
    }

    private mutating func analyzed(_ analysis: FailureAnalysis) -> [ProposalAction] {
        guard awaited == .analysis else { return ignored("analyzed") }
        let row = updateCurrentRevision { $0.analysis = analysis }
        updateLastRecord { $0.analysis = analysis }
        let actions: [ProposalAction] = [row, .publish(.analysis(revision: currentRevision, analysis))]
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
        case .manual: return actions + enter(.testsFailed, reason: "waiting for auto_fix")
        }
    }

    private func fixContext() -> FixContext {
        let current = revisions[revisions.count - 1]
        return FixContext(
            title: info.title, description: info.description, revision: current.number, changes: current.changes,
            analysis: current.analysis, testOutput: current.testResult?.succeeded == true ? nil : lastOutput,
            attempts: attemptRecords, reviewerComments: reviewerComments, attempt: attempt, maxAttempts: attemptLimit)
    }

    private mutating func startFix() -> [ProposalAction] {
        attempt += 1
        return enter(.fixing(reasked: false))
            + [
                .publish(.fixStarted(revision: currentRevision, attempt: attempt, maxAttempts: attemptLimit)),
                .requestFix(attempt: attempt, context: fixContext()),
            ]
    }

    /// The model's raw answer: parsed here (the parser is pure); malformed → one re-ask with the complaint.
    private mutating func modelReplied(_ text: String) -> [ProposalAction] {
        guard case .fixing(let reasked) = phase else { return ignored("model_replied") }
        do throws(FixReplyError) {
            return fixReceived(try FixReply.parse(text))
        } catch {
            guard !reasked, error.isMalformed else { return fixFailed("the LLM's reply was refused: \(error.description)") }
            phase = .fixing(reasked: true)
            return [.reaskFix(attempt: attempt, context: fixContext(), previousReply: text, complaint: FixPrompt.retryMessage(error: error))]
        }
    }

    private mutating func fixReceived(_ reply: FixReply) -> [ProposalAction] {
        guard awaited == .modelReply else { return ignored("fix_received") }
        if reply.unfixable {
            return giveUp(reason: "the model judged the failure unfixable", explanation: reply.explanation)
        }
        let number = currentRevision + 1
        let merged = FileChange.merge(base: revisions[revisions.count - 1].changes, fix: reply.changes)
        let revision = Revision(number: number, changes: merged, explanation: reply.explanation, attempt: attempt)
        revisions.append(revision)
        attemptRecords.append(AttemptRecord(number: attempt, changes: reply.changes, explanation: reply.explanation))
        approvals = []
        return [
            .record(.revision(revision)),
            .publish(.fixGenerated(attempt: attempt, revision: number, explanation: reply.explanation, changes: reply.changes)),
        ] + deployCurrent()
    }

    private mutating func fixFailed(_ reason: String) -> [ProposalAction] {
        guard awaited == .modelReply else { return ignored("fix_failed") }
        let actions: [ProposalAction] = [.publish(.fixFailed(attempt: attempt, reason: reason))]
        if attempt >= attemptLimit {
            return actions + giveUp(reason: "no usable fix after \(attempt) attempts: \(reason)", explanation: nil)
        }
        let currentPasses = revisions.last?.testResult?.succeeded == true
        switch (configuration.fixMode, currentPasses) {
        case (.auto, _), (.manual, true): return actions + startFix()
        case (.manual, false): return actions + enter(.testsFailed, reason: "fix failed; waiting for auto_fix")
        }
    }

    /// Ends the fix loop: `unfixable`, or back to review when the current revision passes (a reviewer round).
    private mutating func giveUp(reason: String, explanation: String?) -> [ProposalAction] {
        if revisions.last?.testResult?.succeeded == true {
            approvals = []
            return [.publish(.fixFailed(attempt: attempt, reason: reason))]
                + enter(.awaitingReview, reason: "requested changes not made: \(reason)")
        }
        return [.publish(.unfixable(reason: reason, explanation: explanation))] + enter(.unfixable, reason: reason)
    }

    /// Changes the current revision and names its row to rewrite.
    private mutating func updateCurrentRevision(_ change: (inout Revision) -> Void) -> ProposalAction {
        change(&revisions[revisions.count - 1])
        return .record(.revision(revisions[revisions.count - 1]))
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
        let row = ProposalAction.record(.review(revision: revision, principal: principal, verdict: verdict, comment: comment))
        switch verdict {
        case .approve:
            guard principal != info.author else {
                return [.reject(.forbidden, message: "the author of a proposal cannot approve it")]
            }
            guard !approvals.contains(principal) else {
                return [.reject(.alreadyReviewed, message: "\(principal) already approved revision \(revision)")]
            }
            approvals.append(principal)
            var actions: [ProposalAction] = [row, .publish(reviewEvent(principal, verdict, comment))]
            if approvals.count >= configuration.quorum {
                appliedApprovers = approvals
                actions += pass(.approved)
                actions += enter(.applying(.checkingBase))
                actions.append(.checkBase(revision: currentRevision))
            }
            return actions
        case .reject:
            return [row, .publish(reviewEvent(principal, verdict, comment))]
                + enter(.rejected, reason: comment.map { "rejected by \(principal): \($0)" } ?? "rejected by \(principal)")
        case .requestChanges:
            let text = comment ?? ""
            if !text.isEmpty { reviewerComments.append(text) }
            let actions: [ProposalAction] = [row, .publish(reviewEvent(principal, verdict, comment))]
            attemptLimit = attempt + configuration.maxAttempts
            lastFixSignature = nil
            approvals = []
            guard configuration.maxAttempts > 0 else {
                return actions + pass(.changesRequested, reason: text) + enter(.awaitingReview, reason: "fixing is disabled")
            }
            return actions + pass(.changesRequested, reason: text) + startFix()
        }
    }

    private func reviewEvent(_ principal: String, _ verdict: Verdict, _ comment: String?) -> PipelineEvent {
        .review(
            revision: currentRevision, principal: principal, verdict: verdict, comment: comment, approvals: approvals,
            quorum: configuration.quorum)
    }

    private mutating func autoFixRequested(_ principal: String, _ role: Role) -> [ProposalAction] {
        guard role.mayReview else { return [.reject(.forbidden, message: "role \(role.rawValue) may not request fixes")] }
        switch phase {
        case .testsFailed:
            guard revisions.last?.analysis != nil else {
                return [.reject(.invalidState, message: "the failure is still being analysed")]
            }
            return startFix()
        case .interrupted(let from):
            guard from != .applying, from != .approved else {
                return [.reject(.invalidState, message: "interrupted while applying; check the repository by hand")]
            }
            return deployCurrent()
        case .proposed, .deploying, .testing, .analyzing, .fixing, .awaitingReview, .applying, .applied, .applyFailed, .rejected,
            .unfixable, .rolledBack, .withdrawn:
            return [.reject(.invalidState, message: "auto_fix is not possible while \(status.rawValue)")]
        }
    }

    // MARK: Rollback, withdraw, interruption

    private mutating func rollbackRequested(_ principal: String, _ role: Role) -> [ProposalAction] {
        guard role.mayReview else { return [.reject(.forbidden, message: "role \(role.rawValue) may not roll back")] }
        guard case .applied(let commit, let rollingBack) = phase else {
            return [.reject(.invalidState, message: "only an applied proposal can be rolled back (it is \(status.rawValue))")]
        }
        guard !rollingBack else { return [.reject(.invalidState, message: "a rollback is already in progress")] }
        phase = .applied(commit: commit, rollingBack: true)
        return [.rollback(commit: commit)]
    }

    private mutating func rolledBack(_ revert: String) -> [ProposalAction] {
        guard awaited == .rollback, case .applied(let commit, _) = phase else { return ignored("rolled_back") }
        return [
            .record(.reverted(revision: currentRevision, commit: commit, revertCommit: revert)),
            .publish(.rolledBack(commit: commit, revertCommit: revert)),
        ] + enter(.rolledBack(commit: commit), reason: "reverted by \(revert)")
    }

    private mutating func rollbackFailed(_ reason: String) -> [ProposalAction] {
        guard awaited == .rollback, case .applied(let commit, _) = phase else { return ignored("rollback_failed") }
        return enter(.applied(commit: commit, rollingBack: false), reason: "rollback failed: \(reason)")
    }

    private mutating func withdrawRequested(_ principal: String, _ role: Role, _ reason: String?) -> [ProposalAction] {
        guard role == .admin || (role == .bot && principal == info.author) else {
            return [.reject(.forbidden, message: "only the proposal's author or an admin may withdraw it")]
        }
        guard status.isWithdrawable else {
            let message = switch phase {
            case .applying: "the proposal is being applied; roll it back once applied"
            case .applied: "the proposal is applied; roll it back instead"
            case .proposed, .deploying, .testing, .analyzing, .fixing, .testsFailed, .awaitingReview, .applyFailed, .rejected, .unfixable,
                .rolledBack, .withdrawn, .interrupted:
                "the proposal is already \(status.rawValue)"
            }
            return [.reject(.invalidState, message: message)]
        }
        approvals = []
        let why = reason.map { "withdrawn by \(principal): \($0)" } ?? "withdrawn by \(principal)"
        return enter(.withdrawn, reason: why) + [.stopWork]
    }

    private mutating func interrupted(_ reason: String) -> [ProposalAction] {
        if case .applied(let commit, true) = phase {
            // A rollback in flight when the server stopped: the proposal stays applied; roll back again.
            phase = .applied(commit: commit, rollingBack: false)
            return ignored("interrupted")
        }
        guard status.isBusy else {
            // Nothing was in flight: the proposal waits for a person or is finished, and survives a restart as is.
            return ignored("interrupted")
        }
        return enter(.interrupted(from: status), reason: reason)
    }

    // MARK: Loading (ProposalMachine+Record.swift)

    /// A machine with every field given (the record loader).
    init(
        info: ProposalInfo, configuration: Configuration, phase: Phase, revisions: [Revision], attempt: Int, attemptLimit: Int,
        approvals: [String], reviewerComments: [String], attemptRecords: [AttemptRecord], commit: String?, appliedApprovers: [String],
        lastOutput: String?, lastFixSignature: FailureSignature?
    ) {
        self.info = info
        self.configuration = configuration
        self.phase = phase
        self.revisions = revisions
        self.attempt = attempt
        self.attemptLimit = attemptLimit
        self.approvals = approvals
        self.reviewerComments = reviewerComments
        self.attemptRecords = attemptRecords
        self.commit = commit
        self.appliedApprovers = appliedApprovers
        self.lastOutput = lastOutput
        self.lastFixSignature = lastFixSignature
    }
}
