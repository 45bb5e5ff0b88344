// LoopExecutors: the real executors of `Executors.swift` on one event loop — the Sandbox module's workspaces,
// bubblewrap test runs and git, and the loop's timers.
import Dispatch
public import EventLoop
import Pipeline
public import Sandbox

/// The loop's timers and the wall clock.
public final class LoopClock: WorkflowClock {
    private let loop: EventLoop

    public init(loop: EventLoop) { self.loop = loop }

    public func nowMilliseconds() -> Int64 { wallClockMilliseconds() }

    public func schedule(afterNanoseconds nanoseconds: UInt64, _ body: @escaping () -> Void) {
        loop.schedule(afterNanoseconds: nanoseconds, body)
    }
}

/// Workspaces on the local disk, test runs as child processes under the isolation the startup probe found.
public final class LocalSandboxExecutor: SandboxExecutor {
    private let loop: EventLoop
    private var isolation: SandboxIsolation?
    private var waiting: [(SandboxIsolation) -> Void] = []

    /// Starts the isolation probe (bubblewrap present and working?); `report` hears its answer once.
    public init(loop: EventLoop, report: @escaping (SandboxIsolation) -> Void = { _ in }) {
        self.loop = loop
        SandboxIsolation.probe(loop: loop) { [weak self] isolation in
            report(isolation)
            guard let self else { return }
            self.isolation = isolation
            let waiting = self.waiting
            self.waiting = []
            for body in waiting { body(isolation) }
        }
    }

    public func whenIsolationKnown(_ body: @escaping (SandboxIsolation) -> Void) {
        if let isolation { body(isolation) } else { waiting.append(body) }
    }

    public func createWorkspace(
        from source: String, parentDirectory: String, completion: @escaping (Result<any SandboxWorkspace, SandboxError>) -> Void
    ) {
        Workspace.create(loop: loop, from: source, parentDirectory: parentDirectory) { [loop] result in
            completion(result.map { LocalWorkspace($0, loop: loop) })
        }
    }

    public func startRun(
        _ configuration: TestRunConfiguration, isolation: SandboxIsolation,
        onLines: @escaping (OutputStream, [String]) -> Void, onFinished: @escaping (TestRunResult) -> Void
    ) -> any RunningTest {
        let run = TestRun(loop: loop, configuration: configuration, isolation: isolation, onLines: onLines, onFinished: onFinished)
        run.start()
        return run
    }

    public func directoryNames(in root: String) -> [String] { SandboxDirectory.entries(in: root) }

    public func removeDirectory(name: String, in root: String, completion: @escaping (Result<Void, SandboxError>) -> Void) {
        SandboxDirectory.remove(name: name, in: root, loop: loop, completion: completion)
    }
}

extension TestRun: RunningTest {}

/// A `Workspace` with the loop it lives on.
final class LocalWorkspace: SandboxWorkspace {
    private let workspace: Workspace
    private let loop: EventLoop

    init(_ workspace: Workspace, loop: EventLoop) {
        self.workspace = workspace
        self.loop = loop
    }

    var path: String { workspace.path }
    var baseCommit: String? { workspace.baseCommit }
    var creationMilliseconds: Int { workspace.creationMilliseconds }

    func apply(_ changes: [WorkspaceChange]) -> Result<AppliedChanges, SandboxError> { workspace.apply(changes) }

    /// The read runs on a global dispatch queue: the file is the untrusted code's (it could sit on a slow or
    /// hung FUSE mount, or be a huge sparse file up to `maxBytes`), and the loop must never wait for it. The
    /// result comes back through the loop's handle (`LoopBound.hop`), the only door between threads.
    func readFile(_ path: String, maxBytes: Int, completion: @escaping (WorkspaceFileRead) -> Void) {
        let bound = LoopBound(completion, loop: loop)
        let root = workspace.path
        DispatchQueue.global().async {
            let read = readWorkspaceFile(path, in: root, maxBytes: maxBytes)
            bound.hop { completion in completion(read) }
        }
    }

    func remove(completion: @escaping (Result<Void, SandboxError>) -> Void) { workspace.remove(loop: loop, completion: completion) }
}

/// `GitRepository` (serialised per repository) as a `GitExecutor`, with the default change limits.
final class LocalGit: GitExecutor {
    private let repository: GitRepository

    init(loop: EventLoop, path: String) { repository = GitRepository(loop: loop, path: path) }

    func headCommit(_ completion: @escaping (Result<String, SandboxError>) -> Void) { repository.headCommit(completion) }

    func applyAndCommit(
        _ changes: [WorkspaceChange], message: String, author: GitAuthor, completion: @escaping (Result<String, SandboxError>) -> Void
    ) {
        repository.applyAndCommit(changes, message: message, author: author, completion: completion)
    }

    func revert(_ commit: String, completion: @escaping (Result<String, SandboxError>) -> Void) { repository.revert(commit, completion: completion) }

    func files(at commit: String, paths: [String], completion: @escaping (Result<[String: CommittedFile], SandboxError>) -> Void) {
        repository.files(at: commit, paths: paths, completion: completion)
    }
}

extension WorkflowExecutors {
    /// The real executors on `loop`: one git executor per repository path, kept for the server's life.
    public static func local(loop: EventLoop, model: any LanguageModel, reportIsolation: @escaping (SandboxIsolation) -> Void) -> WorkflowExecutors {
        var gits: [String: LocalGit] = [:]
        return WorkflowExecutors(
            clock: LoopClock(loop: loop), sandbox: LocalSandboxExecutor(loop: loop, report: reportIsolation),
            git: { path in
                if let git = gits[path] { return git }
                let git = LocalGit(loop: loop, path: path)
                gits[path] = git
                return git
            },
            model: model)
    }
}
