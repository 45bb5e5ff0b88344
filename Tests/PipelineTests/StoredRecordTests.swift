// StoredRecordTests: proposals stored by earlier versions of Medic must load in this one.
//
// `Fixtures/records-v1/*.json` are proposal documents exactly as the proposals table stored them up to commit
// d48e798 (the synthesized `Codable` of `ProposalMachine`, keys sorted, written by `PipelineService.encode`).
// They were written from the machine of that commit by `writeFixtures` below (MEDIC_WRITE_RECORD_FIXTURES=1)
// and must never be regenerated: whatever the stored format becomes, these have to keep loading.

import Foundation
import Protocol
import Testing

@testable import Pipeline

/// The scripted histories behind the fixtures: name → how the machine got there.
let recordHistories: [(name: String, build: @Sendable () -> ProposalMachine)] = [
    ("awaiting-review-after-two-fixes", {
        var m = makeMachine()
        _ = m.handle(.created(Revision(number: 1, changes: initialChanges)))
        _ = m.deployAndTest(failed)
        _ = m.handle(.analyzed(failure(.import)))
        _ = m.handle(.fixReceived(fix("try:\n    import redis\nexcept ImportError:\n    redis = None\n")))
        _ = m.deployAndTest(failed)
        _ = m.handle(.analyzed(failure(.undefinedName, line: 3)))
        _ = m.handle(.fixReceived(fix("cache = {}\n")))
        _ = m.deployAndTest(passed)
        return m
    }),
    ("applied", {
        var m = makeMachine(quorum: 2)
        m.toReview()
        _ = m.handle(.review(principal: "bob", role: .admin, verdict: .approve, revision: 1, comment: "lgtm"))
        _ = m.handle(.review(principal: "carol", role: .admin, verdict: .approve, revision: 1, comment: nil))
        _ = m.handle(.applied(commit: "0123456789abcdef0123456789abcdef01234567"))
        return m
    }),
    ("rolled-back", {
        var m = makeMachine()
        m.toReview()
        _ = m.handle(.review(principal: "bob", role: .admin, verdict: .approve, revision: 1, comment: nil))
        _ = m.handle(.applied(commit: "0123456789abcdef0123456789abcdef01234567"))
        _ = m.handle(.rollbackRequested(principal: "bob", role: .admin))
        _ = m.handle(.rolledBack(revertCommit: "89abcdef0123456789abcdef0123456789abcdef"))
        return m
    }),
    ("unfixable", {
        var m = makeMachine(maxAttempts: 1)
        _ = m.handle(.created(Revision(number: 1, changes: initialChanges)))
        _ = m.deployAndTest(failed)
        _ = m.handle(.analyzed(failure(.syntax)))
        _ = m.handle(.fixReceived(FixReply(unfixable: true, explanation: "needs a design decision", changes: [])))
        return m
    }),
    ("manual-tests-failed", {
        var m = makeMachine(fixMode: .manual)
        _ = m.handle(.created(Revision(number: 1, changes: initialChanges)))
        _ = m.deployAndTest(failed)
        _ = m.handle(.analyzed(failure(.assertion, file: "tests/test_app.py", line: 12)))
        return m
    }),
    ("changes-requested-fixing", {
        var m = makeMachine()
        m.toReview()
        _ = m.handle(.review(principal: "bob", role: .admin, verdict: .requestChanges, revision: 1, comment: "use a TTL"))
        return m
    }),
    ("rejected", {
        var m = makeMachine()
        m.toReview()
        _ = m.handle(.review(principal: "bob", role: .admin, verdict: .reject, revision: 1, comment: "not this way"))
        return m
    }),
    ("interrupted-while-testing", {
        var m = makeMachine()
        _ = m.handle(.created(Revision(number: 1, changes: initialChanges)))
        _ = m.handle(.sandboxReady(isolation: "bwrap", durationMs: 5))
        _ = m.handle(.interrupted(reason: "the server restarted while the proposal was testing"))
        return m
    }),
]

let recordFixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/records-v1")
let recordFixturesV2 = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/records-v2")

@Suite struct StoredRecordTests {
    /// Writes the fixtures (run once, from the code whose format they freeze).
    /// Writes the version 2 fixtures (run once, from the code whose format they freeze; the version 1 ones were
    /// written by the synthesized `Codable` of d48e798 and can no longer be produced).
    @Test(.enabled(if: ProcessInfo.processInfo.environment["MEDIC_WRITE_RECORD_FIXTURES"] == "1"))
    func writeFixtures() throws {
        try FileManager.default.createDirectory(at: recordFixturesV2, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        for (name, build) in recordHistories {
            let machine = build()
            try Data(machine.record().utf8).write(to: recordFixturesV2.appendingPathComponent("\(name).json"))
            try encoder.encode(machine.revisions).write(to: recordFixturesV2.appendingPathComponent("\(name).revisions.json"))
        }
    }

    /// Every stored v2 document (with its revision rows) loads as the machine that wrote it.
    @Test(arguments: recordHistories.map(\.name))
    func version2RecordsLoad(_ name: String) throws {
        let document = try String(contentsOf: recordFixturesV2.appendingPathComponent("\(name).json"), encoding: .utf8)
        let revisions = try JSONDecoder().decode([Revision].self, from: Data(contentsOf: recordFixturesV2.appendingPathComponent("\(name).revisions.json")))
        let loaded = try ProposalMachine.load(document: document, revisions: revisions)
        let expected = recordHistories.first { $0.name == name }!.build()
        #expect(loaded.phase == expected.phase && loaded.revisions == expected.revisions)
        #expect(loaded.record() == expected.record())
        var a = loaded
        var b = expected
        #expect(a.handle(.interrupted(reason: "restart")) == b.handle(.interrupted(reason: "restart")))
    }

    /// Newer documents are refused with a clear reason; extra keys are ignored; garbage is refused.
    @Test func unknownVersionsExtraKeysAndGarbage() throws {
        var m = makeMachine()
        m.toReview()
        var document = try JSONValue.parse(m.record())
        guard case .object(var object) = document else {
            Issue.record("record is not an object")
            return
        }
        object["a_field_from_the_future"] = .string("ignored")
        document = .object(object)
        #expect(try ProposalMachine.load(document: document.jsonString, revisions: m.revisions).phase == .awaitingReview)
        object["version"] = .int(99)
        #expect(throws: RecordError.self) { try ProposalMachine.load(document: JSONValue.object(object).jsonString, revisions: []) }
        do {
            _ = try ProposalMachine.load(document: JSONValue.object(object).jsonString, revisions: [])
        } catch {
            #expect(error.description.contains("newer than this Medic"))
        }
        #expect(throws: RecordError.self) { try ProposalMachine.load(document: "[1,2]", revisions: []) }
        #expect(throws: RecordError.self) { try ProposalMachine.load(document: #"{"version": 2, "phase": {"name": "dancing"}}"#, revisions: []) }
    }

    /// Every stored v1 document loads, and the loaded machine is the one that was stored: same status,
    /// revisions, attempts, approvals, commit — and it keeps working (its next event is handled as before).
    @Test(arguments: recordHistories.map(\.name))
    func version1RecordsLoad(_ name: String) throws {
        let data = try Data(contentsOf: recordFixtures.appendingPathComponent("\(name).json"))
        let loaded = try ProposalMachine.load(document: String(decoding: data, as: UTF8.self), revisions: [])
        let expected = recordHistories.first { $0.name == name }!.build()
        #expect(loaded.status == expected.status)
        #expect(loaded.revisions == expected.revisions)
        #expect(loaded.attempt == expected.attempt && loaded.attemptLimit == expected.attemptLimit)
        #expect(loaded.approvals == expected.approvals && loaded.commit == expected.commit)
        #expect(loaded.attemptRecords == expected.attemptRecords && loaded.reviewerComments == expected.reviewerComments)
        var a = loaded
        var b = expected
        let next: ProposalEvent = .interrupted(reason: "restart")
        #expect(a.handle(next) == b.handle(next))
    }

    /// What each loaded proposal must still do (issue 11): the next commands and results a proposal in that
    /// state can get, each handled by the loaded machine exactly as by the machine that was stored.
    static let followUps: [ProposalEvent] = [
        .interrupted(reason: "restart"),
        .autoFixRequested(principal: "bob", role: .admin),
        .rollbackRequested(principal: "bob", role: .admin),
        .review(principal: "bob", role: .admin, verdict: .approve, revision: 1, comment: nil),
        .review(principal: "dave", role: .admin, verdict: .reject, revision: 3, comment: "no"),
        .withdrawRequested(principal: "alice", role: .bot, reason: nil),
        .modelReplied(text: #"{"unfixable": false, "explanation": "x", "changes": [{"path": "app.py", "action": "modify", "content": "y\n"}]}"#),
        .modelReplied(text: "not JSON"),
    ]

    /// Both stored forms of `name`, loaded.
    func loadedVersions(_ name: String) throws -> [(version: Int, machine: ProposalMachine)] {
        let v1 = try String(contentsOf: recordFixtures.appendingPathComponent("\(name).json"), encoding: .utf8)
        let v2 = try String(contentsOf: recordFixturesV2.appendingPathComponent("\(name).json"), encoding: .utf8)
        let revisions = try JSONDecoder().decode([Revision].self, from: Data(contentsOf: recordFixturesV2.appendingPathComponent("\(name).revisions.json")))
        return [(1, try ProposalMachine.load(document: v1, revisions: [])), (2, try ProposalMachine.load(document: v2, revisions: revisions))]
    }

    @Test(arguments: recordHistories.map(\.name))
    func loadedRecordsBehaveAsStored(_ name: String) throws {
        let expected = recordHistories.first { $0.name == name }!.build()
        for (version, loaded) in try loadedVersions(name) {
            for event in Self.followUps {
                var a = loaded
                var b = expected
                #expect(a.handle(event) == b.handle(event), "version \(version) of \(name) after \(event)")
                #expect(a.record() == b.record(), "version \(version) of \(name) after \(event)")
            }
        }
    }

    /// The promises spelled out: an interrupted proposal re-deploys on auto_fix, an applied one rolls back, a
    /// manual one waiting in tests_failed asks for a fix, one awaiting review goes to apply on approval.
    @Test func loadedRecordsKeepTheirPromises() throws {
        for (version, m) in try loadedVersions("interrupted-while-testing") {
            var interrupted = m
            #expect(interrupted.status == .interrupted, "v\(version)")
            #expect(interrupted.handle(.autoFixRequested(principal: "bob", role: .admin)).last == .deploy(revision: 1), "v\(version)")
        }
        for (version, m) in try loadedVersions("applied") {
            var applied = m
            #expect(applied.handle(.rollbackRequested(principal: "bob", role: .admin))
                == [.rollback(commit: "0123456789abcdef0123456789abcdef01234567")], "v\(version)")
        }
        for (version, m) in try loadedVersions("manual-tests-failed") {
            var waiting = m
            #expect(waiting.handle(.autoFixRequested(principal: "bob", role: .admin)).fixRequest?.attempt == 1, "v\(version)")
        }
        for (version, m) in try loadedVersions("awaiting-review-after-two-fixes") {
            var reviewed = m
            #expect(reviewed.handle(.review(principal: "bob", role: .admin, verdict: .approve, revision: 3, comment: nil)).last
                == .checkBase(revision: 3), "v\(version)")
        }
        for (version, m) in try loadedVersions("rolled-back") {
            var done = m
            #expect(done.handle(.rollbackRequested(principal: "bob", role: .admin)).rejection == .invalidState, "v\(version)")
        }
    }

    /// A version 1 document with keys this code never wrote still loads; a version 2 phase whose data this
    /// code cannot read is refused, never guessed.
    @Test func unknownKeysInVersion1AndUnreadablePhases() throws {
        let v1 = try JSONValue.parse(String(contentsOf: recordFixtures.appendingPathComponent("applied.json"), encoding: .utf8))
        guard case .object(var object) = v1 else {
            Issue.record("fixture is not an object")
            return
        }
        object["someFutureFlag"] = .bool(true)
        #expect(try ProposalMachine.load(document: JSONValue.object(object).jsonString, revisions: []).status == .applied)
        let info = #"{"author":"a","createdAt":"t","description":"d","id":"p","repo":"r","title":"t"}"#
        for phase in [#"{"name": "applying", "step": "levitating"}"#, #"{"name": "applying", "step": "retesting"}"#,
                      #"{"name": "interrupted", "from": "sleeping"}"#] {
            #expect(throws: RecordError.self) {
                try ProposalMachine.load(document: #"{"version": 2, "info": \#(info), "phase": \#(phase)}"#, revisions: [])
            }
        }
        let committing = #"{"version": 2, "info": \#(info), "phase": {"name": "applying", "step": "committing"}}"#
        #expect(try ProposalMachine.load(document: committing, revisions: []).phase == .applying(.committing))
    }
}
