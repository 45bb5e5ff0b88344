// Feature: one kind of work Medic does — proposals today; bug reports, the navigator, asks and incidents next —
// declared once: its commands and who may send them, its topics, its REST routes, its figures and its
// Prometheus series, and the store migrations of its own tables. The App routes through the `FeatureRegistry` and knows no feature by name.
public import HTTP1
public import Protocol
public import Server
public import Store

/// A command a feature handles.
public struct CommandDeclaration: Sendable, Equatable {
    /// The wire `type` (`propose`, `approve`, … or a feature's own, decoded as `.feature(type:fields:)`).
    public var type: String
    /// Who may send it (`forbidden` for everyone else).
    public var roles: Set<Role>
    /// State-changing: the token is checked against the store again first, and a repeated command id replays
    /// the stored ack instead of running twice.
    public var changesState: Bool
    /// Decoded by Protocol's `ClientMessage` (built in) or passed through as `.feature(type:fields:)`.
    public var builtIn: Bool

    public init(type: String, roles: Set<Role>, changesState: Bool, builtIn: Bool = false) {
        self.type = type
        self.roles = roles
        self.changesState = changesState
        self.builtIn = builtIn
    }
}

/// The topics of a feature: `<instance>:<id>` for one instance and a collection for the list.
public struct TopicDeclaration: Sendable, Equatable {
    public var instance: String
    public var collection: String
    /// Instance topics track who watches them (`presence` events).
    public var presence: Bool

    public init(instance: String, collection: String, presence: Bool) {
        self.instance = instance
        self.collection = collection
        self.presence = presence
    }
}

/// One REST endpoint: a method and path pattern (`*` captures one id-shaped segment) under `/api/`.
public struct RESTRoute {
    public var method: String
    public var pattern: [String]
    /// Roles allowed to call it (nil: any authenticated principal).
    public var roles: Set<Role>?
    public var handler: (RESTCall) -> Void

    public init(_ method: String, _ path: String, roles: Set<Role>? = nil, handler: @escaping (RESTCall) -> Void) {
        self.method = method
        self.pattern = path.split(separator: "/").map(String.init)
        self.roles = roles
        self.handler = handler
    }

    /// The captured segments when `parts` match (each `*` an id in `[A-Za-z0-9_-]{1,64}`, or a positive
    /// integer where the pattern says `#`).
    func captures(_ parts: [String]) -> [String]? {
        guard parts.count == pattern.count else { return nil }
        var out: [String] = []
        for (part, expected) in zip(parts, pattern) {
            switch expected {
            case "*":
                guard Topic.isValidProposalID(part) else { return nil }
                out.append(part)
            case "#":
                guard let n = Int(part), n >= 1 else { return nil }
                out.append(part)
            default:
                guard part == expected else { return nil }
            }
        }
        return out
    }
}

/// One authenticated REST request, with what a handler answers through.
public struct RESTCall {
    public let request: HTTPRequest
    public let principal: Principal
    public let captures: [String]
    public let connection: Connection
    let app: App

    /// `Idempotency-Key`, the REST form of a command id.
    public var commandID: String? { request.headers["idempotency-key"] }
}

/// A Prometheus sample (`name{labels} value`) with its help and type lines.
public struct MetricSample: Sendable, Equatable {
    public var name: String
    public var help: String
    /// "counter" or "gauge".
    public var type: String
    public var value: Double
    public var labels: [(String, String)]

    public init(_ name: String, _ help: String, type: String = "gauge", value: Double, labels: [(String, String)] = []) {
        self.name = name
        self.help = help
        self.type = type
        self.value = value
        self.labels = labels
    }

    public static func == (a: MetricSample, b: MetricSample) -> Bool {
        a.name == b.name && a.value == b.value && a.labels.map { $0.0 + "=" + $0.1 } == b.labels.map { $0.0 + "=" + $0.1 }
    }
}

/// A kind of work, registered with the App. Loop-bound.
public protocol Feature: AnyObject {
    var name: String { get }
    var commands: [CommandDeclaration] { get }
    var topics: [TopicDeclaration] { get }
    /// Its REST endpoints (read once, at registration).
    var routes: [RESTRoute] { get }
    /// Runs one of its commands. Contract as `CommandExecutor.execute`: `reply` exactly once, on the loop,
    /// after the effect is durable.
    func execute(_ message: ClientMessage, commandID: String?, principal: Principal, reply: @escaping CommandReply)
    /// Its fields of the `stats` command's answer.
    func stats() -> JSONObject
    /// Its Prometheus series for `/metrics`.
    func metrics() -> [MetricSample]
    /// The migrations of its own tables. Their versions share the store's one numbering (`Store/Schema.swift`,
    /// schema_migrations is keyed by version): pick numbers no other migration uses — a collision is refused
    /// at startup. `MedicServer` applies every registered feature's migrations, in ascending version with the
    /// store's, before it listens; a feature must not read its tables before that (not in its `init`).
    var migrations: [Migration] { get }
    /// The live instance (its topic) a command acts on, when the feature's instances are leased: on several nodes
    /// the command runs on the node holding that instance's lease (App+Leases.swift). nil: runs where it arrives.
    func leasedInstance(of message: ClientMessage) -> String?
    /// This node claimed `topic`'s lease after `node` let it expire (killed, or cut off): load the instance and go
    /// on with it — re-run the step that was in flight, or mark it interrupted.
    func resume(_ topic: String, from node: String)
    /// Another node claimed `topic` while this node did not renew its lease: drop what memory holds of it.
    func leaseLost(_ topic: String)
}

extension Feature {
    /// Most features store only events and command rows (the store's own tables).
    public var migrations: [Migration] { [] }
    /// Most features' instances are not leased.
    public func leasedInstance(of message: ClientMessage) -> String? { nil }
    public func resume(_ topic: String, from node: String) {}
    public func leaseLost(_ topic: String) {}
}

/// Every registered feature, and the lookups the App makes per message.
public final class FeatureRegistry {
    public private(set) var features: [any Feature] = []
    private var byCommand: [String: (feature: any Feature, declaration: CommandDeclaration)] = [:]
    private var instanceKinds: Set<String> = []
    private var collections: Set<String> = []
    private(set) var presenceKinds: Set<String> = []
    private(set) var routes: [RESTRoute] = []

    public init() {}

    /// The session's own commands, which the App answers before any feature: a feature declaring one would
    /// never be called.
    static let sessionCommands: Set<String> = ["hello", "subscribe", "unsubscribe", "stats"]

    /// Adds a feature. Command types, topic kinds and routes must not collide with another feature's or the
    /// session's, and topic names must be ones clients can spell (`Topic`'s syntax): a declaration that could
    /// never be reached is a programming error, stopped at startup rather than found missing later.
    public func register(_ feature: any Feature) {
        for declaration in feature.commands {
            precondition(!Self.sessionCommands.contains(declaration.type), "command \(declaration.type) is the session's own")
            precondition(byCommand[declaration.type] == nil, "command \(declaration.type) is declared twice")
            byCommand[declaration.type] = (feature, declaration)
        }
        for topic in feature.topics {
            precondition(Topic.isValidKind(topic.instance) && Topic.isValidKind(topic.collection),
                "topic kinds must be [a-z_]{1,32}: \(topic.instance), \(topic.collection)")
            precondition(!instanceKinds.contains(topic.instance) && !collections.contains(topic.collection), "topic \(topic.instance) declared twice")
            instanceKinds.insert(topic.instance)
            collections.insert(topic.collection)
            if topic.presence { presenceKinds.insert(topic.instance) }
        }
        for route in feature.routes {
            precondition(!routes.contains { $0.method == route.method && $0.pattern == route.pattern },
                "route \(route.method) /\(route.pattern.joined(separator: "/")) is declared twice")
            routes.append(route)
        }
        features.append(feature)
    }

    /// The feature and declaration of a command type.
    public func command(_ type: String) -> (feature: any Feature, declaration: CommandDeclaration)? { byCommand[type] }

    /// Command types that Protocol does not decode itself (passed through as `.feature`).
    public var passThroughTypes: Set<String> { Set(byCommand.values.filter { !$0.declaration.builtIn }.map(\.declaration.type)) }

    /// Whether a topic names a registered kind or collection.
    public func knows(_ topic: Topic) -> Bool {
        topic.isInstance ? instanceKinds.contains(topic.kind) : collections.contains(topic.kind)
    }

    /// Every topic form clients may subscribe to, for error messages.
    public var topicForms: String {
        (collections.sorted() + instanceKinds.sorted().map { "\($0):<id>" }).joined(separator: ", ")
    }

    /// Every registered feature's migrations, in registration order (`Store.applyMigrations` orders them).
    public var migrations: [Migration] { features.flatMap(\.migrations) }

    /// The merged `stats` of every feature.
    public func stats() -> JSONObject {
        var out = JSONObject()
        for feature in features {
            for member in feature.stats().members { out[member.key] = member.value }
        }
        return out
    }
}
