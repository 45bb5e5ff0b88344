// ProposalsFeature: proposals, registered like every later feature — their commands and who may send them,
// the `proposal:<id>` / `proposals` topics, the REST routes under /api/v1/proposals and /api/v1/admin/proposals,
// the figures of the `stats` command and their Prometheus series. The work itself is `PipelineService`'s.
import EventLoop
import HTTP1
public import Protocol
import Server
import Store

public final class ProposalsFeature: Feature {
    public let name = "proposals"
    let pipeline: PipelineService

    public init(pipeline: PipelineService) { self.pipeline = pipeline }

    private static let everyone: Set<Role> = [.admin, .viewer, .bot]

    /// Who may send what (protocol/README.md, "Roles"): only admins review, auto-fix and roll back; viewers
    /// only comment and read; a bot may withdraw only its own proposals (checked by the machine).
    public let commands: [CommandDeclaration] = [
        CommandDeclaration(type: "propose", roles: [.admin, .bot], changesState: true, builtIn: true),
        CommandDeclaration(type: "approve", roles: [.admin], changesState: true, builtIn: true),
        CommandDeclaration(type: "reject", roles: [.admin], changesState: true, builtIn: true),
        CommandDeclaration(type: "request_changes", roles: [.admin], changesState: true, builtIn: true),
        CommandDeclaration(type: "auto_fix", roles: [.admin], changesState: true, builtIn: true),
        CommandDeclaration(type: "rollback", roles: [.admin], changesState: true, builtIn: true),
        CommandDeclaration(type: "withdraw", roles: [.admin, .bot], changesState: true, builtIn: true),
        CommandDeclaration(type: "comment", roles: everyone, changesState: true, builtIn: true),
    ]

    public let topics = [TopicDeclaration(instance: "proposal", collection: "proposals", presence: true)]

    public func execute(_ message: ClientMessage, commandID: String?, principal: Principal, reply: @escaping CommandReply) {
        pipeline.execute(message, commandID: commandID, principal: principal, reply: reply)
    }

    /// Commands on one proposal run where its lease is (several nodes).
    public func leasedInstance(of message: ClientMessage) -> String? {
        switch message {
        case .review(let review): "proposal:\(review.proposal)"
        case .autoFix(let proposal), .rollback(let proposal), .withdraw(let proposal, _), .comment(let proposal, _): "proposal:\(proposal)"
        case .propose, .hello, .subscribe, .unsubscribe, .stats, .feature: nil
        }
    }

    public func resume(_ topic: String, from node: String) { pipeline.resume(String(topic.dropFirst("proposal:".count)), from: node) }
    public func leaseLost(_ topic: String) { pipeline.leaseLost(String(topic.dropFirst("proposal:".count))) }

    public func stats() -> JSONObject { pipeline.stats() }

    /// `medic_pipeline_<figure>` gauges (names kept from before the registry, so dashboards keep working).
    public func metrics() -> [MetricSample] {
        var out: [MetricSample] = []
        for (key, value) in pipeline.stats().members {
            let name = "pipeline_" + key
            switch value {
            case .object(let perCategory):
                for (label, count) in perCategory.members {
                    out.append(MetricSample(name, "Pipeline figure \(key) per failure category.", value: Double(count.intValue ?? 0), labels: [("category", label)]))
                }
            case .int(let n): out.append(MetricSample(name, "Pipeline figure \(key).", value: Double(n)))
            case .number(let d): out.append(MetricSample(name, "Pipeline figure \(key).", value: d))
            default: break
            }
        }
        return out
    }

    public var routes: [RESTRoute] {
        [
            RESTRoute("POST", "api/v1/proposals") { call in
                guard let body = call.app.jsonBody(call.request, on: call.connection) else { return }
                switch ClientMessage.decode(type: "propose", fields: body, id: call.commandID, limits: call.app.protocolLimits) {
                case .success(let message): call.app.restCommand(message, id: call.commandID, principal: call.principal, status: 201, on: call.connection)
                case .failure(let error): call.app.respondError(error, on: call.connection)
                }
            },
            RESTRoute("GET", "api/v1/meta") { call in
                // What clients need to act without copying the server's rules (one set of predicates).
                let configuration = call.app.configuration
                call.app.respondJSON(200, JSONValue.object([
                    "protocol": .string(medicSubprotocol), "statuses": ProposalStatus.predicatesJSON,
                    "quorum": .int(Int64(configuration.quorum)), "max_attempts": .int(Int64(configuration.maxAttempts)),
                    "fix_mode": .string(configuration.autoFix ? "auto" : "manual"),
                ]).bytes, on: call.connection)
            },
            RESTRoute("GET", "api/v1/proposals") { call in
                let query = call.request.queryItems()
                let limit = min(max(Int(query["limit"] ?? "") ?? 100, 1), 1000)
                let store = call.app.store
                call.app.readStore(on: call.connection, { store.proposals(status: query["status"], limit: limit, completion: $0) }) { rows in
                    .object(["proposals": .array(rows.map(Self.json(proposal:)))])
                }
            },
            RESTRoute("GET", "api/v1/proposals/*") { call in
                let store = call.app.store
                call.app.readStore(on: call.connection, { store.proposal(id: call.captures[0], completion: $0) }) { detail in detail.map(Self.json(detail:)) }
            },
            RESTRoute("GET", "api/v1/proposals/*/events") { call in call.app.respondEvents(topic: "proposal:\(call.captures[0])", call) },
            RESTRoute("GET", "api/v1/proposals/*/revisions/#/base") { [unowned self] call in
                self.pipeline.baseFiles(proposal: call.captures[0], revision: Int(call.captures[1]) ?? 0) { result in
                    guard !call.connection.isClosed else { return }
                    switch result {
                    case .success(let json): call.app.respondJSON(200, json.bytes, on: call.connection)
                    case .failure(let error): call.app.respondError(error, on: call.connection)
                    }
                }
            },
            RESTRoute("POST", "api/v1/proposals/*/review") { call in
                guard let body = call.app.jsonBody(call.request, on: call.connection) else { return }
                switch ClientMessage.decodeReviewBody(proposal: call.captures[0], body: body, limits: call.app.protocolLimits) {
                case .success(let review): call.app.restCommand(.review(review), id: call.commandID, principal: call.principal, status: 200, on: call.connection)
                case .failure(let error): call.app.respondError(error, on: call.connection)
                }
            },
            RESTRoute("POST", "api/v1/proposals/*/withdraw") { call in
                guard var body = call.request.body.isEmpty ? JSONObject() : call.app.jsonBody(call.request, on: call.connection) else { return }
                body["proposal"] = .string(call.captures[0])  // the path names the proposal
                switch ClientMessage.decode(type: "withdraw", fields: body, id: call.commandID, limits: call.app.protocolLimits) {
                case .success(let message): call.app.restCommand(message, id: call.commandID, principal: call.principal, status: 200, on: call.connection)
                case .failure(let error): call.app.respondError(error, on: call.connection)
                }
            },
            RESTRoute("POST", "api/v1/admin/proposals/auto-fix/*") { call in
                call.app.restCommand(.autoFix(proposal: call.captures[0]), id: call.commandID, principal: call.principal, status: 200, on: call.connection)
            },
            // Everything under /api/v1/admin/ is for admins, reads included (protocol/README.md §8).
            RESTRoute("GET", "api/v1/admin/proposals/auto-fix/status/*", roles: [.admin]) { call in
                let manual = !call.app.configuration.autoFix
                let store = call.app.store
                call.app.readStore(on: call.connection, { store.proposal(id: call.captures[0], completion: $0) }) { detail in
                    detail.map { Self.autoFixStatus($0, manual: manual) }
                }
            },
        ]
    }

    static func json(proposal row: ProposalRow) -> JSONValue {
        .object([
            "id": .string(row.id), "title": .string(row.title), "description": .string(row.description),
            "repo": .string(row.repo), "status": .string(row.status), "revision": .int(Int64(row.currentRevision)),
            "attempts": .int(Int64(row.attempts)), "author": .string(row.author),
            "created_at": .int(row.createdAt), "updated_at": .int(row.updatedAt), "state": App.parsed(row.doc),
        ])
    }

    static func json(detail: ProposalDetail) -> JSONValue {
        guard case .object(var object) = json(proposal: detail.proposal) else { return .null }
        object["revisions"] = .array(detail.revisions.map { revision in
            var doc = App.parsed(revision.doc).objectValue ?? JSONObject()
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

}
