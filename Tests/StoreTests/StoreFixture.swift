// StoreFixture: fresh databases for the contract suite (a temp SQLite file, or a new Postgres database).
import Foundation
import Logging
import Testing

@testable import Store

/// The backends the contract suite runs on.
enum BackendKind: String, Sendable, CustomTestStringConvertible {
    case sqlite
    case postgres

    var testDescription: String { rawValue }

    static let environment = ProcessInfo.processInfo.environment

    /// The Postgres server from `scripts/postgres.sh start`, if any.
    static var postgresURL: String? { environment["MEDIC_TEST_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 } }

    /// SQLite always; Postgres when a server is configured, and also under CI (where a missing server must
    /// fail the suite rather than skip it silently).
    static var all: [BackendKind] {
        postgresURL != nil || environment["CI"] != nil ? [.sqlite, .postgres] : [.sqlite]
    }
}

/// Test-side failure with a clear message.
struct FixtureError: Error, CustomStringConvertible {
    var description: String
}

/// One fresh database and a way to (re)open Stores on it.
final class StoreFixture: @unchecked Sendable {
    let kind: BackendKind
    let url: String
    /// Distinct per fixture, so tests running in parallel can find (and kill) only their own connections.
    let applicationName: String
    private let tempDir: URL?

    init(_ kind: BackendKind) throws {
        self.kind = kind
        let unique = UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        applicationName = "medic-test-\(unique.prefix(12))"
        switch kind {
        case .sqlite:
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("medic-store-\(unique)")
            tempDir = dir
            // A nested path: open must create the data directory.
            url = "sqlite:" + dir.appendingPathComponent("data/medic.sqlite3").path
        case .postgres:
            tempDir = nil
            guard let base = BackendKind.postgresURL else {
                throw FixtureError(
                    description: "MEDIC_TEST_POSTGRES_URL is not set but CI is: the Postgres half of the store "
                        + "contract cannot be skipped in CI. Start a server with `eval \"$(scripts/postgres.sh start)\"`.")
            }
            guard var parts = URLComponents(string: base) else {
                throw FixtureError(description: "MEDIC_TEST_POSTGRES_URL is not a URL: \(base)")
            }
            // A database of its own (Store.open creates it), so parallel tests never see each other's rows.
            parts.path = "/medic_test_\(unique.prefix(16))"
            url = parts.string!
        }
    }

    deinit {
        if let tempDir { try? FileManager.default.removeItem(at: tempDir) }
    }

    /// The SQLite file path (SQLite fixtures only).
    var sqlitePath: String { String(url.dropFirst("sqlite:".count)) }

    func options() -> Store.Options {
        var o = Store.Options()
        o.postgresApplicationName = applicationName
        o.sqliteBusyTimeoutMs = 100
        return o
    }

    func open(_ options: Store.Options? = nil) throws -> Store {
        var logger = Logger(label: "store-test")
        logger.logLevel = .error
        return try Store.open(url: url, logger: logger, options: options ?? self.options())
    }

    /// A direct connection of the test's own (Postgres fixtures only), for pg_terminate_backend and the like.
    func adminConnection() throws -> PostgresConnection {
        guard let base = BackendKind.postgresURL else { throw FixtureError(description: "no Postgres") }
        return try PostgresConnection(url: base, options: PostgresOptions(applicationName: "medic-test-admin"))
    }

    /// Terminates every server backend of this fixture's Stores and waits until those processes are gone.
    /// Returns how many were terminated. Uses no #expect: it also runs on helper threads.
    @discardableResult
    func killBackends() throws -> Int {
        let admin = try adminConnection()
        defer { admin.close() }
        let pids = try admin.query(
            "SELECT pid FROM pg_stat_activity WHERE application_name LIKE $1 AND pg_terminate_backend(pid)",
            [.text(applicationName + "%")]
        ).map { $0[0].text }
        let list = "{" + pids.joined(separator: ",") + "}"
        try waitUntil("terminated backends \(list) exit") {
            (try admin.query("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1::int[])", [.text(list)])
                .first?.first?.int) == 0
        }
        return pids.count
    }
}

/// Polls `condition` every 10 ms until it holds; fails after `seconds` (a bound, not a timing assertion).
func waitUntil(_ what: String, seconds: Double = 20, _ condition: () throws -> Bool) throws {
    let deadline = Date().addingTimeInterval(seconds)
    while try !condition() {
        if Date() > deadline { throw FixtureError(description: "timed out waiting until \(what)") }
        usleep(10_000)
    }
}

/// Writes, retrying while the store reports store_unavailable (bounded). Only safe for writes carrying a
/// command id, which makes a retry after an unknown outcome idempotent.
func writeRetrying(_ store: Store, _ w: StoreWrite, seconds: Double = 30) throws -> (WriteOutcome, failures: Int) {
    precondition(w.command != nil, "retrying a write without a command id could duplicate it")
    let deadline = Date().addingTimeInterval(seconds)
    var failures = 0
    while true {
        let result: Result<WriteOutcome, StoreError> = Result { () throws(StoreError) in
            try store.sync { store.write(w, completion: $0) }
        }
        switch result {
        case .success(let outcome): return (outcome, failures)
        case .failure(let error):
            if error.code != StoreError.storeUnavailable || Date() > deadline { throw error }
            failures += 1
            usleep(20_000)
        }
    }
}

/// Shorthands for building writes.
func event(_ topic: String, _ kind: String = "test", data: String = "{}", ts: Int64 = 1) -> NewEvent {
    NewEvent(topic: topic, kind: kind, data: data, ts: ts)
}

func proposalRow(_ id: String, status: String = "proposed", createdAt: Int64 = 1, title: String = "t") -> ProposalRow {
    ProposalRow(
        id: id, title: title, description: "d", repo: "r", status: status, currentRevision: 1, author: "alice",
        createdAt: createdAt, updatedAt: createdAt, attempts: 0, doc: "{}")
}

func workflowRow(
    _ id: String, kind: String = "bug", status: String = "analyzing", createdAt: Int64 = 1, title: String = "t", doc: String = "{}"
) -> WorkflowRow {
    WorkflowRow(
        kind: kind, id: id, repo: "r", title: title, status: status, author: "alice", createdAt: createdAt,
        updatedAt: createdAt, doc: doc)
}

extension WriteOutcome {
    /// The committed events (empty for a duplicate).
    var events: [StoredEvent] {
        if case .committed(let e) = self { return e }
        return []
    }

    var isDuplicate: Bool {
        if case .duplicateCommand = self { return true }
        return false
    }
}

/// Runs `body(i)` on `count` threads at once and waits for all.
func concurrently(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    let group = DispatchGroup()
    for i in 0..<count {
        group.enter()
        Thread {
            body(i)
            group.leave()
        }.start()
    }
    group.wait()
}

/// A lock-protected value for collecting results from several threads.
final class Locked<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: T
    init(_ value: T) { self.value = value }
    func withLock<R>(_ body: (inout T) -> R) -> R {
        lock.lock()
        defer { lock.unlock() }
        return body(&value)
    }
    var get: T { withLock { $0 } }
}
