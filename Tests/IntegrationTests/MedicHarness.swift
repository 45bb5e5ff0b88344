// MedicHarness: a whole Medic (store, app, pipeline, listener) on its own loop thread, for end-to-end tests.
import EventLoop
import Foundation
import Logging
import MedicHost
import Protocol
import Server
import Store
import TestSupport
import Testing

/// A temporary git repository for a test: `files` committed on `main`.
func makeRepository(_ files: [String: String], in directory: String) throws -> String {
    let path = (directory as NSString).appendingPathComponent("repo")
    for (name, content) in files {
        let full = (path as NSString).appendingPathComponent(name)
        try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try content.write(toFile: full, atomically: true, encoding: .utf8)
    }
    for arguments in [["init", "-q", "-b", "main"], ["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "base"]] {
        let git = Process()
        git.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        git.arguments = ["git", "-C", path] + arguments
        try git.run()
        guard waitForExit(git) == 0 else { throw TestClientError("git \(arguments) failed") }
    }
    return path
}

/// Runs `git` in `path` and returns its stdout.
func git(_ path: String, _ arguments: String...) throws -> String {
    let process = Process()
    let pipe = Pipe()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["git", "-C", path] + arguments
    process.standardOutput = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    _ = waitForExit(process)
    return String(decoding: data, as: UTF8.self)
}

/// One running Medic.
final class MedicHarness {
    let directory: String
    let thread: LoopThread
    let port: UInt16
    let store: Store
    let medic: LoopBound<MedicServer>

    /// Starts Medic with `configure` applied to a configuration whose data lives in a fresh temp directory.
    init(
        directory existing: String? = nil, extraFeatures: (@Sendable (App) -> [any Feature])? = nil,
        configure: (inout MedicConfiguration, String) throws -> Void
    ) throws {
        let directory = existing ?? FileManager.default.temporaryDirectory
            .appendingPathComponent("medic-e2e-\(UInt32.random(in: 0...UInt32.max))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        self.directory = directory
        var configuration = MedicConfiguration()
        configuration.listen = ["127.0.0.1:0"]
        configuration.dataDirectory = (directory as NSString).appendingPathComponent("data")
        configuration.staticDirectory = (directory as NSString).appendingPathComponent("static")
        configuration.testTimeoutSeconds = 30
        try configure(&configuration, directory)
        let frozen = configuration
        let (thread, started) = try LoopThread.start { loop in
            var logger = Logger(label: "medic.test")
            logger.logLevel = .warning
            let medic = try MedicServer(configuration: frozen, loop: loop, logger: logger) { app in extraFeatures?(app) ?? [] }
            return (medic.listeners[0].address.port, LoopBound(medic, loop: loop), UncheckedStore(store: medic.store))
        }
        self.thread = thread
        self.port = started.0
        self.medic = started.1
        self.store = started.2.store
    }

    /// Creates a principal and returns its token.
    func token(_ name: String, role: String) throws -> String {
        let token = "tok-\(name)-\(UInt64.random(in: 0...UInt64.max))"
        _ = try store.sync { store.createPrincipal(name: name, role: role, token: token, completion: $0) }
        return token
    }

    /// A connected, authenticated session (header auth), welcome already read.
    func session(_ token: String) throws -> MedicClient {
        let client = MedicClient(try TestClient(port: port, timeoutSeconds: 20))
        try client.raw.upgrade(path: "/ws", headers: ["Authorization: Bearer \(token)"], subprotocols: ["medic.v1"])
        let welcome = try client.next()
        guard welcome["type"]?.stringValue == "welcome" else { throw TestClientError("expected welcome, got \(welcome.jsonString)") }
        return client
    }

    /// Graceful stop: sessions get 1001, the store closes.
    func stop() {
        let done = DispatchSemaphore(value: 0)
        let medic = self.medic
        thread.execute { _ in medic.value.shutdown { done.signal() } }
        _ = done.wait(timeout: .now() + 10)
        thread.stop()
    }
}

/// Carries the store (itself thread-safe) out of the loop thread's setup closure.
struct UncheckedStore: @unchecked Sendable {
    let store: Store
}

/// A medic.v1 client over `TestClient`: JSON in, JSON out, events collected by topic.
final class MedicClient {
    let raw: TestClient
    private var nextID = 0
    /// Command ids are unique across sessions: a repeated id from the same principal is (rightly) applied once.
    private let idPrefix = String(UInt32.random(in: 0...UInt32.max), radix: 36)

    init(_ raw: TestClient) {
        self.raw = raw
    }

    /// The next server message (any type).
    func next() throws -> JSONValue {
        let frame = try raw.readMessage()
        guard frame.opcode == 1 else {
            throw TestClientError(frame.opcode == 8 ? "closed with \(frame.closeCode.map(String.init) ?? "no code")" : "unexpected opcode \(frame.opcode)")
        }
        return try JSONValue.parse(frame.payload, limits: JSONParseLimits(maxBytes: 16 << 20))
    }

    /// Sends a command object (an id is added when absent) and returns the id.
    @discardableResult
    func send(_ object: JSONObject) throws -> String {
        var object = object
        let id: String
        if let existing = object["id"]?.stringValue {
            id = existing
        } else {
            nextID += 1
            id = "\(idPrefix)-\(nextID)"
            object["id"] = .string(id)
        }
        try raw.sendFrame(opcode: 1, payload: JSONValue.object(object).bytes)
        return id
    }

    /// Sends a command and waits for its ack or error, skipping other messages (they are returned in `skipped`).
    func call(_ object: JSONObject, skipped: inout [JSONValue]) throws -> JSONValue {
        let id = try send(object)
        while true {
            let message = try next()
            if message["id"]?.stringValue == id, let type = message["type"]?.stringValue, type == "ack" || type == "error" {
                return message
            }
            skipped.append(message)
        }
    }

    func call(_ object: JSONObject) throws -> JSONValue {
        var skipped: [JSONValue] = []
        return try call(object, skipped: &skipped)
    }

    /// Reads until `predicate` holds for an event, returning every message read (the last satisfies it).
    func until(_ limit: Int = 10_000, _ predicate: (JSONValue) -> Bool) throws -> [JSONValue] {
        var seen: [JSONValue] = []
        for _ in 0..<limit {
            let message = try next()
            seen.append(message)
            if predicate(message) { return seen }
        }
        throw TestClientError("condition not met within \(limit) messages")
    }

    /// Reads until the proposal reaches `status` (a status_changed event).
    func untilStatus(_ status: String) throws -> [JSONValue] {
        try until { $0["kind"]?.stringValue == "status_changed" && $0["data"]?["status"]?.stringValue == status }
    }
}
