// ServerMessage: every server → client message — fast byte encoders for the server, a decoder for clients.

/// The subprotocol name negotiated in `Sec-WebSocket-Protocol` and echoed in `welcome.protocol`.
public let medicSubprotocol = "medic.v1"

/// One watcher of a `proposal:` topic as sent in `presence.members`.
public struct PresenceMember: Sendable, Equatable, Hashable {
    public var principal: String
    public var role: String
    /// When this principal started watching (the earliest of its connections), ms since the Unix epoch.
    public var since: Int64

    public init(principal: String, role: String, since: Int64) {
        self.principal = principal
        self.role = role
        self.since = since
    }

    var json: JSONValue { ["principal": .string(principal), "role": .string(role), "since": .int(since)] }
}

/// An `event` frame's content. `seq` is nil only for ephemeral kinds (`fix_delta`).
public struct Event: Sendable, Equatable {
    public var topic: String
    public var seq: Int64?
    /// Milliseconds since the Unix epoch, when the event was stored.
    public var ts: Int64
    public var kind: String
    public var data: JSONValue

    public init(topic: String, seq: Int64?, ts: Int64, kind: String, data: JSONValue) {
        self.topic = topic
        self.seq = seq
        self.ts = ts
        self.kind = kind
        self.data = data
    }
}

/// Event kinds (protocol/README.md, "Events"). Clients must ignore kinds they do not know.
public enum EventKind: String, Sendable, CaseIterable, Hashable {
    case proposalCreated = "proposal_created"
    case statusChanged = "status_changed"
    case sandboxReady = "sandbox_ready"
    case testStarted = "test_started"
    case testOutput = "test_output"
    case testFinished = "test_finished"
    case analysis
    case fixStarted = "fix_started"
    /// Ephemeral: streamed LLM text, never stored, sent without `seq`.
    case fixDelta = "fix_delta"
    case fixGenerated = "fix_generated"
    case fixFailed = "fix_failed"
    case unfixable
    case review
    case comment
    case applied
    case applyFailed = "apply_failed"
    case rolledBack = "rolled_back"
    /// On topic `proposals`: a summary of one proposal after any change.
    case proposal
    /// On topic `repo:<name>` (the navigator): an index run completed / failed.
    case indexed
    case indexFailed = "index_failed"
    /// Ephemeral, on `repo:<name>`: an index run's progress.
    case indexProgress = "index_progress"

    /// Ephemeral kinds are delivered live only: no `seq`, not stored, not replayed.
    public var isEphemeral: Bool { self == .fixDelta || self == .indexProgress }
}

/// Proposal statuses (`status_changed.status`, `proposal.status`).
public enum ProposalStatus: String, Sendable, Codable, CaseIterable, Hashable {
    case proposed, deploying, testing
    case testsPassed = "tests_passed"
    case testsFailed = "tests_failed"
    case analyzing, fixing
    case awaitingReview = "awaiting_review"
    case approved, applying, applied
    case applyFailed = "apply_failed"
    case rejected
    case changesRequested = "changes_requested"
    case unfixable
    case rolledBack = "rolled_back"
    case interrupted
    /// Ended by its author or an admin before it was applied (`withdraw`).
    case withdrawn
}

/// Failure categories (`analysis.category`, `analysis.categories`).
public enum FailureCategory: String, Sendable, Codable, CaseIterable, Hashable {
    case `import`, syntax, indentation
    case undefinedName = "undefined_name"
    case type
    case fileNotFound = "file_not_found"
    case assertion, timeout, crash
    /// The run wrote more than its disk quota (killed by Medic) or hit "No space left on device".
    case diskQuota = "disk_quota"
    case other
}

/// Builds an `event` frame's JSON once; the server wraps it in one WebSocket frame and shares
/// that frame across every subscriber (invariant 3).
public enum EventFrame {
    /// `{"type":"event","topic":…,"seq":…,"ts":…,"kind":…,"data":<dataJSON>}`.
    ///
    /// `dataJSON` must already be one valid JSON value (the store keeps each event's data as
    /// JSON text, so replay re-frames stored bytes without re-encoding them). `seq` is omitted
    /// for ephemeral events.
    public static func encode(topic: String, seq: Int64?, ts: Int64, kind: String, dataJSON: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(dataJSON.count + topic.utf8.count + kind.utf8.count + 64)
        JSONWriter.appendLiteral("{\"type\":\"event\",\"topic\":", to: &out)
        JSONWriter.appendString(topic, to: &out)
        if let seq {
            JSONWriter.appendLiteral(",\"seq\":", to: &out)
            JSONWriter.appendInt(seq, to: &out)
        }
        JSONWriter.appendLiteral(",\"ts\":", to: &out)
        JSONWriter.appendInt(ts, to: &out)
        JSONWriter.appendLiteral(",\"kind\":", to: &out)
        JSONWriter.appendString(kind, to: &out)
        JSONWriter.appendLiteral(",\"data\":", to: &out)
        out.append(contentsOf: dataJSON)
        out.append(UInt8(ascii: "}"))
        return out
    }

    /// Same, encoding `data` first.
    public static func encode(topic: String, seq: Int64?, ts: Int64, kind: String, data: JSONValue) -> [UInt8] {
        encode(topic: topic, seq: seq, ts: ts, kind: kind, dataJSON: data.bytes)
    }

    /// Encodes an `Event` value.
    public static func encode(_ event: Event) -> [UInt8] {
        encode(topic: event.topic, seq: event.seq, ts: event.ts, kind: event.kind, dataJSON: event.data.bytes)
    }
}

/// Every message the server sends.
public enum ServerMessage: Sendable, Equatable {
    case welcome(principal: String, role: Role, protocol: String)
    case event(Event)
    /// `id` is nil when the command carried none; `fields` are the command-specific extras.
    case ack(id: String?, fields: JSONObject)
    case error(ProtocolError)
    case presence(topic: String, members: [PresenceMember])

    /// Every wire `type` the server sends.
    public static let types: [String] = ["welcome", "event", "ack", "error", "presence"]

    // MARK: Encoders (server side)

    /// `{"type":"welcome","principal":…,"role":…,"protocol":"medic.v1"}`.
    public static func welcome(principal: String, role: Role, protocol name: String = medicSubprotocol) -> [UInt8] {
        var object: JSONObject = ["type": "welcome"]
        object["principal"] = .string(principal)
        object["role"] = .string(role.rawValue)
        object["protocol"] = .string(name)
        return JSONValue.object(object).bytes
    }

    /// `{"type":"ack","id":…, <fields>}`; `fields` must not contain `type` or `id`.
    public static func ack(id: String?, fields: JSONObject = JSONObject()) -> [UInt8] {
        var object: JSONObject = ["type": "ack"]
        if let id { object["id"] = .string(id) }
        for member in fields.members where member.key != "type" && member.key != "id" {
            object.appendUnchecked(key: member.key, value: member.value)
        }
        return JSONValue.object(object).bytes
    }

    /// `{"type":"error","id":…,"code":…,"message":…}` (`id` omitted when nil).
    public static func error(id: String?, code: ErrorCode, message: String) -> [UInt8] {
        var object: JSONObject = ["type": "error"]
        if let id { object["id"] = .string(id) }
        object["code"] = .string(code.rawValue)
        object["message"] = .string(message)
        return JSONValue.object(object).bytes
    }

    /// Encodes a `ProtocolError` as an `error` message.
    public static func error(_ error: ProtocolError) -> [UInt8] {
        self.error(id: error.id, code: error.code, message: error.message)
    }

    /// `{"type":"presence","topic":…,"members":[{principal, role, since}…]}`.
    public static func presence(topic: String, members: [PresenceMember]) -> [UInt8] {
        let object: JSONObject = [
            "type": "presence", "topic": .string(topic), "members": .array(members.map(\.json)),
        ]
        return JSONValue.object(object).bytes
    }

    /// This message's bytes.
    public func encode() -> [UInt8] {
        switch self {
        case .welcome(let principal, let role, let name):
            ServerMessage.welcome(principal: principal, role: role, protocol: name)
        case .event(let event): EventFrame.encode(event)
        case .ack(let id, let fields): ServerMessage.ack(id: id, fields: fields)
        case .error(let error): ServerMessage.error(error)
        case .presence(let topic, let members): ServerMessage.presence(topic: topic, members: members)
        }
    }

    // MARK: Decoder (client side: bots, the CLI, tests)

    /// Decodes one server message. Unknown fields are ignored; an unknown `type` is `unknown_type`.
    public static func decode(_ bytes: [UInt8], limits: JSONParseLimits = JSONParseLimits())
        -> Result<ServerMessage, ProtocolError>
    {
        let value: JSONValue
        do {
            value = try JSONValue.parse(bytes, limits: limits)
        } catch {
            return .failure(ProtocolError(code: error.isTooLarge ? .tooLarge : .badJSON, message: error.description))
        }
        guard case .object(let object) = value else {
            return .failure(ProtocolError(code: .invalidMessage, message: "message must be a JSON object"))
        }
        let reader = FieldReader(object: object, id: nil, limits: ProtocolLimits())
        do throws(ProtocolError) {
            let type = try reader.string("type", maxBytes: 64)
            switch type {
            case "welcome":
                let roleText = try reader.string("role", maxBytes: 64)
                guard let role = Role(rawValue: roleText) else {
                    throw .field("role", must: "one of admin, viewer, bot", id: nil)
                }
                return .success(
                    .welcome(
                        principal: try reader.string("principal", maxBytes: 1024), role: role,
                        protocol: try reader.string("protocol", maxBytes: 64)))
            case "event":
                let topic = try reader.string("topic", maxBytes: 128)
                var seq: Int64? = nil
                if let rawSeq = object["seq"] {
                    guard case .int(let n) = rawSeq, n >= 1 else {
                        throw .field("seq", must: "an integer >= 1", id: nil)
                    }
                    seq = n
                }
                guard case .int(let ts) = object["ts"] else { throw .field("ts", must: "an integer", id: nil) }
                let kind = try reader.string("kind", maxBytes: 64)
                guard let data = object["data"] else { throw .missing("data", "a JSON value", id: nil) }
                return .success(.event(Event(topic: topic, seq: seq, ts: ts, kind: kind, data: data)))
            case "ack":
                let id = try reader.optionalString("id", maxBytes: 1024)
                var fields = JSONObject()
                for member in object.members where member.key != "type" && member.key != "id" {
                    fields.appendUnchecked(key: member.key, value: member.value)
                }
                return .success(.ack(id: id, fields: fields))
            case "error":
                let id = try reader.optionalString("id", maxBytes: 1024)
                let codeText = try reader.string("code", maxBytes: 64)
                guard let code = ErrorCode(rawValue: codeText) else {
                    throw .field("code", must: "a known error code", id: nil)
                }
                let message = try reader.string("message", maxBytes: 1 << 16, allowEmpty: true)
                return .success(.error(ProtocolError(code: code, message: message, id: id)))
            case "presence":
                let topic = try reader.string("topic", maxBytes: 128)
                guard case .array(let rawMembers) = object["members"] else {
                    throw .field("members", must: "an array", id: nil)
                }
                var members: [PresenceMember] = []
                for (i, rawMember) in rawMembers.enumerated() {
                    guard case .object(let m) = rawMember, case .string(let principal) = m["principal"],
                        case .string(let role) = m["role"], case .int(let since) = m["since"]
                    else {
                        throw .field(
                            "members[\(i)]", must: "an object {principal: string, role: string, since: integer}",
                            id: nil)
                    }
                    members.append(PresenceMember(principal: principal, role: role, since: since))
                }
                return .success(.presence(topic: topic, members: members))
            default:
                throw ProtocolError(code: .unknownType, message: "unknown message type '\(type)'")
            }
        } catch {
            return .failure(error)
        }
    }
}
