// App+Leases: which node runs each live workflow instance, on a shared (PostgreSQL) store.
//
// One node owns an instance while it holds the instance's lease row (`leases`: node, expiry). A node takes a lease
// when it creates an instance or when a command names one nobody holds (`claimLease`: one upsert that locks the
// row, so two nodes racing for it get one owner); it renews all its leases with every heartbeat and gives a lease
// up when the instance leaves its memory. A node that stops renewing (killed, cut off from the database) loses
// its leases `leaseMs` later: the next heartbeat of any node that reaches the instance's repository claims them
// (`FOR UPDATE SKIP LOCKED`, oldest first) and its feature resumes the instance (`Feature.resume`).
//
// A command on an instance another node owns is forwarded through the database: a `forwarded_commands` row and a
// NOTIFY on `medic_forward`; the owner runs it as the sender's principal, stores its ack or error in the row (after
// the feature stored the effect) and NOTIFYs back; the receiving node answers its client with that frame. A
// command whose owner has fallen silent is refused at once (retry with the same id once the work has moved); one
// the owner does not answer within `forwardTimeoutMs` is refused too — the id makes the retry safe either way.
import EventLoop
import Foundation
import Logging
import Server
import Protocol
import Store

/// Where a feature's instances tell the cluster they live on this node (the App; nothing happens on SQLite).
protocol WorkflowLeases: AnyObject {
    /// This node runs `topic` (a new instance, or one loaded for a command): its lease is taken.
    func hold(_ topic: String, repo: String)
    /// `topic` left this node's memory: its lease is given up.
    func release(_ topic: String)
}

/// A command this node forwarded and waits on.
struct ForwardWait {
    var respond: ([UInt8]) -> Void
    var owner: String
}

extension App: WorkflowLeases {
    /// A lease not renewed for this long is another node's to claim; a forwarded command unanswered this long is
    /// refused; an owner silent this long gets no forwarded commands.
    static let leaseMs: Int64 = 10_000
    static let forwardTimeoutMs: Int64 = 15_000
    static let silentOwnerMs: Int64 = 5_000
    /// Expired leases one heartbeat claims at most.
    static let claimsPerHeartbeat = 16

    func hold(_ topic: String, repo: String) {
        guard let state = cluster, state.shared else { return }
        state.held.insert(topic)
        let bound = LoopBound(self, loop: loop)
        let me = state.id
        store.claimLease(workflow: topic, node: me, repo: repo, now: wallClockMilliseconds(), leaseMs: Self.leaseMs) { result in
            bound.hop { app in
                switch result {
                case .success(let lease) where lease.node != me:
                    app.logger.error("a new instance's lease is held by another node", metadata: ["topic": "\(topic)", "node": "\(lease.node)"])
                case .failure(let error):
                    app.logger.warning("taking a lease failed; the heartbeat retries", metadata: ["topic": "\(topic)", "error": "\(error.message)"])
                default: break
                }
            }
        }
    }

    func release(_ topic: String) {
        guard let state = cluster, state.shared, state.held.remove(topic) != nil else { return }
        store.releaseLease(workflow: topic, node: state.id) { _ in }
    }

    /// The repositories this node reaches (configured, and their path exists): it claims only their work.
    var reachableRepositories: [String] {
        configuration.repositories.filter { FileManager.default.fileExists(atPath: $0.path) }.map(\.name)
    }

    /// Runs `local` when this node owns `topic` or just claimed it; forwards the command to the owner otherwise.
    func runOnOwner(
        _ topic: String, request: ClientRequest, principal: Principal, respond: @escaping ([UInt8]) -> Void, local: @escaping () -> Void
    ) {
        guard let state = cluster, state.shared else { return local() }
        if state.held.contains(topic) { return local() }
        let now = wallClockMilliseconds()
        let bound = LoopBound((self, respond, local), loop: loop)
        store.claimLease(workflow: topic, node: state.id, repo: "", now: now, leaseMs: Self.leaseMs) { result in
            bound.hop { captured in
                let (app, respond, local) = captured
                guard let state = app.cluster else { return }
                switch result {
                case .failure(let error):
                    respond(ServerMessage.error(id: request.id, code: .storeUnavailable, message: error.message))
                case .success(let lease) where lease.node == state.id:
                    app.noteClaimed(lease, at: now)
                    local()
                case .success(let lease):
                    let heard = state.nodes.first { $0.id == lease.node }?.heartbeatAt
                    if let heard, now - heard > Self.silentOwnerMs {
                        respond(ServerMessage.error(id: request.id, code: .storeUnavailable, message:
                            "node \(lease.node) runs \(topic) but has not been heard for \((now - heard) / 1000) s; another node takes its work over within \(Self.leaseMs / 1000) s of its last heartbeat — send the command again with the same id"))
                    } else {
                        app.forward(topic, to: lease.node, request: request, principal: principal, respond: respond)
                    }
                }
            }
        }
    }

    /// Claims `topic` for this node if nobody holds it (the monitor's lease when joining); nothing else when
    /// another node does — the heartbeat takes it over if that node stops.
    func claim(_ topic: String) {
        guard let state = cluster, state.shared else { return }
        let now = wallClockMilliseconds()
        let bound = LoopBound(self, loop: loop)
        store.claimLease(workflow: topic, node: state.id, repo: "", now: now, leaseMs: Self.leaseMs) { result in
            bound.hop { app in
                guard let state = app.cluster, case .success(let lease) = result, lease.node == state.id else { return }
                app.noteClaimed(lease, at: now)
            }
        }
    }

    /// `lease` is this node's: when this process did not hold it yet (a new row, one another node let expire, or
    /// this node's own from before a restart), the instance's feature resumes it — a no-op for an instance resident
    /// here or with nothing in flight.
    private func noteClaimed(_ lease: LeaseRow, at now: Int64) {
        guard let state = cluster, state.held.insert(lease.workflow).inserted else { return }
        feature(of: lease.workflow)?.resume(lease.workflow, from: lease.claimedAt == now ? "the previous owner" : state.id)
    }

    private func forward(_ topic: String, to owner: String, request: ClientRequest, principal: Principal, respond: @escaping ([UInt8]) -> Void) {
        guard let state = cluster else { return }
        let command = ForwardedCommand(
            toNode: owner, fromNode: state.id, workflow: topic, principal: principal.name, role: principal.role.rawValue,
            request: String(decoding: request.encode(), as: UTF8.self), createdAt: wallClockMilliseconds())
        let bound = LoopBound((self, respond), loop: loop)
        store.forward(command) { result in
            bound.hop { pair in
                let (app, respond) = pair
                guard let state = app.cluster else { return }
                switch result {
                case .failure(let error):
                    respond(ServerMessage.error(id: request.id, code: .storeUnavailable, message: error.message))
                case .success(let id):
                    app.metrics.forwarded += 1
                    state.waiting[id] = ForwardWait(respond: respond, owner: owner)
                    if state.earlyAnswers.remove(id) != nil { app.readAnswer(id) }
                    _ = app.loop.schedule(afterNanoseconds: UInt64(Self.forwardTimeoutMs) * 1_000_000) { [weak app] in
                        guard let app, let wait = state.waiting.removeValue(forKey: id) else { return }
                        app.metrics.forwardTimeouts += 1
                        wait.respond(ServerMessage.error(id: request.id, code: .storeUnavailable, message:
                            "node \(owner), which runs \(topic), did not answer within \(Self.forwardTimeoutMs / 1000) s; the command may still take effect — send it again with the same id"))
                    }
                }
            }
        }
    }

    /// The owner answered forwarded command `id`: its frame goes to the waiting client.
    func readAnswer(_ id: Int64) {
        guard let state = cluster else { return }
        guard state.waiting[id] != nil else {
            state.earlyAnswers.insert(id)   // the answer overtook our own store.forward completion
            if state.earlyAnswers.count > 1000 { state.earlyAnswers.removeAll() }
            return
        }
        let bound = LoopBound(self, loop: loop)
        store.forwardedAnswer(id: id) { result in
            bound.hop { app in
                guard case .success(let answer?) = result, let wait = app.cluster?.waiting.removeValue(forKey: id) else { return }
                wait.respond(Array(answer.utf8))
            }
        }
    }

    /// Commands other nodes forwarded to this one: each runs once, as its sender's principal, and its answer is
    /// stored for the sender. Rows left unanswered (a notification lost) are read again at every resync.
    func runForwarded() {
        guard let state = cluster, state.shared else { return }
        guard !state.readingForwarded else {
            state.forwardedAgain = true
            return
        }
        state.readingForwarded = true
        let bound = LoopBound(self, loop: loop)
        store.pendingForwarded(node: state.id) { result in
            bound.hop { app in
                guard let state = app.cluster else { return }
                state.readingForwarded = false
                if case .success(let commands) = result {
                    for command in commands where !state.running.contains(command.id) { app.run(forwarded: command) }
                }
                if state.forwardedAgain {
                    state.forwardedAgain = false
                    app.runForwarded()
                }
            }
        }
    }

    private func run(forwarded command: ForwardedCommand) {
        guard let state = cluster else { return }
        state.running.insert(command.id)
        let answer: ([UInt8]) -> Void = { [unretained] bytes in
            guard let app = unretained.value else { return }
            let bound = LoopBound(app, loop: app.loop)
            app.store.answerForwarded(id: command.id, answer: String(decoding: bytes, as: UTF8.self), now: wallClockMilliseconds()) { _ in
                bound.hop { app in app.cluster?.running.remove(command.id) }
            }
        }
        // The request was encoded by a node from what it accepted (a REST body may grow when escaped as JSON).
        let limits = ProtocolLimits(maxMessageBytes: 8 * protocolLimits.maxMessageBytes)
        guard case .success(let request) = ClientMessage.decode(Array(command.request.utf8), limits: limits, featureTypes: features.passThroughTypes),
              let role = Role(rawValue: command.role), let feature = features.command(request.message.type)?.feature
        else {
            return answer(ServerMessage.error(id: nil, code: .invalidMessage, message: "the forwarded command could not be read here"))
        }
        let principal = Principal(name: command.principal, role: role)
        metrics.forwardedRun += 1
        let execute = { Self.execute(request, on: feature, as: principal, respond: answer) }
        // Still ours (it may have left memory, its lease given up, since the sender read the lease): run it here.
        runOnOwner(command.workflow, request: request, principal: principal, respond: answer, local: execute)
    }

    /// The heartbeat's lease figures: leases lost while this node was silent, and leases it claimed.
    func noteLeases(_ result: HeartbeatResult, heldBefore: Set<String>) {
        guard let state = cluster else { return }
        let lost = heldBefore.subtracting(result.held).intersection(state.held)
        for topic in lost {
            state.held.remove(topic)
            logger.warning("this node's lease was taken by another node (it was not renewed in time)", metadata: ["topic": "\(topic)"])
            feature(of: topic)?.leaseLost(topic)
        }
        for lease in result.claimed {
            state.held.insert(lease.workflow)
            metrics.takeovers += 1
            guard let feature = feature(of: lease.workflow) else {
                release(lease.workflow)
                continue
            }
            logger.info("taking over \(lease.workflow) from node \(lease.node)")
            feature.resume(lease.workflow, from: lease.node)
        }
    }

    /// The feature whose instances (or whose own lease, `monitor:cluster`) a lease names.
    private func feature(of topic: String) -> (any Feature)? {
        guard let colon = topic.firstIndex(of: ":") else { return nil }
        let kind = String(topic[..<colon])
        return features.features.first { $0.name == kind || $0.topics.contains { $0.instance == kind } }
    }

    /// Every lease, for `GET /api/v1/cluster`.
    func leasesJSON(_ leases: [LeaseRow]) -> JSONValue {
        let now = wallClockMilliseconds()
        return .array(leases.map { lease in
            .object([
                "workflow": .string(lease.workflow), "node": .string(lease.node), "repo": .string(lease.repo),
                "expires_in_ms": .int(lease.expiresAt - now), "claimed_at": .int(lease.claimedAt),
            ])
        })
    }
}
