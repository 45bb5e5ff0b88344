// StoreFailureTests: the database going away (killed backend, locked or full SQLite file) and coming back.
import Foundation
import Logging
import Testing

@testable import Store

@Suite("Store failures", .serialized)
struct StoreFailureTests {
    /// A write carrying a command id (so retrying it is idempotent) and one event whose data names it.
    static func commandWrite(_ id: String, topic: String) -> StoreWrite {
        StoreWrite(events: [event(topic, data: "\"\(id)\"")], command: CommandRecord(principal: "p", commandId: id, response: id))
    }

    @Test(
        "Postgres backend terminated: store_unavailable, then reconnect; nothing acknowledged lost, nothing duplicated",
        .enabled(if: BackendKind.all.contains(.postgres)))
    func postgresBackendKilled() throws {
        let f = try StoreFixture(.postgres)
        let store = try f.open()
        defer { store.close() }
        _ = try store.sync { store.write(Self.commandWrite("w0", topic: "k0"), completion: $0) }

        #expect(try f.killBackends() == 1)
        let error = #expect(throws: StoreError.self) {
            try store.sync { store.write(Self.commandWrite("w1", topic: "k0"), completion: $0) }
        }
        #expect(error?.code == StoreError.storeUnavailable)
        #expect(error?.message.contains("not committed") == true, "\(String(describing: error))")
        // Reads fail fast too while the worker backs off, rather than queueing.
        let (retried, _) = try writeRetrying(store, Self.commandWrite("w1", topic: "k0"))
        #expect(retried.events.map(\.seq) == [2])

        // Under load: writers retry on store_unavailable with the same command id while backends are killed.
        let writers = 4, perWriter = 60
        let kills = Locked(0)
        let problems = Locked<[String]>([])
        let unavailable = Locked(0)
        concurrently(writers + 1) { t in
            if t == writers {
                for _ in 0..<3 {
                    usleep(150_000)
                    do { kills.withLock { $0 += 1 }; try f.killBackends() } catch { problems.withLock { $0.append("kill: \(error)") } }
                }
                return
            }
            for i in 0..<perWriter {
                do {
                    let (_, failures) = try writeRetrying(store, Self.commandWrite("t\(t)-\(i)", topic: "k\(t % 2)"))
                    unavailable.withLock { $0 += failures }
                } catch {
                    problems.withLock { $0.append("t\(t)-\(i): \(error)") }
                }
            }
        }
        #expect(problems.get.isEmpty, "\(problems.get)")
        #expect(kills.get == 3)
        var expected: [String: Set<String>] = ["k0": ["\"w0\"", "\"w1\""], "k1": []]
        for t in 0..<writers { for i in 0..<perWriter { expected["k\(t % 2)", default: []].insert("\"t\(t)-\(i)\"") } }
        for topic in ["k0", "k1"] {
            // The last kill may land after the writers finished: the first read can meet the dead connection.
            var stored: [StoredEvent] = []
            for _ in 0..<300 {
                let result = Result { () throws(StoreError) in try store.sync { store.events(topic: topic, after: 0, limit: 10_000, completion: $0) } }
                if case .success(let events) = result { stored = events; break }
                usleep(50_000)
            }
            #expect(stored.map(\.seq) == Array(1...Int64(stored.count)), "gap or duplicate seq in \(topic)")
            #expect(stored.count == expected[topic]?.count, "an event was lost or duplicated in \(topic)")
            #expect(Set(stored.map(\.data)) == expected[topic])
        }
    }

    @Test(
        "Postgres connection lost at COMMIT: outcome unknown; a retry with the same command id applies exactly once",
        .enabled(if: BackendKind.all.contains(.postgres)))
    func postgresCommitOutcomeUnknown() throws {
        let f = try StoreFixture(.postgres)
        var options = f.options()
        let armed = Locked(false)
        options.beforeCommit = {
            if armed.withLock({ a in defer { a = false }; return a }) { _ = try? f.killBackends() }
        }
        let store = try f.open(options)
        defer { store.close() }
        _ = try store.sync { store.write(Self.commandWrite("u0", topic: "u"), completion: $0) }
        armed.withLock { $0 = true }
        let error = #expect(throws: StoreError.self) {
            try store.sync { store.write(Self.commandWrite("u1", topic: "u"), completion: $0) }
        }
        #expect(error?.code == StoreError.storeUnavailable)
        #expect(error?.message.contains("outcome unknown") == true, "\(String(describing: error))")
        #expect(armed.get == false, "the hook did not run")
        let (out, _) = try writeRetrying(store, Self.commandWrite("u1", topic: "u"))
        // Whether the first attempt committed or not, the event is stored exactly once.
        #expect(out.isDuplicate || out.events.map(\.seq) == [2])
        #expect(try store.sync { store.events(topic: "u", after: 0, limit: 10, completion: $0) }.map(\.data) == ["\"u0\"", "\"u1\""])
    }

    @Test("SQLite database locked by another connection: store_unavailable, then recovery once released")
    func sqliteLocked() throws {
        let f = try StoreFixture(.sqlite)
        let store = try f.open()  // busy timeout 100 ms
        defer { store.close() }
        _ = try store.sync { store.write(Self.commandWrite("l0", topic: "s"), completion: $0) }

        let locker = try SQLiteConnection(path: f.sqlitePath, options: SQLiteOptions(busyTimeoutMs: 1000))
        try locker.execute("BEGIN EXCLUSIVE")
        let error = #expect(throws: StoreError.self) {
            try store.sync { store.write(Self.commandWrite("l1", topic: "s"), completion: $0) }
        }
        #expect(error?.code == StoreError.storeUnavailable)
        #expect(error?.message.contains("locked") == true, "\(String(describing: error))")
        try locker.execute("COMMIT")
        locker.close()

        let (out, _) = try writeRetrying(store, Self.commandWrite("l1", topic: "s"))
        #expect(out.events.map(\.seq) == [2])  // the refused attempt left nothing behind
        #expect(try store.sync { store.events(topic: "s", after: 0, limit: 10, completion: $0) }.map(\.data) == ["\"l0\"", "\"l1\""])
    }

    @Test("SQLite disk full: store_unavailable for the write that does not fit, later writes succeed")
    func sqliteFull() throws {
        let f = try StoreFixture(.sqlite)
        var options = f.options()
        options.sqliteMaxPageCount = 128  // 512 KiB at SQLite's default 4 KiB page size: the schema, and room for small writes
        let store = try f.open(options)
        defer { store.close() }
        _ = try store.sync { store.write(Self.commandWrite("f0", topic: "s"), completion: $0) }
        let big = StoreWrite(events: [event("s", data: "\"" + String(repeating: "x", count: 1_000_000) + "\"")])
        let error = #expect(throws: StoreError.self) { try store.sync { store.write(big, completion: $0) } }
        #expect(error?.code == StoreError.storeUnavailable)
        #expect(error?.message.contains("full") == true, "\(String(describing: error))")
        let (out, _) = try writeRetrying(store, Self.commandWrite("f1", topic: "s"))
        #expect(out.events.map(\.seq) == [2])
    }

    @Test("Store.open on an unreachable Postgres fails with store_unavailable")
    func unreachablePostgres() throws {
        var options = Store.Options()
        options.postgresConnectTimeout = 2
        // Port 1 on loopback: nothing listens there, so the connection is refused at once.
        let error = #expect(throws: StoreError.self) {
            try Store.open(url: "postgres://nobody@127.0.0.1:1/none", logger: .init(label: "t"), options: options)
        }
        #expect(error?.code == StoreError.storeUnavailable)
    }
}
