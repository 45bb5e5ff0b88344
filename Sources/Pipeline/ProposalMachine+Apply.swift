// ProposalMachine+Apply: the nested machine that applies an approved revision — check HEAD, re-test on a
// moved repository, commit, run the post-apply command, revert on its failure. The parent (`.applying(step)`)
// owns it, feeds it the apply results and turns its actions into executor actions and history rows.
import Protocol

extension ProposalMachine.ApplyStep {
    /// What the apply machine asks of its parent.
    public enum Action: Sendable, Hashable {
        /// The repository moved to `head`: test the revision there before committing.
        case runPreApplyTests(head: String)
        /// Commit the revision.
        case commit
        /// Run the repository's post-apply command against `commit`.
        case runPostApply(commit: String)
        /// Revert `commit` (its post-apply command failed).
        case revert(commit: String)
        /// `commit` stands: the proposal is applied.
        case applied(commit: String)
        /// Applying ended without a standing commit. `commit`: one was made anyway (its history row is kept),
        /// and reverted by `revertedBy` when that worked.
        case failed(reason: String, commit: String?, revertedBy: String?)
        /// The result belongs to another step (late, or repeated): nothing changes.
        case ignored
    }

    /// The repository's HEAD (nil: unknown) against the base the revision was tested on.
    mutating func baseChecked(head: String?, testedBase: String?) -> Action {
        switch self {
        case .checkingBase:
            if let head, let testedBase, head != testedBase {
                self = .retesting(head: head)
                return .runPreApplyTests(head: head)
            }
            self = .committing
            return .commit
        case .retesting, .committing, .smokeTesting, .reverting:
            return .ignored
        }
    }

    mutating func preApplyTestsFinished(passed: Bool, detail: String) -> Action {
        switch self {
        case .retesting:
            guard passed else {
                return .failed(
                    reason: "the repository moved since the sandbox's base commit and the tests fail on the new base: \(detail)",
                    commit: nil, revertedBy: nil)
            }
            self = .committing
            return .commit
        case .checkingBase, .committing, .smokeTesting, .reverting:
            return .ignored
        }
    }

    /// The commit exists; `postApply`: a post-apply command must pass before it stands.
    mutating func committed(_ commit: String, postApply: Bool) -> Action {
        switch self {
        // An executor that checks nothing before committing may answer while the base is still being checked
        // (the check is then skipped).
        case .committing, .checkingBase:
            guard postApply else { return .applied(commit: commit) }
            self = .smokeTesting(commit: commit)
            return .runPostApply(commit: commit)
        case .retesting, .smokeTesting, .reverting:
            return .ignored
        }
    }

    mutating func postApplyFinished(passed: Bool, detail: String) -> Action {
        switch self {
        case .smokeTesting(let commit):
            guard !passed else { return .applied(commit: commit) }
            // The start of the reason is kept in the step (and the stored record) until the revert answers.
            self = .reverting(commit: commit, detail: "post-apply command failed (\(detail)); ")
            return .revert(commit: commit)
        case .checkingBase, .retesting, .committing, .reverting:
            return .ignored
        }
    }

    mutating func reverted(_ revertCommit: String) -> Action {
        switch self {
        case .reverting(let commit, let detail):
            return .failed(
                reason: detail + "commit \(commit.prefix(12)) was reverted by \(revertCommit.prefix(12))", commit: commit,
                revertedBy: revertCommit)
        case .checkingBase, .retesting, .committing, .smokeTesting:
            return .ignored
        }
    }

    mutating func revertFailed(_ reason: String) -> Action {
        switch self {
        case .reverting(let commit, let detail):
            return .failed(reason: detail + "and reverting \(commit.prefix(12)) failed: \(reason)", commit: commit, revertedBy: nil)
        case .checkingBase, .retesting, .committing, .smokeTesting:
            return .ignored
        }
    }

    /// The executor could not commit (or prepare the commit).
    mutating func commitFailed(_ reason: String) -> Action {
        switch self {
        case .checkingBase, .retesting, .committing:
            return .failed(reason: reason, commit: nil, revertedBy: nil)
        // A commit exists in these steps; a failure to commit cannot be about it.
        case .smokeTesting, .reverting:
            return .ignored
        }
    }
}

extension ProposalMachine {
    /// Feeds an apply result to the nested machine (only `.applying` owns one) and routes what it asks for.
    mutating func routeApply(_ name: String, _ event: (inout ApplyStep) -> ApplyStep.Action) -> [ProposalAction] {
        switch phase {
        case .applying(var step):
            let action = event(&step)
            phase = .applying(step)
            return routeApply(action, name: name)
        case .proposed, .deploying, .testing, .analyzing, .fixing, .testsFailed, .awaitingReview, .applied, .applyFailed, .rejected,
            .unfixable, .rolledBack, .withdrawn, .interrupted:
            return [.ignored("\(name) while \(status.rawValue)")]
        }
    }

    private mutating func routeApply(_ action: ApplyStep.Action, name: String) -> [ProposalAction] {
        switch action {
        case .runPreApplyTests(let head): return [.runPreApplyTests(revision: currentRevision, baseCommit: head)]
        case .commit: return [.applyToRepository(revision: currentRevision, approvers: appliedApprovers)]
        case .runPostApply(let commit): return [.runPostApply(commit: commit)]
        case .revert(let commit): return [.revert(commit: commit)]
        case .applied(let commit):
            self.commit = commit
            phase = .applied(commit: commit, rollingBack: false)
            return [
                .record(.applied(revision: currentRevision, commit: commit)),
                .publish(.applied(revision: currentRevision, commit: commit, approvers: appliedApprovers)),
            ] + pass(.applied)
        case .failed(let reason, let commit, let revertedBy):
            var actions: [ProposalAction] = []
            if let commit {
                actions.append(.record(.applied(revision: currentRevision, commit: commit)))
                if let revertedBy { actions.append(.record(.reverted(revision: currentRevision, commit: commit, revertCommit: revertedBy))) }
            }
            return actions + [.publish(.applyFailed(reason: reason))] + enter(.applyFailed, reason: reason)
        case .ignored: return [.ignored("\(name) while \(status.rawValue)")]
        }
    }
}
