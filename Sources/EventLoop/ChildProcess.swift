// ChildProcess: a spawned process whose stdout/stderr pipes and exit are all seen in the loop (pidfd).
import CSystem
import Glibc

/// Resource limits applied in the child before exec (0 = unlimited).
public struct ResourceLimits: Sendable {
    public var cpuSeconds: Int64
    public var addressSpaceBytes: Int64
    public var processes: Int64
    public var fileSizeBytes: Int64
    public init(cpuSeconds: Int64 = 0, addressSpaceBytes: Int64 = 0, processes: Int64 = 0, fileSizeBytes: Int64 = 0) {
        self.cpuSeconds = cpuSeconds
        self.addressSpaceBytes = addressSpaceBytes
        self.processes = processes
        self.fileSizeBytes = fileSizeBytes
    }
}

/// How a child ended.
public enum ProcessExit: Sendable, Equatable, CustomStringConvertible {
    case exited(Int32)
    case signaled(Int32)
    public var description: String {
        switch self {
        case .exited(let code): "exit \(code)"
        case .signaled(let signal): "signal \(signal)"
        }
    }
}

/// Which pipe a chunk of output came from.
public enum OutputStream: String, Sendable {
    case stdout, stderr
}

/// A child process driven by the loop. `onOutput` gets raw chunks as they arrive; `onExit` runs once,
/// after the process exited and both pipes reached EOF (or a grace period passed: a grandchild may keep
/// a pipe open), so every byte of output is delivered before the exit. The process keeps itself alive
/// until `onExit` ran: a caller need not hold a reference (only to `kill` it).
public final class ChildProcess {
    public let pid: Int32
    private unowned let loop: EventLoop
    private let pidfd: Int32
    private var pipes: [OutputStream: (fd: Int32, registration: Registration)] = [:]
    private var pidRegistration: Registration?
    private var status: ProcessExit?
    private var finished = false
    private var graceTimer: TimerID?
    private let onOutput: (OutputStream, UnsafeRawBufferPointer) -> Void
    private let onExit: (ProcessExit) -> Void
    private var handlers: [any IOHandler] = []
    /// Whether the whole process group is killed when the leader exits (test runs: no orphans).
    private let killGroupOnExit: Bool

    /// Spawns `executable` (a path) with `arguments` (argv[1...]). The child runs in its own process group,
    /// with stdin from /dev/null, dies with the server (PR_SET_PDEATHSIG), under `limits`.
    public init(
        loop: EventLoop, executable: String, arguments: [String], environment: [String: String]? = nil,
        workingDirectory: String? = nil, limits: ResourceLimits = .init(), killGroupOnExit: Bool = true,
        onOutput: @escaping (OutputStream, UnsafeRawBufferPointer) -> Void, onExit: @escaping (ProcessExit) -> Void
    ) throws(SystemError) {
        self.loop = loop
        self.onOutput = onOutput
        self.onExit = onExit
        self.killGroupOnExit = killGroupOnExit
        var outPipe: [Int32] = [-1, -1]
        var errPipe: [Int32] = [-1, -1]
        _ = try syscallChecked("pipe2") { csys_pipe(&outPipe) }
        do { _ = try syscallChecked("pipe2") { csys_pipe(&errPipe) } } catch {
            closeFD(outPipe[0]); closeFD(outPipe[1])
            throw error
        }
        // The write ends must be blocking in the child (a child writing to a full pipe should wait, not fail).
        _ = fcntl(outPipe[1], F_SETFL, 0)
        _ = fcntl(errPipe[1], F_SETFL, 0)
        let argv = [executable] + arguments
        let envp = environment.map { env in env.map { "\($0.key)=\($0.value)" } }
        let spawned = withCStrings(argv) { cArgv in
            withOptionalCStrings(envp) { cEnv in
                csys_spawn(executable, cArgv, cEnv, workingDirectory, outPipe[1], errPipe[1],
                           limits.cpuSeconds, limits.addressSpaceBytes, limits.processes, limits.fileSizeBytes)
            }
        }
        closeFD(outPipe[1])
        closeFD(errPipe[1])
        guard spawned > 0 else {
            closeFD(outPipe[0]); closeFD(errPipe[0])
            throw SystemError("spawn \(executable)", errno: -spawned)
        }
        pid = spawned
        do {
            pidfd = try syscallChecked("pidfd_open") { csys_pidfd_open(spawned) }
        } catch {
            _ = Glibc.kill(-spawned, SIGKILL)
            closeFD(outPipe[0]); closeFD(errPipe[0])
            throw error
        }
        // The handlers hold the process strongly (the loop holds the handlers), so a caller may drop its
        // reference: the cycle is broken once the exit was reported and every registration is gone.
        let pidHandler = ExitHandler(owner: self)
        let outHandler = PipeHandler(owner: self, stream: .stdout)
        let errHandler = PipeHandler(owner: self, stream: .stderr)
        handlers = [pidHandler, outHandler, errHandler]
        do {
            pidRegistration = try loop.register(fd: pidfd, interest: .read, handler: pidHandler)
            pipes[.stdout] = (outPipe[0], try loop.register(fd: outPipe[0], interest: .read, handler: outHandler))
            pipes[.stderr] = (errPipe[0], try loop.register(fd: errPipe[0], interest: .read, handler: errHandler))
        } catch {
            // Undo whatever was registered; kill and reap the child so no zombie or orphan is left.
            if let pidRegistration { loop.unregister(pidRegistration) }
            pidRegistration = nil
            for (_, pipe) in pipes { loop.unregister(pipe.registration) }
            pipes = [:]
            handlers = []
            finished = true
            _ = Glibc.kill(-spawned, SIGKILL)
            var raw: Int32 = 0
            _ = waitpid(spawned, &raw, 0)
            closeFD(pidfd)
            closeFD(outPipe[0]); closeFD(errPipe[0])
            throw error
        }
    }

    /// Sends `signal` to the child's whole process group (the test command and everything it started).
    public func kill(signal: Int32 = 9 /* SIGKILL */) {
        guard status == nil else { return }
        _ = Glibc.kill(-pid, signal)
    }

    public var isRunning: Bool { status == nil }

    fileprivate func readPipe(_ stream: OutputStream) {
        guard let pipe = pipes[stream] else { return }
        let buffer = loop.readBuffer
        // Bounded per tick so one flooding child cannot starve the loop.
        for _ in 0..<16 {
            switch try? Socket.read(pipe.fd, into: buffer) {
            case .processed(let n)? where n > 0:
                onOutput(stream, UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
            case .wouldBlock?:
                return
            default:
                closePipe(stream)
                return
            }
        }
    }

    private func closePipe(_ stream: OutputStream) {
        guard let pipe = pipes.removeValue(forKey: stream) else { return }
        loop.unregister(pipe.registration)
        closeFD(pipe.fd)
        finishIfDone()
    }

    fileprivate func reap() {
        // Kill the group *before* reaping: until waitpid the zombie leader keeps its pid (and so the
        // group id) reserved, so `kill(-pid)` cannot hit an unrelated process that reused the pid.
        // A readable pidfd means the leader has exited, so this never kills a live leader.
        if killGroupOnExit { _ = Glibc.kill(-pid, SIGKILL) }
        var raw: Int32 = 0
        let rc = csys_waitpid_nohang(pid, &raw)
        guard rc == pid else { return }
        status = csys_wifsignaled(raw) != 0 ? .signaled(csys_wtermsig(raw)) : .exited(csys_wexitstatus(raw))
        if let pidRegistration { loop.unregister(pidRegistration) }
        pidRegistration = nil
        closeFD(pidfd)
        if !pipes.isEmpty {
            graceTimer = loop.schedule(afterNanoseconds: 2_000_000_000) { [weak self] in
                guard let self else { return }
                for stream in Array(self.pipes.keys) { self.readPipe(stream); self.closePipe(stream) }
            }
        }
        finishIfDone()
    }

    private func finishIfDone() {
        guard !finished, let status, pipes.isEmpty else { return }
        finished = true
        if let graceTimer { loop.cancel(graceTimer) }
        handlers = []
        onExit(status)
    }
}

private final class PipeHandler: IOHandler {
    let owner: ChildProcess
    let stream: OutputStream
    init(owner: ChildProcess, stream: OutputStream) {
        self.owner = owner
        self.stream = stream
    }
    func ioReady(_ events: IOEvents) { owner.readPipe(stream) }
}

private final class ExitHandler: IOHandler {
    let owner: ChildProcess
    init(owner: ChildProcess) { self.owner = owner }
    func ioReady(_ events: IOEvents) { owner.reap() }
}

/// Runs `body` with a NULL-terminated C array of C strings.
func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
    let pointers = strings.map { strdup($0) } + [nil]
    defer { for p in pointers { free(p) } }
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}

func withOptionalCStrings<R>(_ strings: [String]?, _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>?) -> R) -> R {
    guard let strings else { return body(nil) }
    return withCStrings(strings) { body($0) }
}
