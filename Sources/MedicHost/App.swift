// App: the live protocol front — sessions, authentication, subscriptions through the Hub, durable publishing.
public import EventLoop
import Foundation
public import HTTP1
import Hub
import IOBytes
public import Logging
public import Protocol
public import Server
public import Store
public import WebSocket

/// A `medic.v1` session is its connection. The connection's `userData` holds a `PendingSession` until the
/// hello (or bearer token) is accepted, then the principal — one shared object per token — so an
/// authenticated idle session allocates nothing of its own (Benchmarks/README: idle RSS per connection).
struct Session {
    let connection: Connection

    var principal: Principal? { (connection.userData as? SharedPrincipal)?.principal }
    /// Set until authenticated.
    var pendingState: PendingSession? { connection.userData as? PendingSession }
}

/// A session's state before it is authenticated.
final class PendingSession {
    /// Monotonic ns when the session opened: still pending `helloTimeoutSeconds` later, it is closed
    /// (checked by the server's once-a-second sweep: no timer per session).
    let openedAt: UInt64
    /// A token lookup is in flight.
    var authenticating = false
    /// Messages that arrived while a token lookup was in flight, replayed in order after it.
    var pending: [[UInt8]] = []

    init(openedAt: UInt64) { self.openedAt = openedAt }
}

/// An authenticated principal, shared by every session of the same token (`App.liveTokens` holds it while
/// any session does), so that revoking the token or changing its role reaches all of them at once.
final class SharedPrincipal {
    let principal: Principal
    /// SHA-256 hex of the token (the store's key; the token itself is not kept).
    let tokenHash: String
    init(_ principal: Principal, tokenHash: String) {
        self.principal = principal
        self.tokenHash = tokenHash
    }
}

/// The Medic application on one loop: WebSocket sessions (`/ws`, subprotocol `medic.v1`), the REST API,
/// static files, and the durable publish path (store → frame once → hub → every subscriber's queue).
public final class App: HTTPHandler, WebSocketHandler, Publisher {
    public let loop: EventLoop
    public let store: Store
    public let configuration: MedicConfiguration
    let logger: Logger
    let hub = Hub<SharedMessage>()
    let staticFiles: StaticFiles?
    /// The features whose commands, topics and routes the app serves (`register`).
    public let features = FeatureRegistry()
    /// Command types decoded by the features themselves (`ClientMessage.feature`).
    private var featureTypes: Set<String> = []
    /// Called on the loop each time a WebSocket session is authenticated, after its `welcome` went out
    /// (`medic serve` files the demo proposal when the first admin arrives, so that admin watches it live).
    public var onSessionAuthenticated: ((Principal) -> Void)?
    /// Not owned (the server owns the app); held through `Unretained`, not `weak` (see there).
    public var server: Server? {
        get { serverReference?.value }
        set { serverReference = newValue?.unretained }
    }
    private var serverReference: Unretained<Server>?
    /// Durable heads the app knows: topic → last seq. A cache: on a shared (PostgreSQL) store other nodes write
    /// too, so notifications raise it and a listener reconnect empties it (App+Nodes.swift); a subscribe whose
    /// `since` is beyond it reads the store before refusing.
    var heads: [String: Int64] = [:]
    /// This node among the nodes sharing the store (`joinCluster`, App+Nodes.swift); nil before it joined.
    var cluster: ClusterState?
    /// Topics being caught up from the store after another node's commit → the highest head announced meanwhile.
    var remoteFetches: [String: Int64] = [:]
    /// Store writes submitted by `commit` and not yet completed.
    var writesInFlight = 0
    /// Writes `commit` took this tick, handed to the store before the loop sleeps.
    private var pendingWrites: [(write: StoreWrite, completion: @Sendable (Result<WriteOutcome, StoreError>) -> Void)] = []
    var metrics = AppMetrics()
    /// Wire limits: 8 MiB messages (a proposal's files), the rest at Protocol's defaults.
    let protocolLimits = ProtocolLimits(maxMessageBytes: 8 << 20)
    /// The principals of open sessions by token hash. Tokens are never cached: every `hello`, REST request
    /// and state-changing command asks the store, and `recheckCredentials` (once a second while this is not
    /// empty) closes the sessions of a token that was revoked or whose role changed (close 4003).
    var liveTokens: [String: SharedPrincipal] = [:]
    /// How often open sessions are re-checked against the store.
    static let credentialRecheckNanoseconds: UInt64 = 1_000_000_000
    private var recheckTimer: TimerID?
    private var recheckInFlight = false

    /// What callbacks hold instead of `[weak self]`, which would put every retain of the app on the
    /// runtime's slow path (see `Unretained`).
    lazy var unretained = Unretained(self)

    deinit { unretained.invalidate() }

    public init(loop: EventLoop, store: Store, configuration: MedicConfiguration, logger: Logger) {
        self.loop = loop
        self.store = store
        self.configuration = configuration
        self.logger = logger
        staticFiles = try? StaticFiles(root: configuration.staticDirectory)
        if staticFiles == nil {
            logger.warning("static directory not readable; the page will not be served", metadata: ["dir": "\(configuration.staticDirectory)"])
        }
        loop.addBeforeSleepHook { [unretained] in unretained.value?.submitPendingWrites() }
    }

    // MARK: WebSocketHandler

    public func upgradePolicy(for request: HTTPRequest) -> WebSocketUpgradePolicy? {
        guard request.path == "/ws" else { return nil }
        // Until authenticated, messages are capped at the server's restricted limit (8 KiB: the largest hello
        // fits) and a larger one closes with 1009 from its frame header, before it is buffered or parsed.
        return WebSocketUpgradePolicy(subprotocols: [medicSubprotocol], requireSubprotocol: false, origins: originPolicy(for: request),
            restrictedUntilLifted: true)
    }

    /// Same origin by default: an Origin whose host:port equals the request's Host, plus configured origins.
    func originPolicy(for request: HTTPRequest) -> OriginPolicy {
        var allowed = configuration.allowedOrigins
        if let host = request.headers["host"] {
            allowed.append("http://\(host)")
            allowed.append("https://\(host)")
        }
        return .allowList(allowed)
    }

    public func didOpen(_ connection: Connection, request: HTTPRequest, subprotocol: String?) {
        connection.userData = PendingSession(openedAt: loop.now)
        let session = Session(connection: connection)
        metrics.sessionsOpened += 1
        if let token = Self.bearerToken(request) {
            authenticate(session, token: token, commandID: nil)
        }
    }

    public func didReceive(_ connection: Connection, opcode: WebSocketOpcode, payload: UnsafeRawBufferPointer) {
        guard connection.userData != nil else { return }
        let session = Session(connection: connection)
        metrics.messagesReceived += 1
        guard opcode == .text else {
            send(session, ServerMessage.error(id: nil, code: .invalidMessage, message: "medic.v1 uses JSON text frames"))
            return
        }
        if let state = session.pendingState, state.authenticating {
            if state.pending.count < 64 { state.pending.append(Array(payload)) } else {
                send(session, ServerMessage.error(id: nil, code: .rateLimited, message: "too many messages before authentication finished"))
            }
            return
        }
        handle(session, payload)
    }

    public func didClose(_ connection: Connection) {
        perform(hub.disconnect(connection.id))
    }

    /// Once a second per session (the server's sweep): the hello timeout.
    public func sweep(_ connection: Connection, now: UInt64) {
        guard let state = connection.userData as? PendingSession,
            now &- state.openedAt > UInt64(configuration.helloTimeoutSeconds) * 1_000_000_000
        else { return }
        connection.close(code: CloseCode.authenticationFailed.rawValue, reason: "authentication timed out")
    }

    /// The token of `Authorization: Bearer TOKEN` (scheme case-insensitive, RFC 9110 §11.1), trimmed of
    /// spaces and tabs; nil when absent or another scheme.
    static func bearerToken(_ request: HTTPRequest) -> String? {
        guard let header = request.headers["authorization"] else { return nil }
        let bytes = Array(header.utf8)
        guard bytes.count > 7, bytes[6] == UInt8(ascii: " "),
            zip(bytes[0..<6], "bearer".utf8).allSatisfy({ $0 | 0x20 == $1 })
        else { return nil }
        var start = 7
        var end = bytes.count
        while start < end, bytes[start] == 0x20 || bytes[start] == 0x09 { start += 1 }
        while end > start, bytes[end - 1] == 0x20 || bytes[end - 1] == 0x09 { end -= 1 }
        return String(decoding: bytes[start..<end], as: UTF8.self)
    }

    /// The session of connection `id`, if it is open (the server's fd-indexed table: no hashing per
    /// delivery). Closures look sessions up by id rather than holding their connection weakly: a weak
    /// reference gives the object a side table, and every retain on the fan-out path then takes the slow
    /// path (seen in perf).
    @inline(__always)
    func session(_ id: UInt64) -> Session? {
        server?.connection(id: id).map(Session.init)
    }

    /// Adds a feature: its commands, topics (and their presence) and routes become served.
    public func register(_ feature: any Feature) {
        features.register(feature)
        featureTypes = features.passThroughTypes
        hub.presenceKinds = features.presenceKinds
    }

    /// Runs a feature's command as `principal` outside any session (the demo filed at the first sign-in).
    public func execute(_ message: ClientMessage, commandID: String?, principal: Principal, reply: @escaping CommandReply) {
        guard let feature = features.command(message.type)?.feature else {
            return reply(.failure(ProtocolError(code: .unknownType, message: "no feature handles \(message.type)")))
        }
        feature.execute(message, commandID: commandID, principal: principal, reply: reply)
    }

    /// Whether `principal` may send `message`: the session commands always, a feature's as it declares.
    func may(_ principal: Principal, _ message: ClientMessage) -> Bool {
        switch message {
        case .hello, .subscribe, .unsubscribe, .stats: true
        default: features.command(message.type)?.declaration.roles.contains(principal.role) ?? false
        }
    }

    // MARK: commands

    private func handle(_ session: Session, _ payload: UnsafeRawBufferPointer) {
        let request: ClientRequest
        switch ClientMessage.decode(payload, limits: protocolLimits, featureTypes: featureTypes) {
        case .success(let decoded): request = decoded
        case .failure(let error):
            metrics.protocolErrors += 1
            send(session, ServerMessage.error(error))
            return
        }
        guard let principal = session.principal else {
            if case .hello(let token) = request.message {
                authenticate(session, token: token, commandID: request.id)
            } else {
                send(session, ServerMessage.error(id: request.id, code: .unauthenticated, message: "send hello {token} first"))
            }
            return
        }
        guard may(principal, request.message) else {
            send(session, ServerMessage.error(id: request.id, code: .forbidden,
                message: "role \(principal.role.rawValue) may not send \(request.message.type)"))
            return
        }
        switch request.message {
        case .hello:
            send(session, ServerMessage.error(id: request.id, code: .invalidState, message: "already authenticated"))
        case .subscribe(let topic, let since):
            guard features.knows(topic) else {
                send(session, ServerMessage.error(id: request.id, code: .invalidMessage,
                    message: "unknown topic '\(topic.description)'; topics: \(features.topicForms)"))
                return
            }
            subscribe(session, topic: topic.description, since: since, id: request.id)
        case .unsubscribe(let topic):
            perform(hub.unsubscribe(session.connection.id, topic: topic.description), ids: [topic.description: request.id])
        case .stats:
            // Every feature's figures, merged (their own fields; proposals' are the customer's metrics).
            send(session, ServerMessage.ack(id: request.id, fields: features.stats()))
        case _ where features.command(request.message.type)?.declaration.changesState != true:
            let id = session.connection.id
            runCommand(request, principal: principal) { [unretained] bytes in
                guard let self = unretained.value, let session = self.session(id) else { return }
                self.send(session, bytes)
            }
        default:
            // State-changing: the token is checked against the store again first, so a revoked token or a
            // lowered role stops working for the very next command (not only at the next recheck).
            guard let shared = session.connection.userData as? SharedPrincipal else { return }
            let id = session.connection.id
            reverify(shared) { [unretained] current in
                guard let self = unretained.value, let session = self.session(id) else { return }
                switch current {
                case .failure(let error):
                    self.send(session, ServerMessage.error(id: request.id, code: .storeUnavailable, message: error.message))
                case .success(nil):
                    self.send(session, ServerMessage.error(id: request.id, code: .unauthenticated, message: "token revoked"))
                case .success(let principal?) where principal != shared.principal:
                    self.send(session, ServerMessage.error(id: request.id, code: .forbidden,
                        message: "role changed to \(principal.role.rawValue); reconnect"))
                case .success(let principal?):
                    self.runCommand(request, principal: principal) { [unretained] bytes in
                        guard let self = unretained.value, let session = self.session(id) else { return }
                        self.send(session, bytes)
                    }
                }
            }
        }
    }

    /// Looks `shared`'s token up in the store; when it is no longer live as it was, every session holding it
    /// is closed (4003) right after `completion` ran (so that its error reaches the client first).
    private func reverify(_ shared: SharedPrincipal, completion: @escaping (Result<Principal?, StoreError>) -> Void) {
        let bound = LoopBound((self, shared, completion), loop: loop)
        store.principal(tokenHash: shared.tokenHash) { result in
            bound.hop { triple in
                let (app, shared, completion) = triple
                let current = result.map { $0.map(Self.principal(of:)) }
                completion(current)  // the refusal is queued before the close frame
                if case .success(let principal) = current, principal != shared.principal {
                    app.invalidate(shared, reason: principal == nil ? "token revoked" : "role changed")
                }
            }
        }
    }

    /// Runs a feature's command: a repeated id of a state-changing command replays the first ack (invariant 5),
    /// else the feature runs it.
    func runCommand(_ request: ClientRequest, principal: Principal, respond: @escaping ([UInt8]) -> Void) {
        guard let (feature, declaration) = features.command(request.message.type) else {
            respond(ServerMessage.error(id: request.id, code: .unknownType, message: "no feature handles \(request.message.type)"))
            return
        }
        let execute = { [unretained] in
            guard unretained.value != nil else { return }
            Self.execute(request, on: feature, as: principal, respond: respond)
        }
        // On several nodes a command on a leased instance runs where its lease is (App+Leases.swift).
        let owned = feature.leasedInstance(of: request.message).map { topic in
            { [unretained] in unretained.value?.runOnOwner(topic, request: request, principal: principal, respond: respond, local: execute) }
        } ?? execute
        guard let id = request.id, declaration.changesState else {
            owned()
            return
        }
        let bound = LoopBound((respond, owned), loop: loop)
        store.commandResponse(principal: principal.name, commandId: id) { result in
            bound.hop { pair in
                switch result {
                case .success(let stored?): pair.0(Array(stored.utf8))
                case .success(nil): pair.1()
                case .failure(let error):
                    pair.0(ServerMessage.error(id: id, code: .storeUnavailable, message: error.message))
                }
            }
        }
    }

    /// Runs `request` on `feature` as `principal` and answers its ack or error frame (with the request's id).
    static func execute(_ request: ClientRequest, on feature: any Feature, as principal: Principal, respond: @escaping ([UInt8]) -> Void) {
        feature.execute(request.message, commandID: request.id, principal: principal) { result in
            switch result {
            case .success(let fields): respond(ServerMessage.ack(id: request.id, fields: fields))
            case .failure(var error):
                error.id = request.id
                respond(ServerMessage.error(error))
            }
        }
    }

    // MARK: authentication

    func authenticate(_ session: Session, token: String, commandID: String?) {
        guard let state = session.pendingState else { return }
        state.authenticating = true
        let id = session.connection.id
        lookUp(token: token) { [unretained] result in
            guard let self = unretained.value, let session = self.session(id), !session.connection.isClosed else { return }
            state.authenticating = false
            switch result {
            case .success(let principal?) where principal.role == .ingest:
                // Ingest tokens send log events over REST and nothing else (SECURITY.md, "Roles").
                self.send(session, ServerMessage.error(id: commandID, code: .forbidden, message: "an ingest token may only POST /api/v1/ingest"))
                session.connection.close(code: CloseCode.policyViolation.rawValue, reason: "ingest token")
            case .success(let principal?):
                let hash = sha256Hex(token)
                let shared: SharedPrincipal
                if let existing = self.liveTokens[hash], existing.principal == principal {
                    shared = existing
                } else {
                    // The token's principal changed (a new role) since its other sessions opened: they end now.
                    if let stale = self.liveTokens[hash] { self.invalidate(stale, reason: "role changed") }
                    shared = SharedPrincipal(principal, tokenHash: hash)
                    self.liveTokens[hash] = shared
                    self.scheduleCredentialRecheck()
                }
                session.connection.userData = shared
                session.connection.liftWebSocketRestriction()
                self.send(session, ServerMessage.welcome(principal: principal.name, role: principal.role))
                self.onSessionAuthenticated?(principal)
                // Every command with an id gets exactly one ack or error (protocol/README.md §2), hello included.
                if let commandID { self.send(session, ServerMessage.ack(id: commandID, fields: [:])) }
                let pending = state.pending
                state.pending = []
                for message in pending { message.withUnsafeBytes { self.handle(session, $0) } }
            case .success(nil):
                self.metrics.authFailures += 1
                self.send(session, ServerMessage.error(id: commandID, code: .unauthenticated, message: "unknown or revoked token"))
                session.connection.close(code: CloseCode.authenticationFailed.rawValue, reason: "authentication failed")
            case .failure(let error):
                self.send(session, ServerMessage.error(id: commandID, code: .storeUnavailable, message: error.message))
                session.connection.close(code: CloseCode.internalError.rawValue, reason: "store unavailable")
            }
        }
    }

    /// Resolves a token to a live principal. Never cached: a revoked token fails at once.
    func lookUp(token: String, completion: @escaping (Result<Principal?, StoreError>) -> Void) {
        let bound = LoopBound(completion, loop: loop)
        store.principal(forToken: token) { result in
            bound.hop { completion in completion(result.map { $0.map(Self.principal(of:)) }) }
        }
    }

    static func principal(of row: PrincipalRow) -> Principal { principal(name: row.name, role: row.role) }

    /// A stored role that is not a known one reads as viewer (the least privileged).
    static func principal(name: String, role: String) -> Principal {
        Principal(name: name, role: Role(rawValue: role) ?? .viewer)
    }

    /// Arms the once-a-second recheck of open sessions' tokens (while any session is authenticated).
    private func scheduleCredentialRecheck() {
        guard recheckTimer == nil else { return }
        recheckTimer = loop.schedule(afterNanoseconds: Self.credentialRecheckNanoseconds) { [unretained] in
            guard let self = unretained.value else { return }
            self.recheckTimer = nil
            self.recheckCredentials()
        }
    }

    /// Reads every live token (one query) and closes the sessions whose token was revoked or whose
    /// principal changed (close 4003, protocol/README.md §6). Tokens no session holds any more are dropped.
    func recheckCredentials() {
        for hash in Array(liveTokens.keys) where isKnownUniquelyReferenced(&liveTokens[hash]!) {
            liveTokens[hash] = nil
        }
        guard !liveTokens.isEmpty, !recheckInFlight else { return }
        recheckInFlight = true
        let bound = LoopBound(self, loop: loop)
        store.liveCredentials { result in
            bound.hop { app in
                app.recheckInFlight = false
                if case .success(let credentials) = result {
                    var live: [String: Principal] = [:]
                    for credential in credentials { live[credential.tokenHash] = Self.principal(name: credential.name, role: credential.role) }
                    for shared in Array(app.liveTokens.values) {
                        let current = live[shared.tokenHash]
                        if current != shared.principal { app.invalidate(shared, reason: current == nil ? "token revoked" : "role changed") }
                    }
                } else if case .failure(let error) = result {
                    // Sessions stay open while the store is unreachable; every command re-checks anyway.
                    app.logger.warning("credential recheck failed", metadata: ["error": "\(error.message)"])
                }
                if !app.liveTokens.isEmpty { app.scheduleCredentialRecheck() }
            }
        }
    }

    /// Closes every session holding `shared` with 4003 and forgets the token.
    func invalidate(_ shared: SharedPrincipal, reason: String) {
        if liveTokens[shared.tokenHash] === shared { liveTokens[shared.tokenHash] = nil }
        let closing = (server?.allConnections ?? []).filter { $0.userData === shared }
        if !closing.isEmpty {
            logger.info("closing sessions of a changed token", metadata: ["principal": "\(shared.principal.name)", "reason": "\(reason)", "sessions": "\(closing.count)"])
        }
        for connection in closing { connection.close(code: CloseCode.credentialsChanged.rawValue, reason: reason) }
    }

    // MARK: subscriptions

    private func subscribe(_ session: Session, topic: String, since: Int64?, id: String?) {
        let member = session.principal.map { PresenceMember(principal: $0.name, role: $0.role.rawValue, since: wallClockMilliseconds()) }
        let sub = session.connection.id
        // The cached head answers unless the client is ahead of it (it saw more on another node): then the store.
        if let head = heads[topic], (since ?? 0) <= head {
            perform(hub.subscribe(sub, topic: topic, since: since, head: head, member: member), ids: [topic: id])
            return
        }
        let bound = LoopBound((self, session), loop: loop)
        store.head(topic: topic) { result in
            bound.hop { pair in
                let (app, session) = pair
                guard !session.connection.isClosed else { return }
                switch result {
                case .success(let head):
                    app.heads[topic] = max(app.heads[topic] ?? 0, head)
                    app.perform(app.hub.subscribe(sub, topic: topic, since: since, head: app.heads[topic]!, member: member), ids: [topic: id])
                case .failure(let error):
                    app.send(session, ServerMessage.error(id: id, code: .storeUnavailable, message: error.message))
                }
            }
        }
    }

    /// The one executor of Hub actions. `ids` maps topics to the command id to echo in acks/errors.
    func perform(_ actions: [HubAction<SharedMessage>], ids: [String: String?] = [:]) {
        for action in actions {
            switch action {
            case .deliver(let sub, let frame):
                deliver(frame, to: sub)
            case .subscribed(let sub, let topic, let head):
                sendTo(sub, ServerMessage.ack(id: ids[topic] ?? nil, fields: ["topic": .string(topic), "head": .int(head)]))
            case .refused(let sub, let topic, let code, let message):
                sendTo(sub, ServerMessage.error(id: ids[topic] ?? nil, code: code, message: message))
            case .unsubscribed(let sub, let topic):
                sendTo(sub, ServerMessage.ack(id: ids[topic] ?? nil, fields: ["topic": .string(topic)]))
            case .readStore(let sub, let topic, let after, let limit):
                readForReplay(sub, topic: topic, after: after, limit: limit)
            case .caughtUp:
                break
            case .replayFailed(let sub, let topic, let message):
                logger.error("replay failed", metadata: ["topic": "\(topic)", "error": "\(message)"])
                sendTo(sub, ServerMessage.error(id: nil, code: .storeUnavailable, message: message))
            case .presenceChanged(let topic, let members, let to):
                if cluster?.shared == true {
                    noteLocalPresence(topic: topic, members: members, to: to)   // the union over the nodes
                } else {
                    let frame = Self.frame(ServerMessage.presence(topic: topic, members: members))
                    for sub in to { deliver(frame, to: sub) }
                }
            }
        }
    }

    private func readForReplay(_ sub: SubscriberID, topic: String, after: Int64, limit: Int) {
        let bound = LoopBound(self, loop: loop)
        store.events(topic: topic, after: after, limit: limit) { result in
            bound.hop { app in
                switch result {
                case .success(let events):
                    let framed = events.map { (seq: $0.seq, frame: Self.frame(stored: $0)) }
                    let head = max(app.heads[topic] ?? 0, events.last?.seq ?? 0)
                    app.perform(app.hub.replayPage(sub, topic: topic, after: after, events: framed, head: head))
                case .failure(let error):
                    app.sendTo(sub, ServerMessage.error(id: nil, code: .storeUnavailable, message: "replay of \(topic) failed: \(error.message)"))
                    app.perform(app.hub.unsubscribe(sub, topic: topic))
                }
            }
        }
    }

    // MARK: Publisher

    public func commit(_ write: StoreWrite, completion: @escaping (Result<WriteOutcome, StoreError>) -> Void) {
        let bound = LoopBound((self, completion), loop: loop)
        writesInFlight += 1
        // Submitted by the before-sleep hook; should this commit come from a later hook of the same tick,
        // the loop must not sleep on it.
        if pendingWrites.isEmpty { loop.pollWithoutSleepingOnce() }
        pendingWrites.append((write, { result in
            bound.hop { pair in
                let (app, completion) = pair
                app.writesInFlight -= 1
                if case .success(.committed(let events)) = result { app.publish(events) }
                completion(result)
                app.releaseFanOutIfQuiet()
            }
        }))
    }

    /// Hands this tick's writes to the store together, so that commands read in one tick (a bot's burst
    /// of comments) become one group commit and their events leave in one `writev` per subscriber.
    func submitPendingWrites() {
        guard !pendingWrites.isEmpty else { return }
        let writes = pendingWrites
        pendingWrites.removeAll(keepingCapacity: true)
        store.write(contentsOf: writes)
    }

    public func publishEphemeral(topic: String, kind: String, data: JSONValue) {
        let frame = Self.frame(EventFrame.encode(topic: topic, seq: nil, ts: wallClockMilliseconds(), kind: kind, data: data))
        hub.publishEphemeral(topic: topic, frame: frame) { sub, frame in deliver(frame, to: sub, deferred: true) }
        releaseFanOutIfQuiet()
    }

    /// Fan-out writes are deferred (`Connection.send(frame:deferred:)`) while more store writes are in
    /// flight, so that the events of the next group commits leave with them in one writev per subscriber;
    /// when none is in flight they go at the end of this tick. The server's deadline bounds the wait.
    private func releaseFanOutIfQuiet() {
        if writesInFlight == 0 { server?.releaseDeferredFlushes() }
    }

    /// Publishes stored events: each is serialized and framed once, then the same bytes go to every
    /// subscriber's queue (invariant 3).
    func publish(_ events: [StoredEvent]) {
        for event in events {
            heads[event.topic] = max(heads[event.topic] ?? 0, event.seq)
            let frame = Self.frame(stored: event)
            metrics.eventsPublished += 1
            let actions = hub.publish(topic: event.topic, seq: event.seq, frame: frame) { sub, frame in
                deliver(frame, to: sub, deferred: true)
            }
            if !actions.isEmpty { perform(actions) }
        }
    }

    // MARK: output

    /// Framed once: the plain frame now, the permessage-deflate frame on first demand (see `SharedMessage`).
    static func frame(stored event: StoredEvent) -> SharedMessage {
        frame(EventFrame.encode(topic: event.topic, seq: event.seq, ts: event.ts, kind: event.kind, dataJSON: Array(event.data.utf8)))
    }

    static func frame(_ json: [UInt8]) -> SharedMessage {
        json.withUnsafeBytes { SharedMessage(.text, payload: $0) }
    }

    @inline(__always)
    func deliver(_ frame: SharedMessage, to sub: SubscriberID, deferred: Bool = false) {
        guard let session = session(sub) else { return }
        if session.connection.send(message: frame, deferred: deferred) { metrics.deliveries += 1 }
    }

    /// A reply for one session: framed straight into its outbound buffer (no shared frame to allocate).
    func send(_ session: Session, _ json: [UInt8]) {
        json.withUnsafeBytes { session.connection.sendMessage(.text, payload: $0) }
    }

    func sendTo(_ sub: SubscriberID, _ json: [UInt8]) {
        guard let session = session(sub) else { return }
        send(session, json)
    }
}

/// App-level counters for /metrics.
struct AppMetrics {
    var sessionsOpened = 0
    var messagesReceived = 0
    var protocolErrors = 0
    var authFailures = 0
    var eventsPublished = 0
    var deliveries = 0
    var restRequests = 0
    /// Store reads for events another node committed, the events they brought, listener resyncs.
    var remoteFetches = 0
    var remoteEvents = 0
    var resyncs = 0
    /// Commands forwarded to their instance's owner, those that timed out, those run here for another node, and
    /// instances this node claimed after their owner let the lease expire.
    var forwarded = 0
    var forwardTimeouts = 0
    var forwardedRun = 0
    var takeovers = 0
}
