// Services: the seams between the app's front (sockets, REST) and the features behind it.
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

/// How a workflow stores and publishes events: the seam between features and the App (which implements
/// it), so a feature depends on this protocol and the store, never on the App.
public protocol Publisher: AnyObject {
    /// Stores `write` (group commit), then publishes its events to subscribers in seq order, then calls
    /// `completion` — all on the loop thread. A failed write publishes nothing.
    func commit(_ write: StoreWrite, completion: @escaping (Result<WriteOutcome, StoreError>) -> Void)
    /// Sends an event that is not stored (no seq) to the topic's live subscribers: `fix_delta`.
    func publishEphemeral(topic: String, kind: String, data: JSONValue)
}

/// A new workflow instance id: `prefix-` and 10 random characters of an alphabet without look-alikes (no l, o, 0,
/// 1): proposals `p-`, bugs `b-`, asks `a-`. Valid as a topic id and a REST path segment (`[A-Za-z0-9_-]`).
func newWorkflowID(prefix: String) -> String {
    let alphabet = Array("abcdefghijkmnpqrstuvwxyz23456789")
    var generator = SystemRandomNumberGenerator()
    return prefix + "-" + String((0..<10).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &generator)] })
}
