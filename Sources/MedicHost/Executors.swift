// Executors: what a workflow's steps run on — the clock, sandboxes and test runs, git, the language model —
// as protocols. `LoopExecutors.swift` has the real ones (the Sandbox module, libcurl); Tests/MedicHostTests
// drives whole proposals against fakes, with no sockets, no bubblewrap and no sleeps. All loop-bound: every
// method is called on the loop thread and calls back on it.
public import Pipeline
public import Sandbox
public import EventLoop

/// Time for workflows: the wall clock for timestamps, and timers. Tests advance a fake one by hand.
public protocol WorkflowClock: AnyObject {
    /// Milliseconds since the Unix epoch.
    func nowMilliseconds() -> Int64
    /// Runs `body` on the loop after `nanoseconds` (0: at the next turn, never inline).
    func schedule(afterNanoseconds nanoseconds: UInt64, _ body: @escaping () -> Void)
}

/// Sandboxes: workspaces copied from a repository, test runs inside them, and their directories.
public protocol SandboxExecutor: AnyObject {
    /// Calls `body` with the isolation test runs get once it is known (the startup probe), at once if known.
    func whenIsolationKnown(_ body: @escaping (SandboxIsolation) -> Void)
    /// A new workspace under `parentDirectory`, copied from the repository at `source`.
    func createWorkspace(
        from source: String, parentDirectory: String, completion: @escaping (Result<any SandboxWorkspace, SandboxError>) -> Void)
    /// Starts a run of the configured commands; `onLines` streams output, `onFinished` reports once.
    func startRun(
        _ configuration: TestRunConfiguration, isolation: SandboxIsolation,
        onLines: @escaping (OutputStream, [String]) -> Void, onFinished: @escaping (TestRunResult) -> Void) -> any RunningTest
    /// Names of the directories under `root` (one per workflow instance); blocking, for startup only.
    func directoryNames(in root: String) -> [String]
    /// Removes `root/name` and everything below it.
    func removeDirectory(name: String, in root: String, completion: @escaping (Result<Void, SandboxError>) -> Void)
}

/// One workspace (a private copy of a repository).
public protocol SandboxWorkspace: AnyObject {
    var path: String { get }
    /// The commit the copy was made from (nil: not a git repository).
    var baseCommit: String? { get }
    var creationMilliseconds: Int { get }
    /// Writes a change set (never following symlinks; bounded).
    func apply(_ changes: [WorkspaceChange]) -> Result<AppliedChanges, SandboxError>
    /// Reads a file for a prompt without following symlinks, regular files only, at most `maxBytes`; the
    /// workspace is untrusted (the code under test ran in it). Answers on the loop, never blocking it.
    func readFile(_ path: String, maxBytes: Int, completion: @escaping (WorkspaceFileRead) -> Void)
    func remove(completion: @escaping (Result<Void, SandboxError>) -> Void)
}

/// A test run in progress.
public protocol RunningTest: AnyObject {
    /// Kills the run; `onFinished` still reports (cancelled).
    func cancel()
}

/// One repository's git operations (serialised per repository by the implementation).
public protocol GitExecutor: AnyObject {
    func headCommit(_ completion: @escaping (Result<String, SandboxError>) -> Void)
    /// Writes, stages exactly `changes` and commits them; the new commit id.
    func applyAndCommit(
        _ changes: [WorkspaceChange], message: String, author: GitAuthor, completion: @escaping (Result<String, SandboxError>) -> Void)
    /// Reverts `commit` with a new commit; its id.
    func revert(_ commit: String, completion: @escaping (Result<String, SandboxError>) -> Void)
    /// The files at `commit` (text, absent, or omitted when too large or binary).
    func files(at commit: String, paths: [String], completion: @escaping (Result<[String: CommittedFile], SandboxError>) -> Void)
}

/// A language model: one request, streamed deltas, one complete answer or an error. General (system, turns,
/// tools, usage): the fix loop is one caller, bug analysis and plain-language questions are the next.
public protocol LanguageModel: AnyObject {
    /// "scripted", "anthropic", "fake" … (logs, /metrics).
    var name: String { get }
    func complete(
        _ request: ModelRequest, onDelta: @escaping (ModelDelta) -> Void, completion: @escaping (Result<ModelResponse, ModelError>) -> Void)
}

/// Everything a workflow's steps run on.
public struct WorkflowExecutors {
    public var clock: any WorkflowClock
    public var sandbox: any SandboxExecutor
    /// The git executor of the repository at a path (the same object for the same path: it serialises).
    public var git: (String) -> any GitExecutor
    public var model: any LanguageModel

    public init(clock: any WorkflowClock, sandbox: any SandboxExecutor, git: @escaping (String) -> any GitExecutor, model: any LanguageModel) {
        self.clock = clock
        self.sandbox = sandbox
        self.git = git
        self.model = model
    }
}

/// Which stream a run's output came from (EventLoop's `OutputStream`; Foundation has a type of that name too,
/// and files that import both use this one).
public typealias RunOutputStream = OutputStream
