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

@Suite struct StoredRecordTests {
    /// Writes the fixtures (run once, from the code whose format they freeze).
    @Test(.enabled(if: ProcessInfo.processInfo.environment["MEDIC_WRITE_RECORD_FIXTURES"] == "1"))
    func writeFixtures() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        for (name, build) in recordHistories {
            try encoder.encode(build()).write(to: recordFixtures.appendingPathComponent("\(name).json"))
        }
    }

    /// Every stored v1 document loads, and the loaded machine is the one that was stored: same status,
    /// revisions, attempts, approvals, commit — and it keeps working (its next event is handled as before).
    @Test(arguments: recordHistories.map(\.name))
    func version1RecordsLoad(_ name: String) throws {
        let data = try Data(contentsOf: recordFixtures.appendingPathComponent("\(name).json"))
        let loaded = try JSONDecoder().decode(ProposalMachine.self, from: data)
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
}
