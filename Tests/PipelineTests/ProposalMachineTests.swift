// ProposalMachineTests: event scripts through the proposal state machine, one expectation per transition.

import Foundation
import Protocol
import Testing

@testable import Pipeline

let author = "alice"
let initialChanges = [FileChange(path: "app.py", action: .modify, content: "import redis\n")]

func makeMachine(maxAttempts: Int = 3, quorum: Int = 1, fixMode: ProposalMachine.FixMode = .auto) -> ProposalMachine {
    ProposalMachine(
        info: ProposalInfo(id: "p1", title: "Cache with redis", description: "Adds a cache", repo: "demo", author: author, createdAt: "2026-01-01T00:00:00Z"),
        configuration: ProposalMachine.Configuration(maxAttempts: maxAttempts, quorum: quorum, fixMode: fixMode))
}

func failure(_ category: FailureCategory = .import, file: String = "app.py", line: Int = 1) -> FailureAnalysis {
    FailureAnalysis(
        category: category, categories: [category], rootCause: "cause \(category.rawValue)",
        locations: [SourceLocation(file: file, line: line)], messages: ["msg"])
}

func fix(_ content: String, path: String = "app.py") -> FixReply {
    FixReply(unfixable: false, explanation: "fixed \(content)", changes: [FileChange(path: path, action: .modify, content: content)])
}

let passed = TestResult(exitCode: 0, passed: 3, failed: 0, durationMs: 10)
let failed = TestResult(exitCode: 1, passed: 2, failed: 1, durationMs: 10)

extension [ProposalAction] {
    /// The statuses set, in order.
    var statuses: [ProposalStatus] {
        compactMap { if case .setStatus(let s, _) = $0 { s } else { nil } }
    }
    var events: [PipelineEvent] { compactMap { if case .publish(let e) = $0 { e } else { nil } } }
    var kinds: [String] { events.map(\.kind) }
    var rejection: RejectCode? { compactMap { if case .reject(let c, _) = $0 { c } else { nil } }.first }
    var fixRequest: (attempt: Int, context: FixContext)? {
        compactMap { (action: ProposalAction) -> (attempt: Int, context: FixContext)? in if case .requestFix(let a, let c) = action { (attempt: a, context: c) } else { nil } }.first
    }
}

extension ProposalMachine {
    /// Drives one revision from deploy to the end of its test run.
    mutating func deployAndTest(_ result: TestResult) -> [ProposalAction] {
        _ = handle(.sandboxReady(isolation: "bwrap", durationMs: 5))
        return handle(.testsFinished(result, outputSummary: result.succeeded ? "ok" : "Traceback ..."))
    }

    /// Created, deployed and passing: awaiting review of revision 1.
    mutating func toReview() {
        _ = handle(.created(Revision(number: 1, changes: initialChanges)))
        _ = deployAndTest(passed)
    }
}

@Suite struct ProposalMachineHappyPathTests {
    @Test func createdToApplied() {
        var m = makeMachine()
        let created = m.handle(.created(Revision(number: 1, changes: initialChanges)))
        #expect(created == [
            .record(.revision(Revision(number: 1, changes: initialChanges))),
            .publish(.proposalCreated(m.info, status: .proposed, revision: Revision(number: 1, changes: initialChanges), maxAttempts: 3)),
            .setStatus(.deploying, reason: nil),
            .publish(.statusChanged(.deploying, revision: 1, attempt: 0, maxAttempts: 3, reason: nil)),
            .deploy(revision: 1),
        ])
        let ready = m.handle(.sandboxReady(isolation: "bwrap", durationMs: 12, warning: nil))
        #expect(ready == [
            .record(.revision(Revision(number: 1, changes: initialChanges))),
            .publish(.sandboxReady(revision: 1, isolation: "bwrap", durationMs: 12, warning: nil)),
            .setStatus(.testing, reason: nil),
            .publish(.statusChanged(.testing, revision: 1, attempt: 0, maxAttempts: 3, reason: nil)),
            .runTests(revision: 1),
        ])
        let tested = m.handle(.testsFinished(passed, outputSummary: "3 passed"))
        #expect(tested.statuses == [.testsPassed, .awaitingReview])
        #expect(tested.events.first == .testFinished(revision: 1, passed))
        let approved = m.handle(.review(principal: "bob", role: .admin, verdict: .approve, revision: 1, comment: "lgtm"))
        #expect(approved.statuses == [.approved, .applying])
        #expect(approved.events.first == .review(revision: 1, principal: "bob", verdict: .approve, comment: "lgtm", approvals: ["bob"], quorum: 1))
        #expect(approved.first == .record(.review(revision: 1, principal: "bob", verdict: .approve, comment: "lgtm")))
        #expect(approved.last == .checkBase(revision: 1))
        // No sandbox base recorded (sandboxReady carried none): nothing to compare, commit.
        #expect(m.handle(.baseChecked(head: "h1")) == [.applyToRepository(revision: 1, approvers: ["bob"])])
        let applied = m.handle(.applied(commit: "abc123"))
        #expect(applied.prefix(2) == [.record(.applied(revision: 1, commit: "abc123")), .publish(.applied(revision: 1, commit: "abc123", approvers: ["bob"]))])
        #expect(m.status == .applied)
    }

    @Test func rollback() {
        var m = makeMachine()
        m.toReview()
        _ = m.handle(.review(principal: "bob", role: .admin, verdict: .approve, revision: 1, comment: nil))
        _ = m.handle(.applied(commit: "abc"))
        #expect(m.handle(.rollbackRequested(principal: "carol", role: .viewer)).rejection == .forbidden)
        #expect(m.handle(.rollbackRequested(principal: "bob", role: .admin)) == [.rollback(commit: "abc")])
        #expect(m.handle(.rollbackRequested(principal: "bob", role: .admin)).rejection == .invalidState)
        let done = m.handle(.rolledBack(revertCommit: "def"))
        #expect(done.prefix(2) == [.record(.reverted(revision: 1, commit: "abc", revertCommit: "def")), .publish(.rolledBack(commit: "abc", revertCommit: "def"))])
        #expect(m.status == .rolledBack)
        #expect(m.handle(.rollbackRequested(principal: "bob", role: .admin)).rejection == .invalidState)
    }

    @Test func rollbackBeforeApplyIsInvalid() {
        var m = makeMachine()
        m.toReview()
        #expect(m.handle(.rollbackRequested(principal: "bob", role: .admin)).rejection == .invalidState)
    }

    @Test func applyFailure() {
        var m = makeMachine()
        m.toReview()
        _ = m.handle(.review(principal: "bob", role: .admin, verdict: .approve, revision: 1, comment: nil))
        let failedApply = m.handle(.applyFailed(reason: "merge conflict"))
        #expect(failedApply.kinds == ["apply_failed", "status_changed"])
        #expect(m.status == .applyFailed)
    }
}

@Suite struct ProposalMachineFixLoopTests {
    @Test func failFixPass() {
        var m = makeMachine()
        _ = m.handle(.created(Revision(number: 1, changes: initialChanges)))
        let failedRun = m.deployAndTest(failed)
        #expect(failedRun.statuses == [.testsFailed, .analyzing])
        #expect(failedRun.last == .analyze(revision: 1))
        let analyzed = m.handle(.analyzed(failure()))
        #expect(analyzed.statuses == [.fixing])
        #expect(analyzed.kinds == ["analysis", "status_changed", "fix_started"])
        let request = analyzed.fixRequest
        #expect(request?.attempt == 1)
        #expect(request?.context.analysis == failure())
        #expect(request?.context.testOutput == "Traceback ...")
        #expect(request?.context.revision == 1)
        let fixed = m.handle(.fixReceived(fix("import os\n")))
        #expect(fixed.first == .record(.revision(Revision(
            number: 2, changes: [FileChange(path: "app.py", action: .modify, content: "import os\n")], explanation: "fixed import os\n", attempt: 1))))
        #expect(fixed.kinds == ["fix_generated", "status_changed"])
        #expect(fixed.last == .deploy(revision: 2))
        #expect(m.deployAndTest(passed).statuses == [.testsPassed, .awaitingReview])
        #expect(m.currentRevision == 2)
        #expect(m.handle(.review(principal: "bob", role: .admin, verdict: .approve, revision: 1, comment: nil)).rejection == .staleRevision)
    }

    @Test func maxAttemptsThenUnfixable() {
        var m = makeMachine(maxAttempts: 2)
        _ = m.handle(.created(Revision(number: 1, changes: initialChanges)))
        _ = m.deployAndTest(failed)
        #expect(m.handle(.analyzed(failure(line: 1))).fixRequest?.attempt == 1)
        _ = m.handle(.fixReceived(fix("a")))
        _ = m.deployAndTest(failed)
        let second = m.handle(.analyzed(failure(line: 2)))
        #expect(second.fixRequest?.attempt == 2)
        #expect(second.fixRequest?.context.attempts.map(\.number) == [1])
        #expect(second.fixRequest?.context.attempts.first?.analysis == failure(line: 2))
        _ = m.handle(.fixReceived(fix("b")))
        _ = m.deployAndTest(failed)
        let last = m.handle(.analyzed(failure(line: 3)))
        #expect(last.kinds == ["analysis", "unfixable", "status_changed"])
        #expect(last.events[1] == .unfixable(reason: "tests still fail after 2 fix attempts", explanation: "cause import"))
        #expect(m.status == .unfixable)
    }

    @Test func llmSaysUnfixable() {
        var m = makeMachine()
        _ = m.handle(.created(Revision(number: 1, changes: initialChanges)))
        _ = m.deployAndTest(failed)
        _ = m.handle(.analyzed(failure()))
        let reply = m.handle(.fixReceived(FixReply(unfixable: true, explanation: "needs libfoo", changes: [])))
        #expect(reply.events.first == .unfixable(reason: "the model judged the failure unfixable", explanation: "needs libfoo"))
        #expect(m.status == .unfixable)
    }

    @Test func sameFailureTwiceInARow() {
        var m = makeMachine(maxAttempts: 5)
        _ = m.handle(.created(Revision(number: 1, changes: initialChanges)))
        _ = m.deployAndTest(failed)
        _ = m.handle(.analyzed(failure(.type, line: 4)))
        _ = m.handle(.fixReceived(fix("a")))
        _ = m.deployAndTest(failed)
        // Attempt 1 fails like the original: one more try is still allowed.
        #expect(m.handle(.analyzed(failure(.type, line: 4))).fixRequest?.attempt == 2)
        _ = m.handle(.fixReceived(fix("b")))
        _ = m.deployAndTest(failed)
        let repeated = m.handle(.analyzed(failure(.type, line: 4)))
        #expect(repeated.statuses == [.unfixable])
        #expect(repeated.events[1] == .unfixable(reason: "fix attempts 1 and 2 failed the same way (type at app.py:4)", explanation: "cause type"))
    }

    @Test func differentLocationKeepsGoing() {
        var m = makeMachine(maxAttempts: 5)
        _ = m.handle(.created(Revision(number: 1, changes: initialChanges)))
        _ = m.deployAndTest(failed)
        _ = m.handle(.analyzed(failure(.type, line: 4)))
        _ = m.handle(.fixReceived(fix("a")))
        _ = m.deployAndTest(failed)
        _ = m.handle(.analyzed(failure(.type, line: 4)))
        _ = m.handle(.fixReceived(fix("b")))
        _ = m.deployAndTest(failed)
        #expect(m.handle(.analyzed(failure(.type, line: 9))).fixRequest?.attempt == 3)
    }

    @Test func fixFailureRetriesThenGivesUp() {
        var m = makeMachine(maxAttempts: 2)
        _ = m.handle(.created(Revision(number: 1, changes: initialChanges)))
        _ = m.deployAndTest(failed)
        _ = m.handle(.analyzed(failure()))
        let first = m.handle(.fixFailed(reason: "the reply contains no JSON object"))
        #expect(first.events.first == .fixFailed(attempt: 1, reason: "the reply contains no JSON object"))
        #expect(first.fixRequest?.attempt == 2)
        let second = m.handle(.fixFailed(reason: "overloaded_error: Overloaded"))
        #expect(second.statuses == [.unfixable])
        #expect(second.kinds == ["fix_failed", "unfixable", "status_changed"])
    }

    @Test func sandboxFailureEntersFixLoop() {
        var m = makeMachine()
        _ = m.handle(.created(Revision(number: 1, changes: initialChanges)))
        let actions = m.handle(.sandboxFailed(reason: "modify of missing file lib.py"))
        #expect(actions.statuses == [.testsFailed, .analyzing, .fixing])
        #expect(actions.fixRequest?.context.analysis?.rootCause == "The sandbox could not deploy revision 1: modify of missing file lib.py")
    }

    @Test func lateResultsAreIgnored() {
        var m = makeMachine()
        m.toReview()
        #expect(m.handle(.testsFinished(failed, outputSummary: "")) == [.ignored("tests_finished while awaiting_review")])
        #expect(m.handle(.fixReceived(fix("x"))) == [.ignored("fix_received while awaiting_review")])
        #expect(m.status == .awaitingReview)
    }
}

@Suite struct ProposalMachineManualModeTests {
    @Test func waitsForAutoFix() {
        var m = makeMachine(fixMode: .manual)
        _ = m.handle(.created(Revision(number: 1, changes: initialChanges)))
        _ = m.deployAndTest(failed)
        let analyzed = m.handle(.analyzed(failure()))
        #expect(analyzed.statuses == [.testsFailed])
        #expect(analyzed.fixRequest == nil)
        #expect(m.handle(.autoFixRequested(principal: "vic", role: .viewer)).rejection == .forbidden)
        #expect(m.handle(.autoFixRequested(principal: "bot", role: .bot)).rejection == .forbidden)
        let started = m.handle(.autoFixRequested(principal: "bob", role: .admin))
        #expect(started.statuses == [.fixing])
        #expect(started.fixRequest?.attempt == 1)
        #expect(m.handle(.autoFixRequested(principal: "bob", role: .admin)).rejection == .invalidState)
        _ = m.handle(.fixReceived(fix("a")))
        _ = m.deployAndTest(failed)
        #expect(m.handle(.analyzed(failure(line: 2))).statuses == [.testsFailed])
    }

    @Test func autoFixOutsideTestsFailedIsInvalid() {
        var m = makeMachine()
        m.toReview()
        #expect(m.handle(.autoFixRequested(principal: "bob", role: .admin)).rejection == .invalidState)
    }
}

@Suite struct ProposalMachineReviewTests {
    @Test func quorumTwoWithEveryRefusal() {
        var m = makeMachine(quorum: 2)
        m.toReview()
        #expect(m.handle(.review(principal: "vic", role: .viewer, verdict: .approve, revision: 1, comment: nil)).rejection == .forbidden)
        #expect(m.handle(.review(principal: "robot", role: .bot, verdict: .approve, revision: 1, comment: nil)).rejection == .forbidden)
        #expect(m.handle(.review(principal: author, role: .admin, verdict: .approve, revision: 1, comment: nil)).rejection == .forbidden)
        #expect(m.handle(.review(principal: "bob", role: .admin, verdict: .approve, revision: 2, comment: nil)).rejection == .staleRevision)
        let first = m.handle(.review(principal: "bob", role: .admin, verdict: .approve, revision: 1, comment: nil))
        #expect(first.statuses == [])
        #expect(first.events == [.review(revision: 1, principal: "bob", verdict: .approve, comment: nil, approvals: ["bob"], quorum: 2)])
        #expect(m.handle(.review(principal: "bob", role: .admin, verdict: .approve, revision: 1, comment: nil)).rejection == .alreadyReviewed)
        let second = m.handle(.review(principal: "carol", role: .admin, verdict: .approve, revision: 1, comment: nil))
        #expect(second.statuses == [.approved, .applying])
        #expect(second.last == .checkBase(revision: 1))
        #expect(m.handle(.baseChecked(head: nil)) == [.applyToRepository(revision: 1, approvers: ["bob", "carol"])])
        #expect(m.handle(.review(principal: "dave", role: .admin, verdict: .approve, revision: 1, comment: nil)).rejection == .invalidState)
    }

    @Test func rejectEndsIt() {
        var m = makeMachine(quorum: 2)
        m.toReview()
        _ = m.handle(.review(principal: "bob", role: .admin, verdict: .approve, revision: 1, comment: nil))
        let rejected = m.handle(.review(principal: "carol", role: .admin, verdict: .reject, revision: 1, comment: "not needed"))
        #expect(rejected.statuses == [.rejected])
        #expect(m.handle(.review(principal: "dave", role: .admin, verdict: .approve, revision: 1, comment: nil)).rejection == .invalidState)
    }

    @Test func authorMayRejectButNotApprove() {
        var m = makeMachine()
        m.toReview()
        #expect(m.handle(.review(principal: author, role: .admin, verdict: .approve, revision: 1, comment: nil)).rejection == .forbidden)
        #expect(m.handle(.review(principal: author, role: .admin, verdict: .reject, revision: 1, comment: "withdrawn")).statuses == [.rejected])
    }

    @Test func reviewWhileTestingIsInvalidState() {
        var m = makeMachine()
        _ = m.handle(.created(Revision(number: 1, changes: initialChanges)))
        #expect(m.handle(.review(principal: "bob", role: .admin, verdict: .approve, revision: 1, comment: nil)).rejection == .invalidState)
    }

    @Test func requestChangesFeedsCommentAndCancelsApprovals() {
        var m = makeMachine(maxAttempts: 3, quorum: 2)
        m.toReview()
        _ = m.handle(.review(principal: "bob", role: .admin, verdict: .approve, revision: 1, comment: nil))
        let requested = m.handle(.review(principal: "carol", role: .admin, verdict: .requestChanges, revision: 1, comment: "use a TTL"))
        #expect(requested.statuses == [.changesRequested, .fixing])
        #expect(requested.fixRequest?.attempt == 1)
        #expect(requested.fixRequest?.context.reviewerComments == ["use a TTL"])
        #expect(requested.fixRequest?.context.analysis == nil)
        #expect(requested.fixRequest?.context.testOutput == nil)
        #expect(m.approvals == [])
        _ = m.handle(.fixReceived(fix("ttl")))
        #expect(m.deployAndTest(passed).statuses == [.testsPassed, .awaitingReview])
        #expect(m.handle(.review(principal: "bob", role: .admin, verdict: .approve, revision: 1, comment: nil)).rejection == .staleRevision)
        let again = m.handle(.review(principal: "bob", role: .admin, verdict: .approve, revision: 2, comment: nil))
        #expect(again.events.first == .review(revision: 2, principal: "bob", verdict: .approve, comment: nil, approvals: ["bob"], quorum: 2))
    }

    @Test func requestChangesOpensAFreshBudget() {
        var m = makeMachine(maxAttempts: 1)
        _ = m.handle(.created(Revision(number: 1, changes: initialChanges)))
        _ = m.deployAndTest(failed)
        _ = m.handle(.analyzed(failure()))
        _ = m.handle(.fixReceived(fix("a")))
        _ = m.deployAndTest(passed)
        let requested = m.handle(.review(principal: "bob", role: .admin, verdict: .requestChanges, revision: 2, comment: "rename it"))
        #expect(requested.fixRequest?.attempt == 2)
        #expect(requested.fixRequest?.context.maxAttempts == 2)
        #expect(requested.fixRequest?.context.attempts.map(\.number) == [1])
        // The model declines the reviewer's request: revision 2 still passes, so it goes back to review.
        let declined = m.handle(.fixReceived(FixReply(unfixable: true, explanation: "cannot rename", changes: [])))
        #expect(declined.statuses == [.awaitingReview])
        #expect(declined.kinds.first == "fix_failed")
        #expect(m.currentRevision == 2)
    }
}

@Suite struct ProposalMachineInterruptionTests {
    @Test func interruptedWhileTestingThenResumed() {
        var m = makeMachine()
        _ = m.handle(.created(Revision(number: 1, changes: initialChanges)))
        _ = m.handle(.sandboxReady())
        #expect(m.handle(.interrupted(reason: "server restarted")).statuses == [.interrupted])
        #expect(m.handle(.testsFinished(passed, outputSummary: "")) == [.ignored("tests_finished while interrupted")])
        let resumed = m.handle(.autoFixRequested(principal: "bob", role: .admin))
        #expect(resumed.statuses == [.deploying])
        #expect(resumed.last == .deploy(revision: 1))
    }

    @Test func interruptedWhileApplyingNeedsAHuman() {
        var m = makeMachine()
        m.toReview()
        _ = m.handle(.review(principal: "bob", role: .admin, verdict: .approve, revision: 1, comment: nil))
        _ = m.handle(.interrupted(reason: "server restarted"))
        #expect(m.handle(.autoFixRequested(principal: "bob", role: .admin)).rejection == .invalidState)
    }

    @Test func waitingStatesSurviveInterruption() {
        var m = makeMachine()
        m.toReview()
        #expect(m.handle(.interrupted(reason: "restart")) == [.ignored("interrupted while awaiting_review")])
        #expect(m.status == .awaitingReview)
    }
}

@Suite struct PipelineEventWireTests {
    @Test func dataMatchesContract() {
        // Compared as JSON (key order aside): the contract is the members and their values.
        #expect(PipelineEvent.testFinished(revision: 2, TestResult(exitCode: 1, durationMs: 7, signal: 9)).data
            == json(#"{"duration_ms":7,"exit_code":1,"failed":null,"passed":null,"revision":2,"signal":9,"timed_out":false,"truncated":false}"#))
        #expect(PipelineEvent.analysis(revision: 1, failure()).data
            == json(#"{"categories":["import"],"category":"import","locations":[{"file":"app.py","line":1}],"messages":["msg"],"revision":1,"root_cause":"cause import"}"#))
        #expect(PipelineEvent.statusChanged(.testsFailed, revision: 1, attempt: 0, maxAttempts: 3, reason: nil).data
            == json(#"{"attempt":0,"max_attempts":3,"revision":1,"status":"tests_failed"}"#))
        #expect(PipelineEvent.rolledBack(commit: "a", revertCommit: "b").kind == "rolled_back")
        #expect(ProposalStatus.allCases.map(\.rawValue) == [
            "proposed", "deploying", "testing", "tests_passed", "tests_failed", "analyzing", "fixing", "awaiting_review",
            "approved", "applying", "applied", "apply_failed", "rejected", "changes_requested", "unfixable", "rolled_back",
            "interrupted", "withdrawn",
        ])
        #expect(FailureCategory.allCases.map(\.rawValue) == [
            "import", "syntax", "indentation", "undefined_name", "type", "file_not_found", "assertion", "timeout", "crash",
            "disk_quota", "other",
        ])
        #expect(PipelineEvent.sandboxReady(revision: 1, isolation: "bwrap", durationMs: 3, warning: nil,
                                           visible: [SandboxPath(path: "/usr", writable: false), SandboxPath(path: "/w", writable: true)]).data
            == json(#"{"duration_ms":3,"isolation":"bwrap","revision":1,"visible":[{"mode":"ro","path":"/usr"},{"mode":"rw","path":"/w"}]}"#))
    }
}

@Suite struct ProposalMachinePersistenceTests {
    @Test func snapshotRoundTripContinues() throws {
        var m = makeMachine(quorum: 2)
        m.toReview()
        _ = m.handle(.review(principal: "bob", role: .admin, verdict: .approve, revision: 1, comment: nil))
        var restored = try ProposalMachine.load(document: m.record(), revisions: m.revisions)
        #expect(restored.status == .awaitingReview)
        #expect(restored.handle(.review(principal: "bob", role: .admin, verdict: .approve, revision: 1, comment: nil)).rejection == .alreadyReviewed)
        #expect(restored.handle(.review(principal: "carol", role: .admin, verdict: .approve, revision: 1, comment: nil)).statuses == [.approved, .applying])
    }
}

@Suite struct ProposalMachineHelperTests {
    @Test func relevantPathsAndSummary() {
        var m = makeMachine()
        _ = m.handle(.created(Revision(number: 1, changes: initialChanges + [FileChange(path: "old.py", action: .delete)])))
        _ = m.deployAndTest(failed)
        let context = m.handle(.analyzed(failure(file: "lib/db.py", line: 3))).fixRequest?.context
        #expect(context?.relevantPaths() == ["lib/db.py", "app.py"])
        #expect(context?.relevantPaths(limit: 1) == ["lib/db.py"])
        #expect(m.summary(updatedAt: "t")
            == json(#"{"attempt":1,"author":"alice","id":"p1","max_attempts":3,"repo":"demo","revision":1,"status":"fixing","title":"Cache with redis","updated_at":"t"}"#))
    }
}

/// A JSON literal for comparisons (traps on a typo in the test itself).
func json(_ text: String) -> JSONValue {
    do { return try JSONValue.parse(text) } catch { preconditionFailure("bad JSON literal in a test: \(error)") }
}

@Suite struct ProposalMachineWithdrawTests {
    @Test func theAuthorWithdrawsWhileTestsRunAndLateResultsAreIgnored() {
        var m = makeMachine()
        _ = m.handle(.created(Revision(number: 1, changes: initialChanges)))
        _ = m.handle(.sandboxReady(isolation: "bwrap", durationMs: 5))
        #expect(m.status == .testing)
        let withdrawn = m.handle(.withdrawRequested(principal: author, role: .bot, reason: "superseded"))
        #expect(withdrawn.statuses == [.withdrawn])
        #expect(withdrawn.contains(.stopWork))
        #expect(withdrawn.events.first == .statusChanged(.withdrawn, revision: 1, attempt: 0, maxAttempts: 3, reason: "withdrawn by alice: superseded"))
        #expect(m.status.isTerminal)
        // The cancelled run's result and a late model reply change nothing.
        #expect(m.handle(.testsFinished(failed, outputSummary: "x")).statuses.isEmpty)
        #expect(m.handle(.fixReceived(fix("late"))).statuses.isEmpty)
        #expect(m.handle(.autoFixRequested(principal: "bob", role: .admin)).rejection == .invalidState)
        #expect(m.handle(.withdrawRequested(principal: "bob", role: .admin, reason: nil)).rejection == .invalidState)
    }

    @Test func onlyTheAuthorOrAnAdminMayWithdraw() {
        var m = makeMachine()
        m.toReview()
        #expect(m.handle(.withdrawRequested(principal: "otherbot", role: .bot, reason: nil)).rejection == .forbidden)
        #expect(m.handle(.withdrawRequested(principal: author, role: .viewer, reason: nil)).rejection == .forbidden)
        #expect(m.status == .awaitingReview)
        #expect(m.handle(.withdrawRequested(principal: "bob", role: .admin, reason: nil)).statuses == [.withdrawn])
    }

    @Test func whatIsBeingAppliedOrAppliedCannotBeWithdrawn() {
        var m = makeMachine()
        m.toReview()
        _ = m.handle(.review(principal: "bob", role: .admin, verdict: .approve, revision: 1, comment: nil))
        #expect(m.status == .applying)
        #expect(m.handle(.withdrawRequested(principal: author, role: .bot, reason: nil)).rejection == .invalidState)
        _ = m.handle(.applied(commit: "abc"))
        #expect(m.handle(.withdrawRequested(principal: "bob", role: .admin, reason: nil)).rejection == .invalidState)
        #expect(m.status == .applied)
    }

    @Test func anUnfixableProposalCanBeRejectedOrWithdrawnButNotApproved() {
        var m = makeMachine(maxAttempts: 0)
        _ = m.handle(.created(Revision(number: 1, changes: initialChanges)))
        _ = m.deployAndTest(failed)
        _ = m.handle(.analyzed(failure()))
        #expect(m.status == .unfixable)
        #expect(m.handle(.review(principal: "bob", role: .admin, verdict: .approve, revision: 1, comment: nil)).rejection == .invalidState)
        var copy = m
        #expect(copy.handle(.withdrawRequested(principal: author, role: .bot, reason: nil)).statuses == [.withdrawn])
        #expect(m.handle(.review(principal: "bob", role: .admin, verdict: .reject, revision: 1, comment: "won't fix")).statuses == [.rejected])
    }
}

/// The shared predicates (Protocol's ProposalStatus+Predicates) and the machine agree: what a predicate
/// allows, the machine accepts, and what it forbids, the machine refuses with invalid_state.
@Suite struct StatusPredicatesAgreeWithTheMachine {
    /// Machines parked in as many statuses as a script can reach.
    static var parked: [ProposalMachine] {
        var machines: [ProposalMachine] = []
        var m = makeMachine(fixMode: .manual)
        _ = m.handle(.created(Revision(number: 1, changes: initialChanges)))
        machines.append(m)  // deploying
        _ = m.handle(.sandboxReady(isolation: "bwrap", durationMs: 1))
        machines.append(m)  // testing
        _ = m.handle(.testsFinished(failed, outputSummary: "x"))
        machines.append(m)  // analyzing
        _ = m.handle(.analyzed(failure()))
        machines.append(m)  // tests_failed (manual)
        var fixing = m
        _ = fixing.handle(.autoFixRequested(principal: "bob", role: .admin))
        machines.append(fixing)  // fixing
        var review = makeMachine(quorum: 1)
        review.toReview()
        machines.append(review)  // awaiting_review
        var applying = review
        _ = applying.handle(.review(principal: "bob", role: .admin, verdict: .approve, revision: 1, comment: nil))
        machines.append(applying)  // applying
        var applied = applying
        _ = applied.handle(.applied(commit: "c"))
        machines.append(applied)  // applied
        var failedApply = applying
        _ = failedApply.handle(.applyFailed(reason: "x"))
        machines.append(failedApply)  // apply_failed
        var unfixable = makeMachine(maxAttempts: 0)
        _ = unfixable.handle(.created(Revision(number: 1, changes: initialChanges)))
        _ = unfixable.deployAndTest(failed)
        _ = unfixable.handle(.analyzed(failure()))
        machines.append(unfixable)  // unfixable
        var interrupted = makeMachine()
        _ = interrupted.handle(.created(Revision(number: 1, changes: initialChanges)))
        _ = interrupted.handle(.interrupted(reason: "restart"))
        machines.append(interrupted)  // interrupted
        return machines
    }

    @Test func withdrawRejectAndRollbackFollowThePredicates() {
        let statuses = Set(Self.parked.map(\.status))
        #expect(statuses.count >= 10, "\(statuses)")
        for machine in Self.parked {
            let status = machine.status
            var a = machine
            let withdrawn = a.handle(.withdrawRequested(principal: "bob", role: .admin, reason: nil))
            #expect((withdrawn.rejection == nil) == status.isWithdrawable, "withdraw while \(status)")
            var b = machine
            let rejected = b.handle(.review(principal: "bob", role: .admin, verdict: .reject, revision: machine.currentRevision, comment: "no"))
            #expect((rejected.rejection == nil) == status.isRejectable, "reject while \(status)")
            var c = machine
            let rolledBack = c.handle(.rollbackRequested(principal: "bob", role: .admin))
            #expect((rolledBack.rejection == nil) == status.isRollbackable, "rollback while \(status)")
            var d = machine
            let interrupted = d.handle(.interrupted(reason: "restart"))
            #expect(interrupted.statuses.contains(.interrupted) == status.isBusy, "restart while \(status)")
        }
    }
}

@Suite struct OutputBatcherTests {
    @Test func linesAreCutIntoBoundedOrderedBatches() {
        #expect(OutputBatcher.batches([]).isEmpty)
        let lines = (0..<1000).map { String(repeating: "x", count: $0 % 200) + "\($0)" }
        let batches = OutputBatcher.batches(lines, maxBytes: 4096)
        #expect(batches.flatMap { $0 } == lines)
        #expect(batches.allSatisfy { $0.count == 1 || $0.reduce(0) { $0 + $1.utf8.count } <= 4096 })
        #expect(batches.count > 10)
        let huge = String(repeating: "é", count: 50_000)
        #expect(OutputBatcher.batches(["a", huge, "b"], maxBytes: 1000).map(\.count) == [1, 1, 1])
    }

    /// The default limit at N-1, N and N+1 bytes: two lines that fit together share an event, one byte
    /// more splits them. Bytes are UTF-8 bytes, not characters.
    @Test func theLimitIsInclusiveAndCountsBytes() {
        let limit = OutputBatcher.maxEventBytes
        #expect(limit == 65_536)
        let half = String(repeating: "x", count: limit / 2)
        #expect(OutputBatcher.batches([half, String(half.dropLast())]).map(\.count) == [2])  // N-1
        #expect(OutputBatcher.batches([half, half]).map(\.count) == [2])  // N
        #expect(OutputBatcher.batches([half, half + "x"]).map(\.count) == [1, 1])  // N+1
        let twoByte = String(repeating: "é", count: limit / 4)  // limit/2 bytes
        #expect(OutputBatcher.batches([twoByte, twoByte, "x"]).map(\.count) == [2, 1])
    }
}

/// The apply step machine: base check, re-test on a moved repository, commit, post-apply command, revert.
@Suite struct ProposalMachineApplyTests {
    /// Awaiting review of revision 1 whose sandbox was made from commit "base1", approved.
    func approved() -> ProposalMachine {
        var m = makeMachine()
        _ = m.handle(.created(Revision(number: 1, changes: initialChanges)))
        _ = m.handle(.sandboxReady(isolation: "bwrap", durationMs: 1, baseCommit: "base1"))
        _ = m.handle(.testsFinished(passed, outputSummary: "ok"))
        _ = m.handle(.review(principal: "bob", role: .admin, verdict: .approve, revision: 1, comment: nil))
        return m
    }

    @Test func anUnmovedRepositoryIsCommittedAtOnce() {
        var m = approved()
        #expect(m.phase == .applying(.checkingBase))
        #expect(m.handle(.baseChecked(head: "base1")) == [.applyToRepository(revision: 1, approvers: ["bob"])])
        #expect(m.handle(.committed(commit: "c1", postApply: false)).events.map(\.kind) == ["applied", "status_changed"])
        #expect(m.phase == .applied(commit: "c1", rollingBack: false) && m.commit == "c1")
    }

    @Test func aMovedRepositoryIsReTestedFirst() {
        var m = approved()
        #expect(m.handle(.baseChecked(head: "moved2")) == [.runPreApplyTests(revision: 1, baseCommit: "moved2")])
        #expect(m.status == .applying)
        var failing = m
        let failed = failing.handle(.preApplyTestsFinished(passed: false, detail: "exit 1: boom"))
        #expect(failing.status == .applyFailed)
        #expect(failed.events.first == .applyFailed(reason: "the repository moved since the sandbox's base commit and the tests fail on the new base: exit 1: boom"))
        #expect(m.handle(.preApplyTestsFinished(passed: true, detail: "exit 0")) == [.applyToRepository(revision: 1, approvers: ["bob"])])
        // A result for a step that is over is ignored, not applied twice.
        #expect(m.handle(.preApplyTestsFinished(passed: true, detail: "again")).first.map { if case .ignored = $0 { true } else { false } } == true)
    }

    @Test func aFailingPostApplyCommandRevertsTheCommit() {
        var m = approved()
        _ = m.handle(.baseChecked(head: "base1"))
        #expect(m.handle(.committed(commit: "c1", postApply: true)) == [.runPostApply(commit: "c1")])
        #expect(m.handle(.postApplyFinished(passed: false, detail: "exit 3")) == [.revert(commit: "c1")])
        var unrevertable = m
        let reverted = m.handle(.reverted(revertCommit: "r1"))
        #expect(reverted.prefix(2) == [.record(.applied(revision: 1, commit: "c1")), .record(.reverted(revision: 1, commit: "c1", revertCommit: "r1"))])
        #expect(reverted.events.first == .applyFailed(reason: "post-apply command failed (exit 3); commit c1 was reverted by r1"))
        #expect(m.status == .applyFailed)
        let stuck = unrevertable.handle(.revertFailed(reason: "conflict"))
        #expect(stuck.events.first == .applyFailed(reason: "post-apply command failed (exit 3); and reverting c1 failed: conflict"))
    }

    @Test func aPassingPostApplyCommandApplies() {
        var m = approved()
        _ = m.handle(.baseChecked(head: nil))
        _ = m.handle(.committed(commit: "c1", postApply: true))
        #expect(m.handle(.postApplyFinished(passed: true, detail: "exit 0")).events.map(\.kind) == ["applied", "status_changed"])
        #expect(m.status == .applied)
    }
}

/// The model's raw reply: parsed by the machine, one re-ask when malformed.
@Suite struct ProposalMachineReplyTests {
    func fixing() -> ProposalMachine {
        var m = makeMachine(maxAttempts: 2)
        _ = m.handle(.created(Revision(number: 1, changes: initialChanges)))
        _ = m.deployAndTest(failed)
        _ = m.handle(.analyzed(failure()))
        return m
    }

    @Test func aGoodReplyMakesARevision() {
        var m = fixing()
        let good = #"{"unfixable": false, "explanation": "guard the import", "changes": [{"path": "app.py", "action": "modify", "content": "x = 1\n"}]}"#
        #expect(m.handle(.modelReplied(text: good)).kinds.contains("fix_generated"))
        #expect(m.currentRevision == 2)
    }

    @Test func aMalformedReplyIsAskedAgainOnceThenCountsAsFailed() {
        var m = fixing()
        let reask = m.handle(.modelReplied(text: "Sure, here is the fix!"))
        guard case .reaskFix(let attempt, let context, let previous, let complaint)? = reask.first, reask.count == 1 else {
            Issue.record("expected one re-ask, got \(reask)")
            return
        }
        #expect(attempt == 1 && context.attempt == 1 && previous == "Sure, here is the fix!" && !complaint.isEmpty)
        #expect(m.phase == .fixing(reasked: true))
        let second = m.handle(.modelReplied(text: "still not JSON"))
        #expect(second.events.first.map { if case .fixFailed(1, let reason) = $0 { reason.hasPrefix("the LLM's reply was refused") } else { false } } == true)
        #expect(second.fixRequest?.attempt == 2)  // auto mode: the next attempt starts
    }

    @Test func aModelFailureIsAFailedAttempt() {
        var m = fixing()
        #expect(m.handle(.modelFailed(reason: "HTTP 529")).events.first == .fixFailed(attempt: 1, reason: "HTTP 529"))
    }
}

/// The nested apply machine on its own: each step takes only its own result.
@Suite struct ApplyStepTests {
    typealias Step = ProposalMachine.ApplyStep

    @Test func aMovedBaseIsReTestedAndAnUnknownOneIsNot() {
        var moved = Step.checkingBase
        #expect(moved.baseChecked(head: "h2", testedBase: "h1") == .runPreApplyTests(head: "h2") && moved == .retesting(head: "h2"))
        var unknown = Step.checkingBase
        #expect(unknown.baseChecked(head: nil, testedBase: "h1") == .commit && unknown == .committing)
        var untested = Step.checkingBase
        #expect(untested.baseChecked(head: "h2", testedBase: nil) == .commit)
    }

    @Test func everyStepIgnoresTheOthersResults() {
        let steps: [Step] = [.checkingBase, .retesting(head: "h"), .committing, .smokeTesting(commit: "c"), .reverting(commit: "c", detail: "d; ")]
        for step in steps {
            var s = step
            let accepted: [Bool] = [
                s.baseChecked(head: "h", testedBase: "h") != .ignored,
            ]
            s = step
            let preApply = s.preApplyTestsFinished(passed: true, detail: "") != .ignored
            s = step
            let postApply = s.postApplyFinished(passed: true, detail: "") != .ignored
            s = step
            let reverted = s.reverted("r") != .ignored
            s = step
            let committed = s.committed("c", postApply: false) != .ignored
            s = step
            let commitFailed = s.commitFailed("x") != .ignored
            let expected: [Bool] = switch step {
            case .checkingBase: [true, false, false, false, true, true]
            case .retesting: [false, true, false, false, false, true]
            case .committing: [false, false, false, false, true, true]
            case .smokeTesting: [false, false, true, false, false, false]
            case .reverting: [false, false, false, true, false, false]
            }
            #expect(accepted + [preApply, postApply, reverted, committed, commitFailed] == expected, "\(step)")
        }
    }

    @Test func aFailedPostApplyNamesTheCommitAndItsRevert() {
        var s = Step.smokeTesting(commit: "c1")
        #expect(s.postApplyFinished(passed: false, detail: "exit 2") == .revert(commit: "c1"))
        var reverted = s
        #expect(reverted.reverted("r1") == .failed(reason: "post-apply command failed (exit 2); commit c1 was reverted by r1", commit: "c1", revertedBy: "r1"))
        #expect(s.revertFailed("conflict") == .failed(reason: "post-apply command failed (exit 2); and reverting c1 failed: conflict", commit: "c1", revertedBy: nil))
    }
}

/// Results no phase waits for change nothing (each handler asks `awaited`, one exhaustive switch).
@Suite struct ProposalMachineStrayResultTests {
    @Test func aRollbackResultWithoutARollbackInFlightIsIgnored() {
        var m = makeMachine()
        m.toReview()
        _ = m.handle(.review(principal: "bob", role: .admin, verdict: .approve, revision: 1, comment: nil))
        _ = m.handle(.applied(commit: "abc"))
        #expect(m.handle(.rolledBack(revertCommit: "def")) == [.ignored("rolled_back while applied")])
        #expect(m.handle(.rollbackFailed(reason: "x")) == [.ignored("rollback_failed while applied")])
        #expect(m.phase == .applied(commit: "abc", rollingBack: false))
    }

    @Test func eachResultIsTakenOnlyInTheOnePhaseWaitingForIt() {
        var m = makeMachine()
        _ = m.handle(.created(Revision(number: 1, changes: initialChanges)))
        #expect(m.awaited == .sandbox)
        #expect(m.handle(.analyzed(failure())) == [.ignored("analyzed while deploying")])
        #expect(m.handle(.modelReplied(text: "{}")) == [.ignored("model_replied while deploying")])
        _ = m.handle(.sandboxReady())
        #expect(m.awaited == .testRun)
        #expect(m.handle(.sandboxFailed(reason: "late")) == [.ignored("sandbox_failed while testing")])
        _ = m.handle(.testsFinished(passed, outputSummary: "ok"))
        #expect(m.awaited == .nothing)
    }
}
