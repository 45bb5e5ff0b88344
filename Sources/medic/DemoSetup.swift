// DemoSetup: what `medic serve` with no arguments runs — the bundled example repository and conversation.
import EventLoop
import Foundation
import MedicHost
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

    /// On an empty store, proposes examples/demo-proposal.json and reports examples/demo-bug.json (the plan's
    /// own example: "wrong password" for correct passwords) as the bot "demo-bot" once the first admin page has
    /// signed in (a second after its `welcome`, once the page has subscribed), so whoever opens the printed
    /// link watches both runs live instead of arriving at their end. Runs once per process.
    static func submitDemoProposalWhenAnAdminArrives(_ medic: MedicServer) {
        guard let rows = try? medic.store.sync({ medic.store.proposals(status: nil, limit: 1, completion: $0) }), rows.isEmpty else { return }
        let logger = medic.app.loop.logger
        var work: [(message: ClientMessage, id: String, what: String)] = []
        for (file, type, id, what) in [("examples/demo-proposal.json", "propose", "demo-proposal", "demo proposal"), ("examples/demo-bug.json", "report_bug", "demo-bug", "demo bug")] {
            guard let data = FileManager.default.contents(atPath: file), case .object(let fields)? = try? JSONValue.parse(Array(data)),
                  case .success(let message) = ClientMessage.decode(
                      type: type, fields: fields, id: nil, limits: ProtocolLimits(), featureTypes: medic.app.features.passThroughTypes)
            else {
                logger.warning("\(file) is missing or invalid; no \(what)")
                continue
            }
            work.append((message, id, what))
        }
        guard !work.isEmpty else { return }
        let app = medic.app
        logger.info("the demo proposal and bug are filed when the first admin signs in to the page")
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
        }
    }
}
