// ProposalInboxTests: commands that arrive together on one proposal are applied one at a time, in order, none
// lost, and a repeated command id that overtakes its original's commit gets the original's answer.
import Foundation
import MedicHost
import Protocol
import TestSupport
import Testing

@Suite struct ProposalInboxTests {
    @Test func aBurstOfReviewsWithARepeatedIDIsAppliedOnceAndInOrder() throws {
        let harness = try MedicHarness { configuration, directory in
            configuration.quorum = 3
            configuration.repositories = [RepositoryConfig(name: "r", path: try makeRepository(["a": "a\n"], in: directory), testCommand: "true")]
        }
        defer { harness.stop() }
        let bot = try harness.session(try harness.token("bot", role: "bot"))
        let created = try bot.call([
            "type": "propose", "title": "burst", "description": "d",
            "changes": .array([.object(["path": "b.txt", "action": "create", "content": "x\n"])]),
        ])
        let proposal = try #require(created["proposal"]?.stringValue)
        _ = try bot.call(["type": "subscribe", "topic": .string("proposal:\(proposal)"), "since": 0])
        _ = try bot.untilStatus("awaiting_review")

        let admins = try ["ann", "ben", "cat"].map { try harness.session(try harness.token($0, role: "admin")) }
        // Everything is sent before any answer is read: ann's approve twice with one id, then ben's and cat's.
        let approve: JSONObject = ["type": "approve", "id": "same-id", "proposal": .string(proposal), "revision": 1]
        try admins[0].send(approve)
        try admins[0].send(approve)
        try admins[1].send(["type": "approve", "id": "b1", "proposal": .string(proposal), "revision": 1])
        try admins[2].send(["type": "approve", "id": "c1", "proposal": .string(proposal), "revision": 1])

        func replies(_ client: MedicClient, _ count: Int) throws -> [JSONValue] {
            var found: [JSONValue] = []
            while found.count < count {
                let message = try client.next()
                if let type = message["type"]?.stringValue, type == "ack" || type == "error" { found.append(message) }
            }
            return found
        }
        let annReplies = try replies(admins[0], 2)
        #expect(annReplies.allSatisfy { $0["type"]?.stringValue == "ack" }, "a repeat was refused: \(annReplies.map(\.jsonString))")
        #expect(annReplies[0] == annReplies[1], "a repeat got a different answer")
        let others = try [replies(admins[1], 1)[0], replies(admins[2], 1)[0]]
        #expect(others.allSatisfy { $0["type"]?.stringValue == "ack" })
        // Applied in arrival order: each ack reports the approvals stored with it.
        #expect(annReplies[0]["approvals"] == .array(["ann"]))
        #expect(others[0]["approvals"] == .array(["ann", "ben"]))
        #expect(others[1]["approvals"] == .array(["ann", "ben", "cat"]))
        let events = try bot.untilStatus("applied")
        let reviews = events.filter { $0["kind"]?.stringValue == "review" }
        #expect(reviews.map { $0["data"]?["principal"]?.stringValue } == ["ann", "ben", "cat"], "a review was stored twice or lost")
    }
}
