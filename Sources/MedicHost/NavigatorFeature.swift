// NavigatorFeature: the codebase navigator, registered like proposals — `search_code {repo, query, mode?,
// limit?}` over WebSocket (every role), `GET /api/v1/repos/{repo}/search?q=…&mode=…&limit=…`,
// `POST /api/v1/repos/{repo}/index` (admins: re-index now), topics `repo:<name>` (`index_progress`
// ephemeral, `indexed` stored) and `repos`, and the index's figures in stats and /metrics.
import EventLoop
import Foundation
import HTTP1
import Logging
import Navigator
public import Protocol
import Server
import Store

public final class NavigatorFeature: Feature {
    public let name = "navigator"
    let navigator: NavigatorService
    unowned let publisher: any Publisher
    let clock: () -> Int64
    /// The last completed run per repository (for stats and /metrics).
    private var outcomes: [String: IndexOutcome] = [:]

    public convenience init(navigator: NavigatorService, publisher: any Publisher) {
        self.init(navigator: navigator, publisher: publisher, clock: { wallClockMilliseconds() })
    }

    init(navigator: NavigatorService, publisher: any Publisher, clock: @escaping () -> Int64) {
        self.navigator = navigator
        self.publisher = publisher
        self.clock = clock
        navigator.onProgress = { [weak self] progress in
            self?.publisher.publishEphemeral(
                topic: "repo:\(progress.repo)", kind: "index_progress",
                data: .object(["phase": .string(progress.phase), "done": .int(Int64(progress.done)), "total": .int(Int64(progress.total))]))
        }
        navigator.onIndexed = { [weak self] result, repo in self?.indexed(result, repo: repo) }
    }

    public let commands = [CommandDeclaration(type: "search_code", roles: [.admin, .viewer, .bot], changesState: false)]
    public let topics = [TopicDeclaration(instance: "repo", collection: "repos", presence: false)]

    public func execute(_ message: ClientMessage, commandID: String?, principal: Principal, reply: @escaping CommandReply) {
        guard case .feature("search_code", let fields) = message else {
            return reply(.failure(ProtocolError(code: .invalidMessage, message: "\(message.type) is not a navigator command")))
        }
        guard let repo = fields["repo"]?.stringValue, !repo.isEmpty, repo.utf8.count <= 128 else {
            return reply(.failure(ProtocolError(code: .invalidMessage, message: "field 'repo' must be a repository name", id: commandID)))
        }
        guard let query = fields["query"]?.stringValue else {
            return reply(.failure(ProtocolError(code: .invalidMessage, message: "field 'query' must be a string", id: commandID)))
        }
        var mode = NavigatorMode.find
        if let text = fields["mode"] {
            guard let name = text.stringValue, let parsed = NavigatorMode(rawValue: name) else {
                return reply(.failure(ProtocolError(
                    code: .invalidMessage, message: "field 'mode' must be one of \(NavigatorMode.allCases.map(\.rawValue).joined(separator: ", "))", id: commandID)))
            }
            mode = parsed
        }
        var limit: Int?
        if let value = fields["limit"] {
            guard let n = value.intValue, (1...Int64(NavigatorService.maxLimit)).contains(n) else {
                return reply(.failure(ProtocolError(code: .invalidMessage, message: "field 'limit' must be an integer 1…\(NavigatorService.maxLimit)", id: commandID)))
            }
            limit = Int(n)
        }
        navigator.search(repo: repo, mode: mode, query: query, limit: limit) { result in
            reply(result.map { $0.objectValue ?? [:] }.mapError { var e = $0; e.id = commandID; return e })
        }
    }

    public var routes: [RESTRoute] {
        [
            RESTRoute("GET", "api/v1/repos/*/search") { [unowned self] call in
                let query = call.request.queryItems()
                var fields: JSONObject = ["repo": .string(call.captures[0]), "query": .string(query["q"] ?? "")]
                if let mode = query["mode"] { fields["mode"] = .string(mode) }
                if let limit = query["limit"] { fields["limit"] = Int64(limit).map { .int($0) } ?? .string(limit) }
                self.execute(.feature(type: "search_code", fields: fields), commandID: nil, principal: call.principal) { result in
                    guard !call.connection.isClosed else { return }
                    switch result {
                    case .success(let answer): call.app.respondJSON(200, JSONValue.object(answer).bytes, on: call.connection)
                    case .failure(let error): call.app.respondError(error, on: call.connection)
                    }
                }
            },
            RESTRoute("POST", "api/v1/repos/*/index", roles: [.admin]) { [unowned self] call in
                let repo = call.captures[0]
                self.navigator.index(repo: repo) { result in
                    guard !call.connection.isClosed else { return }
                    switch result {
                    case .success(let outcome): call.app.respondJSON(200, Self.json(outcome).bytes, on: call.connection)
                    case .failure(let error): call.app.respondError(ProtocolError(code: .notFound, message: error.description), on: call.connection)
                    }
                }
            },
            RESTRoute("GET", "api/v1/repos/*/events") { call in call.app.respondEvents(topic: "repo:\(call.captures[0])", call) },
            RESTRoute("GET", "api/v1/repos/*/file") { [unowned self] call in
                self.navigator.file(repo: call.captures[0], path: call.request.queryItems()["path"] ?? "") { result in
                    guard !call.connection.isClosed else { return }
                    switch result {
                    case .success(let json): call.app.respondJSON(200, json.bytes, on: call.connection)
                    case .failure(let error): call.app.respondError(error, on: call.connection)
                    }
                }
            },
            RESTRoute("GET", "api/v1/repos") { [unowned self] call in
                call.app.respondJSON(200, JSONValue.object(["repos": .array(self.navigator.repositoryNames.map { .string($0) })]).bytes, on: call.connection)
            },
        ]
    }

    public func stats() -> JSONObject {
        ["indexed_files": .int(Int64(outcomes.values.reduce(0) { $0 + $1.state.files }))]
    }

    public func metrics() -> [MetricSample] {
        outcomes.sorted { $0.key < $1.key }.flatMap { repo, outcome in
            [
                MetricSample("navigator_index_files", "Files in the code index.", value: Double(outcome.state.files), labels: [("repo", repo)]),
                MetricSample("navigator_index_symbols", "Symbols in the code index.", value: Double(outcome.state.symbols), labels: [("repo", repo)]),
                MetricSample("navigator_index_last_run_ms", "Duration of the last index run.", value: Double(outcome.milliseconds), labels: [("repo", repo)]),
            ]
        }
    }

    /// A run ended: stored as an `indexed` event on `repo:<name>` (or `index_failed`).
    private func indexed(_ result: Result<IndexOutcome, IndexerError>, repo: String) {
        let event: NewEvent
        switch result {
        case .success(let outcome):
            outcomes[repo] = outcome
            event = NewEvent(topic: "repo:\(repo)", kind: "indexed", data: Self.json(outcome).jsonString, ts: clock())
        case .failure(let error):
            event = NewEvent(topic: "repo:\(repo)", kind: "index_failed", data: JSONValue.object(["reason": .string(error.description)]).jsonString, ts: clock())
        }
        publisher.commit(StoreWrite(events: [event])) { _ in }
    }

    static func json(_ outcome: IndexOutcome) -> JSONValue {
        .object([
            "commit": outcome.state.commit.map { .string($0) } ?? .null, "files": .int(Int64(outcome.state.files)),
            "symbols": .int(Int64(outcome.state.symbols)), "changed": .int(Int64(outcome.changed)), "removed": .int(Int64(outcome.removed)),
            "skipped": .int(Int64(outcome.skipped)), "duration_ms": .int(Int64(outcome.milliseconds)),
        ])
    }
}
