// BugMachine+Record: the stored form of a bug's machine (the `workflows.doc` column) — a versioned document.
// Version 1: `{"version": 1, "report", "configuration", "phase", "analysis"?, "reproducer"?, "reproduced"?,
// "reproducer_reason"?, "base_result"?, "base_failing", "approaches": [{…, "machine"?: <ProposalMachine record>,
// "revisions"?: [Revision]}], "winner"?, "ranking_reason"?, "proposal"?, "proposals", "proposal_status"?}`. Each approach's repair
// loop is stored with the proposal machine's own versioned record and its revisions, so it loads with the same
// loader as a proposal. Keys added later must be optional.
import Foundation
import Protocol

extension BugMachine {
    public static let recordVersion = 1

    /// The stored document, keys sorted.
    public func record() -> String {
        let document = BugRecord(
            version: Self.recordVersion, report: report, configuration: configuration, phase: phase, analysis: analysis,
            reproducer: reproducer, reproduced: reproduced, reproducerReason: reproducerReason, baseResult: baseResult,
            baseFailing: baseFailing, baseDurationsMs: baseDurationsMs, approaches: approaches.map(ApproachRecord.init), winner: winner, rankingReason: rankingReason,
            proposal: proposal, proposals: proposals, proposedAt: proposedAt, proposalStatus: currentProposalStatus)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(document)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    /// Loads a stored document (a newer version is refused: the bug stays read-only).
    public static func load(document: String) throws(RecordError) -> BugMachine {
        let data = Data(document.utf8)
        let record: BugRecord
        do { record = try JSONDecoder().decode(BugRecord.self, from: data) } catch {
            throw RecordError(description: "not a bug document: \(error)")
        }
        guard record.version <= recordVersion else {
            throw RecordError(description: "document version \(record.version) is newer than this Medic (it reads up to \(recordVersion)); upgrade Medic")
        }
        var approaches: [Approach] = []
        for a in record.approaches {
            var machine: ProposalMachine?
            if let doc = a.machine { machine = try ProposalMachine.load(document: doc, revisions: a.revisions ?? []) }
            approaches.append(Approach(
                number: a.number, strategy: a.strategy, status: a.status, summary: a.summary, changes: a.changes, machine: machine,
                reason: a.reason, duplicateOf: a.duplicateOf, breaking: a.breaking, files: a.files, lines: a.lines,
                durationsMs: a.durationsMs ?? []))
        }
        return BugMachine(
            report: record.report, configuration: record.configuration, phase: record.phase, analysis: record.analysis,
            reproducer: record.reproducer, reproduced: record.reproduced, reproducerReason: record.reproducerReason,
            baseResult: record.baseResult, baseFailing: record.baseFailing, baseDurationsMs: record.baseDurationsMs ?? [], approaches: approaches, winner: record.winner,
            rankingReason: record.rankingReason, proposal: record.proposal, proposals: record.proposals, proposedAt: record.proposedAt,
            currentProposalStatus: record.proposalStatus)
    }
}

private struct BugRecord: Codable {
    var version: Int
    var report: BugReport
    var configuration: BugMachine.Configuration
    var phase: BugMachine.Phase
    var analysis: BugAnalysis?
    var reproducer: Reproducer?
    var reproduced: Bool?
    var reproducerReason: String?
    var baseResult: TestResult?
    var baseFailing: [String]
    var baseDurationsMs: [Int]?
    var approaches: [ApproachRecord]
    var winner: Int?
    var rankingReason: String?
    var proposal: String?
    var proposals: [String]
    var proposedAt: Int64?
    /// Added after version 1 was released: optional, absent in older documents.
    var proposalStatus: ProposalStatus?

    enum CodingKeys: String, CodingKey {
        case proposedAt = "proposed_at", proposalStatus = "proposal_status"
        case version, report, configuration, phase, analysis, reproducer, reproduced, approaches, winner, proposal, proposals
        case reproducerReason = "reproducer_reason", baseResult = "base_result", baseFailing = "base_failing"
        case baseDurationsMs = "base_durations_ms"
        case rankingReason = "ranking_reason"
    }
}

private struct ApproachRecord: Codable {
    var number: Int
    var strategy: String
    var status: ApproachStatus
    var summary: String
    var changes: [FileChange]
    var machine: String?
    var revisions: [Revision]?
    var reason: String?
    var duplicateOf: Int?
    var breaking: [String]
    var files: Int?
    var lines: Int?
    var durationsMs: [Int]?

    enum CodingKeys: String, CodingKey {
        case number, strategy, status, summary, changes, machine, revisions, reason, breaking, files, lines
        case duplicateOf = "duplicate_of", durationsMs = "durations_ms"
    }

    init(_ a: Approach) {
        number = a.number
        strategy = a.strategy
        status = a.status
        summary = a.summary
        changes = a.changes
        machine = a.machine?.record()
        revisions = a.machine?.revisions
        reason = a.reason
        duplicateOf = a.duplicateOf
        breaking = a.breaking
        files = a.files
        lines = a.lines
        durationsMs = a.durationsMs
    }
}
