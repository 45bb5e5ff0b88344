// Topic: the names clients subscribe to — `proposal:<id>` (one proposal's events) and `proposals` (the list).

/// A subscribable topic. Its wire form is `description`.
public enum Topic: Hashable, Sendable, CustomStringConvertible {
    /// `proposal:<id>`: every event of one proposal, with a dense per-topic `seq`.
    case proposal(String)
    /// `proposals`: one `proposal` summary event per change to any proposal.
    case proposals

    /// Maximum length of a proposal id.
    public static let maxProposalIDLength = 64

    /// Parses `proposal:<id>` (id in `[A-Za-z0-9_-]{1,64}`) or `proposals`; nil otherwise.
    public init?(_ text: String) {
        if text == "proposals" {
            self = .proposals
            return
        }
        let prefix = "proposal:"
        guard text.hasPrefix(prefix) else { return nil }
        let id = String(text.dropFirst(prefix.count))
        guard Topic.isValidProposalID(id) else { return nil }
        self = .proposal(id)
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

    public var description: String {
        switch self {
        case .proposal(let id): "proposal:\(id)"
        case .proposals: "proposals"
        }
    }

    /// Presence is tracked on `proposal:` topics only.
    public var hasPresence: Bool { if case .proposal = self { true } else { false } }
}

/// What a principal may do. Names are fixed on the wire (`welcome.role`, `presence.members[].role`).
public enum Role: String, Sendable, Codable, CaseIterable, Hashable {
    /// Everything.
    case admin
    /// subscribe, unsubscribe, comment, stats.
    case viewer
    /// subscribe, unsubscribe, propose, comment, stats; never review.
    case bot

    /// Whether this role may send `message` (the server answers `forbidden` otherwise).
    public func may(_ message: ClientMessage) -> Bool {
        switch message {
        case .hello, .subscribe, .unsubscribe, .comment, .stats: true
        case .propose, .withdraw: self != .viewer  // withdraw: a bot only its own proposals (checked by the pipeline)
        case .review, .autoFix, .rollback: self == .admin
        }
    }
}
