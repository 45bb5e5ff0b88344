// SandboxIsolation: whether test commands run inside bubblewrap here, decided once by actually running it.
public import EventLoop
import Glibc

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

    /// Runs bubblewrap once with every option a test run uses (`--unshare-user`, `--unshare-pid`,
    /// `--unshare-net`, `--proc`, the default view's mounts …) and `true` as the command. Inside containers without user namespaces bwrap exists but fails;
    /// then the mode is `.none` with a warning carrying bwrap's stderr. `completion` runs on the loop thread.
    public static func probe(loop: EventLoop, bwrapExecutable: String? = nil, completion: @escaping (SandboxIsolation) -> Void) {
        guard let bwrap = bwrapExecutable ?? ExecutableLocator.find("bwrap") else {
            loop.schedule(afterNanoseconds: 0) {
                completion(SandboxIsolation(mode: .none, warning: "bubblewrap (bwrap) not found on PATH: test commands run unisolated"))
            }
            return
        }
        // From /usr (always visible): a `true` first on the server's PATH may lie where the sandbox cannot see.
        let installed: String? = ["/usr/bin/true", "/bin/true"].first { access($0, X_OK) == 0 }
        let trueCommand = installed ?? ExecutableLocator.find("true") ?? "/bin/true"
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

    /// The bubblewrap options for a run: only what `view` exposes (toolchains and a few /etc files
    /// read-only, the workspace writable, a private bounded /tmp, minimal /dev, a fresh /proc — see
    /// `SandboxView`); every namespace of its own, including a user namespace in which the code runs as
    /// uid/gid 65534 with no capabilities; no network unless allowed; dies with the server; a new session
    /// (no TIOCSTI into the server's terminal). The environment is not bwrap's business: `TestRun` starts
    /// bwrap with a minimal one, so nothing of the server's reaches the sandbox (no `--clearenv` needed).
    ///
    /// The user namespace maps the sandbox's uid 65534 to the server's own uid (bwrap run by root maps to
    /// root): the workspace, owned by the server, is the sandbox user's own and stays writable without a
    /// chown, while every capability is dropped, so the test cannot mount, chown or override permissions.
    static func bwrapArguments(workspace: String?, allowNetwork: Bool, view: SandboxView = SandboxView()) -> [String] {
        var args = view.plan(workspace: workspace).arguments
        args += ["--unshare-user", "--uid", String(SandboxView.sandboxUID), "--gid", String(SandboxView.sandboxUID)]
        args += ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
        if !allowNetwork { args.append("--unshare-net") }
        args += ["--cap-drop", "ALL", "--die-with-parent", "--new-session"]
        if let workspace { args += ["--chdir", workspace] }
        return args
    }

    /// What a run under this isolation can see: `view`'s plan under bwrap; without bwrap everything the
    /// server's user can see, read-write (reported as `/` rw, honestly).
    public func visiblePaths(workspace: String, view: SandboxView) -> [VisiblePath] {
        mode == .bwrap ? view.plan(workspace: workspace).visible : [VisiblePath("/", .rw)]
    }
}
