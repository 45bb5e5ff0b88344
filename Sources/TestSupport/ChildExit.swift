// ChildExit: waiting for a Foundation `Process` in tests without `waitUntilExit`'s hang.
public import Foundation

/// Waits for `process` to exit and answers its exit status (128 + signal when a signal ended it).
///
/// Not `waitUntilExit`: Foundation reaps children on a thread of its own, created at the first `Process.run()`
/// and inheriting that caller's signal mask. When that caller was a test thread that had run an EventLoop's
/// signalfd (SIGCHLD blocked), no child is ever reaped and `waitUntilExit` waits forever — seen: the whole suite
/// hung in `FakeAnthropic.stop` with a zombie python child. `waitpid` reaps the child here; when Foundation did
/// first (ECHILD), its own bookkeeping answers.
public func waitForExit(_ process: Process) -> Int32 {
    var status: Int32 = 0
    while waitpid(process.processIdentifier, &status, 0) == -1 {
        if errno == EINTR { continue }
        process.waitUntilExit()
        return process.terminationStatus
    }
    let signal = status & 0x7f
    return signal == 0 ? (status >> 8) & 0xff : 128 + signal
}
