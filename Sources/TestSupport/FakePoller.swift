// FakePoller: a Poller that plays the kernel for loop tests — records every call, returns scripted events, keeps time.
public import EventLoop
import Glibc

/// A `Poller` for tests, after SwiftNIO's `SyscallAbstractionLayer`: the test plays the kernel.
///
/// - Every `add`/`modify`/`remove`/`wait`/`close` is recorded in `calls`, in order.
/// - It keeps the kernel's interest list (`watched`) and refuses what epoll refuses: `add` of a watched fd
///   (EEXIST), `modify`/`remove` of an unwatched one (ENOENT). `failNextCall(errno:)` injects other errors.
/// - The test scripts what the next `wait`s return with `enqueue`. Events carry raw tokens, so a test can
///   report a token that was since unregistered, or an old token for an fd that was registered again.
/// - It keeps a clock (`clock`, pass it to `EventLoop(poller:clock:)`): a `wait` with nothing ready
///   "sleeps" by advancing the clock by its timeout, so timers fire without real sleeping.
///
/// Not thread-safe: use it from the loop's thread only, as the loop uses its poller.
public final class FakePoller: Poller {
    /// One call the loop made.
    public enum Call: Equatable, Sendable {
        case add(fd: Int32, interest: Interest, token: UInt64)
        case modify(fd: Int32, interest: Interest, token: UInt64)
        case remove(fd: Int32)
        case wait(timeoutMilliseconds: Int32)
        case close
    }

    /// What the kernel holds for one watched fd.
    public struct Watch: Equatable, Sendable {
        public var interest: Interest
        public var token: UInt64
        public init(interest: Interest, token: UInt64) {
            self.interest = interest
            self.token = token
        }
    }

    /// A scripted `wait` result: these events, ready at `readyAt` on the fake clock.
    private struct Batch {
        var events: [PollEvent]
        var readyAt: UInt64
    }

    /// Every call, in order (refused calls included: the loop did make them).
    public private(set) var calls: [Call] = []
    /// The kernel's interest list: fd → interest and token.
    public private(set) var watched: [Int32: Watch] = [:]
    /// The fake monotonic time in nanoseconds.
    public private(set) var nowNanoseconds: UInt64
    public private(set) var isClosed = false
    /// Called at the start of each `wait` with the timeout the loop asked for (to observe phase order).
    public var onWait: ((Int32) -> Void)?
    private var script: [Batch] = []
    private var injectedErrno: Int32?

    /// `startNanoseconds`: the clock's initial reading (non-zero, like a real monotonic clock).
    public init(startNanoseconds: UInt64 = 1_000_000_000) {
        nowNanoseconds = startNanoseconds
    }

    /// The fake clock, for `EventLoop(poller:clock:)`.
    public var clock: () -> UInt64 { { self.nowNanoseconds } }

    /// Moves the fake clock forward (time that passed while the loop was busy, not sleeping).
    public func advance(byNanoseconds nanoseconds: UInt64) {
        nowNanoseconds += nanoseconds
    }

    /// The token the kernel holds for `fd`, if watched.
    public func token(for fd: Int32) -> UInt64? { watched[fd]?.token }

    /// The timeouts of every `wait` so far, in order.
    public var waitTimeouts: [Int32] {
        calls.compactMap { if case .wait(let timeout) = $0 { timeout } else { nil } }
    }

    /// The calls other than `wait` (the registration traffic).
    public var controlCalls: [Call] {
        calls.filter { if case .wait = $0 { false } else { true } }
    }

    /// Forgets the recorded calls (not the interest list, the script or the clock).
    public func clearCalls() { calls.removeAll() }

    /// Batches still waiting to be returned.
    public var pendingBatches: Int { script.count }

    /// Scripts the result of a later `wait`: `events` become ready `afterNanoseconds` from now. Batches are
    /// returned in the order enqueued, one per `wait`. Tokens are taken as given — nothing is checked.
    public func enqueue(_ events: [PollEvent], afterNanoseconds: UInt64 = 0) {
        script.append(Batch(events: events, readyAt: nowNanoseconds + afterNanoseconds))
    }

    /// Scripts one ready event for `fd` with the token the kernel currently holds for it.
    public func enqueueReady(fd: Int32, _ events: IOEvents, afterNanoseconds: UInt64 = 0) {
        guard let watch = watched[fd] else { preconditionFailure("FakePoller: fd \(fd) is not watched") }
        enqueue([PollEvent(token: watch.token, events: events)], afterNanoseconds: afterNanoseconds)
    }

    /// The process closed `fd` without removing it: epoll forgets an fd when its last reference is closed.
    /// (Not recorded in `calls`: the loop made no call.)
    public func processClosed(fd: Int32) {
        watched[fd] = nil
    }

    /// Makes the next `add`, `modify` or `remove` fail with `errno` (and change nothing).
    public func failNextCall(errno: Int32) { injectedErrno = errno }

    // MARK: Poller

    public func add(fd: Int32, interest: Interest, token: UInt64) throws(SystemError) {
        calls.append(.add(fd: fd, interest: interest, token: token))
        try takeInjectedError("epoll_ctl(ADD)")
        guard watched[fd] == nil else { throw SystemError("epoll_ctl(ADD)", errno: EEXIST) }
        watched[fd] = Watch(interest: interest, token: token)
    }

    public func modify(fd: Int32, interest: Interest, token: UInt64) throws(SystemError) {
        calls.append(.modify(fd: fd, interest: interest, token: token))
        try takeInjectedError("epoll_ctl(MOD)")
        guard watched[fd] != nil else { throw SystemError("epoll_ctl(MOD)", errno: ENOENT) }
        watched[fd] = Watch(interest: interest, token: token)
    }

    public func remove(fd: Int32) throws(SystemError) {
        calls.append(.remove(fd: fd))
        try takeInjectedError("epoll_ctl(DEL)")
        guard watched.removeValue(forKey: fd) != nil else { throw SystemError("epoll_ctl(DEL)", errno: ENOENT) }
    }

    /// Returns the next scripted batch if it is ready within the timeout (advancing the clock to when it
    /// became ready); otherwise sleeps out the timeout on the fake clock and returns nothing. With nothing
    /// scripted and timeout -1 a kernel would block forever; the fake returns at once.
    public func wait(timeoutMilliseconds: Int32, _ body: (PollEvent) -> Void) throws(SystemError) {
        precondition(!isClosed, "FakePoller: wait after close")
        calls.append(.wait(timeoutMilliseconds: timeoutMilliseconds))
        onWait?(timeoutMilliseconds)
        let timeoutNanoseconds = timeoutMilliseconds < 0 ? nil : UInt64(timeoutMilliseconds) * 1_000_000
        if let next = script.first {
            let delay = next.readyAt > nowNanoseconds ? next.readyAt - nowNanoseconds : 0
            if timeoutNanoseconds.map({ delay <= $0 }) ?? true {
                script.removeFirst()
                nowNanoseconds += delay
                for event in next.events { body(event) }
                return
            }
        }
        nowNanoseconds += timeoutNanoseconds ?? 0
    }

    public func close() {
        calls.append(.close)
        isClosed = true
        watched.removeAll()
    }

    private func takeInjectedError(_ call: String) throws(SystemError) {
        if let errno = injectedErrno {
            injectedErrno = nil
            throw SystemError(call, errno: errno)
        }
    }
}
