// TestRun: the executor that runs a revision's setup and test commands in a workspace, isolated, bounded, streamed.
public import EventLoop
import Glibc

/// Which command of a run decided its result.
public enum TestRunPhase: String, Sendable, Equatable {
    case setup, test
}

/// What one test run did (the data of `test_finished`).
public struct TestRunResult: Sendable, Equatable {
    /// Exit code of the deciding command; nil when it was killed by a signal or never started.
    public var exitCode: Int32?
    /// The signal that ended the deciding command (SIGKILL after a timeout), if any.
    public var signal: Int32?
    public var timedOut: Bool
    /// Cancelled by `TestRun.cancel()` (server shutting down, proposal withdrawn).
    public var cancelled: Bool
    public var durationMs: Int
    /// Output beyond `OutputLimits.maxEmittedBytes` was counted but not emitted.
    public var truncated: Bool
    /// The last ~64 KiB of output (`OutputLimits.tailBytes`), emitted or not, for failure analysis.
    public var outputTail: String
    /// `setup` when the setup command failed (the test command then did not run).
    public var phase: TestRunPhase
    public var isolation: SandboxIsolation.Mode
    /// Why a command could not be started at all.
    public var spawnError: String?
    /// Killed because it printed more than `OutputLimits.killAfterBytes`.
    public var outputLimitExceeded: Bool
    /// The workspace grew past `TestRunConfiguration.diskQuotaBytes` (the run was killed, or ended over it).
    public var diskQuotaExceeded: Bool

    public init(
        exitCode: Int32?, signal: Int32? = nil, timedOut: Bool = false, cancelled: Bool = false, durationMs: Int,
        truncated: Bool = false, outputTail: String = "", phase: TestRunPhase = .test,
        isolation: SandboxIsolation.Mode = .none, spawnError: String? = nil, outputLimitExceeded: Bool = false,
        diskQuotaExceeded: Bool = false
    ) {
        self.exitCode = exitCode
        self.signal = signal
        self.timedOut = timedOut
        self.cancelled = cancelled
        self.durationMs = durationMs
        self.truncated = truncated
        self.outputTail = outputTail
        self.phase = phase
        self.isolation = isolation
        self.spawnError = spawnError
        self.outputLimitExceeded = outputLimitExceeded
        self.diskQuotaExceeded = diskQuotaExceeded
    }

    /// Exit code 0 within the time limit.
    public var passed: Bool {
        exitCode == 0 && !timedOut && !cancelled && !outputLimitExceeded && !diskQuotaExceeded && phase == .test
    }
}

/// What to run and under which bounds.
public struct TestRunConfiguration: Sendable {
    /// The workspace directory (the commands' working directory; the only writable place under bwrap).
    public var workspacePath: String
    /// Run first, with `/bin/sh -c`; a non-zero exit ends the run without running the tests.
    public var setupCommand: String?
    /// Run with `/bin/sh -c` in the workspace.
    public var testCommand: String
    /// Wall-clock bound on the whole run (setup + test). Default 300 s. At the deadline the process group
    /// (and with bwrap its pid namespace, so every descendant) gets SIGKILL and the result says `timedOut`.
    public var timeoutNanoseconds: UInt64
    /// Applied to the commands (and inherited by their children). Default `ResourceLimits.sandboxDefault`.
    public var limits: ResourceLimits
    public var output: OutputLimits
    /// Keep the network namespace of the server (default false: `--unshare-net`, loopback only, down).
    public var allowNetwork: Bool
    /// Added to the minimal environment (PATH, HOME=workspace, TMPDIR=/tmp, LANG=C.UTF-8, TERM=dumb,
    /// CI=1). The server's own environment is *not* inherited: it may hold API keys.
    public var environment: [String: String]
    public var shell: String
    /// What the run can see under bwrap (ignored unisolated).
    public var view: SandboxView
    /// Most bytes the workspace may hold (its repository copy included); nil: unbounded. Checked with
    /// `du` in a child process every `diskCheckIntervalNanoseconds` while the run goes and once when it
    /// ends; over it, the process tree is killed and the result says `diskQuotaExceeded`. A test writing
    /// faster than the checks can overshoot by what it writes in one interval (bounded per file by
    /// RLIMIT_FSIZE); bwrap's /tmp is a tmpfs bounded by `view.tmpSizeBytes` instead (writes fail ENOSPC).
    public var diskQuotaBytes: Int?
    public var diskCheckIntervalNanoseconds: UInt64

    public init(
        workspacePath: String, setupCommand: String? = nil, testCommand: String,
        timeoutNanoseconds: UInt64 = 300_000_000_000, limits: ResourceLimits = .sandboxDefault,
        output: OutputLimits = OutputLimits(), allowNetwork: Bool = false, environment: [String: String] = [:],
        shell: String = "/bin/sh", view: SandboxView = SandboxView(), diskQuotaBytes: Int? = nil,
        diskCheckIntervalNanoseconds: UInt64 = 500_000_000
    ) {
        self.workspacePath = workspacePath
        self.setupCommand = setupCommand
        self.testCommand = testCommand
        self.timeoutNanoseconds = timeoutNanoseconds
        self.limits = limits
        self.output = output
        self.allowNetwork = allowNetwork
        self.environment = environment
        self.shell = shell
        self.view = view
        self.diskQuotaBytes = diskQuotaBytes
        self.diskCheckIntervalNanoseconds = diskCheckIntervalNanoseconds
    }
}

extension ResourceLimits {
    /// Defaults for test commands: 300 CPU-seconds, 4 GiB address space, 1,024 processes, 256 MiB per
    /// file. RLIMIT_NPROC counts every process of the *user* (and is not enforced for root), so it is a
    /// fork-bomb brake, not an exact bound; with bwrap the pid namespace is torn down at the end anyway.
    /// RLIMIT_AS is virtual memory: runtimes that reserve large heaps (JVM, some JITs) need more.
    public static let sandboxDefault = ResourceLimits(
        cpuSeconds: 300, addressSpaceBytes: 4 << 30, processes: 1024, fileSizeBytes: 256 << 20)
}

/// Runs `setupCommand` (optional) then `testCommand` in a workspace, on the loop: output is split into
/// lines, capped, and delivered in batches once per loop tick through `onLines`; `onFinished` runs once,
/// after the last lines. Keep a reference only if you want to `cancel()`; the run keeps itself alive.
public final class TestRun {
    public let configuration: TestRunConfiguration
    public let isolation: SandboxIsolation
    private let loop: EventLoop
    private let onLines: (OutputStream, [String]) -> Void
    private let onFinished: (TestRunResult) -> Void
    private var collector: OutputCollector
    private var child: ChildProcess?
    private var startedAt: UInt64 = 0
    private var deadlineTimer: TimerID?
    private var batchScheduled = false
    private var timedOut = false
    private var cancelled = false
    private var outputLimitExceeded = false
    private var diskQuotaExceeded = false
    /// A `du` of the workspace is running (at most one at a time); these run when it is done.
    private var diskCheckInFlight = false
    private var diskCheckWaiters: [() -> Void] = []
    private var diskTimer: TimerID?
    /// The last command ended; its result waits for the final disk check.
    private var ending: (phase: TestRunPhase, status: ProcessExit?)?
    private var finished = false
    private var started = false
    /// Holds the run alive while it runs (the loop's callbacks hold it too, but a timer may be all there is).
    private var keepAlive: TestRun?

    public init(
        loop: EventLoop, configuration: TestRunConfiguration, isolation: SandboxIsolation,
        onLines: @escaping (OutputStream, [String]) -> Void, onFinished: @escaping (TestRunResult) -> Void
    ) {
        self.loop = loop
        self.configuration = configuration
        self.isolation = isolation
        self.onLines = onLines
        self.onFinished = onFinished
        self.collector = OutputCollector(limits: configuration.output)
    }

    /// Starts the run (once). `onCommandStarted`, if given, is called with each command as it starts.
    public func start(onCommandStarted: ((TestRunPhase, String) -> Void)? = nil) {
        guard !started else { return }
        started = true
        keepAlive = self
        startedAt = monotonicNanoseconds()
        deadlineTimer = loop.schedule(afterNanoseconds: configuration.timeoutNanoseconds) { [weak self] in
            guard let self, !self.finished else { return }
            self.timedOut = true
            self.child?.kill(signal: SIGKILL)
        }
        scheduleDiskCheck()
        if let setup = configuration.setupCommand {
            run(.setup, setup, onCommandStarted) { [weak self] status in
                guard let self else { return }
                if status == .exited(0) && !self.timedOut && !self.cancelled && !self.outputLimitExceeded && !self.diskQuotaExceeded {
                    self.run(.test, self.configuration.testCommand, onCommandStarted) { [weak self] status in
                        self?.end(.test, status)
                    }
                } else {
                    if case .exited(let code) = status, !self.timedOut, !self.cancelled {
                        self.collector.note(.stderr, "[medic] setup command failed with exit code \(code); tests not run")
                    }
                    self.end(.setup, status)
                }
            }
        } else {
            run(.test, configuration.testCommand, onCommandStarted) { [weak self] status in self?.end(.test, status) }
        }
    }

    /// Kills the running command's whole tree; `onFinished` follows with `cancelled`.
    public func cancel() {
        guard started, !finished else { return }
        cancelled = true
        child?.kill(signal: SIGKILL)
    }

    /// The environment the commands see (nothing inherited from the server but PATH).
    private var environment: [String: String] {
        let path = getenv("PATH").map { String(cString: $0) } ?? "/usr/local/bin:/usr/bin:/bin"
        var env = ["PATH": path, "HOME": configuration.workspacePath, "TMPDIR": "/tmp", "LANG": "C.UTF-8",
                   "TERM": "dumb", "CI": "1"]
        for (key, value) in configuration.environment { env[key] = value }
        return env
    }

    private var spawnError: String?

    private func run(_ phase: TestRunPhase, _ command: String, _ onStarted: ((TestRunPhase, String) -> Void)?,
                     then: @escaping (ProcessExit?) -> Void) {
        onStarted?(phase, command)
        let executable: String
        var arguments: [String]
        if isolation.mode == .bwrap, let bwrap = isolation.bwrapPath {
            executable = bwrap
            arguments = SandboxIsolation.bwrapArguments(
                workspace: configuration.workspacePath, allowNetwork: configuration.allowNetwork, view: configuration.view)
            arguments += ["--", configuration.shell, "-c", command]
        } else {
            executable = configuration.shell
            arguments = ["-c", command]
        }
        do {
            child = try ChildProcess(
                loop: loop, executable: executable, arguments: arguments, environment: environment,
                workingDirectory: configuration.workspacePath, limits: configuration.limits, killGroupOnExit: true,
                onOutput: { [weak self] stream, bytes in self?.ingest(stream, bytes) },
                onExit: { [weak self] status in
                    guard let self else { return }
                    self.child = nil
                    self.collector.flushAllPartials()
                    then(status)
                })
        } catch {
            spawnError = "\(error)"
            collector.note(.stderr, "[medic] could not start \(phase.rawValue) command: \(error)")
            loop.schedule(afterNanoseconds: 0) { then(nil) }
        }
    }

    private func ingest(_ stream: OutputStream, _ bytes: UnsafeRawBufferPointer) {
        guard !outputLimitExceeded else { return }
        if collector.totalBytes + bytes.count > configuration.output.killAfterBytes {
            outputLimitExceeded = true
            child?.kill(signal: SIGKILL)
            collector.note(.stderr, "[medic] output exceeded \(configuration.output.killAfterBytes) bytes: process tree killed")
            scheduleBatch()
            return
        }
        if let generation = collector.ingest(stream, bytes) {
            loop.schedule(afterNanoseconds: configuration.output.partialLineFlushNanoseconds) { [weak self] in
                guard let self, !self.finished else { return }
                self.collector.flushPartial(stream, generation: generation)
                self.deliver()
            }
        }
        scheduleBatch()
    }

    /// Batches lines per loop tick: the first chunk of a tick arms a 0-delay timer, which runs at the start
    /// of the next tick after every readable pipe of this tick was read. (A before-sleep hook would do the
    /// same, but hooks cannot be removed and a run is short-lived.)
    private func scheduleBatch() {
        guard collector.hasPending, !batchScheduled else { return }
        batchScheduled = true
        loop.schedule(afterNanoseconds: 0) { [weak self] in
            guard let self else { return }
            self.batchScheduled = false
            if !self.finished { self.deliver() }
        }
    }

    private func deliver() {
        for batch in collector.takePending() { onLines(batch.stream, batch.lines) }
    }

    // MARK: disk quota

    private func scheduleDiskCheck() {
        guard configuration.diskQuotaBytes != nil else { return }
        diskTimer = loop.schedule(afterNanoseconds: configuration.diskCheckIntervalNanoseconds) { [weak self] in
            guard let self, !self.finished, self.ending == nil else { return }
            self.checkDisk { [weak self] in self?.scheduleDiskCheck() }
        }
    }

    /// Measures the workspace with `du` (a child process: the walk never runs on the loop thread) and kills
    /// the run when it is over the quota. `then` runs once the measurement running now is done.
    private func checkDisk(then: @escaping () -> Void) {
        guard let quota = configuration.diskQuotaBytes, !diskQuotaExceeded else { return then() }
        diskCheckWaiters.append(then)
        guard !diskCheckInFlight else { return }
        diskCheckInFlight = true
        let du = ExecutableLocator.find("du") ?? "/usr/bin/du"
        // -s total, -x one file system, -B1 allocated bytes (sparse files count what they really use); du
        // follows no symlinks (its default -P).
        CommandRunner.run(loop: loop, executable: du, arguments: ["-s", "-x", "-B1", "--", configuration.workspacePath],
                          timeoutNanoseconds: 120_000_000_000) { [weak self] result in
            guard let self else { return }
            self.diskCheckInFlight = false
            // du exits 1 when files vanish during the walk; the total it prints is still the measurement.
            if case .success(let output) = result, let used = output.stdout.split(separator: "\t").first.flatMap({ Int($0) }),
               used > quota, !self.finished {
                self.diskQuotaExceeded = true
                let outcome = self.ending == nil ? "process tree killed" : "the run failed"
                self.collector.note(.stderr, "[medic] disk quota exceeded: the workspace holds \(used) bytes, the quota is \(quota): \(outcome)")
                self.child?.kill(signal: SIGKILL)
                self.scheduleBatch()
            }
            let waiters = self.diskCheckWaiters
            self.diskCheckWaiters = []
            for waiter in waiters { waiter() }
        }
    }

    /// The last command ended: one more, fresh disk check (a test may fill the disk between two checks and
    /// exit), then the result.
    private func end(_ phase: TestRunPhase, _ status: ProcessExit?) {
        guard ending == nil, !finished else { return }
        ending = (phase, status)
        if let diskTimer { loop.cancel(diskTimer) }
        guard configuration.diskQuotaBytes != nil, !diskQuotaExceeded, !cancelled else { return finish(phase, status) }
        let finalCheck = { [weak self] in
            guard let self else { return }
            self.checkDisk { [weak self] in self?.finish(phase, status) }
        }
        if diskCheckInFlight { diskCheckWaiters.append(finalCheck) } else { finalCheck() }
    }

    private func finish(_ phase: TestRunPhase, _ status: ProcessExit?) {
        guard !finished else { return }
        finished = true
        if let deadlineTimer { loop.cancel(deadlineTimer) }
        if let diskTimer { loop.cancel(diskTimer) }
        if timedOut {
            collector.note(.stderr, "[medic] timed out after \(configuration.timeoutNanoseconds / 1_000_000) ms: process tree killed")
        }
        collector.finish()
        deliver()
        var exitCode: Int32?
        var signal: Int32?
        switch status {
        case .exited(let code)?: exitCode = code
        case .signaled(let number)?: signal = number
        case nil: exitCode = nil
        }
        let result = TestRunResult(
            exitCode: exitCode, signal: signal, timedOut: timedOut, cancelled: cancelled,
            durationMs: Int((monotonicNanoseconds() - startedAt) / 1_000_000), truncated: collector.truncated,
            outputTail: collector.outputTail, phase: phase, isolation: isolation.mode, spawnError: spawnError,
            outputLimitExceeded: outputLimitExceeded, diskQuotaExceeded: diskQuotaExceeded)
        keepAlive = nil
        onFinished(result)
    }
}
