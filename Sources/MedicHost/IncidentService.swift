// IncidentService: runs the incidents (`IncidentMachine`) — opens one for each anomaly the storm guard admits,
// feeds every closed bucket to the open ones (their sparkline and healing), files their bugs through the bug
// workflow, and follows those bugs and their proposals to `watching`, `healed` or `regressed`. Each step goes
// through a `WorkflowInbox`: stored with its events before anything acts on it. Loop-bound.
import EventLoop
import Logging
import Monitor
import Pipeline
import Protocol
import Store

final class IncidentRuntime {
    var machine: IncidentMachine
    let createdAt: Int64
    var inbox: WorkflowInbox<IncidentService.Input>!

    init(machine: IncidentMachine, createdAt: Int64) {
        self.machine = machine
        self.createdAt = createdAt
    }
}

struct IncidentFigures {
    var opened = 0, healed = 0, regressed = 0, autoBugs = 0
}

final class IncidentService {
    enum Input {
        /// The incident's first step (the machine was built by `IncidentMachine.open`).
        case opened([IncidentAction])
        case event(IncidentEvent)
        /// The bug report was not filed (the machine is told `bugNotFiled(reason)`); an admin's `file_bug` waiting
        /// for it is answered `error`.
        case notFiled(reason: String, error: ProtocolError)
    }

    let sink: any Publisher
    let store: Store
    let clock: any WorkflowClock
    let logger: Logger
    let loop: EventLoop
    let monitor: MonitorService
    let settings: MonitorConfiguration
    let repo: String?
    weak var bugs: BugService?
    /// Incidents not closed, and closed ones within the cooldown (anomalies of their key merge into them).
    private(set) var runtimes: [String: IncidentRuntime] = [:]
    private var stormGuard: StormGuard
    private var byBug: [String: String] = [:]
    private var unreadable: [String: String] = [:]
    var figures = IncidentFigures()

    init(sink: any Publisher, store: Store, loop: EventLoop, clock: any WorkflowClock, monitor: MonitorService, configuration: MedicConfiguration, logger: Logger) {
        self.sink = sink
        self.loop = loop
        self.store = store
        self.clock = clock
        self.monitor = monitor
        self.settings = configuration.monitor
        self.repo = configuration.monitor.repo ?? configuration.repositories.first?.name
        self.logger = logger
        stormGuard = StormGuard(limits: configuration.monitor.storm)
        monitor.onBucket = { [weak self] bucket in self?.closed(bucket) }
    }

    /// Follows the bugs it filed and their proposals.
    func follow(bugs: BugService, pipeline: PipelineService) {
        self.bugs = bugs
        bugs.onStatusChanged.append { [weak self] bug in
            guard let self, let id = self.byBug[bug.report.id], let runtime = self.runtimes[id] else { return }
            runtime.inbox.feed(.event(.bugStatus(bug: bug.report.id, status: bug.status.rawValue, proposal: bug.proposal)))
        }
        pipeline.onStatusChanged.append { [weak self] proposal in
            guard let self, let bug = proposal.info.bug, let id = self.byBug[bug] else { return }
            self.withRuntime(id) { runtime in
                runtime?.inbox.feed(.event(.proposalStatus(
                    proposal: proposal.info.id, status: proposal.status, commit: proposal.commit, now: self.clock.nowMilliseconds())))
            }
        }
    }

    /// At startup (blocking): incidents not closed, and those closed within the cooldown, back in memory; the
    /// storm guard rebuilt from them (automatic bugs of the last hour counted by their incident's opening).
    func recover() throws {
        let now = clock.nowMilliseconds()
        let rows = try store.sync { store.workflows(kind: "incident", statuses: IncidentStatus.allCases.map(\.rawValue), completion: $0) }
        for row in rows {
            guard let runtime = makeRuntime(row) else { continue }
            let m = runtime.machine
            if m.status.isClosed {
                guard let closedAt = m.closedAt, now - closedAt < settings.storm.cooldownMs else { continue }
                stormGuard.incidentClosed(key: m.key, id: m.id, at: closedAt)
            } else {
                stormGuard.incidentOpened(key: m.key, id: m.id)
            }
            if m.automatic, m.bug != nil, now - m.openedAt < 3_600_000 { stormGuard.autoBugFiled(at: m.openedAt) }
            runtimes[m.id] = runtime
            if let bug = m.bug { byBug[bug] = m.id }
        }
    }

    /// This node became the cluster's monitor: what it knew of incidents is dropped (the last monitor may have
    /// opened, healed or closed some since) and read from the store again, as at startup. Instances with work
    /// in flight here stay (none: a node that was not the monitor ran no incident steps).
    func reload() throws {
        runtimes = runtimes.filter { $0.value.inbox.isBusy }
        byBug = [:]
        stormGuard = StormGuard(limits: settings.storm)
        try recover()
    }

    private func makeRuntime(_ row: WorkflowRow) -> IncidentRuntime? {
        let machine: IncidentMachine
        do throws(IncidentRecordError) { machine = try IncidentMachine.load(document: row.doc) } catch {
            logger.error("cannot read the stored state of incident \(row.id) (\(error)); it stays read-only")
            unreadable[row.id] = error.description
            return nil
        }
        return attach(IncidentRuntime(machine: machine, createdAt: row.createdAt))
    }

    private func attach(_ runtime: IncidentRuntime) -> IncidentRuntime {
        runtime.inbox = WorkflowInbox(name: "incident \(runtime.machine.id)", sink: sink, clock: clock, logger: logger) { [unowned self, unowned runtime] input, command in
            self.prepare(runtime, input, command)
        }
        return runtime
    }

    func withRuntime(_ id: String, _ body: @escaping (IncidentRuntime?) -> Void) {
        if let runtime = runtimes[id] { return body(runtime) }
        let loaded = LoopBound({ [weak self] (result: Result<WorkflowRow?, StoreError>) in
            guard let self else { return }
            if let runtime = self.runtimes[id] { return body(runtime) }
            guard case .success(let row?) = result, row.kind == "incident", let runtime = self.makeRuntime(row) else { return body(nil) }
            self.runtimes[id] = runtime
            if let bug = runtime.machine.bug { self.byBug[bug] = id }
            body(runtime)
        }, loop: loop)
        store.workflow(id: id) { result in loaded.hop { body in body(result) } }
    }

    // MARK: anomalies and buckets

    private func closed(_ bucket: ClosedBucket) {
        let now = clock.nowMilliseconds()
        for anomaly in bucket.anomalies { admit(anomaly, now: now) }
        for runtime in runtimes.values where !runtime.machine.status.isClosed {
            let m = runtime.machine
            runtime.inbox.feed(.event(.bucket(start: bucket.start, value: bucket.value(kind: m.kind, subject: m.subject))))
        }
        // Closed incidents past the cooldown leave memory (the store keeps them).
        for (id, runtime) in runtimes where runtime.machine.status.isClosed {
            if let closedAt = runtime.machine.closedAt, now - closedAt >= settings.storm.cooldownMs {
                runtimes[id] = nil
                if let bug = runtime.machine.bug { byBug[bug] = nil }
            }
        }
    }

    private func admit(_ anomaly: Anomaly, now: Int64) {
        let title = title(of: anomaly)
        let severity = settings.policy.severity(of: anomaly, title: title)
        let mayFile = stormGuard.mayFileAutomatically(now: now)
        switch stormGuard.admit(key: anomaly.incidentKey, now: now) {
        case .merge(let id):
            withRuntime(id) { runtime in
                runtime?.inbox.feed(.event(.anomaly(anomaly, severity: severity, mayFileAutomatically: mayFile, now: now)))
            }
        case .open:
            let stack = anomaly.kind == .spike || anomaly.kind == .newError ? monitor.describe(anomaly.subject)?.stack : nil
            let (machine, actions) = IncidentMachine.open(
                id: newWorkflowID(prefix: "i"), anomaly: anomaly, severity: severity, title: title, stack: stack, settings: settings.healing,
                mayFileAutomatically: mayFile, now: now)
            let runtime = attach(IncidentRuntime(machine: machine, createdAt: now))
            runtimes[machine.id] = runtime
            stormGuard.incidentOpened(key: machine.key, id: machine.id)
            if machine.status.isClosed { stormGuard.incidentClosed(key: machine.key, id: machine.id, at: now) }
            figures.opened += 1
            runtime.inbox.feed(.opened(actions))
        }
    }

    /// What an incident is called: the fingerprint's normalised message, or what was measured.
    func title(of anomaly: Anomaly) -> String {
        func percent(_ x: Double) -> String { String(Int((x * 1000).rounded()) / 10) + "." + String(Int((x * 1000).rounded()) % 10) + " %" }
        let text: String = switch anomaly.kind {
        case .spike, .newError:
            (monitor.describe(anomaly.subject)?.key).map { key in
                key.split(separator: " @ ", maxSplits: 1, omittingEmptySubsequences: false).map(String.init).first ?? key
            } ?? anomaly.samples.last.map(Fingerprint.normalise) ?? anomaly.subject
        case .errorRate: "\(anomaly.service): \(percent(anomaly.value)) of requests fail (baseline \(percent(anomaly.baseline)))"
        case .latency: "\(anomaly.service): p95 latency \(Int(anomaly.value)) ms (baseline \(Int(anomaly.baseline)) ms)"
        case .authBurst: "\(Int(anomaly.value)) authentication failures from \(anomaly.subject)"
        case .keyword: "'\(anomaly.subject)' in \(Int(anomaly.value)) error messages"
        }
        return String(text.prefix(200))
    }

    // MARK: commands

    func command(_ id: String, _ event: IncidentEvent, commandID: String?, principal: Principal, reply: @escaping CommandReply) {
        withRuntime(id) { [weak self] runtime in
            guard let runtime else {
                if let why = self?.unreadable[id] { return reply(.failure(ProtocolError(code: .invalidState, message: "incident \(id) is read-only here: \(why)"))) }
                return reply(.failure(ProtocolError(code: .notFound, message: "no incident \(id)")))
            }
            runtime.inbox.feed(.event(event), command: PendingCommand(principal: principal.name, id: commandID, ackFields: ["incident": .string(id)], reply: reply))
        }
    }

    // MARK: steps

    private func prepare(_ runtime: IncidentRuntime, _ input: Input, _ command: PendingCommand?) -> WorkflowStep? {
        var next = runtime.machine
        let before = runtime.machine
        let actions: [IncidentAction]
        let opening: Bool
        switch input {
        case .opened(let first):
            actions = first
            opening = true
        case .event(let event):
            actions = next.handle(event)
            opening = false
        case .notFiled(let reason, _):
            actions = next.handle(.bugNotFiled(reason: reason))
            opening = false
        }
        for case .reject(let code, let message) in actions {
            command?.reply(.failure(ProtocolError(code: ErrorCode(rawValue: code) ?? .invalidState, message: message, id: command?.id)))
            return nil
        }
        let now = clock.nowMilliseconds()
        let topic = "incident:\(next.id)"
        var write = StoreWrite()
        var effects: [IncidentAction] = []
        for action in actions {
            switch action {
            case .publish(let kind, let data): write.events.append(NewEvent(topic: topic, kind: kind, data: JSONValue.object(data).jsonString, ts: now))
            case .fileBug(let automatic, _):
                effects.append(action)
                // Counted when decided, not when filed: the next anomaly of this same bucket sees the limit.
                if automatic {
                    stormGuard.autoBugFiled(at: now)
                    figures.autoBugs += 1
                }
            case .ignored(let why): logger.debug("incident \(next.id): \(why)")
            case .reject: break
            }
        }
        if write.events.isEmpty && !opening && command == nil && next == before { return nil }  // nothing happened: nothing to store
        write.workflows = [WorkflowRow(
            kind: "incident", id: next.id, repo: repo ?? "", title: next.title, status: next.status.rawValue, author: "medic:monitor",
            createdAt: runtime.createdAt, updatedAt: now, doc: next.record(updatedAt: now))]
        let changed = opening || before.status != next.status || before.severity != next.severity || before.bug != next.bug
            || before.proposal != next.proposal || before.occurrences != next.occurrences
        if changed {
            write.events.append(NewEvent(topic: "incidents", kind: "incident", data: JSONValue.object(next.summary(updatedAt: now)).jsonString, ts: now))
        }
        var ack: JSONObject = ["incident": .string(next.id), "status": .string(next.status.rawValue)]
        if let bug = next.bug { ack["bug"] = .string(bug) }
        let machine = next
        // An admin's file_bug is answered once the bug is filed (its ack names the new bug): held here, handed to
        // the filing, and answered by the step that records the outcome (stored whatever happens to the command).
        var answer = WorkflowStep.Answer.ack
        var mustCommit = false
        let holds = command != nil && effects.contains { if case .fileBug(automatic: false, _) = $0 { true } else { false } }
        if holds { answer = .hold }
        switch input {
        case .event(.bugFiled): mustCommit = true
        case .notFiled(_, let error):
            mustCommit = true
            answer = .fail(error)
        default: break
        }
        var step = WorkflowStep(write: write, ackFields: ack, adopt: { [weak self] in
            guard let self else { return }
            runtime.machine = machine
            if let bug = machine.bug { self.byBug[bug] = machine.id }
            if machine.status.isClosed, !before.status.isClosed || opening {
                self.stormGuard.incidentClosed(key: machine.key, id: machine.id, at: machine.closedAt ?? now)
            } else if !machine.status.isClosed, before.status.isClosed, !opening {
                self.stormGuard.incidentOpened(key: machine.key, id: machine.id)
            }
            if machine.status == .healed, before.status != .healed { self.figures.healed += 1 }
            if machine.status == .regressed, before.status != .regressed { self.figures.regressed += 1 }
        }, effects: { [weak self] in
            for case .fileBug(let automatic, let by) in effects { self?.fileBug(runtime, automatic: automatic, by: by, command: holds ? command : nil) }
        })
        step.answer = answer
        step.mustCommit = mustCommit
        return step
    }

    /// Files the incident's bug through the bug workflow. The command id is derived from the incident and the bug
    /// it had before (both stored): a repeat after a restart returns the same bug, the next filing makes a new one.
    /// `command`: an admin's `file_bug`, answered by the step that records the outcome.
    private func fileBug(_ runtime: IncidentRuntime, automatic: Bool, by: String, command: PendingCommand?) {
        let m = runtime.machine
        guard let bugs, let repo else {
            let reason = "no repository is configured for the monitor's bugs"
            return runtime.inbox.feed(
                .notFiled(reason: reason, error: ProtocolError(code: .invalidState, message: "no bug was filed for incident \(m.id): \(reason)")),
                command: command)
        }
        let report = BugReport(
            id: BugService.newBugID(), repo: repo, title: String("Error spike in \(m.service.isEmpty ? "the application" : m.service): \(m.title)".prefix(200)),
            description: Self.description(m), severity: BugSeverity(rawValue: m.severity.rawValue) ?? .high,
            evidence: Self.evidence(m), approaches: settings.autoBugApproaches, author: "medic:monitor")
        let principal = Principal(name: "medic:monitor", role: .admin)
        bugs.report(report, commandID: "incident-\(m.id)-after-\(m.bug ?? "none")", principal: principal) { [weak self] result in
            guard self != nil else { return }
            switch result {
            case .success(let ack):
                runtime.inbox.feed(.event(.bugFiled(bug: ack["bug"]?.stringValue ?? report.id, automatic: automatic, by: by)), command: command)
            case .failure(let error):
                let reason = "the bug report was refused: \(error.message)"
                runtime.inbox.feed(
                    .notFiled(reason: reason, error: ProtocolError(code: error.code, message: "no bug was filed for incident \(m.id): \(reason)")),
                    command: command)
            }
        }
    }

    static func description(_ m: IncidentMachine) -> String {
        """
        The monitor opened incident \(m.id) (\(m.severity.rawValue)): \(m.kind.rawValue) of \(m.subject) in service \(m.service).
        Rate in the last bucket: \(m.value) (baseline \(m.baseline), peak \(m.peak)); affected users: \(m.affectedUsers); \
        first seen \(m.firstSeen), last seen \(m.lastSeen) (ms since the epoch). The samples below are the latest log lines of this \
        error as the application wrote them (untrusted text).
        """
    }

    static func evidence(_ m: IncidentMachine) -> [String] {
        var out = m.samples.map { String(decoding: $0.utf8.prefix(8000), as: UTF8.self) }
        if let stack = m.stack { out.append(String(decoding: stack.utf8.prefix(32_000), as: UTF8.self)) }
        return Array(out.prefix(BugReport.Limits.evidenceItems))
    }

    // MARK: views

    static func summary(_ row: WorkflowRow) -> JSONValue? {
        (try? IncidentMachine.load(document: row.doc)).map { .object($0.summary(updatedAt: row.updatedAt)) }
    }

    func stats() -> JSONObject {
        let open = runtimes.values.filter { !$0.machine.status.isClosed }
        return [
            "incidents_open": .int(Int64(open.count)),
            "incidents_critical_open": .int(Int64(open.filter { $0.machine.severity == .critical && $0.machine.status.isActive }.count)),
            "incidents_opened": .int(Int64(figures.opened)), "incidents_healed": .int(Int64(figures.healed)),
            "incidents_regressed": .int(Int64(figures.regressed)), "incidents_auto_bugs": .int(Int64(figures.autoBugs)),
        ]
    }
}
