// LiveSchemaTests: demo-like runs against a real Medic; every server message received is checked against protocol/schema.
import Foundation
import MedicHost
import Pipeline
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
            if (message["seq"] == nil) != (kind == "fix_delta" || kind == "ask_thinking") { problems.append("seq must be present iff the kind is durable") }
            problems += Self.topicRules(message)
        default: break
        }
        return problems.map { "\(type)\(message["kind"]?.stringValue.map { " \($0)" } ?? ""): \($0)" }
    }
}

extension WireSchemas {
    /// Kinds a proposal topic carries.
    static let proposalKinds: Set<String> = [
        "proposal_created", "status_changed", "sandbox_ready", "test_started", "test_output", "test_finished", "analysis", "fix_started",
        "fix_delta", "fix_generated", "fix_failed", "unfixable", "review", "comment", "applied", "apply_failed", "rolled_back",
    ]
    /// The bug workflow's own kinds on `bug:<id>`.
    static let bugKinds: Set<String> = [
        "bug_reported", "status_changed", "bug_analysis", "reproducer_written", "reproducer_verified", "reproducer_rejected",
        "approach_started", "approach_status", "approach_duplicate", "approaches_ranked", "approach_chosen", "bug_proposed",
        "bug_unfixed", "bug_fixed", "proposal_status", "perf_measured",
    ]
    /// The ask workflow's kinds on `ask:<id>`.
    static let askKinds: Set<String> = [
        "ask_created", "status_changed", "ask_thinking", "tool_called", "sql_proposed", "sql_result", "sql_refused", "answer", "ask_failed",
    ]
    /// Proposal-pipeline kinds an approach's repair loop sends on `bug:<id>`, tagged with `approach`.
    static let approachKinds: Set<String> = [
        "sandbox_ready", "test_started", "test_output", "test_finished", "analysis", "fix_started", "fix_delta", "fix_generated",
        "fix_failed", "unfixable",
    ]

    /// What one schema per kind cannot say: which of a kind's optional fields each topic's events carry
    /// (protocol/README.md, "Events" and "Bug reports").
    static func topicRules(_ message: JSONValue) -> [String] {
        guard let topic = message["topic"]?.stringValue, let kind = message["kind"]?.stringValue, let data = message["data"]?.objectValue else {
            return []
        }
        var problems: [String] = []
        let keys = Set(data.members.map(\.key))
        let phase = data["phase"]?.stringValue
        let revision = data["revision"]?.intValue
        if topic.hasPrefix("proposal:") {
            if !proposalKinds.contains(kind) { problems.append("kind \(kind) on a proposal topic") }
            for key in ["approach", "purpose"] where keys.contains(key) { problems.append("\(key) on a proposal topic") }
            if phase == "base" { problems.append("phase base on a proposal topic") }
            if let revision, revision < 1 { problems.append("revision \(revision) on a proposal topic") }
            if kind == "status_changed" {
                for key in ["revision", "attempt", "max_attempts"] where !keys.contains(key) { problems.append("status_changed without \(key)") }
                if ProposalStatus(rawValue: data["status"]?.stringValue ?? "") == nil { problems.append("not a proposal status") }
            }
        } else if topic.hasPrefix("bug:") {
            if kind == "status_changed" {
                if !keys.isSubset(of: ["status", "reason"]) { problems.append("status_changed of a bug with \(keys.sorted())") }
                if BugStatus(rawValue: data["status"]?.stringValue ?? "") == nil { problems.append("not a bug status") }
            } else if kind == "fix_delta" {
                // An approach's request or fix attempt (approach), or the bug's own analysis/reproducer request (purpose).
                let purpose = data["purpose"]?.stringValue
                if keys.contains("approach") {
                    if phase != nil || !(purpose == nil || purpose == "bug_approach") { problems.append("fix_delta of an approach with \(keys.sorted())") }
                } else if phase != nil || !(purpose == "bug_analysis" || purpose == "bug_reproducer") {
                    problems.append("fix_delta of the bug with \(keys.sorted())")
                }
            } else if kind == "test_started" || kind == "test_output" {
                // An approach's run, or the base run (phase base, revision 0).
                if keys.contains("approach") == (phase == "base") { problems.append("\(kind) needs exactly one of approach and phase base") }
                if (phase == "base") != (revision == 0) { problems.append("\(kind): revision 0 iff phase base") }
                if phase == "pre_apply" || phase == "post_apply" { problems.append("an approach is never applied") }
            } else if kind == "perf_measured" {
                if keys.contains("base") == keys.contains("approach") { problems.append("perf_measured needs exactly one of base and approach") }
            } else if approachKinds.contains(kind) {
                if !keys.contains("approach") { problems.append("\(kind) without approach on a bug topic") }
            } else if !bugKinds.contains(kind) {
                problems.append("kind \(kind) on a bug topic")
            }
        } else if topic.hasPrefix("ask:") {
            if !askKinds.contains(kind) { problems.append("kind \(kind) on an ask topic") }
            if kind == "status_changed" {
                if !keys.isSubset(of: ["status", "reason"]) { problems.append("status_changed of an ask with \(keys.sorted())") }
                let status = data["status"]?.stringValue ?? ""
                if !["thinking", "answered", "failed"].contains(status) { problems.append("not an ask status") }
                if keys.contains("reason") != (status == "failed") { problems.append("an ask's status_changed has a reason iff failed") }
            }
        } else if topic == "asks" {
            if kind != "ask" { problems.append("kind \(kind) on asks") }
        } else if topic == "bugs" {
            if kind != "bug" { problems.append("kind \(kind) on bugs") }
        } else if topic == "proposals" {
            if kind != "proposal" { problems.append("kind \(kind) on proposals") }
        }
        return problems
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

/// One REST request with a JSON body over a fresh connection: the status and the parsed JSON body.
private func restSend(_ medic: MedicHarness, _ method: String, _ path: String, token: String, body: JSONValue, headers: [String] = []) throws -> (Int, JSONValue?) {
    let client = try TestClient(port: medic.port)
    let bytes = body.bytes
    let head = "\(method) \(path) HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer \(token)\r\nContent-Type: application/json\r\n"
        + "Content-Length: \(bytes.count)\r\n" + headers.map { $0 + "\r\n" }.joined() + "\r\n"
    try client.write(Array(head.utf8) + bytes)
    let (response, answer) = try client.readHTTPResponse()
    return (Int(response.split(separator: " ")[1]) ?? 0, try? JSONValue.parse(answer))
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
        // Topic rules: what a kind's optional fields are on each topic.
        let bugStatus = try JSONValue.parse(#"{"type":"event","topic":"bug:b-1","seq":2,"ts":1,"kind":"status_changed","data":{"status":"reproducing"}}"#)
        #expect(schemas.violations(bugStatus, answering: nil) == [])
        let bugStatusOnProposal = try JSONValue.parse(#"{"type":"event","topic":"proposal:p-1","seq":2,"ts":1,"kind":"status_changed","data":{"status":"testing"}}"#)
        #expect(schemas.violations(bugStatusOnProposal, answering: nil).count == 3)
        let untagged = try JSONValue.parse(#"{"type":"event","topic":"bug:b-1","seq":9,"ts":1,"kind":"test_finished","data":{"revision":1,"exit_code":0,"passed":1,"failed":0,"duration_ms":5,"timed_out":false,"truncated":false}}"#)
        #expect(schemas.violations(untagged, answering: nil) == ["event test_finished: test_finished without approach on a bug topic"])
        let baseRun = try JSONValue.parse(#"{"type":"event","topic":"bug:b-1","seq":7,"ts":1,"kind":"test_output","data":{"revision":0,"stream":"stdout","lines":["x"],"phase":"base"}}"#)
        #expect(schemas.violations(baseRun, answering: nil) == [])
        let tagged = try JSONValue.parse(#"{"type":"event","topic":"proposal:p-1","seq":7,"ts":1,"kind":"test_output","data":{"revision":1,"stream":"stdout","lines":["x"],"approach":2}}"#)
        #expect(schemas.violations(tagged, answering: nil) == ["event test_output: approach on a proposal topic"])
        let analysisDelta = try JSONValue.parse(#"{"type":"event","topic":"bug:b-1","ts":1,"kind":"fix_delta","data":{"purpose":"bug_analysis","attempt":1,"text":"x"}}"#)
        #expect(schemas.violations(analysisDelta, answering: nil) == [])
        let badDelta = try JSONValue.parse(#"{"type":"event","topic":"bug:b-1","ts":1,"kind":"fix_delta","data":{"purpose":"bug_analysis","attempt":1,"text":"x","approach":1}}"#)
        #expect(schemas.violations(badDelta, answering: nil).count == 1)
        // The schemas' enums are the code's.
        let bugSummary = try #require(schemas.schema("event.bug"))
        #expect(Set(bugSummary["properties"]?["status"]?["enum"]?.arrayValue?.compactMap(\.stringValue) ?? []) == Set(BugStatus.allCases.map(\.rawValue)))
        let statusEnum = schemas.schema("event.status_changed")?["properties"]?["status"]?["enum"]?.arrayValue?.compactMap(\.stringValue) ?? []
        #expect(Set(statusEnum) == Set(ProposalStatus.allCases.map(\.rawValue)).union(BugStatus.allCases.map(\.rawValue)).union(["thinking", "answered", "failed"]))
        let askThinking = try JSONValue.parse(#"{"type":"event","topic":"ask:a-1","ts":1,"kind":"ask_thinking","data":{"round":1,"text":"x"}}"#)
        #expect(schemas.violations(askThinking, answering: nil) == [])
        let failedWithoutReason = try JSONValue.parse(#"{"type":"event","topic":"ask:a-1","seq":4,"ts":1,"kind":"status_changed","data":{"status":"failed"}}"#)
        #expect(schemas.violations(failedWithoutReason, answering: nil).count == 1)
        let bugKindOnAsk = try JSONValue.parse(#"{"type":"event","topic":"ask:a-1","seq":4,"ts":1,"kind":"ask","data":{"id":"a-1","question":"q","source":"users","status":"thinking","author":"a","created_at":1,"updated_at":1}}"#)
        #expect(schemas.violations(bugKindOnAsk, answering: nil).count == 1)
        let approachStatuses = schemas.schema("event.approach_status")?["properties"]?["status"]?["enum"]?.arrayValue?.compactMap(\.stringValue) ?? []
        #expect(!approachStatuses.isEmpty && approachStatuses.allSatisfy { ApproachStatus(rawValue: $0) != nil })
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

    /// Two bug reports over real sockets: one reproduced on the second try, fixed by three approaches (one needs a fix
    /// attempt, one is a duplicate), timed twice each (`perf_runs` 2), ranked, proposed, replaced with `choose_approach`
    /// and applied; one reported over REST that nothing in the script answers, so it ends unfixed. Every message is
    /// checked against the schemas.
    @Test func aBugRunEmitsOnlySchemaConformingMessages() throws {
        let log = WireLog()
        do { try bugRun(log) } catch {
            Issue.record("\(error); the last messages received:\n\(log.tail(25))")
        }
    }

    private func bugRun(_ log: WireLog) throws {
        // lib/value.txt holds 1; it must hold 2. The suite runs every tests/*.sh.
        let value2: JSONValue = ["unfixable": false, "explanation": "Set the value to 2.\nlib/value.txt holds the wrong value.",
                                 "changes": [["path": "lib/value.txt", "action": "modify", "content": "2\n"]]]
        let script: JSONValue = ["replies": [
            ["match": "value is wrong", "purpose": "bug_analysis", "attempt": 1, "delay_ms": 400, "reply": [
                "summary": "lib/value.txt holds 1 instead of 2.", "locations": [["file": "lib/value.txt", "line": 1, "why": "the value"]],
                "causes": ["a typo in the data file"]]],
            // The first reproducer passes on the unchanged repository (rejected); the second fails there (verified).
            ["match": "value is wrong", "purpose": "bug_reproducer", "attempt": 1, "delay_ms": 20, "reply": [
                "path": "tests/test_repro.sh", "content": "echo 'the value looks fine'\n", "explanation": "checks nothing"]],
            ["match": "value is wrong", "purpose": "bug_reproducer", "attempt": 2, "delay_ms": 20, "reply": [
                "path": "tests/test_value.sh",
                "content": "grep -qx 2 lib/value.txt || { echo 'AssertionError: the value is not 2' >&2; exit 1; }\n",
                "explanation": "fails while lib/value.txt does not hold 2"]],
            ["match": "value is wrong", "purpose": "bug_approach", "approach": 1, "delay_ms": 20, "reply": value2],
            // Approach 2 misses at first; its repair loop's fix attempt 1 repairs it.
            ["match": "value is wrong", "purpose": "bug_approach", "approach": 2, "delay_ms": 20, "reply": [
                "unfixable": false, "explanation": "Override the value in a new file.\nlib/override.txt wins over lib/value.txt.",
                "changes": [["path": "lib/override.txt", "action": "create", "content": "2\n"]]]],
            ["match": "value is wrong", "purpose": "fix", "approach": 2, "attempt": 1, "delay_ms": 20, "reply": value2],
            // Approach 3 answers approach 1's change again: a duplicate.
            ["match": "value is wrong", "purpose": "bug_approach", "approach": 3, "delay_ms": 20, "reply": value2],
            // The second bug: no analysis, no reproducer, approach 1 unanswered; approach 2 breaks the suite and its repair
            // loop gives up.
            ["match": "beyond repair", "purpose": "bug_approach", "approach": 2, "delay_ms": 20, "reply": [
                "unfixable": false, "explanation": "Drop the README.\nIt will not help.", "changes": [["path": "README", "action": "delete"]]]],
            ["match": "beyond repair", "purpose": "fix", "approach": 2, "attempt": 1, "reply": [
                "unfixable": true, "explanation": "The value file cannot be changed by this approach.", "changes": []]],
        ]]
        let medic = try MedicHarness { configuration, directory in
            let repo = try makeRepository(
                ["README": "base\n", "lib/value.txt": "1\n", "tests/test_readme.sh": "test -f README && echo 'README is there'\n"], in: directory)
            let path = (directory as NSString).appendingPathComponent("script.json")
            try script.jsonString.write(toFile: path, atomically: true, encoding: .utf8)
            configuration.repositories = [
                RepositoryConfig(
                    name: "repo", path: repo,
                    testCommand: "fail=0; for t in tests/*.sh; do echo \"== $t\"; sh \"$t\" || fail=1; done; exit $fail", setupCommand: nil)
            ]
            configuration.llm = .scripted(path: path)
            configuration.quorum = 1
            configuration.autoFix = true
            configuration.maxParallelSandboxes = 1  // approach 2 waits `queued` while approach 1 runs
        }
        defer { medic.stop() }
        let schemas = WireSchemas()
        let aliceToken = try medic.token("alice", role: "admin")
        let alice = LoggedClient("alice", try medic.session(aliceToken), log: log)
        let vera = LoggedClient("vera", try medic.session(try medic.token("vera", role: "viewer")), log: log)
        let robo = LoggedClient("robo", try medic.session(try medic.token("robo", role: "bot")), log: log)
        #expect(try vera.call(["type": "subscribe", "topic": "bugs", "since": 0])["type"]?.stringValue == "ack")
        #expect(try vera.call(["type": "subscribe", "topic": "proposals", "since": 0])["type"]?.stringValue == "ack")

        // Refusals before anything exists.
        let report: JSONObject = ["type": "report_bug", "repo": "repo", "title": "The value is wrong", "approaches": 3]
        var forViewer = report
        forViewer["title"] = "viewers may not report"
        #expect(try vera.call(forViewer)["code"]?.stringValue == "forbidden")
        for (field, value) in [("title", JSONValue.string("   ")), ("repo", "nope"), ("approaches", 6), ("severity", "urgent"), ("evidence", [1])] {
            var bad = report
            bad[field] = value
            #expect(try alice.call(bad)["code"]?.stringValue == "invalid_message", "\(field)")
        }
        #expect(try alice.call(["type": "choose_approach", "bug": "b-nope", "approach": 1])["code"]?.stringValue == "not_found")
        #expect(try alice.call(["type": "resume_bug", "bug": "b-nope"])["code"]?.stringValue == "not_found")

        // The bot reports; alice and vera watch the bug.
        var reported = report
        reported["description"] = "lib/value.txt should hold 2."
        reported["severity"] = "high"
        reported["evidence"] = ["ValueError: expected 2, got 1"]
        reported["perf_runs"] = 2
        let ack = try robo.call(reported)
        #expect(ack["status"]?.stringValue == "analyzing")
        let bug = try #require(ack["bug"]?.stringValue)
        let topic = "bug:\(bug)"
        for client in [alice, vera] {
            #expect(try client.call(["type": "subscribe", "topic": .string(topic), "since": 0])["type"]?.stringValue == "ack")
        }
        let first = try alice.until { $0["topic"]?.stringValue == topic && $0["kind"]?.stringValue == "bug_proposed" }.last
        let firstProposal = try #require(first?["data"]?["proposal"]?.stringValue)
        #expect(first?["data"]?["approach"]?.intValue == 1)
        try alice.until { $0["topic"]?.stringValue == topic && $0["kind"]?.stringValue == "status_changed" && $0["data"]?["status"]?.stringValue == "proposed" }

        let events = { (kind: String) in
            log.received.filter { $0.client == "alice" && $0.message["topic"]?.stringValue == topic && $0.message["kind"]?.stringValue == kind }
                .map { $0.message["data"] ?? .null }
        }
        #expect(events("bug_reported").first?["author"]?.stringValue == "robo")
        #expect(events("reproducer_rejected").first?["attempt"]?.intValue == 1)
        #expect(events("reproducer_verified").first?["path"]?.stringValue == "tests/test_value.sh")
        #expect(events("approach_duplicate").first?["duplicate_of"]?.intValue == 1)
        #expect(events("approach_status").contains { $0["approach"]?.intValue == 2 && $0["status"]?.stringValue == "queued" })
        #expect(events("fix_generated").first?["approach"]?.intValue == 2)
        let ranked = try #require(events("approaches_ranked").first)
        #expect(ranked["winner"]?.intValue == 1)
        #expect(ranked["perf_runs"]?.intValue == 2 && ranked["base_durations_ms"]?.arrayValue?.count == 2)
        // Two runs each for the base and for the two qualified approaches, before the ranking.
        #expect(events("perf_measured").map { $0["approach"]?.intValue ?? 0 } == [0, 1, 2])
        #expect(ranked["approaches"]?.arrayValue?.filter { $0["qualified"]?.boolValue == true }.compactMap { $0["approach"]?.intValue } == [1, 2])

        // Choosing: only admins, only another qualified approach, only while proposed.
        #expect(try robo.call(["type": "choose_approach", "bug": .string(bug), "approach": 2])["code"]?.stringValue == "forbidden")
        #expect(try alice.call(["type": "choose_approach", "bug": .string(bug), "approach": 3])["code"]?.stringValue == "invalid_state")
        #expect(try alice.call(["type": "choose_approach", "bug": .string(bug), "approach": 1])["code"]?.stringValue == "invalid_state")
        #expect(try alice.call(["type": "resume_bug", "bug": .string(bug)])["code"]?.stringValue == "invalid_state")
        let chosen = try alice.call(["type": "choose_approach", "bug": .string(bug), "approach": 2])
        #expect(chosen["type"]?.stringValue == "ack")
        #expect(chosen["replaces"]?.stringValue == firstProposal)
        let second = try alice.until {
            $0["topic"]?.stringValue == topic && $0["kind"]?.stringValue == "bug_proposed" && $0["data"]?["approach"]?.intValue == 2
        }.last
        let secondProposal = try #require(second?["data"]?["proposal"]?.stringValue)
        #expect(secondProposal != firstProposal)

        // The proposal is Medic's, linked to the bug; alice approves it and the bug is fixed.
        let proposalTopic = "proposal:\(secondProposal)"
        #expect(try alice.call(["type": "subscribe", "topic": .string(proposalTopic), "since": 0])["type"]?.stringValue == "ack")
        let created = try alice.until { $0["topic"]?.stringValue == proposalTopic && $0["kind"]?.stringValue == "proposal_created" }.last
        #expect(created?["data"]?["proposal"]?["bug"]?.stringValue == bug)
        #expect(created?["data"]?["proposal"]?["author"]?.stringValue == "medic:bugs")
        try alice.until {
            $0["topic"]?.stringValue == proposalTopic && $0["kind"]?.stringValue == "status_changed" && $0["data"]?["status"]?.stringValue == "awaiting_review"
        }
        #expect(try alice.call(["type": "approve", "proposal": .string(secondProposal), "revision": 1])["type"]?.stringValue == "ack")
        let fixed = try alice.until { $0["topic"]?.stringValue == topic && $0["kind"]?.stringValue == "bug_fixed" }.last
        #expect(fixed?["data"]?["proposal"]?.stringValue == secondProposal)
        try vera.until { $0["kind"]?.stringValue == "bug" && $0["data"]?["id"]?.stringValue == bug && $0["data"]?["status"]?.stringValue == "fixed" }
        let (_, replaced) = try restGET(medic, "/api/v1/proposals/\(firstProposal)", token: aliceToken)
        #expect(replaced?["status"]?.stringValue == "withdrawn")

        // A second bug over REST (the key makes a repeat answer the same bug); nothing answers it: unfixed.
        let body: JSONValue = ["repo": "repo", "title": "Broken beyond repair", "approaches": 2]
        let (created1, ack1) = try restSend(medic, "POST", "/api/v1/bugs", token: aliceToken, body: body, headers: ["Idempotency-Key: k-beyond"])
        let (created2, ack2) = try restSend(medic, "POST", "/api/v1/bugs", token: aliceToken, body: body, headers: ["Idempotency-Key: k-beyond"])
        #expect(created1 == 201 && created2 == 201)
        #expect(SchemaValidator.validate(ack1 ?? .null, against: try #require(schemas.schema("ack.report_bug"))) == [])
        let unfixedBug = try #require(ack1?["bug"]?.stringValue)
        #expect(ack2?["bug"]?.stringValue == unfixedBug)
        let unfixedTopic = "bug:\(unfixedBug)"
        #expect(try alice.call(["type": "subscribe", "topic": .string(unfixedTopic), "since": 0])["type"]?.stringValue == "ack")
        let unfixed = try alice.until { $0["topic"]?.stringValue == unfixedTopic && $0["kind"]?.stringValue == "bug_unfixed" }.last
        #expect(unfixed?["data"]?["reasons"]?.arrayValue?.count == 2)
        try vera.until { $0["kind"]?.stringValue == "bug" && $0["data"]?["id"]?.stringValue == unfixedBug && $0["data"]?["status"]?.stringValue == "unfixed" }

        // REST reads: the list holds the summaries, the detail the documented fields; the events page the same events.
        let (listCode, list) = try restGET(medic, "/api/v1/bugs", token: aliceToken)
        #expect(listCode == 200)
        let summaries = list?["bugs"]?.arrayValue ?? []
        #expect(summaries.compactMap { $0["id"]?.stringValue } == [unfixedBug, bug])
        for summary in summaries { #expect(SchemaValidator.validate(summary, against: try #require(schemas.schema("event.bug"))) == []) }
        #expect(summaries.first?["reproduced"]?.boolValue == false)
        #expect(summaries.last?["reproduced"]?.boolValue == true)
        let (_, onlyFixed) = try restGET(medic, "/api/v1/bugs?status=fixed", token: aliceToken)
        #expect(onlyFixed?["bugs"]?.arrayValue?.compactMap { $0["id"]?.stringValue } == [bug])
        let (detailCode, detail) = try restGET(medic, "/api/v1/bugs/\(bug)", token: aliceToken)
        #expect(detailCode == 200)
        let detailKeys: Set<String> = [
            "id", "title", "repo", "severity", "status", "reproduced", "approaches", "proposal", "chosen_approach", "author", "created_at",
            "updated_at", "report", "analysis", "reproducer", "reproducer_reason", "base_duration_ms", "approach_details", "ranking", "proposals",
        ]
        #expect(Set(detail?.objectValue?.members.map(\.key) ?? []) == detailKeys)
        #expect(SchemaValidator.validate(detail?["report"] ?? .null, against: try #require(schemas.schema("event.bug_reported"))) == [])
        #expect(SchemaValidator.validate(detail?["analysis"] ?? .null, against: try #require(schemas.schema("event.bug_analysis"))) == [])
        #expect(SchemaValidator.validate(detail?["ranking"] ?? .null, against: try #require(schemas.schema("event.approaches_ranked"))) == [])
        let approachSchema = try #require(schemas.schema("event.approaches_ranked")?["properties"]?["approaches"]?["items"])
        #expect((detail?["approach_details"]?.arrayValue ?? []).flatMap { SchemaValidator.validate($0, against: approachSchema) } == [])
        #expect(detail?["approach_details"]?.arrayValue?.count == 3)
        #expect(Set(detail?["reproducer"]?.objectValue?.members.map(\.key) ?? []) == ["path", "content", "explanation"])
        #expect(detail?["proposals"]?.arrayValue?.compactMap(\.stringValue) == [firstProposal, secondProposal])
        #expect(detail?["status"]?.stringValue == "fixed" && detail?["chosen_approach"]?.intValue == 2)
        let (missingCode, _) = try restGET(medic, "/api/v1/bugs/b-nope", token: aliceToken)
        #expect(missingCode == 404)
        let (eventsCode, page) = try restGET(medic, "/api/v1/bugs/\(bug)/events?since=0", token: aliceToken)
        #expect(eventsCode == 200)
        let stored = page?["events"]?.arrayValue ?? []
        #expect(!stored.isEmpty && page?["head"]?.intValue == stored.last?["seq"]?.intValue)
        for event in stored {
            guard case .object(var object) = event else { continue }
            object["type"] = "event"
            log.received("rest", .object(object))
        }

        let problems = log.violations(schemas)
        #expect(problems.isEmpty, "\(problems.count) violations: \(problems.prefix(30).joined(separator: "\n"))")
        let expectedKinds: Set<String> = [
            "bug_reported", "status_changed", "bug_analysis", "reproducer_written", "reproducer_rejected", "reproducer_verified",
            "approach_started", "approach_status", "approach_duplicate", "approaches_ranked", "approach_chosen", "bug_proposed",
            "proposal_status", "bug_fixed", "bug_unfixed", "bug", "perf_measured", "sandbox_ready", "test_started", "test_output", "test_finished",
            "analysis", "fix_started", "fix_delta", "fix_generated", "unfixable", "proposal_created", "proposal", "review", "applied",
        ]
        #expect(expectedKinds.subtracting(log.kinds).isEmpty, "kinds not seen: \(expectedKinds.subtracting(log.kinds))")
        // The base run and an approach's request and fix attempts stream with their tags.
        let bugData = log.received.filter { $0.message["topic"]?.stringValue?.hasPrefix("bug:") == true }.compactMap { $0.message["data"] }
        #expect(bugData.contains { $0["phase"]?.stringValue == "base" && $0["revision"]?.intValue == 0 })
        #expect(bugData.contains { $0["purpose"]?.stringValue == "bug_approach" && $0["approach"] != nil })
        #expect(bugData.contains { $0["text"] != nil && $0["purpose"] == nil && $0["approach"]?.intValue == 2 })
        #expect(Set(["report_bug", "choose_approach", "subscribe", "approve"]).subtracting(log.ackedCommands).isEmpty)
        #expect(Set(["forbidden", "invalid_message", "not_found", "invalid_state"]).subtracting(log.errorCodes).isEmpty)
    }

    /// A bug interrupted by a restart while its approach was being asked: `interrupted` (the approach too), refused
    /// resumes (role, REST in the wrong state), `resume_bug`, and the approach asked again until the bug is proposed.
    @Test func anInterruptedBugResumesWithSchemaConformingMessages() throws {
        let log = WireLog()
        do { try resumeRun(log) } catch {
            Issue.record("\(error); the last messages received:\n\(log.tail(25))")
        }
    }

    private func resumeRun(_ log: WireLog) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("medic-bug-resume-\(UInt32.random(in: 0...UInt32.max))").path
        // The approach's reply takes a minute before the restart and 20 ms after it.
        let configure = { (approachDelay: Int) in
            { (configuration: inout MedicConfiguration, directory: String) throws in
                let repo = directory + "/repo"
                if !FileManager.default.fileExists(atPath: repo) {
                    _ = try makeRepository(["README": "base\n", "lib/value.txt": "1\n", "tests/test_readme.sh": "test -f README\n"], in: directory)
                }
                let script: JSONValue = ["replies": [
                    ["match": "resume me", "purpose": "bug_analysis", "reply": [
                        "summary": "the value", "locations": [["file": "lib/value.txt", "line": 1, "why": "it holds 1"]], "causes": []]],
                    ["match": "resume me", "purpose": "bug_approach", "approach": 1, "delay_ms": .int(Int64(approachDelay)), "reply": [
                        "unfixable": false, "explanation": "Set the value to 2.", "changes": [["path": "lib/value.txt", "action": "modify", "content": "2\n"]]]],
                ]]
                let path = directory + "/script.json"
                try script.jsonString.write(toFile: path, atomically: true, encoding: .utf8)
                configuration.repositories = [
                    RepositoryConfig(name: "repo", path: repo, testCommand: "for t in tests/*.sh; do sh \"$t\" || exit 1; done", setupCommand: nil)
                ]
                configuration.llm = .scripted(path: path)
            }
        }
        let first = try MedicHarness(directory: directory, configure: configure(60_000))
        let aliceToken = try first.token("alice", role: "admin")
        let veraToken = try first.token("vera", role: "viewer")
        let before = LoggedClient("alice", try first.session(aliceToken), log: log)
        let bug = try #require(try before.call(["type": "report_bug", "repo": "repo", "title": "Resume me", "approaches": 1])["bug"]?.stringValue)
        let topic = JSONValue.string("bug:\(bug)")
        #expect(try before.call(["type": "subscribe", "topic": topic, "since": 0])["type"]?.stringValue == "ack")
        try before.until { $0["kind"]?.stringValue == "status_changed" && $0["data"]?["status"]?.stringValue == "fixing" }
        first.stop()

        let second = try MedicHarness(directory: directory, configure: configure(20))
        defer { second.stop() }
        let alice = LoggedClient("alice2", try second.session(aliceToken), log: log)
        let vera = LoggedClient("vera", try second.session(veraToken), log: log)
        for client in [alice, vera] {
            #expect(try client.call(["type": "subscribe", "topic": topic, "since": 0])["type"]?.stringValue == "ack")
        }
        #expect(try vera.call(["type": "subscribe", "topic": "bugs", "since": 0])["type"]?.stringValue == "ack")
        try alice.until { $0["kind"]?.stringValue == "status_changed" && $0["data"]?["status"]?.stringValue == "interrupted" }
        try alice.until { $0["kind"]?.stringValue == "approach_status" && $0["data"]?["status"]?.stringValue == "interrupted" }
        #expect(try vera.call(["type": "resume_bug", "bug": .string(bug)])["code"]?.stringValue == "forbidden")
        let (chooseCode, _) = try restSend(second, "POST", "/api/v1/bugs/\(bug)/choose", token: aliceToken, body: ["approach": 1])
        #expect(chooseCode == 409)
        let resumed = try alice.call(["type": "resume_bug", "bug": .string(bug)])
        #expect(resumed["status"]?.stringValue == "fixing")
        try alice.until { $0["kind"]?.stringValue == "approach_status" && $0["data"]?["status"]?.stringValue == "asking" }
        let (resumeCode, refusal) = try restSend(second, "POST", "/api/v1/bugs/\(bug)/resume", token: aliceToken, body: [:])
        #expect(resumeCode == 409 && refusal?["error"]?["code"]?.stringValue == "invalid_state")
        try alice.until { $0["kind"]?.stringValue == "bug_proposed" }
        try alice.until { $0["kind"]?.stringValue == "status_changed" && $0["data"]?["status"]?.stringValue == "proposed" }
        try vera.until { $0["kind"]?.stringValue == "bug" && $0["data"]?["status"]?.stringValue == "proposed" }
        let statuses = log.received.filter { $0.client == "alice2" && $0.message["kind"]?.stringValue == "status_changed" }
            .compactMap { $0.message["data"]?["status"]?.stringValue }
        #expect(statuses == ["analyzing", "reproducing", "fixing", "interrupted", "fixing", "proposed"])

        let problems = log.violations(WireSchemas())
        #expect(problems.isEmpty, "\(problems.count) violations: \(problems.prefix(30).joined(separator: "\n"))")
        #expect(log.ackedCommands.contains("resume_bug"))
    }
}
