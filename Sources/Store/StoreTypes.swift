// StoreTypes: the value types that cross the Store's API (rows, writes, outcomes, errors).

/// A failure reported by the store. `code` is one of the wire-visible codes below; `message` says what
/// happened in words an operator can act on.
public struct StoreError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The database is unreachable, locked, full or the connection broke; the worker is reconnecting.
    public static let storeUnavailable = "store_unavailable"
    /// A uniqueness rule was violated (e.g. a live principal with that name already exists).
    public static let conflict = "conflict"
    /// A referenced row does not exist.
    public static let notFound = "not_found"
    /// The request itself is malformed (bad URL, constraint violation, …).
    public static let invalid = "invalid"

    /// One of `storeUnavailable`, `conflict`, `notFound`, `invalid`.
    public var code: String
    /// Human-readable detail, including the database's own message where there is one.
    public var message: String

    /// How the worker must react; never shown to callers.
    enum Scope: Sendable, Equatable {
        /// Only the failing request is affected (rolled back to its savepoint).
        case request
        /// The whole transaction is void but the connection is fine (deadlock, serialization failure,
        /// SQLITE_BUSY): nothing was committed.
        case transaction
        /// The connection is gone or unusable: drop it and reconnect with backoff.
        case connection
    }
    var scope: Scope = .request

    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }

    init(code: String, message: String, scope: Scope) {
        self.code = code
        self.message = message
        self.scope = scope
    }

    static func unavailable(_ message: String, scope: Scope = .connection) -> StoreError {
        StoreError(code: storeUnavailable, message: message, scope: scope)
    }

    static func invalid(_ message: String) -> StoreError { StoreError(code: invalid, message: message) }

    public var description: String { "\(code): \(message)" }

    public static func == (lhs: StoreError, rhs: StoreError) -> Bool {
        lhs.code == rhs.code && lhs.message == rhs.message
    }
}

/// An event to append; the store assigns its `seq`.
public struct NewEvent: Sendable, Equatable {
    public var topic: String
    public var kind: String
    /// JSON text, stored verbatim.
    public var data: String
    /// Milliseconds since the Unix epoch.
    public var ts: Int64

    public init(topic: String, kind: String, data: String, ts: Int64) {
        self.topic = topic
        self.kind = kind
        self.data = data
        self.ts = ts
    }
}

/// An event as stored: `seq` is dense per topic, starting at 1.
public struct StoredEvent: Sendable, Equatable {
    public var topic: String
    public var seq: Int64
    public var ts: Int64
    public var kind: String
    public var data: String

    public init(topic: String, seq: Int64, ts: Int64, kind: String, data: String) {
        self.topic = topic
        self.seq = seq
        self.ts = ts
        self.kind = kind
        self.data = data
    }
}

/// One proposal's current state (the pipeline keeps anything else it needs in `doc`).
public struct ProposalRow: Sendable, Equatable {
    public var id: String
    public var title: String
    public var description: String
    public var repo: String
    public var status: String
    public var currentRevision: Int
    public var author: String
    public var createdAt: Int64
    public var updatedAt: Int64
    public var attempts: Int
    /// JSON blob of extra state.
    public var doc: String

    public init(
        id: String, title: String, description: String, repo: String, status: String, currentRevision: Int,
        author: String, createdAt: Int64, updatedAt: Int64, attempts: Int, doc: String
    ) {
        self.id = id
        self.title = title
        self.description = description
        self.repo = repo
        self.status = status
        self.currentRevision = currentRevision
        self.author = author
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.attempts = attempts
        self.doc = doc
    }
}

/// One revision of a proposal (a full patch plus its test run and analysis, as JSON in `doc`).
public struct RevisionRow: Sendable, Equatable {
    public var proposalId: String
    public var number: Int
    /// JSON: changes, base commit, explanation, analysis, test result, exit code, duration.
    public var doc: String
    public var createdAt: Int64

    public init(proposalId: String, number: Int, doc: String, createdAt: Int64) {
        self.proposalId = proposalId
        self.number = number
        self.doc = doc
        self.createdAt = createdAt
    }
}

/// A verdict on one revision.
public struct ReviewRow: Sendable, Equatable {
    public var proposalId: String
    public var revision: Int
    public var principal: String
    /// "approve", "reject" or "request_changes".
    public var verdict: String
    public var comment: String?
    public var ts: Int64

    public init(proposalId: String, revision: Int, principal: String, verdict: String, comment: String?, ts: Int64) {
        self.proposalId = proposalId
        self.revision = revision
        self.principal = principal
        self.verdict = verdict
        self.comment = comment
        self.ts = ts
    }
}

/// A free-text comment on a proposal.
public struct CommentRow: Sendable, Equatable {
    public var proposalId: String
    public var principal: String
    public var text: String
    public var ts: Int64

    public init(proposalId: String, principal: String, text: String, ts: Int64) {
        self.proposalId = proposalId
        self.principal = principal
        self.text = text
        self.ts = ts
    }
}

/// A user or bot allowed to connect. The token itself is never stored, only its SHA-256.
/// A live (not revoked) token: what a server re-checks its open sessions against.
public struct LiveCredential: Sendable, Equatable {
    /// SHA-256 hex of the token (`sha256Hex`).
    public var tokenHash: String
    public var name: String
    public var role: String

    public init(tokenHash: String, name: String, role: String) {
        self.tokenHash = tokenHash
        self.name = name
        self.role = role
    }
}

public struct PrincipalRow: Sendable, Equatable {
    public var name: String
    /// "admin", "viewer" or "bot".
    public var role: String
    public var createdAt: Int64
    public var revoked: Bool

    public init(name: String, role: String, createdAt: Int64, revoked: Bool) {
        self.name = name
        self.role = role
        self.createdAt = createdAt
        self.revoked = revoked
    }
}

/// A revision applied to the repository as `commit`; `revertedBy` is the revert commit after a rollback.
public struct AppliedChangeRow: Sendable, Equatable {
    public var proposalId: String
    public var revision: Int
    public var commit: String
    public var ts: Int64
    public var revertedBy: String?

    public init(proposalId: String, revision: Int, commit: String, ts: Int64, revertedBy: String?) {
        self.proposalId = proposalId
        self.revision = revision
        self.commit = commit
        self.ts = ts
        self.revertedBy = revertedBy
    }
}

/// Everything stored about one proposal.
public struct ProposalDetail: Sendable, Equatable {
    public var proposal: ProposalRow
    /// Ascending by number.
    public var revisions: [RevisionRow]
    /// In insertion order.
    public var reviews: [ReviewRow]
    /// In insertion order.
    public var comments: [CommentRow]
    /// In insertion order.
    public var appliedChanges: [AppliedChangeRow]
}

/// One workflow's current state (a bug report today; later asks and incidents): the few columns the lists
/// filter and sort on, and the workflow machine's own JSON record in `doc`. `id` is unique across kinds.
public struct WorkflowRow: Sendable, Equatable {
    /// "bug", later "ask", "incident".
    public var kind: String
    /// Globally unique, e.g. "b-xxxxxxxxxx".
    public var id: String
    public var repo: String
    public var title: String
    public var status: String
    public var author: String
    /// Milliseconds since the Unix epoch.
    public var createdAt: Int64
    public var updatedAt: Int64
    /// The workflow machine's JSON record, stored verbatim.
    public var doc: String

    public init(
        kind: String, id: String, repo: String, title: String, status: String, author: String, createdAt: Int64,
        updatedAt: Int64, doc: String
    ) {
        self.kind = kind
        self.id = id
        self.repo = repo
        self.title = title
        self.status = status
        self.author = author
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.doc = doc
    }
}

/// One statement an ask (or a structured query) ran or had refused.
public struct QueryAuditRow: Sendable, Equatable {
    public var id: Int64 = 0
    public var ts: Int64
    public var principal: String
    public var askId: String?
    public var source: String
    public var question: String?
    public var sql: String
    public var rowCount: Int?
    public var durationMs: Int?
    public var refusalCode: String?
    public var refusalReason: String?

    public init(
        ts: Int64, principal: String, askId: String?, source: String, question: String?, sql: String, rowCount: Int?, durationMs: Int?,
        refusalCode: String?, refusalReason: String?
    ) {
        self.ts = ts
        self.principal = principal
        self.askId = askId
        self.source = source
        self.question = question
        self.sql = sql
        self.rowCount = rowCount
        self.durationMs = durationMs
        self.refusalCode = refusalCode
        self.refusalReason = refusalReason
    }
}

/// An answer an admin marked: the question, the SQL it came from, right or wrong, and why.
public struct AskMemoryRow: Sendable, Equatable {
    public var askId: String
    public var question: String
    public var sql: String
    public var correct: Bool
    public var comment: String?
    public var principal: String
    public var ts: Int64

    public init(askId: String, question: String, sql: String, correct: Bool, comment: String?, principal: String, ts: Int64) {
        self.askId = askId
        self.question = question
        self.sql = sql
        self.correct = correct
        self.comment = comment
        self.principal = principal
        self.ts = ts
    }
}

/// The idempotency record of a command: if (principal, commandId) is already stored, the whole write it
/// belongs to is skipped and the stored response is returned instead.
public struct CommandRecord: Sendable, Equatable {
    public var principal: String
    public var commandId: String
    /// The response to replay for a repeated command (e.g. the encoded ack).
    public var response: String

    public init(principal: String, commandId: String, response: String) {
        self.principal = principal
        self.commandId = commandId
        self.response = response
    }
}

/// One atomic unit of writes (a command's whole effect). Applied in its own savepoint inside a
/// group-commit transaction: it commits entirely or not at all, and never takes others down with it.
/// One stored bucket of one monitor series (`f:<fingerprint>`, `r:<service>` requests, `e:<service>` errors,
/// `l:<service>` p95 latency, `s:<service>` share of requests over the slow line).
public struct MonitorBucketRow: Sendable, Equatable {
    public var series: String
    public var bucket: Int64
    public var valueMilli: Int64
    public init(series: String, bucket: Int64, valueMilli: Int64) {
        self.series = series
        self.bucket = bucket
        self.valueMilli = valueMilli
    }
}

/// An error fingerprint: its normalised key, how often it was seen, and its latest samples (stored joined by U+001E).
public struct FingerprintRow: Sendable, Equatable {
    public var id: String
    public var service: String
    public var key: String
    public var total: Int64
    public var firstSeen: Int64
    public var lastSeen: Int64
    public var samples: [String]
    public var stack: String?
    public init(id: String, service: String, key: String, total: Int64, firstSeen: Int64, lastSeen: Int64, samples: [String], stack: String?) {
        self.id = id
        self.service = service
        self.key = key
        self.total = total
        self.firstSeen = firstSeen
        self.lastSeen = lastSeen
        self.samples = samples
        self.stack = stack
    }
}

public struct StoreWrite: Sendable {
    /// Upserted by id.
    public var proposals: [ProposalRow] = []
    /// Upserted by (proposalId, number); the proposal must exist (stored, or earlier in this write).
    public var revisions: [RevisionRow] = []
    /// Appended; the proposal must exist.
    public var reviews: [ReviewRow] = []
    /// Appended; the proposal must exist.
    public var comments: [CommentRow] = []
    /// Upserted by (proposalId, commit); the proposal must exist.
    public var appliedChanges: [AppliedChangeRow] = []
    /// Upserted by id (every column replaced).
    public var workflows: [WorkflowRow] = []
    /// Appended; seqs are assigned here, dense per topic, in array order.
    public var events: [NewEvent] = []
    /// Idempotency record; see `CommandRecord`.
    public var command: CommandRecord?
    /// Appended to `query_audit`.
    public var audits: [QueryAuditRow] = []
    /// Upserted by ask id (and its search entry replaced).
    public var askMemories: [AskMemoryRow] = []
    /// Upserted by (series, bucket).
    public var monitorBuckets: [MonitorBucketRow] = []
    /// Upserted by id: `total` is added to the stored total, first/last seen widened, samples and stack replaced.
    public var fingerprints: [FingerprintRow] = []
    /// Buckets older than this (and fingerprints last seen before it) are deleted.
    public var monitorPruneBefore: Int64?

    public init(
        proposals: [ProposalRow] = [], revisions: [RevisionRow] = [], reviews: [ReviewRow] = [],
        comments: [CommentRow] = [], appliedChanges: [AppliedChangeRow] = [], events: [NewEvent] = [],
        command: CommandRecord? = nil, workflows: [WorkflowRow] = []
    ) {
        self.proposals = proposals
        self.revisions = revisions
        self.reviews = reviews
        self.comments = comments
        self.appliedChanges = appliedChanges
        self.events = events
        self.command = command
        self.workflows = workflows
    }
}

/// What a write did.
public enum WriteOutcome: Sendable, Equatable {
    /// Stored; the events with their seqs, in the order given.
    case committed([StoredEvent])
    /// The command id was already stored: nothing was written; this is the stored response.
    case duplicateCommand(response: String)
}

/// The pipeline's figures over every stored proposal (`Store.proposalFigures`).
public struct ProposalFigures: Sendable, Equatable {
    public var proposals = 0
    /// Revisions whose test run failed.
    public var failures = 0
    /// Fix attempts started, summed over proposals.
    public var attempts = 0
    /// Proposals with at least one fix attempt.
    public var proposalsWithFixes = 0
    /// Of those, the ones in a passing status.
    public var successful = 0
    public var unfixable = 0
    /// Analysed revisions per failure category.
    public var byCategory: [String: Int] = [:]

    public init() {}
}

/// What `Store.listen` reports.
public enum StoreNotification: Sendable, Equatable {
    /// `topic` has committed events up to `head` (from any writer, this one included).
    case head(topic: String, head: Int64)
    /// Another node changed its members of `topic`'s presence (PostgreSQL only).
    case presence(topic: String)
    /// The listener (re)connected: notifications may have been missed; read the heads of interest.
    case resync
    /// A node forwarded a command to `node` (row `id` of `forwarded_commands`; PostgreSQL only).
    case forwarded(node: String, id: Int64)
    /// The owner answered forwarded command `id`, which `node` sent (PostgreSQL only).
    case answered(node: String, id: Int64)
}

/// One workflow instance's owner: the node that runs it until the lease expires unrenewed.
public struct LeaseRow: Sendable, Equatable {
    /// The instance's topic (`proposal:p-…`).
    public var workflow: String
    public var node: String
    /// The repository its work happens in ("" when none): only nodes that reach it may claim the lease.
    public var repo: String
    public var expiresAt: Int64
    public var claimedAt: Int64
    public init(workflow: String, node: String, repo: String, expiresAt: Int64, claimedAt: Int64) {
        self.workflow = workflow
        self.node = node
        self.repo = repo
        self.expiresAt = expiresAt
        self.claimedAt = claimedAt
    }
}

/// A command one node forwarded to the owner of its instance, and the owner's answer once it has one.
public struct ForwardedCommand: Sendable, Equatable {
    public var id: Int64
    public var toNode: String
    public var fromNode: String
    public var workflow: String
    public var principal: String
    public var role: String
    /// The command as its JSON frame (`ClientRequest.encode`).
    public var request: String
    public var createdAt: Int64
    /// The owner's ack or error frame.
    public var answer: String?
    public init(
        id: Int64 = 0, toNode: String, fromNode: String, workflow: String, principal: String, role: String, request: String, createdAt: Int64,
        answer: String? = nil
    ) {
        self.id = id
        self.toNode = toNode
        self.fromNode = fromNode
        self.workflow = workflow
        self.principal = principal
        self.role = role
        self.request = request
        self.createdAt = createdAt
        self.answer = answer
    }
}

/// What a heartbeat answers: every node (this one first), the leases this node still holds, and the expired leases
/// it claimed now.
public struct HeartbeatResult: Sendable, Equatable {
    public var nodes: [NodeRow]
    public var held: [String]
    public var claimed: [LeaseRow]
    public init(nodes: [NodeRow], held: [String], claimed: [LeaseRow]) {
        self.nodes = nodes
        self.held = held
        self.claimed = claimed
    }
}

/// One node sharing the store: its name, where it listens, when it started and last said it is alive (ms).
public struct NodeRow: Sendable, Equatable {
    public var id: String
    public var address: String
    public var startedAt: Int64
    public var heartbeatAt: Int64
    public init(id: String, address: String, startedAt: Int64, heartbeatAt: Int64) {
        self.id = id
        self.address = address
        self.startedAt = startedAt
        self.heartbeatAt = heartbeatAt
    }
}

/// One node's members of a presence topic, as stored (a JSON array of `{principal, role, since}`).
public struct PresenceRow: Sendable, Equatable {
    public var node: String
    public var json: String
    public init(node: String, json: String) {
        self.node = node
        self.json = json
    }
}
