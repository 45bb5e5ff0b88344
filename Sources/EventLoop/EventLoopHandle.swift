// EventLoopHandle: the loop's one thread-safe entry point (an eventfd wakeup plus a locked queue).
import CSystem
import Glibc
import Synchronization

/// Work another thread hands to the loop. It receives the loop, so it can reach loop-bound state
/// through `LoopBound` values it captured.
public typealias DeferredWork = @Sendable (EventLoop) -> Void

/// Posts work to a loop from any thread (uWS `Loop::defer`, uSockets `us_wakeup_loop`).
public final class EventLoopHandle: Sendable {
    let eventFD: Int32
    private let queue = Mutex<[DeferredWork]>([])

    init() throws(SystemError) {
        eventFD = try syscallChecked("eventfd") { csys_eventfd() }
    }

    deinit { closeFD(eventFD) }

    /// Queues `work` to run on the loop thread at its next tick. Never blocks for long; callable from any thread.
    public func execute(_ work: @escaping DeferredWork) {
        let wasEmpty = queue.withLock { pending in
            pending.append(work)
            return pending.count == 1
        }
        // One wakeup per batch: later posts see a non-empty queue and skip the write.
        if wasEmpty { wake() }
    }

    /// Interrupts the loop's poll.
    public func wake() {
        var one: UInt64 = 1
        _ = withUnsafeBytes(of: &one) { Glibc.write(eventFD, $0.baseAddress, 8) }
    }

    func drain(_ run: (DeferredWork) -> Void) {
        var counter: UInt64 = 0
        _ = withUnsafeMutableBytes(of: &counter) { Glibc.read(eventFD, $0.baseAddress, 8) }
        let batch = queue.withLock { pending in
            let taken = pending
            pending.removeAll(keepingCapacity: true)
            return taken
        }
        for work in batch { run(work) }
    }
}

/// A loop-bound value that may be carried across threads but only touched on its loop's thread.
/// `@unchecked Sendable` is sound because every access checks `inLoopThread` (SwiftNIO's `NIOLoopBound`).
public struct LoopBound<Value>: @unchecked Sendable {
    private let box: Box
    fileprivate final class Box {
        var value: Value
        unowned let loop: EventLoop
        init(_ value: Value, loop: EventLoop) {
            self.value = value
            self.loop = loop
        }
    }

    public init(_ value: Value, loop: EventLoop) {
        box = Box(value, loop: loop)
    }

    /// The value; traps when used off the loop thread.
    public var value: Value {
        get {
            precondition(box.loop.inLoopThread, "LoopBound used off its loop thread")
            return box.value
        }
        nonmutating set {
            precondition(box.loop.inLoopThread, "LoopBound used off its loop thread")
            box.value = newValue
        }
    }
}

extension LoopBound {
    /// From any thread: runs `body` with the value on the value's loop thread, at that loop's next tick.
    /// This is how a worker thread's result (a store completion) gets back to loop-bound state.
    public func hop(_ body: @escaping @Sendable (Value) -> Void) {
        box.loop.handle.execute { _ in body(self.value) }
    }
}
