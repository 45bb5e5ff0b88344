// Role: what the pipeline asks of a principal's role (the role itself is Protocol's, contract "Roles").
public import Protocol

extension Role {
    /// Only admins review, request fixes and roll back.
    public var mayReview: Bool {
        switch self {
        case .admin: true
        case .viewer, .bot, .ingest: false
        }
    }
}
