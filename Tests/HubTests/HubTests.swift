// HubTests: gap-free replay (also while events are published mid-replay), live fan-out, presence.

import Hub
import Protocol
import Testing

let topic = "proposal:p1"

@Suite struct HubSubscribeTests {
    @Test func sinceOmittedIsLiveOnly() {
        let h = HubHarness()
        h.append(topic, count: 5)
        h.subscribe(1, topic, since: nil)
        #expect(h.subscribed.map(\.2) == [5])
        #expect(h.pendingReads.isEmpty)
        #expect(h.received[1] == nil)
        h.append(topic, count: 2)
        #expect(h.received[1] == [6, 7])
    }

    @Test func sinceZeroReplaysTheWholeHistoryThenGoesLive() {
        let h = HubHarness(pageSize: 3)
        h.append(topic, count: 7)
        h.subscribe(1, topic, since: 0)
        #expect(h.hub.isReplaying(1, topic: topic))
        #expect(h.pendingReads.map(\.after) == [0])
        h.drainReads()
        #expect(h.received[1] == seqs(1...7))
        #expect(h.caughtUp.map(\.2) == [7])
        #expect(!h.hub.isReplaying(1, topic: topic))
        h.append(topic)
        #expect(h.received[1] == seqs(1...8))
    }

    @Test func sinceNReplaysFromNPlusOne() {
        let h = HubHarness(pageSize: 2)
        h.append(topic, count: 9)
        h.subscribe(1, topic, since: 4)
        h.drainReads()
        #expect(h.received[1] == seqs(5...9))
    }

    @Test func exactlyFullLastPageReadsOnceMoreThenGoesLive() {
        let h = HubHarness(pageSize: 3)
        h.append(topic, count: 6)
        h.subscribe(1, topic, since: 0)
        h.answerRead()
        h.answerRead()
        #expect(h.received[1] == seqs(1...6))
        #expect(h.pendingReads.map(\.after) == [6])  // a full page might have a successor
        h.answerRead()
        #expect(h.caughtUp.count == 1)
        #expect(h.received[1] == seqs(1...6))
    }

    @Test func sinceAtHeadIsLiveWithoutReading() {
        let h = HubHarness()
        h.append(topic, count: 3)
        h.subscribe(1, topic, since: 3)
        #expect(h.pendingReads.isEmpty)
        h.append(topic)
        #expect(h.received[1] == [4])
        // An empty topic: since 0 == head 0.
        h.subscribe(2, "proposal:empty", since: 0)
        #expect(h.pendingReads.isEmpty && h.refused.isEmpty)
    }

    @Test func sinceBeyondHeadIsRefusedAndKeepsAnExistingSubscription() {
        let h = HubHarness()
        h.append(topic, count: 3)
        h.subscribe(1, topic, since: 4)
        #expect(h.refused.map(\.1) == [.sinceBeyondHead])
        #expect(h.subscribed.isEmpty)
        #expect(h.hub.topics(of: 1).isEmpty)
        h.subscribe(1, topic, since: nil)
        h.subscribe(1, topic, since: 99)
        #expect(h.refused.count == 2)
        h.append(topic)
        #expect(h.received[1] == [4])
    }

    @Test func resubscribingRestartsFromTheNewSince() {
        let h = HubHarness(pageSize: 10)
        h.append(topic, count: 5)
        h.subscribe(1, topic, since: nil)
        h.subscribe(1, topic, since: 2)
        h.drainReads()
        #expect(h.received[1] == [3, 4, 5])
        h.append(topic)
        #expect(h.received[1] == [3, 4, 5, 6])
    }

    @Test func liveSubscriberThatMissedEventsReReadsThem() {
        let h = HubHarness()
        h.append(topic, count: 2)
        h.subscribe(1, topic, since: nil)
        // The executor publishes 5 without 3 and 4 (e.g. it coalesced them): the hub must not skip.
        h.commit(topic)
        h.commit(topic)
        h.commit(topic)
        h.published[topic] = 4
        h.publishCommitted(topic)
        #expect(h.received[1] == nil)
        #expect(h.pendingReads.map(\.after) == [2])
        h.drainReads()
        #expect(h.received[1] == [3, 4, 5])
        h.append(topic)
        #expect(h.received[1] == [3, 4, 5, 6])
    }

    @Test func duplicatePublicationIsNotDeliveredTwice() {
        let h = HubHarness()
        h.append(topic, count: 1)
        h.subscribe(1, topic, since: nil)
        h.append(topic)
        h.apply(h.hub.publish(topic: topic, seq: 2, frame: 2) { sub, f in h.received[sub, default: []].append(f) })
        #expect(h.received[1] == [2])
    }

    @Test func ephemeralEventsGoToLiveSubscribersOnly() {
        let h = HubHarness()
        h.append(topic, count: 4)
        h.subscribe(1, topic, since: nil)
        h.subscribe(2, topic, since: 0)
        var got: [SubscriberID] = []
        h.hub.publishEphemeral(topic: topic, frame: -1) { sub, _ in got.append(sub) }
        #expect(got == [1])
    }

    @Test func storeThatLosesEventsFailsTheReplayInsteadOfLooping() {
        let h = HubHarness(pageSize: 10)
        h.append(topic, count: 6)
        h.storeTruncatesAt = 4
        h.subscribe(1, topic, since: 0, member: member("alice"))
        h.drainReads()
        #expect(h.failures.map(\.0) == [1])
        #expect(h.hub.topics(of: 1).isEmpty)
        #expect(h.hub.presence(topic: topic).isEmpty)
    }

    @Test func gapInsideAStorePageFailsTheReplay() {
        let h = HubHarness()
        h.append(topic, count: 5)
        h.subscribe(1, topic, since: 0)
        h.apply(h.hub.replayPage(1, topic: topic, after: 0, events: [(1, 1), (3, 3)], head: 5))
        #expect(h.received[1] == [1])
        #expect(h.failures.count == 1)
    }
}

@Suite struct HubReplayRaceTests {
    /// One executor step: store an event, publish the oldest stored-but-unpublished event, run the
    /// oldest pending store query, or hand the oldest query answer to the hub.
    enum Step: CustomStringConvertible {
        case commit, publish, query, answer
        var description: String {
            switch self {
            case .commit: "c"
            case .publish: "p"
            case .query: "q"
            case .answer: "a"
            }
        }
    }

    /// Runs one interleaving, then lets everything settle. Returns false when the script is infeasible.
    static func run(initial: Int, since: Int64, pageSize: Int, script: [Step], settle: Bool) -> (HubHarness, Bool) {
        let h = HubHarness(pageSize: pageSize)
        h.append(topic, count: initial)
        h.subscribe(1, topic, since: since)
        for step in script {
            switch step {
            case .commit: h.commit(topic)
            case .publish:
                let next = h.published[topic, default: 0] + 1
                guard next <= h.stored[topic, default: 0] else { return (h, false) }
                h.published[topic] = next
                h.apply(
                    h.hub.publish(topic: topic, seq: next, frame: next) { s, f in h.received[s, default: []].append(f) }
                )
            case .query:
                guard !h.pendingReads.isEmpty else { return (h, false) }
                h.queryStore()
            case .answer:
                guard !h.answeredReads.isEmpty else { return (h, false) }
                h.deliverAnswer()
            }
        }
        if settle {
            h.publishCommitted(topic)
            while !h.answeredReads.isEmpty { h.deliverAnswer() }
            h.drainReads()
        }
        return (h, true)
    }

    /// Every interleaving of `extra` commits, their publications (each after its commit, so the
    /// store can be ahead of the hub), the replay's store queries and the delivery of their answers
    /// (so events can be published between a query and its answer).
    @Test(arguments: [(initial: 7, since: Int64(2), pageSize: 2), (7, 0, 3), (5, 1, 2), (9, 8, 1)])
    func publicationAtEveryPointOfAMultiPageReplay(initial: Int, since: Int64, pageSize: Int) {
        let extra = 2
        var scripts: [[Step]] = [[]]
        var checked = 0
        while let script = scripts.popLast() {
            let (h, feasible) = HubReplayRaceTests.run(
                initial: initial, since: since, pageSize: pageSize, script: script, settle: false)
            guard feasible else { continue }
            let commits = script.filter { if case .commit = $0 { true } else { false } }.count
            let publishes = script.filter { if case .publish = $0 { true } else { false } }.count
            if commits == extra && publishes == extra && h.pendingReads.isEmpty && h.answeredReads.isEmpty {
                check(initial: initial, since: since, pageSize: pageSize, script: script)
                checked += 1
                continue
            }
            guard script.count < 24 else { continue }
            if commits < extra { scripts.append(script + [.commit]) }
            if publishes < commits { scripts.append(script + [.publish]) }
            if !h.pendingReads.isEmpty { scripts.append(script + [.query]) }
            if !h.answeredReads.isEmpty { scripts.append(script + [.answer]) }
        }
        #expect(checked > 20)
    }

    func check(initial: Int, since: Int64, pageSize: Int, script: [Step]) {
        let (h, _) = HubReplayRaceTests.run(
            initial: initial, since: since, pageSize: pageSize, script: script, settle: true)
        let head = Int64(initial + 2)
        #expect(h.received[1] ?? [] == Array((since + 1)...head), "script \(script)")
        #expect(h.failures.isEmpty, "script \(script)")
        // The script ended with no read in flight: the subscriber must be live, caught up once
        // if it replayed, and receive the next event exactly once.
        #expect(!h.hub.isReplaying(1, topic: topic), "script \(script)")
        #expect(h.caughtUp.count == (since < Int64(initial) ? 1 : 0), "script \(script)")
        h.append(topic)
        #expect(h.received[1]?.last == head + 1, "script \(script)")
        #expect(h.received[1]?.count == Int(head - since) + 1, "script \(script)")
    }

    @Test func manySubscribersReplayingAtOnceEachGetTheirOwnRange() {
        let h = HubHarness(pageSize: 4)
        h.append(topic, count: 20)
        for sub in SubscriberID(0)..<10 { h.subscribe(sub, topic, since: Int64(sub * 2)) }
        var round = 0
        while !h.pendingReads.isEmpty {
            // Answer reads in a rotating order, publishing between rounds.
            h.answerRead(at: round % h.pendingReads.count)
            if round % 3 == 0 { h.append(topic) }
            round += 1
        }
        let head = h.head(topic)
        for sub in SubscriberID(0)..<10 {
            #expect(h.received[sub] == Array((Int64(sub * 2) + 1)...head), "subscriber \(sub)")
        }
    }
}

@Suite struct HubLifecycleTests {
    @Test func unsubscribeDuringReplayStopsDeliveryAndIgnoresTheLatePage() {
        let h = HubHarness(pageSize: 3)
        h.append(topic, count: 10)
        h.subscribe(1, topic, since: 0)
        h.answerRead()
        #expect(h.received[1] == [1, 2, 3])
        h.apply(h.hub.unsubscribe(1, topic: topic))
        h.append(topic)
        h.drainReads()
        #expect(h.received[1] == [1, 2, 3])
        #expect(h.hub.topicCount == 0)
    }

    @Test func disconnectDuringReplayRemovesEveryTopic() {
        let h = HubHarness(pageSize: 3)
        h.append(topic, count: 10)
        h.append("proposals", count: 10)
        h.subscribe(1, topic, since: 0, member: member("alice"))
        h.subscribe(1, "proposals", since: 5)
        h.subscribe(2, topic, since: nil, member: member("bob"))
        h.apply(h.hub.disconnect(1))
        #expect(h.hub.topics(of: 1).isEmpty)
        h.drainReads()
        h.append(topic)
        #expect(h.received[1] == nil)
        #expect(h.received[2] == [11])
        #expect(h.presencePushes.last?.members == ["bob"])
        #expect(h.presencePushes.last?.to == [2])
        #expect(h.hub.subscribers(topic: "proposals").isEmpty)
    }

    @Test func stalePageFromAnEarlierSubscriptionIsIgnored() {
        let h = HubHarness(pageSize: 3)
        h.append(topic, count: 10)
        h.subscribe(1, topic, since: 0)
        h.apply(h.hub.unsubscribe(1, topic: topic))
        h.subscribe(1, topic, since: 5)
        #expect(h.pendingReads.map(\.after) == [0, 5])
        h.answerRead(at: 0)  // the old subscription's read
        #expect(h.received[1] == nil)
        h.drainReads()
        #expect(h.received[1] == seqs(6...10))
    }
}

@Suite struct HubPresenceTests {
    @Test func presenceFollowsTheConfiguredKindsOnly() {
        let h = HubHarness()
        // The registry says which instance kinds track presence; the hub matches the kind before the colon
        // exactly (no prefix tricks: `notebook:x` is not a `note`, a collection named `note` has no presence).
        h.hub.presenceKinds = ["note"]
        for topic in ["note:n1", "proposal:p1", "notebook:x", "note", "notes", "xnote:y"] {
            h.subscribe(1, topic, since: nil, member: member("alice"))
        }
        #expect(h.presencePushes.map(\.topic) == ["note:n1"])
        #expect(h.hub.presence(topic: "proposal:p1").isEmpty)
        #expect(h.hub.presence(topic: "note:n1").map(\.principal) == ["alice"])
        // A hub nobody configured tracks no presence at all: the kinds come from the registry only.
        let bare = Hub<Int64>()
        #expect(bare.subscribe(1, topic: "proposal:p1", since: nil, head: 0, member: member("alice")).allSatisfy {
            if case .presenceChanged = $0 { false } else { true }
        })
    }

    @Test func joinAndLeaveWithDuplicatePrincipals() {
        let h = HubHarness()
        h.subscribe(1, topic, since: nil, member: member("alice", since: 100))
        #expect(h.presencePushes.last! == (topic, ["alice"], [1]))
        h.subscribe(2, topic, since: nil, member: member("alice", since: 200))
        // Same principal again: the set is unchanged; only the newcomer is told.
        #expect(h.presencePushes.count == 2)
        #expect(h.presencePushes.last! == (topic, ["alice"], [2]))
        h.subscribe(3, topic, since: nil, member: member("bob", role: "viewer", since: 150))
        #expect(h.presencePushes.last! == (topic, ["alice", "bob"], [1, 2, 3]))
        #expect(
            h.hub.presence(topic: topic) == [member("alice", since: 100), member("bob", role: "viewer", since: 150)])

        h.apply(h.hub.disconnect(1))
        #expect(h.presencePushes.count == 3, "alice still has connection 2")
        #expect(h.hub.presence(topic: topic).map(\.principal) == ["alice", "bob"])
        h.apply(h.hub.unsubscribe(2, topic: topic))
        #expect(h.presencePushes.last! == (topic, ["bob"], [3]))
        h.apply(h.hub.unsubscribe(3, topic: topic))
        // The last one out is still reported (the executor may share members with other nodes), to nobody here.
        #expect(h.presencePushes.count == 5)
        #expect(h.presencePushes.last! == (topic, [], []))
        #expect(h.hub.presence(topic: topic).isEmpty)
        #expect(h.hub.topicCount == 0)
    }

    @Test func sinceIsTheEarliestConnection() {
        let h = HubHarness()
        h.subscribe(1, topic, since: nil, member: member("alice", since: 500))
        h.subscribe(2, topic, since: nil, member: member("alice", since: 300))
        #expect(h.hub.presence(topic: topic) == [member("alice", since: 300)])
    }

    @Test func noPresenceOnTheProposalsTopicOrWithoutAMember() {
        let h = HubHarness()
        h.subscribe(1, "proposals", since: nil, member: member("alice"))
        h.subscribe(2, topic, since: nil, member: nil)
        #expect(h.presencePushes.isEmpty)
        #expect(h.hub.presence(topic: "proposals").isEmpty)
    }

    @Test func resubscribeDoesNotDoubleCountPresence() {
        let h = HubHarness()
        h.subscribe(1, topic, since: nil, member: member("alice"))
        h.subscribe(1, topic, since: nil, member: member("alice"))
        h.subscribe(2, topic, since: nil, member: member("bob"))
        h.apply(h.hub.unsubscribe(1, topic: topic))
        #expect(h.presencePushes.last! == (topic, ["bob"], [2]))
    }

    @Test func replayingSubscribersAreToldAboutPresenceToo() {
        let h = HubHarness()
        h.append(topic, count: 10)
        h.subscribe(1, topic, since: 0, member: member("alice"))
        h.subscribe(2, topic, since: nil, member: member("bob"))
        #expect(h.presencePushes.last!.to == [1, 2])
    }
}

@Suite struct HubFanOutTests {
    @Test func tenThousandSubscribersReceiveABurstCompleteAndInOrder() {
        let subscribers = 10_000
        let events: Int64 = 1_000
        let hub = Hub<Int64>()
        for sub in 0..<subscribers {
            let actions = hub.subscribe(SubscriberID(sub), topic: topic, since: nil, head: 0, member: nil)
            #expect(actions.count == 1)
        }
        var last = [Int64](repeating: 0, count: subscribers)
        var outOfOrder = 0
        var deliveries = 0
        for seq in 1...events {
            let actions = hub.publish(topic: topic, seq: seq, frame: seq) { sub, frame in
                if last[Int(sub)] + 1 != frame { outOfOrder += 1 }
                last[Int(sub)] = frame
                deliveries += 1
            }
            #expect(actions.isEmpty)
        }
        #expect(outOfOrder == 0)
        #expect(deliveries == subscribers * Int(events))
        #expect(last.allSatisfy { $0 == events })
    }

    @Test func removingSubscribersMidStreamKeepsTheRestIntact() {
        let hub = Hub<Int64>()
        for sub in SubscriberID(0)..<100 { _ = hub.subscribe(sub, topic: topic, since: nil, head: 0, member: nil) }
        var got: [SubscriberID: [Int64]] = [:]
        for seq in Int64(1)...20 {
            if seq == 10 { for sub in stride(from: SubscriberID(0), to: 100, by: 3) { _ = hub.disconnect(sub) } }
            _ = hub.publish(topic: topic, seq: seq, frame: seq) { sub, f in got[sub, default: []].append(f) }
        }
        for sub in SubscriberID(0)..<100 {
            #expect(got[sub] == (sub % 3 == 0 ? seqs(1...9) : seqs(1...20)), "subscriber \(sub)")
        }
    }
}
