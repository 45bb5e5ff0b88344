// PipelineService: the one executor of every proposal's state machine — sandbox, tests, analysis, LLM fixes,
// reviews, git apply and rollback — storing each step before anyone sees it.
import EventLoop
import Foundation
import Logging
import Pipeline
public import Protocol
import Sandbox
import Store

/// One proposal's live state: its machine plus the executor's handles (sandbox, test run).
final class ProposalRuntime {
    var machine: ProposalMachine
    let repository: RepositoryConfig?
    let createdAt: Int64
    var workspace: Workspace?
    var testRun: TestRun?
    var lastRun: TestRunResult?
    /// Revisions already stored (rows are rewritten from the current one on, as results attach to it).
    var storedRevisions = 0
    var lastPublishedStatus: ProposalStatus?

    init(machine: ProposalMachine, repository: RepositoryConfig?, createdAt: Int64) {
        self.machine = machine
        self.repository = repository
        self.createdAt = createdAt
    }

    var id: String { machine.info.id }
    var topic: String { "proposal:\(machine.info.id)" }
}

/// A command waiting for its batch to be durable.
struct PendingCommand {
    var principal: String
    var id: String?
    var ackFields: JSONObject
    var reply: CommandReply
}

/// Executes commands and machine actions for every proposal (see `CommandExecutor`, `ProposalMachine`).
public final class PipelineService: CommandExecutor {
    let loop: EventLoop
    let sink: any EventSink
    let configuration: MedicConfiguration
    let logger: Logger
    let provider: any FixProvider
    var isolation = SandboxIsolation.unisolated
    /// False until the startup probe answered: test runs wait for it (never run unisolated by accident).
    var isolationKnown = false
    var waitingForIsolation: [() -> Void] = []
    var runtimes: [String: ProposalRuntime] = [:]
    var repositories: [String: GitRepository] = [:]

    init(loop: EventLoop, sink: any EventSink, configuration: MedicConfiguration, provider: any FixProvider, logger: Logger) {
        self.loop = loop
        self.sink = sink
        self.configuration = configuration
        self.provider = provider
        self.logger = logger
    }

    /// Builds the service for `app`: the configured LLM, isolation probe, and recovery of stored proposals.
    public static func make(app: App) throws -> PipelineService {
        let configuration = app.configuration
        let provider: any FixProvider
        switch configuration.llm {
        case .scripted(let path): provider = try ScriptedFixProvider(loop: app.loop, path: path)
        case .anthropic:
            guard let key = configuration.anthropicAPIKey else {
                throw ConfigurationError("--llm anthropic needs ANTHROPIC_API_KEY in the environment")
            }
            let anthropic = try AnthropicFixProvider(
                loop: app.loop, baseURL: configuration.llmBaseURL, model: configuration.llmModel, apiKey: key, logger: app.logger)
            anthropic.timeoutMilliseconds = configuration.llmTimeoutSeconds * 1000
            provider = anthropic
        }
        let service = PipelineService(loop: app.loop, sink: app, configuration: configuration, provider: provider, logger: app.logger)
        SandboxIsolation.probe(loop: app.loop) { [weak service] isolation in
            guard let service else { return }
            service.isolation = isolation
            service.isolationKnown = true
            let waiting = service.waitingForIsolation
            service.waitingForIsolation = []
            for run in waiting { run() }
            if let warning = isolation.warning {
                app.logger.warning("sandbox isolation: \(isolation.mode.rawValue) — \(warning)")
            } else {
                app.logger.info("sandbox isolation: \(isolation.mode.rawValue)")
            }
        }
        try service.recover(store: app.store)
        service.removeFinishedSandboxes()
        return service
    }

    /// Loads every stored proposal's machine; work that was in flight when the server stopped is marked
    /// interrupted (an admin's auto_fix re-deploys it), never left silently stuck.
    func recover(store: Store) throws {
        let rows = try store.sync { store.proposals(status: nil, limit: 1_000_000, completion: $0) }
        let decoder = JSONDecoder()
        for row in rows.reversed() {
            guard let machine = try? decoder.decode(ProposalMachine.self, from: Data(row.doc.utf8)) else {
                logger.error("cannot decode the stored state of proposal \(row.id); it stays read-only")
                continue
            }
            let runtime = ProposalRuntime(
                machine: machine, repository: configuration.repositories.first { $0.name == row.repo }, createdAt: row.createdAt)
            runtime.storedRevisions = machine.revisions.count
            runtime.lastPublishedStatus = machine.status
            runtimes[row.id] = runtime
            switch machine.status {
            case .deploying, .testing, .analyzing, .fixing, .applying, .approved, .proposed:
                loop.schedule(afterNanoseconds: 0) { [weak self] in
                    self?.feed(runtime, .interrupted(reason: "the server restarted while the proposal was \(machine.status.rawValue)"))
                }
            default: break
            }
        }
        if !runtimes.isEmpty { logger.info("recovered \(runtimes.count) proposals") }
    }

    // MARK: commands

    public func execute(_ message: ClientMessage, commandID: String?, principal: Principal, reply: @escaping CommandReply) {
        switch message {
        case .propose(let command): propose(command, commandID: commandID, principal: principal, reply: reply)
        case .review(let review):
            guard let runtime = runtime(review.proposal, reply) else { return }
            feed(runtime, .review(principal: principal.name, role: principal.role, verdict: review.verdict,
                                  revision: Int(review.revision), comment: review.comment),
                 command: PendingCommand(principal: principal.name, id: commandID,
                                         ackFields: ["proposal": .string(review.proposal), "revision": .int(review.revision)], reply: reply),
                 review: (principal.name, review))
        case .autoFix(let proposal):
            guard let runtime = runtime(proposal, reply) else { return }
            feed(runtime, .autoFixRequested(principal: principal.name, role: principal.role),
                 command: PendingCommand(principal: principal.name, id: commandID, ackFields: ["proposal": .string(proposal)], reply: reply))
        case .rollback(let proposal):
            guard let runtime = runtime(proposal, reply) else { return }
            feed(runtime, .rollbackRequested(principal: principal.name, role: principal.role),
                 command: PendingCommand(principal: principal.name, id: commandID, ackFields: ["proposal": .string(proposal)], reply: reply))
        case .comment(let proposal, let text):
            guard let runtime = runtime(proposal, reply) else { return }
            comment(runtime, text: text, principal: principal, commandID: commandID, reply: reply)
        case .stats:
            reply(.success(stats()))
        case .hello, .subscribe, .unsubscribe:
            reply(.failure(ProtocolError(code: .invalidMessage, message: "\(message.type) is not a pipeline command")))
        }
    }

    private func runtime(_ id: String, _ reply: CommandReply) -> ProposalRuntime? {
        guard let runtime = runtimes[id] else {
            reply(.failure(ProtocolError(code: .notFound, message: "no proposal \(id)")))
            return nil
        }
        return runtime
    }

    private func propose(_ command: ProposeCommand, commandID: String?, principal: Principal, reply: @escaping CommandReply) {
        let repositoryName = command.repo ?? configuration.repositories.first?.name
        guard let repositoryName, let repository = configuration.repositories.first(where: { $0.name == repositoryName }) else {
            let known = configuration.repositories.map(\.name).joined(separator: ", ")
            reply(.failure(ProtocolError(code: .invalidMessage, message: "unknown repository '\(command.repo ?? "")'; configured: \(known)")))
            return
        }
        let changes = command.changes
        switch PatchValidator.validate(changes) {
        case .failure(let error):
            reply(.failure(ProtocolError(code: .invalidMessage, message: "changes refused: \(error.description)")))
            return
        case .success: break
        }
        let id = Self.newProposalID()
        let now = wallClockMilliseconds()
        let info = ProposalInfo(
            id: id, title: command.title, description: command.description, repo: repository.name, author: principal.name,
            createdAt: Self.iso8601(now))
        let machine = ProposalMachine(
            info: info,
            configuration: .init(maxAttempts: configuration.maxAttempts, quorum: configuration.quorum,
                                 fixMode: configuration.autoFix ? .auto : .manual))
        let runtime = ProposalRuntime(machine: machine, repository: repository, createdAt: now)
        runtimes[id] = runtime
        feed(runtime, .created(Revision(number: 1, changes: changes)),
             command: PendingCommand(principal: principal.name, id: commandID, ackFields: ["proposal": .string(id)], reply: reply),
             isCreation: true)
    }

    private func comment(_ runtime: ProposalRuntime, text: String, principal: Principal, commandID: String?, reply: @escaping CommandReply) {
        let now = wallClockMilliseconds()
        var write = StoreWrite()
        write.comments = [CommentRow(proposalId: runtime.id, principal: principal.name, text: text, ts: now)]
        write.events = [NewEvent(topic: runtime.topic, kind: "comment",
                                 data: JSONValue.object(["principal": .string(principal.name), "text": .string(text)]).jsonString, ts: now)]
        let fields: JSONObject = ["proposal": .string(runtime.id)]
        if let commandID { write.command = CommandRecord(principal: principal.name, commandId: commandID, response: Self.ackText(commandID, fields)) }
        sink.commit(write) { result in
            switch result {
            case .success(.committed): reply(.success(fields))
            case .success(.duplicateCommand(let response)): reply(.success(Self.fields(ofAck: response)))
            case .failure(let error): reply(.failure(ProtocolError(code: .storeUnavailable, message: error.message)))
            }
        }
    }

    // MARK: the machine executor

    /// Feeds one event to a proposal's machine, stores everything the resulting actions say to store in one
    /// write (with the command's idempotency record), and only then answers the command and performs the
    /// side effects (deploy, test, fix, apply …) in order.
    func feed(
        _ runtime: ProposalRuntime, _ event: ProposalEvent, command: PendingCommand? = nil,
        review: (String, ReviewCommand)? = nil, isCreation: Bool = false, applied: (revision: Int, commit: String)? = nil,
        reverted: (commit: String, revert: String)? = nil
    ) {
        let before = runtime.machine
        let actions = runtime.machine.handle(event)
        for action in actions {
            if case .reject(let code, let message) = action {
                runtime.machine = before
                command?.reply(.failure(ProtocolError(code: ErrorCode(rawValue: code.rawValue) ?? .invalidState, message: message)))
                return
            }
        }
        let now = wallClockMilliseconds()
        var write = StoreWrite()
        var effects: [ProposalAction] = []
        for action in actions {
            switch action {
            case .publish(let pipelineEvent):
                write.events.append(NewEvent(topic: runtime.topic, kind: pipelineEvent.kind, data: pipelineEvent.data.jsonString, ts: now))
            case .deploy, .runTests, .analyze, .requestFix, .applyToRepository, .rollback:
                effects.append(action)
            case .setStatus, .createRevision:
                break  // captured by the proposal and revision rows below
            case .ignored(let why):
                logger.debug("proposal \(runtime.id): \(why)")
            case .reject:
                break
            }
        }
        write.proposals = [row(runtime, now: now)]
        let first = max(0, min(runtime.storedRevisions, runtime.machine.revisions.count) - 1)
        write.revisions = runtime.machine.revisions[first...].map { revision in
            RevisionRow(proposalId: runtime.id, number: revision.number, doc: Self.encode(revision), createdAt: now)
        }
        if runtime.lastPublishedStatus != runtime.machine.status || isCreation {
            write.events.append(NewEvent(topic: "proposals", kind: "proposal", data: summary(runtime, now: now).jsonString, ts: now))
        }
        if let (name, review) = review {
            write.reviews = [ReviewRow(proposalId: runtime.id, revision: Int(review.revision), principal: name,
                                       verdict: review.verdict.rawValue, comment: review.comment, ts: now)]
        }
        if let applied {
            write.appliedChanges = [AppliedChangeRow(proposalId: runtime.id, revision: applied.revision, commit: applied.commit, ts: now, revertedBy: nil)]
        }
        if let reverted, let revision = runtime.machine.revisions.last?.number {
            write.appliedChanges = [AppliedChangeRow(proposalId: runtime.id, revision: revision, commit: reverted.commit, ts: now, revertedBy: reverted.revert)]
        }
        var ackFields = command?.ackFields ?? [:]
        ackFields["status"] = .string(runtime.machine.status.rawValue)
        if review != nil {
            ackFields["approvals"] = .array(runtime.machine.approvals.map { .string($0) })
            ackFields["quorum"] = .int(Int64(runtime.machine.configuration.quorum))
        }
        if let command, let id = command.id {
            write.command = CommandRecord(principal: command.principal, commandId: id, response: Self.ackText(id, ackFields))
        }
        commitBatch(runtime, write, before: before, command: command, ackFields: ackFields, effects: effects, attempt: 0)
    }

    /// Commits a batch; a command's batch fails fast (the machine is restored), a pipeline step's batch is
    /// retried until the store is back so no result is lost.
    private func commitBatch(
        _ runtime: ProposalRuntime, _ write: StoreWrite, before: ProposalMachine, command: PendingCommand?,
        ackFields: JSONObject, effects: [ProposalAction], attempt: Int
    ) {
        sink.commit(write) { [weak self] result in
            guard let self else { return }
            switch result {
            case .success(.committed):
                runtime.storedRevisions = runtime.machine.revisions.count
                runtime.lastPublishedStatus = runtime.machine.status
                command?.reply(.success(ackFields))
                for effect in effects { self.perform(effect, runtime) }
                if Self.finishedStatuses.contains(runtime.machine.status) { self.removeSandboxes(of: runtime.id, runtime: runtime) }
            case .success(.duplicateCommand(let response)):
                runtime.machine = before
                command?.reply(.success(Self.fields(ofAck: response)))
            case .failure(let error):
                if let command {
                    runtime.machine = before
                    if before.revisions.isEmpty { self.runtimes[runtime.id] = nil }
                    command.reply(.failure(ProtocolError(code: .storeUnavailable, message: error.message)))
                    return
                }
                let delay = min(UInt64(1) << UInt64(min(attempt, 4)), 10)
                self.logger.error("storing proposal \(runtime.id)'s progress failed (\(error)); retrying in \(delay)s")
                self.loop.schedule(afterNanoseconds: delay * 1_000_000_000) {
                    self.commitBatch(runtime, write, before: before, command: nil, ackFields: ackFields, effects: effects, attempt: attempt + 1)
                }
            }
        }
    }

    /// Stores and publishes executor-owned events (test_started, test_output): no machine change.
    func publish(_ runtime: ProposalRuntime, kind: String, data: JSONValue) {
        var write = StoreWrite()
        write.events = [NewEvent(topic: runtime.topic, kind: kind, data: data.jsonString, ts: wallClockMilliseconds())]
        sink.commit(write) { [logger] result in
            if case .failure(let error) = result { logger.error("could not store \(kind) for \(runtime.id): \(error)") }
        }
    }

    // MARK: effects

    func perform(_ action: ProposalAction, _ runtime: ProposalRuntime) {
        switch action {
        case .deploy(let revision): deploy(runtime, revision: revision)
        case .runTests(let revision): runTests(runtime, revision: revision)
        case .analyze(let revision): analyze(runtime, revision: revision)
        case .requestFix(let attempt, let context): requestFix(runtime, attempt: attempt, context: context)
        case .applyToRepository(let revision, let approvers): apply(runtime, revision: revision, approvers: approvers)
        case .rollback(let commit): rollback(runtime, commit: commit)
        case .setStatus, .publish, .createRevision, .reject, .ignored: break
        }
    }

    private func deploy(_ runtime: ProposalRuntime, revision number: Int) {
        guard let repository = runtime.repository else {
            feed(runtime, .sandboxFailed(reason: "repository '\(runtime.machine.info.repo)' is not configured on this server"))
            return
        }
        guard let revision = runtime.machine.revisions.first(where: { $0.number == number }) else { return }
        let previous = runtime.workspace
        runtime.workspace = nil
        previous?.remove(loop: loop) { _ in }
        let parent = (configuration.dataDirectory as NSString).appendingPathComponent("sandboxes/\(runtime.id)")
        Workspace.create(loop: loop, from: repository.path, parentDirectory: parent) { [weak self] result in
            guard let self else { return }
            switch result {
            case .failure(let error):
                self.feed(runtime, .sandboxFailed(reason: "could not copy the repository: \(error)"))
            case .success(let workspace):
                runtime.workspace = workspace
                let changes = revision.changes.map {
                    WorkspaceChange(path: $0.path, action: WorkspaceChange.Action(rawValue: $0.action.rawValue) ?? .modify, content: $0.content)
                }
                switch workspace.apply(changes) {
                case .failure(let error):
                    self.feed(runtime, .sandboxFailed(reason: "the revision's changes could not be applied: \(error)"))
                case .success:
                    self.whenIsolationKnown {
                        let visible = self.isolation.visiblePaths(workspace: workspace.path, view: self.sandboxView)
                            .map { SandboxPath(path: $0.path, writable: $0.mode == .rw) }
                        self.feed(runtime, .sandboxReady(isolation: self.isolation.mode.rawValue, durationMs: workspace.creationMilliseconds,
                                                         warning: self.isolation.warning, visible: visible))
                    }
                }
            }
        }
    }

    private func runTests(_ runtime: ProposalRuntime, revision: Int) {
        guard let repository = runtime.repository, let workspace = runtime.workspace else {
            feed(runtime, .sandboxFailed(reason: "no sandbox to test in"))
            return
        }
        let config = sandboxedRun(workspace: workspace.path, repository: repository)
        let run = TestRun(
            loop: loop, configuration: config, isolation: isolation,
            onLines: { [weak self] stream, lines in
                // One event per ≤ 64 KiB of lines: a tick's batch can be large, and every watcher parses each event.
                var start = 0
                while start < lines.count {
                    var end = start
                    var bytes = 0
                    while end < lines.count && (end == start || bytes + lines[end].utf8.count <= 64 << 10) {
                        bytes += lines[end].utf8.count
                        end += 1
                    }
                    self?.publish(runtime, kind: "test_output", data: .object([
                        "revision": .int(Int64(revision)), "stream": .string(stream.rawValue),
                        "lines": .array(lines[start..<end].map { .string($0) }),
                    ]))
                    start = end
                }
            },
            onFinished: { [weak self] result in
                guard let self else { return }
                runtime.testRun = nil
                runtime.lastRun = result
                if let spawnError = result.spawnError {
                    self.feed(runtime, .sandboxFailed(reason: "the test command could not start: \(spawnError)"))
                    return
                }
                let counts = TestSummaryParser.parse(result.outputTail)
                let exitCode = result.exitCode ?? (result.signal.map { 128 + $0 } ?? -1)
                let testResult = TestResult(
                    exitCode: exitCode, passed: counts.passed, failed: counts.failed, durationMs: result.durationMs,
                    timedOut: result.timedOut, signal: result.signal, truncated: result.truncated,
                    diskQuotaExceeded: result.diskQuotaExceeded ? true : nil)
                self.feed(runtime, .testsFinished(testResult, outputSummary: String(result.outputTail.suffix(16_000))))
            })
        runtime.testRun = run
        publish(runtime, kind: "test_started", data: .object([
            "revision": .int(Int64(revision)), "command": .string(repository.testCommand),
            "setup_command": repository.setupCommand.map { .string($0) } ?? .null, "isolation": .string(isolation.mode.rawValue),
        ]))
        run.start()
    }

    private func analyze(_ runtime: ProposalRuntime, revision: Int) {
        let run = runtime.lastRun
        let analysis = FailureAnalyzer.analyze(
            output: run?.outputTail ?? "", exitCode: run?.exitCode ?? -1, timedOut: run?.timedOut ?? false,
            signal: run?.signal, repositoryFiles: nil, workspaceRoot: runtime.workspace?.path,
            diskQuotaExceeded: run?.diskQuotaExceeded ?? false)
        feed(runtime, .analyzed(analysis))
    }

    private func requestFix(_ runtime: ProposalRuntime, attempt: Int, context: FixContext) {
        var files: [(path: String, content: String)] = []
        if let workspace = runtime.workspace {
            for path in context.relevantPaths() {
                let full = (workspace.path as NSString).appendingPathComponent(path)
                if let data = FileManager.default.contents(atPath: full), data.count <= 256 << 10 {
                    files.append((path, String(decoding: data, as: UTF8.self)))
                }
            }
        }
        let prompt = FixPrompt.build(context: context, relevantFiles: files)
        ask(runtime, attempt: attempt, system: prompt.system, messages: [("user", prompt.user)], reasked: false)
    }

    /// One LLM exchange; a malformed reply gets exactly one re-ask with the parser's complaint.
    private func ask(_ runtime: ProposalRuntime, attempt: Int, system: String, messages: [(role: String, content: String)], reasked: Bool) {
        let title = runtime.machine.info.title
        provider.requestFix(
            title: title, attempt: attempt, system: system, messages: messages,
            onDelta: { [weak self] text in
                self?.sink.publishEphemeral(topic: runtime.topic, kind: "fix_delta", data: .object(["attempt": .int(Int64(attempt)), "text": .string(text)]))
            },
            completion: { [weak self] result in
                guard let self else { return }
                switch result {
                case .failure(let error):
                    self.feed(runtime, .fixFailed(reason: error.description))
                case .success(let text):
                    do throws(FixReplyError) {
                        let reply = try FixReply.parse(text)
                        self.feed(runtime, .fixReceived(reply))
                    } catch {
                        if reasked || !error.isMalformed {
                            self.feed(runtime, .fixFailed(reason: "the LLM's reply was refused: \(error.description)"))
                        } else {
                            self.logger.info("proposal \(runtime.id): malformed fix reply (\(error)); asking once more")
                            self.ask(runtime, attempt: attempt, system: system,
                                     messages: messages + [("assistant", text), ("user", FixPrompt.retryMessage(error: error))], reasked: true)
                        }
                    }
                }
            })
    }

    private func gitRepository(_ repository: RepositoryConfig) -> GitRepository {
        if let existing = repositories[repository.name] { return existing }
        let git = GitRepository(loop: loop, path: repository.path)
        repositories[repository.name] = git
        return git
    }

    private func apply(_ runtime: ProposalRuntime, revision number: Int, approvers: [String]) {
        guard let repository = runtime.repository, let revision = runtime.machine.revisions.first(where: { $0.number == number }) else {
            feed(runtime, .applyFailed(reason: "the repository or revision is not available"))
            return
        }
        let git = gitRepository(repository)
        let info = runtime.machine.info
        let changes = revision.changes.map {
            WorkspaceChange(path: $0.path, action: WorkspaceChange.Action(rawValue: $0.action.rawValue) ?? .modify, content: $0.content)
        }
        let message = "\(info.title)\n\nApplied by Medic: proposal \(info.id), revision \(number).\nApproved-by: \(approvers.joined(separator: ", "))\n"
        let commit = { [weak self] in
            git.applyAndCommit(changes, message: message, author: GitAuthor(name: info.author, email: "\(info.author)@medic.invalid")) { result in
                guard let self else { return }
                switch result {
                case .failure(let error): self.feed(runtime, .applyFailed(reason: error.description))
                case .success(let commitID): self.afterCommit(runtime, repository: repository, git: git, commit: commitID, revision: number)
                }
            }
        }
        // Re-test first if the repository moved since the sandbox was made (its tests passed on the old base).
        git.headCommit { [weak self] head in
            guard let self else { return }
            guard case .success(let current) = head, let base = runtime.workspace?.baseCommit, current != base else {
                commit()
                return
            }
            self.logger.info("proposal \(runtime.id): repository moved (\(base.prefix(8)) → \(current.prefix(8))); re-testing before apply")
            self.verify(runtime, repository: repository, changes: changes) { passed, detail in
                if passed { commit() } else {
                    self.feed(runtime, .applyFailed(reason: "the repository moved since the sandbox's base commit and the tests fail on the new base: \(detail)"))
                }
            }
        }
    }

    /// Runs the tests of `changes` on a fresh copy of the repository (used when the repository moved).
    private func verify(_ runtime: ProposalRuntime, repository: RepositoryConfig, changes: [WorkspaceChange], completion: @escaping (Bool, String) -> Void) {
        let parent = (configuration.dataDirectory as NSString).appendingPathComponent("sandboxes/\(runtime.id)")
        Workspace.create(loop: loop, from: repository.path, parentDirectory: parent) { [weak self] result in
            guard let self else { return }
            guard case .success(let workspace) = result, case .success = workspace.apply(changes) else {
                completion(false, "could not prepare a sandbox on the new base")
                return
            }
            let config = self.sandboxedRun(workspace: workspace.path, repository: repository)
            self.whenIsolationKnown {
                let run = TestRun(loop: self.loop, configuration: config, isolation: self.isolation, onLines: { _, _ in }) { result in
                    workspace.remove(loop: self.loop) { _ in }
                    completion(result.passed, "exit \(result.exitCode.map(String.init) ?? "-"): \(result.outputTail.suffix(300))")
                }
                run.start()
            }
        }
    }

    private func afterCommit(_ runtime: ProposalRuntime, repository: RepositoryConfig, git: GitRepository, commit: String, revision: Int) {
        guard let smoke = repository.postApplyCommand else {
            feed(runtime, .applied(commit: commit), applied: (revision, commit))
            return
        }
        // The post-apply smoke test runs in the real repository; its failure reverts the commit.
        let config = TestRunConfiguration(
            workspacePath: repository.path, testCommand: smoke,
            timeoutNanoseconds: UInt64(configuration.testTimeoutSeconds) * 1_000_000_000, allowNetwork: repository.allowNetwork)
        let run = TestRun(loop: loop, configuration: config, isolation: .unisolated, onLines: { _, _ in }) { [weak self] result in
            guard let self else { return }
            if result.passed {
                self.feed(runtime, .applied(commit: commit), applied: (revision, commit))
                return
            }
            git.revert(commit) { revert in
                let detail = "post-apply command failed (exit \(result.exitCode.map(String.init) ?? "-")); "
                switch revert {
                case .success(let revertCommit):
                    self.feed(runtime, .applyFailed(reason: detail + "commit \(commit.prefix(12)) was reverted by \(revertCommit.prefix(12))"))
                case .failure(let error):
                    self.feed(runtime, .applyFailed(reason: detail + "and reverting \(commit.prefix(12)) failed: \(error)"))
                }
            }
        }
        run.start()
    }

    private func rollback(_ runtime: ProposalRuntime, commit: String) {
        guard let repository = runtime.repository else {
            feed(runtime, .rollbackFailed(reason: "repository '\(runtime.machine.info.repo)' is not configured"))
            return
        }
        gitRepository(repository).revert(commit) { [weak self] result in
            guard let self else { return }
            switch result {
            case .success(let revert): self.feed(runtime, .rolledBack(revertCommit: revert), reverted: (commit, revert))
            case .failure(let error): self.feed(runtime, .rollbackFailed(reason: error.description))
            }
        }
    }

    // MARK: sandboxes

    /// Statuses after which a proposal's sandboxes are never used again (rollback reverts in the repository).
    static let finishedStatuses: Set<ProposalStatus> = [.applied, .applyFailed, .rejected, .unfixable, .rolledBack]

    /// What sandboxes see: the configured extra read-only paths; Medic's data, store, keys and config
    /// covered wherever they lie; /tmp bounded by the disk quota.
    var sandboxView: SandboxView {
        SandboxView(readOnlyPaths: configuration.sandboxReadOnlyPaths, hiddenPaths: configuration.sandboxHiddenPaths,
                    tmpSizeBytes: configuration.sandboxDiskQuotaMB * 1_000_000)
    }

    /// A test run of `repository`'s commands in `workspace` under the configured bounds and view.
    func sandboxedRun(workspace: String, repository: RepositoryConfig) -> TestRunConfiguration {
        TestRunConfiguration(
            workspacePath: workspace, setupCommand: repository.setupCommand, testCommand: repository.testCommand,
            timeoutNanoseconds: UInt64(configuration.testTimeoutSeconds) * 1_000_000_000, allowNetwork: repository.allowNetwork,
            view: sandboxView, diskQuotaBytes: configuration.sandboxDiskQuotaMB * 1_000_000)
    }

    /// Runs `body` now if the isolation probe has answered, else when it does.
    func whenIsolationKnown(_ body: @escaping () -> Void) {
        if isolationKnown { body() } else { waitingForIsolation.append(body) }
    }

    /// `<data>/sandboxes`: one directory per proposal, holding its workspaces.
    var sandboxesRoot: String { (configuration.dataDirectory as NSString).appendingPathComponent("sandboxes") }

    /// Removes a finished proposal's sandbox directory (all its workspaces), unless retention is `keep`.
    func removeSandboxes(of id: String, runtime: ProposalRuntime?) {
        guard configuration.sandboxRetention == .remove else { return }
        runtime?.workspace = nil
        SandboxDirectory.remove(name: id, in: sandboxesRoot, loop: loop) { [logger] result in
            if case .failure(let error) = result { logger.warning("could not remove the sandboxes of \(id): \(error)") }
        }
    }

    /// At startup: removes the sandboxes of proposals that are finished, and of proposals the store does not
    /// know (left by a proposal whose creation was never stored).
    func removeFinishedSandboxes() {
        guard configuration.sandboxRetention == .remove else { return }
        for name in SandboxDirectory.entries(in: sandboxesRoot) {
            if let runtime = runtimes[name], !Self.finishedStatuses.contains(runtime.machine.status) { continue }
            removeSandboxes(of: name, runtime: runtimes[name])
        }
    }

    // MARK: rows, summaries, stats

    private func row(_ runtime: ProposalRuntime, now: Int64) -> ProposalRow {
        let m = runtime.machine
        return ProposalRow(
            id: m.info.id, title: m.info.title, description: m.info.description, repo: m.info.repo, status: m.status.rawValue,
            currentRevision: m.currentRevision, author: m.info.author, createdAt: runtime.createdAt, updatedAt: now,
            attempts: m.attempt, doc: Self.encode(m))
    }

    private func summary(_ runtime: ProposalRuntime, now: Int64) -> JSONValue {
        let m = runtime.machine
        return .object([
            "id": .string(m.info.id), "title": .string(m.info.title), "status": .string(m.status.rawValue),
            "revision": .int(Int64(m.currentRevision)), "attempt": .int(Int64(m.attempt)), "max_attempts": .int(Int64(m.attemptLimit)),
            "author": .string(m.info.author), "repo": .string(m.info.repo), "updated_at": .int(now),
            "approvals": .array(m.approvals.map { .string($0) }), "quorum": .int(Int64(m.configuration.quorum)),
        ])
    }

    /// The customer's metrics: failures, auto-fix attempted/successful, success rate, average attempts,
    /// unfixable, and counts per error category.
    func stats() -> JSONObject {
        var failures = 0
        var attempted = 0
        var proposalsWithFixes = 0
        var successful = 0
        var unfixable = 0
        var categories: [String: Int] = [:]
        let passing: Set<ProposalStatus> = [.testsPassed, .awaitingReview, .approved, .applying, .applied, .applyFailed, .rolledBack]
        for runtime in runtimes.values {
            let m = runtime.machine
            for revision in m.revisions {
                if let result = revision.testResult, !result.succeeded { failures += 1 }
                if let analysis = revision.analysis { categories[analysis.category.rawValue, default: 0] += 1 }
            }
            attempted += m.attempt
            if m.attempt > 0 {
                proposalsWithFixes += 1
                if passing.contains(m.status) { successful += 1 }
            }
            if m.status == .unfixable { unfixable += 1 }
        }
        var byCategory = JSONObject()
        for category in categories.keys.sorted() { byCategory[category] = .int(Int64(categories[category]!)) }
        return [
            "proposals": .int(Int64(runtimes.count)),
            "total_failures": .int(Int64(failures)),
            "auto_fix_attempted": .int(Int64(attempted)),
            "auto_fix_successful": .int(Int64(successful)),
            "success_rate": .number(proposalsWithFixes == 0 ? 0 : Double(successful) / Double(proposalsWithFixes)),
            "average_attempts": .number(proposalsWithFixes == 0 ? 0 : Double(attempted) / Double(proposalsWithFixes)),
            "unfixable": .int(Int64(unfixable)),
            "by_category": .object(byCategory),
        ]
    }

    // MARK: helpers

    static func encode<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    static func ackText(_ id: String, _ fields: JSONObject) -> String {
        String(decoding: ServerMessage.ack(id: id, fields: fields), as: UTF8.self)
    }

    static func fields(ofAck text: String) -> JSONObject {
        guard case .success(.ack(_, let fields)) = ServerMessage.decode(Array(text.utf8)) else { return [:] }
        return fields
    }

    static func newProposalID() -> String {
        let alphabet = Array("abcdefghijkmnpqrstuvwxyz23456789")
        var generator = SystemRandomNumberGenerator()
        return "p-" + String((0..<10).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &generator)] })
    }

    static func iso8601(_ milliseconds: Int64) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: Date(timeIntervalSince1970: Double(milliseconds) / 1000))
    }
}
