// App+REST: plain HTTP — /healthz, /metrics, the token-authenticated REST API, then static files.
import EventLoop
import Foundation
public import HTTP1
import Protocol
public import Server
import Store

/// A page of a topic's events with the topic's head at the time of the read.
struct EventPage: Sendable {
    var head: Int64
    var events: [StoredEvent]
}

extension App {
    public func handle(_ request: HTTPRequest, on connection: Connection) {
        metrics.restRequests += 1
        let path = request.path
        if path == "/healthz" {
            connection.respond(.text(200, "ok\n"))
        } else if path == "/metrics" {
            respondMetrics(on: connection)
        } else if path == "/api/v1/session" {
            signInWithCode(request, on: connection)
        } else if path.hasPrefix("/api/") {
            authenticateREST(request, on: connection) { [unretained] principal in
                unretained.value?.route(request, principal: principal, on: connection)
            }
        } else if path == "/ws" {
            var headers = HTTPHeaders()
            headers.add("Upgrade", "websocket")
            connection.respond(HTTPResponse(status: 426, headers: headers, body: Array("use a WebSocket client (subprotocol medic.v1)\n".utf8)))
        } else if let staticFiles, let response = staticFiles.respond(to: request) {
            connection.respond(response)
        } else if request.method != "GET" && request.method != "HEAD" {
            var headers = HTTPHeaders()
            headers.add("Allow", "GET, HEAD")
            connection.respond(HTTPResponse(status: 405, headers: headers, body: Array("method not allowed\n".utf8)))
        } else {
            connection.respond(.text(404, "not found\n"))
        }
    }

    /// How long a session made from a sign-in link lasts (or until its principal is revoked).
    static let signInSessionMilliseconds: Int64 = 7 * 24 * 3_600_000

    /// `POST /api/v1/session {"code"}`: exchanges a single-use sign-in code (`medic login`) for a session
    /// token. Needs no Authorization; a wrong, used or expired code is 401 and uses nothing up.
    private func signInWithCode(_ request: HTTPRequest, on connection: Connection) {
        guard request.method == "POST" else { return respondMethodNotAllowed(request, allow: "POST", on: connection) }
        guard let body = jsonBody(request, on: connection) else { return }
        guard let code = body["code"]?.stringValue, !code.isEmpty, code.utf8.count <= protocolLimits.maxTokenBytes else {
            respondError(ProtocolError(code: .invalidMessage, message: "code must be a non-empty string"), on: connection)
            return
        }
        let token = Tokens.generate()
        let expiresAt = wallClockMilliseconds() + Self.signInSessionMilliseconds
        readStore(on: connection, { self.store.redeemLoginCode(code, sessionToken: token, sessionExpiresAt: expiresAt, completion: $0) }) { row in
            row.map {
                .object(["token": .string(token), "principal": .string($0.name), "role": .string($0.role), "expires_at": .int(expiresAt)])
            }
        } notFound: {
            ProtocolError(code: .unauthenticated, message: "this sign-in link is unknown, expired or already used; run `medic login` for a new one")
        }
    }

    /// Resolves `Authorization: Bearer TOKEN`; answers 401 itself when missing or unknown.
    private func authenticateREST(_ request: HTTPRequest, on connection: Connection, then: @escaping (Principal) -> Void) {
        guard let token = Self.bearerToken(request) else {
            let error = ProtocolError(code: .unauthenticated, message: "Authorization: Bearer TOKEN required")
            respondJSON(401, error.restBody, extraHeaders: [("WWW-Authenticate", "Bearer")], on: connection)
            return
        }
        lookUp(token: token) { [unretained] result in
            guard let self = unretained.value, !connection.isClosed else { return }
            switch result {
            case .success(let principal?): then(principal)
            case .success(nil):
                self.metrics.authFailures += 1
                self.respondError(ProtocolError(code: .unauthenticated, message: "unknown or revoked token"), on: connection)
            case .failure(let error):
                self.respondError(ProtocolError(code: .storeUnavailable, message: error.message), on: connection)
            }
        }
    }

    private func route(_ request: HTTPRequest, principal: Principal, on connection: Connection) {
        let parts = request.path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        let method = request.method
        let commandID = request.headers["idempotency-key"]
        if method == "POST", parts == ["api", "v1", "proposals"] {
            guard let body = jsonBody(request, on: connection) else { return }
            switch ClientMessage.decode(type: "propose", fields: body, id: commandID, limits: protocolLimits) {
            case .success(let message): restCommand(message, id: commandID, principal: principal, status: 201, on: connection)
            case .failure(let error): respondError(error, on: connection)
            }
        } else if method == "GET", parts == ["api", "v1", "meta"] {
            // What clients need to know to act without copying the server's rules (issue: one set of predicates).
            respondJSON(200, JSONValue.object([
                "protocol": .string(medicSubprotocol), "statuses": ProposalStatus.predicatesJSON,
                "quorum": .int(Int64(configuration.quorum)), "max_attempts": .int(Int64(configuration.maxAttempts)),
                "fix_mode": .string(configuration.autoFix ? "auto" : "manual"),
            ]).bytes, on: connection)
        } else if method == "GET", parts == ["api", "v1", "proposals"] {
            let query = request.queryItems()
            let limit = min(max(Int(query["limit"] ?? "") ?? 100, 1), 1000)
            readStore(on: connection, { self.store.proposals(status: query["status"], limit: limit, completion: $0) }) { rows in
                .object(["proposals": .array(rows.map(Self.json(proposal:)))])
            }
        } else if method == "GET", let id = Self.match(parts, ["api", "v1", "proposals", "*"]) {
            readStore(on: connection, { self.store.proposal(id: id, completion: $0) }) { detail in
                detail.map(Self.json(detail:))
            }
        } else if method == "GET", let id = Self.match(parts, ["api", "v1", "proposals", "*", "events"]) {
            let query = request.queryItems()
            guard let since = Int64(query["since"] ?? "0"), since >= 0 else {
                respondError(ProtocolError(code: .invalidMessage, message: "since must be a non-negative integer"), on: connection)
                return
            }
            let limit = min(max(Int(query["limit"] ?? "") ?? 500, 1), 5000)
            let topic = "proposal:\(id)"
            // The head first, then the page: a client pages until its last seq reaches `head`.
            let store = self.store
            readStore(on: connection, { (completion: @escaping @Sendable (Result<EventPage, StoreError>) -> Void) in
                store.head(topic: topic) { head in
                    switch head {
                    case .failure(let error): completion(.failure(error))
                    case .success(let head):
                        store.events(topic: topic, after: since, limit: limit) { completion($0.map { EventPage(head: head, events: $0) }) }
                    }
                }
            }) { (page: EventPage) in
                .object(["topic": .string(topic), "head": .int(page.head), "events": .array(page.events.map(Self.json(event:)))])
            }
        } else if method == "GET", parts.count == 7, parts[0...2] == ["api", "v1", "proposals"], parts[4] == "revisions", parts[6] == "base",
            Topic.isValidProposalID(parts[3]), let revision = Int(parts[5]), revision >= 1
        {
            guard let commands else { return respondError(ProtocolError(code: .internal, message: "pipeline not configured"), on: connection) }
            commands.baseFiles(proposal: parts[3], revision: revision) { [unretained] result in
                guard let self = unretained.value, !connection.isClosed else { return }
                switch result {
                case .success(let json): self.respondJSON(200, json.bytes, on: connection)
                case .failure(let error): self.respondError(error, on: connection)
                }
            }
        } else if method == "POST", let id = Self.match(parts, ["api", "v1", "proposals", "*", "review"]) {
            guard let body = jsonBody(request, on: connection) else { return }
            switch ClientMessage.decodeReviewBody(proposal: id, body: body, limits: protocolLimits) {
            case .success(let review): restCommand(.review(review), id: commandID, principal: principal, status: 200, on: connection)
            case .failure(let error): respondError(error, on: connection)
            }
        } else if method == "POST", let id = Self.match(parts, ["api", "v1", "proposals", "*", "withdraw"]) {
            guard var body = request.body.isEmpty ? JSONObject() : jsonBody(request, on: connection) else { return }
            body["proposal"] = .string(id)  // the path names the proposal
            switch ClientMessage.decode(type: "withdraw", fields: body, id: commandID, limits: protocolLimits) {
            case .success(let message): restCommand(message, id: commandID, principal: principal, status: 200, on: connection)
            case .failure(let error): respondError(error, on: connection)
            }
        } else if method == "POST", let id = Self.match(parts, ["api", "v1", "admin", "proposals", "auto-fix", "*"]) {
            restCommand(.autoFix(proposal: id), id: commandID, principal: principal, status: 200, on: connection)
        } else if method == "GET", let id = Self.match(parts, ["api", "v1", "admin", "proposals", "auto-fix", "status", "*"]) {
            // Everything under /api/v1/admin/ is for admins, reads included (protocol/README.md §8).
            guard principal.role == .admin else {
                respondError(ProtocolError(code: .forbidden, message: "role \(principal.role.rawValue) may not read admin endpoints"), on: connection)
                return
            }
            let manual = !configuration.autoFix
            readStore(on: connection, { self.store.proposal(id: id, completion: $0) }) { detail in
                detail.map { Self.autoFixStatus($0, manual: manual) }
            }
        } else if parts.starts(with: ["api", "v1", "proposals"]) || parts.starts(with: ["api", "v1", "admin"]) {
            respondMethodNotAllowed(request, allow: Self.allowedMethods(parts), on: connection)
        } else {
            respondError(ProtocolError(code: .notFound, message: "no such endpoint: \(method) \(request.path)"), on: connection)
        }
    }

    /// The methods a known API path answers (the `Allow` header of its 405, RFC 9110 §15.5.6).
    static func allowedMethods(_ parts: [String]) -> String {
        if parts == ["api", "v1", "proposals"] { return "GET, POST" }
        if match(parts, ["api", "v1", "proposals", "*", "review"]) != nil
            || match(parts, ["api", "v1", "proposals", "*", "withdraw"]) != nil
            || match(parts, ["api", "v1", "admin", "proposals", "auto-fix", "*"]) != nil { return "POST" }
        return "GET"
    }

    /// Matches path segments against a pattern with one "*" capture; returns the captured segment.
    static func match(_ parts: [String], _ pattern: [String]) -> String? {
        guard parts.count == pattern.count else { return nil }
        var captured: String?
        for (part, expected) in zip(parts, pattern) {
            if expected == "*" {
                guard Topic.isValidProposalID(part) else { return nil }
                captured = part
            } else if part != expected {
                return nil
            }
        }
        return captured
    }

    private func restCommand(_ message: ClientMessage, id: String?, principal: Principal, status: Int, on connection: Connection) {
        guard principal.role.may(message) else {
            respondError(ProtocolError(code: .forbidden, message: "role \(principal.role.rawValue) may not send \(message.type)"), on: connection)
            return
        }
        runCommand(ClientRequest(id: id, message: message), principal: principal) { [unretained] bytes in
            guard let self = unretained.value, !connection.isClosed else { return }
            // The reply is the WebSocket ack/error JSON; map an error to its HTTP status.
            if case .success(.error(let error)) = ServerMessage.decode(bytes) {
                self.respondError(error, on: connection)
            } else {
                self.respondJSON(status, bytes, on: connection)
            }
        }
    }

    /// Runs a store read and answers with `render`'s JSON, `notFound` (404 by default) when it renders nil,
    /// 503 on store failure.
    private func readStore<T: Sendable>(
        on connection: Connection, _ call: (@escaping @Sendable (Result<T, StoreError>) -> Void) -> Void,
        render: @escaping (T) -> JSONValue?,
        notFound: @escaping () -> ProtocolError = { ProtocolError(code: .notFound, message: "not found") }
    ) {
        let bound = LoopBound((self, connection, render, notFound), loop: loop)
        call { result in
            bound.hop { captured in
                let (app, connection, render, notFound) = captured
                guard !connection.isClosed else { return }
                switch result {
                case .success(let value):
                    guard let json = render(value) else {
                        app.respondError(notFound(), on: connection)
                        return
                    }
                    app.respondJSON(200, json.bytes, on: connection)
                case .failure(let error):
                    app.respondError(ProtocolError(code: .storeUnavailable, message: error.message), on: connection)
                }
            }
        }
    }

    /// A request body, parsed under the same limits as a WebSocket message (`protocolLimits`: size and
    /// nesting), so that REST and WebSocket accept exactly the same commands.
    private func jsonBody(_ request: HTTPRequest, on connection: Connection) -> JSONObject? {
        do {
            let limits = JSONParseLimits(maxBytes: protocolLimits.maxMessageBytes, maxDepth: protocolLimits.maxDepth)
            guard case .object(let object) = try JSONValue.parse(request.body, limits: limits) else {
                respondError(ProtocolError(code: .invalidMessage, message: "the body must be a JSON object"), on: connection)
                return nil
            }
            return object
        } catch {
            respondError(ProtocolError(code: error.isTooLarge ? .tooLarge : .badJSON, message: error.description), on: connection)
            return nil
        }
    }

    func respondError(_ error: ProtocolError, on connection: Connection) {
        respondJSON(error.code.httpStatus, error.restBody, on: connection)
    }

    /// A JSON response (every API answer goes through here).
    func respondJSON(_ status: Int, _ body: [UInt8], extraHeaders: [(String, String)] = [], on connection: Connection) {
        var headers = HTTPHeaders()
        headers.add("Content-Type", "application/json")
        for (name, value) in extraHeaders { headers.add(name, value) }
        connection.respond(HTTPResponse(status: status, headers: headers, body: body))
    }

    /// 405 with the `Allow` header (RFC 9110 §15.5.6) and error code `invalid_message`.
    private func respondMethodNotAllowed(_ request: HTTPRequest, allow: String, on connection: Connection) {
        let error = ProtocolError(code: .invalidMessage, message: "method \(request.method) not allowed on \(request.path)")
        respondJSON(405, error.restBody, extraHeaders: [("Allow", allow)], on: connection)
    }

    // MARK: JSON renderings of stored rows

    /// Stored JSON (written by Medic itself from input that passed the input limits) is read back whole:
    /// no size limit here, since a proposal's stored state holds every revision and may exceed one message.
    /// The depth bound only guards the recursive parser; stored documents nest a handful of levels.
    static let storedJSONLimits = JSONParseLimits(maxBytes: .max, maxDepth: 512)

    static func parsed(_ text: String) -> JSONValue {
        do {
            return try JSONValue.parse(text, limits: storedJSONLimits)
        } catch {
            // Not reachable for rows Medic wrote; said rather than silently returned as a string.
            return .object(["unreadable": .string(error.description)])
        }
    }

    static func json(proposal row: ProposalRow) -> JSONValue {
        .object([
            "id": .string(row.id), "title": .string(row.title), "description": .string(row.description),
            "repo": .string(row.repo), "status": .string(row.status), "revision": .int(Int64(row.currentRevision)),
            "attempts": .int(Int64(row.attempts)), "author": .string(row.author),
            "created_at": .int(row.createdAt), "updated_at": .int(row.updatedAt), "state": parsed(row.doc),
        ])
    }

    static func json(detail: ProposalDetail) -> JSONValue {
        guard case .object(var object) = json(proposal: detail.proposal) else { return .null }
        object["revisions"] = .array(detail.revisions.map { revision in
            var doc = parsed(revision.doc).objectValue ?? JSONObject()
            doc["number"] = .int(Int64(revision.number))
            doc["created_at"] = .int(revision.createdAt)
            return .object(doc)
        })
        object["reviews"] = .array(detail.reviews.map { review in
            .object([
                "revision": .int(Int64(review.revision)), "principal": .string(review.principal),
                "verdict": .string(review.verdict), "comment": review.comment.map { .string($0) } ?? .null, "ts": .int(review.ts),
            ])
        })
        object["comments"] = .array(detail.comments.map { comment in
            .object(["principal": .string(comment.principal), "text": .string(comment.text), "ts": .int(comment.ts)])
        })
        object["applied"] = .array(detail.appliedChanges.map { change in
            .object([
                "revision": .int(Int64(change.revision)), "commit": .string(change.commit), "ts": .int(change.ts),
                "reverted_by": change.revertedBy.map { .string($0) } ?? .null,
            ])
        })
        return .object(object)
    }

    static func json(event: StoredEvent) -> JSONValue {
        .object(["topic": .string(event.topic), "seq": .int(event.seq), "ts": .int(event.ts), "kind": .string(event.kind), "data": parsed(event.data)])
    }

    /// The customer's auto-fix status endpoint: needs_auto_fix, auto_fix_applied, auto_fix_attempts.
    static func autoFixStatus(_ detail: ProposalDetail, manual: Bool) -> JSONValue {
        let row = detail.proposal
        let fixedRevisions = detail.revisions.filter { $0.number > 1 }.count
        return .object([
            "proposal": .string(row.id), "status": .string(row.status),
            "needs_auto_fix": .bool(ProposalStatus(rawValue: row.status)?.acceptsAutoFix == true),
            "auto_fix_applied": .bool(fixedRevisions > 0),
            "auto_fix_attempts": .int(Int64(row.attempts)),
            "mode": .string(manual ? "manual" : "auto"),
        ])
    }

    // MARK: /metrics

    /// Prometheus text exposition (version 0.0.4): connection, message and pipeline counters.
    private func respondMetrics(on connection: Connection) {
        var lines: [String] = []
        func metric(_ name: String, _ type: String, _ help: String, _ value: Int) {
            lines.append("# HELP medic_\(name) \(help)")
            lines.append("# TYPE medic_\(name) \(type)")
            lines.append("medic_\(name) \(value)")
        }
        if let server {
            let m = server.metrics
            metric("connections_accepted_total", "counter", "TCP connections accepted.", m.connectionsAccepted)
            metric("connections_open", "gauge", "Open connections.", server.connectionCount)
            metric("websockets_opened_total", "counter", "WebSocket upgrades.", m.websocketsOpened)
            metric("http_requests_total", "counter", "HTTP requests parsed.", m.httpRequests)
            metric("http_errors_total", "counter", "HTTP requests refused by the parser or timed out.", m.httpErrors)
            metric("ws_messages_received_total", "counter", "WebSocket messages received.", m.messagesIn)
            metric("ws_messages_sent_total", "counter", "WebSocket messages queued for sending.", m.messagesOut)
            metric("bytes_received_total", "counter", "Bytes read from sockets.", m.bytesIn)
            metric("bytes_sent_total", "counter", "Bytes written to sockets.", m.bytesOut)
            metric("slow_consumer_closes_total", "counter", "Connections closed for exceeding their outbound queue.", m.slowConsumerCloses)
        }
        metric("sessions_opened_total", "counter", "medic.v1 sessions opened.", metrics.sessionsOpened)
        metric("auth_failures_total", "counter", "Failed authentications.", metrics.authFailures)
        metric("protocol_errors_total", "counter", "Malformed client messages.", metrics.protocolErrors)
        metric("events_published_total", "counter", "Durable events published.", metrics.eventsPublished)
        metric("event_deliveries_total", "counter", "Event frames queued to subscribers.", metrics.deliveries)
        let finish = { (stats: JSONObject) in
            for (key, value) in stats.members {
                if let n = value.intValue {
                    lines.append("# TYPE medic_pipeline_\(key) gauge")
                    lines.append("medic_pipeline_\(key) \(n)")
                } else if case .number(let d) = value {
                    lines.append("# TYPE medic_pipeline_\(key) gauge")
                    lines.append("medic_pipeline_\(key) \(d)")
                } else if case .object(let perCategory) = value {
                    lines.append("# TYPE medic_pipeline_\(key) gauge")
                    for (label, count) in perCategory.members {
                        lines.append("medic_pipeline_\(key){category=\"\(label)\"} \(count.intValue ?? 0)")
                    }
                }
            }
            var headers = HTTPHeaders()
            headers.add("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            connection.respond(HTTPResponse(status: 200, headers: headers, body: Array((lines.joined(separator: "\n") + "\n").utf8)))
        }
        finish(commands?.stats() ?? JSONObject())
    }
}
