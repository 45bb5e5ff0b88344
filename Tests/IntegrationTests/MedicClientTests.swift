// MedicClientTests: the client module (`medic watch` and the coming CLI commands) against a whole Medic —
// over ws and wss, a bad token, and a resume across a server restart with nothing lost or repeated.
import EventLoop
import Foundation
import MedicClient
import MedicHost
import Protocol
import TestSupport
import TLS
import Testing

/// Runs a TopicFollower on its own loop thread and collects what it reports.
final class FollowerRun: @unchecked Sendable {
    // @unchecked: the fields are written on the loop thread and read by the test under `lock`.
    private let lock = NSLock()
    private var _events: [Event] = []
    private var _fatal: (String, UInt16?)?
    private var _reconnects = 0
    let thread: LoopThread
    private let follower: LoopBound<TopicFollower>

    init(port: UInt16, secure: Bool = false, tls: TLSFiles? = nil, token: String, topic: String, since: Int64 = 0) throws {
        let box = Box()
        (thread, follower) = try LoopThread.start { loop in
            let context = try tls.map { try TLSContext.client(trustedCAPath: $0.certificate, verifyPeer: true) }
            let follower = TopicFollower(
                loop: loop, endpoint: ClientEndpoint(host: secure ? "localhost" : "127.0.0.1", port: port, secure: secure), tls: context,
                token: token, topic: Topic(topic)!, since: since)
            follower.onEvent = { box.run?.record(event: $0) }
            follower.onFatal = { message, code in box.run?.record(fatal: message, code) }
            follower.onReconnecting = { _, _ in box.run?.recordReconnect() }
            follower.start()
            return LoopBound(follower, loop: loop)
        }
        box.run = self
    }

    final class Box: @unchecked Sendable {
        // @unchecked: set once before any event can arrive (the follower's first connect is asynchronous).
        weak var run: FollowerRun?
    }

    func record(event: Event) { lock.withLock { _events.append(event) } }
    func record(fatal: String, _ code: UInt16?) { lock.withLock { _fatal = (fatal, code) } }
    func recordReconnect() { lock.withLock { _reconnects += 1 } }
    var events: [Event] { lock.withLock { _events } }
    var fatal: (String, UInt16?)? { lock.withLock { _fatal } }
    var reconnects: Int { lock.withLock { _reconnects } }

    func wait(_ what: String, seconds: Double = 20, until condition: () -> Bool) throws {
        let deadline = Date().addingTimeInterval(seconds)
        while !condition() {
            guard Date() < deadline else { throw TestClientError("timed out waiting for \(what)") }
            usleep(20_000)
        }
    }

    func stop() {
        let follower = self.follower
        thread.execute { _ in follower.value.stop() }
        thread.stop()
    }
}

struct TLSFiles: Sendable {
    var certificate: String
    var key: String
}

@Suite(.serialized) struct MedicClientTests {
    func comment(_ harness: MedicHarness, _ token: String, _ proposal: String, _ texts: [String]) throws {
        let client = try harness.session(token)
        for text in texts {
            let ack = try client.call(["type": "comment", "proposal": .string(proposal), "text": .string(text)])
            #expect(ack["type"]?.stringValue == "ack")
        }
    }

    func propose(_ harness: MedicHarness, _ token: String) throws -> String {
        let client = try harness.session(token)
        let ack = try client.call([
            "type": "propose", "title": "client test", "description": "d",
            "changes": .array([.object(["path": "a.txt", "action": "create", "content": "x\n"])]),
        ])
        return try #require(ack["proposal"]?.stringValue)
    }

    @Test func followsOverWSAndWSSAndStopsOnABadToken() throws {
        let pem = try TestCertificates.localhost()
        let files = TLSFiles(certificate: pem.certificatePath, key: pem.keyPath)
        let harness = try MedicHarness { configuration, directory in
            configuration.tlsListen = ["127.0.0.1:0"]
            configuration.tlsCertificate = files.certificate
            configuration.tlsKey = files.key
            configuration.repositories = [RepositoryConfig(name: "r", path: try makeRepository(["a": "a\n"], in: directory), testCommand: "true")]
        }
        defer { harness.stop() }
        let admin = try harness.token("admin", role: "admin")
        let proposal = try propose(harness, admin)
        try comment(harness, admin, proposal, ["one", "two"])
        let medic = harness.medic
        let tlsPort = harness.thread.sync { _ in medic.value.listeners.first { $0.scheme == "https" }!.address.port }

        for (port, secure) in [(harness.port, false), (tlsPort, true)] {
            let run = try FollowerRun(port: port, secure: secure, tls: secure ? files : nil, token: admin, topic: "proposal:\(proposal)")
            defer { run.stop() }
            try run.wait("the comments (secure: \(secure))") { run.events.filter { $0.kind == "comment" }.count == 2 }
            let seqs = run.events.compactMap(\.seq)
            #expect(seqs == Array(1...Int64(seqs.count)), "not dense from 1: \(seqs)")
        }

        let bad = try FollowerRun(port: harness.port, token: "mdc_wrong", topic: "proposals")
        defer { bad.stop() }
        try bad.wait("the fatal close") { bad.fatal != nil }
        #expect(bad.fatal?.1 == 4001)
        #expect(bad.reconnects == 0, "retried a bad token")
    }

    @Test func resumesAcrossARestartWithNothingLostOrRepeated() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("medic-client-\(UInt32.random(in: 0...UInt32.max))").path
        let configure: (inout MedicConfiguration, String) throws -> Void = { configuration, directory in
            configuration.repositories = [RepositoryConfig(name: "r", path: directory + "/repo", testCommand: "true")]
        }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        _ = try makeRepository(["a": "a\n"], in: directory)
        var harness = try MedicHarness(directory: directory, configure: configure)
        let admin = try harness.token("admin", role: "admin")
        let proposal = try propose(harness, admin)
        let port = harness.port
        let run = try FollowerRun(port: port, token: admin, topic: "proposal:\(proposal)")
        defer { run.stop() }
        try comment(harness, admin, proposal, (0..<5).map { "before \($0)" })
        try run.wait("the first comments") { run.events.filter { $0.kind == "comment" }.count == 5 }
        harness.stop()
        harness = try MedicHarness(directory: directory) { configuration, directory in
            try configure(&configuration, directory)
            configuration.listen = ["127.0.0.1:\(port)"]
        }
        defer { harness.stop() }
        try comment(harness, admin, proposal, (0..<5).map { "after \($0)" })
        try run.wait("the comments after the restart") { run.events.filter { $0.kind == "comment" }.count == 10 }
        #expect(run.reconnects >= 1)
        let seqs = run.events.compactMap(\.seq)
        #expect(seqs == Array(1...Int64(seqs.count)), "lost or repeated across the restart: \(seqs)")
    }
}

@Suite struct MetricsTests {
    @Test func metricsExposeTransportAndPipelineCountersWithoutAToken() throws {
        let harness = try MedicHarness { configuration, directory in
            configuration.repositories = [RepositoryConfig(name: "r", path: try makeRepository(["a": "a\n"], in: directory), testCommand: "true")]
        }
        defer { harness.stop() }
        let admin = try harness.token("admin", role: "admin")
        let client = try harness.session(admin)
        _ = try client.call([
            "type": "propose", "title": "m", "description": "d",
            "changes": .array([.object(["path": "b.txt", "action": "create", "content": "x\n"])]),
        ])
        let (head, body) = try TestClient(port: harness.port).get("/metrics")
        #expect(head.hasPrefix("HTTP/1.1 200"))
        let text = String(decoding: body, as: UTF8.self)
        #expect(text.contains("\nmedic_pipeline_proposals 1\n"), "\(text)")
        #expect(text.contains("# TYPE medic_sessions_opened_total counter\nmedic_sessions_opened_total 1\n"))
        #expect(!text.contains("admin"), "a principal's name in /metrics")
    }
}

@Suite struct MetaTests {
    /// The page reads what a status allows from the server instead of copying status lists.
    @Test func metaListsEveryStatusWithItsPredicates() throws {
        let harness = try MedicHarness { configuration, directory in
            configuration.quorum = 2
            configuration.repositories = [RepositoryConfig(name: "r", path: try makeRepository(["a": "a\n"], in: directory), testCommand: "true")]
        }
        defer { harness.stop() }
        let viewer = try harness.token("v", role: "viewer")
        let (head, body) = try TestClient(port: harness.port).get("/api/v1/meta", headers: ["Authorization: Bearer \(viewer)"])
        #expect(head.hasPrefix("HTTP/1.1 200"))
        let meta = try JSONValue.parse(body)
        #expect(meta["quorum"]?.intValue == 2)
        let statuses = try #require(meta["statuses"]?.objectValue)
        #expect(statuses.members.map(\.key) == ProposalStatus.allCases.map(\.rawValue))
        #expect(statuses["awaiting_review"]?["reviewable"] == .bool(true))
        #expect(statuses["unfixable"]?["rejectable"] == .bool(true) && statuses["unfixable"]?["reviewable"] == .bool(false))
        #expect(statuses["applying"]?["withdrawable"] == .bool(false) && statuses["testing"]?["busy"] == .bool(true))
        #expect(statuses["applied"]?["rollbackable"] == .bool(true))
        // The browser suite's fake server answers with Tests/browser/meta.json: it must be Medic's own answer.
        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../browser/meta.json")
        let served = try JSONValue.parse(Array(try Data(contentsOf: fixture)))
        #expect(served["statuses"] == meta["statuses"], "Tests/browser/meta.json is out of date: copy GET /api/v1/meta's statuses")
        let (unauthenticated, _) = try TestClient(port: harness.port).get("/api/v1/meta")
        #expect(unauthenticated.hasPrefix("HTTP/1.1 401"))
    }
}
