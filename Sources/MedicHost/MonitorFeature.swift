// MonitorFeature: the self-healing monitor, registered like every feature — ingest (`POST /api/v1/ingest`,
// role `ingest`), the monitor's status and fingerprints, incidents (`incident:<id>` / `incidents`, REST under
// /api/v1/incidents) and their commands (`acknowledge_incident`, `file_bug`, `mute_incident`,
// `resolve_incident`, admins only). The work is `MonitorService`'s and `IncidentService`'s.
public import EventLoop
import HTTP1
public import Logging
import Monitor
public import Protocol
import Server
public import Store

/// An incident's row with its newest events and its topic's head (`GET /api/v1/incidents/{id}`).
struct IncidentPage: Sendable {
    var row: WorkflowRow?
    var head: Int64
    var events: [StoredEvent]
}

public final class MonitorFeature: Feature {
    public let name = "monitor"
    let monitor: MonitorService
    let incidents: IncidentService

    /// Builds the monitor (baselines restored from the store) and recovers stored incidents. Call after the
    /// store's migrations ran; `start()` once the loop runs the tailers and the bucket timer.
    public init(loop: EventLoop, store: Store, publisher: any Publisher, clock: any WorkflowClock, configuration: MedicConfiguration, logger: Logger) throws {
        monitor = MonitorService(configuration: configuration.monitor, store: store, loop: loop, clock: clock, logger: logger)
        incidents = IncidentService(sink: publisher, store: store, loop: loop, clock: clock, monitor: monitor, configuration: configuration, logger: logger)
        try monitor.restore()
        try incidents.recover()
    }

    /// Files bugs through the bug workflow and follows them and their proposals.
    func follow(bugs: BugsFeature, pipeline: PipelineService) { incidents.follow(bugs: bugs.service, pipeline: pipeline) }

    /// Whether this node runs the monitor (always on one node; on several, the holder of the `monitor:cluster`
    /// lease — App+Leases.swift).
    private(set) var leading = false

    public func start() {
        guard !leading else { return }
        leading = true
        monitor.start()
    }

    public func stop() {
        leading = false
        monitor.stop()
    }

    /// The lease that makes a node the cluster's monitor: one detector, one set of incidents.
    static let leaseTopic = "monitor:cluster"

    public let commands: [CommandDeclaration] = ["acknowledge_incident", "file_bug", "mute_incident", "resolve_incident"].map {
        CommandDeclaration(type: $0, roles: [.admin], changesState: true)
    } + [
        // Ingest a node that is not the monitor forwards to the one that is (App+Leases.swift); no client may send it.
        CommandDeclaration(type: "ingest_lines", roles: [], changesState: false),
    ]

    /// On several nodes incident commands and forwarded ingest run on the monitor's node.
    public func leasedInstance(of message: ClientMessage) -> String? {
        guard case .feature(let type, _) = message, commands.contains(where: { $0.type == type }) else { return nil }
        return Self.leaseTopic
    }

    /// This node became the cluster's monitor (at start, or after the last one stopped renewing): baselines and
    /// incidents are read from the store again (what the last monitor stored), then the tailers and buckets run.
    /// Reading is blocking, once, on the loop: a few thousand bucket rows and the open incidents.
    public func resume(_ topic: String, from node: String) {
        guard topic == Self.leaseTopic, !leading else { return }
        do {
            try monitor.reload()
            try incidents.reload()
        } catch {
            monitor.logger.error("monitor: reading the last monitor's state failed (\(error)); starting from what this node had")
        }
        monitor.logger.info("this node runs the monitor now (after \(node))")
        start()
    }

    /// Another node runs the monitor now.
    public func leaseLost(_ topic: String) {
        guard topic == Self.leaseTopic else { return }
        monitor.logger.warning("another node runs the monitor now; this node's tailers and buckets stop")
        stop()
    }

    public let topics = [TopicDeclaration(instance: "incident", collection: "incidents", presence: true)]

    static let maxMuteSeconds: Int64 = 7 * 86_400
    /// `GET /api/v1/incidents/{id}` carries the newest this many events (a long-lived incident has a `bucket` event
    /// per closed bucket); earlier ones through `…/events?since=`.
    static let detailEvents = 200

    public func execute(_ message: ClientMessage, commandID: String?, principal: Principal, reply: @escaping CommandReply) {
        guard case .feature(let type, let fields) = message else {
            return reply(.failure(ProtocolError(code: .invalidMessage, message: "\(message.type) is not an incident command")))
        }
        let refuse = { (text: String) in reply(.failure(ProtocolError(code: .invalidMessage, message: text, id: commandID))) }
        if type == "ingest_lines" {
            guard let body = fields["body"]?.stringValue else { return refuse("field 'body' must be a string") }
            return reply(Self.ingestAnswer(monitor.ingest(Array(body.utf8), principal: principal.name), configuration: monitor.configuration))
        }
        guard let id = fields["incident"]?.stringValue, Topic.isValidProposalID(id) else { return refuse("field 'incident' must be an incident id") }
        let now = incidents.clock.nowMilliseconds()
        let event: IncidentEvent
        switch type {
        case "acknowledge_incident": event = .acknowledge(by: principal.name, role: principal.role)
        case "file_bug": event = .fileBug(by: principal.name, role: principal.role)
        case "mute_incident":
            guard let seconds = fields["duration_seconds"]?.intValue, (60...Self.maxMuteSeconds).contains(seconds) else {
                return refuse("field 'duration_seconds' must be an integer 60…\(Self.maxMuteSeconds)")
            }
            event = .mute(by: principal.name, role: principal.role, durationMs: seconds * 1000, now: now)
        case "resolve_incident":
            var reason: String?
            if let value = fields["reason"], value != .null {
                guard let text = value.stringValue, text.count <= 2000 else { return refuse("field 'reason' must be a string of at most 2000 characters") }
                reason = text
            }
            event = .resolve(by: principal.name, role: principal.role, reason: reason, now: now)
        default:
            return refuse("\(type) is not an incident command")
        }
        incidents.command(id, event, commandID: commandID, principal: principal, reply: reply)
    }

    /// An ingest's outcome as a command's answer: the per-line result, `retry_after_seconds` when over the rate
    /// (the route answers 429 with Retry-After), or `too_large` when the body can never fit.
    static func ingestAnswer(_ outcome: MonitorService.IngestOutcome, configuration: MonitorConfiguration) -> Result<JSONObject, ProtocolError> {
        switch outcome {
        case .accepted(let result): return .success(result)
        case .rateLimited(let seconds): return .success(["retry_after_seconds": .int(Int64(seconds))])
        case .tooManyLines(let lines, let max):
            // No Retry-After: waiting never makes it fit.
            return .failure(ProtocolError(
                code: .tooLarge,
                message: "the body has \(lines) lines (blank ones included), more than the \(max) of monitor.ingest.burst_lines: it can never fit the rate; split it into bodies of at most \(max) lines"))
        }
    }

    public func stats() -> JSONObject {
        var out = incidents.stats()
        let f = monitor.figures
        out["monitor_lines_ingested"] = .int(Int64(f.ingested))
        out["monitor_lines_tailed"] = .int(Int64(f.tailed))
        out["monitor_lines_rejected"] = .int(Int64(f.rejected))
        out["monitor_lines_skewed"] = .int(Int64(f.skewed))
        out["monitor_ingest_rate_limited"] = .int(Int64(f.rateLimited))
        out["monitor_overlong_lines"] = .int(Int64(f.overlongLines))
        out["monitor_files_rotated"] = .int(Int64(f.rotations))
        out["monitor_fingerprints"] = .int(Int64(monitor.detector.trackedFingerprints))
        return out
    }

    public func metrics() -> [MetricSample] {
        stats().members.sorted { $0.key < $1.key }.compactMap { key, value in
            guard case .int(let n) = value else { return nil }
            let gauge = key.hasSuffix("_open") || key == "monitor_fingerprints"
            return MetricSample(key, "Monitor figure \(key).", type: gauge ? "gauge" : "counter", value: Double(n))
        }
    }

    public var routes: [RESTRoute] {
        let monitor = self.monitor
        let actions = ["acknowledge": "acknowledge_incident", "file_bug": "file_bug", "mute": "mute_incident", "resolve": "resolve_incident"]
        var routes = [
            RESTRoute("POST", "api/v1/ingest", roles: [.ingest, .admin]) { call in
                // On several nodes the lines go to the monitor's node (forwarded through the store when it is
                // another); here when this node is it, or on one node.
                let respond = { (answer: Result<JSONObject, ProtocolError>) in
                    switch answer {
                    case .success(let fields):
                        if let seconds = fields["retry_after_seconds"]?.intValue {
                            let error = ProtocolError(code: .rateLimited, message: "over \(monitor.configuration.maxLinesPerSecond) lines per second; retry after \(seconds) s")
                            call.app.respondJSON(429, error.restBody, extraHeaders: [("Retry-After", String(seconds))], on: call.connection)
                        } else {
                            call.app.respondJSON(200, Array(JSONValue.object(fields).jsonString.utf8), on: call.connection)
                        }
                    case .failure(let error): call.app.respondError(error, on: call.connection)
                    }
                }
                let request = ClientRequest(message: .feature(type: "ingest_lines", fields: ["body": .string(String(decoding: call.request.body, as: UTF8.self))]))
                call.app.runOnOwner(Self.leaseTopic, request: request, principal: call.principal, respond: { bytes in
                    switch ServerMessage.decode(bytes) {
                    case .success(.error(let error)): respond(.failure(error))
                    case .success(.ack(_, let fields)): respond(.success(fields))
                    default: respond(.failure(ProtocolError(code: .internal, message: "the monitor's node answered something unreadable")))
                    }
                }, local: {
                    respond(Self.ingestAnswer(monitor.ingest(call.request.body, principal: call.principal.name), configuration: monitor.configuration))
                })
            },
            RESTRoute("GET", "api/v1/monitor", roles: [.admin, .viewer, .bot]) { [unowned self] call in
                var status = monitor.status()
                status["leading"] = .bool(self.leading)
                call.app.respondJSON(200, Array(JSONValue.object(status).jsonString.utf8), on: call.connection)
            },
            RESTRoute("GET", "api/v1/monitor/fingerprints", roles: [.admin, .viewer, .bot]) { call in
                let limit = min(max(Int(call.request.queryItems()["limit"] ?? "") ?? 100, 1), 1000)
                let store = call.app.store
                call.app.readStore(on: call.connection, { store.fingerprints(ids: nil, limit: limit, completion: $0) }) { rows in
                    .object(["fingerprints": .array(rows.map { row in
                        .object([
                            "id": .string(row.id), "service": .string(row.service), "key": .string(row.key), "total": .int(row.total),
                            "first_seen": .int(row.firstSeen), "last_seen": .int(row.lastSeen), "samples": .array(row.samples.map(JSONValue.string)),
                        ])
                    })])
                }
            },
            RESTRoute("GET", "api/v1/incidents", roles: [.admin, .viewer, .bot]) { call in
                let query = call.request.queryItems()
                let limit = min(max(Int(query["limit"] ?? "") ?? 100, 1), 1000)
                let store = call.app.store
                // Not closed first, then newest first within each group: ordered by the engine before the limit, so
                // many closed incidents never push an open one out of the page.
                let closed = IncidentStatus.allCases.filter(\.isClosed).map(\.rawValue)
                call.app.readStore(on: call.connection, {
                    store.workflows(kind: "incident", status: query["status"], last: closed, limit: limit, completion: $0)
                }) { rows in
                    .object(["incidents": .array(rows.compactMap(IncidentService.summary))])
                }
            },
            RESTRoute("GET", "api/v1/incidents/*", roles: [.admin, .viewer, .bot]) { call in
                let store = call.app.store
                let id = call.captures[0]
                call.app.readStore(on: call.connection, { (completion: @escaping @Sendable (Result<IncidentPage, StoreError>) -> Void) in
                    store.workflow(id: id) { row in
                        switch row {
                        case .failure(let error): completion(.failure(error))
                        case .success(let row):
                            store.latestEvents(topic: "incident:\(id)", limit: MonitorFeature.detailEvents) { page in
                                completion(page.map { IncidentPage(row: row, head: $0.head, events: $0.events) })
                            }
                        }
                    }
                }) { page in
                    guard let row = page.row, row.kind == "incident", let machine = try? IncidentMachine.load(document: row.doc) else { return nil }
                    return .object([
                        "incident": .object(machine.detail(updatedAt: row.updatedAt)), "head": .int(page.head),
                        "events": .array(page.events.map(App.json(event:))),
                    ])
                } notFound: {
                    ProtocolError(code: .notFound, message: "no incident \(id)")
                }
            },
            RESTRoute("GET", "api/v1/incidents/*/events", roles: [.admin, .viewer, .bot]) { call in call.app.respondEvents(topic: "incident:\(call.captures[0])", call) },
        ]
        for (action, type) in actions.sorted(by: { $0.key < $1.key }) {
            routes.append(RESTRoute("POST", "api/v1/incidents/*/\(action)") { call in
                guard var body = call.request.body.isEmpty ? JSONObject() : call.app.jsonBody(call.request, on: call.connection) else { return }
                body["incident"] = .string(call.captures[0])
                call.app.restCommand(.feature(type: type, fields: body), id: call.commandID, principal: call.principal, status: 200, on: call.connection)
            })
        }
        return routes
    }
}
