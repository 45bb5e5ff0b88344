// EventLoop: one thread's loop over a Poller — fd registrations, timers, before-sleep hooks, deferred work.
import CSystem
import Glibc
public import Logging

/// Receives readiness for one registered fd. Implemented by connections, listeners, pipes.
public protocol IOHandler: AnyObject {
    func ioReady(_ events: IOEvents)
}

/// A registration of an fd with the loop. The generation makes stale events (for a closed, possibly
/// reused fd) detectable: the token is `generation << 32 | fd` (SwiftNIO's SelectorRegistrationID idea).
public struct Registration: Hashable, Sendable {
    public let fd: Int32
    public let generation: UInt32
    var token: UInt64 { UInt64(generation) << 32 | UInt64(UInt32(bitPattern: fd)) }
}

/// Identifies a scheduled timer so it can be cancelled.
public struct TimerID: Hashable, Sendable {
    let raw: UInt64
}

/// The single-threaded event loop. Not `Sendable`: everything except `handle` is used on the loop
/// thread only. Each tick runs named phases: update `now` → due timers → before-sleep hooks
/// (flush writes, free closed) → poll (timeout = earliest timer) → dispatch (libuv's `uv_run` order).
public final class EventLoop {
    private struct Slot {
        var generation: UInt32 = 0
        var handler: (any IOHandler)?
        var interest: Interest = .none
    }

    private struct TimerEntry {
        var deadline: UInt64
        var id: UInt64
    }

    public let logger: Logger
    /// The only thread-safe door into this loop.
    public let handle: EventLoopHandle
    private let poller: any Poller
    private var slots: [Slot] = []
    private var timerHeap: [TimerEntry] = []
    private var timerCallbacks: [UInt64: () -> Void] = [:]
    private var nextTimerID: UInt64 = 1
    private var beforeSleepHooks: [() -> Void] = []
    private var stopped = false
    private let ownerThread: pthread_t
    /// Monotonic nanoseconds at the start of the current tick (cheap to read; refreshed each tick).
    public private(set) var now: UInt64
    /// One read buffer per loop, shared by every connection: data is consumed before the next read.
    public let readBuffer: UnsafeMutableRawBufferPointer
    private var wakeupRegistration: Registration?

    /// Creates a loop owned by the calling thread.
    public init(poller: (any Poller)? = nil, logger: Logger = Logger(label: "medic.loop"), readBufferSize: Int = 256 * 1024) throws(SystemError) {
        if let poller { self.poller = poller } else { self.poller = try EpollPoller() }
        self.logger = logger
        self.handle = try EventLoopHandle()
        self.ownerThread = pthread_self()
        self.now = monotonicNanoseconds()
        self.readBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: readBufferSize, alignment: 16)
        wakeupRegistration = try register(fd: handle.eventFD, interest: .read, handler: WakeupHandler(loop: self))
    }

    deinit {
        readBuffer.deallocate()
        poller.close()
    }

    /// True on the thread that created the loop.
    public var inLoopThread: Bool { pthread_equal(pthread_self(), ownerThread) != 0 }

    // MARK: fds

    /// Watches `fd` for `interest`; `handler` is called with what is ready. The caller keeps ownership of the fd.
    public func register(fd: Int32, interest: Interest, handler: any IOHandler) throws(SystemError) -> Registration {
        let index = Int(fd)
        if index >= slots.count { slots.append(contentsOf: repeatElement(Slot(), count: index + 1 - slots.count + 64)) }
        slots[index].generation &+= 1
        slots[index].handler = handler
        slots[index].interest = interest
        let registration = Registration(fd: fd, generation: slots[index].generation)
        do {
            try poller.add(fd: fd, interest: interest, token: registration.token)
        } catch {
            slots[index].handler = nil
            throw error
        }
        return registration
    }

    /// Changes what a registration waits for (no syscall when unchanged).
    public func setInterest(_ registration: Registration, _ interest: Interest) {
        let index = Int(registration.fd)
        guard index < slots.count, slots[index].generation == registration.generation, slots[index].handler != nil,
              slots[index].interest != interest else { return }
        slots[index].interest = interest
        do {
            try poller.modify(fd: registration.fd, interest: interest, token: registration.token)
        } catch {
            logger.error("epoll modify failed", metadata: ["fd": "\(registration.fd)", "error": "\(error)"])
        }
    }

    /// Stops watching. Events already fetched for this registration are dropped (generation check).
    /// Call before closing the fd.
    public func unregister(_ registration: Registration) {
        let index = Int(registration.fd)
        guard index < slots.count, slots[index].generation == registration.generation, slots[index].handler != nil else { return }
        slots[index].handler = nil
        slots[index].generation &+= 1
        do { try poller.remove(fd: registration.fd) } catch {
            logger.debug("epoll remove failed", metadata: ["fd": "\(registration.fd)", "error": "\(error)"])
        }
    }

    // MARK: timers

    /// Runs `body` once, `nanoseconds` from now (on the loop thread).
    @discardableResult
    public func schedule(afterNanoseconds nanoseconds: UInt64, _ body: @escaping () -> Void) -> TimerID {
        schedule(at: monotonicNanoseconds() &+ nanoseconds, body)
    }

    /// Runs `body` once at the monotonic `deadline`.
    @discardableResult
    public func schedule(at deadline: UInt64, _ body: @escaping () -> Void) -> TimerID {
        let id = nextTimerID
        nextTimerID += 1
        timerCallbacks[id] = body
        heapPush(TimerEntry(deadline: deadline, id: id))
        return TimerID(raw: id)
    }

    /// Cancels a timer; harmless if it already ran.
    public func cancel(_ timer: TimerID) {
        timerCallbacks[timer.raw] = nil
    }

    /// Called once per tick, before the loop sleeps (write flushing, deferred frees).
    public func addBeforeSleepHook(_ hook: @escaping () -> Void) {
        beforeSleepHooks.append(hook)
    }

    // MARK: running

    /// Runs ticks until `stop()`.
    public func run() {
        precondition(inLoopThread, "EventLoop.run must be called on the thread that created the loop")
        stopped = false
        while !stopped {
            runOnce(maxWaitMilliseconds: -1)
        }
    }

    /// Asks `run()` to return after the current tick.
    public func stop() { stopped = true }

    /// One tick. `maxWaitMilliseconds` caps the poll (-1: until the next timer or event).
    public func runOnce(maxWaitMilliseconds: Int32) {
        now = monotonicNanoseconds()
        runDueTimers()
        for hook in beforeSleepHooks { hook() }
        var timeout = maxWaitMilliseconds
        if let first = timerHeap.first {
            let wait = first.deadline > now ? Int32(clamping: (first.deadline - now + 999_999) / 1_000_000) : 0
            timeout = timeout < 0 ? wait : min(timeout, wait)
        }
        if stopped { timeout = 0 }
        do {
            try poller.wait(timeoutMilliseconds: timeout) { event in
                let fd = Int(UInt32(truncatingIfNeeded: event.token))
                let generation = UInt32(truncatingIfNeeded: event.token >> 32)
                guard fd < slots.count, slots[fd].generation == generation, let handler = slots[fd].handler else {
                    return  // stale: the fd was unregistered (and maybe reused) after the kernel reported it
                }
                handler.ioReady(event.events)
            }
        } catch {
            logger.error("poll failed", metadata: ["error": "\(error)"])
        }
    }

    private func runDueTimers() {
        while let first = timerHeap.first, first.deadline <= now {
            heapPop()
            if let callback = timerCallbacks.removeValue(forKey: first.id) { callback() }
        }
    }

    /// Runs the deferred work posted through `handle` (called when the eventfd is readable).
    fileprivate func drainDeferred() {
        handle.drain { work in work(self) }
    }

    // MARK: timer heap (binary min-heap on deadline)

    private func heapPush(_ entry: TimerEntry) {
        timerHeap.append(entry)
        var child = timerHeap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            if timerHeap[parent].deadline <= timerHeap[child].deadline { break }
            timerHeap.swapAt(parent, child)
            child = parent
        }
    }

    private func heapPop() {
        let last = timerHeap.removeLast()
        guard !timerHeap.isEmpty else { return }
        timerHeap[0] = last
        var parent = 0
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < timerHeap.count, timerHeap[left].deadline < timerHeap[smallest].deadline { smallest = left }
            if right < timerHeap.count, timerHeap[right].deadline < timerHeap[smallest].deadline { smallest = right }
            if smallest == parent { break }
            timerHeap.swapAt(parent, smallest)
            parent = smallest
        }
    }
}

/// Reads the eventfd and runs the deferred queue.
private final class WakeupHandler: IOHandler {
    unowned let loop: EventLoop
    init(loop: EventLoop) { self.loop = loop }
    func ioReady(_ events: IOEvents) { loop.drainDeferred() }
}
