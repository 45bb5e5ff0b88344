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

    /// Dispatches an authenticated `/api/` request to the registered feature route it matches (method and
    /// path); a known path with another method is 405 with `Allow` (RFC 9110 §15.5.6), anything else 404.
    private func route(_ request: HTTPRequest, principal: Principal, on connection: Connection) {
        let parts = request.path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        var allowed: [String] = []
        for route in features.routes {
            guard let captures = route.captures(parts) else { continue }
            guard route.method == request.method else {
                if !allowed.contains(route.method) { allowed.append(route.method) }
                continue
            }
            // An ingest token reaches only routes that name its role (POST /api/v1/ingest).
            if let roles = route.roles ?? (principal.role == .ingest ? [] : nil), !roles.contains(principal.role) {
                return respondError(
                    ProtocolError(code: .forbidden, message: "role \(principal.role.rawValue) may not use \(request.method) \(request.path)"), on: connection)
            }
            return route.handler(RESTCall(request: request, principal: principal, captures: captures, connection: connection, app: self))
        }
        if !allowed.isEmpty {
            respondMethodNotAllowed(request, allow: allowed.joined(separator: ", "), on: connection)
        } else {
            respondError(ProtocolError(code: .notFound, message: "no such endpoint: \(request.method) \(request.path)"), on: connection)
        }
    }

    /// `GET …/events?since=N&limit=M`: a page of a topic's events with the topic's head (any feature's topic).
    func respondEvents(topic: String, _ call: RESTCall) {
        let query = call.request.queryItems()
        guard let since = Int64(query["since"] ?? "0"), since >= 0 else {
            return respondError(ProtocolError(code: .invalidMessage, message: "since must be a non-negative integer"), on: call.connection)
        }
        let limit = min(max(Int(query["limit"] ?? "") ?? 500, 1), 5000)
        // The head first, then the page: a client pages until its last seq reaches `head`.
        let store = self.store
        readStore(on: call.connection, { (completion: @escaping @Sendable (Result<EventPage, StoreError>) -> Void) in
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
    }

    /// Runs a command for a REST call (same path as the WebSocket: role, idempotency, store re-check).
    func restCommand(_ message: ClientMessage, id: String?, principal: Principal, status: Int, on connection: Connection) {
        guard may(principal, message) else {
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
    func readStore<T: Sendable>(
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
    func jsonBody(_ request: HTTPRequest, on connection: Connection) -> JSONObject? {
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
    func respondMethodNotAllowed(_ request: HTTPRequest, allow: String, on connection: Connection) {
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

    static func json(event: StoredEvent) -> JSONValue {
        .object(["topic": .string(event.topic), "seq": .int(event.seq), "ts": .int(event.ts), "kind": .string(event.kind), "data": parsed(event.data)])
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
        metric("node_fetches_total", "counter", "Store reads of events another node committed.", metrics.remoteFetches)
        metric("node_events_total", "counter", "Events another node committed, read for this node's subscribers.", metrics.remoteEvents)
        metric("node_resyncs_total", "counter", "Listener (re)connections after which the followed heads were read again.", metrics.resyncs)
        metric("node_forwarded_total", "counter", "Commands forwarded to the node that owns their instance.", metrics.forwarded)
        metric("node_forward_timeouts_total", "counter", "Forwarded commands the owner did not answer in time.", metrics.forwardTimeouts)
        metric("node_forwarded_run_total", "counter", "Commands other nodes forwarded, run on this node.", metrics.forwardedRun)
        metric("node_takeovers_total", "counter", "Instances claimed after their owner let the lease expire.", metrics.takeovers)
        // Each feature's own series, read from the feature (no command, no principal).
        lines += Self.exposition(features.features.flatMap { $0.metrics() })
        var headers = HTTPHeaders()
        headers.add("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        connection.respond(HTTPResponse(status: 200, headers: headers, body: Array((lines.joined(separator: "\n") + "\n").utf8)))
    }

    /// Prometheus text lines (exposition format 0.0.4) for features' samples, names prefixed `medic_`: one
    /// HELP/TYPE per family and each family's samples together — the format requires one group per name —
    /// whichever feature or order they came from (the first sample's help and type win). A sample whose name or
    /// label names are not Prometheus names is left out rather than making the whole page unparseable.
    static func exposition(_ samples: [MetricSample]) -> [String] {
        var order: [String] = []
        var families: [String: [MetricSample]] = [:]
        for sample in samples where isMetricName(sample.name) && sample.labels.allSatisfy({ isMetricName($0.0) && !$0.0.contains(":") }) {
            if families[sample.name] == nil { order.append(sample.name) }
            families[sample.name, default: []].append(sample)
        }
        var lines: [String] = []
        for name in order {
            guard let family = families[name], let first = family.first else { continue }
            let help = first.help.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\n", with: "\\n")
            lines.append("# HELP medic_\(name) \(help)")
            lines.append("# TYPE medic_\(name) \(first.type == "counter" ? "counter" : "gauge")")
            for sample in family {
                let labels = sample.labels.isEmpty ? "" : "{" + sample.labels.map { "\($0.0)=\"\(escapeLabel($0.1))\"" }.joined(separator: ",") + "}"
                lines.append("medic_\(name)\(labels) \(metricValue(sample.value))")
            }
        }
        return lines
    }

    /// `[a-zA-Z_:][a-zA-Z0-9_:]*` (label names are the same without `:`).
    static func isMetricName(_ name: String) -> Bool {
        guard let first = name.utf8.first, !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) else { return false }
        return name.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "_"), UInt8(ascii: ":"): true
            default: false
            }
        }
    }

    /// A sample value as the format spells it: integers without a fraction, `NaN`, `+Inf`, `-Inf`.
    static func metricValue(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        return value.rounded() == value && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }

    /// A Prometheus label value: backslash, quote and newline escaped (exposition format 0.0.4).
    static func escapeLabel(_ value: String) -> String {
        var out = ""
        for c in value {
            switch c {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(c)
            }
        }
        return out
    }
}
