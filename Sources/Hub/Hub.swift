// Hub: topics → subscribers, gap-free replay then live delivery, and presence — a pure state machine.

public import IOBytes
public import Protocol

/// The executor's opaque handle for one subscriber (typically one WebSocket connection).
public typealias SubscriberID = UInt64

/// One watcher as reported in presence; defined in Protocol so the encoder can take it directly.
public typealias Member = PresenceMember

/// What the executor must do after a Hub call. Actions are listed in the order to perform them.
public enum HubAction<Frame> {
    /// Enqueue `frame` on the subscriber's outbound queue.
    case deliver(SubscriberID, Frame)
    /// The subscription is in place: answer the command with `ack {id, topic, head}`.
    case subscribed(SubscriberID, topic: String, head: Int64)
    /// The subscription was refused (`since_beyond_head`): answer with `error {id, code, message}`.
    case refused(SubscriberID, topic: String, code: ErrorCode, message: String)
    /// The subscription is gone (unsubscribe): answer with `ack {id, topic}`.
    case unsubscribed(SubscriberID, topic: String)
    /// Read up to `limit` stored events of `topic` with seq > `after`, frame them, and call
    /// `replayPage(sub, topic:, after:, events:, head:)`. The executor may postpone the read
    /// while the subscriber's outbound queue is above its low-water mark: that is replay flow control.
    case readStore(SubscriberID, topic: String, after: Int64, limit: Int)
    /// Replay finished: the subscriber has every event up to `seq` and now receives live events.
    case caughtUp(SubscriberID, topic: String, seq: Int64)
    /// The store broke the dense-sequence promise (a gap inside a page, or fewer events than
    /// it had acknowledged). The subscription was dropped; tell the client
    /// (`error store_unavailable`) so it can resubscribe with `since`.
    case replayFailed(SubscriberID, topic: String, message: String)
    /// The watcher set of `topic` is now `members`: send one `presence` frame to each of `to`.
    case presenceChanged(topic: String, members: [Member], to: [SubscriberID])
}

/// Fans events out to subscribers with one gap-free sequence per topic (invariant 2).
///
/// How replay stays gap-free while events keep arriving: the hub remembers, per subscriber,
/// the last seq it handed to it (`last`). Live delivery of seq `s` happens only when
/// `s == last + 1`; `s <= last` is skipped (already delivered by replay); `s > last + 1` means
/// the hub missed events, so the subscriber goes back to reading the store from `last`.
/// A replaying subscriber receives no live events; the store has them, because an event is
/// published only after it is stored (invariant 1). A replay page is accepted only if it
/// answers the read the hub asked for (`after == last`), so stale pages from an earlier
/// subscription are ignored. Replay ends when a short page leaves `last` at or above
/// every seq the hub has seen published. No live events are buffered: memory stays O(subscribers).
///
/// Not thread-safe: owned by one loop. Callbacks must not re-enter the hub.
public final class Hub<Frame> {
    /// Events per `readStore` request. Default 500.
    public let replayPageSize: Int
    /// Instance topic kinds that track presence (`proposal` for `proposal:<id>`): the feature registry says
    /// which; the hub only routes and knows no kind of its own (none by default).
    public var presenceKinds: Set<String>

    private var topics: [String: TopicState<Frame>] = [:]
    private var subscriptions: [SubscriberID: Set<String>] = [:]

    public init(replayPageSize: Int = 500, presenceKinds: Set<String> = []) {
        precondition(replayPageSize > 0, "replayPageSize must be positive")
        self.replayPageSize = replayPageSize
        self.presenceKinds = presenceKinds
    }

    /// Whether `topic` (`kind:id`) is of a kind with presence.
    func hasPresence(_ topic: String) -> Bool {
        guard let colon = topic.firstIndex(of: ":") else { return false }
        return presenceKinds.contains(String(topic[..<colon]))
    }

    // MARK: Publication

    /// A durable event (`seq` assigned, stored, framed once) for live subscribers of `topic`.
    ///
    /// Deliveries go through `deliver` to avoid an array per event; the returned actions are
    /// empty unless some subscriber missed events (then it gets `readStore`).
    public func publish(
        topic: String, seq: Int64, frame: Frame, deliver: (SubscriberID, Frame) -> Void
    ) -> [HubAction<Frame>] {
        guard let state = topics[topic] else { return [] }
        if seq > state.head { state.head = seq }
        var actions: [HubAction<Frame>] = []
        var index = 0
        while index < state.live.count {
            let last = state.live[index].last
            if seq == last &+ 1 {
                state.live[index].last = seq
                deliver(state.live[index].id, frame)
            } else if seq > last &+ 1 {
                // Missed events between last and seq: re-read them from the store.
                let id = state.live[index].id
                state.removeLive(id)  // swaps the tail into `index`; revisit it
                actions.append(startRead(state, id, after: last, topic: topic))
                continue
            }
            index += 1
        }
        return actions
    }

    /// An ephemeral event (`fix_delta`): delivered to live subscribers only; no seq, not replayed.
    public func publishEphemeral(topic: String, frame: Frame, deliver: (SubscriberID, Frame) -> Void) {
        guard let state = topics[topic] else { return }
        for entry in state.live { deliver(entry.id, frame) }
    }

    // MARK: Subscriptions

    /// Subscribes `sub` to `topic`.
    ///
    /// - `since == nil`: live only, from the current head.
    /// - `since == N` (0 ≤ N ≤ head): replay N+1… from the store, then live.
    /// - `since > head`: refused with `since_beyond_head`; an existing subscription is kept.
    ///
    /// `head` is the durable head the executor knows for the topic. `member` (nil for
    /// anonymous/internal subscribers) joins the topic's presence on instance topics of a `presenceKinds` kind.
    /// Subscribing again to the same topic restarts its delivery from the new `since`.
    public func subscribe(
        _ sub: SubscriberID, topic: String, since: Int64?, head: Int64, member: Member?
    ) -> [HubAction<Frame>] {
        let knownHead = max(head, topics[topic]?.head ?? 0)
        if let since, since > knownHead {
            return [
                .refused(
                    sub, topic: topic, code: .sinceBeyondHead,
                    message: "since \(since) is beyond the topic's head \(knownHead)")
            ]
        }
        let state: TopicState<Frame>
        if let existing = topics[topic] {
            state = existing
        } else {
            state = TopicState(head: knownHead, hasPresence: hasPresence(topic))
            topics[topic] = state
        }
        state.head = knownHead
        let resubscribing = subscriptions[sub]?.contains(topic) ?? false
        if resubscribing {
            state.removeLive(sub)
            state.replaying[sub] = nil
        } else {
            subscriptions[sub, default: []].insert(topic)
        }

        var actions: [HubAction<Frame>] = [.subscribed(sub, topic: topic, head: knownHead)]
        if !resubscribing, state.hasPresence, let member {
            actions.append(contentsOf: state.join(sub, member: member, topic: topic))
        }
        let start = since ?? knownHead
        if start >= knownHead {
            state.addLive(sub, last: start)
        } else {
            actions.append(startRead(state, sub, after: start, topic: topic))
        }
        return actions
    }

    /// A page of stored events answering `readStore(sub, topic, after, limit)`, framed by the
    /// executor, in seq order. `head` is the durable head the executor knows now.
    public func replayPage(
        _ sub: SubscriberID, topic: String, after: Int64, events: [(seq: Int64, frame: Frame)], head: Int64
    ) -> [HubAction<Frame>] {
        guard let state = topics[topic], let replay = state.replaying[sub], replay.last == after else {
            return []  // unsubscribed meanwhile, already live, or a stale page
        }
        if head > state.head { state.head = head }
        var actions: [HubAction<Frame>] = []
        actions.reserveCapacity(events.count + 1)
        var last = replay.last
        for event in events {
            if event.seq <= last { continue }
            guard event.seq == last + 1 else {
                actions.append(
                    contentsOf: dropForFailure(
                        sub, topic: topic, state: state,
                        message: "store returned seq \(event.seq) after \(last) for \(topic)"))
                return actions
            }
            actions.append(.deliver(sub, event.frame))
            last = event.seq
        }
        if events.count >= replay.limit {
            actions.append(startRead(state, sub, after: last, topic: topic))
        } else if last >= state.head {
            state.replaying[sub] = nil
            state.addLive(sub, last: last)
            actions.append(.caughtUp(sub, topic: topic, seq: last))
        } else if last < replay.headAtRequest {
            // The store had acknowledged events up to headAtRequest before this read, yet
            // returned fewer: it lost events. Retrying would loop forever.
            actions.append(
                contentsOf: dropForFailure(
                    sub, topic: topic, state: state,
                    message: "store returned events only up to \(last) of \(replay.headAtRequest) for \(topic)"))
        } else {
            // Events were stored and published after the read began: read again.
            actions.append(startRead(state, sub, after: last, topic: topic))
        }
        return actions
    }

    /// Ends `sub`'s subscription to `topic` (idempotent), with a presence leave if it was the
    /// principal's last connection on the topic.
    public func unsubscribe(_ sub: SubscriberID, topic: String) -> [HubAction<Frame>] {
        var actions = remove(sub, topic: topic)
        actions.append(.unsubscribed(sub, topic: topic))
        return actions
    }

    /// Ends every subscription of `sub` (connection closed).
    public func disconnect(_ sub: SubscriberID) -> [HubAction<Frame>] {
        guard let topicNames = subscriptions[sub] else { return [] }
        var actions: [HubAction<Frame>] = []
        for topic in topicNames.sorted() { actions.append(contentsOf: remove(sub, topic: topic)) }
        subscriptions[sub] = nil
        return actions
    }

    // MARK: Queries

    /// Who watches `topic`: one entry per principal, ordered by `since` then principal.
    public func presence(topic: String) -> [Member] {
        topics[topic]?.members() ?? []
    }

    /// The highest seq the hub knows for `topic` (0 if unknown or no subscribers).
    public func head(topic: String) -> Int64 { topics[topic]?.head ?? 0 }

    /// Subscribers of `topic` (live and replaying), in no particular order.
    public func subscribers(topic: String) -> [SubscriberID] {
        guard let state = topics[topic] else { return [] }
        return state.live.map(\.id) + state.replaying.keys
    }

    /// Whether `sub` is replaying `topic` (false when live or not subscribed).
    public func isReplaying(_ sub: SubscriberID, topic: String) -> Bool { topics[topic]?.replaying[sub] != nil }

    /// Topics `sub` is subscribed to.
    public func topics(of sub: SubscriberID) -> Set<String> { subscriptions[sub] ?? [] }

    /// Number of topics with at least one subscriber.
    public var topicCount: Int { topics.count }

    /// The topics with at least one subscriber.
    public var topicNames: [String] { Array(topics.keys) }

    // MARK: Internals

    private func startRead(_ state: TopicState<Frame>, _ sub: SubscriberID, after: Int64, topic: String)
        -> HubAction<Frame>
    {
        state.replaying[sub] = ReplayState(last: after, limit: replayPageSize, headAtRequest: state.head)
        return .readStore(sub, topic: topic, after: after, limit: replayPageSize)
    }

    private func dropForFailure(_ sub: SubscriberID, topic: String, state: TopicState<Frame>, message: String)
        -> [HubAction<Frame>]
    {
        var actions = remove(sub, topic: topic)
        actions.append(.replayFailed(sub, topic: topic, message: message))
        return actions
    }

    /// Removes one subscription; presence leave goes to the remaining subscribers.
    private func remove(_ sub: SubscriberID, topic: String) -> [HubAction<Frame>] {
        guard let state = topics[topic], subscriptions[sub]?.remove(topic) != nil else { return [] }
        if subscriptions[sub]?.isEmpty == true { subscriptions[sub] = nil }
        state.removeLive(sub)
        state.replaying[sub] = nil
        let actions = state.leave(sub, topic: topic)
        if state.isEmpty { topics[topic] = nil }
        return actions
    }
}

/// Where a replaying subscriber stands.
struct ReplayState {
    /// The last seq delivered; the outstanding read is `after: last`.
    var last: Int64
    /// The page size requested; a page this long means "there may be more".
    var limit: Int
    /// The topic head when the read was issued: the store must return at least up to it.
    var headAtRequest: Int64
}

/// A live subscriber and the last seq it was given.
struct LiveEntry {
    var id: SubscriberID
    var last: Int64
}

/// One principal's presence on a topic.
struct PresenceEntry {
    var member: Member
    var connections: Int
}

/// Per-topic state. A class so the hot fan-out loop mutates entries in place (no copy-on-write
/// of the dictionary's value).
final class TopicState<Frame> {
    var head: Int64
    let hasPresence: Bool
    /// Live subscribers, contiguous for the fan-out loop; `liveIndex` makes removal O(1).
    var live: [LiveEntry] = []
    var liveIndex: [SubscriberID: Int] = [:]
    var replaying: [SubscriberID: ReplayState] = [:]
    var presence: [String: PresenceEntry] = [:]
    /// Which principal each subscriber counts for, to undo its presence on leave.
    var principalOf: [SubscriberID: String] = [:]

    init(head: Int64, hasPresence: Bool) {
        self.head = head
        self.hasPresence = hasPresence
    }

    var isEmpty: Bool { live.isEmpty && replaying.isEmpty && principalOf.isEmpty }

    func addLive(_ id: SubscriberID, last: Int64) {
        liveIndex[id] = live.count
        live.append(LiveEntry(id: id, last: last))
    }

    func removeLive(_ id: SubscriberID) {
        guard let index = liveIndex.removeValue(forKey: id) else { return }
        let tail = live.removeLast()
        if index < live.count {
            live[index] = tail
            liveIndex[tail.id] = index
        }
    }

    var allSubscribers: [SubscriberID] { live.map(\.id) + replaying.keys }

    func members() -> [Member] {
        presence.values.map(\.member).sorted {
            $0.since != $1.since ? $0.since < $1.since : $0.principal < $1.principal
        }
    }

    /// Adds `sub` as a connection of `member.principal`. A new principal changes the set (pushed
    /// to everyone); a second connection of a known principal only tells the newcomer.
    func join(_ sub: SubscriberID, member: Member, topic: String) -> [HubAction<Frame>] {
        principalOf[sub] = member.principal
        if var entry = presence[member.principal] {
            entry.connections += 1
            if member.since < entry.member.since { entry.member.since = member.since }
            presence[member.principal] = entry
            return [.presenceChanged(topic: topic, members: members(), to: [sub])]
        }
        presence[member.principal] = PresenceEntry(member: member, connections: 1)
        var to = allSubscribers
        if !to.contains(sub) { to.append(sub) }
        return [.presenceChanged(topic: topic, members: members(), to: to)]
    }

    /// Removes `sub`'s connection; the principal leaves when its last connection goes.
    func leave(_ sub: SubscriberID, topic: String) -> [HubAction<Frame>] {
        guard let principal = principalOf.removeValue(forKey: sub), var entry = presence[principal] else { return [] }
        entry.connections -= 1
        if entry.connections > 0 {
            presence[principal] = entry
            return []
        }
        presence[principal] = nil
        // Reported even when nobody here is left to tell: the executor may share the topic's members elsewhere
        // (other nodes, App+Nodes.swift); it sends frames only to `to`.
        return [.presenceChanged(topic: topic, members: members(), to: allSubscribers)]
    }
}

/// The hub the server runs: frames are `SharedBytes`, encoded once and shared by every queue.
public typealias SharedHub = Hub<SharedBytes>
