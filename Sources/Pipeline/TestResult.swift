// TestResult: the outcome of one test run in the sandbox (contract event `test_finished`).

/// How a test run ended. `passed`/`failed` are the counts the runner printed, when it printed any.
public struct TestResult: Sendable, Codable, Hashable {
    /// Process exit status (meaningless when `signal` is set).
    public var exitCode: Int32
    /// Tests that passed, if the output said.
    public var passed: Int?
    /// Tests that failed (failures + errors), if the output said.
    public var failed: Int?
    /// Wall time of the run.
    public var durationMs: Int
    /// The run was killed for exceeding its time limit.
    public var timedOut: Bool
    /// The signal that terminated the process, if it did not exit normally.
    public var signal: Int32?
    /// Output was cut at the executor's limit.
    public var truncated: Bool
    /// The workspace grew past its disk quota (the run was killed, or ended over it). Optional so that
    /// snapshots stored before it existed decode unchanged.
    public var diskQuotaExceeded: Bool?

    public init(
        exitCode: Int32, passed: Int? = nil, failed: Int? = nil, durationMs: Int = 0, timedOut: Bool = false,
        signal: Int32? = nil, truncated: Bool = false, diskQuotaExceeded: Bool? = nil
    ) {
        self.exitCode = exitCode
        self.passed = passed
        self.failed = failed
        self.durationMs = durationMs
        self.timedOut = timedOut
        self.signal = signal
        self.truncated = truncated
        self.diskQuotaExceeded = diskQuotaExceeded
    }

    /// A run succeeds only if it exited 0 on its own and reported no failed test.
    public var succeeded: Bool {
        exitCode == 0 && !timedOut && signal == nil && (failed ?? 0) == 0 && diskQuotaExceeded != true
    }
}
