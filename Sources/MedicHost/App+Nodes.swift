// App+Nodes: events committed by other nodes on the same PostgreSQL, delivered to this node's subscribers.
//
// Every node's store worker NOTIFYs `medic_events` "topic head" inside each committing transaction (PostgreSQL
// delivers it only if the commit happens, in commit order). This node's listener thread hears them — its own
// included — and hops to the loop: for a topic this node has subscribers on, the events after what the Hub
// already delivered are read from the store (one read per topic at a time) and published like local ones. The
// Hub drops seqs a subscriber already has and re-reads holes, so a notification that arrives before or after
// our own commit's completion, twice, or out of step with a replay delivers every seq exactly once, in order.
// LISTEN is not durable: after the listener reconnects (`.resync`) every followed topic's head is read from the
// store again and the cached heads are forgotten, so a notification lost in between never leaves a gap.
//
// Nodes and presence: every node writes a heartbeat row (`nodes`) every `heartbeatMs`; a node silent for
// `deadAfterMs` is dead. Each node stores its own members of each presence topic (`presence`, one row per node and
// topic, written at most every `presenceFlushMs` and announced on `medic_presence`); a topic's presence is the
// union over live nodes, one entry per principal (the earliest `since`). A dead node's members disappear at the
// first heartbeat of any node after `deadAfterMs` (its rows are deleted; every node drops them from its merge).
import EventLoop
import Foundation
import Hub
import Logging
import Protocol
import Server
import Store

/// This node among the nodes sharing the store (App.cluster).
final class ClusterState {
    let id: String
    let shared: Bool
    var address = ""
    let startedAt: Int64
    /// Every node as of the last heartbeat (this one first), and which of them were alive then.
    var nodes: [NodeRow] = []
    var alive: Set<String> = []
    var lastHeartbeat: Int64 = 0
    var heartbeatFailures = 0
    /// This node's members per presence topic (as the Hub has them), and the topics whose row is not written yet.
    var local: [String: [PresenceMember]] = [:]
    var dirty: Set<String> = []
    var flushScheduled = false
    /// Other nodes' members per topic (node → members), for topics with subscribers here.
    var remote: [String: [String: [PresenceMember]]] = [:]
    /// Instances whose lease this node holds (App+Leases.swift).
    var held: Set<String> = []
    /// Commands this node forwarded, by row id, waiting for the owner's answer; answers that came first.
    var waiting: [Int64: ForwardWait] = [:]
    var earlyAnswers: Set<Int64> = []
    /// Forwarded commands this node is running, and whether a read of them is in flight (and wanted again).
    var running: Set<Int64> = []
    var readingForwarded = false
    var forwardedAgain = false

    init(id: String, shared: Bool, startedAt: Int64) {
        self.id = id
        self.shared = shared
        self.startedAt = startedAt
    }
}

extension App {
    /// Joins the nodes sharing the store (PostgreSQL) as `nodeID`, listening at `address`: follows the other nodes'
    /// commits and presence and starts the heartbeat. On SQLite (one node) it only records who this node is, for
    /// `GET /api/v1/cluster`. Call once, on the loop, before it runs.
    public func joinCluster(nodeID: String, address: String) {
        guard cluster == nil else { return }
        let state = ClusterState(id: nodeID, shared: store.isShared, startedAt: wallClockMilliseconds())
        state.address = address
        cluster = state
        guard state.shared else { return }
        let bound = LoopBound(self, loop: loop)
        store.listen { note in
            bound.hop { app in
                switch note {
                case .head(let topic, let head): app.noteCommittedHead(topic: topic, head: head)
                case .presence(let topic): app.readPresence(topic: topic)
                case .resync:
                    app.resyncHeads()
                    app.runForwarded()
                    for id in app.cluster?.waiting.keys.map({ $0 }) ?? [] { app.readAnswer(id) }
                case .forwarded(let node, _): if node == nodeID { app.runForwarded() }
                case .answered(let node, let id): if node == nodeID { app.readAnswer(id) }
                }
            }
        }
        // A node starting again under its name: the members it had before it stopped are gone, and what it ran is
        // claimed afresh at the next heartbeat (by this node or another), its feature deciding how to go on.
        store.clearPresence(node: nodeID) { _ in }
        store.expireLeases(node: nodeID) { _ in }
        heartbeat()
    }

    /// The default node name: host and process id (unique while it runs; give `--node-id` for a stable name).
    public static func defaultNodeID() -> String {
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "node"
        let safe = String(host.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "-" }.prefix(40))
        return "\(safe.isEmpty ? "node" : safe)-\(getpid())"
    }

    /// Heartbeat period, the silence after which a node is dead, and after which its row is forgotten (ms).
    static let heartbeatMs: Int64 = 2_000
    static let deadAfterMs: Int64 = 10_000
    static let forgetAfterMs: Int64 = 3_600_000
    /// How long presence changes wait to be written together.
    static let presenceFlushMs: Int64 = 100

    private func heartbeat() {
        guard let state = cluster, state.shared else { return }
        let now = wallClockMilliseconds()
        let row = NodeRow(id: state.id, address: state.address, startedAt: state.startedAt, heartbeatAt: now)
        let bound = LoopBound(self, loop: loop)
        let heldBefore = state.held
        store.heartbeat(
            row, deadAfter: Self.deadAfterMs, forgetAfter: Self.forgetAfterMs, leaseMs: Self.leaseMs, reachableRepos: reachableRepositories,
            claimLimit: Self.claimsPerHeartbeat
        ) { result in
            bound.hop { app in
                guard let state = app.cluster else { return }
                switch result {
                case .success(let beat):
                    let nodes = beat.nodes
                    state.heartbeatFailures = 0
                    state.lastHeartbeat = now
                    state.nodes = nodes
                    let alive = Set(nodes.filter { $0.heartbeatAt >= now - Self.deadAfterMs }.map(\.id))
                    let gone = state.alive.subtracting(alive)
                    state.alive = alive
                    if !gone.isEmpty {
                        app.logger.warning("nodes stopped answering: their presence is dropped", metadata: ["nodes": "\(gone.sorted())"])
                        for (topic, byNode) in state.remote where !gone.isDisjoint(with: byNode.keys) {
                            state.remote[topic] = byNode.filter { !gone.contains($0.key) }
                            app.deliverPresence(topic: topic, to: app.hub.subscribers(topic: topic))
                        }
                    }
                    app.noteLeases(beat, heldBefore: heldBefore)
                case .failure(let error):
                    state.heartbeatFailures += 1
                    if state.heartbeatFailures == 1 { app.logger.warning("heartbeat failed", metadata: ["error": "\(error.message)"]) }
                }
                _ = app.loop.schedule(afterNanoseconds: UInt64(Self.heartbeatMs) * 1_000_000) { [weak app] in app?.heartbeat() }
            }
        }
    }

    // MARK: presence across nodes

    /// The Hub changed this node's members of `topic`: remembered, written soon, and the union sent to `to`.
    func noteLocalPresence(topic: String, members: [PresenceMember], to: [SubscriberID]) {
        guard let state = cluster, state.shared else { return }
        state.local[topic] = members
        state.dirty.insert(topic)
        if !state.flushScheduled {
            state.flushScheduled = true
            _ = loop.schedule(afterNanoseconds: UInt64(Self.presenceFlushMs) * 1_000_000) { [weak self] in self?.flushPresence() }
        }
        if members.isEmpty && hub.subscribers(topic: topic).isEmpty {
            state.remote[topic] = nil   // nobody here follows it: read afresh when someone does
            return
        }
        if state.remote[topic] == nil { readPresence(topic: topic) } else { deliverPresence(topic: topic, to: to) }
    }

    private func flushPresence() {
        guard let state = cluster else { return }
        state.flushScheduled = false
        let rows = state.dirty.map { topic -> (topic: String, json: String) in
            let members = state.local[topic] ?? []
            if members.isEmpty { state.local[topic] = nil }
            return (topic, members.isEmpty ? "" : JSONValue.array(members.map(Self.json(member:))).jsonString)
        }
        state.dirty.removeAll()
        guard !rows.isEmpty else { return }
        let bound = LoopBound(self, loop: loop)
        store.setPresence(node: state.id, members: rows) { result in
            if case .failure(let error) = result {
                bound.hop { app in app.logger.warning("presence could not be stored", metadata: ["error": "\(error.message)"]) }
            }
        }
    }

    /// Reads every node's members of `topic` (another node changed its own, or this node has none cached) and
    /// sends the union to this node's subscribers of it.
    func readPresence(topic: String) {
        guard let state = cluster, state.shared, !hub.subscribers(topic: topic).isEmpty else {
            cluster?.remote[topic] = nil
            return
        }
        let bound = LoopBound(self, loop: loop)
        store.presence(topic: topic) { result in
            bound.hop { app in
                guard let state = app.cluster, case .success(let rows) = result else { return }
                var byNode: [String: [PresenceMember]] = [:]
                for row in rows where row.node != state.id && (state.alive.isEmpty || state.alive.contains(row.node)) {
                    byNode[row.node] = Self.members(json: row.json)
                }
                state.remote[topic] = byNode
                app.deliverPresence(topic: topic, to: app.hub.subscribers(topic: topic))
            }
        }
    }

    /// Sends the union of this node's and the live other nodes' members of `topic` to `to`.
    func deliverPresence(topic: String, to: [SubscriberID]) {
        guard !to.isEmpty else { return }
        let frame = Self.frame(ServerMessage.presence(topic: topic, members: mergedPresence(topic: topic)))
        for sub in to { deliver(frame, to: sub) }
    }

    /// One entry per principal, the earliest `since` of any of its connections on any node, ordered by `since`.
    func mergedPresence(topic: String) -> [PresenceMember] {
        var all = hub.presence(topic: topic)
        if let state = cluster { for members in (state.remote[topic] ?? [:]).values { all += members } }
        var byPrincipal: [String: PresenceMember] = [:]
        for m in all where byPrincipal[m.principal].map({ m.since < $0.since }) ?? true { byPrincipal[m.principal] = m }
        return byPrincipal.values.sorted { ($0.since, $0.principal) < ($1.since, $1.principal) }
    }

    static func json(member m: PresenceMember) -> JSONValue {
        .object(["principal": .string(m.principal), "role": .string(m.role), "since": .int(m.since)])
    }

    /// Members from a stored row (another node wrote it: malformed entries are skipped).
    static func members(json: String) -> [PresenceMember] {
        guard case .array(let items)? = try? JSONValue.parse(Array(json.utf8)) else { return [] }
        return items.compactMap { item in
            guard let principal = item["principal"]?.stringValue, let role = item["role"]?.stringValue, let since = item["since"]?.intValue
            else { return nil }
            return PresenceMember(principal: principal, role: role, since: since)
        }
    }

    /// `GET /api/v1/cluster`: this node, every node sharing the store (alive or not, how long since it was heard),
    /// and what this node follows.
    func clusterJSON() -> JSONValue {
        let now = wallClockMilliseconds()
        guard let state = cluster else { return .object(["node": .null, "shared": false, "nodes": .array([])]) }
        let nodes = state.shared ? state.nodes : [NodeRow(id: state.id, address: state.address, startedAt: state.startedAt, heartbeatAt: now)]
        return .object([
            "node": .string(state.id), "shared": .bool(state.shared), "heartbeat_ms": .int(Self.heartbeatMs), "dead_after_ms": .int(Self.deadAfterMs),
            "nodes": .array(nodes.map { n in
                .object([
                    "id": .string(n.id), "address": .string(n.address), "started_at": .int(n.startedAt), "heartbeat_at": .int(n.heartbeatAt),
                    "lag_ms": .int(max(0, now - n.heartbeatAt)), "alive": .bool(!state.shared || state.alive.contains(n.id)), "self": .bool(n.id == state.id),
                ])
            }),
            "leases_held": .int(Int64(state.held.count)), "lease_ms": .int(Self.leaseMs),
            "followed_topics": .int(Int64(hub.topicCount)), "catching_up": .int(Int64(remoteFetches.count)),
            "events_from_other_nodes": .int(Int64(metrics.remoteEvents)), "resyncs": .int(Int64(metrics.resyncs)),
        ])
    }

    /// A topic's committed head, from a notification or the store: fetch what this node's subscribers lack.
    func noteCommittedHead(topic: String, head: Int64) {
        if let known = heads[topic], known < head { heads[topic] = head }
        guard !hub.subscribers(topic: topic).isEmpty, head > hub.head(topic: topic) else { return }
        if let wanted = remoteFetches[topic] {
            remoteFetches[topic] = max(wanted, head)   // one read per topic at a time; this one continues it
            return
        }
        remoteFetches[topic] = head
        fetchCommitted(topic: topic, after: hub.head(topic: topic))
    }

    private func fetchCommitted(topic: String, after: Int64) {
        let bound = LoopBound(self, loop: loop)
        metrics.remoteFetches += 1
        store.events(topic: topic, after: after, limit: Self.remoteFetchPage) { result in
            bound.hop { app in
                let wanted = app.remoteFetches.removeValue(forKey: topic) ?? 0
                switch result {
                case .success(let events):
                    app.metrics.remoteEvents += events.count
                    app.publish(events)
                    app.server?.releaseDeferredFlushes()
                    // More than one page, or notified again meanwhile: go on from where the Hub is now.
                    if wanted > app.hub.head(topic: topic) && !events.isEmpty { app.noteCommittedHead(topic: topic, head: wanted) }
                case .failure(let error):
                    app.logger.warning("reading another node's events failed; retrying", metadata: ["topic": "\(topic)", "error": "\(error.message)"])
                    app.loop.schedule(afterNanoseconds: 500_000_000) { app.noteCommittedHead(topic: topic, head: wanted) }
                }
            }
        }
    }

    /// The listener (re)connected: notifications may have been lost. Cached heads are dropped (a subscribe reads
    /// the store), and every topic with subscribers here reads its head again.
    func resyncHeads() {
        heads.removeAll(keepingCapacity: true)
        metrics.resyncs += 1
        for topic in cluster?.remote.keys.map({ $0 }) ?? [] { readPresence(topic: topic) }
        let bound = LoopBound(self, loop: loop)
        for topic in hub.topicNames where !hub.subscribers(topic: topic).isEmpty {
            store.head(topic: topic) { result in
                bound.hop { app in
                    if case .success(let head) = result { app.noteCommittedHead(topic: topic, head: head) }
                }
            }
        }
    }

    /// Events read per store round trip when catching up with another node.
    static let remoteFetchPage = 1000
}
