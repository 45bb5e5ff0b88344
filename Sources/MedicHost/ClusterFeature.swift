// ClusterFeature: `GET /api/v1/cluster` (admins) — this node and the nodes sharing its store (App+Nodes.swift) —
// and the node's figures in /metrics. No commands, no topics.
public import Protocol
import Store

public final class ClusterFeature: Feature {
    private unowned let app: App

    public init(app: App) { self.app = app }

    public var name: String { "cluster" }
    public var commands: [CommandDeclaration] { [] }
    public var topics: [TopicDeclaration] { [] }

    public var routes: [RESTRoute] {
        [
            RESTRoute("GET", "api/v1/cluster", roles: [.admin]) { call in
                // With every lease (which node runs which instance) read from the store.
                call.app.readStore(on: call.connection, { call.app.store.leases(completion: $0) }) { leases in
                    guard case .object(var object) = call.app.clusterJSON() else { return nil }
                    object["leases"] = call.app.leasesJSON(leases)
                    return .object(object)
                }
            },
        ]
    }

    public func execute(_ message: ClientMessage, commandID: String?, principal: Principal, reply: @escaping CommandReply) {
        reply(.failure(ProtocolError(code: .unknownType, message: "the cluster has no commands")))
    }

    public func stats() -> JSONObject { [:] }

    public func metrics() -> [MetricSample] {
        guard let state = app.cluster else { return [] }
        return [
            MetricSample("nodes_alive", "Nodes sharing the store that answered their heartbeat (1 on SQLite).",
                         value: Double(state.shared ? state.alive.count : 1), labels: [("node", state.id)]),
            MetricSample("node_catching_up_topics", "Topics being read from the store after another node's commit.",
                         value: Double(app.remoteFetches.count), labels: [("node", state.id)]),
        ]
    }
}
