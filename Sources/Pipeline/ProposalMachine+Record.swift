// ProposalMachine+Record: the stored form of a proposal's machine — an explicit, versioned document (the
// `proposals.doc` column), and the loader of every version ever stored.
//
// Version 2 (this one): `{"version": 2, "info", "configuration", "phase": {"name", …its data}, "attempt",
// "attempt_limit", "approvals", "reviewer_comments", "attempt_records", "commit"?, "applied_approvers",
// "last_output"?, "last_fix_signature"?}` — without the revisions, which are their own rows (`revisions.doc`,
// one `Revision` each) and are passed in when loading. Unknown keys are ignored; keys added later must be
// optional with a default here, so a newer field never makes an older document unreadable.
// Version 1 (up to d48e798, fixtures in Tests/PipelineTests/Fixtures/records-v1): the synthesized `Codable` of
// the machine's fields, revisions included, status as a flat string plus `rollbackPending`/`interruptedFrom`.
import Foundation
public import Protocol

/// Why a stored document could not be loaded (the host keeps that proposal read-only and says why).
public struct RecordError: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String
}

extension ProposalMachine {
    /// The version `record()` writes.
    public static let recordVersion = 2

    /// The stored document (version 2), keys sorted so equal machines give equal text.
    public func record() -> String {
        let document = RecordV2(
            version: Self.recordVersion, info: info, configuration: configuration, phase: PhaseRecord(phase), attempt: attempt,
            attemptLimit: attemptLimit, approvals: approvals, reviewerComments: reviewerComments, attemptRecords: attemptRecords,
            commit: commit, appliedApprovers: appliedApprovers, lastOutput: lastOutput, lastFixSignature: lastFixSignature)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(document)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    /// Loads a stored document of any version; `revisions` are the proposal's revision rows (version 2 keeps
    /// them out of the document; a version 1 document carries its own and they win).
    public static func load(document: String, revisions: [Revision]) throws(RecordError) -> ProposalMachine {
        let data = Data(document.utf8)
        let version: Int
        do {
            version = try JSONDecoder().decode(VersionProbe.self, from: data).version ?? 1
        } catch {
            throw RecordError(description: "not a proposal document: \(error)")
        }
        switch version {
        case 1:
            do { return try JSONDecoder().decode(RecordV1.self, from: data).machine } catch {
                throw RecordError(description: "version 1 document unreadable: \(error)")
            }
        case 2:
            do { return try JSONDecoder().decode(RecordV2.self, from: data).machine(revisions: revisions.sorted { $0.number < $1.number }) } catch {
                throw RecordError(description: "version 2 document unreadable: \(error)")
            }
        default:
            throw RecordError(description: "document version \(version) is newer than this Medic (it reads up to \(recordVersion)); upgrade Medic")
        }
    }
}

private struct VersionProbe: Decodable {
    var version: Int?
}

/// The phase as stored: a name plus the phase's data.
struct PhaseRecord: Codable, Equatable {
    var name: String
    var reasked: Bool?
    var step: String?
    var head: String?
    var commit: String?
    var detail: String?
    var rollingBack: Bool?
    var from: String?

    init(name: String) { self.name = name }

    init(_ phase: ProposalMachine.Phase) {
        switch phase {
        case .proposed: self.init(name: "proposed")
        case .deploying: self.init(name: "deploying")
        case .testing: self.init(name: "testing")
        case .analyzing: self.init(name: "analyzing")
        case .fixing(let reasked):
            self.init(name: "fixing")
            self.reasked = reasked
        case .testsFailed: self.init(name: "tests_failed")
        case .awaitingReview: self.init(name: "awaiting_review")
        case .applying(let step):
            self.init(name: "applying")
            switch step {
            case .checkingBase: self.step = "checking_base"
            case .retesting(let head):
                self.step = "retesting"
                self.head = head
            case .committing: self.step = "committing"
            case .smokeTesting(let commit):
                self.step = "smoke_testing"
                self.commit = commit
            case .reverting(let commit, let detail):
                self.step = "reverting"
                self.commit = commit
                self.detail = detail
            }
        case .applied(let commit, let rollingBack):
            self.init(name: "applied")
            self.commit = commit
            self.rollingBack = rollingBack
        case .applyFailed: self.init(name: "apply_failed")
        case .rejected: self.init(name: "rejected")
        case .unfixable: self.init(name: "unfixable")
        case .rolledBack(let commit):
            self.init(name: "rolled_back")
            self.commit = commit
        case .withdrawn: self.init(name: "withdrawn")
        case .interrupted(let from):
            self.init(name: "interrupted")
            self.from = from.rawValue
        }
    }

    func phase() throws -> ProposalMachine.Phase {
        switch name {
        case "proposed": return .proposed
        case "deploying": return .deploying
        case "testing": return .testing
        case "analyzing": return .analyzing
        case "fixing": return .fixing(reasked: reasked ?? false)
        case "tests_failed": return .testsFailed
        case "awaiting_review": return .awaitingReview
        case "applying":
            // A step this code does not know is refused like an unknown phase: guessing one could commit twice.
            switch step {
            case nil, "checking_base": return .applying(.checkingBase)
            case "retesting": return .applying(.retesting(head: try required(head, "head")))
            case "committing": return .applying(.committing)
            case "smoke_testing": return .applying(.smokeTesting(commit: try required(commit, "commit")))
            case "reverting": return .applying(.reverting(commit: try required(commit, "commit"), detail: detail ?? ""))
            case let step?: throw RecordError(description: "unknown applying step '\(step)'")
            }
        case "applied": return .applied(commit: commit ?? "", rollingBack: rollingBack ?? false)
        case "apply_failed": return .applyFailed
        case "rejected": return .rejected
        case "unfixable": return .unfixable
        case "rolled_back": return .rolledBack(commit: commit ?? "")
        case "withdrawn": return .withdrawn
        case "interrupted":
            guard let from else { return .interrupted(from: .testing) }
            guard let status = ProposalStatus(rawValue: from) else { throw RecordError(description: "unknown status '\(from)' in interrupted") }
            return .interrupted(from: status)
        default: throw RecordError(description: "unknown phase '\(name)'")
        }
    }

    private func required(_ value: String?, _ key: String) throws -> String {
        guard let value else { throw RecordError(description: "phase \(name) without its \(key)") }
        return value
    }
}

/// Version 2: explicit keys; everything but the identity is optional with a default when reading.
struct RecordV2: Codable {
    var version: Int
    var info: ProposalInfo
    var configuration: ProposalMachine.Configuration
    var phase: PhaseRecord
    var attempt: Int
    var attemptLimit: Int
    var approvals: [String]
    var reviewerComments: [String]
    var attemptRecords: [AttemptRecord]
    var commit: String?
    var appliedApprovers: [String]
    var lastOutput: String?
    var lastFixSignature: ProposalMachine.FailureSignature?

    enum CodingKeys: String, CodingKey {
        case version, info, configuration, phase, attempt, approvals, commit
        case attemptLimit = "attempt_limit", reviewerComments = "reviewer_comments", attemptRecords = "attempt_records"
        case appliedApprovers = "applied_approvers", lastOutput = "last_output", lastFixSignature = "last_fix_signature"
    }

    init(
        version: Int, info: ProposalInfo, configuration: ProposalMachine.Configuration, phase: PhaseRecord, attempt: Int, attemptLimit: Int,
        approvals: [String], reviewerComments: [String], attemptRecords: [AttemptRecord], commit: String?, appliedApprovers: [String],
        lastOutput: String?, lastFixSignature: ProposalMachine.FailureSignature?
    ) {
        self.version = version
        self.info = info
        self.configuration = configuration
        self.phase = phase
        self.attempt = attempt
        self.attemptLimit = attemptLimit
        self.approvals = approvals
        self.reviewerComments = reviewerComments
        self.attemptRecords = attemptRecords
        self.commit = commit
        self.appliedApprovers = appliedApprovers
        self.lastOutput = lastOutput
        self.lastFixSignature = lastFixSignature
    }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        version = try c.decode(Int.self, forKey: .version)
        info = try c.decode(ProposalInfo.self, forKey: .info)
        configuration = try c.decodeIfPresent(ProposalMachine.Configuration.self, forKey: .configuration) ?? ProposalMachine.Configuration()
        phase = try c.decode(PhaseRecord.self, forKey: .phase)
        attempt = try c.decodeIfPresent(Int.self, forKey: .attempt) ?? 0
        attemptLimit = try c.decodeIfPresent(Int.self, forKey: .attemptLimit) ?? configuration.maxAttempts
        approvals = try c.decodeIfPresent([String].self, forKey: .approvals) ?? []
        reviewerComments = try c.decodeIfPresent([String].self, forKey: .reviewerComments) ?? []
        attemptRecords = try c.decodeIfPresent([AttemptRecord].self, forKey: .attemptRecords) ?? []
        commit = try c.decodeIfPresent(String.self, forKey: .commit)
        appliedApprovers = try c.decodeIfPresent([String].self, forKey: .appliedApprovers) ?? []
        lastOutput = try c.decodeIfPresent(String.self, forKey: .lastOutput)
        lastFixSignature = try c.decodeIfPresent(ProposalMachine.FailureSignature.self, forKey: .lastFixSignature)
    }

    func machine(revisions: [Revision]) throws -> ProposalMachine {
        ProposalMachine(
            info: info, configuration: configuration, phase: try phase.phase(), revisions: revisions, attempt: attempt, attemptLimit: attemptLimit,
            approvals: approvals, reviewerComments: reviewerComments, attemptRecords: attemptRecords, commit: commit,
            appliedApprovers: appliedApprovers, lastOutput: lastOutput, lastFixSignature: lastFixSignature)
    }
}

/// Version 1: the fields of the machine as its synthesized `Codable` wrote them (keys are the Swift names).
struct RecordV1: Decodable {
    var info: ProposalInfo
    var configuration: ProposalMachine.Configuration
    var status: ProposalStatus
    var revisions: [Revision]
    var attempt: Int
    var attemptLimit: Int
    var approvals: [String]
    var reviewerComments: [String]
    var attemptRecords: [AttemptRecord]
    var commit: String?
    var appliedApprovers: [String]
    var lastOutput: String?
    var lastFixSignature: ProposalMachine.FailureSignature?
    var rollbackPending: Bool?
    var interruptedFrom: ProposalStatus?

    /// The phase a version 1 status stood for. Passing statuses were never rested in; mapped to where they led.
    var machine: ProposalMachine {
        let phase: ProposalMachine.Phase = switch status {
        case .proposed: .proposed
        case .deploying: .deploying
        case .testing: .testing
        case .testsPassed, .awaitingReview: .awaitingReview
        case .testsFailed: .testsFailed
        case .analyzing: .analyzing
        case .fixing, .changesRequested: .fixing(reasked: false)
        case .approved, .applying: .applying(.committing)
        case .applied: .applied(commit: commit ?? "", rollingBack: rollbackPending ?? false)
        case .applyFailed: .applyFailed
        case .rejected: .rejected
        case .unfixable: .unfixable
        case .rolledBack: .rolledBack(commit: commit ?? "")
        case .withdrawn: .withdrawn
        case .interrupted: .interrupted(from: interruptedFrom ?? .testing)
        }
        return ProposalMachine(
            info: info, configuration: configuration, phase: phase, revisions: revisions, attempt: attempt, attemptLimit: attemptLimit,
            approvals: approvals, reviewerComments: reviewerComments, attemptRecords: attemptRecords, commit: commit,
            appliedApprovers: appliedApprovers, lastOutput: lastOutput, lastFixSignature: lastFixSignature)
    }
}
