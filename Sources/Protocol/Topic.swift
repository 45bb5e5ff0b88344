// Topic: the names clients subscribe to — `<kind>:<id>` (one workflow instance's events) and collections.

/// A subscribable topic: `<kind>:<id>` (one workflow instance's events: `proposal:p-…`, later `bug:…`,
/// `ask:…`, `incident:…`) or a collection name (`proposals`, `bugs` …). The syntax is checked here; which
/// kinds exist is the server's feature registry's business (an unknown kind is refused there). Wire form:
/// `description`.
public struct Topic: Hashable, Sendable, CustomStringConvertible {
    /// The instance kind (`proposal`) or the collection name (`proposals`).
    public let kind: String
    /// The instance id; nil for a collection.
    public let id: String?

    /// Maximum length of an id (proposal ids and every later kind's).
    public static let maxProposalIDLength = 64
    /// Maximum length of a kind or collection name.
    public static let maxKindLength = 32

    /// `proposal:<id>`.
    public static func proposal(_ id: String) -> Topic { Topic(kind: "proposal", id: id) }
    /// `proposals`.
    public static let proposals = Topic(kind: "proposals", id: nil)

    private init(kind: String, id: String?) {
        self.kind = kind
        self.id = id
    }

    /// Parses `<kind>:<id>` (kind in `[a-z_]{1,32}`, id in `[A-Za-z0-9_-]{1,64}`) or a collection `[a-z_]{1,32}`;
    /// nil otherwise.
    public init?(_ text: String) {
        if let colon = text.firstIndex(of: ":") {
            let kind = String(text[..<colon])
            let id = String(text[text.index(after: colon)...])
            guard Topic.isValidKind(kind), Topic.isValidProposalID(id) else { return nil }
            self.init(kind: kind, id: id)
        } else {
            guard Topic.isValidKind(text) else { return nil }
            self.init(kind: text, id: nil)
        }
    }

    /// True for `[a-z_]{1,32}`.
    public static func isValidKind(_ kind: String) -> Bool {
        let utf8 = kind.utf8
        return !utf8.isEmpty && utf8.count <= maxKindLength
            && utf8.allSatisfy { (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0) || $0 == UInt8(ascii: "_") }
    }

    /// True for `[A-Za-z0-9_-]{1,64}`: safe in paths, URLs and topic names without escaping.
    public static func isValidProposalID(_ id: String) -> Bool {
        let utf8 = id.utf8
        guard !utf8.isEmpty, utf8.count <= maxProposalIDLength else { return false }
        for byte in utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"):
                continue
            default:
                return false
            }
        }
        return true
    }

    public var description: String { id.map { "\(kind):\($0)" } ?? kind }

    /// Whether this names one instance (`kind:id`) rather than a collection.
    public var isInstance: Bool { id != nil }
}

/// Who a principal is. Names are fixed on the wire (`welcome.role`, `presence.members[].role`). What each
/// may send is declared by the features that handle the commands (MedicHost's `CommandDeclaration`).
public enum Role: String, Sendable, Codable, CaseIterable, Hashable {
    /// Everything.
    case admin
    /// Reads, comments and stats.
    case viewer
    /// Proposes and comments; never reviews.
    case bot
    /// Sends log events to `POST /api/v1/ingest` and nothing else: no WebSocket, no reads.
    case ingest
}
