// medic: the command line — serve, token, watch, search, bug.
import ArgumentParser
import EventLoop
import Foundation
import Glibc
import Logging
import MedicHost
import Protocol
import Store

/// Options shared by commands that open the store directly.
struct StoreOptions: ParsableArguments {
    @Option(help: "Store URL: sqlite:PATH or postgres://… (default: sqlite:<data-dir>/medic.sqlite).")
    var store: String?

    @Option(help: "Data directory (default .medic).")
    var dataDir: String = ".medic"

    func open(logger: Logger) throws -> Store {
        var configuration = MedicConfiguration()
        configuration.dataDirectory = dataDir
        configuration.storeURL = store ?? ProcessInfo.processInfo.environment["MEDIC_STORE"]
        try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true)
        return try Store.open(url: configuration.effectiveStoreURL, logger: logger)
    }
}

@main
struct Medic: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "medic",
        abstract: "Medic: a self-healing code pipeline server.",
        subcommands: [Serve.self, TokenCommand.self, Login.self, Watch.self, Index.self, Search.self, Bug.self, Ask.self],
        defaultSubcommand: Serve.self)
}

/// `medic login`: a fresh sign-in link for the page, for when the admin token printed at first start is gone.
struct Login: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a single-use sign-in link (valid a few minutes) that the page exchanges for a session.")
    @Option(help: "Principal to sign in as (default: the first live admin).") var name: String?
    @Option(help: "The server's address as the browser reaches it.") var url: String = "http://127.0.0.1:8080"
    @Option(help: "Minutes the link stays valid (1–60).") var validMinutes: Int = 10
    @OptionGroup var storeOptions: StoreOptions

    func run() throws {
        guard (1...60).contains(validMinutes) else { throw ValidationError("--valid-minutes must be 1…60") }
        let store = try storeOptions.open(logger: quietLogger("medic.login"))
        defer { store.close() }
        let principals = try store.sync { store.principals(completion: $0) }.filter { !$0.revoked }
        guard let principal = name ?? principals.first(where: { $0.role == "admin" })?.name else {
            throw ValidationError("no live admin in this store; create one with `medic token create --name NAME --role admin`")
        }
        let code = Tokens.generate()
        let expiresAt = Int64(Date().timeIntervalSince1970 * 1000) + Int64(validMinutes) * 60_000
        guard try store.sync({ store.createLoginCode(principal: principal, code: code, expiresAt: expiresAt, completion: $0) }) else {
            throw ValidationError("no active principal named '\(principal)'")
        }
        let base = url.hasSuffix("/") ? String(url.dropLast()) : url
        print("Sign in as '\(principal)' (single use, valid \(validMinutes) minutes):")
        print("\(base)/#login=\(code)")
    }
}

func quietLogger(_ label: String) -> Logger {
    var logger = Logger(label: label)
    logger.logLevel = .warning
    return logger
}

struct TokenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token", abstract: "Create, list and revoke access tokens; change a principal's role.",
        subcommands: [Create.self, List.self, Revoke.self, SetRole.self])

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a principal; the token is the last line of output.")
        @Option(help: "Principal name.") var name: String
        @Option(help: "admin, viewer, bot or ingest.") var role: String
        @OptionGroup var storeOptions: StoreOptions

        func run() throws {
            guard Role(rawValue: role) != nil else { throw ValidationError("--role must be admin, viewer, bot or ingest") }
            // Names Medic uses for itself (e.g. `medic:bugs`, the author of bug-fix proposals) have other characters.
            guard (1...64).contains(name.utf8.count), name.utf8.allSatisfy({ b in
                (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x2D || b == 0x2E || b == 0x5F
            }) else { throw ValidationError("--name must be 1–64 characters of A–Z, a–z, 0–9, '.', '_' or '-'") }
            let store = try storeOptions.open(logger: quietLogger("medic.token"))
            defer { store.close() }
            let token = Tokens.generate()
            _ = try store.sync { store.createPrincipal(name: name, role: role, token: token, completion: $0) }
            print("created \(role) '\(name)'; only a hash is stored, so keep this token:")
            print(token)
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List principals.")
        @OptionGroup var storeOptions: StoreOptions
        func run() throws {
            let store = try storeOptions.open(logger: quietLogger("medic.token"))
            defer { store.close() }
            for row in try store.sync({ store.principals(completion: $0) }) {
                print("\(row.name)\t\(row.role)\t\(row.revoked ? "revoked" : "active")")
            }
        }
    }

    /// A running server closes the principal's open sessions (close 4003) within a second; they reconnect
    /// with the new role.
    struct SetRole: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "role", abstract: "Change a live principal's role.")
        @Argument(help: "Principal name.") var name: String
        @Argument(help: "admin, viewer, bot or ingest.") var role: String
        @OptionGroup var storeOptions: StoreOptions
        func run() throws {
            guard Role(rawValue: role) != nil else { throw ValidationError("role must be admin, viewer, bot or ingest") }
            let store = try storeOptions.open(logger: quietLogger("medic.token"))
            defer { store.close() }
            guard try store.sync({ store.setPrincipalRole(name: name, role: role, completion: $0) }) else {
                throw ValidationError("no active principal named '\(name)'")
            }
            print("'\(name)' is now \(role)")
        }
    }

    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a principal's token.")
        @Argument(help: "Principal name.") var name: String
        @OptionGroup var storeOptions: StoreOptions
        func run() throws {
            let store = try storeOptions.open(logger: quietLogger("medic.token"))
            defer { store.close() }
            guard try store.sync({ store.revokePrincipal(name: name, completion: $0) }) else {
                throw ValidationError("no active principal named '\(name)'")
            }
            print("revoked '\(name)'")
        }
    }
}
