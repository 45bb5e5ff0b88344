// SystemTests: the one syscall helper — EINTR retried, EAGAIN as a value, other errors thrown with the call's name.
import CSystem
import EventLoop
import Glibc
import Testing

/// A fake syscall: fails with each errno of `failures` in turn (returning -1), then returns `result`.
final class ScriptedCall {
    private var failures: [Int32]
    private let result: Int
    private(set) var calls = 0

    init(failing failures: [Int32], then result: Int = 42) {
        self.failures = failures
        self.result = result
    }

    func callAsFunction() -> Int {
        calls += 1
        if failures.isEmpty { return result }
        csys_set_errno(failures.removeFirst())
        return -1
    }
}

@Suite struct SyscallTests {
    @Test func eintrIsRetriedUntilTheCallCompletes() throws {
        let call = ScriptedCall(failing: [EINTR, EINTR, EINTR])
        let result = try syscall("read") { call() }
        #expect(processedValue(result) == 42)
        #expect(call.calls == 4)
    }

    @Test(arguments: [EAGAIN, EWOULDBLOCK])
    func wouldBlockIsAValueNotAnError(code: Int32) throws {
        let call = ScriptedCall(failing: [code])
        let result = try syscall("read") { call() }
        #expect(processedValue(result) == nil)
        #expect(call.calls == 1)
    }

    @Test func eintrThenEagainIsWouldBlock() throws {
        let call = ScriptedCall(failing: [EINTR, EAGAIN])
        #expect(processedValue(try syscall("accept4") { call() }) == nil)
        #expect(call.calls == 2)
    }

    @Test(arguments: [ECONNRESET, EPIPE, EMFILE, ENOMEM])
    func otherErrorsAreThrownWithTheCallName(code: Int32) {
        let call = ScriptedCall(failing: [code])
        let error = #expect(throws: SystemError.self) { try syscall("writev") { call() } }
        #expect(error?.call == "writev")
        #expect(error?.errno == code)
        #expect(error?.description.hasPrefix("writev failed: ") == true)
        #expect(error?.description.hasSuffix("(errno \(code))") == true)
        #expect(call.calls == 1)
    }

    @Test func zeroIsASuccessNotAnError() throws {
        let call = ScriptedCall(failing: [], then: 0)
        #expect(processedValue(try syscall("read") { call() }) == 0)
    }

    @Test func theNameIsOnlyBuiltOnFailure() throws {
        var built = 0
        func name() -> String {
            built += 1
            return "expensive"
        }
        let retried = ScriptedCall(failing: [EINTR])
        _ = try syscall(name()) { retried() }
        #expect(built == 0)
        let failing = ScriptedCall(failing: [EIO])
        _ = try? syscall(name()) { failing() }
        #expect(built == 1)
    }

    @Test func syscallCheckedReturnsTheValueAndReportsWouldBlockAsAnError() throws {
        let retried = ScriptedCall(failing: [EINTR], then: 9)
        #expect(try syscallChecked("eventfd") { retried() } == 9)
        let blocked = ScriptedCall(failing: [EAGAIN])
        let error = #expect(throws: SystemError.self) { try syscallChecked("listen") { blocked() } }
        #expect(error?.errno == EAGAIN)
        #expect(error?.call == "listen")
    }

    @Test func monotonicTimeNeverGoesBackwards() {
        var last = monotonicNanoseconds()
        var backwards = 0
        for _ in 0..<10_000 {
            let now = monotonicNanoseconds()
            if now < last { backwards += 1 }
            last = now
        }
        #expect(backwards == 0)
    }
}
