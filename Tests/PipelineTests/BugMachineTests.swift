// BugMachineTests: event scripts through the bug workflow's machine — analysis, reproduction, approaches as
// nested repair loops, ranking, presenting, commands, interruption and the stored record.

import Foundation
import Protocol
import Testing

@testable import Pipeline

private let report = BugReport(
    id: "b-1", repo: "demo", title: "Wrong password for correct passwords", description: "users cannot sign in",
    severity: .high, evidence: ["WARN login failed user=x reason=wrong_password"], approaches: 3, author: "alice")

private func machine(approaches: Int = 3, maxParallel: Int = 3, maxAttempts: Int = 2) -> BugMachine {
    var r = report
    r.approaches = approaches
    return BugMachine(report: r, configuration: .init(maxAttempts: maxAttempts, maxParallel: maxParallel))
}

private let analysisReply = #"{"summary": "check_password skips normalisation", "locations": [{"file": "app/auth.py", "line": 43, "why": "raw input hashed"}], "causes": ["one-sided normalisation"]}"#
private let reproducerReply = #"{"path": "tests/test_bug.py", "content": "def test_it():\n    assert False\n", "explanation": "registers a normalised password"}"#

private func approachReply(_ content: String, path: String = "app/auth.py", explanation: String = "Normalise both sides.\nDetails") -> String {
    JSONValue.object([
        "unfixable": .bool(false), "explanation": .string(explanation),
        "changes": .array([.object(["path": .string(path), "action": .string("modify"), "content": .string(content)])]),
    ]).jsonString
}

private let reproducingFailure = FailureAnalysis(
    category: .assertion, categories: [.assertion], rootCause: "assertion failed in tests/test_bug.py",
    locations: [SourceLocation(file: "tests/test_bug.py", line: 2)], messages: ["AssertionError"])
private let baseOutput = "FAILED tests/test_bug.py::test_it - AssertionError\n1 failed, 5 passed"
private let failedRun = TestResult(exitCode: 1, passed: 5, failed: 1, durationMs: 100)
private let passingRun = TestResult(exitCode: 0, passed: 6, failed: 0, durationMs: 90)

extension [BugAction] {
    var kinds: [String] { compactMap { if case .publish(let kind, _) = $0 { kind } else { nil } } }
    func data(_ kind: String) -> JSONValue? {
        compactMap { if case .publish(let k, let data) = $0, k == kind { data } else { nil } }.last
    }
    var statuses: [BugStatus] { compactMap { if case .setStatus(let s, _) = $0 { s } else { nil } } }
    var rejection: RejectCode? { compactMap { if case .reject(let c, _) = $0 { c } else { nil } }.first }
    var asks: [Int] { compactMap { if case .askApproach(let n, _, _) = $0 { n } else { nil } } }
    func steps(_ n: Int) -> [ProposalAction] { compactMap { if case .approach(let a, let step) = $0, a == n { step } else { nil } } }
    var measure: [Int: [FileChange]]? { compactMap { if case .measure(let m, _, _) = $0 { m } else { nil } }.first }
    var proposal: (Int, [FileChange])? { compactMap { if case .propose(let n, let c, _) = $0 { (n, c) } else { nil } }.first }
}

/// Drives a machine to `fixing` with a verified reproducer; returns the actions of the last step.
@discardableResult
private func reproduce(_ m: inout BugMachine) -> [BugAction] {
    _ = m.handle(.reported)
    _ = m.handle(.analysisReplied(text: analysisReply, located: ["app/auth.py"]))
    _ = m.handle(.reproducerReplied(text: reproducerReply))
    return m.handle(.baseRunFinished(failedRun, output: baseOutput, analysis: reproducingFailure))
}

/// Runs approach `n` (already started) through deploy and a test run with `result`.
private func run(_ m: inout BugMachine, _ n: Int, _ result: TestResult, output: String = "") -> [BugAction] {
    _ = m.handle(.approach(n, .sandboxReady()))
    return m.handle(.approach(n, .testsFinished(result, outputSummary: output)))
}

@Suite("BugMachine")
struct BugMachineTests {
    @Test func aReportIsAnalysedThenReproduced() {
        var m = machine()
        let first = m.handle(.reported)
        #expect(first.kinds == ["bug_reported", "status_changed"])
        #expect(first.contains { if case .askAnalysis(nil) = $0 { true } else { false } })
        let analysed = m.handle(.analysisReplied(text: analysisReply, located: ["app/auth.py"]))
        #expect(analysed.kinds == ["bug_analysis", "status_changed"])
        #expect(m.status == .reproducing)
        #expect(m.analysis?.locations.first?.file == "app/auth.py")
        let written = m.handle(.reproducerReplied(text: reproducerReply))
        #expect(written.kinds == ["reproducer_written"])
        #expect(written.contains { if case .runBase(let change?) = $0 { change.path == "tests/test_bug.py" } else { false } })
        let verified = m.handle(.baseRunFinished(failedRun, output: baseOutput, analysis: reproducingFailure))
        #expect(verified.kinds.prefix(2) == ["reproducer_verified", "status_changed"])
        #expect(verified.data("reproducer_verified")?["fails_on_base"] == .bool(true))
        #expect(m.reproduced == true)
        #expect(m.status == .fixing)
        #expect(verified.asks == [1])
    }

    @Test func aMalformedAnalysisIsAskedOnceMoreThenTheNavigatorStandsIn() {
        var m = machine()
        _ = m.handle(.reported)
        let again = m.handle(.analysisReplied(text: "no json here", located: ["a.py"]))
        #expect(again.contains { if case .askAnalysis(let reask?) = $0 { reask.reply == "no json here" } else { false } })
        #expect(m.status == .analyzing)
        let fallback = m.handle(.analysisReplied(text: #"{"summary": 3}"#, located: ["a.py"]))
        #expect(fallback.kinds.first == "bug_analysis")
        #expect(m.analysis?.locations.map(\.file) == ["a.py"])
        #expect(m.status == .reproducing)
    }

    @Test func analysisLocationsOutsideTheRepositoryAreRefused() {
        #expect(throws: BugReplyError.self) {
            try BugReplies.analysis(#"{"summary": "s", "locations": [{"file": "../../etc/passwd", "line": 1}], "causes": []}"#, located: [])
        }
        #expect(throws: BugReplyError.self) {
            try BugReplies.reproducer(#"{"path": "/tmp/x.py", "content": "x", "explanation": "e"}"#)
        }
    }

    @Test(arguments: [
        (TestResult(exitCode: 0, passed: 6, failed: 0), FailureCategory.other, "passes on the unchanged repository"),
        (TestResult(exitCode: 1, failed: 1), FailureCategory.import, "import error in the test itself"),
        (TestResult(exitCode: 1, failed: 1), FailureCategory.syntax, "syntax error in the test itself"),
        (TestResult(exitCode: -1, timedOut: true), FailureCategory.timeout, "timed out"),
    ])
    func aReproducerThatDoesNotShowTheBugIsRefusedAndAskedAgain(result: TestResult, category: FailureCategory, reason: String) {
        var m = machine()
        _ = m.handle(.reported)
        _ = m.handle(.analysisReplied(text: analysisReply, located: []))
        _ = m.handle(.reproducerReplied(text: reproducerReply))
        let analysis = FailureAnalysis(category: category, categories: [category], rootCause: "x", locations: [SourceLocation(file: "tests/test_bug.py", line: 1)], messages: [])
        let refused = m.handle(.baseRunFinished(result, output: "", analysis: analysis))
        #expect(refused.kinds == ["reproducer_rejected"])
        #expect(refused.data("reproducer_rejected")?["reason"]?.stringValue?.contains(reason) == true)
        #expect(refused.contains { if case .askReproducer(2, let previous?) = $0 { previous.complaint.contains(reason) } else { false } })
        // The second one is refused too: the bug goes on, not reproduced, without another base run.
        _ = m.handle(.reproducerReplied(text: reproducerReply))
        let given = m.handle(.baseRunFinished(result, output: "", analysis: analysis))
        #expect(given.kinds.first == "reproducer_rejected")
        #expect(m.reproduced == false)
        #expect(m.status == .fixing)
        #expect(given.asks == [1])
    }

    @Test func aFailureOutsideTheReproducersTestsIsNotAReproduction() {
        var m = machine()
        _ = m.handle(.reported)
        _ = m.handle(.analysisReplied(text: analysisReply, located: []))
        _ = m.handle(.reproducerReplied(text: reproducerReply))
        let other = "FAILED tests/test_other.py::test_x - AssertionError\n1 failed"
        let refused = m.handle(.baseRunFinished(failedRun, output: other, analysis: reproducingFailure))
        #expect(refused.data("reproducer_rejected")?["reason"]?.stringValue?.contains("not in the reproducer's tests") == true)
    }

    @Test func noReproducerFromTheModelStillRunsTheBaseThenFixes() {
        var m = machine()
        _ = m.handle(.reported)
        _ = m.handle(.analysisReplied(text: analysisReply, located: []))
        let failed = m.handle(.reproducerFailed(reason: "HTTP 529"))
        #expect(failed.kinds == ["reproducer_rejected"])
        #expect(failed.contains { if case .runBase(nil) = $0 { true } else { false } })
        let fixing = m.handle(.baseRunFinished(passingRun, output: "", analysis: reproducingFailure))
        #expect(m.reproduced == false)
        #expect(fixing.asks == [1])
    }

    @Test func approachesAreAskedInTurnEachSeeingTheOthersAndRunInParallel() {
        var m = machine(maxParallel: 2)
        reproduce(&m)
        let first = m.handle(.approachReplied(approach: 1, text: approachReply("v1")))
        #expect(first.kinds.contains("approach_started"))
        #expect(first.steps(1) == [.deploy(revision: 1)])
        // The next approach is asked with the first's summary and a different strategy.
        let ask2 = first.compactMap { if case .askApproach(2, let strategy, let others) = $0 { (strategy, others) } else { nil } }.first
        #expect(ask2?.1 == ["#1 (\(BugMachine.strategy(1))): Normalise both sides."])
        #expect(ask2?.0 != BugMachine.strategy(1))
        // The reproducer is part of every approach's change.
        #expect(m.approaches[0].machine?.revisions.first?.changes.map(\.path).sorted() == ["app/auth.py", "tests/test_bug.py"])
        let second = m.handle(.approachReplied(approach: 2, text: approachReply("v2", explanation: "Minimal.")))
        #expect(second.steps(2) == [.deploy(revision: 1)])
        // Two slots: the third waits until one finishes.
        let third = m.handle(.approachReplied(approach: 3, text: approachReply("v3333", path: "app/users.py", explanation: "Bigger.")))
        #expect(third.steps(3).isEmpty)
        #expect(m.approaches[2].status == .queued)
        let done2 = run(&m, 2, passingRun)
        #expect(m.approaches[1].status == .qualified)
        #expect(done2.steps(3) == [.deploy(revision: 1)])
    }

    @Test func theSameApproachTwiceIsADuplicateAndDoesNotRun() {
        var m = machine()
        reproduce(&m)
        _ = m.handle(.approachReplied(approach: 1, text: approachReply("same\n")))
        let dup = m.handle(.approachReplied(approach: 2, text: approachReply("same  \n\n", explanation: "Another idea")))
        #expect(dup.kinds.contains("approach_duplicate"))
        #expect(dup.data("approach_duplicate")?["duplicate_of"] == .int(1))
        #expect(dup.steps(2).isEmpty)
        #expect(m.approaches[1].status == .duplicate)
        let dup3 = m.handle(.approachReplied(approach: 3, text: approachReply("same")))
        #expect(m.approaches[2].status == .duplicate)
        #expect(dup3.asks.isEmpty)
    }

    @Test func aBreakingApproachFailsWithTheTestsItBrokeAndTheSmallestQualifiedWins() {
        var m = machine(maxParallel: 3, maxAttempts: 1)
        reproduce(&m)
        _ = m.handle(.approachReplied(approach: 1, text: approachReply("breaks")))
        _ = m.handle(.approachReplied(approach: 2, text: approachReply("minimal")))
        _ = m.handle(.approachReplied(approach: 3, text: approachReply("bigger", path: "app/passwords.py")))
        // #1 breaks a test that passed on the base; its one fix attempt is judged unfixable.
        let broken = run(&m, 1, failedRun, output: "FAILED tests/test_auth.py::test_case_sensitive - AssertionError\n1 failed")
        #expect(m.approaches[0].breaking == ["tests/test_auth.py::test_case_sensitive"])
        #expect(broken.steps(1) == [.analyze(revision: 1)])
        _ = m.handle(.approach(1, .analyzed(reproducingFailure)))
        let gaveUp = m.handle(.approach(1, .modelReplied(text: #"{"unfixable": true, "explanation": "cannot"}"#)))
        #expect(gaveUp.kinds.contains("unfixable"))
        #expect(m.approaches[0].status == .failed)
        _ = run(&m, 3, TestResult(exitCode: 0, passed: 6, failed: 0, durationMs: 80))
        let last = run(&m, 2, TestResult(exitCode: 0, passed: 6, failed: 0, durationMs: 95))
        #expect(Set(last.measure?.keys ?? [:].keys) == [2, 3])
        #expect(last.measure?[2]?.map(\.path) == ["app/auth.py"])  // sizes leave the shared reproducer out
        let ranked = m.handle(.measured([2: ApproachSize(files: 1, lines: 4), 3: ApproachSize(files: 2, lines: 53)], baseDurationsMs: []))
        #expect(m.winner == 2)
        #expect(ranked.data("approaches_ranked")?["winner"] == .int(2))
        #expect(m.rankingReason?.contains("fewer files") == true)
        let approaches = ranked.data("approaches_ranked")?["approaches"]?.arrayValue ?? []
        #expect(approaches.first?["breaking"] == .array([.string("tests/test_auth.py::test_case_sensitive")]))
        #expect(ranked.proposal?.0 == 2)
        #expect(ranked.proposal?.1.map(\.path).sorted() == ["app/auth.py", "tests/test_bug.py"])
        let proposed = m.handle(.proposalCreated(proposal: "p-1", approach: 2, atMilliseconds: 5))
        #expect(proposed.kinds == ["bug_proposed", "status_changed"])
        #expect(m.status == .proposed)
        // Applied → fixed; another proposal's status is ignored.
        #expect(m.handle(.proposalStatus(proposal: "p-other", status: .applied, commit: "c")).kinds.isEmpty)
        let fixed = m.handle(.proposalStatus(proposal: "p-1", status: .applied, commit: "abc"))
        #expect(fixed.kinds.contains("bug_fixed"))
        #expect(m.status == .fixed)
    }

    @Test func rankingPrefersFewerFilesThenLinesThenDurationThenAttempts() {
        func approach(_ n: Int, files: Int, lines: Int, ms: Int) -> Approach {
            var machine = ProposalMachine(info: ProposalInfo(id: "x", title: "t", description: "d", repo: "r", author: "a", createdAt: ""))
            _ = machine.handle(.created(Revision(number: 1, changes: [])))
            _ = machine.handle(.sandboxReady())
            _ = machine.handle(.testsFinished(TestResult(exitCode: 0, durationMs: ms), outputSummary: ""))
            return Approach(number: n, strategy: "s", status: .qualified, summary: "", changes: [], machine: machine, breaking: [], files: files, lines: lines)
        }
        #expect(BugMachine.rank([approach(1, files: 2, lines: 1, ms: 1), approach(2, files: 1, lines: 9, ms: 9)]).winner == 2)
        #expect(BugMachine.rank([approach(1, files: 1, lines: 5, ms: 1), approach(2, files: 1, lines: 4, ms: 9)]).winner == 2)
        let byTime = BugMachine.rank([approach(1, files: 1, lines: 4, ms: 50), approach(2, files: 1, lines: 4, ms: 10)])
        #expect(byTime.winner == 2)
        #expect(byTime.why.contains("faster"))
        #expect(BugMachine.rank([]).winner == nil)
    }

    @Test func withPerfRunsTheMedianDurationsDecideBetweenEqualSizes() {
        var r = report
        r.perfRuns = 3
        var m = BugMachine(report: r, configuration: .init(maxAttempts: 1, maxParallel: 3))
        reproduce(&m)
        _ = m.handle(.approachReplied(approach: 1, text: approachReply("one")))
        _ = m.handle(.approachReplied(approach: 2, text: approachReply("two")))
        _ = m.handle(.approachReplied(approach: 3, text: #"{"unfixable": true, "explanation": "no"}"#))
        _ = run(&m, 1, TestResult(exitCode: 0, passed: 6, failed: 0, durationMs: 10))
        let last = run(&m, 2, TestResult(exitCode: 0, passed: 6, failed: 0, durationMs: 99))
        #expect(last.contains { if case .measure(_, 3, let reproducer?) = $0 { reproducer.path == "tests/test_bug.py" } else { false } })
        // #1's single run was faster, but its median over three runs is slower.
        let ranked = m.handle(.measured(
            [1: ApproachSize(files: 1, lines: 2, durationsMs: [500, 40, 520]), 2: ApproachSize(files: 1, lines: 2, durationsMs: [60, 400, 70])],
            baseDurationsMs: [55, 65, 300]))
        #expect(m.winner == 2)
        let data = ranked.data("approaches_ranked")
        #expect(data?["base_duration_ms"] == .int(65))
        #expect(data?["perf_runs"] == .int(3))
        #expect(data?["approaches"]?.arrayValue?[1]["duration_ms"] == .int(70))
        #expect(median([3, 1, 2, 4]) == 2)
    }

    @Test func nothingQualifiedEndsUnfixedWithEachReason() {
        var m = machine(approaches: 1, maxAttempts: 0)
        reproduce(&m)
        _ = m.handle(.approachReplied(approach: 1, text: approachReply("x")))
        _ = run(&m, 1, failedRun)
        let done = m.handle(.approach(1, .analyzed(reproducingFailure)))
        #expect(done.measure == [:])
        let unfixed = m.handle(.measured([:], baseDurationsMs: []))
        #expect(unfixed.kinds.contains("bug_unfixed"))
        #expect(m.status == .unfixed)
    }

    @Test func chooseApproachIsForAdminsAndQualifiedApproachesOnly() {
        var m = machine(maxAttempts: 1)
        reproduce(&m)
        _ = m.handle(.approachReplied(approach: 1, text: approachReply("one")))
        _ = m.handle(.approachReplied(approach: 2, text: approachReply("two")))
        _ = m.handle(.approachReplied(approach: 3, text: #"{"unfixable": true, "explanation": "no"}"#))
        _ = run(&m, 1, passingRun)
        _ = run(&m, 2, passingRun)
        _ = m.handle(.measured([1: ApproachSize(files: 1, lines: 1), 2: ApproachSize(files: 1, lines: 2)], baseDurationsMs: []))
        #expect(m.handle(.chooseApproach(principal: "a", role: .admin, approach: 2)).rejection == .invalidState)  // still proposing
        _ = m.handle(.proposalCreated(proposal: "p-1", approach: 1, atMilliseconds: 1))
        #expect(m.handle(.chooseApproach(principal: "bot", role: .bot, approach: 2)).rejection == .forbidden)
        #expect(m.handle(.chooseApproach(principal: "a", role: .admin, approach: 1)).rejection == .invalidState)
        #expect(m.handle(.chooseApproach(principal: "a", role: .admin, approach: 3)).rejection == .invalidState)
        #expect(m.handle(.chooseApproach(principal: "a", role: .admin, approach: 9)).rejection == .invalidState)
        let chosen = m.handle(.chooseApproach(principal: "a", role: .admin, approach: 2))
        #expect(chosen.contains { if case .withdrawProposal("p-1", _) = $0 { true } else { false } })
        #expect(chosen.proposal?.0 == 2)
        _ = m.handle(.proposalCreated(proposal: "p-2", approach: 2, atMilliseconds: 2))
        #expect(m.proposal == "p-2")
        #expect(m.proposals == ["p-1", "p-2"])
    }

    @Test func aRestartInterruptsTheApproachesAndResumeContinuesThem() {
        var m = machine(maxParallel: 1)
        reproduce(&m)
        _ = m.handle(.approachReplied(approach: 1, text: approachReply("one")))
        _ = m.handle(.approach(1, .sandboxReady()))
        _ = m.handle(.approachReplied(approach: 2, text: approachReply("two")))
        // #1 is testing, #2 queued, #3's request is out.
        let stopped = m.handle(.interrupted(reason: "restart"))
        #expect(m.status == .interrupted)
        #expect(stopped.kinds.contains("status_changed"))
        #expect(m.approaches.map(\.status) == [.interrupted, .queued, .interrupted])
        #expect(m.handle(.approach(1, .testsFinished(passingRun, outputSummary: ""))).contains { if case .ignored = $0 { true } else { false } })
        #expect(m.handle(.resumeRequested(principal: "bot", role: .bot)).rejection == .forbidden)
        // Through the stored record, as after a real restart.
        var loaded = (try? BugMachine.load(document: m.record()))!
        #expect(loaded.record() == m.record())
        let resumed = loaded.handle(.resumeRequested(principal: "admin", role: .admin))
        #expect(loaded.status == .fixing)
        #expect(resumed.steps(1) == [.deploy(revision: 1)])
        #expect(resumed.asks == [3])
        #expect(loaded.handle(.resumeRequested(principal: "admin", role: .admin)).rejection == .invalidState)
    }

    @Test func theRecordRoundTripsAndANewerVersionIsRefused() throws {
        var m = machine()
        reproduce(&m)
        _ = m.handle(.approachReplied(approach: 1, text: approachReply("one")))
        let loaded = try BugMachine.load(document: m.record())
        #expect(loaded.record() == m.record())
        #expect(loaded.approaches.first?.machine?.revisions.count == 1)
        let newer = m.record().replacingOccurrences(of: #""version":1"#, with: #""version":99"#)
        #expect(throws: RecordError.self) { try BugMachine.load(document: newer) }
        #expect(throws: RecordError.self) { try BugMachine.load(document: "[]") }
    }

    @Test func lineDiffCountsChangedLines() {
        #expect(LineDiff.changedLines(old: "a\nb\nc\n", new: "a\nB\nc\n") == 2)
        #expect(LineDiff.changedLines(old: "a\nb\n", new: "a\nb\nc\n") == 1)
        #expect(LineDiff.changedLines(old: "", new: "x\ny") == 2)
        let big = (0..<3000).map { "line \($0)" }.joined(separator: "\n")
        #expect(LineDiff.changedLines(old: big, new: big + "\nmore", maxCells: 10) == 1)
        #expect(LineDiff.figures([FileChange(path: "n.py", action: .create, content: "a\nb")], base: [:]) == (1, 2))
    }
}
