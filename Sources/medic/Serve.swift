// Serve: `medic serve` — flags over the config file over the environment over the embedded demo defaults.
import ArgumentParser
import EventLoop
import Foundation
import Glibc
import Logging
import MedicHost

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the server (with no arguments: the bundled demo on SQLite with the scripted LLM).")

    @Option(help: "JSON configuration file (see config/medic.example.json).") var config: String?
    @Option(help: "Address to listen on, HOST:PORT (repeatable).") var listen: [String] = []
    @Option(help: "TLS address to listen on, HOST:PORT (repeatable; needs --tls-cert/--tls-key).") var tlsListen: [String] = []
    @Option(help: "PEM certificate chain for TLS listeners.") var tlsCert: String?
    @Option(help: "PEM private key for TLS listeners.") var tlsKey: String?
    @Option(help: "Directory of the web page.") var `static`: String?
    @Option(help: "Store URL: sqlite:PATH or postgres://…") var store: String?
    @Option(help: "This node's name when several nodes share one PostgreSQL store (README, \"Several nodes\").") var nodeId: String?
    @Option(help: "Data directory (SQLite file, sandboxes, demo repository copy).") var dataDir: String?
    @Option(help: "Target repository path (repeatable; named after its folder).") var repo: [String] = []
    @Option(help: "Test command for --repo.") var testCommand: String?
    @Option(help: "Setup command for --repo.") var setupCommand: String?
    @Option(help: "A database asks may read, NAME=sqlite:PATH or NAME=postgres://… (repeatable; replaces the config file's sources).") var source: [String] = []
    @Option(help: "LLM: 'anthropic' or 'scripted:FILE'.") var llm: String?
    @Option(help: "Base URL of the Anthropic API.") var llmUrl: String?
    @Option(help: "Model name for the Anthropic API.") var llmModel: String?
    @Option(help: "Fix attempts per proposal (default 3).") var maxAttempts: Int?
    @Option(help: "Distinct admin approvals needed (default 1).") var quorum: Int?
    @Option(help: "'auto' (default) or 'manual' (failed proposals wait for auto_fix).") var autoFix: String?
    @Option(help: "Seconds before a test run is killed (default 300).") var testTimeout: Int?
    @Option(help: "Allowed browser Origin (repeatable; default: same origin).") var allowOrigin: [String] = []
    @Option(help: "Extra read-only path visible in sandboxes (repeatable; e.g. /opt/swift).") var sandboxReadonlyPath: [String] = []
    @Option(help: "'remove' (default) or 'keep' finished proposals' sandboxes.") var sandboxRetention: String?
    @Option(help: "Disk quota of one test run's workspace, and size of its /tmp, in MB (default 1024).") var sandboxDiskQuotaMb: Int?
    @Option(help: "Log level.") var logLevel: String?
    @Option(help: "permessage-deflate (RFC 7692) with clients that offer it: 'on' (default) or 'off'.") var deflate: String?
    @Flag(help: "Do not start the demo (otherwise, when the first admin signs in to the page: the demo proposal on an empty store, and the demo app's load that the monitor watches).") var noDemo = false

    func run() throws {
        Signals.block([SIGTERM, SIGINT])
        var configuration = MedicConfiguration()
        let environment = ProcessInfo.processInfo.environment
        let usesDemo = config == nil && repo.isEmpty
        if usesDemo { try DemoSetup.applyDefaults(to: &configuration) }
        if let config { try configuration.load(file: config) }
        try configuration.applyEnvironment(environment)
        if !listen.isEmpty { configuration.listen = listen }
        if !tlsListen.isEmpty { configuration.tlsListen = tlsListen }
        if let tlsCert { configuration.tlsCertificate = tlsCert }
        if let tlsKey { configuration.tlsKey = tlsKey }
        if let value = `static` { configuration.staticDirectory = value }
        if let store { configuration.storeURL = store }
        if let nodeId { configuration.nodeID = nodeId }
        if let dataDir { configuration.dataDirectory = dataDir }
        if !repo.isEmpty {
            guard let testCommand else { throw ValidationError("--repo needs --test-command") }
            configuration.repositories = repo.map { RepositoryConfig(path: $0, testCommand: testCommand, setupCommand: setupCommand) }
        }
        if !source.isEmpty { configuration.sources = try source.map(SourceConfig.parse(flag:)) }
        if let llm { configuration.llm = try MedicConfiguration.parseLLM(llm) }
        if let llmUrl { configuration.llmBaseURL = llmUrl }
        if let llmModel { configuration.llmModel = llmModel }
        if let maxAttempts { configuration.maxAttempts = maxAttempts }
        if let quorum { configuration.quorum = quorum }
        if let autoFix { configuration.autoFix = try MedicConfiguration.parseAutoFix(autoFix) }
        if let testTimeout { configuration.testTimeoutSeconds = testTimeout }
        if !allowOrigin.isEmpty { configuration.allowedOrigins = allowOrigin }
        if let logLevel { configuration.logLevel = logLevel }
        if !sandboxReadonlyPath.isEmpty { configuration.sandboxReadOnlyPaths = sandboxReadonlyPath }
        if let sandboxRetention { configuration.sandboxRetention = try MedicConfiguration.parseRetention(sandboxRetention) }
        if let sandboxDiskQuotaMb { configuration.sandboxDiskQuotaMB = sandboxDiskQuotaMb }
        if let deflate { configuration.deflate = try MedicConfiguration.parseOnOff(deflate, setting: "--deflate") }
        if usesDemo {
            try DemoSetup.prepareRepository(in: &configuration)
            DemoSetup.prepareMonitor(in: &configuration)
            let users = try DemoSetup.prepareUsersDatabase(in: configuration)
            // The demo's users database is the source `users` unless the flags or the config already name one.
            if !configuration.sources.contains(where: { $0.name == users.name }) {
                configuration.sources.append(SourceConfig(name: users.name, url: users.url, tables: users.tables, sensitiveColumns: users.sensitiveColumns))
            }
        }
        try configuration.validate()

        var logger = Logger(label: "medic")
        logger.logLevel = Logger.Level(rawValue: configuration.logLevel) ?? .info
        let loop = try EventLoop(logger: logger)
        let medic = try MedicServer(configuration: configuration, loop: loop, logger: logger)
        for listener in medic.listeners {
            logger.info("listening on \(listener.scheme)://\(listener.address) (WebSocket at /ws)")
        }
        logger.info("store: \(configuration.effectiveStoreURL); llm: \(configuration.llm); repositories: \(configuration.repositories.map(\.name))")
        if let token = try medic.bootstrapAdminIfNeeded(), let first = medic.listeners.first {
            let host = first.address.host == "0.0.0.0" ? "127.0.0.1" : first.address.host
            // Written unbuffered: a supervisor piping our stdout must see the URL at once.
            FileHandle.standardOutput.write(Data("Open \(first.scheme)://\(host):\(first.address.port)/#token=\(token)  (admin token; shown once)\n".utf8))
        } else if let first = medic.listeners.first {
            let host = first.address.host == "0.0.0.0" ? "127.0.0.1" : first.address.host
            let store = configuration.storeURL.map { " --store '\($0)'" } ?? " --data-dir '\(configuration.dataDirectory)'"
            logger.info("to sign in to the page: medic login\(store) --url \(first.scheme)://\(host):\(first.address.port)")
        }
        var load: Process?
        if usesDemo && !noDemo { DemoSetup.startDemoWhenAnAdminArrives(medic) { load = $0 } }
        let signals = try SignalSource(loop: loop, signals: [SIGTERM, SIGINT]) { signal in
            logger.info("signal \(signal): shutting down")
            medic.shutdown { loop.stop() }
        }
        loop.run()
        signals.close()
        if let load, load.isRunning { kill(load.processIdentifier, SIGKILL) }
        logger.info("medic stopped")
    }
}
