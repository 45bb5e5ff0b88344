// AskService: questions in plain language answered from a source (see `SourceRegistry`) by the model with
// tools, in at most `AskTools.maxRounds` rounds. Like BugService it stores each step before anyone sees it:
// the ask's row in `workflows` (kind "ask", its record in `doc`) with its events on `ask:<id>` and the
// summary on `asks`, one store write in flight per ask. The model's final JSON names the SELECT its answer
// comes from; that statement is run again through the same source and the `answer` event carries the
// database's rows, never the model's numbers. Every statement run or refused is audited (`query_audit`).
import EventLoop
import Foundation
import Logging
import Pipeline
import Protocol
import QuerySources
import Store

/// An ask's stored record (`workflows.doc`, version 1).
struct AskRecord {
    enum Status: String { case thinking, answered, failed }

    var id: String
    var question: String
    var source: String
    var author: String
    var status: Status = .thinking
    var reason: String?
    /// Every statement: {round, sql, result summary | refusal}.
    var steps: [JSONValue] = []
    var answer: JSONValue?
    var mark: JSONValue?

    var json: JSONValue {
        var o: JSONObject = [
            "version": 1, "id": .string(id), "question": .string(question), "source": .string(source), "author": .string(author),
            "status": .string(status.rawValue), "steps": .array(steps),
        ]
        if let reason { o["reason"] = .string(reason) }
        if let answer { o["answer"] = answer }
        if let mark { o["mark"] = mark }
        return .object(o)
    }

    static func load(_ doc: String) -> AskRecord? {
        guard let value = try? JSONValue.parse(doc, limits: App.storedJSONLimits), case .object(let o) = value,
            o["version"]?.intValue == 1, let id = o["id"]?.stringValue, let question = o["question"]?.stringValue,
            let source = o["source"]?.stringValue, let author = o["author"]?.stringValue,
            let status = o["status"]?.stringValue.flatMap(Status.init(rawValue:))
        else { return nil }
        var record = AskRecord(id: id, question: question, source: source, author: author, status: status)
        record.reason = o["reason"]?.stringValue
        record.steps = o["steps"]?.arrayValue ?? []
        record.answer = o["answer"].flatMap { $0 == .null ? nil : $0 }
        record.mark = o["mark"].flatMap { $0 == .null ? nil : $0 }
        return record
    }
}

/// One ask in memory: its record and its write queue.
final class AskRuntime {
    var record: AskRecord
    let createdAt: Int64
    var queue: [(write: StoreWrite, command: PendingCommand?, done: (Bool) -> Void)] = []
    var writing = false

    init(record: AskRecord, createdAt: Int64) {
        self.record = record
        self.createdAt = createdAt
    }

    var topic: String { "ask:\(record.id)" }
}

public final class AskService {
    let sink: any Publisher
    let store: Store
    let loop: EventLoop
    let logger: Logger
    let sources: SourceRegistry
    let model: any LanguageModel
    let clock: any WorkflowClock
    /// The navigator's search (repository, mode, query, limit), when configured; asks search the first repository.
    var search: ((String, String, String, Int, @escaping (Result<JSONValue, ProtocolError>) -> Void) -> Void)?
    let searchRepo: String?
    var runtimes: [String: AskRuntime] = [:]
    var counts: [String: Int] = [:]
    /// Where asks say they run on this node (the App, on several nodes; App+Leases.swift).
    weak var leases: (any WorkflowLeases)?

    init(sink: any Publisher, store: Store, loop: EventLoop, sources: SourceRegistry, model: any LanguageModel, clock: any WorkflowClock,
         searchRepo: String?, logger: Logger) {
        self.sink = sink
        self.store = store
        self.loop = loop
        self.sources = sources
        self.model = model
        self.clock = clock
        self.searchRepo = searchRepo
        self.logger = logger
    }

    static let limits = (questionCharacters: 4000, commentCharacters: 2000, shownRows: 50, answerRows: 1000)

    /// At startup (blocking; before the loop runs): the figures, and every ask that was thinking is failed
    /// ("interrupted by a restart") once the loop runs.
    func recover(interruptThinking: Bool = true) throws {
        counts = try store.sync { store.workflowCounts(kind: "ask", completion: $0) }
        guard interruptThinking else { return }   // other nodes are running: their asks are theirs
        let rows = try store.sync { store.workflows(kind: "ask", statuses: [AskRecord.Status.thinking.rawValue], completion: $0) }
        for row in rows {
            guard let record = AskRecord.load(row.doc) else { continue }
            let runtime = AskRuntime(record: record, createdAt: row.createdAt)
            runtimes[record.id] = runtime
            _ = loop.schedule(afterNanoseconds: 0) { [weak self] in self?.fail(runtime, reason: "interrupted by a restart") }
        }
    }

    // MARK: commands

    func ask(question: String, source: String, commandID: String?, principal: Principal, reply: @escaping CommandReply) {
        let id = Self.newAskID()
        let runtime = AskRuntime(record: AskRecord(id: id, question: question, source: source, author: principal.name), createdAt: clock.nowMilliseconds())
        runtimes[id] = runtime
        leases?.hold(runtime.topic, repo: "")
        let command = PendingCommand(principal: principal.name, id: commandID, ackFields: ["ask": .string(id), "status": "thinking"], reply: reply)
        enqueue(runtime, events: [
            ("ask_created", ["id": .string(id), "question": .string(question), "source": .string(source), "author": .string(principal.name)]),
            ("status_changed", ["status": "thinking"]),
        ], summary: true, command: command) { [weak self] stored in
            guard let self else { return }
            guard stored else {
                self.runtimes[id] = nil
                self.leases?.release(runtime.topic)
                return
            }
            self.counts["thinking", default: 0] += 1
            self.start(runtime)
        }
    }

    func mark(ask id: String, correct: Bool, comment: String?, commandID: String?, principal: Principal, reply: @escaping CommandReply) {
        withRuntime(id) { [weak self] runtime in
            guard let self else { return }
            guard let runtime else { return reply(.failure(ProtocolError(code: .notFound, message: "no ask \(id)"))) }
            guard runtime.record.status == .answered, let sql = runtime.record.answer?["sql"]?.stringValue else {
                return reply(.failure(ProtocolError(code: .invalidState, message: "ask \(id) has no answer to mark (it is \(runtime.record.status.rawValue))")))
            }
            let now = self.clock.nowMilliseconds()
            var mark: JSONObject = ["correct": .bool(correct), "by": .string(principal.name), "ts": .int(now)]
            if let comment { mark["comment"] = .string(comment) }
            runtime.record.mark = .object(mark)
            var write = StoreWrite()
            write.askMemories = [AskMemoryRow(askId: id, question: runtime.record.question, sql: sql, correct: correct, comment: comment, principal: principal.name, ts: now)]
            let command = PendingCommand(principal: principal.name, id: commandID, ackFields: ["ask": .string(id), "status": "answered"], reply: reply)
            self.enqueue(runtime, events: [], summary: false, command: command, extra: write) { _ in }
        }
    }

    /// This node claimed the ask's lease after `node` let it expire: an ask that was thinking there (its model
    /// request died with that node) fails as interrupted, as after a restart; one that had finished leaves memory.
    func resume(_ id: String, from node: String) {
        guard runtimes[id] == nil else { return }
        withRuntime(id) { [weak self] runtime in
            guard let self else { return }
            guard let runtime, runtime.record.status == .thinking else {
                self.runtimes[id] = nil
                self.leases?.release("ask:\(id)")
                return
            }
            self.fail(runtime, reason: "interrupted: node \(node) stopped while it was thinking")
        }
    }

    /// Another node holds the ask now: the resident copy goes unless a write of it is in flight here (logged).
    func leaseLost(_ id: String) {
        guard let runtime = runtimes[id] else { return }
        if runtime.queue.isEmpty && !runtime.writing && runtime.record.status != .thinking {
            runtimes[id] = nil
        } else {
            logger.error("ask \(id) moved to another node while work on it was in flight here")
        }
    }

    func withRuntime(_ id: String, _ body: @escaping (AskRuntime?) -> Void) {
        if let runtime = runtimes[id] { return body(runtime) }
        let bound = LoopBound({ [weak self] (result: Result<WorkflowRow?, StoreError>) in
            guard let self else { return }
            if let runtime = self.runtimes[id] { return body(runtime) }
            guard case .success(let row?) = result, row.kind == "ask", let record = AskRecord.load(row.doc) else { return body(nil) }
            let runtime = AskRuntime(record: record, createdAt: row.createdAt)
            self.runtimes[id] = runtime
            body(runtime)
        }, loop: loop)
        store.workflow(id: id) { result in bound.hop { $0(result) } }
    }

    // MARK: storing (one write in flight per ask)

    /// Queues a write of the ask's current record with `events` (on `ask:<id>`), the `asks` summary when
    /// `summary`, the command's idempotency record and `extra` rows; `done(true)` once it is durable.
    private func enqueue(
        _ runtime: AskRuntime, events: [(String, JSONObject)], summary: Bool, command: PendingCommand? = nil, extra: StoreWrite = StoreWrite(),
        done: @escaping (Bool) -> Void = { _ in }
    ) {
        let now = clock.nowMilliseconds()
        var write = extra
        for (kind, data) in events { write.events.append(NewEvent(topic: runtime.topic, kind: kind, data: JSONValue.object(data).jsonString, ts: now)) }
        let r = runtime.record
        write.workflows = [WorkflowRow(
            kind: "ask", id: r.id, repo: r.source, title: r.question, status: r.status.rawValue, author: r.author, createdAt: runtime.createdAt,
            updatedAt: now, doc: r.json.jsonString)]
        if summary {
            write.events.append(NewEvent(topic: "asks", kind: "ask", data: Self.summary(r, createdAt: runtime.createdAt, updatedAt: now).jsonString, ts: now))
        }
        if let command, let id = command.id {
            write.command = CommandRecord(principal: command.principal, commandId: id, response: PipelineService.ackText(id, command.ackFields))
        }
        runtime.queue.append((write, command, done))
        drain(runtime)
    }

    private func drain(_ runtime: AskRuntime) {
        guard !runtime.writing else { return }
        guard !runtime.queue.isEmpty else {
            // A finished ask whose writes are all durable leaves memory (`withRuntime` loads it again when named).
            if runtime.record.status != .thinking, runtimes[runtime.record.id] === runtime {
                runtimes[runtime.record.id] = nil
                leases?.release(runtime.topic)
            }
            return
        }
        let (write, command, done) = runtime.queue.removeFirst()
        runtime.writing = true
        commit(runtime, write, command: command, done: done, attempt: 0)
    }

    private func commit(_ runtime: AskRuntime, _ write: StoreWrite, command: PendingCommand?, done: @escaping (Bool) -> Void, attempt: Int) {
        sink.commit(write) { [weak self] result in
            guard let self else { return }
            switch result {
            case .success(.committed):
                command?.reply(.success(command?.ackFields ?? [:]))
                runtime.writing = false
                done(true)
            case .success(.duplicateCommand(let response)):
                command?.reply(.success(PipelineService.fields(ofAck: response)))
                runtime.writing = false
                done(false)
            case .failure(let error):
                if let command {
                    command.reply(.failure(ProtocolError(code: .storeUnavailable, message: error.message)))
                    runtime.writing = false
                    done(false)
                } else {
                    let delay = min(UInt64(1) << UInt64(min(attempt, 4)), 10)
                    self.logger.error("storing ask \(runtime.record.id)'s progress failed (\(error)); retrying in \(delay)s")
                    _ = self.loop.schedule(afterNanoseconds: delay * 1_000_000_000) {
                        self.commit(runtime, write, command: command, done: done, attempt: attempt + 1)
                    }
                    return
                }
            }
            self.drain(runtime)
        }
    }

    private func publish(_ runtime: AskRuntime, _ kind: String, _ data: JSONObject) {
        enqueue(runtime, events: [(kind, data)], summary: false)
    }

    private func audit(_ runtime: AskRuntime?, principal: String, source: String, sql: String, result: Result<QueryResult, QueryRefusal>) {
        var write = StoreWrite()
        write.audits = [Self.auditRow(
            ts: clock.nowMilliseconds(), principal: principal, askId: runtime?.record.id, source: source, question: runtime?.record.question, sql: sql,
            result: result)]
        sink.commit(write) { [logger] outcome in
            if case .failure(let error) = outcome { logger.error("could not store the audit row of a statement on \(source): \(error)") }
        }
    }

    static func auditRow(ts: Int64, principal: String, askId: String?, source: String, question: String?, sql: String, result: Result<QueryResult, QueryRefusal>) -> QueryAuditRow {
        switch result {
        case .success(let r):
            QueryAuditRow(ts: ts, principal: principal, askId: askId, source: source, question: question, sql: sql, rowCount: r.rowCount, durationMs: r.durationMs, refusalCode: nil, refusalReason: nil)
        case .failure(let refusal):
            QueryAuditRow(ts: ts, principal: principal, askId: askId, source: source, question: question, sql: sql, rowCount: nil, durationMs: nil, refusalCode: refusal.code.rawValue, refusalReason: refusal.message)
        }
    }

    /// Runs a statement of a structured REST query and audits it (no ask).
    func structuredQuery(_ request: JSONValue, source: SourceHandle, principal: Principal, done: @escaping (Result<(CompiledQuery, QueryResult), QueryRefusal>) -> Void) {
        source.structured(request) { [weak self] result, compiled in
            if let compiled { self?.audit(nil, principal: principal.name, source: source.name, sql: compiled.sql, result: result.map(\.1)) }
            done(result)
        }
    }

    // MARK: the model loop

    private func start(_ runtime: AskRuntime) {
        guard let source = sources.handle(runtime.record.source) else {
            return fail(runtime, reason: "source '\(runtime.record.source)' is not configured on this server")
        }
        let bound = LoopBound({ [weak self] (result: Result<[AskMemoryRow], StoreError>) in
            guard let self else { return }
            let found = ((try? result.get()) ?? []).map { (question: $0.question, sql: $0.sql, correct: $0.correct, comment: $0.comment) }
            let system = AskTools.system(source: source.name, kind: source.kind, memories: found)
            self.think(runtime, source: source, system: system, round: 1, messages: [ModelMessage(.user, runtime.record.question)], reasked: false)
        }, loop: loop)
        store.similarAskMemories(runtime.record.question, limit: 3) { result in bound.hop { $0(result) } }
    }

    private func think(_ runtime: AskRuntime, source: SourceHandle, system: String, round: Int, messages: [ModelMessage], reasked: Bool) {
        guard runtime.record.status == .thinking else { return }
        let tools = round < AskTools.maxRounds ? AskTools.definitions(search: search != nil && searchRepo != nil) : []
        let request = ModelRequest(
            system: system, messages: messages, tools: tools,
            labels: ["purpose": "ask", "title": runtime.record.question, "ask": runtime.record.id, "attempt": reasked ? "2" : "1"])
        model.complete(request, onDelta: { [weak self] delta in
            guard case .text(let text) = delta else { return }
            self?.sink.publishEphemeral(topic: runtime.topic, kind: "ask_thinking", data: ["round": .int(Int64(round)), "text": .string(text)])
        }) { [weak self] result in
            guard let self, runtime.record.status == .thinking else { return }
            switch result {
            case .failure(let error):
                self.fail(runtime, reason: "the model failed: \(error.description)")
            case .success(let response) where !response.toolUses.isEmpty && round < AskTools.maxRounds:
                self.runTools(runtime, source: source, round: round, calls: response.toolUses[...], results: []) { results in
                    let next = messages + [ModelMessage(role: .assistant, content: response.content), ModelMessage(role: .user, content: results)]
                    self.think(runtime, source: source, system: system, round: round + 1, messages: next, reasked: reasked)
                }
            case .success(let response):
                switch AskFinalReply.parse(response.text) {
                case .success(let final):
                    self.answer(runtime, source: source, round: round, final: final)
                case .failure(let why) where !reasked:
                    self.logger.info("ask \(runtime.record.id): malformed final reply (\(why.message)); asking once more")
                    let next = messages + [
                        ModelMessage(.assistant, response.text.isEmpty ? "(no text)" : response.text),
                        ModelMessage(.user, "Your reply could not be used: \(why.message). Reply with exactly one JSON object {\"answer\": \"…\", \"sql\": \"…\"} and nothing else."),
                    ]
                    self.think(runtime, source: source, system: system, round: min(round + 1, AskTools.maxRounds), messages: next, reasked: true)
                case .failure(let why):
                    self.fail(runtime, reason: "the model's final reply was not usable: \(why.message)")
                }
            }
        }
    }

    private func runTools(
        _ runtime: AskRuntime, source: SourceHandle, round: Int, calls: ArraySlice<(id: String, name: String, input: JSONValue)>, results: [ModelContent],
        done: @escaping ([ModelContent]) -> Void
    ) {
        guard let call = calls.first else { return done(results) }
        runTool(runtime, source: source, round: round, name: call.name, input: call.input) { [weak self] text, isError in
            self?.runTools(runtime, source: source, round: round, calls: calls.dropFirst(),
                           results: results + [.toolResult(toolUseID: call.id, content: CodeTools.bounded(text), isError: isError)], done: done)
        }
    }

    private func runTool(_ runtime: AskRuntime, source: SourceHandle, round: Int, name: String, input: JSONValue, done: @escaping (String, Bool) -> Void) {
        let r = JSONValue.int(Int64(round))
        switch name {
        case "run_sql":
            guard let sql = input["sql"]?.stringValue, !sql.isEmpty else { return done("'sql' must be a non-empty string", true) }
            execute(runtime, source: source, round: round, sql: sql, parameters: []) { result in
                switch result {
                case .success(let rows): done(Self.shown(rows).jsonString, false)
                case .failure(let refusal): done("refused (\(refusal.code.rawValue)): \(refusal.message)", true)
                }
            }
        case "list_tables":
            publish(runtime, "tool_called", ["round": r, "name": .string(name), "input": input])
            source.tables { result in
                switch result {
                case .success(let tables):
                    done(JSONValue.array(tables.map { .object(["name": .string($0.name), "row_estimate": .int(Int64($0.rowEstimate))]) }).jsonString, false)
                case .failure(let refusal): done(refusal.message, true)
                }
            }
        case "describe_table":
            publish(runtime, "tool_called", ["round": r, "name": .string(name), "input": input])
            guard let table = input["table"]?.stringValue else { return done("'table' must be a string", true) }
            source.tables { result in
                switch result {
                case .success(let tables):
                    guard let info = tables.first(where: { $0.name == table }) else {
                        return done("no table '\(String(table.prefix(64)))'; the tables are \(tables.map(\.name).joined(separator: ", "))", true)
                    }
                    done(info.json.jsonString, false)
                case .failure(let refusal): done(refusal.message, true)
                }
            }
        case "structured_query":
            publish(runtime, "tool_called", ["round": r, "name": .string(name), "input": input])
            source.tables { [weak self] result in
                guard let self else { return }
                let compiled = result.flatMap { StructuredQuery.compile(input, tables: $0, dialect: source.kind == "postgres" ? .postgres : .sqlite, maxLimit: source.policy.maxRows) }
                switch compiled {
                case .failure(let refusal): done("refused (\(refusal.code.rawValue)): \(refusal.message)", true)
                case .success(let query):
                    self.execute(runtime, source: source, round: round, sql: query.sql, parameters: query.parameters) { result in
                        switch result {
                        case .success(let rows): done(Self.shown(rows).jsonString, false)
                        case .failure(let refusal): done("refused (\(refusal.code.rawValue)): \(refusal.message)", true)
                        }
                    }
                }
            }
        case "search_code":
            publish(runtime, "tool_called", ["round": r, "name": .string(name), "input": input])
            guard let search, let repo = searchRepo else { return done("search_code is not available here", true) }
            guard let query = input["query"]?.stringValue, !query.isEmpty, query.utf8.count <= 4000 else {
                return done("'query' must be a non-empty string of at most 4000 bytes", true)
            }
            let mode = input["mode"]?.stringValue ?? "find"
            guard CodeTools.modes.contains(mode) else { return done("'mode' must be one of \(CodeTools.modes.joined(separator: ", "))", true) }
            search(repo, mode, query, 8) { result in
                switch result {
                case .success(let json): done(json.jsonString, false)
                case .failure(let error): done(error.message, true)
                }
            }
        default:
            done("unknown tool '\(String(name.prefix(64)))'", true)
        }
    }

    /// `sql_proposed`, the statement through the source, the audit row, then `sql_result` or `sql_refused`.
    private func execute(
        _ runtime: AskRuntime, source: SourceHandle, round: Int, sql: String, parameters: [JSONValue], done: @escaping (Result<QueryResult, QueryRefusal>) -> Void
    ) {
        let shownSQL = String(sql.prefix(16 << 10))
        publish(runtime, "sql_proposed", ["round": .int(Int64(round)), "sql": .string(shownSQL), "source": .string(source.name)])
        source.run(sql, parameters: parameters) { [weak self] result in
            guard let self else { return }
            self.audit(runtime, principal: runtime.record.author, source: source.name, sql: shownSQL, result: result)
            switch result {
            case .success(let rows):
                var data = Self.shown(rows).objectValue ?? [:]
                data["round"] = .int(Int64(round))
                self.publish(runtime, "sql_result", data)
                runtime.record.steps.append(.object([
                    "round": .int(Int64(round)), "sql": .string(shownSQL),
                    "result": .object(["columns": .array(rows.columns.map { .string($0) }), "row_count": .int(Int64(rows.rowCount)),
                                       "truncated": .bool(rows.truncated), "duration_ms": .int(Int64(rows.durationMs))]),
                ]))
            case .failure(let refusal):
                self.publish(runtime, "sql_refused", ["round": .int(Int64(round)), "sql": .string(shownSQL), "code": .string(refusal.code.rawValue), "reason": .string(refusal.message)])
                runtime.record.steps.append(.object([
                    "round": .int(Int64(round)), "sql": .string(shownSQL),
                    "refusal": .object(["code": .string(refusal.code.rawValue), "reason": .string(refusal.message)]),
                ]))
            }
            done(result)
        }
    }

    /// The final answer: its SQL run through the source; the rows shown are the database's.
    private func answer(_ runtime: AskRuntime, source: SourceHandle, round: Int, final: AskFinalReply) {
        execute(runtime, source: source, round: round, sql: final.sql, parameters: []) { [weak self] result in
            guard let self else { return }
            switch result {
            case .failure(let refusal):
                self.fail(runtime, reason: "the answer's SQL was refused (\(refusal.code.rawValue)): \(refusal.message)")
            case .success(let rows):
                var data: JSONObject = [
                    "text": .string(final.answer), "sql": .string(final.sql), "columns": .array(rows.columns.map { .string($0) }),
                    "rows": .array(rows.rows.prefix(Self.limits.answerRows).map { .array($0) }), "row_count": .int(Int64(rows.rowCount)),
                    "truncated": .bool(rows.truncated || rows.rows.count > Self.limits.answerRows),
                ]
                if rows.columns.count == 1, rows.rows.count == 1, let cell = rows.rows[0].first { data["value"] = cell }
                if rows.columns.count == 2, !rows.rows.isEmpty, rows.rows.allSatisfy({ row in
                    row.count == 2 && row[0].stringValue != nil && { if case .int = row[1] { true } else if case .number = row[1] { true } else { false } }()
                }) {
                    data["chart"] = .object(["label_column": .string(rows.columns[0]), "value_column": .string(rows.columns[1])])
                }
                runtime.record.answer = .object(data)
                runtime.record.status = .answered
                self.counts["thinking", default: 1] -= 1
                self.counts["answered", default: 0] += 1
                self.enqueue(runtime, events: [("answer", data), ("status_changed", ["status": "answered"])], summary: true)
            }
        }
    }

    func fail(_ runtime: AskRuntime, reason: String) {
        guard runtime.record.status == .thinking else { return }
        runtime.record.status = .failed
        runtime.record.reason = reason
        counts["thinking", default: 1] -= 1
        counts["failed", default: 0] += 1
        enqueue(runtime, events: [("ask_failed", ["reason": .string(reason)]), ("status_changed", ["status": "failed", "reason": .string(reason)])], summary: true)
    }

    /// `sql_result`'s form: at most 50 rows shown.
    static func shown(_ r: QueryResult) -> JSONValue {
        .object([
            "columns": .array(r.columns.map { .string($0) }), "rows": .array(r.rows.prefix(limits.shownRows).map { .array($0) }),
            "row_count": .int(Int64(r.rowCount)), "truncated": .bool(r.truncated || r.rows.count > limits.shownRows),
            "duration_ms": .int(Int64(r.durationMs)), "masked": .array(r.maskedColumns.map { .string($0) }),
        ])
    }

    // MARK: reads

    static func summary(_ r: AskRecord, createdAt: Int64, updatedAt: Int64) -> JSONValue {
        .object([
            "id": .string(r.id), "question": .string(r.question), "source": .string(r.source), "status": .string(r.status.rawValue),
            "author": .string(r.author), "created_at": .int(createdAt), "updated_at": .int(updatedAt),
        ])
    }

    static func summary(row: WorkflowRow) -> JSONValue {
        .object([
            "id": .string(row.id), "question": .string(row.title), "source": .string(row.repo), "status": .string(row.status),
            "author": .string(row.author), "created_at": .int(row.createdAt), "updated_at": .int(row.updatedAt),
        ])
    }

    static func detail(row: WorkflowRow) -> JSONValue? {
        guard let record = AskRecord.load(row.doc), case .object(var o) = summary(row: row) else { return nil }
        o["reason"] = record.reason.map { .string($0) } ?? .null
        o["steps"] = .array(record.steps)
        o["answer"] = record.answer ?? .null
        o["mark"] = record.mark ?? .null
        return .object(o)
    }

    func stats() -> JSONObject {
        ["asks_thinking": .int(Int64(counts["thinking"] ?? 0)), "asks_answered": .int(Int64(counts["answered"] ?? 0)), "asks_failed": .int(Int64(counts["failed"] ?? 0))]
    }

    static func newAskID() -> String { newWorkflowID(prefix: "a") }
}
