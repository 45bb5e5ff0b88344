// PipelineService: the one executor of every proposal's state machine — sandbox, tests, analysis, LLM fixes,
// reviews, git apply and rollback — storing each step before anyone sees it.
public import EventLoop
import Foundation
public import Logging
import Pipeline
public import Protocol
import Sandbox
public import Store

/// One proposal's live state: its machine plus the executor's handles (sandbox, test run).
final class ProposalRuntime {
    var machine: ProposalMachine
    let repository: RepositoryConfig?
    let createdAt: Int64
    var workspace: (any SandboxWorkspace)?
    var testRun: (any RunningTest)?
    var lastRun: TestRunResult?
    var lastPublishedStatus: ProposalStatus?
    /// When an input last arrived (clock milliseconds): an idle instance that holds nothing is evicted.
    var lastActive: Int64 = 0
    /// Inputs waiting for the machine (one store write in flight per proposal).
    var inbox: [PendingInput] = []
    /// A batch of this proposal is being stored; the inbox waits.
    var writing = false
    /// The input whose batch is being stored.
    var inFlight: PendingInput?
    /// Acks of this proposal's latest commands by principal + id (bounded), for repeats that overtake the store.
    private(set) var recentAcks: [String: JSONObject] = [:]
    private var recentOrder: [String] = []

    func remember(_ ack: JSONObject, for key: String) {
        guard recentAcks.updateValue(ack, forKey: key) == nil else { return }
        recentOrder.append(key)
        if recentOrder.count > 64 { recentAcks[recentOrder.removeFirst()] = nil }
    }

    init(machine: ProposalMachine, repository: RepositoryConfig?, createdAt: Int64) {
        self.machine = machine
        self.repository = repository
        self.createdAt = createdAt
    }

    var id: String { machine.info.id }
    var topic: String { "proposal:\(machine.info.id)" }
    /// The service whose machine it is (step results go back through its inbox).
    weak var service: PipelineService?

    /// Holds nothing that only memory has: no queued input, no write in flight, no sandbox, no run, and the
    /// machine is not busy (a busy machine waits for an executor's answer).
    var isEvictable: Bool {
        inbox.isEmpty && !writing && inFlight == nil && workspace == nil && testRun == nil && !machine.status.isBusy
            && !machine.revisions.isEmpty
    }
}

/// One input waiting for its proposal's machine (`PipelineService.feed`).
struct PendingInput {
    var event: ProposalEvent
    var command: PendingCommand?
    /// Repeats of the same command id that arrived meanwhile: they get the same answer.
    var followers: [CommandReply] = []

    init(event: ProposalEvent, command: PendingCommand?) {
        self.event = event
        self.command = command
    }

    /// principal + NUL + command id, when the command has an id.
    var commandKey: String? { command.flatMap { command in command.id.map { command.principal + "\u{0}" + $0 } } }
}

/// A command waiting for its batch to be durable.
struct PendingCommand {
    var principal: String
    var id: String?
    var ackFields: JSONObject
    var reply: CommandReply
}

/// Executes commands and machine actions for every proposal (see `ProposalsFeature`, `ProposalMachine`).
public final class PipelineService {
    let sink: any Publisher
    let configuration: MedicConfiguration
    let logger: Logger
    /// Clock, sandboxes, git and the language model (real ones on the loop; fakes in MedicHostTests).
    let executors: WorkflowExecutors
    /// Stored proposals that are not resident.
    let records: any ProposalRecords
    /// The resident instances: live ones (work in flight, a sandbox held, inputs queued) and recently used
    /// ones. Everything else is loaded from `records` when a command or read names it.
    var runtimes: [String: ProposalRuntime] = [:]
    /// Proposals whose stored record this Medic cannot read (e.g. written by a newer version), with why:
    /// they stay read-only — served from the store, commands on them refused with the reason.
    var unreadable: [String: String] = [:]
    /// Loads in flight, with everyone waiting for them (one store read per proposal at a time).
    private var loading: [String: [(ProposalRuntime?) -> Void]] = [:]
    /// The pipeline's figures over every stored proposal: read from the store at startup, then kept current
    /// by each committed transition (its old contribution out, its new one in).
    var figures = ProposalFigures()
    /// An instance idle this long that holds no sandbox, run or queued input leaves memory.
    var idleEvictionMilliseconds: Int64 = 300_000
    /// The code navigator's `locate` (repository, evidence, limit → repository paths), when configured: the
    /// fix prompt adds the files it points at.
    public var locate: ((String, String, Int, @escaping ([String]) -> Void) -> Void)? {
        get { steps.locate }
        set { steps.locate = newValue }
    }
    /// The repair loop's steps (deploy, test, analyse, ask for a fix), shared with the bug workflow's approaches.
    let steps: SandboxSteps
    /// Called when a proposal's end may have changed its repository (applied, rolled back, or a failed apply
    /// that committed and reverted): the code index follows.
    public var onRepositoryChanged: ((RepositoryConfig) -> Void)?
    /// Called after a proposal's new status is stored (the bug workflow follows its proposals).
    var onStatusChanged: [(ProposalMachine) -> Void] = []
    /// Where instances say they live on this node (the App, on several nodes; App+Leases.swift).
    weak var leases: (any WorkflowLeases)?

    init(sink: any Publisher, configuration: MedicConfiguration, executors: WorkflowExecutors, records: any ProposalRecords, logger: Logger) {
        self.sink = sink
        self.configuration = configuration
        self.executors = executors
        self.records = records
        self.logger = logger
        self.steps = SandboxSteps(configuration: configuration, executors: executors, logger: logger)
    }

    var clock: any WorkflowClock { executors.clock }

    /// Builds the service: the configured LLM, the sandbox isolation probe, and recovery of stored proposals.
    /// It publishes through `publisher` (the App, in a server) and reads stored proposals from `store`; it does
    /// not know the App.
    public static func make(
        loop: EventLoop, store: Store, configuration: MedicConfiguration, publisher: any Publisher, logger: Logger
    ) throws -> PipelineService {
        let model: any LanguageModel
        switch configuration.llm {
        case .scripted(let path): model = try ScriptedModel(loop: loop, path: path)
        case .anthropic:
            guard let key = configuration.anthropicAPIKey else {
                throw ConfigurationError("--llm anthropic needs ANTHROPIC_API_KEY in the environment")
            }
            let anthropic = try AnthropicModel(
                loop: loop, baseURL: configuration.llmBaseURL, model: configuration.llmModel, apiKey: key, logger: logger)
            anthropic.timeoutMilliseconds = configuration.llmTimeoutSeconds * 1000
            model = anthropic
        }
        let executors = WorkflowExecutors.local(loop: loop, model: model) { isolation in
            if let warning = isolation.warning {
                logger.warning("sandbox isolation: \(isolation.mode.rawValue) — \(warning)")
            } else {
                logger.info("sandbox isolation: \(isolation.mode.rawValue)")
            }
        }
        let records = StoreProposalRecords(store: store, loop: loop)
        let service = PipelineService(sink: publisher, configuration: configuration, executors: executors, records: records, logger: logger)
        service.idleEvictionMilliseconds = Int64(configuration.instanceIdleSeconds) * 1000
        try service.recover()
        return service
    }

    /// At startup: reads the figures, and loads only the proposals that were busy when the server stopped —
    /// they are marked interrupted (an admin's auto_fix re-deploys them), never left silently stuck. Every
    /// other proposal stays in the store until something names it. Then removes the sandboxes of finished
    /// proposals and starts the eviction sweep.
    func recover() throws {
        figures = try records.figures(passingStatuses: ProposalStatus.allCases.filter(\.hasPassingTests).map(\.rawValue))
        // Other nodes are running: their busy proposals are not ours to interrupt.
        let busy = configuration.nodesAliveAtStart.isEmpty ? try records.loadAll(statuses: ProposalStatus.allCases.filter(\.isBusy).map(\.rawValue)) : []
        for stored in busy {
            guard let runtime = makeRuntime(stored) else { continue }
            runtimes[runtime.id] = runtime
            let status = runtime.machine.status
            clock.schedule(afterNanoseconds: 0) { [weak self] in
                self?.feed(runtime, .interrupted(reason: "the server restarted while the proposal was \(status.rawValue)"))
            }
        }
        if !busy.isEmpty { logger.info("\(busy.count) proposals were busy when the server stopped; marking them interrupted") }
        removeFinishedSandboxes()
        scheduleEvictionSweep()
    }

    /// A resident instance from its stored record; nil (logged) when the record cannot be read — the proposal
    /// then stays read-only: its events and rows are served, commands on it are refused.
    func makeRuntime(_ stored: StoredProposal) -> ProposalRuntime? {
        let decoder = JSONDecoder()
        let revisions = stored.revisions.compactMap { try? decoder.decode(Revision.self, from: Data($0.doc.utf8)) }
        let machine: ProposalMachine
        do throws(RecordError) {
            machine = try ProposalMachine.load(document: stored.row.doc, revisions: revisions)
        } catch {
            logger.error("cannot read the stored state of proposal \(stored.row.id) (\(error)); it stays read-only")
            unreadable[stored.row.id] = error.description
            return nil
        }
        let runtime = ProposalRuntime(
            machine: machine, repository: configuration.repositories.first { $0.name == stored.row.repo }, createdAt: stored.row.createdAt)
        runtime.lastPublishedStatus = machine.status
        runtime.lastActive = clock.nowMilliseconds()
        runtime.service = self
        return runtime
    }

    /// The instance `id`: resident, or loaded from the store (concurrent callers share one load). nil when no
    /// such proposal is stored, its record is unreadable, or the store failed (logged).
    func withRuntime(_ id: String, _ body: @escaping (ProposalRuntime?) -> Void) {
        if let runtime = runtimes[id] { return body(runtime) }
        if loading[id] != nil {
            loading[id]?.append(body)
            return
        }
        loading[id] = [body]
        records.load(id) { [weak self] result in
            guard let self else { return }
            let waiting = self.loading.removeValue(forKey: id) ?? []
            var runtime: ProposalRuntime?
            switch result {
            case .success(let stored?):
                // A proposal created meanwhile by this server is already resident: that one is the truth.
                runtime = self.runtimes[id] ?? self.makeRuntime(stored)
                if let runtime { self.runtimes[id] = runtime }
            case .success(nil): runtime = self.runtimes[id]
            case .failure(let error):
                self.logger.error("loading proposal \(id) failed: \(error)")
                runtime = self.runtimes[id]
            }
            for body in waiting { body(runtime) }
        }
    }

    /// This node claimed the proposal's lease after `node` let it expire. A proposal that was busy there (its
    /// sandbox, test run or model request died with that node) is marked interrupted, then its current revision
    /// is deployed again here — the step re-runs from its start, nothing is applied twice (one interrupted while
    /// approved or applying stays interrupted: the repository is checked by a person). Anything else waits as it is.
    func resume(_ id: String, from node: String) {
        // Resident here already: this process runs it (or recovered it at startup), nothing was lost.
        guard runtimes[id] == nil else { return }
        withRuntime(id) { [weak self] runtime in
            guard let self else { return }
            guard let runtime else {
                self.leases?.release("proposal:\(id)")
                return
            }
            guard runtime.machine.status.isBusy else { return }
            let status = runtime.machine.status
            self.logger.info("resuming proposal \(id): node \(node) stopped while it was \(status.rawValue)")
            self.feed(runtime, .interrupted(reason: "node \(node) stopped while the proposal was \(status.rawValue); resumed on another node"))
            if status != .approved && status != .applying {
                self.feed(runtime, .autoFixRequested(principal: "medic", role: .admin))
            }
        }
    }

    /// Another node holds the proposal now: the resident copy goes (when it holds nothing in flight; otherwise it
    /// stays, and its next store write races the new owner's — logged).
    func leaseLost(_ id: String) {
        guard let runtime = runtimes[id] else { return }
        if runtime.isEvictable {
            runtimes[id] = nil
        } else {
            logger.error("proposal \(id) moved to another node while work on it was in flight here")
        }
    }

    /// Resident instances that hold nothing (no queued input, no write in flight, no sandbox, no test run)
    /// and saw no input for `idleEvictionMilliseconds` leave memory; the store has all of them.
    func evictIdle() {
        let now = clock.nowMilliseconds()
        for (id, runtime) in runtimes where runtime.isEvictable && now - runtime.lastActive >= idleEvictionMilliseconds {
            runtimes[id] = nil
            leases?.release(runtime.topic)
        }
    }

    private func scheduleEvictionSweep() {
        let period = UInt64(max(1_000, min(idleEvictionMilliseconds / 4, 60_000))) * 1_000_000
        clock.schedule(afterNanoseconds: period) { [weak self] in
            self?.evictIdle()
            self?.scheduleEvictionSweep()
        }
    }

    // MARK: commands

    public func execute(_ message: ClientMessage, commandID: String?, principal: Principal, reply: @escaping CommandReply) {
        switch message {
        case .propose(let command): propose(command, commandID: commandID, principal: principal, reply: reply)
        case .review(let review):
            runtime(review.proposal, reply) { runtime in
                self.feed(runtime, .review(principal: principal.name, role: principal.role, verdict: review.verdict,
                                           revision: Int(review.revision), comment: review.comment),
                          command: PendingCommand(principal: principal.name, id: commandID,
                                                  ackFields: ["proposal": .string(review.proposal), "revision": .int(review.revision)], reply: reply))
            }
        case .autoFix(let proposal):
            runtime(proposal, reply) { runtime in
                self.feed(runtime, .autoFixRequested(principal: principal.name, role: principal.role),
                          command: PendingCommand(principal: principal.name, id: commandID, ackFields: ["proposal": .string(proposal)], reply: reply))
            }
        case .rollback(let proposal):
            runtime(proposal, reply) { runtime in
                self.feed(runtime, .rollbackRequested(principal: principal.name, role: principal.role),
                          command: PendingCommand(principal: principal.name, id: commandID, ackFields: ["proposal": .string(proposal)], reply: reply))
            }
        case .withdraw(let proposal, let reason):
            runtime(proposal, reply) { runtime in
                self.feed(runtime, .withdrawRequested(principal: principal.name, role: principal.role, reason: reason),
                          command: PendingCommand(principal: principal.name, id: commandID, ackFields: ["proposal": .string(proposal)], reply: reply))
            }
        case .comment(let proposal, let text):
            runtime(proposal, reply) { runtime in
                self.comment(runtime, text: text, principal: principal, commandID: commandID, reply: reply)
            }
        case .stats:
            reply(.success(stats()))
        case .hello, .subscribe, .unsubscribe, .feature:
            reply(.failure(ProtocolError(code: .invalidMessage, message: "\(message.type) is not a pipeline command")))
        }
    }

    /// The instance a command names, loaded if need be; a refusal when there is none.
    private func runtime(_ id: String, _ reply: @escaping CommandReply, _ body: @escaping (ProposalRuntime) -> Void) {
        withRuntime(id) { runtime in
            guard let runtime else {
                if let why = self.unreadable[id] {
                    return reply(.failure(ProtocolError(code: .invalidState, message: "proposal \(id) is read-only here: \(why)")))
                }
                return reply(.failure(ProtocolError(code: .notFound, message: "no proposal \(id)")))
            }
            body(runtime)
        }
    }

    /// A proposal Medic makes itself: the bug workflow's chosen approach, authored by `medic` and linked to
    /// `bug`. `key` is its command id, so a repeat (after a restart) answers with the same proposal.
    func proposeForBug(
        _ command: ProposeCommand, bug: String, key: String, completion: @escaping (Result<String, ProtocolError>) -> Void
    ) {
        propose(command, commandID: key, principal: Principal(name: Self.medicPrincipal, role: .bot), bug: bug) { result in
            completion(result.flatMap { ack in
                ack["proposal"]?.stringValue.map { .success($0) } ?? .failure(ProtocolError(code: .internal, message: "no proposal id in the ack"))
            })
        }
    }

    /// The author of the proposals Medic makes itself, and who withdraws them (no principal can sign in as it:
    /// `medic token create` allows only `[A-Za-z0-9_.-]` in names, this one has a colon).
    static let medicPrincipal = "medic:bugs"

    private func propose(_ command: ProposeCommand, commandID: String?, principal: Principal, bug: String? = nil, reply: @escaping CommandReply) {
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
        let now = clock.nowMilliseconds()
        let info = ProposalInfo(
            id: id, title: command.title, description: command.description, repo: repository.name, author: principal.name,
            createdAt: Self.iso8601(now), bug: bug)
        let machine = ProposalMachine(
            info: info,
            configuration: .init(maxAttempts: configuration.maxAttempts, quorum: configuration.quorum,
                                 fixMode: configuration.autoFix ? .auto : .manual))
        let runtime = ProposalRuntime(machine: machine, repository: repository, createdAt: now)
        runtime.service = self
        runtimes[id] = runtime
        leases?.hold(runtime.topic, repo: repository.name)
        feed(runtime, .created(Revision(number: 1, changes: changes)),
             command: PendingCommand(principal: principal.name, id: commandID, ackFields: ["proposal": .string(id)], reply: reply))
    }

    private func comment(_ runtime: ProposalRuntime, text: String, principal: Principal, commandID: String?, reply: @escaping CommandReply) {
        let now = clock.nowMilliseconds()
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

    /// Feeds one event to a proposal's machine. Inputs queue per proposal and are handled one at a time, each
    /// fully: the machine runs on a copy, everything its actions say to store goes into one write (with the
    /// command's idempotency record), and only when that write is durable does the copy become the proposal's
    /// machine, the command get its answer and the side effects (deploy, test, fix, apply …) run. An input that
    /// arrives while a write is in flight waits its turn, so nothing is ever rolled back under it.
    func feed(_ runtime: ProposalRuntime, _ event: ProposalEvent, command: PendingCommand? = nil) {
        // A repeated command id (same principal) never applies twice (invariant 5). The store answers repeats of
        // committed commands, but a repeat can overtake its original's commit: it then shares the original's
        // answer — from the recent acks, or by waiting with it in the inbox.
        if let command, let id = command.id {
            let key = command.principal + "\u{0}" + id
            if let ack = runtime.recentAcks[key] { return command.reply(.success(ack)) }
            if let index = runtime.inbox.firstIndex(where: { $0.commandKey == key }) {
                runtime.inbox[index].followers.append(command.reply)
                return
            }
            if runtime.inFlight?.commandKey == key {
                runtime.inFlight?.followers.append(command.reply)
                return
            }
        }
        runtime.lastActive = clock.nowMilliseconds()
        runtime.inbox.append(PendingInput(event: event, command: command))
        drain(runtime)
    }

    /// Handles queued inputs until one needs a store write (then the write's completion continues).
    private func drain(_ runtime: ProposalRuntime) {
        while !runtime.writing, !runtime.inbox.isEmpty {
            let input = runtime.inbox.removeFirst()
            var next = runtime.machine
            let actions = next.handle(input.event)
            if let (code, message) = actions.lazy.compactMap({ action -> (RejectCode, String)? in
                if case .reject(let code, let message) = action { (code, message) } else { nil }
            }).first {
                let refusal = ProtocolError(code: ErrorCode(rawValue: code.rawValue) ?? .invalidState, message: message)
                input.command?.reply(.failure(refusal))
                for follower in input.followers { follower(.failure(refusal)) }
                continue  // the machine is unchanged: it was a copy
            }
            let (write, ackFields, effects) = batch(runtime, next: next, input: input, actions: actions)
            runtime.writing = true
            runtime.inFlight = input
            commit(runtime, write, next: next, ackFields: ackFields, effects: effects, attempt: 0)
        }
    }

    /// Answers the in-flight input's command and every repeat of it that waited along.
    private func answer(_ runtime: ProposalRuntime, _ result: Result<JSONObject, ProtocolError>) {
        guard let input = runtime.inFlight else { return }
        runtime.inFlight = nil
        runtime.writing = false
        if case .success(let ack) = result, let key = input.commandKey { runtime.remember(ack, for: key) }
        input.command?.reply(result)
        for follower in input.followers { follower(result) }
    }

    /// The rows and events one handled input stores, the command's ack, and the effects to run once stored.
    private func batch(_ runtime: ProposalRuntime, next: ProposalMachine, input: PendingInput, actions: [ProposalAction])
        -> (StoreWrite, JSONObject, [ProposalAction])
    {
        let now = clock.nowMilliseconds()
        var write = StoreWrite()
        var effects: [ProposalAction] = []
        for action in actions {
            switch action {
            case .publish(let pipelineEvent):
                write.events.append(NewEvent(topic: runtime.topic, kind: pipelineEvent.kind, data: pipelineEvent.data.jsonString, ts: now))
            case .deploy, .runTests, .analyze, .requestFix, .reaskFix, .checkBase, .runPreApplyTests, .applyToRepository, .runPostApply,
                .revert, .rollback, .stopWork:
                effects.append(action)
            case .record(.revision(let revision)):
                // One input may change a revision twice (a failed sandbox is analysed at once): its last form wins.
                write.revisions.removeAll { $0.number == revision.number }
                write.revisions.append(RevisionRow(proposalId: runtime.id, number: revision.number, doc: Self.encode(revision), createdAt: now))
            case .record(.review(let revision, let principal, let verdict, let comment)):
                write.reviews.append(ReviewRow(
                    proposalId: runtime.id, revision: revision, principal: principal, verdict: verdict.rawValue, comment: comment, ts: now))
            case .record(.applied(let revision, let commit)):
                write.appliedChanges.append(AppliedChangeRow(proposalId: runtime.id, revision: revision, commit: commit, ts: now, revertedBy: nil))
            case .record(.reverted(let revision, let commit, let revert)):
                // An upsert on (proposal, commit) that sets only reverted_by: the apply's revision and time stay.
                write.appliedChanges.append(AppliedChangeRow(proposalId: runtime.id, revision: revision, commit: commit, ts: now, revertedBy: revert))
            case .setStatus:
                break  // the proposal row below carries the status
            case .ignored(let why):
                logger.debug("proposal \(runtime.id): \(why)")
            case .reject:
                break
            }
        }
        // Every handled input rewrites the proposal row: its document is the machine's state.
        write.proposals = [row(next, createdAt: runtime.createdAt, now: now)]
        if runtime.lastPublishedStatus != next.status {
            write.events.append(NewEvent(topic: "proposals", kind: "proposal", data: summary(next, now: now).jsonString, ts: now))
        }
        var ackFields = input.command?.ackFields ?? [:]
        ackFields["status"] = .string(next.status.rawValue)
        if case .review = input.event {
            ackFields["approvals"] = .array(next.approvals.map { .string($0) })
            ackFields["quorum"] = .int(Int64(next.configuration.quorum))
        }
        if let command = input.command, let id = command.id {
            write.command = CommandRecord(principal: command.principal, commandId: id, response: Self.ackText(id, ackFields))
        }
        return (write, ackFields, effects)
    }

    /// Stores one input's batch. A command's batch fails fast (nothing changes; the client may retry with the
    /// same id); a pipeline step's batch is retried until the store is back, so no result is lost — the
    /// proposal's later inputs wait meanwhile, in order.
    private func commit(
        _ runtime: ProposalRuntime, _ write: StoreWrite, next: ProposalMachine, ackFields: JSONObject, effects: [ProposalAction],
        attempt: Int
    ) {
        sink.commit(write) { [weak self] result in
            guard let self else { return }
            switch result {
            case .success(.committed):
                let before = runtime.machine.status
                defer {
                    if before != next.status, [.applied, .rolledBack, .applyFailed].contains(next.status), let repository = runtime.repository {
                        self.onRepositoryChanged?(repository)
                    }
                    if before != next.status { for observer in self.onStatusChanged { observer(next) } }
                }
                self.figures.count(runtime.machine, sign: -1)
                self.figures.count(next, sign: 1)
                runtime.machine = next
                runtime.lastPublishedStatus = next.status
                self.answer(runtime, .success(ackFields))
                for effect in effects { self.perform(effect, runtime) }
                if runtime.machine.status.releasesSandbox { self.removeSandboxes(of: runtime.id, runtime: runtime) }
            case .success(.duplicateCommand(let response)):
                self.answer(runtime, .success(Self.fields(ofAck: response)))
            case .failure(let error):
                if runtime.inFlight?.command != nil {
                    if runtime.machine.revisions.isEmpty { self.runtimes[runtime.id] = nil }  // its creation was not stored
                    self.answer(runtime, .failure(ProtocolError(code: .storeUnavailable, message: error.message)))
                } else {
                    let delay = min(UInt64(1) << UInt64(min(attempt, 4)), 10)
                    self.logger.error("storing proposal \(runtime.id)'s progress failed (\(error)); retrying in \(delay)s")
                    self.clock.schedule(afterNanoseconds: delay * 1_000_000_000) {
                        self.commit(runtime, write, next: next, ackFields: ackFields, effects: effects, attempt: attempt + 1)
                    }
                    return
                }
            }
            self.drain(runtime)
        }
    }

    /// Stores and publishes executor-owned events (test_started, test_output): no machine change.
    func publish(_ runtime: ProposalRuntime, kind: String, data: JSONValue) {
        var write = StoreWrite()
        write.events = [NewEvent(topic: runtime.topic, kind: kind, data: data.jsonString, ts: clock.nowMilliseconds())]
        sink.commit(write) { [logger] result in
            if case .failure(let error) = result { logger.error("could not store \(kind) for \(runtime.id): \(error)") }
        }
    }

    // MARK: effects

    func perform(_ action: ProposalAction, _ runtime: ProposalRuntime) {
        if steps.perform(action, for: runtime) { return }
        switch action {
        case .checkBase: checkBase(runtime)
        case .runPreApplyTests(let revision, let base): runPreApplyTests(runtime, revision: revision, baseCommit: base)
        case .applyToRepository(let revision, let approvers): apply(runtime, revision: revision, approvers: approvers)
        case .runPostApply(let commit): runPostApply(runtime, commit: commit)
        case .revert(let commit): revert(runtime, commit: commit)
        case .rollback(let commit): rollback(runtime, commit: commit)
        case .deploy, .runTests, .analyze, .requestFix, .reaskFix, .stopWork, .setStatus, .publish, .record, .reject, .ignored: break
        }
    }

    public func baseFiles(proposal: String, revision: Int, reply: @escaping (Result<JSONValue, ProtocolError>) -> Void) {
        // A read: the stored record serves when the proposal is not resident, and it is not made resident — an
        // instance lives in the memory of the node that holds its lease only (several nodes), never as a copy.
        if let runtime = runtimes[proposal] { return baseFiles(runtime, proposal: proposal, revision: revision, reply: reply) }
        records.load(proposal) { [weak self] result in
            guard let self else { return }
            let runtime = (try? result.get())?.flatMap { self.makeRuntime($0) }
            self.baseFiles(runtime, proposal: proposal, revision: revision, reply: reply)
        }
    }

    private func baseFiles(_ runtime: ProposalRuntime?, proposal: String, revision: Int, reply: @escaping (Result<JSONValue, ProtocolError>) -> Void) {
        guard let runtime, let rev = runtime.machine.revisions.first(where: { $0.number == revision }) else {
            return reply(.failure(ProtocolError(code: .notFound, message: "no revision \(revision) of proposal \(proposal)")))
        }
        guard let repository = runtime.repository, let commit = rev.baseCommit else {
            return reply(.failure(ProtocolError(code: .invalidState, message: "revision \(revision) has no base commit (not deployed yet, or not a git repository)")))
        }
        let paths = rev.changes.filter { $0.action != .create }.map(\.path)
        executors.git(repository.path).files(at: commit, paths: paths) { result in
            switch result {
            case .failure(let error):
                reply(.failure(ProtocolError(code: .internal, message: "reading the base files failed: \(error)")))
            case .success(let files):
                var object = JSONObject()
                var omitted: [JSONValue] = []
                for path in paths {
                    switch files[path] ?? .absent {
                    case .text(let content): object[path] = .string(content)
                    case .absent: object[path] = .null
                    case .omitted: omitted.append(.string(path))
                    }
                }
                reply(.success(.object([
                    "revision": .int(Int64(revision)), "base_commit": .string(commit), "files": .object(object), "omitted": .array(omitted),
                ])))
            }
        }
    }

    /// The repository's HEAD, for the machine to compare with the revision's base.
    private func checkBase(_ runtime: ProposalRuntime) {
        guard let repository = runtime.repository else { return feed(runtime, .baseChecked(head: nil)) }
        executors.git(repository.path).headCommit { [weak self] head in
            self?.feed(runtime, .baseChecked(head: try? head.get()))
        }
    }

    /// The revision's tests on a fresh copy of the repository at its new HEAD, streamed like any run (`phase:
    /// pre_apply`).
    private func runPreApplyTests(_ runtime: ProposalRuntime, revision number: Int, baseCommit: String) {
        guard let repository = runtime.repository, let revision = runtime.machine.revisions.first(where: { $0.number == number }) else {
            return feed(runtime, .preApplyTestsFinished(passed: false, detail: "the repository or revision is not available"))
        }
        logger.info("proposal \(runtime.id): repository moved to \(baseCommit.prefix(8)); re-testing before apply")
        executors.sandbox.createWorkspace(from: repository.path, parentDirectory: steps.sandboxParent(runtime.id)) { [weak self] result in
            guard let self else { return }
            guard case .success(let workspace) = result, case .success = workspace.apply(SandboxSteps.workspaceChanges(revision.changes)) else {
                return self.feed(runtime, .preApplyTestsFinished(passed: false, detail: "could not prepare a sandbox on the new base"))
            }
            let config = self.steps.sandboxedRun(workspace: workspace.path, repository: repository)
            self.executors.sandbox.whenIsolationKnown { isolation in
                self.steps.publishTestStarted(
                    runtime, revision: number, command: repository.testCommand, setup: repository.setupCommand, isolation: isolation.mode, phase: "pre_apply")
                _ = self.executors.sandbox.startRun(config, isolation: isolation, onLines: self.steps.outputStreamer(runtime, revision: number, phase: "pre_apply")) { result in
                    workspace.remove { _ in }
                    let detail = "exit \(result.exitCode.map(String.init) ?? "-"): \(result.outputTail.suffix(300))"
                    self.feed(runtime, .preApplyTestsFinished(passed: result.passed, detail: detail))
                }
            }
        }
    }

    /// Commits the approved revision (the reviewed paths only; see `GitRepository.applyAndCommit`).
    private func apply(_ runtime: ProposalRuntime, revision number: Int, approvers: [String]) {
        guard let repository = runtime.repository, let revision = runtime.machine.revisions.first(where: { $0.number == number }) else {
            feed(runtime, .applyFailed(reason: "the repository or revision is not available"))
            return
        }
        let info = runtime.machine.info
        let message = "\(info.title)\n\nApplied by Medic: proposal \(info.id), revision \(number).\nApproved-by: \(approvers.joined(separator: ", "))\n"
        executors.git(repository.path).applyAndCommit(
            SandboxSteps.workspaceChanges(revision.changes), message: message, author: GitAuthor(name: info.author, email: "\(info.author)@medic.invalid")
        ) { [weak self] result in
            switch result {
            case .failure(let error): self?.feed(runtime, .applyFailed(reason: error.description))
            case .success(let commit): self?.feed(runtime, .committed(commit: commit, postApply: repository.postApplyCommand != nil))
            }
        }
    }

    /// The repository's post-apply command, in the real repository, streamed (`phase: post_apply`).
    private func runPostApply(_ runtime: ProposalRuntime, commit: String) {
        guard let repository = runtime.repository, let smoke = repository.postApplyCommand else {
            return feed(runtime, .postApplyFinished(passed: true, detail: "no post-apply command"))
        }
        let config = TestRunConfiguration(
            workspacePath: repository.path, testCommand: smoke,
            timeoutNanoseconds: UInt64(configuration.testTimeoutSeconds) * 1_000_000_000, allowNetwork: repository.allowNetwork)
        let revision = runtime.machine.currentRevision
        steps.publishTestStarted(runtime, revision: revision, command: smoke, setup: nil, isolation: .none, phase: "post_apply")
        _ = executors.sandbox.startRun(config, isolation: .unisolated, onLines: steps.outputStreamer(runtime, revision: revision, phase: "post_apply")) { [weak self] result in
            self?.feed(runtime, .postApplyFinished(passed: result.passed, detail: "exit \(result.exitCode.map(String.init) ?? "-")"))
        }
    }

    /// Reverts a commit whose post-apply command failed.
    private func revert(_ runtime: ProposalRuntime, commit: String) {
        guard let repository = runtime.repository else { return feed(runtime, .revertFailed(reason: "the repository is not configured")) }
        executors.git(repository.path).revert(commit) { [weak self] result in
            switch result {
            case .success(let revert): self?.feed(runtime, .reverted(revertCommit: revert))
            case .failure(let error): self?.feed(runtime, .revertFailed(reason: error.description))
            }
        }
    }

    private func rollback(_ runtime: ProposalRuntime, commit: String) {
        guard let repository = runtime.repository else {
            feed(runtime, .rollbackFailed(reason: "repository '\(runtime.machine.info.repo)' is not configured"))
            return
        }
        executors.git(repository.path).revert(commit) { [weak self] result in
            guard let self else { return }
            switch result {
            case .success(let revert): self.feed(runtime, .rolledBack(revertCommit: revert))
            case .failure(let error): self.feed(runtime, .rollbackFailed(reason: error.description))
            }
        }
    }

    // MARK: sandboxes

    /// Removes a finished proposal's sandbox directory (all its workspaces), unless retention is `keep`.
    func removeSandboxes(of id: String, runtime: ProposalRuntime?) {
        guard configuration.sandboxRetention == .remove else { return }
        runtime?.workspace = nil
        executors.sandbox.removeDirectory(name: id, in: steps.sandboxesRoot) { [logger] result in
            if case .failure(let error) = result { logger.warning("could not remove the sandboxes of \(id): \(error)") }
        }
    }

    /// At startup: removes the sandboxes of proposals that are finished, and of proposals the store does not
    /// know (left by a proposal whose creation was never stored).
    func removeFinishedSandboxes() {
        guard configuration.sandboxRetention == .remove else { return }
        for name in executors.sandbox.directoryNames(in: steps.sandboxesRoot) {
            if let runtime = runtimes[name] {
                if runtime.machine.status.releasesSandbox { removeSandboxes(of: name, runtime: runtime) }
                continue
            }
            records.load(name) { [weak self] result in
                // Kept only for a proposal the store says still needs it; an unknown name is a leftover.
                if case .success(let stored?) = result, let status = ProposalStatus(rawValue: stored.row.status), !status.releasesSandbox {
                    return
                }
                if case .failure = result { return }  // cannot tell: keep it, the next start decides
                self?.removeSandboxes(of: name, runtime: nil)
            }
        }
    }

    // MARK: rows, summaries, stats

    private func row(_ m: ProposalMachine, createdAt: Int64, now: Int64) -> ProposalRow {
        ProposalRow(
            id: m.info.id, title: m.info.title, description: m.info.description, repo: m.info.repo, status: m.status.rawValue,
            currentRevision: m.currentRevision, author: m.info.author, createdAt: createdAt, updatedAt: now,
            attempts: m.attempt, doc: m.record())
    }

    private func summary(_ m: ProposalMachine, now: Int64) -> JSONValue {
        .object([
            "id": .string(m.info.id), "title": .string(m.info.title), "status": .string(m.status.rawValue),
            "revision": .int(Int64(m.currentRevision)), "attempt": .int(Int64(m.attempt)), "max_attempts": .int(Int64(m.attemptLimit)),
            "author": .string(m.info.author), "repo": .string(m.info.repo), "updated_at": .int(now),
            "approvals": .array(m.approvals.map { .string($0) }), "quorum": .int(Int64(m.configuration.quorum)),
        ])
    }

    /// The customer's metrics: failures, auto-fix attempted/successful, success rate, average attempts,
    /// unfixable, and counts per error category.
    public func stats() -> JSONObject {
        let f = figures
        var byCategory = JSONObject()
        for category in f.byCategory.keys.sorted() where f.byCategory[category]! > 0 { byCategory[category] = .int(Int64(f.byCategory[category]!)) }
        return [
            "proposals": .int(Int64(f.proposals)),
            "total_failures": .int(Int64(f.failures)),
            "auto_fix_attempted": .int(Int64(f.attempts)),
            "auto_fix_successful": .int(Int64(f.successful)),
            "success_rate": .number(f.proposalsWithFixes == 0 ? 0 : Double(f.successful) / Double(f.proposalsWithFixes)),
            "average_attempts": .number(f.proposalsWithFixes == 0 ? 0 : Double(f.attempts) / Double(f.proposalsWithFixes)),
            "unfixable": .int(Int64(f.unfixable)),
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

    static func newProposalID() -> String { newWorkflowID(prefix: "p") }

    static func iso8601(_ milliseconds: Int64) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: Date(timeIntervalSince1970: Double(milliseconds) / 1000))
    }
}

extension ProposalRuntime: StepTarget {
    var repoName: String { machine.info.repo }
    var sandboxName: String { id }
    func revision(_ number: Int) -> Revision? { machine.revisions.first { $0.number == number } }
    var modelLabels: [String: String] { ["proposal": id, "title": machine.info.title] }
    func deliver(_ event: ProposalEvent) { service?.feed(self, event) }
    func publishStored(kind: String, data: JSONObject) { service?.publish(self, kind: kind, data: .object(data)) }
    func publishEphemeral(kind: String, data: JSONObject) { service?.sink.publishEphemeral(topic: topic, kind: kind, data: .object(data)) }
}
