// BugService: the executor of every bug's `BugMachine` — asks the model (analysis, reproducer, approaches),
// runs the base suite, runs each approach's repair loop through `SandboxSteps` in its own sandbox, measures,
// and presents the winner as a proposal through `PipelineService`. Like the pipeline, it stores each step
// (the bug's row in `workflows` plus its events on `bug:<id>`) before anyone sees it or anything follows.
import EventLoop
import Foundation
import Logging
import Pipeline
import Protocol
import Sandbox
import Store

/// One bug's live state: its machine plus the executor's handles.
final class BugRuntime {
    var machine: BugMachine
    let repository: RepositoryConfig?
    let createdAt: Int64
    var inbox: [BugInput] = []
    var writing = false
    var inFlight: BugInput?
    /// Sandbox targets: approach number → its target; 0 is the base run, -1 the bug's own model requests.
    var targets: [Int: BugStepTarget] = [:]
    var lastPublishedStatus: BugStatus?
    weak var service: BugService?

    init(machine: BugMachine, repository: RepositoryConfig?, createdAt: Int64) {
        self.machine = machine
        self.repository = repository
        self.createdAt = createdAt
    }

    var id: String { machine.report.id }
    var topic: String { "bug:\(id)" }

    func target(_ approach: Int) -> BugStepTarget {
        if let target = targets[approach] { return target }
        let target = BugStepTarget(bug: self, approach: approach)
        targets[approach] = target
        return target
    }
}

/// One input waiting for its bug's machine.
struct BugInput {
    var event: BugEvent
    var command: PendingCommand?
}

/// The sandbox target of one approach's repair loop (or, number 0, of the base run): its events go to the
/// bug's topic tagged with the approach.
final class BugStepTarget: StepTarget {
    unowned let bug: BugRuntime
    let approach: Int
    var workspace: (any SandboxWorkspace)?
    var testRun: (any RunningTest)?
    var lastRun: TestRunResult?

    init(bug: BugRuntime, approach: Int) {
        self.bug = bug
        self.approach = approach
    }

    var repository: RepositoryConfig? { bug.repository }
    var repoName: String { bug.machine.report.repo }
    var sandboxName: String { bug.id }
    func revision(_ number: Int) -> Revision? {
        bug.machine.approaches.first { $0.number == approach }?.machine?.revisions.first { $0.number == number }
    }
    var modelLabels: [String: String] { ["bug": bug.id, "title": bug.machine.report.title, "approach": String(approach)] }
    func deliver(_ event: ProposalEvent) { bug.service?.feed(bug, .approach(approach, event)) }
    private func tagged(_ data: JSONObject) -> JSONObject {
        var data = data
        switch approach {
        case 0: data["phase"] = .string("base")
        case 1...: data["approach"] = .int(Int64(approach))
        default: break  // the analysis and reproducer requests: their deltas say their `purpose`
        }
        return data
    }
    func publishStored(kind: String, data: JSONObject) { bug.service?.publish(bug, kind: kind, data: .object(tagged(data))) }
    func publishEphemeral(kind: String, data: JSONObject) {
        bug.service?.sink.publishEphemeral(topic: bug.topic, kind: kind, data: .object(tagged(data)))
    }
}

/// The bug workflow's figures (stats, /metrics).
struct BugFigures {
    var reported = 0, reproduced = 0, notReproduced = 0, proposed = 0, fixed = 0, unfixed = 0, approaches = 0
    var proposalMillisecondsTotal: Int64 = 0

    mutating func count(_ m: BugMachine, createdAt: Int64, sign: Int) {
        reported += sign
        if m.reproduced == true { reproduced += sign }
        if m.reproduced == false { notReproduced += sign }
        if let at = m.proposedAt {
            proposed += sign
            proposalMillisecondsTotal += Int64(sign) * max(0, at - createdAt)
        }
        if m.status == .fixed { fixed += sign }
        if m.status == .unfixed { unfixed += sign }
        approaches += sign * m.approaches.filter { $0.machine != nil || $0.status == .duplicate }.count
    }
}

/// Runs every bug (see `BugsFeature`, `BugMachine`).
public final class BugService {
    let sink: any Publisher
    let store: Store
    let loop: EventLoop
    let configuration: MedicConfiguration
    let logger: Logger
    let pipeline: PipelineService
    var steps: SandboxSteps { pipeline.steps }
    var executors: WorkflowExecutors { pipeline.executors }
    var runtimes: [String: BugRuntime] = [:]
    var unreadable: [String: String] = [:]
    private var loading: [String: [(BugRuntime?) -> Void]] = [:]
    var figures = BugFigures()
    /// Told when a bug's status changed (after it is stored): the incidents follow the bugs they filed.
    var onStatusChanged: [(BugMachine) -> Void] = []

    init(sink: any Publisher, store: Store, loop: EventLoop, configuration: MedicConfiguration, pipeline: PipelineService, logger: Logger) {
        self.sink = sink
        self.store = store
        self.loop = loop
        self.configuration = configuration
        self.pipeline = pipeline
        self.logger = logger
        pipeline.onStatusChanged.append { [weak self] proposal in self?.proposalChanged(proposal) }
    }

    /// At startup (blocking; the loop is not running yet): the figures over every stored bug, and the bugs
    /// that were busy marked interrupted (`resume_bug` continues them).
    func recover() throws {
        let rows = try store.sync { store.workflows(kind: "bug", statuses: BugStatus.allCases.map(\.rawValue), completion: $0) }
        for row in rows {
            guard let runtime = makeRuntime(row) else { continue }
            figures.count(runtime.machine, createdAt: row.createdAt, sign: 1)
            let status = runtime.machine.status
            guard status.isBusy, configuration.nodesAliveAtStart.isEmpty else { continue }   // others' work is theirs
            runtimes[runtime.id] = runtime
            executors.clock.schedule(afterNanoseconds: 0) { [weak self] in
                self?.feed(runtime, .interrupted(reason: "the server restarted while the bug was \(status.rawValue)"))
            }
        }
    }

    func makeRuntime(_ row: WorkflowRow) -> BugRuntime? {
        let machine: BugMachine
        do throws(RecordError) { machine = try BugMachine.load(document: row.doc) } catch {
            logger.error("cannot read the stored state of bug \(row.id) (\(error)); it stays read-only")
            unreadable[row.id] = error.description
            return nil
        }
        let runtime = BugRuntime(machine: machine, repository: configuration.repositories.first { $0.name == row.repo }, createdAt: row.createdAt)
        runtime.lastPublishedStatus = machine.status
        runtime.service = self
        return runtime
    }

    func withRuntime(_ id: String, _ body: @escaping (BugRuntime?) -> Void) {
        if let runtime = runtimes[id] { return body(runtime) }
        if loading[id] != nil { loading[id]?.append(body); return }
        loading[id] = [body]
        let loaded = LoopBound({ [weak self] (result: Result<WorkflowRow?, StoreError>) in
            guard let self else { return }
            let waiting = self.loading.removeValue(forKey: id) ?? []
            var runtime = self.runtimes[id]
            if runtime == nil, case .success(let row?) = result, row.kind == "bug" {
                runtime = self.makeRuntime(row)
                if let runtime { self.runtimes[id] = runtime }
            }
            if case .failure(let error) = result { self.logger.error("loading bug \(id) failed: \(error)") }
            for body in waiting { body(runtime) }
        }, loop: loop)
        store.workflow(id: id) { result in loaded.hop { body in body(result) } }
    }

    // MARK: commands

    func report(_ report: BugReport, commandID: String?, principal: Principal, reply: @escaping CommandReply) {
        let repository = configuration.repositories.first { $0.name == report.repo }
        let machine = BugMachine(report: report, configuration: .init(maxAttempts: configuration.maxAttempts, maxParallel: configuration.maxParallelSandboxes))
        let runtime = BugRuntime(machine: machine, repository: repository, createdAt: executors.clock.nowMilliseconds())
        runtime.service = self
        runtimes[report.id] = runtime
        pipeline.leases?.hold(runtime.topic, repo: report.repo)
        feed(runtime, .reported, command: PendingCommand(principal: principal.name, id: commandID, ackFields: ["bug": .string(report.id)], reply: reply))
    }

    func command(_ id: String, _ event: BugEvent, ackFields: JSONObject, commandID: String?, principal: Principal, reply: @escaping CommandReply) {
        withRuntime(id) { runtime in
            guard let runtime else {
                if let why = self.unreadable[id] { return reply(.failure(ProtocolError(code: .invalidState, message: "bug \(id) is read-only here: \(why)"))) }
                return reply(.failure(ProtocolError(code: .notFound, message: "no bug \(id)")))
            }
            self.feed(runtime, event, command: PendingCommand(principal: principal.name, id: commandID, ackFields: ackFields, reply: reply))
        }
    }

    /// This node claimed the bug's lease after `node` let it expire: a bug that was busy there (its approaches'
    /// sandboxes and model requests died with that node) is marked interrupted and resumed here, as `resume_bug`
    /// would (approaches that had finished keep their results). One resident here already is this node's own.
    func resume(_ id: String, from node: String) {
        guard runtimes[id] == nil else { return }
        withRuntime(id) { [weak self] runtime in
            guard let self else { return }
            guard let runtime else {
                self.pipeline.leases?.release("bug:\(id)")
                return
            }
            let status = runtime.machine.status
            guard status.isBusy else { return }
            self.logger.info("resuming bug \(id): node \(node) stopped while it was \(status.rawValue)")
            self.feed(runtime, .interrupted(reason: "node \(node) stopped while the bug was \(status.rawValue); resumed on another node"))
            self.feed(runtime, .resumeRequested(principal: "medic", role: .admin))
        }
    }

    /// Another node holds the bug now: the resident copy goes unless work on it is in flight here (logged).
    func leaseLost(_ id: String) {
        guard let runtime = runtimes[id] else { return }
        if runtime.inbox.isEmpty && !runtime.writing && runtime.targets.values.allSatisfy({ $0.workspace == nil && $0.testRun == nil }) {
            runtimes[id] = nil
        } else {
            logger.error("bug \(id) moved to another node while work on it was in flight here")
        }
    }

    /// A proposal of a bug changed status: the bug follows it (fixed when applied).
    private func proposalChanged(_ proposal: ProposalMachine) {
        guard let bug = proposal.info.bug else { return }
        withRuntime(bug) { [weak self] runtime in
            guard let runtime else { return }
            self?.feed(runtime, .proposalStatus(proposal: proposal.info.id, status: proposal.status, commit: proposal.commit))
        }
    }

    // MARK: the machine executor (one store write in flight per bug, as for proposals)

    func feed(_ runtime: BugRuntime, _ event: BugEvent, command: PendingCommand? = nil) {
        runtime.inbox.append(BugInput(event: event, command: command))
        drain(runtime)
    }

    private func drain(_ runtime: BugRuntime) {
        while !runtime.writing, !runtime.inbox.isEmpty {
            let input = runtime.inbox.removeFirst()
            var next = runtime.machine
            let actions = next.handle(input.event)
            if let refusal = actions.lazy.compactMap({ action -> ProtocolError? in
                guard case .reject(let code, let message) = action else { return nil }
                return ProtocolError(code: ErrorCode(rawValue: code.rawValue) ?? .invalidState, message: message)
            }).first {
                input.command?.reply(.failure(refusal))
                continue
            }
            let now = executors.clock.nowMilliseconds()
            var write = StoreWrite()
            var effects: [BugAction] = []
            for action in actions {
                switch action {
                case .publish(let kind, let data): write.events.append(NewEvent(topic: runtime.topic, kind: kind, data: data.jsonString, ts: now))
                case .ignored(let why): logger.debug("bug \(runtime.id): \(why)")
                case .setStatus, .reject: break
                case .askAnalysis, .askReproducer, .runBase, .askApproach, .approach, .measure, .propose, .withdrawProposal: effects.append(action)
                }
            }
            write.workflows = [WorkflowRow(
                kind: "bug", id: runtime.id, repo: next.report.repo, title: next.report.title, status: next.status.rawValue,
                author: next.report.author, createdAt: runtime.createdAt, updatedAt: now, doc: next.record())]
            if runtime.lastPublishedStatus != next.status || input.event == .reported {
                write.events.append(NewEvent(topic: "bugs", kind: "bug", data: Self.summary(next, createdAt: runtime.createdAt, updatedAt: now).jsonString, ts: now))
            }
            var ackFields = input.command?.ackFields ?? [:]
            ackFields["status"] = .string(next.status.rawValue)
            if case .chooseApproach = input.event, let proposal = next.proposal { ackFields["replaces"] = .string(proposal) }
            if let command = input.command, let id = command.id {
                write.command = CommandRecord(principal: command.principal, commandId: id, response: PipelineService.ackText(id, ackFields))
            }
            runtime.writing = true
            runtime.inFlight = input
            commit(runtime, write, next: next, ackFields: ackFields, effects: effects, attempt: 0)
        }
    }

    private func commit(_ runtime: BugRuntime, _ write: StoreWrite, next: BugMachine, ackFields: JSONObject, effects: [BugAction], attempt: Int) {
        sink.commit(write) { [weak self] result in
            guard let self else { return }
            let input = runtime.inFlight
            switch result {
            case .success(.committed):
                self.figures.count(runtime.machine, createdAt: runtime.createdAt, sign: input?.event == .reported ? 0 : -1)
                self.figures.count(next, createdAt: runtime.createdAt, sign: 1)
                let statusChanged = runtime.machine.status != next.status || input?.event == .reported
                runtime.machine = next
                runtime.lastPublishedStatus = next.status
                runtime.inFlight = nil
                runtime.writing = false
                input?.command?.reply(.success(ackFields))
                for effect in effects { self.perform(effect, runtime) }
                if !next.status.isBusy { self.releaseSandboxes(runtime) }
                if statusChanged { for observer in self.onStatusChanged { observer(next) } }
            case .success(.duplicateCommand(let response)):
                runtime.inFlight = nil
                runtime.writing = false
                if case .reported = input?.event { self.runtimes[runtime.id] = nil }  // the first report made the bug
                input?.command?.reply(.success(PipelineService.fields(ofAck: response)))
            case .failure(let error):
                if input?.command != nil {
                    if case .reported = input?.event { self.runtimes[runtime.id] = nil }
                    runtime.inFlight = nil
                    runtime.writing = false
                    input?.command?.reply(.failure(ProtocolError(code: .storeUnavailable, message: error.message)))
                } else {
                    let delay = min(UInt64(1) << UInt64(min(attempt, 4)), 10)
                    self.logger.error("storing bug \(runtime.id)'s progress failed (\(error)); retrying in \(delay)s")
                    self.executors.clock.schedule(afterNanoseconds: delay * 1_000_000_000) {
                        self.commit(runtime, write, next: next, ackFields: ackFields, effects: effects, attempt: attempt + 1)
                    }
                    return
                }
            }
            self.drain(runtime)
        }
    }

    /// Stores and publishes executor-owned events (test_started, test_output): no machine change.
    func publish(_ runtime: BugRuntime, kind: String, data: JSONValue) {
        var write = StoreWrite()
        write.events = [NewEvent(topic: runtime.topic, kind: kind, data: data.jsonString, ts: executors.clock.nowMilliseconds())]
        sink.commit(write) { [logger] result in
            if case .failure(let error) = result { logger.error("could not store \(kind) for bug \(runtime.id): \(error)") }
        }
    }

    /// A finished bug's sandboxes go (unless `sandbox_retention: keep`); running approaches are stopped.
    private func releaseSandboxes(_ runtime: BugRuntime) {
        for target in runtime.targets.values {
            target.testRun?.cancel()
            target.testRun = nil
            target.workspace = nil
        }
        guard configuration.sandboxRetention == .remove else { return }
        executors.sandbox.removeDirectory(name: runtime.id, in: steps.sandboxesRoot) { [logger] result in
            if case .failure(let error) = result { logger.warning("could not remove the sandboxes of bug \(runtime.id): \(error)") }
        }
    }

    // MARK: effects

    private func perform(_ action: BugAction, _ runtime: BugRuntime) {
        switch action {
        case .askAnalysis(let reask): askAnalysis(runtime, reask: reask)
        case .askReproducer(let attempt, let previous): askReproducer(runtime, attempt: attempt, previous: previous)
        case .runBase(let reproducer): runBase(runtime, reproducer: reproducer)
        case .askApproach(let n, let strategy, let others): askApproach(runtime, n, strategy: strategy, others: others)
        case .approach(let n, let step):
            let target = runtime.target(n)
            if case .stopWork = step { target.workspace?.remove { _ in } }
            steps.perform(step, for: target)
        case .measure(let changes, let runs, let reproducer): measure(runtime, changes, runs: runs, reproducer: reproducer)
        case .propose(let n, let changes, let key): propose(runtime, n, changes: changes, key: key)
        case .withdrawProposal(let id, let reason):
            pipeline.execute(.withdraw(proposal: id, reason: reason), commandID: nil, principal: Principal(name: PipelineService.medicPrincipal, role: .admin)) {
                [logger] result in
                if case .failure(let error) = result { logger.warning("bug \(runtime.id): withdrawing \(id) failed: \(error.message)") }
            }
        case .setStatus, .publish, .reject, .ignored: break
        }
    }

    /// The report's text, for the navigator.
    private static func evidence(_ report: BugReport) -> String {
        String(([report.title, report.description] + report.evidence).joined(separator: "\n").utf8.prefix(16_000)) ?? report.title
    }

    /// Repository files at HEAD for a prompt (text only, bounded), in `paths` order.
    private func committedFiles(_ runtime: BugRuntime, _ paths: [String], _ done: @escaping ([(path: String, content: String)]) -> Void) {
        guard let repository = runtime.repository, !paths.isEmpty else { return done([]) }
        let git = executors.git(repository.path)
        git.headCommit { head in
            guard case .success(let head) = head else { return done([]) }
            git.files(at: head, paths: Array(paths.prefix(10))) { result in
                let files = (try? result.get()) ?? [:]
                done(paths.compactMap { path in
                    guard case .text(let content)? = files[path] else { return nil }
                    return (path, String(content.utf8.prefix(SandboxSteps.promptFileReadBytes)) ?? content)
                })
            }
        }
    }

    private func ask(
        _ runtime: BugRuntime, purpose: String, attempt: Int, approach: Int?, prompt: (system: String, user: String),
        previous: (reply: String, complaint: String)?, completion: @escaping (Result<ModelResponse, ModelError>) -> Void
    ) {
        var messages = [ModelMessage(.user, prompt.user)]
        if let previous { messages += [ModelMessage(.assistant, previous.reply), ModelMessage(.user, previous.complaint)] }
        var labels = ["purpose": purpose, "bug": runtime.id, "title": runtime.machine.report.title, "attempt": String(attempt)]
        if let approach { labels["approach"] = String(approach) }
        let target = runtime.target(approach ?? -1)
        // The model may search the code and read files at the repository's HEAD while it works.
        let tools = steps.codeTools(repo: runtime.machine.report.repo) { [weak self] path, done in
            guard let self else { return }
            self.committedFiles(runtime, [path]) { files in
                guard let file = files.first else { return done(.failure(.init(message: "no text file \(path) in the repository"))) }
                done(.success(file.content))
            }
        }
        steps.complete(
            ModelRequest(system: prompt.system, messages: messages, labels: labels), tools: tools, for: target,
            deltaFields: ["purpose": .string(purpose), "attempt": .int(Int64(attempt))], completion: completion)
    }

    private func askAnalysis(_ runtime: BugRuntime, reask: (reply: String, complaint: String)?) {
        let report = runtime.machine.report
        let analyse = { [weak self] (located: [String]) in
            guard let self else { return }
            // The navigator's `locate` ranks stack-trace frames naming repository files first.
            self.committedFiles(runtime, located) { files in
                let prompt = BugPrompt.analysis(report, files: files, located: located)
                self.ask(runtime, purpose: "bug_analysis", attempt: reask == nil ? 1 : 2, approach: nil, prompt: prompt, previous: reask) { result in
                    switch result {
                    case .success(let response): self.feed(runtime, .analysisReplied(text: response.text, located: located))
                    case .failure(let error): self.feed(runtime, .analysisFailed(reason: error.description, located: located))
                    }
                }
            }
        }
        guard let locate = steps.locate else { return analyse([]) }
        locate(report.repo, Self.evidence(report), 8) { analyse($0) }
    }

    private func askReproducer(_ runtime: BugRuntime, attempt: Int, previous: (reply: String, complaint: String)?) {
        let machine = runtime.machine
        committedFiles(runtime, machine.analysis?.suspectedFiles ?? []) { [weak self] files in
            guard let self else { return }
            let prompt = BugPrompt.reproducer(machine.report, analysis: machine.analysis, files: files, testCommand: runtime.repository?.testCommand ?? "")
            self.ask(runtime, purpose: "bug_reproducer", attempt: attempt, approach: nil, prompt: prompt, previous: previous) { result in
                switch result {
                case .success(let response): self.feed(runtime, .reproducerReplied(text: response.text))
                case .failure(let error): self.feed(runtime, .reproducerFailed(reason: error.description))
                }
            }
        }
    }

    /// The suite on a fresh copy of the repository (plus the reproducer), streamed with `phase: base`.
    private func runBase(_ runtime: BugRuntime, reproducer: FileChange?) {
        let target = runtime.target(0)
        let finish = { [weak self] (result: TestResult, output: String, analysis: FailureAnalysis) in
            target.workspace?.remove { _ in }
            target.workspace = nil
            self?.feed(runtime, .baseRunFinished(result, output: output, analysis: analysis))
        }
        let failed = { (reason: String) in
            finish(TestResult(exitCode: -1), reason, FailureAnalysis(category: .other, categories: [.other], rootCause: reason, locations: [], messages: [reason]))
        }
        guard let repository = runtime.repository else { return failed("repository '\(runtime.machine.report.repo)' is not configured on this server") }
        executors.sandbox.createWorkspace(from: repository.path, parentDirectory: steps.sandboxParent(runtime.id)) { [weak self] result in
            guard let self else { return }
            guard case .success(let workspace) = result else { return failed("could not copy the repository") }
            target.workspace = workspace
            if let reproducer, case .failure(let error) = workspace.apply(SandboxSteps.workspaceChanges([reproducer])) {
                return failed("the reproducer could not be written: \(error)")
            }
            self.executors.sandbox.whenIsolationKnown { isolation in
                self.steps.publishTestStarted(target, revision: 0, command: repository.testCommand, setup: repository.setupCommand, isolation: isolation.mode, phase: "base")
                target.testRun = self.executors.sandbox.startRun(
                    self.steps.sandboxedRun(workspace: workspace.path, repository: repository), isolation: isolation,
                    onLines: self.steps.outputStreamer(target, revision: 0, phase: "base"),
                    onFinished: { run in
                        target.testRun = nil
                        if let spawnError = run.spawnError { return failed("the test command could not start: \(spawnError)") }
                        let output = String(run.outputTail.suffix(16_000))
                        finish(SandboxSteps.testResult(run), output, SandboxSteps.analysis(of: run, workspace: workspace.path))
                    })
            }
        }
    }

    private func askApproach(_ runtime: BugRuntime, _ n: Int, strategy: String, others: [String]) {
        let machine = runtime.machine
        committedFiles(runtime, machine.analysis?.suspectedFiles ?? []) { [weak self] files in
            guard let self else { return }
            let prompt = BugPrompt.approach(
                machine.report, analysis: machine.analysis, reproducer: machine.reproduced == true ? machine.reproducer : nil, number: n,
                strategy: strategy, others: others, files: files)
            self.ask(runtime, purpose: "bug_approach", attempt: 1, approach: n, prompt: prompt, previous: nil) { result in
                switch result {
                case .success(let response): self.feed(runtime, .approachReplied(approach: n, text: response.text))
                case .failure(let error): self.feed(runtime, .approachFailed(approach: n, reason: error.description))
                }
            }
        }
    }

    /// Files and changed lines of each approach's final change against the repository's HEAD; with `runs` > 1
    /// also the suite's durations, `runs` times for the base (plus the reproducer) and for each approach, one
    /// run at a time so they do not slow each other down (`perf_measured` events say what was measured).
    private func measure(_ runtime: BugRuntime, _ changes: [Int: [FileChange]], runs: Int, reproducer: FileChange?) {
        let paths = Array(Set(changes.values.flatMap { $0.filter { $0.action != .create }.map(\.path) })).sorted()
        let sized = { [weak self] (base: [String: String]) in
            let sizes = changes.mapValues { c in let f = LineDiff.figures(c, base: base); return ApproachSize(files: f.files, lines: f.lines) }
            guard let self, runs > 1 else { return self?.feed(runtime, .measured(sizes, baseDurationsMs: [])) ?? () }
            let targets = [(0, reproducer.map { [$0] } ?? [])] + changes.keys.sorted().map { ($0, changes[$0] ?? []) }
            self.timeSuites(runtime, targets[...], runs: runs, measured: [:]) { durations in
                var timed = sizes
                for (n, values) in durations where n != 0 { timed[n]?.durationsMs = values }
                self.feed(runtime, .measured(timed, baseDurationsMs: durations[0] ?? []))
            }
        }
        guard let repository = runtime.repository, !paths.isEmpty else { return sized([:]) }
        let git = executors.git(repository.path)
        git.headCommit { head in
            let commit = (try? head.get()) ?? "HEAD"
            git.files(at: commit, paths: paths) { result in
                var base: [String: String] = [:]
                for (path, file) in (try? result.get()) ?? [:] { if case .text(let content) = file { base[path] = content } }
                sized(base)
            }
        }
    }

    /// Runs the suite `runs` times on a fresh copy with each target's changes (0: the base), one after another.
    private func timeSuites(
        _ runtime: BugRuntime, _ targets: ArraySlice<(Int, [FileChange])>, runs: Int, measured: [Int: [Int]],
        done: @escaping ([Int: [Int]]) -> Void
    ) {
        guard let (n, changes) = targets.first, let repository = runtime.repository else { return done(measured) }
        let next = { [weak self] (durations: [Int]) in
            var measured = measured
            measured[n] = durations
            var data: JSONObject = ["durations_ms": .array(durations.map { .int(Int64($0)) }), "runs": .int(Int64(runs))]
            if n == 0 { data["base"] = .bool(true) } else { data["approach"] = .int(Int64(n)) }
            self?.publish(runtime, kind: "perf_measured", data: .object(data))
            self?.timeSuites(runtime, targets.dropFirst(), runs: runs, measured: measured, done: done)
        }
        executors.sandbox.createWorkspace(from: repository.path, parentDirectory: steps.sandboxParent(runtime.id)) { [weak self] result in
            guard let self, case .success(let workspace) = result, case .success = workspace.apply(SandboxSteps.workspaceChanges(changes)) else {
                return next([])
            }
            self.executors.sandbox.whenIsolationKnown { isolation in
                self.repeatRun(self.steps.sandboxedRun(workspace: workspace.path, repository: repository), isolation: isolation, left: runs, durations: []) { durations in
                    workspace.remove { _ in }
                    next(durations)
                }
            }
        }
    }

    private func repeatRun(_ config: TestRunConfiguration, isolation: SandboxIsolation, left: Int, durations: [Int], done: @escaping ([Int]) -> Void) {
        guard left > 0 else { return done(durations) }
        _ = executors.sandbox.startRun(config, isolation: isolation, onLines: { _, _ in }) { [weak self] result in
            self?.repeatRun(config, isolation: isolation, left: left - 1, durations: durations + [result.durationMs], done: done)
        }
    }

    private func propose(_ runtime: BugRuntime, _ n: Int, changes: [FileChange], key: String) {
        let machine = runtime.machine
        let approach = machine.approaches.first { $0.number == n }
        var description = "Fixes bug \(machine.report.id): \(machine.report.title)\n\nApproach #\(n) (\(approach?.strategy ?? "")): \(approach?.summary ?? "")\n"
        description += machine.reproduced == true
            ? "\nThe change includes the reproducer \(machine.reproducer?.path ?? ""), which fails without the fix."
            : "\nNot reproduced: \(machine.reproducerReason ?? "no reproducer")."
        if let why = machine.rankingReason { description += "\nSelected: \(why)." }
        let command = ProposeCommand(title: "Fix: \(machine.report.title)", description: description, repo: machine.report.repo, changes: changes)
        pipeline.proposeForBug(command, bug: runtime.id, key: key) { [weak self] result in
            guard let self else { return }
            switch result {
            case .success(let id): self.feed(runtime, .proposalCreated(proposal: id, approach: n, atMilliseconds: self.executors.clock.nowMilliseconds()))
            case .failure(let error): self.feed(runtime, .proposalFailed(reason: error.message))
            }
        }
    }

    // MARK: reads

    static func summary(_ m: BugMachine, createdAt: Int64, updatedAt: Int64) -> JSONValue {
        .object([
            "id": .string(m.report.id), "title": .string(m.report.title), "repo": .string(m.report.repo),
            "severity": .string(m.report.severity.rawValue), "status": .string(m.status.rawValue),
            "reproduced": m.reproduced.map { .bool($0) } ?? .null, "approaches": .int(Int64(m.report.approaches)),
            "proposal": m.proposal.map { .string($0) } ?? .null, "chosen_approach": m.chosenApproach.map { .int(Int64($0)) } ?? .null,
            "author": .string(m.report.author), "created_at": .int(createdAt), "updated_at": .int(updatedAt),
        ])
    }

    /// The detail of `GET /api/v1/bugs/{id}`.
    static func detail(_ m: BugMachine, createdAt: Int64, updatedAt: Int64) -> JSONValue {
        guard case .object(var o) = summary(m, createdAt: createdAt, updatedAt: updatedAt) else { return .null }
        o["report"] = m.report.json
        o["analysis"] = m.analysis?.json ?? .null
        o["reproducer"] = m.reproducer.map { r in
            .object(["path": .string(r.path), "content": .string(r.content), "explanation": .string(r.explanation)])
        } ?? .null
        o["reproducer_reason"] = m.reproducerReason.map { .string($0) } ?? .null
        o["base_duration_ms"] = m.baseDurationMs.map { .int(Int64($0)) } ?? .null
        o["approach_details"] = .array(m.approaches.map(m.approachJSON))
        o["ranking"] = m.winner == nil && m.rankingReason == nil ? .null : m.rankingJSON
        o["proposals"] = .array(m.proposals.map { .string($0) })
        return .object(o)
    }

    func stats() -> JSONObject {
        let f = figures
        return [
            "bugs_reported": .int(Int64(f.reported)), "bugs_reproduced": .int(Int64(f.reproduced)),
            "bugs_not_reproduced": .int(Int64(f.notReproduced)), "bugs_proposed": .int(Int64(f.proposed)),
            "bugs_fixed": .int(Int64(f.fixed)), "bugs_unfixed": .int(Int64(f.unfixed)),
            "bug_approaches_per_bug": .number(f.reported == 0 ? 0 : Double(f.approaches) / Double(f.reported)),
            "bug_report_to_proposal_seconds": .number(f.proposed == 0 ? 0 : Double(f.proposalMillisecondsTotal) / Double(f.proposed) / 1000),
        ]
    }

    static func newBugID() -> String { newWorkflowID(prefix: "b") }
}
