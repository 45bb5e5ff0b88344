// ProposalWorkflowTests: whole proposals through PipelineService on fake executors — the demo flow, the re-ask,
// the re-test when the repository moved, the post-apply revert, request_changes, a restart, a burst of
// commands on one proposal, loading on demand and eviction, and the figures.
import Pipeline
import Protocol
import Store
import Testing

@testable import MedicHost

private func review(_ id: String, _ revision: Int64, _ verdict: ReviewVerdict, _ comment: String? = nil) -> ClientMessage {
    .review(ReviewCommand(proposal: id, revision: revision, verdict: verdict, comment: comment))
}

/// The text of a request's turns, joined.
private func text(_ request: ModelRequest) -> String {
    request.messages.flatMap(\.content).map { if case .text(let text) = $0 { text } else { "" } }.joined(separator: "\n")
}

@Suite("Proposal workflow on fake executors")
struct ProposalWorkflowTests {
    @Test func theDemoFlowFixesReviewsAndApplies() throws {
        let world = try World()
        world.model.replies = [fixReply([("calc.py", goodAdd)])]
        let id = try world.propose([brokenAdd])
        #expect(world.status(id) == "awaiting_review")
        #expect(world.store.statuses(id) == [
            "deploying", "testing", "tests_failed", "analyzing", "fixing", "deploying", "testing", "tests_passed", "awaiting_review",
        ])
        let kinds = world.store.kinds("proposal:\(id)")
        #expect(kinds.first == "proposal_created")
        #expect(kinds.filter { $0 == "test_output" }.count == 2 && kinds.filter { $0 == "test_finished" }.count == 2)
        #expect(kinds.contains("analysis") && kinds.contains("fix_generated"))
        // The model was asked once, with the failing file read from the sandbox and the failure's output.
        let request = try #require(world.model.requests.first)
        #expect(world.model.requests.count == 1)
        #expect(request.labels["purpose"] == "fix" && request.labels["attempt"] == "1")
        #expect(text(request).contains("return a - b") && text(request).contains("AssertionError"))
        #expect(world.store.ephemeral.contains { $0.kind == "fix_delta" })

        let ack = try world.command(review(id, 2, .approve), id: "c1", as: World.alice).get()
        #expect(ack["status"]?.stringValue == "applying")
        #expect(world.status(id) == "applied")
        #expect(world.git.files["calc.py"] == goodAdd)
        #expect(world.git.commits.count == 2 && world.git.commits[1].message.contains("Approved-by: alice"))
        #expect(world.store.writes.flatMap(\.appliedChanges).map(\.commit) == ["c1"])
        #expect(world.sandbox.removedDirectories == [id])  // a finished proposal's sandbox goes
    }

    @Test func aMalformedReplyIsAskedAgainOnceWithTheComplaint() throws {
        let world = try World()
        world.model.replies = ["Sure! Here is the fix: add instead of subtract.", fixReply([("calc.py", goodAdd)])]
        let id = try world.propose([brokenAdd])
        #expect(world.status(id) == "awaiting_review")
        #expect(world.model.requests.count == 2)
        let retry = try #require(world.model.requests.last)
        #expect(retry.messages.map(\.role) == [.user, .assistant, .user])
        #expect(text(retry).contains("Sure! Here is the fix"))
        #expect(world.model.requests[0].messages.count == 1)
    }

    @Test func twoMalformedRepliesEndTheAttempt() throws {
        let world = try World { $0.maxAttempts = 1 }
        world.model.replies = ["no json", "still no json"]
        let id = try world.propose([brokenAdd])
        #expect(world.model.requests.count == 2)
        #expect(world.status(id) == "unfixable")
        #expect(world.store.kinds("proposal:\(id)").contains("fix_failed"))
    }

    @Test func whenTheRepositoryMovedTheRevisionIsReTestedAndNotCommittedIfItFails() throws {
        let world = try World()
        let id = try world.propose([FileChange(path: "NOTES", action: .create, content: "hello\n")])
        #expect(world.status(id) == "awaiting_review")
        let runsBefore = world.sandbox.runs.count
        world.git.commitByOthers(["calc.py": "def add(a, b):\n    return 0\n"])
        try world.command(review(id, 1, .approve), as: World.alice).get()
        #expect(world.sandbox.runs.count == runsBefore + 1)  // the re-test, on the new base
        #expect(world.sandbox.runs.last?.files["calc.py"]?.contains("return 0") == true)
        #expect(world.sandbox.runs.last?.files["NOTES"] == "hello\n")
        #expect(world.status(id) == "apply_failed")
        #expect(world.git.commits.count == 2)  // only the other commit: nothing of the proposal
        let reason = world.store.events["proposal:\(id)"]?.last { $0.kind == "status_changed" }?.data["reason"]?.stringValue
        #expect(reason?.contains("repository moved") == true)
    }

    @Test func whenTheRepositoryMovedAndTheTestsStillPassItIsCommittedOnTheNewBase() throws {
        let world = try World()
        let id = try world.propose([FileChange(path: "NOTES", action: .create, content: "hello\n")])
        world.git.commitByOthers(["OTHER": "x\n"])
        try world.command(review(id, 1, .approve), as: World.alice).get()
        #expect(world.status(id) == "applied")
        #expect(world.git.files["OTHER"] == "x\n" && world.git.files["NOTES"] == "hello\n")
    }

    @Test func aFailingPostApplyCommandRevertsTheCommit() throws {
        let world = try World {
            $0.repositories[0].postApplyCommand = "./smoke"
        }
        let judge = world.sandbox.judge
        world.sandbox.judge = { run in run.command == "./smoke" ? .fail(["smoke: service does not start"]) : judge(run) }
        let id = try world.propose([FileChange(path: "NOTES", action: .create, content: "hello\n")])
        try world.command(review(id, 1, .approve), as: World.alice).get()
        #expect(world.sandbox.runs.last?.command == "./smoke")
        #expect(world.status(id) == "apply_failed")
        #expect(world.git.commits.map(\.message).last?.hasPrefix("Revert c1") == true)
        #expect(world.git.files["NOTES"] == nil)
        let reason = world.store.events["proposal:\(id)"]?.last { $0.kind == "status_changed" }?.data["reason"]?.stringValue ?? ""
        #expect(reason.contains("post-apply command failed") && reason.contains("reverted"))
    }

    @Test func requestChangesStartsAFixWithTheReviewersComment() throws {
        let world = try World()
        world.model.replies = [fixReply([("calc.py", "def add(a, b):\n    # adds\n    return a + b\n")], explanation: "commented")]
        let id = try world.propose([FileChange(path: "NOTES", action: .create, content: "hello\n")])
        let ack = try world.command(review(id, 1, .requestChanges, "please comment add()"), as: World.bob).get()
        #expect(ack["status"] != nil)
        #expect(world.status(id) == "awaiting_review")
        #expect(world.store.rows[id]?.currentRevision == 2)
        #expect(text(try #require(world.model.requests.first)).contains("please comment add()"))
        // Reviews bind to the revision: approving the old one is refused.
        #expect(throws: ProtocolError.self) { try world.command(review(id, 1, .approve), as: World.alice).get() }
        try world.command(review(id, 2, .approve), as: World.alice).get()
        #expect(world.status(id) == "applied")
    }

    @Test func aRestartMarksInFlightWorkInterruptedAndAutoFixResumesIt() throws {
        let world = try World()
        world.sandbox.park = true
        let id = try world.propose([brokenAdd])
        #expect(world.status(id) == "testing")
        world.sandbox.park = false
        try world.restart()
        #expect(world.status(id) == "interrupted")
        #expect(world.store.statuses(id).last == "interrupted")
        world.model.replies = [fixReply([("calc.py", goodAdd)])]
        try world.command(.autoFix(proposal: id), as: World.alice).get()
        #expect(world.status(id) == "awaiting_review")
    }

    @Test func aBurstOfCommandsOnOneProposalIsAppliedInOrderAndNoneIsLost() throws {
        let world = try World { $0.quorum = 4 }
        let id = try world.propose([FileChange(path: "NOTES", action: .create, content: "hello\n")])
        let admins = (1...4).map { Principal(name: "admin\($0)", role: .admin) }
        let answers = Answers()
        world.store.hold = true
        world.send(review(id, 1, .approve), id: "a1", as: admins[0], tag: "a1", into: answers)
        world.send(.comment(proposal: id, text: "looks right"), id: "k1", as: admins[3], tag: "k1", into: answers)
        world.send(review(id, 1, .approve), id: "a2", as: admins[1], tag: "a2", into: answers)
        world.send(review(id, 1, .approve), id: "a2", as: admins[1], tag: "a2-repeat", into: answers)
        world.send(review(id, 1, .approve), id: "a1-again", as: admins[0], tag: "a1-twice", into: answers)
        world.send(review(id, 1, .approve), id: "a3", as: admins[2], tag: "a3", into: answers)
        world.send(review(id, 1, .approve), id: "a4", as: admins[3], tag: "a4", into: answers)
        world.clock.run()
        #expect(answers.all.isEmpty)  // nothing is acked before it is stored
        #expect(world.store.heldCount == 2)  // one proposal write in flight, plus the comment
        world.store.release()
        for _ in 0..<20 {
            world.clock.run()
            world.store.release()
        }
        world.clock.run()
        let byTag = Dictionary(answers.all.map { ($0.tag, $0.result) }, uniquingKeysWith: { first, _ in first })
        #expect(answers.all.count == 7)
        #expect(byTag["a1"].flatMap { try? $0.get()["approvals"] } == .array(["admin1"]))
        #expect(byTag["a2"].flatMap { try? $0.get()["approvals"] } == .array(["admin1", "admin2"]))
        #expect(byTag["a2-repeat"].flatMap { try? $0.get() } == byTag["a2"].flatMap { try? $0.get() })
        if case .failure(let error)? = byTag["a1-twice"] { #expect(error.code.rawValue == "already_reviewed") } else { Issue.record("a1-twice") }
        #expect(byTag["a4"].flatMap { try? $0.get()["status"] } == "applying")
        #expect(world.store.writes.flatMap(\.reviews).map(\.principal) == ["admin1", "admin2", "admin3", "admin4"])
        #expect(world.store.writes.flatMap(\.comments).map(\.text) == ["looks right"])
        #expect(world.status(id) == "applied")
    }

    @Test func idleInstancesLeaveMemoryAndAreLoadedOnceWhenNamed() throws {
        let world = try World()
        let id = try world.propose([FileChange(path: "NOTES", action: .create, content: "hello\n")])
        try world.command(review(id, 1, .approve), as: World.alice).get()
        #expect(world.status(id) == "applied")
        #expect(world.service.runtimes[id] != nil)
        world.clock.advance(milliseconds: world.service.idleEvictionMilliseconds + 120_000)
        #expect(world.service.runtimes[id] == nil)
        #expect(world.store.loads == 0)
        // Two commands before the load answers share one load; both are applied in order.
        let answers = Answers()
        world.send(.rollback(proposal: id), id: "r1", as: World.alice, tag: "rollback", into: answers)
        world.send(.comment(proposal: id, text: "reverting"), as: World.bob, tag: "comment", into: answers)
        world.clock.run()
        #expect(world.store.loads == 1)
        #expect(answers.all.count == 2)
        #expect(world.status(id) == "rolled_back")
        #expect(world.git.files["NOTES"] == nil)
        // A proposal the store does not have is not_found, and is not cached.
        if case .failure(let error) = world.command(.autoFix(proposal: "p-nothere"), as: World.alice) {
            #expect(error.code == .notFound)
        } else { Issue.record("auto_fix on an unknown proposal was accepted") }
    }

    @Test func anInstanceWithASandboxOrWorkInFlightStaysResident() throws {
        let world = try World { $0.autoFix = false }
        let id = try world.propose([brokenAdd])
        #expect(world.status(id) == "tests_failed")  // manual mode: waits for auto_fix, sandbox kept
        world.clock.advance(milliseconds: world.service.idleEvictionMilliseconds * 3)
        #expect(world.service.runtimes[id] != nil)
    }

    @Test func theFiguresFollowEveryTransitionAndSurviveARestart() throws {
        let world = try World()
        world.model.replies = [fixReply([("calc.py", goodAdd)])]
        let fixed = try world.propose([brokenAdd], title: "fixed")
        try world.command(review(fixed, 2, .approve), as: World.alice).get()
        world.model.replies = ["no", "no", "no", "no", "no", "no"]
        let unfixable = try world.propose([brokenAdd], title: "hopeless")
        #expect(world.status(unfixable) == "unfixable")
        let stats = world.service.stats()
        #expect(stats["proposals"] == 2)
        #expect(stats["unfixable"] == 1)
        #expect(stats["auto_fix_successful"] == 1)
        #expect(stats["total_failures"] == 2)
        #expect(stats["auto_fix_attempted"] == .int(Int64(1 + 3)))
        world.clock.advance(milliseconds: world.service.idleEvictionMilliseconds * 2)
        #expect(world.service.runtimes.isEmpty)
        #expect(world.service.stats() == stats)
        try world.restart()
        #expect(world.service.stats() == stats)
    }

    @Test func anUnreadableRecordStaysReadOnly() throws {
        let world = try World()
        let id = try world.propose([FileChange(path: "NOTES", action: .create, content: "hello\n")])
        try world.command(review(id, 1, .approve), as: World.alice).get()
        world.clock.advance(milliseconds: world.service.idleEvictionMilliseconds * 2)
        #expect(world.service.runtimes[id] == nil)
        world.store.corrupt(id)
        if case .failure(let error) = world.command(.rollback(proposal: id), as: World.alice) {
            #expect(error.code == .notFound)
        } else { Issue.record("a command on an unreadable proposal was accepted") }
        #expect(world.git.commits.count == 2)  // the apply only: no revert
        #expect(world.store.rows[id]?.status == "applied")
    }

    @Test func theFixPromptAlsoShowsWhatTheNavigatorLocates() throws {
        let world = try World(files: [
            "calc.py": "def add(a, b):\n    return a + b\n", "test_calc.py": "assert add(2, 2) == 4\n", "rounding.py": "PRECISION = 2  # used by add\n",
        ])
        var evidenceSeen: String?
        world.service.locate = { repo, evidence, limit, done in
            evidenceSeen = evidence
            #expect(repo == "demo" && limit > 0)
            done(["rounding.py", "calc.py", "missing.py"])
        }
        world.model.replies = [fixReply([("calc.py", goodAdd)])]
        _ = try world.propose([brokenAdd])
        let prompt = text(try #require(world.model.requests.first))
        #expect(prompt.contains("PRECISION = 2"))  // the located file's content
        #expect(evidenceSeen?.contains("AssertionError") == true)
    }
}
