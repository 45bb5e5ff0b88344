// LiveSchemaTests: demo-like runs against a real Medic; every server message received is checked against protocol/schema.
import Foundation
import MedicHost
import Protocol
import TestSupport
import Testing

/// The repository's `protocol/` folder, found from this file's path.
private let wireProtocolDirectory = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("protocol")

/// protocol/schema loaded once, and the rules that pick the schemas of one server message.
final class WireSchemas {
    private var cache: [String: JSONValue?] = [:]

    /// `schema/<name>.json`, or nil when there is no such file.
    func schema(_ name: String) -> JSONValue? {
        if let cached = cache[name] { return cached }
        let url = wireProtocolDirectory.appendingPathComponent("schema/\(name).json")
        let loaded = (try? Data(contentsOf: url)).flatMap { try? JSONValue.parse([UInt8]($0)) }
        cache[name] = loaded
        return loaded
    }

    /// Violations of one server message: its envelope (`server.<type>`), an ack's fields (`ack.<command>`,
    /// `command` being the type of the command it answers) and an event's data (`event.<kind>`).
    func violations(_ message: JSONValue, answering command: String?) -> [String] {
        guard let type = message["type"]?.stringValue, ServerMessage.types.contains(type), let envelope = schema("server.\(type)") else {
            return ["not a server message type: \(message.jsonString)"]
        }
        var problems = SchemaValidator.validate(message, against: envelope)
        switch type {
        case "ack":
            guard let command, let ack = schema("ack.\(command)") else {
                problems.append("ack of unknown command \(command ?? "(no id)")")
                break
            }
            problems += SchemaValidator.validate(message, against: ack)
        case "event":
            let kind = message["kind"]?.stringValue ?? "?"
            guard let data = schema("event.\(kind)") else {
                problems.append("no schema for event kind \(kind)")
                break
            }
            problems += SchemaValidator.validate(message["data"] ?? .null, against: data, at: "$.data")
            if (message["seq"] == nil) != (kind == "fix_delta") { problems.append("seq must be present iff the kind is durable") }
        default: break
        }
        return problems.map { "\(type)\(message["kind"]?.stringValue.map { " \($0)" } ?? ""): \($0)" }
    }
}

/// Every server message a test received, and the command type behind each id it sent.
final class WireLog {
    private(set) var received: [(client: String, message: JSONValue)] = []
    private var commands: [String: String] = [:]

    func sent(_ client: String, id: String, type: String) { commands["\(client)/\(id)"] = type }
    func received(_ client: String, _ message: JSONValue) { received.append((client, message)) }
    func command(_ client: String, id: String?) -> String? { id.flatMap { commands["\(client)/\($0)"] } }

    /// Every violation of every message received, with the client that received it.
    /// The last `count` messages, for a failure report.
    func tail(_ count: Int) -> String {
        received.suffix(count).map { "[\($0.client)] \($0.message.jsonString.prefix(300))" }.joined(separator: "\n")
    }

    func violations(_ schemas: WireSchemas) -> [String] {
        received.flatMap { entry in
            schemas.violations(entry.message, answering: command(entry.client, id: entry.message["id"]?.stringValue))
                .map { "[\(entry.client)] \($0)" }
        }
    }

    var types: Set<String> { Set(received.compactMap { $0.message["type"]?.stringValue }) }
    var kinds: Set<String> { Set(received.compactMap { $0.message["kind"]?.stringValue }) }
    var errorCodes: Set<String> { Set(received.compactMap { $0.message["code"]?.stringValue }) }
    var ackedCommands: Set<String> {
        Set(received.compactMap { entry in
            entry.message["type"]?.stringValue == "ack" ? command(entry.client, id: entry.message["id"]?.stringValue) : nil
        })
    }
}

/// A `MedicClient` whose every received message and command id goes through a `WireLog`.
final class LoggedClient {
    let name: String
    let client: MedicClient
    let log: WireLog
    private var counter = 0
    /// Messages a `call` read past on its way to the answer; `until` looks at them first, so an event that
    /// arrived before the ack of the command that caused it is not waited for in vain.
    private var backlog: [JSONValue] = []

    init(_ name: String, _ client: MedicClient, log: WireLog) {
        self.name = name
        self.client = client
        self.log = log
    }

    func next() throws -> JSONValue {
        let message = try client.next()
        log.received(name, message)
        return message
    }

    @discardableResult
    func send(_ object: JSONObject) throws -> String {
        var object = object
        counter += 1
        let id = object["id"]?.stringValue ?? "\(name)-\(counter)"
        object["id"] = .string(id)
        log.sent(name, id: id, type: object["type"]?.stringValue ?? "?")
        try client.send(object)
        return id
    }

    /// Sends a command and reads until its ack or error (everything read on the way is logged too).
    func call(_ object: JSONObject) throws -> JSONValue {
        let id = try send(object)
        while true {
            let message = try next()
            if message["id"]?.stringValue == id, let type = message["type"]?.stringValue, type == "ack" || type == "error" { return message }
            backlog.append(message)
        }
    }

    @discardableResult
    func until(_ predicate: (JSONValue) -> Bool) throws -> [JSONValue] {
        var seen: [JSONValue] = []
        while !backlog.isEmpty {
            let message = backlog.removeFirst()
            seen.append(message)
            if predicate(message) { return seen }
        }
        for _ in 0..<20_000 {
            let message = try next()
            seen.append(message)
            if predicate(message) { return seen }
        }
        throw TestClientError("\(name): condition not met")
    }

    @discardableResult
    func untilStatus(_ status: String, revision: Int64? = nil) throws -> [JSONValue] {
        try until {
            $0["kind"]?.stringValue == "status_changed" && $0["data"]?["status"]?.stringValue == status
                && (revision == nil || $0["data"]?["revision"]?.intValue == revision)
        }
    }
}

/// A repository whose tests pass once ok.txt exists (printing on both streams), and a scripted LLM.
private func startSchemaMedic(autoFix: Bool, replies: String) throws -> MedicHarness {
    try MedicHarness { configuration, directory in
        let repo = try makeRepository(["README": "base\n"], in: directory)
        let script = (directory as NSString).appendingPathComponent("script.json")
        try #"{"replies":[\#(replies)]}"#.write(toFile: script, atomically: true, encoding: .utf8)
        configuration.repositories = [
            RepositoryConfig(
                name: "repo", path: repo,
                testCommand: "echo checking ok.txt; test -f ok.txt || { echo 'AssertionError: ok.txt is missing' >&2; exit 1; }",
                setupCommand: "echo setup")
        ]
        configuration.llm = .scripted(path: script)
        configuration.quorum = 1
        configuration.autoFix = autoFix
    }
}

/// One REST GET over a fresh connection: the status and the parsed JSON body (nil when not JSON).
private func restGET(_ medic: MedicHarness, _ path: String, token: String) throws -> (Int, JSONValue?) {
    let client = try TestClient(port: medic.port)
    try client.write(Array("GET \(path) HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer \(token)\r\n\r\n".utf8))
    let (head, bytes) = try client.readHTTPResponse()
    return (Int(head.split(separator: " ")[1]) ?? 0, try? JSONValue.parse(bytes))
}

private func change(_ path: String, _ content: String) -> JSONValue {
    .object(["path": .string(path), "action": "create", "content": .string(content)])
}

@Suite("server messages match protocol/schema", .serialized)
struct LiveSchemaTests {
    @Test func theCheckerRefusesExtraAndMissingFields() throws {
        let schemas = WireSchemas()
        let good = try JSONValue.parse(#"{"type":"event","topic":"proposal:p-1","seq":3,"ts":1,"kind":"comment","data":{"principal":"a","text":"t"}}"#)
        #expect(schemas.violations(good, answering: nil) == [])
        let extra = try JSONValue.parse(#"{"type":"event","topic":"proposal:p-1","seq":3,"ts":1,"kind":"comment","data":{"principal":"a","text":"t","x":1}}"#)
        #expect(schemas.violations(extra, answering: nil) == ["event comment: $.data: unexpected field x"])
        let missing = try JSONValue.parse(#"{"type":"ack","id":"c1","proposal":"p-1"}"#)
        #expect(schemas.violations(missing, answering: "propose") == ["ack: $: missing status"])
        #expect(!schemas.violations(try JSONValue.parse(#"{"type":"ack","id":"c1"}"#), answering: nil).isEmpty)
        let ephemeralWithSeq = try JSONValue.parse(#"{"type":"event","topic":"proposal:p-1","seq":4,"ts":1,"kind":"fix_delta","data":{"attempt":1,"text":"x"}}"#)
        #expect(!schemas.violations(ephemeralWithSeq, answering: nil).isEmpty)
    }

    /// Propose → tests fail → analysis → fix → tests pass → review → applied → rolled back; a second proposal gets
    /// changes requested, then is rejected; comments, presence, stats and error answers along the way.
    @Test func aDemoRunEmitsOnlySchemaConformingMessages() throws {
        let log = WireLog()
        do { try demoRun(log) } catch {
            Issue.record("\(error); the last messages received:\n\(log.tail(25))")
        }
    }

    private func demoRun(_ log: WireLog) throws {
        let medic = try startSchemaMedic(
            autoFix: true,
            replies: #"""
                {"match":"first","delay_ms":50,"reply":{"unfixable":false,"explanation":"create ok.txt","changes":[{"path":"ok.txt","action":"create","content":"v1\n"}]}},
                {"match":"second","delay_ms":50,"reply":{"unfixable":false,"explanation":"as requested","changes":[{"path":"ok.txt","action":"modify","content":"v2\n"}]}}
                """#)
        defer { medic.stop() }
        let schemas = WireSchemas()

        // alice authenticates with hello: a command before it is refused, the hello's id is acked.
        let aliceToken = try medic.token("alice", role: "admin")
        let raw = MedicClient(try TestClient(port: medic.port, timeoutSeconds: 20))
        try raw.raw.upgrade(path: "/ws", subprotocols: ["medic.v1"])
        let alice = LoggedClient("alice", raw, log: log)
        #expect(try alice.call(["type": "stats"])["code"]?.stringValue == "unauthenticated")
        #expect(try alice.call(["type": "hello", "token": .string(aliceToken)])["type"]?.stringValue == "ack")
        #expect(try alice.call(["type": "hello", "token": .string(aliceToken)])["code"]?.stringValue == "invalid_state")
        let bob = LoggedClient("bob", try medic.session(try medic.token("bob", role: "admin")), log: log)
        let vera = LoggedClient("vera", try medic.session(try medic.token("vera", role: "viewer")), log: log)
        let robo = LoggedClient("robo", try medic.session(try medic.token("robo", role: "bot")), log: log)
        #expect(try vera.call(["type": "subscribe", "topic": "proposals", "since": 0])["type"]?.stringValue == "ack")

        // The bot proposes a patch whose tests fail; the LLM's fix makes them pass.
        let proposed = try robo.call([
            "type": "propose", "title": "first: add ok", "description": "the tests need ok.txt", "changes": .array([change("wrong.txt", "x\n")]),
        ])
        let id = try #require(proposed["proposal"]?.stringValue)
        let topic = JSONValue.string("proposal:\(id)")
        for client in [alice, bob, vera, robo] {
            #expect(try client.call(["type": "subscribe", "topic": topic, "since": 0])["type"]?.stringValue == "ack")
        }
        try alice.untilStatus("awaiting_review", revision: 2)
        try bob.untilStatus("awaiting_review", revision: 2)

        // Refusals: role, stale revision, unknown proposal, and undecodable input.
        #expect(try vera.call(["type": "approve", "proposal": .string(id), "revision": 2])["code"]?.stringValue == "forbidden")
        #expect(try alice.call(["type": "approve", "proposal": .string(id), "revision": 1])["code"]?.stringValue == "stale_revision")
        #expect(try alice.call(["type": "comment", "proposal": "p-nope", "text": "?"])["code"]?.stringValue == "not_found")
        #expect(try alice.call(["type": "approve", "proposal": .string(id), "revision": "two"])["code"]?.stringValue == "invalid_message")
        #expect(try alice.call(["type": "dance"])["code"]?.stringValue == "unknown_type")
        try alice.client.raw.sendFrame(opcode: 1, payload: Array("{not json".utf8))
        try alice.until { $0["type"]?.stringValue == "error" && $0["code"]?.stringValue == "bad_json" }

        // A viewer comments; stats; alice approves (quorum 1): applied, then rolled back.
        #expect(try vera.call(["type": "comment", "proposal": .string(id), "text": "looks right"])["type"]?.stringValue == "ack")
        #expect(try vera.call(["type": "stats"])["type"]?.stringValue == "ack")
        #expect(try alice.call(["type": "approve", "proposal": .string(id), "revision": 2, "comment": "LGTM"])["type"]?.stringValue == "ack")
        try alice.untilStatus("applied")
        #expect(try alice.call(["type": "approve", "proposal": .string(id), "revision": 2])["code"]?.stringValue == "invalid_state")
        #expect(try alice.call(["type": "rollback", "proposal": .string(id)])["type"]?.stringValue == "ack")
        try alice.untilStatus("rolled_back")
        // bob leaves: the others get the new presence list.
        #expect(try bob.call(["type": "unsubscribe", "topic": topic])["type"]?.stringValue == "ack")
        try vera.until { $0["type"]?.stringValue == "presence" && $0["members"]?.arrayValue?.count == 3 }

        // A second proposal: changes requested (a new revision), then rejected.
        let second = try robo.call([
            "type": "propose", "title": "second: ok", "description": "d", "changes": .array([change("ok.txt", "v1\n")]),
        ])
        let secondID = try #require(second["proposal"]?.stringValue)
        #expect(try bob.call(["type": "subscribe", "topic": .string("proposal:\(secondID)"), "since": 0])["type"]?.stringValue == "ack")
        try bob.untilStatus("awaiting_review", revision: 1)
        #expect(try bob.call(["type": "request_changes", "proposal": .string(secondID), "revision": 1, "comment": "make it v2"])["type"]?.stringValue == "ack")
        try bob.untilStatus("awaiting_review", revision: 2)
        #expect(try bob.call(["type": "reject", "proposal": .string(secondID), "revision": 2, "comment": "not now"])["type"]?.stringValue == "ack")
        try bob.untilStatus("rejected")
        try vera.until { $0["kind"]?.stringValue == "proposal" && $0["data"]?["status"]?.stringValue == "rejected" }

        let problems = log.violations(schemas)
        #expect(problems.isEmpty, "\(problems.count) violations: \(problems.prefix(30).joined(separator: "\n"))")
        #expect(log.types == Set(ServerMessage.types))
        let expectedKinds: Set<String> = [
            "proposal_created", "status_changed", "sandbox_ready", "test_started", "test_output", "test_finished", "analysis",
            "fix_started", "fix_generated", "review", "comment", "applied", "rolled_back", "proposal",
        ]
        #expect(expectedKinds.subtracting(log.kinds).isEmpty, "kinds not seen: \(expectedKinds.subtracting(log.kinds))")
        let expectedAcks: Set<String> = [
            "hello", "subscribe", "unsubscribe", "propose", "approve", "reject", "request_changes", "rollback", "comment", "stats",
        ]
        #expect(expectedAcks.subtracting(log.ackedCommands).isEmpty, "acks not seen: \(expectedAcks.subtracting(log.ackedCommands))")
        let expectedCodes: Set<String> = [
            "unauthenticated", "invalid_state", "forbidden", "stale_revision", "not_found", "invalid_message", "unknown_type", "bad_json",
        ]
        #expect(expectedCodes.subtracting(log.errorCodes).isEmpty, "errors not seen: \(expectedCodes.subtracting(log.errorCodes))")
    }

    /// Manual mode: a failed proposal waits for auto_fix; the fix streams fix_delta, still fails, and the second
    /// attempt is declared unfixable.
    @Test func manualAutoFixAndUnfixableMatchTheSchemas() throws {
        let log = WireLog()
        do { try manualRun(log) } catch {
            Issue.record("\(error); the last messages received:\n\(log.tail(25))")
        }
    }

    private func manualRun(_ log: WireLog) throws {
        let medic = try startSchemaMedic(
            autoFix: false,
            replies: #"""
                {"match":"manual","attempt":1,"delay_ms":200,"reply":{"unfixable":false,"explanation":"try another file","changes":[{"path":"still-wrong.txt","action":"create","content":"y\n"}]}},
                {"match":"manual","attempt":2,"reply":{"unfixable":true,"explanation":"the tests need a file this patch cannot know"}}
                """#)
        defer { medic.stop() }
        let aliceToken = try medic.token("alice", role: "admin")
        let alice = LoggedClient("alice", try medic.session(aliceToken), log: log)
        let id = try #require(
            try alice.call(["type": "propose", "title": "manual fix", "description": "d", "changes": .array([change("wrong.txt", "x\n")])])["proposal"]?
                .stringValue)
        #expect(try alice.call(["type": "subscribe", "topic": .string("proposal:\(id)"), "since": 0])["type"]?.stringValue == "ack")
        // In manual mode the proposal waits in tests_failed once its failure is analysed.
        let waiting = { (revision: Int64) in
            { (message: JSONValue) -> Bool in
                message["kind"]?.stringValue == "status_changed" && message["data"]?["status"]?.stringValue == "tests_failed"
                    && message["data"]?["revision"]?.intValue == revision
                    && message["data"]?["reason"]?.stringValue?.hasSuffix("waiting for auto_fix") == true
            }
        }
        try alice.until(waiting(1))
        // The auto-fix status endpoint, as protocol/README.md §8 describes it.
        let (statusCode, status) = try restGET(medic, "/api/v1/admin/proposals/auto-fix/status/\(id)", token: aliceToken)
        #expect(statusCode == 200)
        #expect(Set(status?.objectValue?.members.map(\.key) ?? [])
            == ["proposal", "status", "needs_auto_fix", "auto_fix_applied", "auto_fix_attempts", "mode"])
        #expect(status?["needs_auto_fix"]?.boolValue == true)
        #expect(status?["mode"]?.stringValue == "manual")
        #expect(try alice.call(["type": "auto_fix", "proposal": .string(id)])["type"]?.stringValue == "ack")
        try alice.until(waiting(2))
        #expect(try alice.call(["type": "auto_fix", "proposal": .string(id)])["type"]?.stringValue == "ack")
        try alice.untilStatus("unfixable")
        #expect(try alice.call(["type": "rollback", "proposal": .string(id)])["code"]?.stringValue == "invalid_state")

        // The REST events page holds the same events (without the `type` envelope field) and the head.
        let (eventsCode, page) = try restGET(medic, "/api/v1/proposals/\(id)/events?since=0", token: aliceToken)
        #expect(eventsCode == 200)
        let stored = page?["events"]?.arrayValue ?? []
        #expect(!stored.isEmpty && page?["head"]?.intValue == stored.last?["seq"]?.intValue)
        for event in stored {
            guard case .object(var object) = event else { continue }
            #expect(object["type"] == nil)
            object["type"] = "event"
            log.received("rest", .object(object))
        }

        let problems = log.violations(WireSchemas())
        #expect(problems.isEmpty, "\(problems.count) violations: \(problems.prefix(30).joined(separator: "\n"))")
        let expectedKinds: Set<String> = ["fix_started", "fix_delta", "fix_generated", "unfixable", "analysis", "test_finished"]
        #expect(expectedKinds.subtracting(log.kinds).isEmpty, "kinds not seen: \(expectedKinds.subtracting(log.kinds))")
        #expect(log.ackedCommands.contains("auto_fix"))
    }
}
