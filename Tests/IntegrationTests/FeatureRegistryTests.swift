// FeatureRegistryTests: a second feature, registered beside proposals the way bug reports and asks will be,
// served whole over real sockets — its own command and role rules, topics with replay and presence, REST
// routes, `stats`, `/metrics` and a store migration of its own — and the registry's refusals (unknown topic
// kinds, wrong methods, roles, a migration version already taken).
import EventLoop
import Foundation
@testable import MedicHost
import Protocol
@testable import Store
import Testing
import TestSupport

/// Notes: `note {note, text}` stores an event on `note:<id>`; `GET /api/v1/notes/{id}` reads it back. It
/// depends on the `Publisher` seam only, as a real feature does, and declares a table of its own.
final class NoteFeature: Feature {
    let name = "notes"
    unowned let publisher: any Publisher
    private var count = 0
    let migrations: [Migration]

    /// The version of its table's migration: far above the store's own so that they never collide.
    static let migrationVersion = 1000

    init(publisher: any Publisher, migrationVersion: Int = NoteFeature.migrationVersion) {
        self.publisher = publisher
        migrations = [Migration(version: migrationVersion, name: "notes") { _ in "CREATE TABLE notes (id TEXT PRIMARY KEY, text TEXT NOT NULL)" }]
    }

    let commands = [CommandDeclaration(type: "note", roles: [.admin, .viewer], changesState: true)]
    let topics = [TopicDeclaration(instance: "note", collection: "notes", presence: true)]

    var routes: [RESTRoute] {
        [
            RESTRoute("GET", "api/v1/notes/*") { call in call.app.respondEvents(topic: "note:\(call.captures[0])", call) },
            RESTRoute("POST", "api/v1/notes", roles: [.admin]) { call in
                guard let body = call.app.jsonBody(call.request, on: call.connection) else { return }
                call.app.restCommand(.feature(type: "note", fields: body), id: call.commandID, principal: call.principal, status: 201, on: call.connection)
            },
        ]
    }

    func execute(_ message: ClientMessage, commandID: String?, principal: Principal, reply: @escaping CommandReply) {
        guard case .feature("note", let fields) = message, let id = fields["note"]?.stringValue, Topic.isValidProposalID(id),
            let text = fields["text"]?.stringValue, !text.isEmpty
        else {
            return reply(.failure(ProtocolError(code: .invalidMessage, message: "note needs note (an id) and text")))
        }
        var write = StoreWrite(events: [NewEvent(topic: "note:\(id)", kind: "note", data: JSONValue.object(["text": .string(text), "by": .string(principal.name)]).jsonString, ts: 1)])
        let ack: JSONObject = ["note": .string(id)]
        if let commandID { write.command = CommandRecord(principal: principal.name, commandId: commandID, response: String(decoding: ServerMessage.ack(id: commandID, fields: ack), as: UTF8.self)) }
        publisher.commit(write) { [weak self] result in
            switch result {
            case .success:
                self?.count += 1
                reply(.success(ack))
            case .failure(let error): reply(.failure(ProtocolError(code: .storeUnavailable, message: error.message)))
            }
        }
    }

    func stats() -> JSONObject { ["notes": .int(Int64(count))] }
    func metrics() -> [MetricSample] { [MetricSample("notes_total", "Notes stored.", type: "counter", value: Double(count), labels: [("kind", "a \"quoted\"\nlabel")])] }
}

private func http(_ port: UInt16, _ method: String, _ path: String, token: String?, body: String? = nil) throws -> (Int, String, [UInt8]) {
    let client = try TestClient(port: port)
    var text = "\(method) \(path) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    if let token { text += "Authorization: Bearer \(token)\r\n" }
    if let body { text += "Content-Length: \(body.utf8.count)\r\n\r\n\(body)" } else { text += "\r\n" }
    try client.write(Array(text.utf8))
    let (head, bytes) = try client.readHTTPResponse()
    return (Int(head.split(separator: " ")[1])!, head, bytes)
}

@Suite("A second feature registered beside proposals", .serialized)
struct FeatureRegistryTests {
    @Test func itsCommandsTopicsRoutesStatsAndMetricsAreServed() throws {
        let medic = try MedicHarness(extraFeatures: { app in [NoteFeature(publisher: app)] }) { _, _ in }
        defer { medic.stop() }
        let viewer = try medic.session(try medic.token("vera", role: "viewer"))
        let bot = try medic.session(try medic.token("botty", role: "bot"))
        // Its topics route like proposals' (replay from since, presence on instances).
        #expect(try viewer.call(["type": "subscribe", "topic": "note:n1", "since": 0])["type"] == "ack")
        var skipped: [JSONValue] = []
        let ack = try viewer.call(["type": "note", "note": "n1", "text": "first"], skipped: &skipped)
        #expect(ack["type"] == "ack" && ack["note"] == "n1")
        let isNote = { (m: JSONValue) in m["type"] == "event" && m["topic"] == "note:n1" }
        let event = try skipped.first(where: isNote) ?? viewer.until(10_000, isNote).last
        #expect(event?["seq"] == 1 && event?["data"]?["text"] == "first")
        // A later subscriber gets the stored event replayed from `since`.
        var botSkipped: [JSONValue] = []
        #expect(try bot.call(["type": "subscribe", "topic": "note:n1", "since": 0], skipped: &botSkipped)["type"] == "ack")
        let replayed = try botSkipped.first(where: isNote) ?? bot.until(10_000, isNote).last
        #expect(replayed?["seq"] == 1 && replayed?["data"]?["text"] == "first")
        let both = { (m: JSONValue) in m["type"] == "presence" && m["topic"] == "note:n1" && (m["members"]?.arrayValue?.count ?? 0) == 2 }
        if !skipped.contains(where: both) { #expect(try viewer.until(10_000, both).isEmpty == false) }
        // Its own role rules: a bot may not send it.
        let refused = try bot.call(["type": "note", "note": "n1", "text": "bot"])
        #expect(refused["type"] == "error" && refused["code"] == "forbidden")
        // A repeated id of its state-changing command is answered from the store, not run again.
        let once = try viewer.call(["type": "note", "id": "same", "note": "n2", "text": "x"])
        let twice = try viewer.call(["type": "note", "id": "same", "note": "n2", "text": "x"])
        #expect(once == twice)
        // stats merges every feature's figures; /metrics has its series (label escaped) and the pipeline's.
        let stats = try viewer.call(["type": "stats"])
        #expect(stats["notes"] == 2 && stats["proposals"] != nil)
        let (status, _, metrics) = try http(medic.port, "GET", "/metrics", token: nil)
        let text = String(decoding: metrics, as: UTF8.self)
        #expect(status == 200 && text.contains("medic_notes_total{kind=\"a \\\"quoted\\\"\\nlabel\"} 2") && text.contains("medic_pipeline_proposals 0"))
        // REST: its routes, their roles, 405 with Allow on a known path.
        let admin = try medic.token("ada", role: "admin")
        let botToken = try medic.token("bot2", role: "bot")
        let (got, _, body) = try http(medic.port, "GET", "/api/v1/notes/n1", token: admin)
        let events = try JSONValue.parse(body)["events"]?.arrayValue
        #expect(got == 200 && events?.count == 1)
        #expect(try http(medic.port, "POST", "/api/v1/notes", token: botToken, body: #"{"note":"n3","text":"t"}"#).0 == 403)
        #expect(try http(medic.port, "POST", "/api/v1/notes", token: admin, body: #"{"note":"n3","text":"t"}"#).0 == 201)
        let (method, head, _) = try http(medic.port, "DELETE", "/api/v1/notes/n1", token: admin)
        #expect(method == 405 && head.lowercased().contains("allow: get"))
        #expect(try http(medic.port, "GET", "/api/v1/notes/a%2Fb", token: admin).0 == 404)
        // Its migration ran once at startup, recorded under its own version beside the store's.
        let recorded = try medic.store.sync { medic.store.rawQuery("SELECT version, name FROM schema_migrations ORDER BY version", completion: $0) }
        #expect(recorded.last?[0].int == Int64(NoteFeature.migrationVersion) && recorded.last?[1].text == "notes")
        #expect(try medic.store.sync { medic.store.rawQuery("SELECT count(*) FROM notes", completion: $0) }.first?[0].int == 0)
    }

    @Test func aFeaturesMigrationAppliesOnceAcrossRestarts() throws {
        let first = try MedicHarness(extraFeatures: { app in [NoteFeature(publisher: app)] }) { _, _ in }
        _ = try first.store.sync { first.store.rawQuery("INSERT INTO notes (id, text) VALUES ('kept', 'x')", completion: $0) }
        first.stop()
        // A restart on the same data does not run the step again (the row survives; CREATE TABLE would fail).
        let second = try MedicHarness(directory: first.directory, extraFeatures: { app in [NoteFeature(publisher: app)] }) { _, _ in }
        defer { second.stop() }
        #expect(try second.store.sync { second.store.rawQuery("SELECT text FROM notes WHERE id = 'kept'", completion: $0) }.first?[0].text == "x")
    }

    @Test func aMigrationVersionAlreadyTakenStopsStartup() throws {
        // Version 3 is the code index's: two steps under one number would leave one unapplied somewhere.
        let error = #expect(throws: StoreError.self) {
            _ = try MedicHarness(extraFeatures: { app in [NoteFeature(publisher: app, migrationVersion: 3)] }) { _, _ in }
        }
        #expect(error?.description.contains("version 3 is declared twice") == true, "\(String(describing: error))")
    }

    @Test func unknownTopicKindsAndCommandsAreRefused() throws {
        let medic = try MedicHarness { _, _ in }
        defer { medic.stop() }
        let admin = try medic.session(try medic.token("ada", role: "admin"))
        for topic in ["note:n1", "notes", "widget:w-1", "PROPOSAL:x", ":x", "a:", "proposal:" + String(repeating: "a", count: 65), "prop\u{00e9}sal:x"] {
            let answer = try admin.call(["type": "subscribe", "topic": .string(topic)])
            #expect(answer["type"] == "error" && answer["code"] == "invalid_message", "\(topic)")
        }
        let forms = try admin.call(["type": "subscribe", "topic": "notes"])["message"]?.stringValue ?? ""
        #expect(forms.contains("bugs, incidents, proposals") && forms.contains("bug:<id>, incident:<id>, proposal:<id>"), "\(forms)")
        // A feature's command that is not registered is an unknown type, as before.
        #expect(try admin.call(["type": "note", "note": "n1", "text": "x"])["code"] == "unknown_type")
        #expect(try admin.call(["type": "subscribe", "topic": "proposals"])["type"] == "ack")
    }
}
