// BugMachine: the pure state machine of one bug report — analyse, reproduce, try several fix approaches in
// parallel, rank them, present the best as a proposal. Each approach is a nested `ProposalMachine` (the
// proposal pipeline's own sandbox/test/analysis/fix loop); this machine routes their events and turns their
// actions into its own. The executor (MedicHost's BugService) performs the actions.
public import Protocol

/// Where a bug is (the public status; `BugMachine.Phase` has the data).
public enum BugStatus: String, Sendable, Hashable, Codable, CaseIterable {
    case analyzing, reproducing, fixing, proposed, fixed, unfixed, interrupted

    /// Work is in flight (a restart interrupts it).
    public var isBusy: Bool {
        switch self {
        case .analyzing, .reproducing, .fixing: true
        case .proposed, .fixed, .unfixed, .interrupted: false
        }
    }
}

/// One approach's state as shown (`approach_status.status`).
public enum ApproachStatus: String, Sendable, Hashable, Codable {
    /// Asked for; the model has not answered yet.
    case asking
    /// Waiting for a free sandbox slot.
    case queued
    case deploying, testing, analyzing, fixing
    /// The whole suite (reproducer included) passes.
    case qualified
    /// The repair loop gave up, or the model gave no usable approach.
    case failed
    /// The same change as an earlier approach: not run.
    case duplicate
    case interrupted

    public var isFinished: Bool {
        switch self {
        case .qualified, .failed, .duplicate: true
        case .asking, .queued, .deploying, .testing, .analyzing, .fixing, .interrupted: false
        }
    }
}

/// One fix approach: the strategy it was asked with, the model's change, and its nested repair loop.
public struct Approach: Sendable {
    public var number: Int
    public var strategy: String
    public var status: ApproachStatus
    /// The model's one-line summary (first line of its explanation).
    public var summary: String
    /// The model's first change (what duplicates are compared on).
    public var changes: [FileChange]
    /// Its repair loop (nil until the change arrived, and for duplicates/failed asks).
    public var machine: ProposalMachine?
    /// Why it failed or is a duplicate.
    public var reason: String?
    public var duplicateOf: Int?
    /// Tests that failed in its last run and passed on the base (the "breaking changes").
    public var breaking: [String]
    /// Diff size of its final change against the base (set when measured).
    public var files: Int?
    public var lines: Int?
    /// The suite's durations over `perf_runs` runs (empty: only its passing run).
    public var durationsMs: [Int] = []

    /// The suite's duration that ranking compares: the median of the perf runs, else the passing run's.
    public var durationMs: Int? { median(durationsMs) ?? lastResult?.durationMs }

    /// The final change: its machine's current revision (reproducer included), else the model's change.
    public var finalChanges: [FileChange] { machine?.revisions.last?.changes ?? changes }
    public var lastResult: TestResult? { machine?.revisions.last?.testResult }
    public var attempts: Int { machine?.attempt ?? 0 }
}

/// Inputs: the report, executor results, child (approach) events, and commands.
public enum BugEvent: Sendable, Hashable {
    /// The report was accepted.
    case reported
    /// The analysis request's raw reply, with what the navigator located first.
    case analysisReplied(text: String, located: [String])
    case analysisFailed(reason: String, located: [String])
    /// The reproducer request's raw reply.
    case reproducerReplied(text: String)
    case reproducerFailed(reason: String)
    /// The suite ran on the unchanged repository (plus the reproducer, when there is one).
    case baseRunFinished(TestResult, output: String, analysis: FailureAnalysis)
    /// An approach request's raw reply (fix format).
    case approachReplied(approach: Int, text: String)
    case approachFailed(approach: Int, reason: String)
    /// An executor result for an approach's repair loop.
    case approach(Int, ProposalEvent)
    /// Diff sizes (and, with `perf_runs` > 1, suite durations) of the qualified approaches' final changes,
    /// with the base's durations.
    case measured([Int: ApproachSize], baseDurationsMs: [Int])
    /// The winner's proposal was made (or `choose_approach`'s).
    case proposalCreated(proposal: String, approach: Int, atMilliseconds: Int64)
    case proposalFailed(reason: String)
    /// The linked proposal's status changed (`commit` when applied).
    case proposalStatus(proposal: String, status: ProposalStatus, commit: String?)
    case chooseApproach(principal: String, role: Role, approach: Int)
    case resumeRequested(principal: String, role: Role)
    case interrupted(reason: String)
}

public struct ApproachSize: Sendable, Hashable, Codable {
    public var files: Int
    public var lines: Int
    /// The suite's durations over `perf_runs` runs of the approach's final change (empty: not re-run; its
    /// passing run's duration counts).
    public var durationsMs: [Int]
    public init(files: Int, lines: Int, durationsMs: [Int] = []) {
        self.files = files
        self.lines = lines
        self.durationsMs = durationsMs
    }
}

/// The middle value (the lower middle of an even count); nil when empty.
public func median(_ values: [Int]) -> Int? {
    guard !values.isEmpty else { return nil }
    return values.sorted()[(values.count - 1) / 2]
}

/// What the executor does, in order.
public enum BugAction: Sendable, Hashable {
    case setStatus(BugStatus, reason: String?)
    /// Store and publish an event on `bug:<id>`.
    case publish(kind: String, data: JSONValue)
    /// Locate the report in the code (navigator), read those files, ask the model; answer
    /// `.analysisReplied`/`.analysisFailed`.
    case askAnalysis(reask: (reply: String, complaint: String)?)
    /// Ask for a reproducer (attempt 1, or 2 with the previous reply and why it was refused); answer
    /// `.reproducerReplied`/`.reproducerFailed`.
    case askReproducer(attempt: Int, previous: (reply: String, complaint: String)?)
    /// Run the suite on a fresh copy of the repository plus `reproducer`; answer `.baseRunFinished`.
    case runBase(reproducer: FileChange?)
    /// Ask for approach `approach` with its strategy and the earlier approaches' summaries; answer
    /// `.approachReplied`/`.approachFailed`.
    case askApproach(approach: Int, strategy: String, others: [String])
    /// An action of approach `n`'s repair loop (deploy, runTests, analyze, requestFix, reaskFix, stopWork).
    case approach(Int, ProposalAction)
    /// Measure the qualified approaches' final changes against the base — and run the suite `runs` times for
    /// each and for the base (with `reproducer`) when `runs` > 1; answer `.measured`.
    case measure([Int: [FileChange]], runs: Int, reproducer: FileChange?)
    /// Make a proposal of `changes`; answer `.proposalCreated`/`.proposalFailed`. `key` makes a repeat (after
    /// a restart) return the same proposal.
    case propose(approach: Int, changes: [FileChange], key: String)
    /// Withdraw the proposal an admin replaced with another approach.
    case withdrawProposal(String, reason: String)
    case reject(RejectCode, message: String)
    case ignored(String)

    public static func == (a: BugAction, b: BugAction) -> Bool { String(describing: a) == String(describing: b) }
    public func hash(into hasher: inout Hasher) { hasher.combine(String(describing: self)) }
}

/// The per-bug state machine.
///
/// Rules:
/// - Analysis: one re-ask after a malformed reply; a model failure proceeds with what the navigator located.
/// - Reproduction: the reproducer runs with the whole suite on the unchanged repository and is kept only when
///   it fails there for the reported reason — not a pass, not a timeout, not a syntax/import/undefined-name
///   error in the test itself, and the failing tests include the reproducer's. One re-ask with the run's
///   output; after that (or a model failure) the bug proceeds "not reproduced".
/// - Approaches: asked one after another (each sees the earlier ones' summaries and its own strategy), each
///   started at once in its own sandbox — at most `maxParallel` run together, the rest queue. A change equal
///   to an earlier approach's is a duplicate and does not run. Each runs the proposal repair loop (auto fix,
///   `maxAttempts`); it qualifies when its whole suite (the verified reproducer included) passes.
/// - Ranking: qualified approaches by fewer files, then fewer changed lines, then the suite's duration, then
///   fewer attempts. The winner becomes a proposal; none qualified → `unfixed`.
/// - Commands: `choose_approach` (admins, bug `proposed`, a qualified approach other than the chosen one)
///   withdraws the current proposal and proposes that one; `resume_bug` (admins) continues an interrupted bug.
public struct BugMachine: Sendable {
    public struct Configuration: Sendable, Hashable, Codable {
        /// Repair-loop attempts per approach.
        public var maxAttempts: Int
        /// Approaches running at once.
        public var maxParallel: Int

        public init(maxAttempts: Int = 3, maxParallel: Int = 2) {
            self.maxAttempts = max(0, maxAttempts)
            self.maxParallel = max(1, maxParallel)
        }
    }

    public enum Phase: Sendable, Hashable, Codable {
        case analyzing(reasked: Bool)
        /// The reproducer request `attempt` (1 or 2) is out.
        case writingReproducer(attempt: Int)
        /// The suite runs on the base with `reproducer` (attempt it came from; nil: no reproducer).
        case runningBase(attempt: Int?)
        /// Approaches are asked and run; `asking`: the approach whose request is out.
        case fixing(asking: Int?)
        case measuring
        case proposing(approach: Int)
        case proposed(approach: Int, proposal: String)
        case fixed(approach: Int, proposal: String, commit: String)
        case unfixed
        case interrupted(from: BugStatus)
    }

    public static let strategies = [
        "the smallest targeted change at the suspected location",
        "fix the root cause where the data is produced or consumed, consistently on every path",
        "a defensive, more general change (validation, normalisation or a helper shared by all callers)",
        "rewrite the faulty function for clarity, keeping its interface",
        "fix it at the call sites rather than in the shared code",
    ]

    public let report: BugReport
    public let configuration: Configuration
    public internal(set) var phase: Phase
    public private(set) var analysis: BugAnalysis?
    /// The reproducer under test, or the verified one.
    public private(set) var reproducer: Reproducer?
    /// true: verified; false: not reproduced; nil: not known yet.
    public private(set) var reproduced: Bool?
    public private(set) var reproducerReason: String?
    /// The base run (the suite on the unchanged repository, with the reproducer).
    public private(set) var baseResult: TestResult?
    /// Tests that failed on the base apart from the reproducer's (never counted as broken by an approach).
    public private(set) var baseFailing: [String] = []
    /// The base suite's durations over `perf_runs` runs (empty: only the base run).
    public private(set) var baseDurationsMs: [Int] = []
    /// The base duration ranking reports: the median of the perf runs, else the base run's.
    public var baseDurationMs: Int? { median(baseDurationsMs) ?? baseResult?.durationMs }
    public private(set) var approaches: [Approach] = []
    public private(set) var winner: Int?
    public private(set) var rankingReason: String?
    /// The proposal presenting the chosen approach, and every one made for this bug.
    public private(set) var proposal: String?
    public private(set) var proposals: [String] = []
    /// When the first proposal was made (ms since the epoch; report → proposal time).
    public private(set) var proposedAt: Int64?
    /// The last status the pipeline reported for `proposal` (nil: none since it was made).
    public private(set) var currentProposalStatus: ProposalStatus?
    /// Malformed-analysis reply kept for the re-ask.
    var analysisRetry: String?

    public init(report: BugReport, configuration: Configuration = Configuration()) {
        self.report = report
        self.configuration = configuration
        self.phase = .analyzing(reasked: false)
    }

    public var status: BugStatus {
        switch phase {
        case .analyzing: .analyzing
        case .writingReproducer, .runningBase: .reproducing
        case .fixing, .measuring, .proposing: .fixing
        case .proposed: .proposed
        case .fixed: .fixed
        case .unfixed: .unfixed
        case .interrupted: .interrupted
        }
    }

    public var chosenApproach: Int? {
        switch phase {
        case .proposed(let n, _), .fixed(let n, _, _), .proposing(let n): n
        default: nil
        }
    }

    // MARK: handle

    public mutating func handle(_ event: BugEvent) -> [BugAction] {
        switch event {
        case .reported: return reported()
        case .analysisReplied(let text, let located): return analysisReplied(text, located)
        case .analysisFailed(let reason, let located): return analysisFailed(reason, located)
        case .reproducerReplied(let text): return reproducerReplied(text)
        case .reproducerFailed(let reason): return reproducerFailed(reason)
        case .baseRunFinished(let result, let output, let analysis): return baseRunFinished(result, output, analysis)
        case .approachReplied(let n, let text): return approachReplied(n, text)
        case .approachFailed(let n, let reason): return approachFailed(n, reason)
        case .approach(let n, let child): return route(n, child)
        case .measured(let sizes, let base): return measured(sizes, base)
        case .proposalCreated(let id, let n, let at): return proposalCreated(id, n, at)
        case .proposalFailed(let reason): return proposalFailed(reason)
        case .proposalStatus(let id, let status, let commit): return proposalStatus(id, status, commit)
        case .chooseApproach(let principal, let role, let n): return chooseApproach(principal, role, n)
        case .resumeRequested(let principal, let role): return resume(principal, role)
        case .interrupted(let reason): return interrupted(reason)
        }
    }

    private func ignored(_ what: String) -> [BugAction] { [.ignored("\(what) while \(status.rawValue)")] }

    private mutating func enter(_ phase: Phase, reason: String? = nil) -> [BugAction] {
        let before = status
        self.phase = phase
        guard status != before || reason != nil else { return [] }
        var data: JSONObject = ["status": .string(status.rawValue)]
        if let reason { data["reason"] = .string(reason) }
        return [.setStatus(status, reason: reason), .publish(kind: "status_changed", data: .object(data))]
    }

    private mutating func reported() -> [BugAction] {
        guard case .analyzing(false) = phase, approaches.isEmpty, analysis == nil else { return ignored("reported") }
        return [.publish(kind: "bug_reported", data: report.json), .setStatus(.analyzing, reason: nil),
                .publish(kind: "status_changed", data: .object(["status": .string("analyzing")])), .askAnalysis(reask: nil)]
    }

    // MARK: analysis

    private mutating func analysisReplied(_ text: String, _ located: [String]) -> [BugAction] {
        guard case .analyzing(let reasked) = phase else { return ignored("analysis") }
        do throws(BugReplyError) {
            return analysed(try BugReplies.analysis(text, located: located))
        } catch {
            guard !reasked else { return analysisFailed("the analysis reply was refused: \(error.description)", located) }
            phase = .analyzing(reasked: true)
            return [.askAnalysis(reask: (text, "Your previous reply was refused: \(error.description). Reply again with exactly one JSON object in the required format."))]
        }
    }

    private mutating func analysisFailed(_ reason: String, _ located: [String]) -> [BugAction] {
        guard case .analyzing = phase else { return ignored("analysis_failed") }
        let fallback = BugAnalysis(
            summary: "The model gave no analysis (\(reason)); the navigator's locations stand in for it.",
            locations: located.prefix(5).map { SuspectedLocation(file: $0, line: 1, why: "found by the code navigator") },
            causes: [], located: located)
        return analysed(fallback)
    }

    private mutating func analysed(_ analysis: BugAnalysis) -> [BugAction] {
        self.analysis = analysis
        return [.publish(kind: "bug_analysis", data: analysis.json)] + enter(.writingReproducer(attempt: 1))
            + [.askReproducer(attempt: 1, previous: nil)]
    }

    // MARK: reproduction

    private mutating func reproducerReplied(_ text: String) -> [BugAction] {
        guard case .writingReproducer(let attempt) = phase else { return ignored("reproducer") }
        let parsed: Reproducer
        do throws(BugReplyError) { parsed = try BugReplies.reproducer(text) } catch {
            return reproducerRefused(attempt: attempt, path: nil, reason: error.description, reply: text, output: nil)
        }
        reproducer = parsed
        phase = .runningBase(attempt: attempt)
        return [
            .publish(kind: "reproducer_written", data: .object([
                "attempt": .integer(attempt), "path": .string(parsed.path), "explanation": .string(parsed.explanation),
                "content": .string(parsed.content),
            ])),
            .runBase(reproducer: parsed.change),
        ]
    }

    private mutating func reproducerFailed(_ reason: String) -> [BugAction] {
        guard case .writingReproducer = phase else { return ignored("reproducer_failed") }
        return notReproduced(path: nil, reason: "the model wrote no reproducer: \(reason)", runBase: true)
    }

    /// A refused reproducer: asked once more (attempt 1), else the bug goes on without one.
    private mutating func reproducerRefused(attempt: Int, path: String?, reason: String, reply: String, output: String?) -> [BugAction] {
        var data: JSONObject = ["reason": .string(reason), "attempt": .integer(attempt)]
        if let path { data["path"] = .string(path) }
        let published: BugAction = .publish(kind: "reproducer_rejected", data: .object(data))
        guard attempt < 2 else { return [published] + notReproduced(path: path, reason: reason, runBase: baseResult == nil, publish: false) }
        phase = .writingReproducer(attempt: 2)
        var complaint = "Your reproducer was refused: \(reason)."
        if let output { complaint += "\n\nThe run's output (last part):\n```\n\(String(output.suffix(6_000)))\n```" }
        complaint += "\nWrite a test that fails on the unchanged repository because of the reported bug, as exactly one JSON object in the required format."
        return [published, .askReproducer(attempt: 2, previous: (reply, complaint))]
    }

    private mutating func notReproduced(path: String?, reason: String, runBase: Bool, publish: Bool = true) -> [BugAction] {
        reproduced = false
        reproducerReason = reason
        reproducer = nil
        var actions: [BugAction] = []
        if publish {
            var data: JSONObject = ["reason": .string(reason)]
            if let path { data["path"] = .string(path) }
            actions.append(.publish(kind: "reproducer_rejected", data: .object(data)))
        }
        if runBase {
            phase = .runningBase(attempt: nil)
            return actions + [.runBase(reproducer: nil)]
        }
        return actions + startFixing()
    }

    private mutating func baseRunFinished(_ result: TestResult, _ output: String, _ failure: FailureAnalysis) -> [BugAction] {
        guard case .runningBase(let attempt) = phase else { return ignored("base_run_finished") }
        baseResult = result
        let failing = FailingTests.parse(output)
        guard let attempt, let candidate = reproducer else {
            baseFailing = failing
            return startFixing()
        }
        let own = failing.filter { Self.names(test: $0, file: candidate.path) }
        baseFailing = failing.filter { !own.contains($0) }
        if let refusal = Self.refusal(result, failure, reproducer: candidate.path, ownFailures: own, anyFailures: !failing.isEmpty) {
            reproducer = nil
            return reproducerRefused(attempt: attempt, path: candidate.path, reason: refusal, reply: Self.replyText(candidate), output: output)
        }
        reproduced = true
        let tail = String(output.utf8.count > 4_096 ? String(decoding: Array(output.utf8).suffix(4_096), as: UTF8.self) : output)
        return [.publish(kind: "reproducer_verified", data: .object([
            "path": .string(candidate.path), "fails_on_base": .bool(true), "output": .string(tail),
            "failing": .array(own.map { .string($0) }), "category": .string(failure.category.rawValue),
        ]))] + startFixing()
    }

    /// Why a reproducer run does not reproduce the bug, or nil when it does.
    static func refusal(_ result: TestResult, _ failure: FailureAnalysis, reproducer path: String, ownFailures: [String], anyFailures: Bool) -> String? {
        if result.succeeded { return "the reproducer passes on the unchanged repository: it does not show the bug" }
        // No exit status and no signal: the suite never ran (the reproducer could not be written — e.g. its path
        // exists —, the sandbox could not be made or the command could not start). Nothing was reproduced.
        if result.exitCode < 0, result.signal == nil, !result.timedOut {
            return "the suite did not run on the unchanged repository: \(failure.rootCause)"
        }
        if result.timedOut { return "the run timed out on the unchanged repository" }
        let inTest = failure.locations.first.map { $0.file == path } ?? true
        switch failure.category {
        case .syntax, .indentation, .import, .undefinedName, .fileNotFound:
            if inTest { return "it fails because of a \(failure.category.rawValue) error in the test itself (\(failure.rootCause))" }
        case .timeout, .diskQuota: return "the run failed with \(failure.category.rawValue), not because of the bug"
        case .type, .crash, .assertion, .other: break
        }
        if anyFailures && ownFailures.isEmpty {
            return "the run fails, but not in the reproducer's tests (\(path)): the failure is not the reported one"
        }
        return nil
    }

    /// Whether a test name (FailingTests' forms) belongs to the file at `path`.
    static func names(test: String, file path: String) -> Bool {
        if test.hasPrefix(path + "::") { return true }
        var module = path
        if module.hasSuffix(".py") { module.removeLast(3) }
        module = module.split(separator: "/").joined(separator: ".")
        let base = module.split(separator: ".").last.map(String.init) ?? module
        return test.hasPrefix(module + ".") || test.hasPrefix(base + ".") || test.contains("." + base + ".")
    }

    static func replyText(_ r: Reproducer) -> String {
        JSONValue.object(["path": .string(r.path), "content": .string(r.content), "explanation": .string(r.explanation)]).jsonString
    }

    // MARK: approaches

    private mutating func startFixing() -> [BugAction] {
        enter(.fixing(asking: nil)) + next(after: 0)
    }

    static func strategy(_ n: Int) -> String { strategies[(n - 1) % strategies.count] }

    private var others: [String] {
        approaches.filter { !$0.summary.isEmpty }.map { "#\($0.number) (\($0.strategy)): \($0.summary)" }
    }

    /// Asks for the next approach, or, when all were asked, ranks once every one finished.
    private mutating func next(after n: Int) -> [BugAction] {
        guard n < report.approaches else {
            phase = .fixing(asking: nil)
            return finishIfDone()
        }
        let number = n + 1
        phase = .fixing(asking: number)
        let strategy = Self.strategy(number)
        let asked = others
        approaches.append(Approach(number: number, strategy: strategy, status: .asking, summary: "", changes: [], breaking: []))
        return [.askApproach(approach: number, strategy: strategy, others: asked)]
    }

    private func index(_ n: Int) -> Int? { approaches.firstIndex { $0.number == n } }

    private mutating func approachReplied(_ n: Int, _ text: String) -> [BugAction] {
        guard case .fixing(let asking) = phase, asking == n, let i = index(n) else { return ignored("approach \(n) reply") }
        let reply: FixReply
        do throws(FixReplyError) { reply = try FixReply.parse(text) } catch {
            return approachFailed(n, "the approach was refused: \(error.description)")
        }
        if reply.unfixable { return approachFailed(n, "the model judged the bug unfixable: \(BugReplies.summaryLine(reply.explanation))") }
        approaches[i].summary = BugReplies.summaryLine(reply.explanation)
        approaches[i].changes = reply.changes
        if let earlier = approaches.first(where: { $0.number != n && $0.machine != nil && Self.same($0.changes, reply.changes) }) {
            approaches[i].status = .duplicate
            approaches[i].duplicateOf = earlier.number
            approaches[i].reason = "the same change as approach #\(earlier.number)"
            return [
                .publish(kind: "approach_duplicate", data: .object([
                    "approach": .integer(n), "duplicate_of": .integer(earlier.number), "reason": .string(approaches[i].reason!),
                ])),
                approachStatus(i),
            ] + next(after: n)
        }
        let changes = reproduced == true ? FileChange.merge(base: reply.changes, fix: reproducer.map { [$0.change] } ?? []) : reply.changes
        let info = ProposalInfo(
            id: "\(report.id)-a\(n)", title: report.title,
            description: "\(report.description)\n\nApproach #\(n) — strategy: \(approaches[i].strategy).\n\(reply.explanation)"
                + (reproducer.map { "\nThe test \($0.path) reproduces the bug and must pass." } ?? ""),
            repo: report.repo, author: report.author, createdAt: "")
        approaches[i].machine = ProposalMachine(info: info, configuration: .init(maxAttempts: configuration.maxAttempts, quorum: 1, fixMode: .auto))
        approaches[i].status = .queued
        var actions: [BugAction] = [.publish(kind: "approach_started", data: .object([
            "approach": .integer(n), "strategy": .string(approaches[i].strategy), "summary": .string(approaches[i].summary),
            "explanation": .string(reply.explanation), "changes": .array(changes.map(\.json)),
        ]))]
        actions.append(approachStatus(i))
        actions += startQueued()
        return actions + next(after: n)
    }

    private mutating func approachFailed(_ n: Int, _ reason: String) -> [BugAction] {
        guard case .fixing(let asking) = phase, asking == n, let i = index(n) else { return ignored("approach \(n) failure") }
        approaches[i].status = .failed
        approaches[i].reason = reason
        return [approachStatus(i)] + next(after: n)
    }

    /// Same files with the same contents (whitespace at line ends ignored).
    static func same(_ a: [FileChange], _ b: [FileChange]) -> Bool {
        func key(_ changes: [FileChange]) -> [String] {
            changes.map { change in
                let content = (change.content ?? "").split(separator: "\n", omittingEmptySubsequences: false)
                    .map { $0.reversed().drop(while: { $0 == " " || $0 == "\t" || $0 == "\r" }).reversed() }
                    .map { String($0) }.joined(separator: "\n")
                return change.path + "\u{0}" + change.action.rawValue + "\u{0}" + content.trimmingTrailingNewlines()
            }.sorted()
        }
        return key(a) == key(b)
    }

    private var running: Int {
        approaches.filter { [.deploying, .testing, .analyzing, .fixing].contains($0.status) }.count
    }

    /// Starts queued approaches while sandbox slots are free.
    private mutating func startQueued() -> [BugAction] {
        guard case .fixing = phase else { return [] }
        var actions: [BugAction] = []
        while running < configuration.maxParallel, let i = approaches.firstIndex(where: { $0.status == .queued }) {
            let changes = approaches[i].changes
            let withReproducer = reproduced == true ? FileChange.merge(base: changes, fix: reproducer.map { [$0.change] } ?? []) : changes
            actions += child(i, .created(Revision(number: 1, changes: withReproducer)))
        }
        return actions
    }

    /// Feeds an approach's machine and translates what it says.
    private mutating func child(_ i: Int, _ event: ProposalEvent) -> [BugAction] {
        guard var machine = approaches[i].machine else { return [] }
        let n = approaches[i].number
        if case .testsFinished(let result, let output) = event {
            // Tests that passed on the base: neither the base's own failures nor the reproducer's.
            approaches[i].breaking = result.succeeded ? [] : FailingTests.parse(output).filter { name in
                !baseFailing.contains(name) && !(reproducer.map { Self.names(test: name, file: $0.path) } ?? false)
            }
        }
        let before = approaches[i].status
        let attemptBefore = approaches[i].attempts
        let childActions = machine.handle(event)
        approaches[i].machine = machine
        var actions: [BugAction] = []
        for action in childActions {
            switch action {
            case .publish(let event):
                switch event {
                case .proposalCreated, .statusChanged: break  // approach_status and approach_started say it
                case .unfixable(let reason, _):
                    approaches[i].reason = reason
                    fallthrough
                default:
                    var data = event.data.objectValue ?? JSONObject()
                    data["approach"] = .integer(n)
                    actions.append(.publish(kind: event.kind, data: .object(data)))
                }
            case .deploy, .runTests, .analyze, .requestFix, .reaskFix, .stopWork:
                actions.append(.approach(n, action))
            case .setStatus, .record, .ignored:
                break
            case .checkBase, .runPreApplyTests, .applyToRepository, .runPostApply, .revert, .rollback, .reject:
                actions.append(.ignored("approach \(n): \(action)"))  // an approach is never reviewed or applied
            }
        }
        approaches[i].status = Self.approachStatus(machine.status, current: before)
        if approaches[i].status == .qualified, reproduced == true, let verified = reproducer,
           !approaches[i].finalChanges.contains(verified.change)
        {
            // A repair-loop fix rewrote or removed the verified reproducer: its passing suite no longer shows the bug fixed.
            approaches[i].status = .failed
            approaches[i].reason = "its final change alters or removes the reproducer \(verified.path), so its passing suite does not show the bug fixed"
        }
        if approaches[i].status == .failed, approaches[i].reason == nil {
            approaches[i].reason = machine.revisions.last?.analysis?.rootCause.isEmpty == false
                ? "the repair loop gave up: \(machine.revisions.last!.analysis!.rootCause)" : "the repair loop gave up"
        }
        if approaches[i].status != before || approaches[i].attempts != attemptBefore { actions.append(approachStatus(i)) }
        if approaches[i].status.isFinished && !before.isFinished {
            actions += startQueued()
            actions += finishIfDone()
        }
        return actions
    }

    static func approachStatus(_ status: ProposalStatus, current: ApproachStatus) -> ApproachStatus {
        switch status {
        case .proposed: current == .queued ? .queued : .deploying
        case .deploying: .deploying
        case .testing: .testing
        case .analyzing, .testsFailed: .analyzing
        case .fixing: .fixing
        case .awaitingReview, .testsPassed, .approved, .applying, .applied, .changesRequested: .qualified
        case .unfixable, .applyFailed, .rejected, .rolledBack, .withdrawn: .failed
        case .interrupted: .interrupted
        }
    }

    private func approachStatus(_ i: Int) -> BugAction {
        let a = approaches[i]
        var data: JSONObject = [
            "approach": .integer(a.number), "status": .string(a.status.rawValue), "attempt": .integer(a.attempts),
            "max_attempts": .integer(a.machine?.attemptLimit ?? configuration.maxAttempts),
        ]
        if let reason = a.reason { data["reason"] = .string(reason) }
        if !a.breaking.isEmpty { data["breaking"] = .array(a.breaking.map { .string($0) }) }
        return .publish(kind: "approach_status", data: .object(data))
    }

    private mutating func route(_ n: Int, _ event: ProposalEvent) -> [BugAction] {
        guard let i = index(n), approaches[i].machine != nil else { return ignored("approach \(n) result") }
        if case .interrupted = phase { return ignored("approach \(n) result") }
        return child(i, event)
    }

    /// Every approach asked and finished: measure them for the ranking.
    private mutating func finishIfDone() -> [BugAction] {
        guard case .fixing(asking: nil) = phase, approaches.allSatisfy(\.status.isFinished) else { return [] }
        phase = .measuring
        var changes: [Int: [FileChange]] = [:]
        // The reproducer is the same in every approach: sizes compare the fixes alone.
        for a in approaches where a.status == .qualified { changes[a.number] = a.finalChanges.filter { $0.path != reproducer?.path } }
        return [.measure(changes, runs: changes.isEmpty ? 1 : report.runs, reproducer: reproduced == true ? reproducer?.change : nil)]
    }

    private mutating func measured(_ sizes: [Int: ApproachSize], _ baseDurations: [Int]) -> [BugAction] {
        guard case .measuring = phase else { return ignored("measured") }
        for (n, size) in sizes {
            guard let i = index(n) else { continue }
            approaches[i].files = size.files
            approaches[i].lines = size.lines
            approaches[i].durationsMs = size.durationsMs
        }
        baseDurationsMs = baseDurations
        let ranking = Self.rank(approaches)
        winner = ranking.winner
        rankingReason = ranking.why
        var actions: [BugAction] = [.publish(kind: "approaches_ranked", data: rankingJSON)]
        guard let best = ranking.winner, let i = index(best) else {
            let reasons = approaches.map { a -> JSONValue in
                .object(["approach": .integer(a.number), "reason": .string(a.reason ?? a.status.rawValue)])
            }
            actions.append(.publish(kind: "bug_unfixed", data: .object(["reasons": .array(reasons)])))
            return actions + enter(.unfixed, reason: "no approach qualified")
        }
        phase = .proposing(approach: best)
        actions.append(.propose(approach: best, changes: approaches[i].finalChanges, key: "\(report.id)-a\(best)-\(proposals.count + 1)"))
        return actions
    }

    /// The qualified approaches in order, the winner and why (pure; tested on its own).
    static func rank(_ approaches: [Approach]) -> (order: [Int], winner: Int?, why: String) {
        let qualified = approaches.filter { $0.status == .qualified }
        let sorted = qualified.sorted { a, b in
            let ka = (a.files ?? Int.max, a.lines ?? Int.max, a.durationMs ?? Int.max, a.attempts, a.number)
            let kb = (b.files ?? Int.max, b.lines ?? Int.max, b.durationMs ?? Int.max, b.attempts, b.number)
            return ka < kb
        }
        guard let best = sorted.first else { return ([], nil, "no approach passes the whole suite with the reproducer") }
        var why = "#\(best.number) passes all tests"
        if let runnerUp = sorted.dropFirst().first {
            if (best.files ?? 0) < (runnerUp.files ?? 0) {
                why += " and changes fewer files (\(best.files ?? 0) vs \(runnerUp.files ?? 0) for #\(runnerUp.number))"
            } else if (best.lines ?? 0) < (runnerUp.lines ?? 0) {
                why += " with the smallest change (\(best.lines ?? 0) lines vs \(runnerUp.lines ?? 0) for #\(runnerUp.number))"
            } else if (best.durationMs ?? 0) < (runnerUp.durationMs ?? 0) {
                why += " and its suite runs faster (\(best.durationMs ?? 0) ms vs \(runnerUp.durationMs ?? 0) ms)"
            } else {
                why += " in fewer attempts (\(best.attempts) vs \(runnerUp.attempts))"
            }
        } else {
            why += "; it is the only approach that qualified"
        }
        return (sorted.map(\.number), best.number, why)
    }

    public var rankingJSON: JSONValue {
        .object([
            "approaches": .array(approaches.map(approachJSON)),
            "winner": winner.map { .integer($0) } ?? .null, "why": .string(rankingReason ?? ""),
            "base_duration_ms": baseDurationMs.map { .integer($0) } ?? .null, "perf_runs": .integer(report.runs),
            "base_durations_ms": .array(baseDurationsMs.map { .integer($0) }),
        ])
    }

    public func approachJSON(_ a: Approach) -> JSONValue {
        let result = a.lastResult
        return .object([
            "approach": .integer(a.number), "strategy": .string(a.strategy), "summary": .string(a.summary),
            "status": .string(a.status.rawValue), "qualified": .bool(a.status == .qualified),
            "reason": a.reason.map { .string($0) } ?? .null, "duplicate_of": a.duplicateOf.map { .integer($0) } ?? .null,
            "files": a.files.map { .integer($0) } ?? .null, "lines": a.lines.map { .integer($0) } ?? .null,
            "attempts": .integer(a.attempts), "max_attempts": .integer(a.machine?.attemptLimit ?? configuration.maxAttempts),
            "tests_passed": result?.passed.map { .integer($0) } ?? .null, "tests_failed": result?.failed.map { .integer($0) } ?? .null,
            "duration_ms": a.durationMs.map { .integer($0) } ?? .null, "durations_ms": .array(a.durationsMs.map { .integer($0) }),
            "base_duration_ms": baseDurationMs.map { .integer($0) } ?? .null,
            "reproducer_passes": reproduced == true ? .bool(a.status == .qualified) : .null,
            "breaking": .array(a.breaking.map { .string($0) }),
            "changes": .array(a.finalChanges.map(\.json)),
        ])
    }

    // MARK: presenting

    private mutating func proposalCreated(_ id: String, _ n: Int, _ at: Int64) -> [BugAction] {
        guard case .proposing(let expected) = phase, expected == n else { return ignored("proposal_created") }
        proposal = id
        currentProposalStatus = nil
        if proposedAt == nil { proposedAt = at }
        if !proposals.contains(id) { proposals.append(id) }
        return [.publish(kind: "bug_proposed", data: .object(["proposal": .string(id), "approach": .integer(n)]))]
            + enter(.proposed(approach: n, proposal: id), reason: "approach #\(n) is proposal \(id)")
    }

    private mutating func proposalFailed(_ reason: String) -> [BugAction] {
        guard case .proposing = phase else { return ignored("proposal_failed") }
        return [.publish(kind: "bug_unfixed", data: .object(["reasons": .array([.object(["reason": .string("the proposal could not be made: \(reason)")])])]))]
            + enter(.unfixed, reason: "the proposal could not be made: \(reason)")
    }

    private mutating func proposalStatus(_ id: String, _ status: ProposalStatus, _ commit: String?) -> [BugAction] {
        guard case .proposed(let n, let current) = phase, current == id else { return ignored("proposal_status") }
        currentProposalStatus = status
        var actions: [BugAction] = [.publish(kind: "proposal_status", data: .object(["proposal": .string(id), "status": .string(status.rawValue)]))]
        if status == .applied, let commit {
            actions.append(.publish(kind: "bug_fixed", data: .object(["proposal": .string(id), "commit": .string(commit), "approach": .integer(n)])))
            actions += enter(.fixed(approach: n, proposal: id, commit: commit), reason: "proposal \(id) was applied as \(commit)")
        }
        return actions
    }

    private mutating func chooseApproach(_ principal: String, _ role: Role, _ n: Int) -> [BugAction] {
        guard role == .admin else { return [.reject(.forbidden, message: "only admins choose an approach")] }
        guard case .proposed(let chosen, let current) = phase else {
            return [.reject(.invalidState, message: "the bug is \(status.rawValue); an approach is chosen only while it is proposed")]
        }
        guard let i = index(n) else { return [.reject(.invalidState, message: "there is no approach #\(n)")] }
        guard approaches[i].status == .qualified else {
            return [.reject(.invalidState, message: "approach #\(n) did not qualify (\(approaches[i].reason ?? approaches[i].status.rawValue))")]
        }
        guard n != chosen else { return [.reject(.invalidState, message: "approach #\(n) is already the proposal \(current)")] }
        if let status = currentProposalStatus, [.approved, .applying, .applied].contains(status) {
            // It can no longer be withdrawn: the bug follows it (to `fixed` once applied).
            return [.reject(.invalidState, message: "proposal \(current) is \(status.rawValue); another approach can no longer replace it")]
        }
        return enter(.proposing(approach: n), reason: "\(principal) chose approach #\(n)") + [
            .publish(kind: "approach_chosen", data: .object(["approach": .integer(n), "principal": .string(principal), "replaces": .string(current)])),
            .withdrawProposal(current, reason: "\(principal) chose approach #\(n) of bug \(report.id) instead"),
            .propose(approach: n, changes: approaches[i].finalChanges, key: "\(report.id)-a\(n)-\(proposals.count + 1)"),
        ]
    }

    // MARK: interruption

    private mutating func interrupted(_ reason: String) -> [BugAction] {
        guard status.isBusy else { return ignored("interrupted") }
        var actions = enter(.interrupted(from: status), reason: reason)
        for i in approaches.indices where !approaches[i].status.isFinished {
            if approaches[i].machine != nil, approaches[i].status != .queued {
                actions += child(i, .interrupted(reason: reason))
            } else if approaches[i].status == .asking {
                approaches[i].status = .interrupted
                actions.append(approachStatus(i))
            }
        }
        return actions
    }

    private mutating func resume(_ principal: String, _ role: Role) -> [BugAction] {
        guard role == .admin else { return [.reject(.forbidden, message: "only admins resume a bug")] }
        guard case .interrupted(let from) = phase else {
            return [.reject(.invalidState, message: "only an interrupted bug can be resumed (it is \(status.rawValue))")]
        }
        let why = "resumed by \(principal)"
        switch from {
        case .analyzing:
            return enter(.analyzing(reasked: false), reason: why) + [.askAnalysis(reask: nil)]
        case .reproducing:
            reproducer = nil
            return enter(.writingReproducer(attempt: 1), reason: why) + [.askReproducer(attempt: 1, previous: nil)]
        case .fixing:
            var actions = enter(.fixing(asking: nil), reason: why)
            // Interrupted repair loops re-deploy their current revision (as `auto_fix` does for a proposal).
            for i in approaches.indices where approaches[i].status == .interrupted && approaches[i].machine != nil {
                actions += child(i, .autoFixRequested(principal: principal, role: .admin))
            }
            actions += startQueued()
            if let i = approaches.firstIndex(where: { $0.status == .interrupted && $0.machine == nil }) {
                // Its request was lost: ask again; the approaches after it follow as usual.
                approaches[i].status = .asking
                phase = .fixing(asking: approaches[i].number)
                let asked = others
                return actions + [approachStatus(i), .askApproach(approach: approaches[i].number, strategy: approaches[i].strategy, others: asked)]
            }
            if approaches.count < report.approaches, let last = approaches.last?.number {
                return actions + next(after: last)
            }
            return actions + finishIfDone()
        case .proposed, .fixed, .unfixed, .interrupted:
            return [.reject(.invalidState, message: "nothing to resume")]
        }
    }

    // MARK: loading

    init(report: BugReport, configuration: Configuration, phase: Phase, analysis: BugAnalysis?, reproducer: Reproducer?, reproduced: Bool?,
         reproducerReason: String?, baseResult: TestResult?, baseFailing: [String], baseDurationsMs: [Int], approaches: [Approach], winner: Int?,
         rankingReason: String?, proposal: String?, proposals: [String], proposedAt: Int64?, currentProposalStatus: ProposalStatus? = nil) {
        self.report = report
        self.configuration = configuration
        self.phase = phase
        self.analysis = analysis
        self.reproducer = reproducer
        self.reproduced = reproduced
        self.reproducerReason = reproducerReason
        self.baseResult = baseResult
        self.baseFailing = baseFailing
        self.baseDurationsMs = baseDurationsMs
        self.approaches = approaches
        self.winner = winner
        self.rankingReason = rankingReason
        self.proposal = proposal
        self.proposals = proposals
        self.proposedAt = proposedAt
        self.currentProposalStatus = currentProposalStatus
    }
}

extension String {
    func trimmingTrailingNewlines() -> String {
        var s = Substring(self)
        while s.last == "\n" { s = s.dropLast() }
        return String(s)
    }
}
