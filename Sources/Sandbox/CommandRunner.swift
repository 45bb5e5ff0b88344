// CommandRunner: runs a short helper command (cp, git, rm, bwrap probe) as a loop-driven child and collects its output.
import EventLoop
import Glibc

/// What a finished helper command printed and how it ended.
struct CommandOutput {
    var status: ProcessExit
    var stdout: String
    var stderr: String
    var timedOut: Bool
    var succeeded: Bool { status == .exited(0) && !timedOut }

    /// stderr (or stdout when stderr is empty), trimmed, for error messages.
    var diagnostics: String {
        let text = stderr.isEmpty ? stdout : stderr
        return String(text.reversed().drop(while: { $0 == "\n" || $0 == " " }).reversed())
    }
}

/// Runs helper commands on the loop. Output beyond `outputLimit` bytes per stream is dropped (git's stderr
/// is all we ever need); a command still running after `timeoutNanoseconds` is killed with its group.
enum CommandRunner {
    /// Default bound on collected output per stream: 1 MiB.
    static let defaultOutputLimit = 1 << 20
    /// Default time a helper may take: 10 minutes (a copy of a large repository on a slow disk).
    static let defaultTimeoutNanoseconds: UInt64 = 600_000_000_000

    static func run(
        loop: EventLoop, executable: String, arguments: [String], workingDirectory: String? = nil,
        environment: [String: String]? = nil, outputLimit: Int = defaultOutputLimit,
        timeoutNanoseconds: UInt64 = defaultTimeoutNanoseconds,
        completion: @escaping (Result<CommandOutput, SandboxError>) -> Void
    ) {
        var out: [UInt8] = []
        var err: [UInt8] = []
        var timer: TimerID?
        var timedOut = false
        let child: ChildProcess
        do {
            child = try ChildProcess(
                loop: loop, executable: executable, arguments: arguments, environment: environment,
                workingDirectory: workingDirectory,
                onOutput: { stream, bytes in
                    switch stream {
                    case .stdout: if out.count < outputLimit { out.append(contentsOf: bytes.prefix(outputLimit - out.count)) }
                    case .stderr: if err.count < outputLimit { err.append(contentsOf: bytes.prefix(outputLimit - err.count)) }
                    }
                },
                onExit: { status in
                    if let timer { loop.cancel(timer) }
                    completion(.success(CommandOutput(
                        status: status, stdout: String(decoding: out, as: UTF8.self),
                        stderr: String(decoding: err, as: UTF8.self), timedOut: timedOut)))
                })
        } catch {
            let command = ([executable] + arguments).joined(separator: " ")
            // Reported on the next tick so completions never run re-entrantly inside the caller.
            loop.schedule(afterNanoseconds: 0) { completion(.failure(.spawnFailed(command, "\(error)"))) }
            return
        }
        timer = loop.schedule(afterNanoseconds: timeoutNanoseconds) {
            timedOut = true
            child.kill(signal: SIGKILL)
        }
    }

    /// Runs a command and maps anything but exit 0 to `command_failed` carrying its stderr.
    static func runChecked(
        loop: EventLoop, executable: String, arguments: [String], workingDirectory: String? = nil,
        environment: [String: String]? = nil, completion: @escaping (Result<CommandOutput, SandboxError>) -> Void
    ) {
        run(loop: loop, executable: executable, arguments: arguments, workingDirectory: workingDirectory,
            environment: environment) { result in
            switch result {
            case .success(let output) where output.succeeded:
                completion(.success(output))
            case .success(let output):
                let name = ([(executable as String).split(separator: "/").last.map(String.init) ?? executable]
                    + arguments.prefix(3)).joined(separator: " ")
                let how = output.timedOut ? "timed out" : "\(output.status)"
                completion(.failure(.commandFailed(name, "\(how): \(output.diagnostics)")))
            case .failure(let error):
                completion(.failure(error))
            }
        }
    }
}

/// Finds executables on PATH once (ChildProcess takes a path: exec does no PATH search, on purpose).
public enum ExecutableLocator {
    /// The first `name` on `$PATH` (or the fallback directories) that is executable; nil when none is.
    public static func find(_ name: String) -> String? {
        if name.contains("/") { return access(name, X_OK) == 0 ? name : nil }
        let path = getenv("PATH").map { String(cString: $0) } ?? ""
        let directories = path.split(separator: ":").map(String.init) + ["/usr/local/bin", "/usr/bin", "/bin"]
        for directory in directories where !directory.isEmpty {
            let candidate = directory + "/" + name
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }
}

/// The server's environment as a dictionary (for helpers that should inherit it with a few overrides).
func inheritedEnvironment(overrides: [String: String]) -> [String: String] {
    var result: [String: String] = [:]
    var pointer = environ
    while let entry = pointer.pointee {
        let text = String(cString: entry)
        if let equals = text.firstIndex(of: "=") {
            result[String(text[..<equals])] = String(text[text.index(after: equals)...])
        }
        pointer += 1
    }
    for (key, value) in overrides { result[key] = value }
    return result
}
