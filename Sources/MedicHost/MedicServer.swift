// MedicServer: composition — store, app, pipeline, listeners — on one loop; used by `medic serve` and tests.
public import EventLoop
import Foundation
import HTTP1
import Navigator
public import Logging
import Protocol
public import Server
public import Store
import TLS
import WebSocket

/// A running Medic: everything `medic serve` starts, on the calling thread's loop.
public final class MedicServer {
    public let app: App
    public let server: Server
    public let store: Store
    public let configuration: MedicConfiguration
    /// (scheme, address) of every listener, in order: plain ones first.
    public private(set) var listeners: [(scheme: String, address: SocketAddressSpec)] = []

    /// The proposal pipeline, when `withPipeline` built it.
    public private(set) var pipeline: PipelineService?
    /// The bug workflow, with the pipeline.
    public private(set) var bugs: BugsFeature?
    /// Asks (questions answered from the sources), with the pipeline.
    public private(set) var asks: AskFeature?
    /// The code navigator, when repositories are configured.
    public private(set) var navigator: NavigatorService?
    /// The monitor (ingest, tailed files, incidents); its incidents file bugs when the pipeline runs.
    public private(set) var monitor: MonitorFeature?

    /// Opens the store (migrations run), builds the app, registers the features — proposals (the pipeline,
    /// publishing through the app) unless `withPipeline` is false, then `extraFeatures` — applies the
    /// features' own migrations and binds every listener.
    public init(
        configuration: MedicConfiguration, loop: EventLoop, logger: Logger, withPipeline: Bool = true,
        extraFeatures: (App) throws -> [any Feature] = { _ in [] }
    ) throws {
        var configuration = configuration
        try FileManager.default.createDirectory(atPath: configuration.dataDirectory, withIntermediateDirectories: true)
        var storeOptions = Store.Options()
        if let node = configuration.nodeID {
            guard node.range(of: "^[A-Za-z0-9_-]{1,64}$", options: .regularExpression) != nil else {
                throw ConfigurationError("--node-id must be 1–64 letters, digits, '_' or '-', got '\(node)'")
            }
            if case .postgres? = try? Store.backend(for: configuration.effectiveStoreURL) {
                storeOptions.postgresApplicationName = "medic:\(node)"
            } else {
                logger.warning("--node-id \(node) is ignored: a SQLite store is one node only (several nodes share a PostgreSQL store: --store postgres://…)")
            }
        }
        let store = try Store.open(url: configuration.effectiveStoreURL, logger: logger, options: storeOptions)
        self.store = store
        let nodeID = configuration.nodeID ?? App.defaultNodeID()
        if store.isShared {
            let now = wallClockMilliseconds()
            let nodes = (try? store.sync { store.nodes(completion: $0) }) ?? []
            configuration.nodesAliveAtStart = nodes.filter { $0.id != nodeID && $0.heartbeatAt >= now - App.deadAfterMs }.map(\.id)
            if !configuration.nodesAliveAtStart.isEmpty {
                logger.info("joining live nodes \(configuration.nodesAliveAtStart) as \(nodeID): their busy work stays theirs (nothing is marked interrupted)")
            }
        }
        self.configuration = configuration
        app = App(loop: loop, store: store, configuration: configuration, logger: logger)
        var serverConfiguration = ServerConfiguration()
        serverConfiguration.maxQueuedBytes = 8 << 20
        // Frames up to 16 MiB reach the protocol decoder, which refuses messages over its own limit (8 MiB)
        // with a `too_large` error frame and keeps the session; only larger ones close with 1009.
        serverConfiguration.websocket = WebSocketLimits(maxFrameSize: 16 << 20, maxMessageSize: 16 << 20, maxFragments: 4096)
        // A REST body may be as large as a WebSocket message the protocol accepts: one limit for both.
        serverConfiguration.http.maxBodyBytes = app.protocolLimits.maxMessageBytes
        serverConfiguration.deflate = DeflateConfiguration(
            enabled: configuration.deflate, minimumSize: configuration.deflateMinBytes, level: Int32(configuration.deflateLevel))
        server = Server(loop: loop, configuration: serverConfiguration, http: app, websocket: app)
        app.server = server
        if withPipeline {
            let pipeline = try PipelineService.make(loop: loop, store: store, configuration: configuration, publisher: app, logger: logger)
            self.pipeline = pipeline
            pipeline.leases = app
            app.register(ProposalsFeature(pipeline: pipeline))
        }
        if !configuration.repositories.isEmpty {
            // The code navigator: every configured repository is indexed at start (off the loop) and again
            // after every change Medic makes to it.
            let indexer = CodeIndexer(store: store, loop: loop)
            guard indexer.hasCtags else { throw ConfigurationError(CodeIndexer.ctagsMissing) }
            let navigator = NavigatorService(store: store, loop: loop, repositories: configuration.repositories, indexer: indexer, logger: logger)
            app.register(NavigatorFeature(navigator: navigator, publisher: app))
            pipeline?.onRepositoryChanged = { [unowned navigator] repository in navigator.index(repo: repository.name) }
            pipeline?.locate = { [unowned navigator] repo, evidence, limit, done in navigator.locatePaths(repo: repo, evidence: evidence, limit: limit, done) }
            pipeline?.steps.search = { [unowned navigator] repo, mode, query, limit, done in
                navigator.search(repo: repo, mode: NavigatorMode(rawValue: mode) ?? .find, query: query, limit: limit, reply: done)
            }
            _ = loop.schedule(afterNanoseconds: 0) { [unowned navigator] in navigator.indexAll() }
            self.navigator = navigator
        }
        if let pipeline {
            // Bug reports: their approaches run the pipeline's repair loop, the winner becomes a proposal.
            let bugs = try BugsFeature(loop: loop, store: store, pipeline: pipeline, publisher: app, configuration: configuration, logger: logger)
            app.register(bugs)
            self.bugs = bugs
            // Asks: the configured sources and Medic's own store, answered by the same model.
            let asks = try AskFeature(
                loop: loop, store: store, publisher: app, configuration: configuration, model: pipeline.executors.model,
                clock: pipeline.executors.clock, search: pipeline.steps.search, logger: logger)
            app.register(asks)
            asks.service.leases = app
            self.asks = asks
        }
        // The monitor: always (ingest needs no repository); its incidents file bugs through the bug workflow.
        let monitor = try MonitorFeature(
            loop: loop, store: store, publisher: app, clock: pipeline?.executors.clock ?? LoopClock(loop: loop), configuration: configuration, logger: logger)
        app.register(monitor)
        if let bugs, let pipeline { monitor.follow(bugs: bugs, pipeline: pipeline) }
        self.monitor = monitor
        // One monitor: on several nodes the one holding its lease (claimed when joining, below, or taken over).
        if !store.isShared { _ = loop.schedule(afterNanoseconds: 0) { [weak monitor] in monitor?.start() } }
        app.register(ClusterFeature(app: app))
        for feature in try extraFeatures(app) { app.register(feature) }
        // Features' own tables, before anything is served. Blocking is fine here: the loop is not running yet
        // (as in `Store.open`), and a failed or colliding migration stops startup with its reason.
        let featureMigrations = app.features.migrations
        if !featureMigrations.isEmpty {
            let applied: [Int]
            do {
                applied = try store.sync { store.applyMigrations(featureMigrations, completion: $0) }
            } catch {
                store.close()  // no server will own it: its worker thread must not outlive this failed start
                throw error
            }
            if !applied.isEmpty { logger.info("applied feature migrations \(applied)") }
        }
        for text in configuration.listen {
            guard let spec = SocketAddressSpec(parsing: text) else { throw ConfigurationError("listen address must be HOST:PORT, got '\(text)'") }
            let port = try server.listen(spec)
            listeners.append(("http", SocketAddressSpec(host: spec.host, port: port)))
        }
        if !configuration.tlsListen.isEmpty, let cert = configuration.tlsCertificate, let key = configuration.tlsKey {
            let context = try TLSContext.server(certificatePath: cert, keyPath: key)
            for text in configuration.tlsListen {
                guard let spec = SocketAddressSpec(parsing: text) else { throw ConfigurationError("tls listen address must be HOST:PORT, got '\(text)'") }
                let port = try server.listen(spec, tls: context)
                listeners.append(("https", SocketAddressSpec(host: spec.host, port: port)))
            }
        }
        // Several nodes on one PostgreSQL: the others' events and presence reach this node (App+Nodes.swift).
        let address = listeners.first.map { "\($0.scheme)://\($0.address.host):\($0.address.port)" } ?? ""
        app.joinCluster(nodeID: nodeID, address: address)
        if store.isShared { app.claim(MonitorFeature.leaseTopic) }
    }

    /// Creates an admin named "admin" with a fresh token when no live admin exists; returns the token.
    public func bootstrapAdminIfNeeded() throws -> String? {
        let principals = try store.sync { store.principals(completion: $0) }
        guard !principals.contains(where: { $0.role == "admin" && !$0.revoked }) else { return nil }
        let token = Tokens.generate()
        var name = "admin"
        var suffix = 1
        while principals.contains(where: { $0.name == name && !$0.revoked }) {
            suffix += 1
            name = "admin\(suffix)"
        }
        _ = try store.sync { store.createPrincipal(name: name, role: "admin", token: token, completion: $0) }
        return token
    }

    /// Stops accepting, closes sessions with 1001, then closes the store and calls `completion`.
    public func shutdown(completion: @escaping () -> Void) {
        monitor?.stop()
        server.shutdown { [store, app] in
            app.submitPendingWrites()  // nothing taken is left behind (the loop may not tick again)
            store.close()
            completion()
        }
    }
}

/// Token generation: 32 random bytes, URL-safe base64 (no padding), prefixed for recognisability.
public enum Tokens {
    public static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let base64 = Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        return "mdc_" + base64
    }
}
