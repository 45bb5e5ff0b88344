// System: the one helper every syscall goes through (EINTR retried, EAGAIN as a value, our bugs trap).
import CSystem
import Glibc

/// The outcome of a non-blocking syscall: done, or it would have blocked.
public enum IOResult<T> {
    case processed(T)
    case wouldBlock
}

/// A failed syscall: its name and errno. Thrown for everything that is the peer's or the system's fault.
public struct SystemError: Error, CustomStringConvertible, Sendable {
    public let call: String
    public let errno: Int32
    public init(_ call: String, errno: Int32) {
        self.call = call
        self.errno = errno
    }
    public var description: String { "\(call) failed: \(String(cString: strerror(errno))) (errno \(errno))" }
}

/// Runs `body` until it does not fail with EINTR. `EAGAIN`/`EWOULDBLOCK` become `.wouldBlock`;
/// `EBADF` and `EFAULT` mean we passed a closed fd or a bad pointer — a bug in Medic — and trap.
@inline(__always)
public func syscall<T: FixedWidthInteger>(_ name: @autoclosure () -> String, _ body: () -> T) throws(SystemError) -> IOResult<T> {
    while true {
        let result = body()
        if result >= 0 { return .processed(result) }
        let err = csys_errno()
        switch err {
        case EINTR: continue
        case EAGAIN, EWOULDBLOCK: return .wouldBlock
        case EBADF, EFAULT: preconditionFailure("\(name()) failed with \(err): a bug in Medic (bad fd or pointer)")
        default: throw SystemError(name(), errno: err)
        }
    }
}

/// A syscall that is never expected to block (setup calls): `.wouldBlock` is reported as an error.
@inline(__always)
public func syscallChecked<T: FixedWidthInteger>(_ name: @autoclosure () -> String, _ body: () -> T) throws(SystemError) -> T {
    switch try syscall(name(), body) {
    case .processed(let value): return value
    case .wouldBlock: throw SystemError(name(), errno: EAGAIN)
    }
}

/// Monotonic time in nanoseconds (CLOCK_MONOTONIC), the loop's only clock.
@inline(__always)
public func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

/// Wall-clock milliseconds since 1970 (for event timestamps only; never for timeouts).
public func wallClockMilliseconds() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
}

/// Closes an fd, ignoring EINTR (Linux closes the fd even then; retrying could close a reused fd).
public func closeFD(_ fd: Int32) {
    _ = Glibc.close(fd)
}
