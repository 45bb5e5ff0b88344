// DemoSetup: what `medic serve` with no arguments runs — the bundled example repository and conversation.
import EventLoop
import Foundation
import MedicHost
import Monitor
import Logging
import Protocol
import Store

enum DemoSetup {
    /// Points the configuration at the bundled demo (run from the Medic checkout).
    static func applyDefaults(to configuration: inout MedicConfiguration) throws {
        let fm = FileManager.default
        guard fm.fileExists(atPath: "examples/demo-repo") else {
            throw ConfigurationError("the demo needs the Medic checkout as the working directory (examples/demo-repo); or pass --repo/--config")
        }
        configuration.staticDirectory = "web-static"
        configuration.llm = ProcessInfo.processInfo.environment["ANTHROPIC_API_KEY"].map { $0.isEmpty } == false
            ? .anthropic : .scripted(path: "examples/demo-conversation.json")
    }

    /// Copies the example repository into the data directory as a git repository of its own, so approving
    /// the demo commits there and never in the Medic checkout.
    static func prepareRepository(in configuration: inout MedicConfiguration) throws {
        let fm = FileManager.default
        let target = (configuration.dataDirectory as NSString).appendingPathComponent("demo-repo")
        if !fm.fileExists(atPath: target) {
            try fm.createDirectory(atPath: configuration.dataDirectory, withIntermediateDirectories: true)
            try fm.copyItem(atPath: "examples/demo-repo", toPath: target)
            for arguments in [["init", "-q", "-b", "main"], ["add", "-A"],
                              ["-c", "user.name=Medic Demo", "-c", "user.email=demo@medic.invalid", "commit", "-q", "-m", "demo repository"]] {
                let git = Process()
                git.executableURL = URL(fileURLWithPath: "/usr/bin/env")
                git.arguments = ["git", "-C", target] + arguments
                try git.run()
                git.waitUntilExit()
                guard git.terminationStatus == 0 else { throw ConfigurationError("git \(arguments.joined(separator: " ")) failed in \(target)") }
            }
        }
        let absolute = URL(fileURLWithPath: target).standardizedFileURL.path
        configuration.repositories = [
            RepositoryConfig(name: "demo-repo", path: absolute, testCommand: "python3 -m unittest discover -s tests -v"),
        ]
    }

    /// The monitor demo (issue 15, "Demo"): unless the config already tails files, the monitor follows
    /// `<data-dir>/demo-app.log`, where `examples/demo-load.py` writes the demo app's sign-ins, with short
    /// buckets so the loop — spike, incident, bug, approaches, approval, healed — takes a minute, not an hour.
    static func prepareMonitor(in configuration: inout MedicConfiguration) {
        guard configuration.monitor.files.isEmpty else { return }
        let log = URL(fileURLWithPath: configuration.dataDirectory).appendingPathComponent("demo-app.log").standardizedFileURL.path
        configuration.monitor.files = [MonitorFile(path: log, service: "demo-app", format: .plain)]
        configuration.monitor.bucketSeconds = 5
        configuration.monitor.detection.warmupBuckets = 3
        configuration.monitor.detection.newFingerprintMinCount = 5
        configuration.monitor.detection.spikeMinCount = 5
        configuration.monitor.healing.healWindowMs = 20_000
        configuration.monitor.healing.graceMs = 5_000
        configuration.monitor.policy.critical.keywords = ["password"]
    }

    /// The demo app's traffic: `python3 examples/demo-load.py` signs the demo users in against the demo
    /// repository's `app.auth` and logs each attempt to the file the monitor tails. Bounded to an hour; it also
    /// stops when Medic does (it watches its parent).
    static func startLoad(_ configuration: MedicConfiguration, logger: Logger) -> Process? {
        guard let repo = configuration.repositories.first(where: { $0.name == "demo-repo" }), let log = configuration.monitor.files.first?.path,
              FileManager.default.fileExists(atPath: "examples/demo-load.py")
        else { return nil }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "examples/demo-load.py", "--repo", repo.path, "--log", log, "--duration", "3600"]
        do {
            try process.run()
            logger.info("demo load started (pid \(process.processIdentifier)): the demo app's sign-ins go to \(log)")
            return process
        } catch {
            logger.warning("could not start examples/demo-load.py: \(error)")
            return nil
        }
    }

    /// The Ask demo's application database (issue 14, "Demo"): creates `<data-dir>/demo-users.sqlite` — table
    /// `users`, 50,000 rows from a fixed seed (DemoUsers) — unless it is already there, and returns the source
    /// the demo configures for it: `users` at `sqlite:<absolute path>`, only its table `users`, with email and
    /// wallet_address sensitive (as config/medic.example.json's source).
    @discardableResult
    static func prepareUsersDatabase(in configuration: MedicConfiguration) throws -> (name: String, url: String, tables: [String], sensitiveColumns: [String]) {
        let path = DemoUsers.path(for: configuration.dataDirectory)
        let logger = Logger(label: "medic.demo")
        if FileManager.default.fileExists(atPath: path) {
            logger.info("demo users database: \(path) (already there)")
        } else {
            let made = try createDemoUsers(path: path)
            logger.info("demo users database: \(path) created, \(made.rows) users in \(made.milliseconds) ms")
        }
        return demoUsersSource(for: configuration.dataDirectory)
    }

    /// The `users` source of the demo for a data directory (what `prepareUsersDatabase` returns).
    static func demoUsersSource(for dataDirectory: String) -> (name: String, url: String, tables: [String], sensitiveColumns: [String]) {
        let absolute = URL(fileURLWithPath: DemoUsers.path(for: dataDirectory)).standardizedFileURL.path
        return (DemoUsers.sourceName, "sqlite:" + absolute, ["users"], DemoUsers.sensitiveColumns)
    }

    /// When the first admin page has signed in (a second after its `welcome`, once the page has subscribed):
    /// on an empty store, proposes examples/demo-proposal.json as the bot "demo-bot"; and a few seconds later
    /// starts the demo app's load (`startLoad`), whose 'wrong password' errors the monitor turns into an
    /// incident and a bug report (the plan's own example) — so whoever opens the printed link watches the runs
    /// live instead of arriving at their end. Runs once per process; `loadStarted` receives the load process.
    static func startDemoWhenAnAdminArrives(_ medic: MedicServer, loadStarted: @escaping (Process) -> Void) {
        let logger = medic.app.loop.logger
        var work: [(message: ClientMessage, id: String, what: String)] = []
        // The demo's bug is not reported by hand: the monitor files it from the load's errors (examples/demo-bug.json
        // stays as an example for `medic bug report`).
        if let rows = try? medic.store.sync({ medic.store.proposals(status: nil, limit: 1, completion: $0) }), rows.isEmpty {
            for (file, type, id, what) in [("examples/demo-proposal.json", "propose", "demo-proposal", "demo proposal")] {
                if let data = FileManager.default.contents(atPath: file), case .object(let fields)? = try? JSONValue.parse(Array(data)),
                   case .success(let message) = ClientMessage.decode(
                       type: type, fields: fields, id: nil, limits: ProtocolLimits(), featureTypes: medic.app.features.passThroughTypes)
                {
                    work.append((message, id, what))
                } else {
                    logger.warning("\(file) is missing or invalid; no \(what)")
                }
            }
        }
        let app = medic.app
        let configuration = medic.configuration
        logger.info("the demo starts when the first admin signs in to the page")
        app.onSessionAuthenticated = { [unowned app] principal in
            guard principal.role == .admin else { return }
            app.onSessionAuthenticated = nil
            for (i, item) in work.enumerated() {
                app.loop.schedule(afterNanoseconds: UInt64(1 + 2 * i) * 1_000_000_000) {
                    app.execute(item.message, commandID: item.id, principal: Principal(name: "demo-bot", role: .bot)) { result in
                        switch result {
                        case .success(let ack): app.loop.logger.info("\(item.what) submitted: \(JSONValue.object(ack).jsonString)")
                        case .failure(let error): app.loop.logger.warning("\(item.what) refused: \(error)")
                        }
                    }
                }
            }
            app.loop.schedule(afterNanoseconds: 3_000_000_000) {
                if let process = startLoad(configuration, logger: app.loop.logger) { loadStarted(process) }
            }
        }
    }
}
