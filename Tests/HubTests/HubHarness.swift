// HubHarness: a scripted executor for Hub tests — an in-memory store, read queue and per-subscriber logs.

import Hub
import Protocol

/// Plays the executor: stores events, publishes them, answers `readStore` when told to, and
/// records what every subscriber received. Frames are the events' seqs.
final class HubHarness {
    let hub: Hub<Int64>
    /// Stored events per topic: seqs 1…count (the store is dense by construction).
    var stored: [String: Int64] = [:]
    /// Highest seq published to the hub per topic.
    var published: [String: Int64] = [:]
    var received: [SubscriberID: [Int64]] = [:]
    var pendingReads: [(sub: SubscriberID, topic: String, after: Int64, limit: Int)] = []
    var subscribed: [(SubscriberID, String, Int64)] = []
    var refused: [(SubscriberID, ErrorCode)] = []
    var caughtUp: [(SubscriberID, String, Int64)] = []
    var failures: [(SubscriberID, String)] = []
    var presencePushes: [(topic: String, members: [String], to: [SubscriberID])] = []
    /// When set, reads return at most this many events (a store that loses events).
    var storeTruncatesAt: Int64?

    /// Instance topics of kind `proposal` track presence, as when the proposals feature is registered.
    init(pageSize: Int = 3) { hub = Hub(replayPageSize: pageSize, presenceKinds: ["proposal"]) }

    func apply(_ actions: [HubAction<Int64>]) {
        for action in actions {
            switch action {
            case .deliver(let sub, let seq): received[sub, default: []].append(seq)
            case .subscribed(let sub, let topic, let head): subscribed.append((sub, topic, head))
            case .refused(let sub, _, let code, _): refused.append((sub, code))
            case .unsubscribed: break
            case .readStore(let sub, let topic, let after, let limit): pendingReads.append((sub, topic, after, limit))
            case .caughtUp(let sub, let topic, let seq): caughtUp.append((sub, topic, seq))
            case .replayFailed(let sub, let topic, _): failures.append((sub, topic))
            case .presenceChanged(let topic, let members, let to):
                presencePushes.append((topic, members.map(\.principal), to.sorted()))
            }
        }
    }

    /// Stores the next event of `topic` without publishing it yet (commit done, publish pending).
    @discardableResult func commit(_ topic: String) -> Int64 {
        stored[topic, default: 0] += 1
        return stored[topic]!
    }

    /// Publishes every committed but unpublished event of `topic`, in order.
    func publishCommitted(_ topic: String) {
        while published[topic, default: 0] < stored[topic, default: 0] {
            let seq = published[topic, default: 0] + 1
            published[topic] = seq
            apply(
                hub.publish(topic: topic, seq: seq, frame: seq) { sub, frame in received[sub, default: []].append(frame)
                })
        }
    }

    /// Stores and publishes `count` events.
    func append(_ topic: String, count: Int = 1) {
        for _ in 0..<count { commit(topic) }
        publishCommitted(topic)
    }

    func head(_ topic: String) -> Int64 { published[topic, default: 0] }

    func subscribe(_ sub: SubscriberID, _ topic: String, since: Int64?, member: Member? = nil) {
        apply(hub.subscribe(sub, topic: topic, since: since, head: head(topic), member: member))
    }

    /// Reads answered by the store but not yet handed to the hub (an asynchronous store:
    /// events can be stored and published between the query and its answer).
    var answeredReads: [(sub: SubscriberID, topic: String, after: Int64, events: [(seq: Int64, frame: Int64)])] = []

    /// Runs the store query of the oldest pending read, keeping the result for `deliverAnswer`.
    func queryStore(at index: Int = 0) {
        let read = pendingReads.remove(at: index)
        var top = stored[read.topic, default: 0]
        if let limit = storeTruncatesAt { top = min(top, limit) }
        let first = read.after + 1
        let last = min(top, read.after + Int64(read.limit))
        let events = first <= last ? (first...last).map { (seq: $0, frame: $0) } : []
        answeredReads.append((read.sub, read.topic, read.after, events))
    }

    /// Hands the oldest store answer to the hub.
    func deliverAnswer() {
        let answer = answeredReads.removeFirst()
        apply(
            hub.replayPage(
                answer.sub, topic: answer.topic, after: answer.after, events: answer.events, head: head(answer.topic)))
    }

    /// Queries the store and hands the answer over at once.
    func answerRead(at index: Int = 0) {
        queryStore(at: index)
        deliverAnswer()
    }

    func drainReads() {
        var guardCount = 0
        while !pendingReads.isEmpty {
            answerRead()
            guardCount += 1
            precondition(guardCount < 100_000, "replay does not terminate")
        }
    }
}

func member(_ principal: String, role: String = "admin", since: Int64 = 0) -> Member {
    Member(principal: principal, role: role, since: since)
}

func seqs(_ range: ClosedRange<Int64>) -> [Int64] { Array(range) }
