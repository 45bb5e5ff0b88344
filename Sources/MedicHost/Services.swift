// Services: the seams between the app's front (sockets, REST) and the proposal pipeline behind it.
public import Protocol
public import Store

/// An authenticated identity.
public struct Principal: Sendable, Equatable {
    public var name: String
    public var role: Role
    public init(name: String, role: Role) {
        self.name = name
        self.role = role
    }
}

/// The answer to a command: the ack's extra fields, or a refusal.
public typealias CommandReply = (Result<JSONObject, ProtocolError>) -> Void

/// What the front needs from the pipeline: it executes state-changing commands (propose, reviews,
/// auto_fix, rollback, comment) and answers `stats`. Loop-bound.
///
/// Contract: `reply` is called exactly once, on the loop thread, only after the command's effect is
/// durable (invariant 1). When `commandID` is non-nil, the command's `StoreWrite` carries
/// `CommandRecord(principal, commandID, response: <the ack's JSON>)` so a repeated id never applies twice.
public protocol CommandExecutor: AnyObject {
    func execute(_ message: ClientMessage, commandID: String?, principal: Principal, reply: @escaping CommandReply)
    /// The pipeline metrics (the `stats` ack's fields), read by `/metrics` without a command or a principal.
    func stats() -> JSONObject
    /// The repository's files at revision `revision`'s base commit that the revision modifies or deletes
    /// (`GET /api/v1/proposals/{id}/revisions/{n}/base`).
    func baseFiles(proposal: String, revision: Int, reply: @escaping (Result<JSONValue, ProtocolError>) -> Void)
}

/// How the pipeline stores and publishes events. Implemented by `App`.
public protocol EventSink: AnyObject {
    /// Stores `write` (group commit), then publishes its events to subscribers in seq order, then calls
    /// `completion` — all on the loop thread. A failed write publishes nothing.
    func commit(_ write: StoreWrite, completion: @escaping (Result<WriteOutcome, StoreError>) -> Void)
    /// Sends an event that is not stored (no seq) to the topic's live subscribers: `fix_delta`.
    func publishEphemeral(topic: String, kind: String, data: JSONValue)
}
