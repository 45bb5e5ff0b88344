// Fakes: every executor of a workflow in memory — a hand-driven clock, repositories with commits, workspaces
// and test runs whose outcome the test decides from the files, a scripted language model, and a store that
// commits when the test says so. No sockets, no child processes, no sleeps: time moves only in `run`/`advance`.
import EventLoop
import Logging
@testable import MedicHost
import Pipeline
import Protocol
@testable import Sandbox
import Store
import Testing

/// Time and timers under the test's control. `schedule` never runs its body inline.
final class FakeClock: WorkflowClock {
    private(set) var now: Int64 = 1_000_000
    private var timers: [(due: Int64, order: Int, body: () -> Void)] = []
    private var order = 0

    func nowMilliseconds() -> Int64 { now }

    func schedule(afterNanoseconds nanoseconds: UInt64, _ body: @escaping () -> Void) {
        order += 1
        timers.append((now + Int64(nanoseconds / 1_000_000), order, body))
    }

    /// Runs every timer that is due, including those they schedule, until none is.
    func run() {
        while let next = timers.indices.filter({ timers[$0].due <= now }).min(by: { (timers[$0].due, timers[$0].order) < (timers[$1].due, timers[$1].order) }) {
            let timer = timers.remove(at: next)
            timer.body()
        }
    }

    /// Moves time forward by `milliseconds`, running timers as they fall due.
    func advance(milliseconds: Int64) {
        let end = now + milliseconds
        while let due = timers.map(\.due).filter({ $0 <= end }).min() {
            now = max(now, due)
            run()
        }
        now = end
        run()
    }
}

/// A repository: files at HEAD, commits, and what it answers.
final class FakeGit: GitExecutor {
    let clock: FakeClock
    var files: [String: String]
    private(set) var commits: [(id: String, message: String, files: [String: String])] = []
    var failApply: String?

    init(clock: FakeClock, files: [String: String]) {
        self.clock = clock
        self.files = files
        commits = [("c0", "initial", files)]
    }

    var head: String { commits.last!.id }

    /// Someone else commits to the repository (it moves under a proposal).
    func commitByOthers(_ changes: [String: String]) {
        for (path, content) in changes { files[path] = content }
        commits.append(("c\(commits.count)", "by others", files))
    }

    func headCommit(_ completion: @escaping (Result<String, SandboxError>) -> Void) {
        let head = head
        clock.schedule(afterNanoseconds: 0) { completion(.success(head)) }
    }

    func applyAndCommit(
        _ changes: [WorkspaceChange], message: String, author: GitAuthor, completion: @escaping (Result<String, SandboxError>) -> Void
    ) {
        if let failApply {
            clock.schedule(afterNanoseconds: 0) { completion(.failure(.invalidArgument("apply", failApply))) }
            return
        }
        for change in changes {
            switch change.action {
            case .delete: files[change.path] = nil
            case .create, .modify: files[change.path] = change.content ?? ""
            }
        }
        commits.append(("c\(commits.count)", message, files))
        let id = head
        clock.schedule(afterNanoseconds: 0) { completion(.success(id)) }
    }

    func revert(_ commit: String, completion: @escaping (Result<String, SandboxError>) -> Void) {
        guard let index = commits.firstIndex(where: { $0.id == commit }), index > 0 else {
            clock.schedule(afterNanoseconds: 0) { completion(.failure(.invalidArgument(commit, "no such commit"))) }
            return
        }
        files = commits[index - 1].files
        commits.append(("c\(commits.count)", "Revert \(commit)", files))
        let id = head
        clock.schedule(afterNanoseconds: 0) { completion(.success(id)) }
    }

    func files(at commit: String, paths: [String], completion: @escaping (Result<[String: CommittedFile], SandboxError>) -> Void) {
        let tree = commits.first { $0.id == commit }?.files ?? [:]
        var out: [String: CommittedFile] = [:]
        for path in paths { out[path] = tree[path].map { .text($0) } ?? .absent }
        clock.schedule(afterNanoseconds: 0) { completion(.success(out)) }
    }
}

/// A workspace: a copy of a repository's files.
final class FakeWorkspace: SandboxWorkspace {
    let clock: FakeClock
    let path: String
    let baseCommit: String?
    let creationMilliseconds = 3
    var files: [String: String]
    private(set) var removed = false

    init(clock: FakeClock, path: String, baseCommit: String?, files: [String: String]) {
        self.clock = clock
        self.path = path
        self.baseCommit = baseCommit
        self.files = files
    }

    func apply(_ changes: [WorkspaceChange]) -> Result<AppliedChanges, SandboxError> {
        var applied = AppliedChanges()
        for change in changes {
            switch change.action {
            case .delete:
                guard files.removeValue(forKey: change.path) != nil else { return .failure(.invalidArgument(change.path, "no such file")) }
                applied.deleted.append(change.path)
            case .modify:
                guard files[change.path] != nil else { return .failure(.invalidArgument(change.path, "no such file")) }
                files[change.path] = change.content ?? ""
                applied.modified.append(change.path)
            case .create:
                files[change.path] = change.content ?? ""
                applied.created.append(change.path)
            }
        }
        return .success(applied)
    }

    func readFile(_ path: String, maxBytes: Int, completion: @escaping (WorkspaceFileRead) -> Void) {
        let read: WorkspaceFileRead = files[path].map { .file(bytes: Array($0.utf8.prefix(maxBytes)), size: $0.utf8.count) } ?? .missing
        clock.schedule(afterNanoseconds: 0) { completion(read) }
    }

    func remove(completion: @escaping (Result<Void, SandboxError>) -> Void) {
        removed = true
        clock.schedule(afterNanoseconds: 0) { completion(.success(())) }
    }
}

/// A test run that ends when the clock next runs, with the outcome the test's `judge` gives.
final class FakeRun: RunningTest {
    private(set) var cancelled = false
    func cancel() { cancelled = true }
}

/// What one run is: where, which command, and the files it sees.
struct RunContext {
    var workspacePath: String
    var command: String
    var files: [String: String]
}

/// What a run prints and how it ends.
struct RunOutcome {
    var lines: [String]
    var exitCode: Int32

    static func pass(_ lines: [String] = ["3 passed"]) -> RunOutcome { RunOutcome(lines: lines, exitCode: 0) }
    static func fail(_ lines: [String]) -> RunOutcome { RunOutcome(lines: lines, exitCode: 1) }
}

final class FakeSandbox: SandboxExecutor {
    let clock: FakeClock
    /// Repositories by path.
    var repositories: [String: FakeGit] = [:]
    /// Decides each run's outcome (default: pass).
    var judge: (RunContext) -> RunOutcome = { _ in .pass() }
    private(set) var runs: [RunContext] = []
    private(set) var workspaces: [FakeWorkspace] = []
    private(set) var removedDirectories: [String] = []
    var directories: [String] = []
    /// Runs started while true never finish.
    var park = false
    private var counter = 0

    init(clock: FakeClock) { self.clock = clock }

    func whenIsolationKnown(_ body: @escaping (SandboxIsolation) -> Void) { body(SandboxIsolation(mode: .bwrap)) }

    func createWorkspace(
        from source: String, parentDirectory: String, completion: @escaping (Result<any SandboxWorkspace, SandboxError>) -> Void
    ) {
        counter += 1
        let git = repositories[source]
        let workspace = FakeWorkspace(clock: clock, path: "\(parentDirectory)/ws-\(counter)", baseCommit: git?.head, files: git?.files ?? [:])
        workspaces.append(workspace)
        clock.schedule(afterNanoseconds: 0) {
            completion(git == nil ? .failure(.invalidArgument(source, "no repository")) : .success(workspace))
        }
    }

    func startRun(
        _ configuration: TestRunConfiguration, isolation: SandboxIsolation,
        onLines: @escaping (OutputStream, [String]) -> Void, onFinished: @escaping (TestRunResult) -> Void
    ) -> any RunningTest {
        let files = workspaces.last { $0.path == configuration.workspacePath }?.files ?? repositories[configuration.workspacePath]?.files ?? [:]
        let context = RunContext(workspacePath: configuration.workspacePath, command: configuration.testCommand, files: files)
        runs.append(context)
        let outcome = judge(context)
        let run = FakeRun()
        guard !park else { return run }  // never finishes: the server "stops" while it runs
        clock.schedule(afterNanoseconds: 0) {
            guard !run.cancelled else {
                return onFinished(TestRunResult(exitCode: nil, signal: 9, cancelled: true, durationMs: 1))
            }
            if !outcome.lines.isEmpty { onLines(.stdout, outcome.lines) }
            onFinished(TestRunResult(
                exitCode: outcome.exitCode, durationMs: 7, outputTail: outcome.lines.joined(separator: "\n") + "\n", isolation: isolation.mode))
        }
        return run
    }

    func directoryNames(in root: String) -> [String] { directories }

    func removeDirectory(name: String, in root: String, completion: @escaping (Result<Void, SandboxError>) -> Void) {
        removedDirectories.append(name)
        directories.removeAll { $0 == name }
        clock.schedule(afterNanoseconds: 0) { completion(.success(())) }
    }
}

/// Answers model requests from a queue of reply texts; records every request.
final class FakeModel: LanguageModel {
    let name = "fake"
    let clock: FakeClock
    var replies: [String] = []
    private(set) var requests: [ModelRequest] = []

    init(clock: FakeClock) { self.clock = clock }

    func complete(
        _ request: ModelRequest, onDelta: @escaping (ModelDelta) -> Void, completion: @escaping (Result<ModelResponse, ModelError>) -> Void
    ) {
        requests.append(request)
        guard !replies.isEmpty else {
            clock.schedule(afterNanoseconds: 0) { completion(.failure(ModelError("no scripted reply"))) }
            return
        }
        let text = replies.removeFirst()
        clock.schedule(afterNanoseconds: 0) {
            onDelta(.text(text))
            completion(.success(ModelResponse(content: [.text(text)], stopReason: "end_turn", usage: ModelUsage(inputTokens: 10, outputTokens: 5))))
        }
    }
}

/// The store and publisher: every write is kept (with per-topic seqs); the proposal rows form the "stored"
/// state a restarted service loads. Commits complete at the next clock run, or only on `release()` when held.
final class FakeStore: Publisher, ProposalRecords {
    let clock: FakeClock
    private(set) var writes: [StoreWrite] = []
    private(set) var events: [String: [(seq: Int64, kind: String, data: JSONValue)]] = [:]
    private(set) var ephemeral: [(topic: String, kind: String)] = []
    private(set) var rows: [String: ProposalRow] = [:]
    private(set) var revisions: [String: [Int: RevisionRow]] = [:]
    private(set) var commands: [String: String] = [:]
    private(set) var loads = 0
    /// While true, commits wait for `release()`.
    var hold = false
    private var held: [() -> Void] = []
    /// The next commits fail with this error.
    var failNext = 0

    init(clock: FakeClock) { self.clock = clock }

    func commit(_ write: StoreWrite, completion: @escaping (Result<WriteOutcome, StoreError>) -> Void) {
        let work = { [self] in
            if failNext > 0 {
                failNext -= 1
                return completion(.failure(StoreError(code: StoreError.storeUnavailable, message: "fake store down")))
            }
            if let command = write.command, let response = commands[command.principal + "\u{0}" + command.commandId] {
                return completion(.success(.duplicateCommand(response: response)))
            }
            writes.append(write)
            if let command = write.command { commands[command.principal + "\u{0}" + command.commandId] = command.response }
            for row in write.proposals { rows[row.id] = row }
            for row in write.revisions { revisions[row.proposalId, default: [:]][row.number] = row }
            var stored: [StoredEvent] = []
            for event in write.events {
                let seq = Int64((events[event.topic]?.count ?? 0) + 1)
                events[event.topic, default: []].append((seq, event.kind, (try? JSONValue.parse(event.data)) ?? .null))
                stored.append(StoredEvent(topic: event.topic, seq: seq, ts: event.ts, kind: event.kind, data: event.data))
            }
            completion(.success(.committed(stored)))
        }
        if hold { held.append(work) } else { clock.schedule(afterNanoseconds: 0, work) }
    }

    /// Lets held commits complete, one clock turn each, in order.
    func release() {
        hold = false
        let pending = held
        held = []
        for work in pending { clock.schedule(afterNanoseconds: 0, work) }
    }

    var heldCount: Int { held.count }

    /// Damages a stored record (as a bad migration or a hand edit would).
    func corrupt(_ id: String) { rows[id]?.doc = "{\"not\": \"a proposal\"}" }

    func publishEphemeral(topic: String, kind: String, data: JSONValue) { ephemeral.append((topic, kind)) }

    func kinds(_ topic: String) -> [String] { events[topic]?.map(\.kind) ?? [] }

    func statuses(_ id: String) -> [String] {
        events["proposal:\(id)"]?.compactMap { $0.kind == "status_changed" ? $0.data["status"]?.stringValue : nil } ?? []
    }

    // ProposalRecords

    func load(_ id: String, completion: @escaping (Result<StoredProposal?, StoreError>) -> Void) {
        loads += 1
        let stored = rows[id].map { StoredProposal(row: $0, revisions: (revisions[id] ?? [:]).values.sorted { $0.number < $1.number }) }
        clock.schedule(afterNanoseconds: 0) { completion(.success(stored)) }
    }

    func loadAll(statuses: [String]) throws -> [StoredProposal] {
        rows.values.filter { statuses.contains($0.status) }.sorted { $0.createdAt < $1.createdAt }.map {
            StoredProposal(row: $0, revisions: (revisions[$0.id] ?? [:]).values.sorted { $0.number < $1.number })
        }
    }

    func figures(passingStatuses: [String]) throws -> ProposalFigures {
        // What a restarted server would read: recomputed here from the stored records.
        var figures = ProposalFigures()
        let decoder = RecordDecoder()
        for row in rows.values {
            if let machine = decoder.machine(row, revisions: (revisions[row.id] ?? [:]).values.sorted { $0.number < $1.number }) {
                figures.count(machine, sign: 1)
            }
        }
        return figures
    }
}

/// Decodes a stored proposal the way the service does (its own `makeRuntime`), for assertions.
struct RecordDecoder {
    func machine(_ row: ProposalRow, revisions: [RevisionRow]) -> ProposalMachine? {
        let service = PipelineService(
            sink: NullSink(), configuration: MedicConfiguration(), executors: World.nullExecutors, records: NullRecords(),
            logger: Logger(label: "decoder"))
        return service.makeRuntime(StoredProposal(row: row, revisions: revisions))?.machine
    }
}

final class NullSink: Publisher {
    func commit(_ write: StoreWrite, completion: @escaping (Result<WriteOutcome, StoreError>) -> Void) {}
    func publishEphemeral(topic: String, kind: String, data: JSONValue) {}
}

final class NullRecords: ProposalRecords {
    func load(_ id: String, completion: @escaping (Result<StoredProposal?, StoreError>) -> Void) {}
    func loadAll(statuses: [String]) throws -> [StoredProposal] { [] }
    func figures(passingStatuses: [String]) throws -> ProposalFigures { ProposalFigures() }
}

/// One Medic pipeline on fakes: a repository `demo` at `/repo/demo`, and helpers to drive it.
final class World {
    let clock = FakeClock()
    let sandbox: FakeSandbox
    let model: FakeModel
    let store: FakeStore
    let git: FakeGit
    var configuration = MedicConfiguration()
    private(set) var service: PipelineService!

    static var nullExecutors: WorkflowExecutors {
        let clock = FakeClock()
        return WorkflowExecutors(clock: clock, sandbox: FakeSandbox(clock: clock), git: { _ in FakeGit(clock: clock, files: [:]) }, model: FakeModel(clock: clock))
    }

    init(files: [String: String] = ["calc.py": "def add(a, b):\n    return a + b\n", "test_calc.py": "assert add(2, 2) == 4\n"],
         configure: (inout MedicConfiguration) -> Void = { _ in }) throws {
        sandbox = FakeSandbox(clock: clock)
        model = FakeModel(clock: clock)
        store = FakeStore(clock: clock)
        git = FakeGit(clock: clock, files: files)
        sandbox.repositories["/repo/demo"] = git
        configuration.repositories = [RepositoryConfig(name: "demo", path: "/repo/demo", testCommand: "pytest -q")]
        configure(&configuration)
        // The tests pass when calc.py adds.
        sandbox.judge = { run in
            run.files["calc.py"]?.contains("a + b") == true ? .pass() : .fail(["FAILED test_calc.py::test_add - AssertionError: assert 0 == 4", "1 failed"])
        }
        try restart()
    }

    /// A new service on the same store and executors, as after a server restart.
    func restart() throws {
        let git = git
        service = PipelineService(
            sink: store, configuration: configuration,
            executors: WorkflowExecutors(clock: clock, sandbox: sandbox, git: { _ in git }, model: model), records: store,
            logger: Logger(label: "test"))
        try service.recover()
        clock.run()
    }

    /// Runs a command to its answer (the clock runs until nothing is due).
    @discardableResult
    func command(_ message: ClientMessage, id: String? = nil, as principal: Principal) -> Result<JSONObject, ProtocolError> {
        var answer: Result<JSONObject, ProtocolError>?
        service.execute(message, commandID: id, principal: principal) { answer = $0 }
        clock.run()
        return answer ?? .failure(ProtocolError(code: .internal, message: "no answer (held?)"))
    }

    /// Sends a command without running the clock; the answer lands in `answers` by tag.
    func send(_ message: ClientMessage, id: String? = nil, as principal: Principal, tag: String, into answers: Answers) {
        service.execute(message, commandID: id, principal: principal) { answers.all.append((tag, $0)) }
    }

    func propose(_ changes: [FileChange], title: String = "fix add", as principal: Principal = World.bot) throws -> String {
        let answer = try command(.propose(ProposeCommand(title: title, description: "d", changes: changes)), as: principal).get()
        return try #require(answer["proposal"]?.stringValue)
    }

    func status(_ id: String) -> String? { store.rows[id]?.status }

    static let bot = Principal(name: "bot", role: .bot)
    static let alice = Principal(name: "alice", role: .admin)
    static let bob = Principal(name: "bob", role: .admin)
}

final class Answers {
    var all: [(tag: String, result: Result<JSONObject, ProtocolError>)] = []
}

/// A fix reply as the model writes it.
func fixReply(_ changes: [(String, String)], explanation: String = "use +") -> String {
    let files = changes.map { #"{"path":"\#($0.0)","action":"modify","content":\#(JSONValue.string($0.1).jsonString)}"# }
    return #"{"unfixable":false,"explanation":"\#(explanation)","changes":[\#(files.joined(separator: ","))]}"#
}

let brokenAdd = FileChange(path: "calc.py", action: .modify, content: "def add(a, b):\n    return a - b\n")
let goodAdd = "def add(a, b):\n    return a + b\n"
