// Verdict: a reviewer's decision on one revision.

/// approve / reject / request_changes (contract `review.verdict`).
public enum Verdict: String, Sendable, Codable, CaseIterable, Hashable {
    case approve
    case reject
    case requestChanges = "request_changes"
}
