// SandboxIsolation: whether test commands run inside bubblewrap here, decided once by actually running it.
public import EventLoop

/// How test commands are isolated on this machine. Probe once at startup with `probe`.
public struct SandboxIsolation: Sendable, Equatable {
    /// Reported as `isolation` in `sandbox_ready`.
    public enum Mode: String, Sendable, Equatable {
        case bwrap, none
    }

    public var mode: Mode
    /// Path of the bwrap executable (when `mode == .bwrap`).
    public var bwrapPath: String?
    /// Why isolation is weaker than asked (reported as `warning` in `sandbox_ready`).
    public var warning: String?

    public init(mode: Mode, bwrapPath: String? = nil, warning: String? = nil) {
        self.mode = mode
        self.bwrapPath = bwrapPath
        self.warning = warning
    }

    /// No isolation by choice (configuration or tests): process group, rlimits and timeout only.
    public static let unisolated = SandboxIsolation(
        mode: .none, warning: "bubblewrap disabled: test commands run unisolated (rlimits and timeout only)")

    /// Runs bubblewrap once with every option a test run uses (`--unshare-pid`, `--unshare-net`, `--proc`,
    /// …) and `true` as the command. Inside containers without user namespaces bwrap exists but fails;
    /// then the mode is `.none` with a warning carrying bwrap's stderr. `completion` runs on the loop thread.
    public static func probe(loop: EventLoop, bwrapExecutable: String? = nil, completion: @escaping (SandboxIsolation) -> Void) {
        guard let bwrap = bwrapExecutable ?? ExecutableLocator.find("bwrap") else {
            loop.schedule(afterNanoseconds: 0) {
                completion(SandboxIsolation(mode: .none, warning: "bubblewrap (bwrap) not found on PATH: test commands run unisolated"))
            }
            return
        }
        let trueCommand = ExecutableLocator.find("true") ?? "/bin/true"
        let arguments = bwrapArguments(workspace: nil, allowNetwork: false) + ["--", trueCommand]
        CommandRunner.run(loop: loop, executable: bwrap, arguments: arguments, timeoutNanoseconds: 30_000_000_000) { result in
            switch result {
            case .success(let output) where output.succeeded:
                completion(SandboxIsolation(mode: .bwrap, bwrapPath: bwrap))
            case .success(let output):
                completion(SandboxIsolation(
                    mode: .none, warning: "bubblewrap does not work here (\(output.status): \(output.diagnostics)): test commands run unisolated"))
            case .failure(let error):
                completion(SandboxIsolation(mode: .none, warning: "bubblewrap could not be started (\(error)): test commands run unisolated"))
            }
        }
    }

    /// The bubblewrap options for a run: the whole filesystem read-only, the workspace writable, a private
    /// /tmp, /dev and /proc; own pid namespace (so killing bwrap kills every process of the run), no network
    /// unless allowed; dies with the server; a new session (no TIOCSTI into the server's terminal).
    /// Order matters: mounts apply in order, so /tmp is replaced *before* a workspace under /tmp is bound.
    static func bwrapArguments(workspace: String?, allowNetwork: Bool) -> [String] {
        var args = ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
        if let workspace { args += ["--bind", workspace, workspace] }
        args += ["--unshare-pid", "--unshare-ipc", "--unshare-uts"]
        if !allowNetwork { args.append("--unshare-net") }
        args += ["--die-with-parent", "--new-session"]
        if let workspace { args += ["--chdir", workspace] }
        return args
    }
}
