// Role: what an authenticated principal may do (contract "Roles").

/// admin: everything; viewer: subscribe, comment, stats; bot: subscribe, propose, comment, stats, never review.
public enum Role: String, Sendable, Codable, CaseIterable, Hashable {
    case admin
    case viewer
    case bot

    /// Only admins review, request fixes and roll back.
    public var mayReview: Bool {
        switch self {
        case .admin: true
        case .viewer, .bot: false
        }
    }
}
