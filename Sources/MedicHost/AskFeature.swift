// AskFeature: questions answered from the configured sources and Medic's own store — `ask` (admins, bots),
// `mark_answer` (admins), topics `ask:<id>` / `asks`, REST /api/v1/ask, /api/v1/asks…, /api/v1/sources…,
// /api/v1/admin/query-audit. The work is `AskService`'s; the sources are `SourceRegistry`'s.
public import EventLoop
import HTTP1
public import Logging
import Pipeline
public import Protocol
import QuerySources
import Server
public import Store

public final class AskFeature: Feature {
    public let name = "asks"
    let service: AskService
    let sources: SourceRegistry

    /// Builds the sources and the service and fails the asks a restart interrupted. Call after the store's
    /// migrations ran (the `medic` source reads migration 5's views).
    public init(
        loop: EventLoop, store: Store, publisher: any Publisher, configuration: MedicConfiguration, model: any LanguageModel, clock: any WorkflowClock,
        search: ((String, String, String, Int, @escaping (Result<JSONValue, ProtocolError>) -> Void) -> Void)?, logger: Logger
    ) throws {
        sources = SourceRegistry(configuration: configuration, loop: loop)
        service = AskService(
            sink: publisher, store: store, loop: loop, sources: sources, model: model, clock: clock, searchRepo: configuration.repositories.first?.name,
            logger: logger)
        service.search = search
        try service.recover(interruptThinking: configuration.nodesAliveAtStart.isEmpty)
    }

    deinit { sources.closeAll() }

    public let commands: [CommandDeclaration] = [
        CommandDeclaration(type: "ask", roles: [.admin, .bot], changesState: true),
        CommandDeclaration(type: "mark_answer", roles: [.admin], changesState: true),
    ]

    public let topics = [TopicDeclaration(instance: "ask", collection: "asks", presence: true)]

    public func execute(_ message: ClientMessage, commandID: String?, principal: Principal, reply: @escaping CommandReply) {
        guard case .feature(let type, let fields) = message else {
            return reply(.failure(ProtocolError(code: .invalidMessage, message: "\(message.type) is not an ask command")))
        }
        let refuse = { (text: String) in reply(.failure(ProtocolError(code: .invalidMessage, message: text, id: commandID))) }
        switch type {
        case "ask":
            switch Self.validateAsk(fields, sources: sources.names, defaultSource: sources.defaultName) {
            case .success(let (question, source)): service.ask(question: question, source: source, commandID: commandID, principal: principal, reply: reply)
            case .failure(let refusal): refuse(refusal.message)
            }
        case "mark_answer":
            guard let id = fields["ask"]?.stringValue, Topic.isValidProposalID(id) else { return refuse("field 'ask' must be an ask id") }
            guard let correct = fields["correct"]?.boolValue else { return refuse("field 'correct' must be true or false") }
            var comment: String?
            if let value = fields["comment"], value != .null {
                guard let text = value.stringValue else { return refuse("field 'comment' must be a string") }
                guard text.count <= AskService.limits.commentCharacters else { return refuse("field 'comment' is longer than \(AskService.limits.commentCharacters) characters") }
                comment = text
            }
            service.mark(ask: id, correct: correct, comment: comment, commandID: commandID, principal: principal, reply: reply)
        default:
            refuse("\(type) is not an ask command")
        }
    }

    /// `mark_answer` runs where the ask's lease is (several nodes).
    public func leasedInstance(of message: ClientMessage) -> String? {
        guard case .feature("mark_answer", let fields) = message, let id = fields["ask"]?.stringValue, Topic.isValidProposalID(id) else { return nil }
        return "ask:\(id)"
    }

    public func resume(_ topic: String, from node: String) { service.resume(String(topic.dropFirst("ask:".count)), from: node) }
    public func leaseLost(_ topic: String) { service.leaseLost(String(topic.dropFirst("ask:".count))) }

    /// Validates `ask {question, source?}` (limits in protocol/README.md, "Ask").
    static func validateAsk(_ fields: JSONObject, sources: [String], defaultSource: String) -> Result<(String, String), ReportRefusal> {
        guard let raw = fields["question"]?.stringValue else { return .failure(ReportRefusal("field 'question' must be a string")) }
        // Counted before trimming too: a 100 KB question is refused without walking it twice.
        guard raw.utf8.count <= AskService.limits.questionCharacters * 4 else {
            return .failure(ReportRefusal("field 'question' is longer than \(AskService.limits.questionCharacters) characters"))
        }
        let question = raw.trimmingWhitespace()
        guard !question.isEmpty else { return .failure(ReportRefusal("field 'question' must not be empty")) }
        guard question.count <= AskService.limits.questionCharacters else {
            return .failure(ReportRefusal("field 'question' is longer than \(AskService.limits.questionCharacters) characters"))
        }
        var source = defaultSource
        if let value = fields["source"], value != .null {
            guard let name = value.stringValue, sources.contains(name) else {
                let shown = value.stringValue.map { "'\(String($0.prefix(64)))'" } ?? "that"
                return .failure(ReportRefusal("unknown source \(shown); configured: \(sources.joined(separator: ", "))"))
            }
            source = name
        }
        return .success((question, source))
    }

    public func stats() -> JSONObject { service.stats() }

    public func metrics() -> [MetricSample] {
        service.stats().members.sorted { $0.key < $1.key }.compactMap { key, value in
            guard case .int(let n) = value else { return nil }
            return MetricSample(key, "Asks in this status (\(key)).", value: Double(n))
        }
    }

    public var routes: [RESTRoute] {
        let sources = self.sources
        let service = self.service
        return [
            RESTRoute("POST", "api/v1/ask") { call in
                guard let body = call.app.jsonBody(call.request, on: call.connection) else { return }
                call.app.restCommand(.feature(type: "ask", fields: body), id: call.commandID, principal: call.principal, status: 201, on: call.connection)
            },
            RESTRoute("GET", "api/v1/asks") { call in
                let query = call.request.queryItems()
                let limit = min(max(Int(query["limit"] ?? "") ?? 100, 1), 1000)
                let store = call.app.store
                call.app.readStore(on: call.connection, { store.workflows(kind: "ask", status: query["status"], limit: limit, completion: $0) }) { rows in
                    .object(["asks": .array(rows.map(AskService.summary(row:)))])
                }
            },
            RESTRoute("GET", "api/v1/asks/*") { call in
                let store = call.app.store
                call.app.readStore(on: call.connection, { store.workflow(id: call.captures[0], completion: $0) }) { row in
                    guard let row, row.kind == "ask" else { return nil }
                    return AskService.detail(row: row)
                } notFound: {
                    ProtocolError(code: .notFound, message: "no ask \(call.captures[0])")
                }
            },
            RESTRoute("GET", "api/v1/asks/*/events") { call in call.app.respondEvents(topic: "ask:\(call.captures[0])", call) },
            RESTRoute("POST", "api/v1/asks/*/mark") { call in
                guard var body = call.app.jsonBody(call.request, on: call.connection) else { return }
                body["ask"] = .string(call.captures[0])
                call.app.restCommand(.feature(type: "mark_answer", fields: body), id: call.commandID, principal: call.principal, status: 200, on: call.connection)
            },
            RESTRoute("GET", "api/v1/sources", roles: [.admin, .bot]) { call in
                let refresh = call.request.queryItems()["refresh"] == "1"
                Self.describe(sources, names: sources.names[...], refresh: refresh, out: []) { list in
                    guard !call.connection.isClosed else { return }
                    call.app.respondJSON(200, JSONValue.object(["sources": .array(list)]).bytes, on: call.connection)
                }
            },
            RESTRoute("POST", "api/v1/sources/*/query", roles: [.admin, .bot]) { call in
                guard let source = sources.handle(call.captures[0]) else {
                    return call.app.respondError(
                        ProtocolError(code: .notFound, message: "unknown source '\(call.captures[0])'; configured: \(sources.names.joined(separator: ", "))"),
                        on: call.connection)
                }
                guard let body = call.app.jsonBody(call.request, on: call.connection) else { return }
                service.structuredQuery(.object(body), source: source, principal: call.principal) { result in
                    guard !call.connection.isClosed else { return }
                    switch result {
                    case .success(let (compiled, rows)):
                        var shown = rows.json.objectValue ?? [:]
                        shown["masked"] = shown["masked_columns"]
                        shown["masked_columns"] = nil
                        call.app.respondJSON(200, JSONValue.object([
                            "sql": .string(compiled.sql), "parameters": .array(compiled.parameters), "result": .object(shown),
                        ]).bytes, on: call.connection)
                    case .failure(let refusal):
                        let code: ErrorCode = refusal.code == .unavailable ? .storeUnavailable : .invalidMessage
                        call.app.respondError(ProtocolError(code: code, message: "\(refusal.code.rawValue): \(refusal.message)"), on: call.connection)
                    }
                }
            },
            RESTRoute("GET", "api/v1/admin/query-audit", roles: [.admin]) { call in
                let limit = min(max(Int(call.request.queryItems()["limit"] ?? "") ?? 100, 1), 1000)
                let store = call.app.store
                call.app.readStore(on: call.connection, { store.queryAudit(limit: limit, completion: $0) }) { rows in
                    .object(["audit": .array(rows.map(Self.auditJSON))])
                }
            },
        ]
    }

    static func auditJSON(_ a: QueryAuditRow) -> JSONValue {
        func text(_ s: String?) -> JSONValue { s.map { JSONValue.string($0) } ?? .null }
        func int(_ n: Int?) -> JSONValue { n.map { JSONValue.int(Int64($0)) } ?? .null }
        var o: JSONObject = ["id": .int(a.id), "ts": .int(a.ts), "principal": .string(a.principal), "ask": text(a.askId)]
        o["source"] = .string(a.source)
        o["question"] = text(a.question)
        o["sql"] = .string(a.sql)
        o["row_count"] = int(a.rowCount)
        o["duration_ms"] = int(a.durationMs)
        o["refusal_code"] = text(a.refusalCode)
        o["refusal_reason"] = text(a.refusalReason)
        return .object(o)
    }

    /// Each source's schema in turn (cached); a source that is down says so instead of failing the list.
    static func describe(_ sources: SourceRegistry, names: ArraySlice<String>, refresh: Bool, out: [JSONValue], done: @escaping ([JSONValue]) -> Void) {
        guard let name = names.first, let handle = sources.handle(name) else { return done(out) }
        handle.tables(refresh: refresh) { result in
            var entry: JSONObject = ["name": .string(name), "kind": .string(handle.kind)]
            switch result {
            case .success(let tables): entry["tables"] = .array(tables.map(\.json))
            case .failure(let refusal):
                entry["tables"] = .array([])
                entry["error"] = .string(refusal.message)
            }
            describe(sources, names: names.dropFirst(), refresh: refresh, out: out + [.object(entry)], done: done)
        }
    }
}
