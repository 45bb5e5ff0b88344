// ClientMessage: every client → server command, decoded from a text frame with precise errors.

/// Limits on inbound commands. Every one is enforced by `ClientMessage.decode`.
public struct ProtocolLimits: Sendable, Equatable {
    /// Maximum inbound message size (bytes of one text message). Default 1 MiB.
    public var maxMessageBytes: Int
    /// Maximum JSON nesting. Default 32 (commands nest 3 deep).
    public var maxDepth: Int
    /// Maximum length of a command `id`, in bytes. Default 128.
    public var maxIDBytes: Int
    /// Maximum length of a token in `hello`, in bytes. Default 4096.
    public var maxTokenBytes: Int
    /// Maximum length of a proposal title, in bytes. Default 200.
    public var maxTitleBytes: Int
    /// Maximum length of a description, comment or repo name, in bytes. Default 64 KiB.
    public var maxTextBytes: Int
    /// Maximum number of file changes in one proposal. Default `defaultMaxChanges` (100), the same bound
    /// the pipeline's patch validator applies to every revision, so what the decoder accepts is never
    /// refused later.
    public var maxChanges: Int
    public static let defaultMaxChanges = 100
    /// Maximum length of one file path, in bytes. Default 1024.
    public var maxPathBytes: Int

    public init(
        maxMessageBytes: Int = 1 << 20, maxDepth: Int = 32, maxIDBytes: Int = 128, maxTokenBytes: Int = 4096,
        maxTitleBytes: Int = 200, maxTextBytes: Int = 64 << 10, maxChanges: Int = ProtocolLimits.defaultMaxChanges,
        maxPathBytes: Int = 1024
    ) {
        self.maxMessageBytes = maxMessageBytes
        self.maxDepth = maxDepth
        self.maxIDBytes = maxIDBytes
        self.maxTokenBytes = maxTokenBytes
        self.maxTitleBytes = maxTitleBytes
        self.maxTextBytes = maxTextBytes
        self.maxChanges = maxChanges
        self.maxPathBytes = maxPathBytes
    }
}

/// What a change does to a file.
public enum ChangeAction: String, Sendable, Codable, CaseIterable, Hashable {
    case create, modify, delete
}

/// One file of a patch. `content` is the whole new file for create/modify and absent for delete.
public struct FileChange: Sendable, Codable, Equatable, Hashable {
    /// Relative to the repository root; no absolute paths, no `.`/`..`/empty components, no `\` or NUL.
    public var path: String
    public var action: ChangeAction
    public var content: String?

    public init(path: String, action: ChangeAction, content: String? = nil) {
        self.path = path
        self.action = action
        self.content = content
    }

    /// Invariant 6: a path must stay inside the repository. Checked lexically here; the
    /// sandbox still refuses symlink escapes.
    public static func isSafeRelativePath(_ path: String, maxBytes: Int = 1024) -> Bool {
        let utf8 = path.utf8
        guard !utf8.isEmpty, utf8.count <= maxBytes, utf8.first != UInt8(ascii: "/") else { return false }
        if utf8.contains(0) || utf8.contains(UInt8(ascii: "\\")) { return false }
        for component in path.split(separator: "/", omittingEmptySubsequences: false) {
            if component.isEmpty || component == "." || component == ".." { return false }
        }
        return true
    }

    var json: JSONValue {
        var object: JSONObject = ["path": .string(path), "action": .string(action.rawValue)]
        if let content { object["content"] = .string(content) }
        return .object(object)
    }
}

/// `propose`: a new proposal with its first revision.
public struct ProposeCommand: Sendable, Equatable {
    public var title: String
    public var description: String
    public var repo: String?
    public var changes: [FileChange]

    public init(title: String, description: String, repo: String? = nil, changes: [FileChange]) {
        self.title = title
        self.description = description
        self.repo = repo
        self.changes = changes
    }
}

/// A review's verdict; the wire `type` of the command and the `verdict` of the `review` event.
public enum ReviewVerdict: String, Sendable, Codable, CaseIterable, Hashable {
    case approve
    case reject
    case requestChanges = "request_changes"
}

/// `approve` / `reject` / `request_changes`, bound to the revision the reviewer saw (invariant 5).
public struct ReviewCommand: Sendable, Equatable {
    public var proposal: String
    public var revision: Int64
    public var verdict: ReviewVerdict
    /// Optional for approve; required and non-empty for reject and request_changes.
    public var comment: String?

    public init(proposal: String, revision: Int64, verdict: ReviewVerdict, comment: String? = nil) {
        self.proposal = proposal
        self.revision = revision
        self.verdict = verdict
        self.comment = comment
    }
}

/// Every command a client may send. The wire `type` is `type`.
public enum ClientMessage: Sendable, Equatable {
    case hello(token: String)
    case subscribe(topic: Topic, since: Int64?)
    case unsubscribe(topic: Topic)
    case propose(ProposeCommand)
    case review(ReviewCommand)
    case autoFix(proposal: String)
    case rollback(proposal: String)
    /// Ends a proposal that is not (being) applied: its author or an admin; `reason` is optional.
    case withdraw(proposal: String, reason: String?)
    case comment(proposal: String, text: String)
    case stats
    /// A command of a registered feature that this module does not decode itself: the feature validates
    /// `fields` (the whole message object, under the same size and depth limits).
    case feature(type: String, fields: JSONObject)

    /// Every wire `type` a client may send.
    public static let types: [String] = [
        "hello", "subscribe", "unsubscribe", "propose", "approve", "reject", "request_changes", "auto_fix",
        "rollback", "withdraw", "comment", "stats",
    ]

    /// The wire `type`.
    public var type: String {
        switch self {
        case .hello: "hello"
        case .subscribe: "subscribe"
        case .unsubscribe: "unsubscribe"
        case .propose: "propose"
        case .review(let review): review.verdict.rawValue
        case .autoFix: "auto_fix"
        case .rollback: "rollback"
        case .withdraw: "withdraw"
        case .comment: "comment"
        case .stats: "stats"
        case .feature(let type, _): type
        }
    }

    /// Whether a repeated command id must not apply the command twice (state-changing commands).
    public var isIdempotentByID: Bool {
        switch self {
        case .propose, .review, .autoFix, .rollback, .withdraw, .comment, .feature: true
        case .hello, .subscribe, .unsubscribe, .stats: false
        }
    }
}

/// A decoded command and its optional correlation `id`.
public struct ClientRequest: Sendable, Equatable {
    public var id: String?
    public var message: ClientMessage

    public init(id: String? = nil, message: ClientMessage) {
        self.id = id
        self.message = message
    }

    /// The command as a JSON object: `type`, then `id`, then the fields.
    public var json: JSONValue {
        var object: JSONObject = ["type": .string(message.type)]
        if let id { object["id"] = .string(id) }
        for member in message.fields.members { object[member.key] = member.value }
        return .object(object)
    }

    /// The command as one text frame's payload (bots, the CLI, tests).
    public func encode() -> [UInt8] { json.bytes }
}

extension ClientMessage {
    /// The command's fields without `type` and `id`.
    public var fields: JSONObject {
        switch self {
        case .hello(let token): return ["token": .string(token)]
        case .subscribe(let topic, let since):
            var object: JSONObject = ["topic": .string(topic.description)]
            if let since { object["since"] = .int(since) }
            return object
        case .unsubscribe(let topic): return ["topic": .string(topic.description)]
        case .propose(let p):
            var object: JSONObject = ["title": .string(p.title), "description": .string(p.description)]
            if let repo = p.repo { object["repo"] = .string(repo) }
            object["changes"] = .array(p.changes.map(\.json))
            return object
        case .review(let r):
            var object: JSONObject = ["proposal": .string(r.proposal), "revision": .int(r.revision)]
            if let comment = r.comment { object["comment"] = .string(comment) }
            return object
        case .autoFix(let proposal), .rollback(let proposal): return ["proposal": .string(proposal)]
        case .withdraw(let proposal, let reason):
            var object: JSONObject = ["proposal": .string(proposal)]
            if let reason { object["reason"] = .string(reason) }
            return object
        case .comment(let proposal, let text): return ["proposal": .string(proposal), "text": .string(text)]
        case .stats: return [:]
        case .feature(_, let fields):
            var object = fields
            object["type"] = nil
            object["id"] = nil
            return object
        }
    }

    /// Decodes one text message. Order of checks: size (`too_large`), JSON (`bad_json`), shape
    /// (`invalid_message`), `type` (`unknown_type`), fields (`invalid_message` naming the field).
    /// Unknown fields are ignored so clients may add fields (forward compatibility).
    public static func decode(_ bytes: UnsafeRawBufferPointer, limits: ProtocolLimits = ProtocolLimits(), featureTypes: Set<String> = [])
        -> Result<ClientRequest, ProtocolError>
    {
        guard bytes.count <= limits.maxMessageBytes else {
            return .failure(
                ProtocolError(code: .tooLarge, message: "message larger than \(limits.maxMessageBytes) bytes"))
        }
        let value: JSONValue
        do {
            value = try JSONValue.parse(
                bytes, limits: JSONParseLimits(maxBytes: limits.maxMessageBytes, maxDepth: limits.maxDepth))
        } catch {
            return .failure(ProtocolError(code: .badJSON, message: error.description))
        }
        guard case .object(let object) = value else {
            return .failure(ProtocolError(code: .invalidMessage, message: "message must be a JSON object"))
        }
        var id: String? = nil
        if let rawID = object["id"] {
            guard case .string(let s) = rawID, !s.isEmpty, s.utf8.count <= limits.maxIDBytes else {
                return .failure(.field("id", must: "a non-empty string of at most \(limits.maxIDBytes) bytes", id: nil))
            }
            id = s
        }
        guard let rawType = object["type"] else {
            return .failure(.missing("type", "a string", id: id))
        }
        guard case .string(let type) = rawType else {
            return .failure(.field("type", must: "a string", id: id))
        }
        return decode(type: type, fields: object, id: id, limits: limits, featureTypes: featureTypes).map { ClientRequest(id: id, message: $0) }
    }

    /// Decodes a byte array; see `decode(_: UnsafeRawBufferPointer, limits:)`.
    public static func decode(_ bytes: [UInt8], limits: ProtocolLimits = ProtocolLimits(), featureTypes: Set<String> = [])
        -> Result<ClientRequest, ProtocolError>
    {
        bytes.withUnsafeBytes { decode($0, limits: limits, featureTypes: featureTypes) }
    }

    /// Decodes the fields of a command of the given `type` from an object. The REST API uses
    /// this for request bodies (e.g. `POST /api/v1/proposals` is `propose`'s fields).
    public static func decode(type: String, fields object: JSONObject, id: String?, limits: ProtocolLimits, featureTypes: Set<String> = [])
        -> Result<ClientMessage, ProtocolError>
    {
        let reader = FieldReader(object: object, id: id, limits: limits)
        do throws(ProtocolError) {
            switch type {
            case "hello":
                return .success(.hello(token: try reader.string("token", maxBytes: limits.maxTokenBytes)))
            case "subscribe":
                return .success(.subscribe(topic: try reader.topic("topic"), since: try reader.optionalSince("since")))
            case "unsubscribe":
                return .success(.unsubscribe(topic: try reader.topic("topic")))
            case "propose":
                return .success(.propose(try reader.propose()))
            case "approve", "reject", "request_changes":
                let verdict = ReviewVerdict(rawValue: type)!
                let proposal = try reader.proposalID("proposal")
                let revision = try reader.revision("revision")
                let comment: String?
                if verdict == .approve {
                    comment = try reader.optionalString("comment", maxBytes: limits.maxTextBytes)
                } else {
                    comment = try reader.string("comment", maxBytes: limits.maxTextBytes)
                }
                return .success(
                    .review(ReviewCommand(proposal: proposal, revision: revision, verdict: verdict, comment: comment)))
            case "auto_fix":
                return .success(.autoFix(proposal: try reader.proposalID("proposal")))
            case "rollback":
                return .success(.rollback(proposal: try reader.proposalID("proposal")))
            case "withdraw":
                return .success(
                    .withdraw(
                        proposal: try reader.proposalID("proposal"),
                        reason: try reader.optionalString("reason", maxBytes: limits.maxTextBytes)))
            case "comment":
                return .success(
                    .comment(
                        proposal: try reader.proposalID("proposal"),
                        text: try reader.string("text", maxBytes: limits.maxTextBytes)))
            case "stats":
                return .success(.stats)
            default:
                guard featureTypes.contains(type) else {
                    return .failure(ProtocolError(code: .unknownType, message: "unknown message type '\(type)'", id: id))
                }
                return .success(.feature(type: type, fields: object))
            }
        } catch {
            return .failure(error)
        }
    }
}

/// Reads typed fields and produces `invalid_message` errors that name the field and the type.
struct FieldReader {
    let object: JSONObject
    let id: String?
    let limits: ProtocolLimits

    func string(_ name: String, maxBytes: Int, allowEmpty: Bool = false) throws(ProtocolError) -> String {
        guard let value = object[name] else { throw .missing(name, "a string", id: id) }
        return try checkString(name, value, maxBytes: maxBytes, allowEmpty: allowEmpty)
    }

    func optionalString(_ name: String, maxBytes: Int, allowEmpty: Bool = false) throws(ProtocolError) -> String? {
        guard let value = object[name], value != .null else { return nil }
        return try checkString(name, value, maxBytes: maxBytes, allowEmpty: allowEmpty)
    }

    private func checkString(_ name: String, _ value: JSONValue, maxBytes: Int, allowEmpty: Bool)
        throws(ProtocolError) -> String
    {
        guard case .string(let s) = value else { throw .field(name, must: "a string", id: id) }
        if !allowEmpty && s.isEmpty { throw .field(name, must: "a non-empty string", id: id) }
        if s.utf8.count > maxBytes { throw .field(name, must: "at most \(maxBytes) bytes", id: id) }
        return s
    }

    func topic(_ name: String) throws(ProtocolError) -> Topic {
        let text = try string(name, maxBytes: 128)
        guard let topic = Topic(text) else {
            throw .field(name, must: "a topic: a collection such as 'proposals', or '<kind>:<id>' such as 'proposal:<id>' (kind in [a-z_]{1,32}, id in [A-Za-z0-9_-]{1,64})", id: id)
        }
        return topic
    }

    func proposalID(_ name: String) throws(ProtocolError) -> String {
        guard let value = object[name] else { throw .missing(name, "a proposal id", id: id) }
        guard case .string(let s) = value else { throw .field(name, must: "a string", id: id) }
        guard Topic.isValidProposalID(s) else {
            throw .field(name, must: "a proposal id matching [A-Za-z0-9_-]{1,64}", id: id)
        }
        return s
    }

    func revision(_ name: String) throws(ProtocolError) -> Int64 {
        guard let value = object[name] else { throw .missing(name, "an integer", id: id) }
        guard case .int(let n) = value else { throw .field(name, must: "an integer", id: id) }
        guard n >= 1 else { throw .field(name, must: "an integer >= 1", id: id) }
        return n
    }

    func optionalSince(_ name: String) throws(ProtocolError) -> Int64? {
        guard let value = object[name], value != .null else { return nil }
        guard case .int(let n) = value else { throw .field(name, must: "an integer", id: id) }
        guard n >= 0 else { throw .field(name, must: "an integer >= 0", id: id) }
        return n
    }

    func propose() throws(ProtocolError) -> ProposeCommand {
        let title = try string("title", maxBytes: limits.maxTitleBytes)
        let description = try string("description", maxBytes: limits.maxTextBytes, allowEmpty: true)
        let repo = try optionalString("repo", maxBytes: 256)
        guard let rawChanges = object["changes"] else { throw .missing("changes", "an array", id: id) }
        guard case .array(let elements) = rawChanges else { throw .field("changes", must: "an array", id: id) }
        guard !elements.isEmpty else { throw .field("changes", must: "a non-empty array", id: id) }
        guard elements.count <= limits.maxChanges else {
            throw .field("changes", must: "an array of at most \(limits.maxChanges) changes", id: id)
        }
        var changes: [FileChange] = []
        changes.reserveCapacity(elements.count)
        var seen = Set<String>()
        for (i, element) in elements.enumerated() {
            let prefix = "changes[\(i)]"
            guard case .object(let o) = element else { throw .field(prefix, must: "an object", id: id) }
            guard let rawPath = o["path"] else { throw .missing("\(prefix).path", "a string", id: id) }
            guard case .string(let path) = rawPath else { throw .field("\(prefix).path", must: "a string", id: id) }
            guard FileChange.isSafeRelativePath(path, maxBytes: limits.maxPathBytes) else {
                throw .field(
                    "\(prefix).path", must: "a relative path inside the repository (no leading '/', no '..')", id: id)
            }
            guard seen.insert(path).inserted else {
                throw .field("\(prefix).path", must: "unique within the proposal", id: id)
            }
            guard let rawAction = o["action"] else { throw .missing("\(prefix).action", "a string", id: id) }
            guard case .string(let actionText) = rawAction, let action = ChangeAction(rawValue: actionText) else {
                throw .field("\(prefix).action", must: "one of \"create\", \"modify\", \"delete\"", id: id)
            }
            var content: String? = nil
            switch action {
            case .create, .modify:
                guard let rawContent = o["content"] else {
                    throw .missing("\(prefix).content", "a string, required for \(action.rawValue)", id: id)
                }
                guard case .string(let s) = rawContent else {
                    throw .field("\(prefix).content", must: "a string", id: id)
                }
                content = s
            case .delete:
                if let rawContent = o["content"], rawContent != .null {
                    throw .field("\(prefix).content", must: "absent for delete", id: id)
                }
            }
            changes.append(FileChange(path: path, action: action, content: content))
        }
        return ProposeCommand(title: title, description: description, repo: repo, changes: changes)
    }
}

extension ClientMessage {
    /// Decodes the body of `POST /api/v1/proposals/{id}/review`:
    /// `{"revision", "verdict", "comment"?}` with the proposal id taken from the path.
    public static func decodeReviewBody(proposal: String, body: JSONObject, limits: ProtocolLimits = ProtocolLimits())
        -> Result<ReviewCommand, ProtocolError>
    {
        guard let rawVerdict = body["verdict"] else {
            return .failure(.missing("verdict", "one of \"approve\", \"reject\", \"request_changes\"", id: nil))
        }
        guard case .string(let verdictText) = rawVerdict, let verdict = ReviewVerdict(rawValue: verdictText) else {
            return .failure(.field("verdict", must: "one of \"approve\", \"reject\", \"request_changes\"", id: nil))
        }
        var fields = body
        fields["proposal"] = .string(proposal)
        switch decode(type: verdict.rawValue, fields: fields, id: nil, limits: limits) {
        case .success(.review(let review)): return .success(review)
        case .success:
            return .failure(ProtocolError(code: .internal, message: "review body decoded to another command"))
        case .failure(let error): return .failure(error)
        }
    }
}
