// LiveProtocolTests: medic.v1 end to end over real sockets — roles, quorum, presence, replay, bad input, REST.
import Foundation
import Glibc
import MedicHost
import Protocol
import TestSupport
import Testing

/// A repository whose test passes when ok.txt exists; the scripted LLM answers every fix with ok.txt = "v2".
func startReviewableMedic(quorum: Int, helloTimeout: Int = 10) throws -> MedicHarness {
    try MedicHarness { configuration, directory in
        let repo = try makeRepository(["README": "base\n"], in: directory)
        let script = (directory as NSString).appendingPathComponent("script.json")
        try #"{"replies":[{"reply":{"unfixable":false,"explanation":"as requested","changes":[{"path":"ok.txt","action":"modify","content":"v2\n"}]}}]}"#
            .write(toFile: script, atomically: true, encoding: .utf8)
        configuration.repositories = [RepositoryConfig(name: "repo", path: repo, testCommand: "test -f ok.txt")]
        configuration.llm = .scripted(path: script)
        configuration.quorum = quorum
        configuration.helloTimeoutSeconds = helloTimeout
    }
}

let okChange: JSONValue = .array([.object(["path": "ok.txt", "action": "create", "content": "v1\n"])])

@Suite("medic.v1 over loopback", .serialized)
struct LiveProtocolTests {
    @Test func twoAdminsAndAViewerReviewWithQuorumTwo() throws {
        let medic = try startReviewableMedic(quorum: 2)
        defer { medic.stop() }
        let (alice, bob, carol, vera, robo) = (
            try medic.session(try medic.token("alice", role: "admin")), try medic.session(try medic.token("bob", role: "admin")),
            try medic.session(try medic.token("carol", role: "admin")), try medic.session(try medic.token("vera", role: "viewer")),
            try medic.session(try medic.token("robo", role: "bot")))

        // A bot's proposal: its tests pass, so it waits for review.
        let proposed = try robo.call(["type": "propose", "title": "add ok", "description": "d", "changes": okChange])
        #expect(proposed["type"]?.stringValue == "ack")
        let id = try #require(proposed["proposal"]?.stringValue)
        let topic = JSONValue.string("proposal:\(id)")
        for client in [alice, bob, vera] {
            #expect(try client.call(["type": "subscribe", "topic": topic, "since": 0])["type"]?.stringValue == "ack")
        }
        // Presence: the viewer, subscribing last, sees all three watchers.
        let presence = try vera.until { $0["type"]?.stringValue == "presence" && $0["members"]?.arrayValue?.count == 3 }.last!
        let watchers = Set(presence["members"]!.arrayValue!.compactMap { $0["principal"]?.stringValue })
        #expect(watchers == ["alice", "bob", "vera"])
        _ = try alice.untilStatus("awaiting_review")
        _ = try bob.untilStatus("awaiting_review")

        // The viewer and the bot may not review.
        #expect(try vera.call(["type": "approve", "proposal": .string(id), "revision": 1])["code"]?.stringValue == "forbidden")
        #expect(try robo.call(["type": "approve", "proposal": .string(id), "revision": 1])["code"]?.stringValue == "forbidden")

        // Alice approves; Bob sees it at once; quorum 2 is not reached.
        #expect(try alice.call(["type": "approve", "proposal": .string(id), "revision": 1])["type"]?.stringValue == "ack")
        let review = try bob.until { $0["kind"]?.stringValue == "review" }.last!
        #expect(review["data"]?["approvals"]?.arrayValue?.compactMap(\.stringValue) == ["alice"])
        #expect(try alice.call(["type": "approve", "proposal": .string(id), "revision": 1])["code"]?.stringValue == "already_reviewed")

        // Bob asks for changes: a fix attempt makes revision 2, which cancels Alice's approval.
        #expect(try bob.call(["type": "request_changes", "proposal": .string(id), "revision": 1, "comment": "make it v2"])["type"]?.stringValue == "ack")
        _ = try alice.until { $0["kind"]?.stringValue == "status_changed" && $0["data"]?["status"]?.stringValue == "awaiting_review" && $0["data"]?["revision"]?.intValue == 2 }
        #expect(try alice.call(["type": "approve", "proposal": .string(id), "revision": 1])["code"]?.stringValue == "stale_revision")
        #expect(try alice.call(["type": "approve", "proposal": .string(id), "revision": 2])["type"]?.stringValue == "ack")
        // Carol rejects: a veto, whatever the approvals.
        #expect(try carol.call(["type": "reject", "proposal": .string(id), "revision": 2, "comment": "no"])["type"]?.stringValue == "ack")
        _ = try bob.untilStatus("rejected")

        // Alice's own proposal: her approval never counts; Bob and Carol make the quorum and it is applied.
        let own = try alice.call(["type": "propose", "title": "alice's", "description": "d", "changes": okChange])
        let ownID = try #require(own["proposal"]?.stringValue)
        #expect(try alice.call(["type": "subscribe", "topic": .string("proposal:\(ownID)"), "since": 0])["type"]?.stringValue == "ack")
        _ = try alice.untilStatus("awaiting_review")
        #expect(try alice.call(["type": "approve", "proposal": .string(ownID), "revision": 1])["code"]?.stringValue == "forbidden")
        #expect(try bob.call(["type": "approve", "proposal": .string(ownID), "revision": 1])["type"]?.stringValue == "ack")
        #expect(try carol.call(["type": "approve", "proposal": .string(ownID), "revision": 1])["type"]?.stringValue == "ack")
        let applied = try alice.untilStatus("applied")
        let appliedEvent = try #require(applied.first { $0["kind"]?.stringValue == "applied" })
        #expect(Set(appliedEvent["data"]?["approvers"]?.arrayValue?.compactMap(\.stringValue) ?? []) == ["bob", "carol"])
    }

    @Test func repeatedCommandIDAppliesOnce() throws {
        let medic = try startReviewableMedic(quorum: 1)
        defer { medic.stop() }
        let alice = try medic.session(try medic.token("alice", role: "admin"))
        let id = try #require(try alice.call(["type": "propose", "title": "t", "description": "d", "changes": okChange])["proposal"]?.stringValue)
        let first = try alice.call(["type": "comment", "id": "same", "proposal": .string(id), "text": "hello"])
        let second = try alice.call(["type": "comment", "id": "same", "proposal": .string(id), "text": "hello"])
        #expect(first == second)
        let events = try alice.call(["type": "subscribe", "topic": .string("proposal:\(id)"), "since": 0])
        #expect(events["type"]?.stringValue == "ack")
        let head = try #require(events["head"]?.intValue)
        var comments = 0
        var seen: Int64 = 0
        while seen < head {
            let message = try alice.next()
            guard let seq = message["seq"]?.intValue else { continue }
            seen = seq
            if message["kind"]?.stringValue == "comment" { comments += 1 }
        }
        #expect(comments == 1)
    }

    @Test func botResumesWithNoGapAndNoDuplicate() throws {
        let medic = try startReviewableMedic(quorum: 1)
        defer { medic.stop() }
        let botToken = try medic.token("robo", role: "bot")
        let alice = try medic.session(try medic.token("alice", role: "admin"))
        let id = try #require(try alice.call(["type": "propose", "title": "t", "description": "d", "changes": okChange])["proposal"]?.stringValue)
        let topic = JSONValue.string("proposal:\(id)")
        var bot = try medic.session(botToken)
        #expect(try bot.call(["type": "subscribe", "topic": topic, "since": 0])["type"]?.stringValue == "ack")
        var seqs: [Int64] = []
        // Read a few events, then drop the connection mid-stream while comments keep coming.
        while seqs.count < 3 {
            if let seq = try bot.next()["seq"]?.intValue { seqs.append(seq) }
        }
        bot = try medic.session(botToken)  // the old socket is dropped without a close frame
        for n in 0..<30 { _ = try alice.call(["type": "comment", "proposal": .string(id), "text": .string("c\(n)")]) }
        let resumed = try bot.call(["type": "subscribe", "topic": topic, "since": .int(seqs.last!)])
        let head = try #require(resumed["head"]?.intValue)
        while seqs.last! < head {
            if let seq = try bot.next()["seq"]?.intValue { seqs.append(seq) }
        }
        #expect(seqs == Array(1...head))
    }

    @Test func replayRacingLivePublicationIsGapFree() throws {
        let medic = try startReviewableMedic(quorum: 1)
        defer { medic.stop() }
        let token = try medic.token("alice", role: "admin")
        let publisher = try medic.session(token)
        let id = try #require(try publisher.call(["type": "propose", "title": "t", "description": "d", "changes": okChange])["proposal"]?.stringValue)
        for n in 0..<300 { _ = try publisher.send(["type": "comment", "proposal": .string(id), "text": .string("before \(n)")]) }
        // Subscribe from 0 while 300 more comments are being published.
        let subscriber = try medic.session(token)
        let box = UncheckedClient(client: publisher)
        let writer = Thread {
            for n in 0..<300 { _ = try? box.client.send(["type": "comment", "proposal": .string(id), "text": .string("during \(n)")]) }
        }
        writer.start()
        #expect(try subscriber.call(["type": "subscribe", "topic": .string("proposal:\(id)"), "since": 0])["type"]?.stringValue == "ack")
        var seqs: [Int64] = []
        var comments = 0
        while comments < 600 {
            let message = try subscriber.next()
            guard let seq = message["seq"]?.intValue else { continue }
            seqs.append(seq)
            if message["kind"]?.stringValue == "comment" { comments += 1 }
        }
        #expect(seqs == Array(1...Int64(seqs.count)))
    }

    @Test func badInputGetsErrorFramesAndTheSessionStaysUsable() throws {
        let medic = try startReviewableMedic(quorum: 1)
        defer { medic.stop() }
        let alice = try medic.session(try medic.token("alice", role: "admin"))
        let cases: [([UInt8], String)] = [
            (Array("{not json".utf8), "bad_json"),
            (Array(#"{"type":"dance","id":"x"}"#.utf8), "unknown_type"),
            (Array(#"{"type":"subscribe","id":"x"}"#.utf8), "invalid_message"),
            (Array(#"{"type":"approve","id":"x","proposal":"p","revision":"one"}"#.utf8), "invalid_message"),
            (Array(#"[1,2,3]"#.utf8), "invalid_message"),
            ([UInt8](repeating: 0x20, count: 9 << 20), "too_large"),
        ]
        for (payload, code) in cases {
            try alice.raw.sendFrame(opcode: 1, payload: payload)
            let error = try alice.next()
            #expect(error["type"]?.stringValue == "error")
            #expect(error["code"]?.stringValue == code)
            #expect(try alice.call(["type": "stats"])["type"]?.stringValue == "ack")
        }
        let mistyped = try alice.call(["type": "approve", "proposal": "p", "revision": "one"])
        #expect(mistyped["message"]?.stringValue?.contains("revision") == true)
    }

    @Test func authenticationIsRequiredAndTimesOut() throws {
        let medic = try startReviewableMedic(quorum: 1, helloTimeout: 1)
        defer { medic.stop() }
        let token = try medic.token("alice", role: "admin")
        // hello with a good token.
        let good = MedicClient(try TestClient(port: medic.port))
        try good.raw.upgrade(path: "/ws", subprotocols: ["medic.v1"])
        #expect(try good.call(["type": "stats"])["code"]?.stringValue == "unauthenticated")
        try good.send(["type": "hello", "token": .string(token)])
        #expect(try good.next()["type"]?.stringValue == "welcome")
        // A bad token: error, then close 4001.
        let bad = MedicClient(try TestClient(port: medic.port))
        try bad.raw.upgrade(path: "/ws", subprotocols: ["medic.v1"])
        try bad.send(["type": "hello", "token": "nope"])
        #expect(try bad.next()["code"]?.stringValue == "unauthenticated")
        #expect(try bad.raw.readFrame().closeCode == 4001)
        // Silence: closed with 4001 after the hello timeout.
        let silent = try TestClient(port: medic.port)
        try silent.upgrade(path: "/ws", subprotocols: ["medic.v1"])
        #expect(try silent.readFrame().closeCode == 4001)
    }

    @Test func aThousandSubscribersReceiveABurstCompleteAndInOrder() throws {
        let medic = try startReviewableMedic(quorum: 1)
        defer { medic.stop() }
        let token = try medic.token("alice", role: "admin")
        let publisher = try medic.session(token)
        let id = try #require(try publisher.call(["type": "propose", "title": "t", "description": "d", "changes": okChange])["proposal"]?.stringValue)
        var subscribers: [MedicClient] = []
        for _ in 0..<1000 {
            let client = try medic.session(token)
            try client.send(["type": "subscribe", "topic": .string("proposal:\(id)")])  // live only
            subscribers.append(client)
        }
        for client in subscribers { _ = try client.until { $0["type"]?.stringValue == "ack" } }
        for n in 0..<100 { try publisher.send(["type": "comment", "proposal": .string(id), "text": .string("burst \(n)")]) }
        for client in subscribers {
            var texts: [String] = []
            while texts.count < 100 {
                let message = try client.next()
                if message["kind"]?.stringValue == "comment", let text = message["data"]?["text"]?.stringValue { texts.append(text) }
            }
            #expect(texts == (0..<100).map { "burst \($0)" })
        }
    }

    @Test func restAPIFollowsTheSameRules() throws {
        let medic = try startReviewableMedic(quorum: 1)
        defer { medic.stop() }
        let admin = try medic.token("alice", role: "admin")
        let viewer = try medic.token("vera", role: "viewer")
        let reviewer = try medic.token("bob", role: "admin")
        func request(_ method: String, _ path: String, token: String?, body: String? = nil, headers: [String] = []) throws -> (Int, JSONValue?) {
            let client = try TestClient(port: medic.port)
            var text = "\(method) \(path) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            if let token { text += "Authorization: Bearer \(token)\r\n" }
            for header in headers { text += header + "\r\n" }
            if let body { text += "Content-Length: \(body.utf8.count)\r\n\r\n\(body)" } else { text += "\r\n" }
            try client.write(Array(text.utf8))
            let (head, bytes) = try client.readHTTPResponse()
            let status = Int(head.split(separator: " ")[1])!
            return (status, try? JSONValue.parse(bytes))
        }
        #expect(try request("GET", "/api/v1/proposals", token: nil).0 == 401)
        #expect(try request("GET", "/api/v1/proposals", token: "wrong").0 == 401)
        let body = #"{"title":"rest","description":"d","changes":[{"path":"ok.txt","action":"create","content":"x"}]}"#
        #expect(try request("POST", "/api/v1/proposals", token: viewer, body: body).0 == 403)
        let (created, ack) = try request("POST", "/api/v1/proposals", token: admin, body: body, headers: ["Idempotency-Key: k1"])
        #expect(created == 201)
        let id = try #require(ack?["proposal"]?.stringValue)
        #expect(try request("POST", "/api/v1/proposals", token: admin, body: body, headers: ["Idempotency-Key: k1"]).1?["proposal"]?.stringValue == id)
        #expect(try request("POST", "/api/v1/proposals", token: admin, body: "{oops").0 == 400)
        // Wait for the review state through the events endpoint.
        var status = ""
        for _ in 0..<200 where status != "awaiting_review" {
            status = try request("GET", "/api/v1/proposals/\(id)", token: viewer).1?["status"]?.stringValue ?? ""
            usleep(50_000)
        }
        #expect(status == "awaiting_review")
        let (_, events) = try request("GET", "/api/v1/proposals/\(id)/events?since=2", token: viewer)
        #expect(events?["events"]?.arrayValue?.first?["seq"]?.intValue == 3)
        #expect(try request("POST", "/api/v1/proposals/\(id)/review", token: admin, body: #"{"verdict":"approve","revision":9}"#).0 == 409)
        #expect(try request("POST", "/api/v1/proposals/\(id)/review", token: viewer, body: #"{"verdict":"approve","revision":1}"#).0 == 403)
        // The author (alice) may not approve her own proposal; another admin may.
        #expect(try request("POST", "/api/v1/proposals/\(id)/review", token: admin, body: #"{"verdict":"approve","revision":1}"#).0 == 403)
        #expect(try request("POST", "/api/v1/proposals/\(id)/review", token: reviewer, body: #"{"verdict":"approve","revision":1}"#).0 == 200)
        let (_, autoFix) = try request("GET", "/api/v1/admin/proposals/auto-fix/status/\(id)", token: admin)
        #expect(autoFix?["needs_auto_fix"]?.boolValue == false)
        #expect(autoFix?["auto_fix_attempts"]?.intValue == 0)
        #expect(try request("GET", "/api/v1/proposals/nope", token: admin).0 == 404)
        let (_, detail) = try request("GET", "/api/v1/proposals/\(id)", token: admin)
        #expect(detail?["reviews"]?.arrayValue?.count == 1)
    }
}

/// Hands a client to the writer thread; the test thread does not use it meanwhile.
struct UncheckedClient: @unchecked Sendable {
    let client: MedicClient
}

/// The same front on PostgreSQL: state survives a restart and replay stays dense (skipped without a test
/// database unless CI is set, where its absence fails).
@Suite("medic.v1 on PostgreSQL", .serialized)
struct PostgresLiveTests {
    @Test func proposalsCommentsAndReplaySurviveARestartOnPostgres() throws {
        guard let base = ProcessInfo.processInfo.environment["MEDIC_TEST_POSTGRES_URL"] else {
            if ProcessInfo.processInfo.environment["CI"] != nil {
                Issue.record("MEDIC_TEST_POSTGRES_URL is not set: run through scripts/test.sh (scripts/postgres.sh start)")
            }
            return
        }
        // A database of its own (the store creates it on open).
        let url = String(base[..<base.lastIndex(of: "/")!]) + "/medic_e2e_\(UInt32.random(in: 0...UInt32.max))"
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("medic-pg-e2e-\(UInt32.random(in: 0...UInt32.max))").path
        let configure: (inout MedicConfiguration, String) throws -> Void = { configuration, directory in
            let repo = directory + "/repo"
            if !FileManager.default.fileExists(atPath: repo) { _ = try makeRepository(["README": "x\n"], in: directory) }
            configuration.repositories = [RepositoryConfig(name: "repo", path: repo, testCommand: "test -f ok.txt")]
            let script = directory + "/script.json"
            try #"{"replies":[]}"#.write(toFile: script, atomically: true, encoding: .utf8)
            configuration.llm = .scripted(path: script)
            configuration.storeURL = url
        }
        let first = try MedicHarness(directory: directory, configure: configure)
        let token = try first.token("alice", role: "admin")
        let session = try first.session(token)
        let id = try #require(try session.call(["type": "propose", "title": "pg", "description": "d", "changes": okChange])["proposal"]?.stringValue)
        for n in 0..<50 { _ = try session.call(["type": "comment", "proposal": .string(id), "text": .string("c\(n)")]) }
        first.stop()
        let second = try MedicHarness(directory: directory, configure: configure)
        defer { second.stop() }
        let again = try second.session(token)
        let ack = try again.call(["type": "subscribe", "topic": .string("proposal:\(id)"), "since": 0])
        let head = try #require(ack["head"]?.intValue)
        var seqs: [Int64] = []
        var comments: [String] = []
        while seqs.last ?? 0 < head {
            let message = try again.next()
            guard let seq = message["seq"]?.intValue else { continue }
            seqs.append(seq)
            if message["kind"]?.stringValue == "comment" { comments.append(message["data"]?["text"]?.stringValue ?? "") }
        }
        #expect(seqs == Array(1...head))
        #expect(comments == (0..<50).map { "c\($0)" })
    }
}
