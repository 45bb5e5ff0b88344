// ProposalRecords: where proposals that are not in memory come from. PipelineService keeps only live instances
// resident (loaded on demand, evicted when idle); the store is the truth for the rest, and for the figures.
import EventLoop
import Pipeline
import Protocol
public import Store

/// One stored proposal: its row (with the machine's record in `doc`) and its revision rows.
public struct StoredProposal: Sendable {
    public var row: ProposalRow
    public var revisions: [RevisionRow]

    public init(row: ProposalRow, revisions: [RevisionRow]) {
        self.row = row
        self.revisions = revisions
    }
}

/// Reads stored proposals for the pipeline. Loop-bound: completions run on the loop thread.
public protocol ProposalRecords: AnyObject {
    /// The proposal `id`, or nil when none is stored.
    func load(_ id: String, completion: @escaping (Result<StoredProposal?, StoreError>) -> Void)
    /// Startup only (blocking): the proposals whose stored status is one of `statuses` (the busy ones a
    /// restart must mark interrupted).
    func loadAll(statuses: [String]) throws -> [StoredProposal]
    /// Startup only (blocking): the figures over every stored proposal.
    func figures(passingStatuses: [String]) throws -> ProposalFigures
}

/// `ProposalRecords` on the store (its worker thread; results hop back to the loop).
final class StoreProposalRecords: ProposalRecords {
    private let store: Store
    private let loop: EventLoop

    init(store: Store, loop: EventLoop) {
        self.store = store
        self.loop = loop
    }

    func load(_ id: String, completion: @escaping (Result<StoredProposal?, StoreError>) -> Void) {
        let bound = LoopBound(completion, loop: loop)
        store.proposal(id: id) { result in
            let stored = result.map { $0.map { StoredProposal(row: $0.proposal, revisions: $0.revisions) } }
            bound.hop { completion in completion(stored) }
        }
    }

    func loadAll(statuses: [String]) throws -> [StoredProposal] {
        let rows = try store.sync { store.proposals(statuses: statuses, completion: $0) }
        return try rows.map { row in
            let detail = try store.sync { store.proposal(id: row.id, completion: $0) }
            return StoredProposal(row: row, revisions: detail?.revisions ?? [])
        }
    }

    func figures(passingStatuses: [String]) throws -> ProposalFigures {
        try store.sync { store.proposalFigures(passingStatuses: passingStatuses, completion: $0) }
    }
}

extension ProposalFigures {
    /// Adds (`sign` 1) or removes (`sign` -1) one proposal's share, counted as `Store.proposalFigures` counts
    /// stored rows: a proposal counts once stored (it has its first revision).
    mutating func count(_ m: ProposalMachine, sign: Int) {
        guard !m.revisions.isEmpty else { return }
        proposals += sign
        for revision in m.revisions {
            if let result = revision.testResult, !result.succeeded { failures += sign }
            if let category = revision.analysis?.category.rawValue { byCategory[category, default: 0] += sign }
        }
        attempts += sign * m.attempt
        if m.attempt > 0 {
            proposalsWithFixes += sign
            if m.status.hasPassingTests { successful += sign }
        }
        if m.status == .unfixable { unfixable += sign }
    }
}
