// BugsFeature: bug reports fixed autonomously, registered like every feature — `report_bug` (admins, bots),
// `choose_approach` and `resume_bug` (admins), topics `bug:<id>` / `bugs`, REST under /api/v1/bugs, and the
// workflow's figures in stats and /metrics. The work is `BugService`'s (its machine is `BugMachine`).
public import EventLoop
import HTTP1
public import Logging
import Pipeline
public import Protocol
import Server
public import Store

public final class BugsFeature: Feature {
    public let name = "bugs"
    let service: BugService

    /// Builds the service on the proposal pipeline (approaches run its repair loop; the winner becomes one of
    /// its proposals) and recovers stored bugs. Call after the store's and the features' migrations ran.
    public init(loop: EventLoop, store: Store, pipeline: PipelineService, publisher: any Publisher, configuration: MedicConfiguration, logger: Logger) throws {
        service = BugService(sink: publisher, store: store, loop: loop, configuration: configuration, pipeline: pipeline, logger: logger)
        try service.recover()
    }

    public let commands: [CommandDeclaration] = [
        CommandDeclaration(type: "report_bug", roles: [.admin, .bot], changesState: true),
        CommandDeclaration(type: "choose_approach", roles: [.admin], changesState: true),
        CommandDeclaration(type: "resume_bug", roles: [.admin], changesState: true),
    ]

    public let topics = [TopicDeclaration(instance: "bug", collection: "bugs", presence: true)]

    public func execute(_ message: ClientMessage, commandID: String?, principal: Principal, reply: @escaping CommandReply) {
        guard case .feature(let type, let fields) = message else {
            return reply(.failure(ProtocolError(code: .invalidMessage, message: "\(message.type) is not a bug command")))
        }
        let refuse = { (text: String) in reply(.failure(ProtocolError(code: .invalidMessage, message: text, id: commandID))) }
        switch type {
        case "report_bug":
            switch Self.report(fields, author: principal.name, repositories: service.configuration.repositories.map(\.name)) {
            case .success(let report): service.report(report, commandID: commandID, principal: principal, reply: reply)
            case .failure(let refusal): refuse(refusal.message)
            }
        case "choose_approach":
            guard let bug = Self.bugID(fields) else { return refuse("field 'bug' must be a bug id") }
            guard let n = fields["approach"]?.intValue, (1...Int64(BugReport.Limits.maxApproaches)).contains(n) else {
                return refuse("field 'approach' must be an integer 1…\(BugReport.Limits.maxApproaches)")
            }
            service.command(bug, .chooseApproach(principal: principal.name, role: principal.role, approach: Int(n)),
                            ackFields: ["bug": .string(bug), "approach": .int(n)], commandID: commandID, principal: principal, reply: reply)
        case "resume_bug":
            guard let bug = Self.bugID(fields) else { return refuse("field 'bug' must be a bug id") }
            service.command(bug, .resumeRequested(principal: principal.name, role: principal.role), ackFields: ["bug": .string(bug)],
                            commandID: commandID, principal: principal, reply: reply)
        default:
            refuse("\(type) is not a bug command")
        }
    }

    /// Commands on one bug run where its lease is (several nodes).
    public func leasedInstance(of message: ClientMessage) -> String? {
        guard case .feature(let type, let fields) = message, type != "report_bug", let bug = Self.bugID(fields) else { return nil }
        return "bug:\(bug)"
    }

    public func resume(_ topic: String, from node: String) { service.resume(String(topic.dropFirst("bug:".count)), from: node) }
    public func leaseLost(_ topic: String) { service.leaseLost(String(topic.dropFirst("bug:".count))) }

    static func bugID(_ fields: JSONObject) -> String? {
        guard let id = fields["bug"]?.stringValue, Topic.isValidProposalID(id) else { return nil }
        return id
    }

    /// Validates a `report_bug` command (limits in protocol/README.md, "Bug reports"); the message says what is wrong.
    static func report(_ fields: JSONObject, author: String, repositories: [String]) -> Result<BugReport, ReportRefusal> {
        typealias L = BugReport.Limits
        guard let repo = fields["repo"]?.stringValue else { return .failure(ReportRefusal("field 'repo' must be a string; configured: \(repositories.joined(separator: ", "))")) }
        guard repositories.contains(repo) else {
            return .failure(ReportRefusal("unknown repository '\(String(repo.prefix(64)))'; configured: \(repositories.joined(separator: ", "))"))
        }
        guard let rawTitle = fields["title"]?.stringValue else { return .failure(ReportRefusal("field 'title' must be a string")) }
        let title = rawTitle.trimmingWhitespace()
        guard !title.isEmpty else { return .failure(ReportRefusal("field 'title' must not be empty")) }
        guard title.count <= L.titleCharacters else { return .failure(ReportRefusal("field 'title' is longer than \(L.titleCharacters) characters")) }
        let description = fields["description"].map { $0.stringValue } ?? ""
        guard let description else { return .failure(ReportRefusal("field 'description' must be a string")) }
        guard description.count <= L.descriptionCharacters else { return .failure(ReportRefusal("field 'description' is longer than \(L.descriptionCharacters) characters")) }
        var severity = BugSeverity.medium
        if let value = fields["severity"], value != .null {
            guard let name = value.stringValue, let parsed = BugSeverity(rawValue: name) else {
                return .failure(ReportRefusal("field 'severity' must be one of \(BugSeverity.allCases.map(\.rawValue).joined(separator: ", "))"))
            }
            severity = parsed
        }
        var evidence: [String] = []
        if let value = fields["evidence"], value != .null {
            guard let items = value.arrayValue else { return .failure(ReportRefusal("field 'evidence' must be an array of strings")) }
            guard items.count <= L.evidenceItems else { return .failure(ReportRefusal("field 'evidence' has \(items.count) items; at most \(L.evidenceItems)")) }
            var total = 0
            for (i, item) in items.enumerated() {
                guard let text = item.stringValue else { return .failure(ReportRefusal("evidence[\(i)] must be a string")) }
                guard text.utf8.count <= L.evidenceItemBytes else { return .failure(ReportRefusal("evidence[\(i)] is larger than \(L.evidenceItemBytes / 1024) KiB")) }
                total += text.utf8.count
                evidence.append(text)
            }
            guard total <= L.evidenceTotalBytes else { return .failure(ReportRefusal("the evidence is larger than \(L.evidenceTotalBytes / 1024) KiB in total")) }
        }
        var approaches = 3
        if let value = fields["approaches"], value != .null {
            guard let n = value.intValue, (1...Int64(L.maxApproaches)).contains(n) else {
                return .failure(ReportRefusal("field 'approaches' must be an integer 1…\(L.maxApproaches)"))
            }
            approaches = Int(n)
        }
        var perfRuns: Int?
        if let value = fields["perf_runs"], value != .null {
            guard let n = value.intValue, (1...Int64(L.maxPerfRuns)).contains(n) else {
                return .failure(ReportRefusal("field 'perf_runs' must be an integer 1…\(L.maxPerfRuns)"))
            }
            perfRuns = Int(n)
        }
        return .success(BugReport(
            id: BugService.newBugID(), repo: repo, title: title, description: description, severity: severity, evidence: evidence,
            approaches: approaches, author: author, perfRuns: perfRuns))
    }

    public func stats() -> JSONObject { service.stats() }

    public func metrics() -> [MetricSample] {
        service.stats().members.sorted { $0.key < $1.key }.compactMap { key, value in
            switch value {
            case .int(let n): MetricSample(key, "Bug workflow figure \(key).", value: Double(n))
            case .number(let d): MetricSample(key, "Bug workflow figure \(key).", value: d)
            default: nil
            }
        }
    }

    public var routes: [RESTRoute] {
        [
            RESTRoute("POST", "api/v1/bugs") { call in
                guard let body = call.app.jsonBody(call.request, on: call.connection) else { return }
                call.app.restCommand(.feature(type: "report_bug", fields: body), id: call.commandID, principal: call.principal, status: 201, on: call.connection)
            },
            RESTRoute("GET", "api/v1/bugs") { call in
                let query = call.request.queryItems()
                let limit = min(max(Int(query["limit"] ?? "") ?? 100, 1), 1000)
                let store = call.app.store
                call.app.readStore(on: call.connection, { store.workflows(kind: "bug", status: query["status"], limit: limit, completion: $0) }) { rows in
                    .object(["bugs": .array(rows.compactMap { row in
                        (try? BugMachine.load(document: row.doc)).map { BugService.summary($0, createdAt: row.createdAt, updatedAt: row.updatedAt) }
                    })])
                }
            },
            RESTRoute("GET", "api/v1/bugs/*") { call in
                let store = call.app.store
                call.app.readStore(on: call.connection, { store.workflow(id: call.captures[0], completion: $0) }) { row in
                    guard let row, row.kind == "bug", let machine = try? BugMachine.load(document: row.doc) else { return nil }
                    return BugService.detail(machine, createdAt: row.createdAt, updatedAt: row.updatedAt)
                } notFound: {
                    ProtocolError(code: .notFound, message: "no bug \(call.captures[0])")
                }
            },
            RESTRoute("GET", "api/v1/bugs/*/events") { call in call.app.respondEvents(topic: "bug:\(call.captures[0])", call) },
            RESTRoute("POST", "api/v1/bugs/*/choose") { call in
                guard var body = call.app.jsonBody(call.request, on: call.connection) else { return }
                body["bug"] = .string(call.captures[0])
                call.app.restCommand(.feature(type: "choose_approach", fields: body), id: call.commandID, principal: call.principal, status: 200, on: call.connection)
            },
            RESTRoute("POST", "api/v1/bugs/*/resume") { call in
                call.app.restCommand(.feature(type: "resume_bug", fields: ["bug": .string(call.captures[0])]), id: call.commandID, principal: call.principal, status: 200, on: call.connection)
            },
        ]
    }
}

/// Why a report was refused (the `invalid_message` text).
struct ReportRefusal: Error {
    var message: String
    init(_ message: String) { self.message = message }
}

extension String {
    func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let c = s.first, c.isWhitespace { s = s.dropFirst() }
        while let c = s.last, c.isWhitespace { s = s.dropLast() }
        return String(s)
    }
}
